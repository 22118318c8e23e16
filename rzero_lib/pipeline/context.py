"""What a stage's code gets: the run, its iteration, parameters and folder (`StageContext`), and what it returns.

Each `run_<stage>(ctx)` reads only the artifacts it names, writes only inside
its own folder (atomically), writes `manifest.json` last (`ctx.finish`), and
returns a `StageResult`. Called on a finished stage it loads the artifacts
instead of recomputing (`recompute=True` redoes the work), so any stage's
notebook can be opened against an existing run. Failure injection for tests:
`RZERO_FAIL_STAGE=iter_01/voting` makes that stage raise before any work.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from rzero_lib.atomic_files import clean_partials
from rzero_lib.config import RunParams, params_hash
from rzero_lib.domains import resolve_prompts
from rzero_lib.engine.generation import engine_generator
from rzero_lib.pipeline.rundir import RunDir, stage_key, write_manifest
from rzero_lib.prompts import PromptSpec
from rzero_lib.sampling import Generator
from rzero_lib.seeds import derive_seed

FAIL_ENV = "RZERO_FAIL_STAGE"


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
    def open(cls, run_dir: str | Path, iteration: int | None, stage: str) -> StageContext:
        run = RunDir.at(run_dir)
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
        manifest = write_manifest(self.folder, stage=self.stage, iteration=self.iteration, inputs=inputs,
                                  outputs=outputs, params_hash=params_hash(self.params), started_at=self.started_at,
                                  summary=summary, extra=extra)
        self.run.update_state(self.key, manifest)
        return manifest

    def loaded_result(self, **files: str) -> StageResult:
        """The result of this finished stage, read back from its Parquet tables."""
        return StageResult(self.manifest["summary"],
                           {name: pd.read_parquet(self.folder / f) for name, f in files.items()}, loaded=True)
