"""A run's finished artifacts in memory: votes, questions, training logs, scores, verdicts, across iterations."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from rzero_lib.pipeline.run_tables import (
    LOG_HISTORY,
    load_scores,
    read_log_history,
    stage_tables,
    stages_done,
)
from rzero_lib.pipeline.rundir import RunDir, iteration_dir_name


def analysis_inputs(run: RunDir) -> dict:
    """What the report depends on: every finished stage and when it finished."""
    inputs = {}
    for stage, iterations in stages_done(run).items():
        for k in iterations:
            manifest = run.manifest_of(run.stage_dir(k, stage)) or {}
            inputs[f"{iteration_dir_name(k)}/{stage}"] = manifest.get("finished_at")
    return dict(sorted(inputs.items()))


@dataclass
class RunData:
    """The finished artifacts of a run, concatenated over iterations."""

    done: dict[str, list[int]]
    votes: pd.DataFrame
    questions: pd.DataFrame
    challenger_log: pd.DataFrame
    solver_log: pd.DataFrame
    scores: pd.DataFrame
    model_hashes: dict[int, str] = field(default_factory=dict)  # Solver_k -> its output hash
    verdicts: pd.DataFrame = field(default_factory=pd.DataFrame)  # the optional Verifier's decisions



def load_run_data(run: RunDir) -> RunData:
    done = stages_done(run)
    challenger, solver = [], []
    hashes = {}
    for stage, sink in (("challenger_training", challenger), ("solver_training", solver)):
        for k in done[stage]:
            rows = read_log_history(run.stage_dir(k, stage) / LOG_HISTORY)
            if rows:
                df = pd.DataFrame(rows)
                df.insert(0, "iteration", k)
                sink.append(df)
    for k in done["solver_training"]:
        manifest = run.manifest_of(run.stage_dir(k, "solver_training")) or {}
        hashes[k] = (manifest.get("outputs", {}).get("model") or {}).get("hash") or str(manifest.get("finished_at"))

    def cat(frames):
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()

    return RunData(done, stage_tables(run, "voting", "votes.parquet", done["voting"]),
                   stage_tables(run, "question_generation", "questions.parquet", done["question_generation"]),
                   cat(challenger), cat(solver), load_scores(run), hashes,
                   stage_tables(run, "verification", "verdicts.parquet", done["verification"]))
