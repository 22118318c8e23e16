"""Entry point of a training subprocess: `python -m rzero_lib.training.entry PAYLOAD.json`.

`rzero_lib.training.launch.launch_training` runs it under `accelerate launch`,
once per process. It reads the payload and calls `train_solver` or
`train_challenger` with the arguments they take in-process; the Challenger's
frozen Solver is a running OpenAI-compatible server (`solver_url`,
`solver_model`). Rank 0 writes `train_result.json` (the TrainingResult summary)
into output_dir.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

from rzero_lib.atomic_files import write_json_atomic
from rzero_lib.config import ChallengerTrainingParams, EngineParams, SolverTrainingParams
from rzero_lib.engine.solver_server.client import OpenAIServerGenerator
from rzero_lib.prompts import PromptSpec
from rzero_lib.training.launch import RESULT_FILE
from rzero_lib.training.roles import train_challenger, train_solver
from rzero_lib.voting import VoteRules


def rank_info() -> tuple[int, int]:
    """(global rank, world size) from the launcher's environment (1 process: (0, 1))."""
    return int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))


def prompt_from_payload(data: dict) -> PromptSpec:
    demos = tuple(tuple(d) for d in data.get("demonstrations") or ())
    return PromptSpec(data["system"], data["user"], demos)


def load_payload(path: str | Path) -> dict:
    payload = json.loads(Path(path).read_text())
    role = payload.get("role")
    if role not in ("solver", "challenger"):
        raise ValueError(f"payload {path}: role must be 'solver' or 'challenger', got {role!r}")
    for key in ("start_model", "params", "output_dir"):
        if key not in payload:
            raise ValueError(f"payload {path}: missing {key!r}")
    return payload


def run(payload: dict) -> dict:
    """Train as the payload says; returns the TrainingResult summary (rank 0's is the real one)."""
    rank, world = rank_info()
    output_dir = Path(payload["output_dir"])
    engine = EngineParams.model_validate(payload.get("engine") or {})
    seed = int(payload.get("seed", 0))
    common = dict(output_dir=output_dir, engine=engine, seed=seed, disable_tqdm=bool(payload.get("disable_tqdm")))
    if payload["role"] == "solver":
        result = train_solver(
            payload["start_model"], payload["questions"], payload["labels"],
            params=SolverTrainingParams.model_validate(payload["params"]),
            solver_prompt=prompt_from_payload(payload["solver_prompt"]), weights=payload.get("weights"), **common)
    else:
        if not payload.get("solver_url"):
            raise ValueError("challenger payload needs solver_url (a running Solver server)")
        solver = OpenAIServerGenerator.connect(payload["solver_url"],
                                               payload.get("solver_model") or payload["start_model"])
        result = train_challenger(
            payload["start_model"], solver, params=ChallengerTrainingParams.model_validate(payload["params"]),
            challenger_prompt=prompt_from_payload(payload["challenger_prompt"]),
            solver_prompt=prompt_from_payload(payload["solver_prompt"]),
            num_solver_samples=int(payload["num_solver_samples"]),
            equivalence_timeout_s=payload.get("equivalence_timeout_s"),
            vote_rules=VoteRules(**(payload.get("vote_rules") or {})), domain=payload.get("domain"), **common)
    summary = {**result.summary(), "log_history_path": str(result.log_history_path), "rank": rank,
               "world_size": world}
    if rank == 0:
        write_json_atomic(output_dir / RESULT_FILE, summary)
    return summary


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m rzero_lib.training.entry PAYLOAD.json", file=sys.stderr)
        return 2
    payload = load_payload(argv[0])
    rank, world = rank_info()
    t0 = time.perf_counter()
    print(f"[train_entry rank {rank}/{world}] {payload['role']} training from {payload['start_model']} "
          f"-> {payload['output_dir']}", flush=True)
    summary = run(payload)
    print(f"[train_entry rank {rank}/{world}] done in {time.perf_counter() - t0:.1f} s: "
          f"{json.dumps({k: summary[k] for k in ('model_dir', 'optimizer_steps', 'seconds')})}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
