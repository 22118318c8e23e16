"""Verified resume: which finished stages can be reused, which must be redone, and what is wrong.

Before anything runs, every finished stage (one with `manifest.json`) is
checked against what it recorded: each output's size and content hash (the
files later stages read; `rundir.hash_path` hashes large files by size plus
their ends, so this stays cheap), and its parameter hash against the
parameters now in force. A stage's parameter hash covers only the parameters
that affect what it computes (`stage_parameters`): the model, seed, domain,
prompts and engine, plus its own section — so `voting.num_samples` concerns
voting, while `iterations`, `kernel_name`, `run_name`, `preset` (its values
are in the parameters) and the placement settings (`EXECUTION_ONLY`) concern
no stage at all. A stage is redone when
it has no manifest or when a stage it reads from (`upstream_keys`) is redone.

A finished stage whose outputs or parameters differ is a `ResumeError` naming
the stage, the file or the fields, and the fix; the report (`analysis`) is
derived from everything and is simply redone. So are the optional supervised
stage and its evaluation when their parameters changed (`REDONE_WHEN_CHANGED`):
they come after the last iteration, so a run's `supervised_training` section may
be added or changed without touching its iterations; the supervised stage's
hash covers `iterations` when it starts from the last Solver. `rzero status` shows the same
states (`check_run`).
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from pathlib import Path

from rzero_lib.config import RunParams, diff_params, params_hash, params_to_dict
from rzero_lib.pipeline.rundir import (
    ANALYSIS_STAGE,
    MANIFEST,
    RunDir,
    RunDirError,
    hash_path,
    path_size,
    stage_key,
)

# Parameters that say where and how to run, not what to compute: they may change on a finished run
# without invalidating any stage (the report covers `iterations` and is redone when it grows).
EXECUTION_ONLY = (
    "run_name", "kernel_name", "iterations", "preset",  # (a preset's values are in the parameters themselves)
    "engine.device", "engine.gpu_memory_utilization", "engine.enforce_eager", "engine.tensor_parallel_size",
    "engine.data_parallel_size", "engine.pipeline_parallel_size", "engine.distributed_executor_backend",
    *(f"{role}.{name}" for role in ("challenger_training", "solver_training")
      for name in ("launcher", "num_processes", "accelerate_config", "vllm_gpu_memory_utilization",
                   "vllm_tensor_parallel_size", "gradient_checkpointing")),
    *(f"supervised_training.{name}" for name in ("launcher", "num_processes", "accelerate_config",
                                                 "vllm_gpu_memory_utilization", "gradient_checkpointing")),
    "challenger_training.solver_service", "challenger_training.solver_server_gpus",
    "challenger_training.solver_server_gpu_memory_utilization",
    "analysis.export_html",
)
COMMON = ("model", "seed", "domain", "prompts", "engine")  # every stage generates or trains with these
STAGE_SECTIONS = {
    # the reward's vote follows voting's vote rules (rzero_lib.voting.vote_rules_of)
    "challenger_training": ("challenger_training", "voting.no_answer_vote", "voting.merge_no_answers",
                            "voting.equivalence_timeout_s"),
    "question_generation": ("question_generation",),
    "voting": ("voting",),
    "verification": ("verifier",),
    "solver_training": ("solver_training", "verifier.enabled"),
    "evaluation": ("evaluation",),
    # the labelled rows that are evaluation questions are dropped: the benchmarks decide which
    "supervised_training": ("supervised_training", "evaluation.enabled", "evaluation.benchmarks",
                            "evaluation.data_dir"),
    "supervised_evaluation": ("evaluation",),
}
# Stages after the last iteration that are redone, not refused, when their parameters changed (the report is
# also redone when its outputs changed).
REDONE_WHEN_CHANGED = (ANALYSIS_STAGE, "supervised_training", "supervised_evaluation")
# Which earlier stages a stage reads from (iteration offset, stage): models and tables.
STAGE_INPUTS = {
    "challenger_training": ((-1, "challenger_training"), (-1, "solver_training")),
    "question_generation": ((0, "challenger_training"),),
    "voting": ((0, "question_generation"), (-1, "solver_training")),
    "verification": ((0, "voting"), (-1, "solver_training")),
    "solver_training": ((0, "voting"), (0, "verification"), (-1, "solver_training")),
    "evaluation": ((0, "solver_training"),),
}
FIX = ("To go on, either start a new run directory (--fresh), or remove that stage's manifest.json to redo it "
       "and every stage after it (its outputs are then rewritten).")

# states of a stage (`StageCheck.state`)
DONE, PENDING, FAILED, INTERRUPTED, OUTDATED = "done", "pending", "failed", "interrupted", "outdated"
MODIFIED, PARAMS_CHANGED, UNREADABLE = "modified", "params changed", "unreadable"
PROBLEMS = (MODIFIED, PARAMS_CHANGED, UNREADABLE)


class ResumeError(RunDirError):
    """Finished stages do not match their records or the parameters now in force."""


def _get(data: dict, dotted: str):
    node = data
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def _drop(data: dict, dotted: str) -> None:
    *parents, last = dotted.split(".")
    node = data
    for part in parents:
        node = node.get(part) if isinstance(node, dict) else None
    if isinstance(node, dict):
        node.pop(last, None)


def stage_parameters(params: RunParams, stage: str) -> dict:
    """The parameters that affect what `stage` computes (dotted name -> value; sections as dicts).

    The report and any stage this module does not know depend on every
    parameter but the execution-only ones (the report on `iterations` too).
    """
    data = copy.deepcopy(params_to_dict(params))
    for dotted in EXECUTION_ONLY:
        if not (stage == ANALYSIS_STAGE and dotted == "iterations"):
            _drop(data, dotted)
    if stage not in STAGE_SECTIONS:
        return data
    out = {name: _get(data, name) for name in (*COMMON, *STAGE_SECTIONS[stage])}
    if stage == "solver_training" and params.solver_training.label_source == "oracle":
        out["analysis.oracle"] = _get(data, "analysis.oracle")
    if stage == "supervised_training" and params.supervised_training.start_from == "last_solver":
        out["iterations"] = params.iterations  # which Solver it starts from
    return out


def stage_params_hash(params: RunParams, stage: str) -> str:
    return params_hash(stage_parameters(params, stage))


def changed_fields(before: RunParams, now: RunParams, stage: str) -> list[str]:
    """`field: old -> new` for the parameters of `stage` that differ."""
    return diff_params(stage_parameters(before, stage), stage_parameters(now, stage))


def upstream_keys(stage, stages: list) -> list[str]:
    """Keys of the planned stages that `stage` reads from (stages: the plan, in order; items have
    `.iteration`, `.stage`, `.key`). Unknown stages depend on every stage planned before them, and every
    stage depends on unknown stages planned before it (a safe default for stages added later)."""
    planned = [s.key for s in stages]
    before = planned[:planned.index(stage.key)] if stage.key in planned else planned
    if stage.stage == ANALYSIS_STAGE:
        return [k for k in planned if k != stage.key]
    if stage.stage not in STAGE_INPUTS:
        return before
    known = {stage_key(s.iteration, s.stage) for s in stages if s.stage in STAGE_INPUTS}
    deps = [stage_key(stage.iteration + offset, name) for offset, name in STAGE_INPUTS[stage.stage]
            if stage.iteration + offset >= 1]
    unknown_before = [k for k in before if k not in known]
    return [k for k in planned if k in deps] + unknown_before


@dataclass
class StageCheck:
    stage: object  # the planned stage (driver.StageRun)
    folder: Path
    state: str
    problem: str = ""  # what differs, for MODIFIED / PARAMS_CHANGED / UNREADABLE / OUTDATED
    manifest: dict | None = None

    @property
    def key(self) -> str:
        return self.stage.key


def output_problem(folder: Path, manifest: dict) -> str:
    """The first recorded output that is missing or differs in size or content ("" when all match)."""
    for name, record in (manifest.get("outputs") or {}).items():
        path = folder / name
        if not path.exists():
            return f"{path} is missing"
        size = path_size(path)
        if record.get("bytes") is not None and size != record["bytes"]:
            return f"{path} has changed since the stage finished ({record['bytes']} bytes then, {size} now)"
        if record.get("hash") and hash_path(path) != record["hash"]:
            return f"{path} has changed since the stage finished (same size, different content)"
    return ""


def params_problem(manifest: dict, frozen: RunParams | None, now: RunParams, stage: str) -> str:
    """Why a finished stage's parameters differ from those now in force ("" when they agree).

    The fields are named by comparing with the run's frozen `params.yaml`;
    when those agree, a differing hash comes from an older manifest format or
    newly added parameters, and the stage is kept.
    """
    if manifest.get("params_scope") == "stage" and manifest.get("params_hash") == stage_params_hash(now, stage):
        return ""
    if frozen is None:
        return ""
    fields = changed_fields(frozen, now, stage)
    return ("it ran with other parameters: " + "; ".join(fields)) if fields else ""


def notebook_state(folder: Path) -> str:
    """A stage without a manifest: interrupted (its notebook still has its running name), failed (papermill
    marked its notebook with the exception) or pending."""
    if (folder / "notebook.running.ipynb").exists():
        return INTERRUPTED
    try:
        notebook = json.loads((folder / "notebook.ipynb").read_text())
    except (OSError, ValueError):
        return PENDING
    return FAILED if notebook.get("metadata", {}).get("papermill", {}).get("exception") else PENDING


def check_run(run: RunDir, params: RunParams, stages: list, frozen: RunParams | None = None) -> list[StageCheck]:
    """The state of every planned stage against `params` (the parameters now in force) and the files on disk.

    `frozen`: the parameters recorded in the run (default: its params.yaml), used to name changed fields.
    """
    if frozen is None and run.params_file.exists():
        frozen = run.load_params()
    checks: dict[str, StageCheck] = {}
    for stage in stages:
        folder = stage.folder(run)
        try:
            manifest = run.manifest_of(folder)
        except RunDirError:
            checks[stage.key] = StageCheck(stage, folder, UNREADABLE, "its manifest is not valid JSON")
            continue
        if manifest is None:
            checks[stage.key] = StageCheck(stage, folder, notebook_state(folder))
            continue
        redone = [k for k in upstream_keys(stage, stages) if k in checks and checks[k].state != DONE]
        if redone:
            checks[stage.key] = StageCheck(stage, folder, OUTDATED, f"{redone[0]} is redone", manifest)
            continue
        problem = output_problem(folder, manifest)
        state = MODIFIED if problem else DONE
        if not problem:
            problem = params_problem(manifest, frozen, params, stage.stage)
            state = PARAMS_CHANGED if problem else DONE
        if (state == PARAMS_CHANGED and stage.stage in REDONE_WHEN_CHANGED) or (problem and stage.stage == ANALYSIS_STAGE):
            state = OUTDATED  # after the iterations (the report: derived from everything): redo it
        checks[stage.key] = StageCheck(stage, folder, state, problem, manifest)
    return list(checks.values())


def resume_problems(checks: list[StageCheck]) -> str:
    """The message of a `ResumeError` for the stages that cannot be reused ("" when there are none)."""
    bad = [c for c in checks if c.state in PROBLEMS]
    if not bad:
        return ""
    lines = [f"  {c.key}: {c.problem} (its manifest: {c.folder / MANIFEST})" for c in bad[:8]]
    more = f"\n  ... and {len(bad) - 8} more" if len(bad) > 8 else ""
    return ("finished stages do not match what they recorded or the parameters now in force, so nothing was "
            "run:\n" + "\n".join(lines) + more + "\n" + FIX)
