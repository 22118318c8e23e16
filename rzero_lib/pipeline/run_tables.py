"""Reading a run's finished work: which stages are done, and their tables across iterations.

Only finished stages count (a stage folder without `manifest.json` is ignored),
so a run stopped early reads as far as it got.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from rzero_lib.domains import get_domain
from rzero_lib.evaluation.evaluate import SCORE_COLUMNS
from rzero_lib.pipeline.rundir import ITERATION_STAGES, RunDir, parse_iteration_dir_name

LOG_HISTORY = "log_history.jsonl"


def as_run(run: RunDir | str | Path) -> RunDir:
    return run if isinstance(run, RunDir) else RunDir.at(run)


def run_iterations(run: RunDir) -> list[int]:
    """Iteration numbers that have a folder (`iter_KK`), sorted."""
    found = (parse_iteration_dir_name(p.name) for p in run.path.glob("iter_*") if p.is_dir())
    return sorted(k for k in found if k is not None)


def stages_done(run: RunDir) -> dict[str, list[int]]:
    """Finished iterations of every stage (a stage is finished when its manifest exists)."""
    done: dict[str, list[int]] = {stage: [] for stage in ITERATION_STAGES}
    for k in run_iterations(run):
        for stage in ITERATION_STAGES:
            if run.is_done(run.stage_dir(k, stage)):
                done[stage].append(k)
    return done


def stage_tables(run: RunDir | str | Path, stage: str, filename: str,
                 iterations: Sequence[int] | None = None) -> pd.DataFrame:
    """`filename` of every finished `stage` (or of `iterations`), concatenated, with an `iteration` column."""
    run = as_run(run)
    iterations = stages_done(run)[stage] if iterations is None else iterations
    frames = [pd.read_parquet(path).assign(iteration=k) for k in iterations
              if (path := run.stage_dir(k, stage) / filename).exists()]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def vote_difficulty(votes: pd.DataFrame, domain: str) -> pd.Series:
    """Each voted question's difficulty: the `difficulty` column of votes.parquet, or (votes written before
    the column existed, also when a run mixes both: the iterations' tables concatenate with NaN there) the
    domain's rule (`Domain.difficulty`) applied now. NaN where there is none."""
    stored = (votes["difficulty"].astype(float) if "difficulty" in votes.columns
              else pd.Series(float("nan"), index=votes.index, dtype=float))
    missing = stored.isna()
    if missing.any() and "question" in votes.columns:
        rule = get_domain(domain).difficulty
        stored = stored.copy()
        stored[missing] = [rule(q) for q in votes.loc[missing, "question"]]
    return stored.astype(float)


def read_log_history(path: Path) -> list[dict]:
    """A trainer's log history (one JSON object per line); [] when the file does not exist."""
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []


def load_scores(run: RunDir | str | Path) -> pd.DataFrame:
    """All evaluation scores of a run: one row per (iteration, benchmark), `iteration` first."""
    scores = stage_tables(run, "evaluation", "scores.parquet")
    if scores.empty:
        return pd.DataFrame(columns=["iteration", *SCORE_COLUMNS])
    return scores[["iteration", *(c for c in scores.columns if c != "iteration")]]
