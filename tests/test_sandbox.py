"""The arithmetic sandbox (issue 7): the model builder, the held-out set, the parameter files, the ablation
switches, and the sandbox pipeline end to end on the smoke budget with a reduced model.

The reduced model (a few pretraining steps, `RZERO_SANDBOX_STEPS`) is built into a temporary cache
(`RZERO_CACHE_DIR`), never into the real one.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd
import pytest

from rzero_lib import sandbox as S
from rzero_lib.config import diff_params, load_params, params_to_dict
from rzero_lib.oracle import arithmetic_answer

REPO = Path(__file__).resolve().parent.parent
PARAMS = REPO / "params"
CONTROL_SWITCHES = {
    "sandbox_oracle_labels": {"solver_training.label_source": "oracle"},
    "sandbox_untrained_challenger": {"challenger_training.enabled": False},
    "sandbox_no_penalty": {"challenger_training.penalty_weight": 0.0},
    "sandbox_no_band": {"voting.apply_band": False},
}
REDUCED_STEPS = 60

# The smoke budget on top of params/sandbox.yaml (one iteration, a handful of everything).
SMOKE_OVERRIDES = [
    "iterations=1",
    "challenger_training.steps=1", "challenger_training.batch_size=4", "challenger_training.group_size=2",
    "challenger_training.micro_batch_size=8", "challenger_training.solver_samples=4",
    "question_generation.num_questions=16",
    "voting.num_samples=4", "voting.band_delta=0.5",
    "solver_training.steps=1", "solver_training.batch_size=4", "solver_training.group_size=2",
    "solver_training.micro_batch_size=8",
    "evaluation.limit=16",
    "analysis.label_sample_size=16", "analysis.solver_difficulty_samples=2",
]


# --------------------------------------------------------------------------
# the reduced model
# --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def reduced_cache(tmp_path_factory):
    """A temporary RZERO_CACHE_DIR holding a reduced `builtin:arith-sandbox` (built once for this module;
    the environment is restored afterwards so other test modules use the real cache)."""
    from rzero_lib.models import builtin_path

    cache = tmp_path_factory.mktemp("sandbox_cache")
    saved = {k: os.environ.get(k) for k in ("RZERO_CACHE_DIR", S.STEPS_ENV)}
    os.environ["RZERO_CACHE_DIR"] = str(cache)
    os.environ[S.STEPS_ENV] = str(REDUCED_STEPS)
    try:
        path = builtin_path("arith-sandbox")
        yield {"cache": cache, "path": path}
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def test_reduced_model_is_a_complete_hf_folder(reduced_cache):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = reduced_cache["path"]
    assert str(path).startswith(str(reduced_cache["cache"]))  # not the real cache
    record = json.loads((path / "sandbox_pretraining.json").read_text())
    assert record["settings"]["steps"] == REDUCED_STEPS
    assert 0.9e6 < record["parameters"] < 1.1e6  # about 1M parameters
    model = AutoModelForCausalLM.from_pretrained(path)
    tok = AutoTokenizer.from_pretrained(path)
    assert model.config.model_type == "qwen3"
    assert tok.eos_token == "<|im_end|>" and tok.pad_token_id is not None


def test_tokenizer_round_trip_and_chat_template():
    tok = S.build_char_tokenizer()
    corpus = S.PretrainCorpus(tok, seed=3)
    texts = [ex.prompt + ex.completion for ex in corpus.batch(300)]
    texts += ["What is 47 + 38?", "Line one\nline two: {x} [y] ~!@#$%^&*()_+|", "\\boxed{-12} \\boxed 7"]
    for text in texts:
        ids = tok(text, add_special_tokens=False)["input_ids"]
        assert tok.decode(ids) == text
    # One token per character, plus the format strings and chat markers as single tokens.
    assert len(tok("12 + 7 = ?", add_special_tokens=False)["input_ids"]) == len("12 + 7 = ?")
    for single in S.FORMAT_TOKENS + ["<|user|>", "<|assistant|>", "<|im_end|>"]:
        assert len(tok(single, add_special_tokens=False)["input_ids"]) == 1
    # The chat template renders the run's prompts exactly as the corpus does.
    rendered = tok.apply_chat_template(S.sandbox_solver_prompt().messages("3 + 4 = ?"), tokenize=False,
                                       add_generation_prompt=True)
    assert rendered == "<|user|>3 + 4 = ?<|im_end|><|assistant|>"
    assert corpus.challenger_prompt == tok.apply_chat_template(
        S.sandbox_challenger_prompt().messages(), tokenize=False, add_generation_prompt=True)
    # Special tokens are dropped by skip_special_tokens; the format tokens are kept.
    ids = tok("<question>1 + 2 = ?</question><|im_end|>", add_special_tokens=False)["input_ids"]
    assert tok.decode(ids, skip_special_tokens=True) == "<question>1 + 2 = ?</question>"


def test_corpus_questions_are_oracle_evaluable_and_answers_exact():
    corpus = S.PretrainCorpus(S.build_char_tokenizer(), seed=1)
    examples = corpus.batch(400)
    roles = {ex.role for ex in examples}
    assert roles == {"challenger", "solver", "verifier"}
    verdicts = []
    for ex in examples:
        assert arithmetic_answer(ex.problem.question) == ex.problem.answer
        if ex.role == "solver":
            assert ex.completion == f"\\boxed{{{ex.problem.answer}}}<|im_end|>"
        elif ex.role == "verifier":
            # The shown answer is right exactly when the verdict is yes.
            shown = ex.prompt.split("\\boxed{", 1)[1].split("}", 1)[0]
            right = shown == ex.problem.answer
            assert ex.completion == f"\\boxed{{{'yes' if right else 'no'}}}<|im_end|>"
            verdicts.append(right)
        else:
            assert ex.completion == f"<question>{ex.problem.question}</question><|im_end|>"
    # Partial competence by design: the Solver's corpus is dominated by small operands.
    solver_digits = [ex.problem.max_digits for ex in examples if ex.role == "solver"]
    assert sum(d <= 2 for d in solver_digits) > 0.8 * len(solver_digits)
    assert 0.3 < sum(verdicts) / len(verdicts) < 0.7


def test_near_misses_are_wrong_and_close():
    import random

    rng = random.Random(0)
    for answer in [0, 7, -12, 345, 9999, -40000]:
        for _ in range(50):
            wrong = S.near_miss(rng, answer)
            assert wrong != answer and abs(wrong - answer) < 10 ** len(str(abs(answer)))


def test_build_is_deterministic_for_a_seed(tmp_path):
    from safetensors.torch import load_file

    a = S.build_sandbox_model(tmp_path / "a", steps=3, seed=5)
    b = S.build_sandbox_model(tmp_path / "b", steps=3, seed=5)
    c = S.build_sandbox_model(tmp_path / "c", steps=3, seed=6)
    wa, wb, wc = (load_file(p / "model.safetensors") for p in (a, b, c))
    assert all((wa[k] == wb[k]).all() for k in wa)
    assert any((wa[k] != wc[k]).any() for k in wa)


def test_reduced_model_writes_in_both_formats(reduced_cache):
    from rzero_lib.answers import extract_boxed, parse_challenger_output
    from rzero_lib.generation import SamplingConfig, TransformersGenerator

    gen = TransformersGenerator.from_spec(str(reduced_cache["path"]), batch_size=64)
    questions = gen.generate([S.sandbox_challenger_prompt().messages()],
                             SamplingConfig(n=32, temperature=1.0, max_new_tokens=24, seed=0), progress=False)[0]
    parsed = [parse_challenger_output(t) for t in questions]
    assert sum(p.ok for p in parsed) >= 8, questions[:5]
    answers = gen.generate([S.sandbox_solver_prompt().messages("3 + 4 = ?")],
                           SamplingConfig(n=16, temperature=1.0, max_new_tokens=12, seed=0), progress=False)[0]
    assert sum(extract_boxed(t) is not None for t in answers) >= 8, answers[:5]


# --------------------------------------------------------------------------
# held-out set, difficulty helpers
# --------------------------------------------------------------------------


def test_heldout_set_is_fixed_stratified_and_exact():
    from rzero_lib.benchmarks import load_benchmark

    problems = S.sandbox_heldout_problems()
    assert len(problems) == 3 * 4 * S.HELDOUT_PER_CELL
    assert [p.question for p in problems] == [p.question for p in S.sandbox_heldout_problems()]
    table = S.heldout_table(problems)
    assert (table.groupby(["operator", "digits"]).size() == S.HELDOUT_PER_CELL).all()
    assert all(arithmetic_answer(p.question) == p.answer for p in problems)
    items = load_benchmark("arith_sandbox")
    assert [it.id for it in items] == list(table["id"])
    assert [it.gold for it in items] == [p.answer for p in problems]
    assert S.HELDOUT_SEED != S.PRETRAIN_SEED


def test_difficulty_helpers():
    assert S.operand_digits("47 + 385 = ?") == 3
    assert S.operand_digits("What is 7 * 8?") == 1
    assert S.operand_digits("no numbers") is None and S.operand_digits(None) is None
    assert S.answer_digits("-385") == 3 and S.answer_digits("0") == 1
    assert S.answer_digits("7/3") is None and S.answer_digits(None) is None
    assert S.question_operator("12 - 5 = ?") == "-" and S.question_operator("3 * 4 = ?") == "*"
    votes = pd.DataFrame({
        "iteration": [1, 1, 2], "question": ["3 + 4 = ?", "12 * 3 = ?", "123 - 4 = ?"],
        "answers": [["7", "7", "8"], ["36", "30", None], ["119", "119", "119"]],
        "majority_answer": ["7", "36", "119"], "p_hat": [2 / 3, 1 / 3, 1.0], "kept": [True, True, False],
        "drop_reason": [None, None, "outside_band"], "question_id": ["a", "b", "c"],
        "challenger_answer": [None, None, None], "majority_count": [2, 1, 3]})
    d = S.difficulty_table(votes).set_index("iteration")
    assert d.loc[1, "operand_digits"] == 1.5 and d.loc[2, "operand_digits"] == 3
    assert d.loc[1, "answer_digits"] == 1.5 and d.loc[2, "answer_digits"] == 3
    assert d.loc[1, "oracle_accuracy_of_solver"] == pytest.approx((2 / 3 + 1 / 3) / 2)
    labels = S.label_accuracy(votes)
    assert list(labels["iteration"]) == [1] and labels.loc[0, "label_accuracy"] == 1.0
    assert 0 < labels.loc[0, "ci_low"] < 1 == labels.loc[0, "ci_high"]


# --------------------------------------------------------------------------
# parameter files
# --------------------------------------------------------------------------


def test_run_prompts_are_the_pretraining_prompts():
    from rzero_lib.domains import resolve_prompts

    for name in ["sandbox", *CONTROL_SWITCHES]:
        params = load_params(PARAMS / f"{name}.yaml")
        challenger, solver = resolve_prompts(params)
        assert challenger == S.sandbox_challenger_prompt(), name
        assert solver == S.sandbox_solver_prompt(), name
        assert params.model == "builtin:arith-sandbox" and params.domain == "arithmetic"
        assert params.analysis.oracle.kind == "arithmetic"
        assert params.evaluation.benchmarks == [S.HELDOUT_BENCHMARK]


def test_verifier_run_is_the_main_run_with_the_sandbox_verifier():
    from rzero_lib.verifier import verification_messages

    main = params_to_dict(load_params(PARAMS / "sandbox.yaml"))
    params = load_params(PARAMS / f"{S.VERIFIER_RUN}.yaml")
    changed = {d.split(":")[0] for d in diff_params(main, params_to_dict(params))}
    assert changed and all(c == "run_name" or c.startswith("verifier.") for c in changed)
    v = params.verifier
    assert v.enabled and v.kind == "self"
    assert (v.system, v.user) == (S.SANDBOX_VERIFIER_SYSTEM, S.SANDBOX_VERIFIER_USER)
    # The stage's prompt is the pretraining corpus's prompt for the same question and response.
    tok = S.build_char_tokenizer()
    corpus = S.PretrainCorpus(tok, seed=2)
    ex = next(e for e in corpus.batch(200) if e.role == "verifier")
    response = "\\boxed{" + ex.prompt.split("\\boxed{", 1)[1].split("}", 1)[0] + "}"
    messages = verification_messages(ex.problem.question, response, v.system, v.user)
    assert tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True) == ex.prompt


def test_main_run_meets_the_issue():
    params = load_params(PARAMS / "sandbox.yaml")
    assert params.iterations >= 3 and params.run_name == "sandbox"
    assert params.solver_training.label_source == "majority" and params.challenger_training.enabled
    assert params.challenger_training.penalty_weight > 0 and params.voting.apply_band


@pytest.mark.parametrize("name", sorted(CONTROL_SWITCHES))
def test_each_control_differs_only_in_its_switch(name):
    main = params_to_dict(load_params(PARAMS / "sandbox.yaml"))
    control = params_to_dict(load_params(PARAMS / f"{name}.yaml"))
    changed = {d.split(":")[0] for d in diff_params(main, control)}
    assert changed == {"run_name", *CONTROL_SWITCHES[name]}
    assert control["run_name"] == name
    for key, value in CONTROL_SWITCHES[name].items():
        node = control
        for part in key.split("."):
            node = node[part]
        assert node == value


def test_make_sandbox_script_runs_the_main_run_and_every_control():
    script = (REPO / "scripts" / "run_sandbox.sh").read_text()
    default = script.split('SANDBOX_RUNS=${SANDBOX_RUNS:-"', 1)[1].split('"', 1)[0].split()
    assert default == ["sandbox", *sorted(CONTROL_SWITCHES, key=list(S.CONTROL_RUNS).index), S.VERIFIER_RUN]
    assert all((PARAMS / f"{name}.yaml").exists() for name in default)
    assert set(S.CONTROL_RUNS) == set(CONTROL_SWITCHES)
    assert "notebooks/07_sandbox_comparison.ipynb" in script


# --------------------------------------------------------------------------
# the ablation switches change what they claim (stage functions, in-process)
# --------------------------------------------------------------------------


class _FakeSolver:
    """A Generator stand-in: answers `\\boxed{<x>}` where x is chosen per question by `answer_fn`."""

    backend_name = "fake"

    def __init__(self, answer_fn):
        from rzero_lib.generation import GenerationStats

        self.answer_fn = answer_fn
        self.stats = GenerationStats()

    def generate(self, prompts, sampling, progress=False):
        out = []
        for p in prompts:
            question = p[-1]["content"] if isinstance(p, list) else str(p)
            out.append([f"\\boxed{{{self.answer_fn(question, k)}}}" for k in range(sampling.n)])
        return out

    def close(self):
        pass


def _open_run(tmp_path, name, overrides=()):
    from rzero_lib.pipeline import prepare_run_dir
    from rzero_lib.stages import StageContext

    params = load_params(PARAMS / f"{name}.yaml", ["model=builtin:tiny-random", *overrides])
    run = prepare_run_dir(params, tmp_path / name)
    return run, lambda k, stage: StageContext.open(run.path, k, stage)


def _write_voting_artifacts(run, questions, labels):
    from rzero_lib.rundir import write_parquet_atomic
    from rzero_lib.stages import TRAIN_COLUMNS

    folder = run.stage_dir(1, "voting")
    folder.mkdir(parents=True, exist_ok=True)
    train = pd.DataFrame({"question_id": [f"q{i}" for i in range(len(questions))], "question": questions,
                          "label": labels, "p_hat": 0.5, "weight": 1.0}, columns=TRAIN_COLUMNS)
    write_parquet_atomic(train, folder / "solver_train.parquet")


@pytest.mark.parametrize("name,expect_oracle", [("sandbox", False), ("sandbox_oracle_labels", True)])
def test_label_source_oracle_trains_on_the_oracle_answers(tmp_path, monkeypatch, name, expect_oracle):
    import rzero_lib.training as training
    from rzero_lib.stages import run_solver_training
    from rzero_lib.training import TrainingResult

    run, open_stage = _open_run(tmp_path, name)
    questions = ["3 + 4 = ?", "12 * 3 = ?", "50 - 75 = ?", "9 * 9 = ?"]
    majority = ["8", "36", "-20", "81"]  # two wrong pseudo-labels
    _write_voting_artifacts(run, questions, majority)
    seen = {}

    def fake_train_solver(start, qs, labels, **kwargs):
        seen["questions"], seen["labels"] = list(qs), list(labels)
        folder = Path(kwargs["output_dir"]) / "model"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "config.json").write_text("{}")
        log = Path(kwargs["output_dir"]) / "log_history.jsonl"
        log.write_text("")
        return TrainingResult(model_dir=folder, log_history_path=log)

    monkeypatch.setattr(training, "train_solver", fake_train_solver)
    result = run_solver_training(open_stage(1, "solver_training"))
    oracle = [arithmetic_answer(q) for q in seen["questions"]]
    if expect_oracle:
        assert seen["labels"] == oracle == ["7", "36", "-25", "81"]
        assert list(result.tables["train"]["label"]) == oracle and "oracle" in result.summary["labels"]
    else:
        assert seen["labels"] == majority != oracle


def test_untrained_challenger_keeps_its_start_weights(tmp_path):
    from rzero_lib.stages import run_challenger_training

    run, open_stage = _open_run(tmp_path, "sandbox_untrained_challenger")
    result = run_challenger_training(open_stage(1, "challenger_training"))
    assert result.summary["trained"] is False
    assert run.challenger_model(1) == run.challenger_model(0) == "builtin:tiny-random"
    assert not (run.stage_dir(1, "challenger_training") / "model").exists()


@pytest.mark.parametrize("name,expect_penalty", [("sandbox", True), ("sandbox_no_penalty", False)])
def test_penalty_weight_zero_gives_zero_penalty(name, expect_penalty):
    from rzero_lib.domains import resolve_prompts
    from rzero_lib.generation import SamplingConfig
    from rzero_lib.training import ChallengerRewardFunction

    params = load_params(PARAMS / f"{name}.yaml")
    p = params.challenger_training
    _, solver_prompt = resolve_prompts(params)
    solver = _FakeSolver(lambda q, k: arithmetic_answer(q) if k % 2 else "0")  # p̂ = ½ on every question
    reward = ChallengerRewardFunction(solver, solver_prompt, SamplingConfig(n=4), form=p.reward_form,
                                      penalty_threshold=p.penalty_threshold, penalty_weight=p.penalty_weight)
    texts = ["<question>3 + 4 = ?</question>"] * 3 + ["<question>12 * 3 = ?</question>"]
    rows = reward.score(texts)
    penalties = [r["penalty"] for r in rows]
    assert all(r["uncertainty"] == pytest.approx(1.0) for r in rows)
    if expect_penalty:
        assert penalties[0] == pytest.approx(3 / 4) and penalties[3] == pytest.approx(1 / 4)
        assert rows[0]["reward"] < rows[3]["reward"]
    else:
        assert penalties == [0.0] * 4 and [r["reward"] for r in rows] == pytest.approx([1.0] * 4)


@pytest.mark.parametrize("name,expect_kept", [("sandbox", False), ("sandbox_no_band", True)])
def test_no_band_keeps_out_of_band_questions(tmp_path, monkeypatch, name, expect_kept):
    import rzero_lib.stages as stages
    from rzero_lib.rundir import write_parquet_atomic

    run, open_stage = _open_run(tmp_path, name)
    folder = run.stage_dir(1, "question_generation")
    folder.mkdir(parents=True, exist_ok=True)
    questions = ["3 + 4 = ?", "12 * 3 = ?"]
    write_parquet_atomic(pd.DataFrame({"question_id": ["q0", "q1"], "question": questions,
                                       "challenger_answer": [None, None], "kept": [True, True]}),
                         folder / "questions.parquet")
    # "3 + 4" is answered unanimously (p̂ = 1, outside the band); "12 * 3" is split 50/50 (in the band).
    answers = {"3 + 4 = ?": lambda k: "7", "12 * 3 = ?": lambda k: "36" if k % 2 else "30"}
    monkeypatch.setattr(stages, "_generator", lambda ctx, spec: _FakeSolver(lambda q, k: answers[q](k)))
    result = stages.run_voting(open_stage(1, "voting"))
    votes = result.tables["votes"].set_index("question")
    assert votes.loc["3 + 4 = ?", "p_hat"] == 1.0 and votes.loc["12 * 3 = ?", "p_hat"] == 0.5
    assert bool(votes.loc["12 * 3 = ?", "kept"])
    assert bool(votes.loc["3 + 4 = ?", "kept"]) is expect_kept
    if not expect_kept:
        assert votes.loc["3 + 4 = ?", "drop_reason"] == "outside_band"
    assert ("3 + 4 = ?" in set(result.tables["solver_train"]["question"])) is expect_kept


# --------------------------------------------------------------------------
# the sandbox pipeline end to end, smoke budget, reduced model
# --------------------------------------------------------------------------


@pytest.mark.slow
def test_sandbox_pipeline_end_to_end(tmp_path, reduced_cache, monkeypatch):
    from rzero_lib.evaluation import load_scores
    from rzero_lib.pipeline import plan, run_pipeline

    monkeypatch.setenv("OMP_WAIT_POLICY", "PASSIVE")  # the stage kernels; busy-waiting is slow on shared cores

    params = load_params(PARAMS / "sandbox.yaml", SMOKE_OVERRIDES)
    assert params.model == "builtin:arith-sandbox"  # resolved in the temporary cache (reduced model)
    run = run_pipeline(params, tmp_path / "sandbox_smoke", progress=False)
    for stage in plan(params):
        assert run.is_done(stage.folder(run)), stage.key
    votes = S.load_votes(run.path)
    assert len(votes) > 0 and votes["kept"].any()
    scores = load_scores(run.path)
    assert set(scores["benchmark"]) == {S.HELDOUT_BENCHMARK} and sorted(scores["iteration"]) == [0, 1]
    comparison = S.load_comparison(tmp_path, ["sandbox_smoke"])
    assert list(comparison.runs) == ["sandbox_smoke"]
    assert not comparison.difficulty.empty and not comparison.heldout.empty
    for fig in (S.plot_difficulty(comparison), S.plot_label_accuracy(comparison),
                S.plot_heldout_accuracy(comparison), S.plot_challenger_p_hat(comparison)):
        S.save_png(fig, tmp_path / "fig.png")
    json.dumps(S.comparison_summary(comparison), default=str)
