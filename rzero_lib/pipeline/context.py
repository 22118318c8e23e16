"""What a stage's code gets: the run, its iteration, parameters and folder (`StageContext`), and what it returns.

Each `run_<stage>(ctx)` reads only the artifacts it names, writes only inside
its own folder (atomically), writes `manifest.json` last (`ctx.finish`), and
returns a `StageResult`. Called on a finished stage it loads the artifacts
instead of recomputing (`recompute=True` redoes the work), so any stage's
notebook can be opened against an existing run (`locate_run_dir` resolves the
notebook's `run_dir` parameter wherever its kernel starts). Failure injection for
tests: `RZERO_FAIL_STAGE=iter_01/voting` makes that stage raise before any work.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from rzero_lib.atomic_files import clean_partials
from rzero_lib.config import RunParams
from rzero_lib.domains import resolve_prompts
from rzero_lib.engine.generation import engine_generator
from rzero_lib.pipeline.resume import stage_params_hash
from rzero_lib.pipeline.rundir import (
    DEFERRED_COMMIT_ENV,
    PARAMS_FILE,
    RunDir,
    stage_key,
    write_manifest,
)
from rzero_lib.prompts import PromptSpec
from rzero_lib.sampling import Generator
from rzero_lib.seeds import derive_seed

FAIL_ENV = "RZERO_FAIL_STAGE"
RUN_DIR_ENV = "RZERO_RUN_DIR"  # the run a notebook opened by hand works on when its run_dir is None


def locate_run_dir(run_dir: str | Path | None) -> Path:
    """The run directory a notebook's `run_dir` parameter names.

    None means $RZERO_RUN_DIR (`make lab RUN=runs/<name>` sets it). An absolute path is taken as it is. A
    relative one is looked up from the current folder and then from each folder above it, so a kernel
    that JupyterLab starts in notebooks/ finds runs/<name> at the repository root. (The pipeline always
    passes an absolute path.)
    """
    if run_dir is None:
        run_dir = os.environ.get(RUN_DIR_ENV)
        if not run_dir:
            raise FileNotFoundError(f"no run directory: set run_dir in the parameters cell, or start JupyterLab "
                                    f"with {RUN_DIR_ENV} naming a run (make lab RUN=runs/<name>)")
    path = Path(run_dir).expanduser()
    if path.is_absolute():
        return path
    here = Path.cwd()
    for base in (here, *here.parents):
        if (base / path / PARAMS_FILE).is_file():
            return (base / path).resolve()
    return (here / path).resolve()  # not a run directory anywhere: RunDir.load_params says so


class StageError(RuntimeError):
    """A stage cannot do its work; the message says why and what to change."""


@dataclass
class StageResult:
    summary: dict
    tables: dict = field(default_factory=dict)  # name -> pandas DataFrame
    loaded: bool = False  # True when read back from a finished stage


@dataclass
class StageContext:
    run: RunDir
    iteration: int | None
    stage: str
    params: RunParams
    folder: Path
    started_at: float

    @classmethod
    def open(cls, run_dir: str | Path | None, iteration: int | None, stage: str) -> StageContext:
        run = RunDir.at(locate_run_dir(run_dir))
        params = run.load_params()
        folder = run.stage_folder(iteration, stage)
        folder.mkdir(parents=True, exist_ok=True)
        clean_partials(folder)
        ctx = cls(run, iteration, stage, params, folder, time.time())
        if os.environ.get(FAIL_ENV) and os.environ[FAIL_ENV] == ctx.key:
            raise StageError(f"failing stage {ctx.key} on purpose ({FAIL_ENV} is set)")
        return ctx

    @property
    def key(self) -> str:
        return stage_key(self.iteration, self.stage)

    @property
    def params_hash(self) -> str:
        """The hash of the parameters that affect this stage (`pipeline.resume.stage_parameters`)."""
        return stage_params_hash(self.params, self.stage)

    @property
    def done(self) -> bool:
        return self.run.is_done(self.folder)

    @property
    def manifest(self) -> dict | None:
        return self.run.manifest_of(self.folder)

    def prompts(self) -> tuple[PromptSpec, PromptSpec]:
        """(Challenger prompt, Solver prompt) of the run."""
        return resolve_prompts(self.params)

    def seed(self, purpose: str) -> int:
        """The seed of one random stream of this stage (`purpose` names it)."""
        return derive_seed(self.params.seed, self.key, purpose)

    def generator(self, spec: str) -> Generator:
        """A generator for `spec` with the run's engine settings."""
        return engine_generator(spec, self.params.engine, seed=self.params.seed)

    def finish(self, *, inputs: dict, outputs: list, summary: dict, extra: dict | None = None) -> dict:
        """Write the stage's manifest (last). Paths inside the run are recorded relative to it. Under the
        driver the manifest is pending until the driver has the executed notebook in place and commits it."""
        portable = self.run.portable
        deferred = os.environ.get(DEFERRED_COMMIT_ENV) == "1"
        manifest = write_manifest(self.folder, stage=self.stage, iteration=self.iteration, inputs=portable(inputs),
                                  outputs=outputs, params_hash=self.params_hash, started_at=self.started_at,
                                  summary=portable(summary), extra=portable(extra or {}), pending=deferred)
        if not deferred:
            self.run.update_state(self.key, manifest)
        return manifest

    def loaded_result(self, **files: str) -> StageResult:
        """The result of this finished stage, read back from its Parquet tables."""
        return StageResult(self.manifest["summary"],
                           {name: pd.read_parquet(self.folder / f) for name, f in files.items()}, loaded=True)
