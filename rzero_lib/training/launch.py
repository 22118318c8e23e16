"""Multi-GPU (and multi-node) GRPO: one training stage as an `accelerate launch` subprocess.

`launch_training` writes the payload (`make_payload`: the arguments of
`train_solver` / `train_challenger` as JSON) beside the log, runs
`python -m accelerate.commands.launch --config_file CFG --num_processes N -m rzero_lib.training.entry PAYLOAD`,
streams its output to stdout and the log, and raises with the log's last lines
on failure; an interrupt stops the subprocess's process group. Shipped configs:
zero2, zero3, fsdp, multinode (placeholders filled from RZERO_MACHINE_RANK,
RZERO_MAIN_PROCESS_IP, RZERO_MAIN_PROCESS_PORT, RZERO_NUM_MACHINES), and cpu
(several gloo ranks without a GPU, through torchrun). Every node runs the same
command; there is no SSH fan-out. A CPU config (`use_cpu: true`, or
distributed_type NO / MULTI_CPU) with more than one process and no mpirun
hostfile is refused: accelerate would start one process and ignore the count.
"""

from __future__ import annotations

import collections
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import yaml

from rzero_lib.atomic_files import write_json_atomic
from rzero_lib.engine.device import cuda_device_count
from rzero_lib.engine.solver_server.protocol import free_port
from rzero_lib.processes import die_with_parent, stop_group, tied_child_env
from rzero_lib.values import jsonable

CONFIG_DIR = Path(__file__).resolve().parent / "accelerate_configs"
REPO_ROOT = Path(__file__).resolve().parents[2]
ENTRY_MODULE = "rzero_lib.training.entry"
SHIPPED_CONFIGS = ("zero2", "zero3", "fsdp", "multinode", "cpu")
ROLES = ("solver", "challenger")
TAIL_LINES = 40
RESULT_FILE = "train_result.json"  # written by the entry point's rank 0


def accelerate_config_path(name_or_path: str) -> Path:
    """A shipped config by name (zero2, zero3, fsdp, multinode, cpu) or an existing YAML path."""
    if not name_or_path:
        raise ValueError("accelerate config must be one of " + ", ".join(SHIPPED_CONFIGS) + " or a path")
    if name_or_path in SHIPPED_CONFIGS:
        return CONFIG_DIR / f"{name_or_path}.yaml"
    path = Path(name_or_path).expanduser()
    if path.is_file():
        return path.resolve()
    raise ValueError(f"accelerate config {name_or_path!r} is neither one of {', '.join(SHIPPED_CONFIGS)} "
                     f"nor an existing file")


def should_launch(params, device_count: int) -> bool:
    """Whether a GRPO stage runs under `accelerate launch` (`params`: a GRPOParams)."""
    if params.launcher == "accelerate":
        return True
    if params.launcher == "in_process":
        return False
    return device_count > 1 and params.num_processes != 1


def default_num_processes(params, device_count: int | None = None) -> int:
    """grpo.num_processes, else one process per visible CUDA device (at least 1)."""
    if params.num_processes:
        return params.num_processes
    return max(1, cuda_device_count() if device_count is None else device_count)


def make_payload(role: str, **arguments) -> dict:
    """The payload for `rzero_lib.training.entry`: the arguments of `train_solver` / `train_challenger` as JSON.

    Solver: start_model, questions, labels, params, solver_prompt, output_dir,
    engine, seed, weights. Challenger: start_model, solver_url (a running
    OpenAI-compatible Solver server), solver_model (its spec, for the
    tokenizer), params, challenger_prompt, solver_prompt, num_solver_samples,
    output_dir, engine, seed, equivalence_timeout_s, vote_rules.
    """
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}; got {role!r}")
    return {"role": role, **{k: jsonable(v) for k, v in arguments.items()}}


def _multinode_overrides(config_path: Path, env: dict) -> list[str]:
    """accelerate CLI flags for the multinode placeholders, from RZERO_* variables."""
    text = config_path.read_text()
    flags = []
    for var, flag in (("RZERO_MACHINE_RANK", "--machine_rank"), ("RZERO_MAIN_PROCESS_IP", "--main_process_ip"),
                      ("RZERO_MAIN_PROCESS_PORT", "--main_process_port"), ("RZERO_NUM_MACHINES", "--num_machines")):
        if env.get(var):
            flags += [flag, str(env[var])]
    if "MAIN_NODE_IP" in text and not env.get("RZERO_MAIN_PROCESS_IP"):
        raise ValueError(f"{config_path} is a multi-node template: set RZERO_MAIN_PROCESS_IP (the rank-0 node's "
                         "address), RZERO_MACHINE_RANK (0..N-1, per node) and RZERO_NUM_MACHINES, or pass a copy "
                         "with the placeholders filled in")
    return flags


def rendezvous_port_flags(config_path: Path, flags: list[str]) -> list[str]:
    """On one machine, a free rendezvous port for the ranks instead of torchrun's fixed 29500: two launched
    stages on one machine (two runs, or a run beside the tests) would otherwise fail with EADDRINUSE."""
    cfg = yaml.safe_load(config_path.read_text()) or {}
    if "--main_process_port" in flags or cfg.get("main_process_port") or (cfg.get("num_machines") or 1) > 1:
        return []
    return ["--main_process_port", str(free_port())]


def check_process_count(config_path: Path, num_processes: int) -> None:
    """Refuse a CPU config with several processes: accelerate would start one (several need mpirun)."""
    cfg = yaml.safe_load(config_path.read_text()) or {}
    cpu = cfg.get("use_cpu") is True or cfg.get("distributed_type") in ("NO", "MULTI_CPU")
    if num_processes > 1 and cpu and not cfg.get("mpirun_config"):
        raise ValueError(f"{config_path} is a CPU config (use_cpu {cfg.get('use_cpu')}, distributed_type "
                         f"{cfg.get('distributed_type')}): accelerate would start one process, not {num_processes}, "
                         "without saying so. Use accelerate_config: cpu (torchrun ranks on gloo) for several "
                         "processes without a GPU, or num_processes: 1")


def launch_command(payload_path: str | Path, *, config: str, num_processes: int,
                   extra_flags: list[str] | None = None) -> list[str]:
    """The accelerate command line; `extra_flags` go to `accelerate launch` itself."""
    cfg = accelerate_config_path(config)
    return [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(cfg),
            "--num_processes", str(num_processes), *(extra_flags or []),
            "-m", ENTRY_MODULE, str(payload_path)]


def launch_training(role: str, payload: dict, *, config: str, num_processes: int, log_path: str | Path,
                    cwd: str | Path | None = None, env: dict | None = None, echo: bool = True) -> int:
    """Run one training stage under `accelerate launch`; returns 0 or raises RuntimeError.

    The payload is written to `<log_path stem>.payload.json` beside the log
    (kept: it reproduces the run with the printed command).
    """
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}; got {role!r}")
    if num_processes < 1:
        raise ValueError(f"num_processes must be >= 1, got {num_processes}")
    child_env = tied_child_env()
    child_env.update(env or {})
    child_env["PYTHONUNBUFFERED"] = "1"  # live lines, not 4 KB blocks
    # The child must import this checkout's rzero_lib even from another cwd.
    child_env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), child_env.get("PYTHONPATH")) if p)
    check_process_count(accelerate_config_path(config), num_processes)  # bad config: fail before writing
    extra = _multinode_overrides(accelerate_config_path(config), child_env)
    extra += rendezvous_port_flags(accelerate_config_path(config), extra)
    # The shipped configs say bf16; an explicit fp32/fp16 engine wins.
    dtype = (payload.get("engine") or {}).get("dtype")
    if dtype in ("float32", "float16"):
        extra += ["--mixed_precision", "no" if dtype == "float32" else "fp16"]

    log_path = Path(log_path)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    payload = {**payload, "role": role}
    payload_path = log_path.with_name(log_path.stem + ".payload.json")
    write_json_atomic(payload_path, payload)
    cmd = launch_command(payload_path, config=config, num_processes=num_processes, extra_flags=extra)

    tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)
    t0 = time.perf_counter()
    with open(log_path, "a", buffering=1) as log:
        header = f"=== {time.strftime('%Y-%m-%d %H:%M:%S')} {role} training: {' '.join(cmd)}\n"
        log.write(header)
        if echo:
            sys.stdout.write(header)
        # Own process group: an interrupt stops every rank, and nothing else. Parent-death
        # signal: the launcher (which stops its ranks on SIGTERM) goes when this process dies.
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                cwd=str(cwd) if cwd else None, env=child_env, text=True, errors="replace",
                                bufsize=1, start_new_session=True, preexec_fn=die_with_parent())
        try:
            assert proc.stdout is not None
            for line in proc.stdout:
                log.write(line)
                tail.append(line.rstrip("\n"))
                if echo:
                    sys.stdout.write(line)
                    sys.stdout.flush()
            code = proc.wait()
        except BaseException:
            stop_group(proc, term_timeout_s=20.0, kill_timeout_s=20.0)
            raise
        log.write(f"=== exit code {code} after {time.perf_counter() - t0:.1f} s\n")
    if code != 0:
        last = "\n".join(tail)
        raise RuntimeError(f"{role} training under accelerate failed (exit code {code}); full log: {log_path}\n"
                           f"payload: {payload_path}\nlast lines:\n{last}")
    return code


def read_result(output_dir: str | Path) -> dict:
    """The summary `rzero_lib.training.entry` wrote (`train_result.json`: model_dir, steps, seconds, ...)."""
    path = Path(output_dir) / RESULT_FILE
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: the training subprocess did not finish")
    return json.loads(path.read_text())
