"""`accelerate launch` of training: config resolution, launch rules, and a REAL CPU launch.

The launch test runs `python -m accelerate.commands.launch ... -m
rzero_lib.training.entry payload.json` on CPU with one process: accelerate's
simple launcher, real TRL GRPO on the format-taught tiny model, one step.
"""

import json
import sys

import pytest
import yaml

from rzero_lib.config import ChallengerTrainingParams, EngineParams, GRPOParams, SolverTrainingParams
from rzero_lib.prompts import PromptSpec
from rzero_lib.training.launch import (
    SHIPPED_CONFIGS,
    accelerate_config_path,
    launch_command,
    launch_training,
    make_payload,
    read_result,
    rendezvous_port_flags,
    should_launch,
)
from tests.support import SOLVER_PROMPT

CPU_CONFIG = {
    "compute_environment": "LOCAL_MACHINE", "distributed_type": "NO", "use_cpu": True, "num_machines": 1,
    "num_processes": 1, "machine_rank": 0, "mixed_precision": "no", "debug": False,
}


@pytest.fixture
def cpu_config(tmp_path):
    path = tmp_path / "cpu.yaml"
    path.write_text(yaml.safe_dump(CPU_CONFIG))
    return str(path)


# --- config files -----------------------------------------------------------


@pytest.mark.parametrize("name", SHIPPED_CONFIGS)
def test_shipped_configs_resolve_and_parse(name):
    path = accelerate_config_path(name)
    assert path.is_file() and path.name == f"{name}.yaml"
    cfg = yaml.safe_load(path.read_text())
    for key in ("compute_environment", "distributed_type", "num_machines", "num_processes", "mixed_precision",
                "machine_rank", "use_cpu"):
        assert key in cfg, f"{name}: missing {key}"
    # The GPU configs train in bf16; `cpu` (several gloo ranks without a GPU) in fp32.
    assert cfg["use_cpu"] is False and cfg["mixed_precision"] == ("no" if name == "cpu" else "bf16")


def test_config_contents():
    z2 = yaml.safe_load(accelerate_config_path("zero2").read_text())
    z3 = yaml.safe_load(accelerate_config_path("zero3").read_text())
    fsdp = yaml.safe_load(accelerate_config_path("fsdp").read_text())
    multi = yaml.safe_load(accelerate_config_path("multinode").read_text())
    assert z2["distributed_type"] == "DEEPSPEED" and z2["deepspeed_config"]["zero_stage"] == 2
    assert z3["deepspeed_config"]["zero_stage"] == 3 and z3["deepspeed_config"]["zero3_save_16bit_model"]
    assert fsdp["distributed_type"] == "FSDP"
    assert fsdp["fsdp_config"]["fsdp_sharding_strategy"] == "FULL_SHARD"
    assert fsdp["fsdp_config"]["fsdp_auto_wrap_policy"] == "TRANSFORMER_BASED_WRAP"
    assert fsdp["fsdp_config"]["fsdp_state_dict_type"] == "FULL_STATE_DICT"
    assert multi["num_machines"] > 1 and multi["main_process_ip"] == "MAIN_NODE_IP"
    assert "main_process_port" in multi


def test_cpu_config_with_several_processes_is_refused(tmp_path, cpu_config):
    """accelerate starts ONE process for a CPU config (no mpirun) and ignores --num_processes: refused before
    anything is written; the shipped `cpu` config (torchrun) is the way to several CPU ranks."""
    with pytest.raises(ValueError, match="would start one process, not 2"):
        launch_training("solver", {}, config=cpu_config, num_processes=2, log_path=tmp_path / "log.txt")
    assert not (tmp_path / "log.payload.json").exists()
    cpu = yaml.safe_load(accelerate_config_path("cpu").read_text())
    assert cpu["distributed_type"] == "MULTI_GPU"  # accelerate's torchrun launcher


def test_config_path_resolution(tmp_path, cpu_config):
    assert str(accelerate_config_path(cpu_config)) == str(tmp_path / "cpu.yaml")
    with pytest.raises(ValueError, match="zero2"):
        accelerate_config_path("zero4")
    with pytest.raises(ValueError):
        accelerate_config_path(str(tmp_path / "missing.yaml"))


def test_launch_command_shape(cpu_config):
    cmd = launch_command("/tmp/p.json", config="zero3", num_processes=4)
    assert cmd[:3] == [sys.executable, "-m", "accelerate.commands.launch"]
    assert cmd[cmd.index("--num_processes") + 1] == "4"
    assert cmd[-3:] == ["-m", "rzero_lib.training.entry", "/tmp/p.json"]
    assert cmd[cmd.index("--config_file") + 1].endswith("zero3.yaml")


def test_multinode_needs_main_ip(tmp_path):
    with pytest.raises(ValueError, match="RZERO_MAIN_PROCESS_IP"):
        launch_training("solver", {}, config="multinode", num_processes=16, log_path=tmp_path / "log.txt",
                        env={"RZERO_MAIN_PROCESS_IP": ""})


def test_one_machine_ranks_rendezvous_on_a_free_port():
    """torchrun's fixed 29500 made a launched stage fail with EADDRINUSE beside another run or the tests (seen
    while the rehearsal ran); the multinode port, set in its config or RZERO_MAIN_PROCESS_PORT, stays."""
    flags = rendezvous_port_flags(accelerate_config_path("cpu"), [])
    assert flags[0] == "--main_process_port" and int(flags[1]) > 0
    assert rendezvous_port_flags(accelerate_config_path("multinode"), []) == []
    assert rendezvous_port_flags(accelerate_config_path("zero2"), ["--main_process_port", "1234"]) == []


# --- launch rules -------------------------------------------------------------


@pytest.mark.parametrize("launcher, num_processes, devices, expected", [
    ("accelerate", None, 0, True),
    ("accelerate", 1, 1, True),
    ("in_process", None, 8, False),
    ("auto", None, 0, False),
    ("auto", None, 1, False),
    ("auto", None, 2, True),
    ("auto", 4, 8, True),
    ("auto", 1, 8, False),
])
def test_should_launch(launcher, num_processes, devices, expected):
    params = GRPOParams(launcher=launcher, num_processes=num_processes)
    assert should_launch(params, devices) is expected


def test_payload_round_trips_through_json():
    params = SolverTrainingParams(steps=1, batch_size=2, group_size=2)
    prompt = PromptSpec("sys", "{question}", (("q", "a"),))
    payload = json.loads(json.dumps(make_payload("solver", params=params, solver_prompt=prompt,
                                                 engine=EngineParams(), questions=("a",), labels=["1"])))
    assert SolverTrainingParams.model_validate(payload["params"]) == params
    assert payload["solver_prompt"] == {"system": "sys", "user": "{question}", "demonstrations": [["q", "a"]]}
    from rzero_lib.training.entry import prompt_from_payload

    assert prompt_from_payload(payload["solver_prompt"]) == prompt
    assert ChallengerTrainingParams.model_validate(make_payload("challenger", params=ChallengerTrainingParams())
                                                   ["params"]) == ChallengerTrainingParams()
    with pytest.raises(ValueError, match="role"):
        make_payload("judge")


# --- real launches --------------------------------------------------------------------


def _solver_payload(model: str, output_dir) -> dict:
    # The format-taught model boxes small digits; labels in that range make the
    # reward vary within a group, so GRPO takes a real step.
    params = SolverTrainingParams(steps=1, batch_size=2, group_size=4, max_new_tokens=12, learning_rate=1e-3,
                                  beta=0.0, temperature=1.0, top_p=1.0)
    return make_payload("solver", start_model=model, questions=["What is 1+1?", "What is 1+2?"], labels=["2", "3"],
                        params=params, solver_prompt=SOLVER_PROMPT, output_dir=output_dir,
                        engine=EngineParams(device="cpu"), seed=0, disable_tqdm=True)


def test_launch_training_solver_on_cpu(tmp_path, format_model_path, cpu_config, capsys):
    out = tmp_path / "solver_training"
    log = out / "accelerate.log"
    code = launch_training("solver", _solver_payload(format_model_path, out), config=cpu_config, num_processes=1,
                           log_path=log)
    assert code == 0
    model_dir = out / "model"
    assert (model_dir / "config.json").exists() and (model_dir / "rzero_model.json").exists()
    info = json.loads((model_dir / "rzero_model.json").read_text())
    assert info["kind"] == "full" and info["base_model"] == format_model_path
    assert (out / "log_history.jsonl").read_text().strip()
    result = read_result(out)
    assert result["optimizer_steps"] == 1 and result["world_size"] == 1
    text = log.read_text()
    assert "accelerate.commands.launch" in text and "[train_entry rank 0/1] done" in text
    assert "[train_entry rank 0/1] done" in capsys.readouterr().out  # streamed live, not only to the file
    assert (out / "accelerate.payload.json").exists()


def test_launch_training_failure_raises_with_log_tail(tmp_path, cpu_config):
    out = tmp_path / "broken"
    payload = _solver_payload("builtin:tiny-random", out)
    del payload["params"]  # train_entry rejects it before importing torch: a fast failure
    log = out / "accelerate.log"
    with pytest.raises(RuntimeError) as err:
        launch_training("solver", payload, config=cpu_config, num_processes=1, log_path=log, echo=False)
    message = str(err.value)
    assert str(log) in message and "exit code" in message
    assert "missing 'params'" in message  # the child's own error, quoted from the log tail
    assert not (out / "model").exists()


@pytest.mark.slow
def test_launch_training_challenger_against_solver_server(tmp_path, format_model_path, cpu_config):
    """The challenger role: the launched trainer reaches the frozen Solver through a real server."""
    from rzero_lib.engine.solver_server.process import SolverServer
    from tests.support import CHALLENGER_PROMPT

    out = tmp_path / "challenger_training"
    params = ChallengerTrainingParams(steps=1, batch_size=2, group_size=2, max_new_tokens=16, learning_rate=1e-3,
                                      beta=0.0, solver_max_new_tokens=8)
    with SolverServer.start(format_model_path, log_dir=out, engine=EngineParams(device="cpu"),
                            backend="transformers", env={"OMP_NUM_THREADS": "1"}) as server:
        payload = make_payload("challenger", start_model=format_model_path, solver_url=server.base_url,
                               solver_model=format_model_path, params=params, challenger_prompt=CHALLENGER_PROMPT,
                               solver_prompt=SOLVER_PROMPT, num_solver_samples=3, output_dir=out,
                               engine=EngineParams(device="cpu"), seed=0, equivalence_timeout_s=5.0,
                               disable_tqdm=True)
        assert launch_training("challenger", payload, config=cpu_config, num_processes=1,
                               log_path=out / "accelerate.log", echo=False) == 0
        served = (out / "solver_server.log").read_text().count("POST /v1/completions")
    assert (out / "model" / "config.json").exists()
    assert read_result(out)["optimizer_steps"] == 1
    assert (out / "challenger_questions.jsonl").exists()
    history = [json.loads(line) for line in (out / "log_history.jsonl").read_text().splitlines()]
    assert any("challenger/format_failure_rate" in h for h in history)
    # Parsed questions (if any) were scored by the server process, not in the trainer.
    rows = [json.loads(line) for line in (out / "challenger_questions.jsonl").read_text().splitlines()]
    assert served >= 1 or all(r["question"] is None for r in rows)


def test_train_entry_rejects_bad_payloads(tmp_path):
    from rzero_lib.training.entry import load_payload, main

    bad = tmp_path / "p.json"
    bad.write_text(json.dumps({"role": "judge", "start_model": "x", "params": {}, "output_dir": "y"}))
    with pytest.raises(ValueError, match="role"):
        load_payload(bad)
    assert main([]) == 2


@pytest.mark.slow
def test_two_cpu_processes_train_one_real_step(tmp_path, format_model_path):
    """Two ranks (torch.distributed.run, gloo on CPU; `accelerate launch` needs MPI for multi-CPU):
    the batch schedule is split over the ranks and rank 0 alone writes the outputs."""
    import subprocess

    from rzero_lib.engine.solver_server.protocol import free_port

    out = tmp_path / "solver_training"
    out.mkdir()
    payload = _solver_payload(format_model_path, out)
    (out / "payload.json").write_text(json.dumps(payload))
    env = {**__import__("os").environ, "ACCELERATE_USE_CPU": "true", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
                           "--master_port", str(free_port()), "-m", "rzero_lib.training.entry",
                           str(out / "payload.json")], capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    result = read_result(out)
    assert result["world_size"] == 2 and result["optimizer_steps"] == 1
    history = [json.loads(line) for line in (out / "log_history.jsonl").read_text().splitlines()]
    assert any("loss" in h and h.get("step") == 1 for h in history), "a real optimizer step, not zero batches"
    assert (out / "model" / "config.json").exists() and not (out / "_trl_work").exists()


@pytest.mark.slow
def test_training_stages_run_under_accelerate_in_the_pipeline(tmp_path):
    """The stage-level launched path (`grpo_phase.launched_training`) for both roles, as the GPU recipes
    (`launcher: accelerate`) use it: the Challenger against a Solver server, the Solver on two gloo ranks
    through the shipped `cpu` config. The manifests say how each stage ran."""
    from rzero_lib.config import load_params
    from rzero_lib.pipeline.driver import run_pipeline
    from tests.support import SMOKE

    launched = ["launcher=accelerate", "accelerate_config=cpu"]
    params = load_params(SMOKE, [f"{role}.{s}" for role in ("challenger_training", "solver_training") for s in launched]
                         + ["challenger_training.num_processes=1", "solver_training.num_processes=2",
                            "evaluation.enabled=false"])
    run = tmp_path / "launched"
    run_pipeline(params, run, progress=False)
    for stage, processes in (("challenger_training", 1), ("solver_training", 2)):
        folder = run / "iter_01" / stage
        engine = json.loads((folder / "manifest.json").read_text())["summary"]["engine"]
        assert (engine["launcher"], engine["accelerate_config"], engine["processes"]) == ("accelerate", "cpu",
                                                                                           processes)
        assert engine["rollouts"] == "transformers" and engine["weight_sync"] is None
        assert read_result(folder)["world_size"] == processes
    solver = json.loads((run / "iter_01/challenger_training/manifest.json").read_text())["summary"]["engine"]["solver"]
    assert solver == {"service": "server", "backend": "transformers"}
