"""Entry point of a training subprocess (`python -m rzero_lib.train_entry PAYLOAD.json`).

`rzero_lib.launch.launch_training` runs this module under `accelerate launch`,
once per process (rank). It reads the payload JSON written by
`launch.make_payload` and calls `rzero_lib.training.train_solver` or
`train_challenger` with the same arguments they take in-process:

- solver: start_model, questions, labels, weights (optional), params
  (`SolverTrainingParams.model_dump(mode="json")`), solver_prompt (PromptSpec
  fields), output_dir, engine (EngineParams), seed.
- challenger: start_model, params (ChallengerTrainingParams), challenger_prompt,
  solver_prompt, num_solver_samples, output_dir, engine, seed,
  equivalence_timeout_s, and the frozen Solver as a running OpenAI-compatible
  server: solver_url + solver_model (the served model's spec, for its
  tokenizer) → `OpenAIServerGenerator.connect`.

Rank 0 writes `train_result.json` (the TrainingResult summary) into
output_dir; the stage's other outputs are written by `training.run_grpo`.

Several processes: `rzero_lib.training.run_grpo` divides TRL's batch
schedule by the number of processes, lets only rank 0 write the model folder,
the log history and the question record (ZeRO-3 / FSDP weights are gathered on
every rank first), and the Challenger's repetition penalty is computed over the
whole step's batch gathered from every rank.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path


def rank_info() -> tuple[int, int]:
    """(global rank, world size) from the launcher's environment (1 process: (0, 1))."""
    return int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))


def training_handles_ranks() -> bool:
    """Whether `rzero_lib.training` supports several processes (it sets SUPPORTS_ACCELERATE_LAUNCH)."""
    from rzero_lib import training

    return bool(getattr(training, "SUPPORTS_ACCELERATE_LAUNCH", False))


def _prompt(data: dict):
    from rzero_lib.prompts import PromptSpec

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
    from rzero_lib.config import ChallengerTrainingParams, EngineParams, SolverTrainingParams
    from rzero_lib.training import train_challenger, train_solver

    rank, world = rank_info()
    if world > 1 and not training_handles_ranks():
        raise RuntimeError(
            f"training on {world} processes needs a rank-aware rzero_lib.training (TRL batch schedule divided by "
            "the number of processes; model and logs written by rank 0 only), which this version does not "
            "have; set the stage's launcher: in_process or num_processes: 1")
    output_dir = Path(payload["output_dir"])
    engine = EngineParams.model_validate(payload.get("engine") or {})
    seed = int(payload.get("seed", 0))
    common = dict(output_dir=output_dir, engine=engine, seed=seed, disable_tqdm=bool(payload.get("disable_tqdm")))
    if payload["role"] == "solver":
        result = train_solver(
            payload["start_model"], payload["questions"], payload["labels"],
            params=SolverTrainingParams.model_validate(payload["params"]),
            solver_prompt=_prompt(payload["solver_prompt"]), weights=payload.get("weights"), **common)
    else:
        from rzero_lib.solver_service import OpenAIServerGenerator

        if not payload.get("solver_url"):
            raise ValueError("challenger payload needs solver_url (a running Solver server)")
        solver = OpenAIServerGenerator.connect(payload["solver_url"],
                                               payload.get("solver_model") or payload["start_model"])
        result = train_challenger(
            payload["start_model"], solver, params=ChallengerTrainingParams.model_validate(payload["params"]),
            challenger_prompt=_prompt(payload["challenger_prompt"]),
            solver_prompt=_prompt(payload["solver_prompt"]),
            num_solver_samples=int(payload["num_solver_samples"]),
            equivalence_timeout_s=payload.get("equivalence_timeout_s"), **common)
    summary = {**result.summary(), "log_history_path": str(result.log_history_path), "rank": rank,
               "world_size": world}
    if rank == 0:
        tmp = output_dir / "train_result.json.tmp"
        tmp.write_text(json.dumps(summary, indent=1))
        os.replace(tmp, output_dir / "train_result.json")
    return summary


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m rzero_lib.train_entry PAYLOAD.json", file=sys.stderr)
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
