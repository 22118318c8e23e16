"""`rzero compare`: the paper's three arms (R-Zero only, labels only, R-Zero then labels) over seeds, run or resumed.

One parameter file with the supervised stage enabled (`start_from: last_solver`)
gives, per seed, two runs that differ in one switch:

- the main run (`<run_name>`, or `<run_name>-seed<s>` for another seed): R-Zero's
  iterations, then the supervised stage on the last Solver. Its last iteration's
  evaluation is the **R-Zero only** arm, its supervised evaluation the **R-Zero
  then labels** arm;
- the control (`<run_name>-labelled_only[-seed<s>]`, `start_from: base`): the same
  supervised stage on the base model, no iterations: the **labels only** arm.

Both get the same labelled data and budget. Each run resumes like any run (an
existing R-Zero run of the same parameters is reused: the supervised section may
be added to it). Then notebook 10 draws the comparison into the output folder.
docs/supervised.md.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from rzero_lib.atomic_files import write_json_atomic
from rzero_lib.config import ParamsError, RunParams, params_from_dict, params_to_dict
from rzero_lib.pipeline.driver import (
    KERNEL_START_TIMEOUT_S,
    NOTEBOOK,
    RUNNING_NOTEBOOK,
    StageKernels,
    keep_failed_notebook,
    kernel_dir_prefix,
    log,
    run_pipeline,
)
from rzero_lib.pipeline.notebooks import check_notebooks, notebooks_dir, stage_notebook
from rzero_lib.pipeline.rundir import PipelineError, stage_key

COMPARISON_NOTEBOOK = "10_supervised_comparison.py"
ARMS_FILE = "arms.json"
ARM_LABELS = {
    "base": "base model",
    "rzero_only": "R-Zero only",
    "labelled_only": "labels only",
    "rzero_then_labelled": "R-Zero, then labels",
}
CONTROL_SUFFIX = "-labelled_only"


@dataclass(frozen=True)
class SeedRuns:
    """The main run and the labelled-only control of one seed."""

    seed: int
    main: RunParams
    control: RunParams
    main_dir: Path
    control_dir: Path

    def arms(self) -> list[dict]:
        """Where each arm's evaluation is: run directory and stage folder."""
        last = stage_key(self.main.iterations, "evaluation")
        supervised = stage_key(None, "supervised_evaluation")
        return [{"arm": arm, "seed": self.seed, "run_dir": str(run), "stage": stage}
                for arm, run, stage in (("base", self.main_dir, stage_key(0, "evaluation")),
                                        ("rzero_only", self.main_dir, last),
                                        ("labelled_only", self.control_dir, supervised),
                                        ("rzero_then_labelled", self.main_dir, supervised))]


def variant(params: RunParams, *, seed: int, run_name: str, start_from: str) -> RunParams:
    data = params_to_dict(params)
    data.update(seed=seed, run_name=run_name)
    data["supervised_training"]["start_from"] = start_from
    return params_from_dict(data)


def comparison_runs(params: RunParams, seeds: list[int] | None, runs_root: str | Path) -> list[SeedRuns]:
    """The two runs of every seed (default: the parameter file's seed)."""
    s = params.supervised_training
    if not s.enabled:
        raise ParamsError("rzero compare needs supervised_training.enabled: true (the labelled dataset and budget "
                          "the arms share)")
    if s.start_from != "last_solver":
        raise ParamsError("rzero compare needs supervised_training.start_from: last_solver (the labelled-only "
                          "control is made from it)")
    root = Path(runs_root)
    out = []
    for seed in seeds if seeds else [params.seed]:
        suffix = "" if seed == params.seed else f"-seed{seed}"
        main_name, control_name = params.run_name + suffix, params.run_name + CONTROL_SUFFIX + suffix
        out.append(SeedRuns(seed, variant(params, seed=seed, run_name=main_name, start_from="last_solver"),
                            variant(params, seed=seed, run_name=control_name, start_from="base"),
                            root / main_name, root / control_name))
    return out


def default_output_dir(params: RunParams, runs_root: str | Path) -> Path:
    return Path(runs_root) / f"{params.run_name}-comparison"


def run_comparison(params: RunParams, *, seeds: list[int] | None = None, runs_root: str | Path = "runs",
                   output_dir: str | Path | None = None, run: bool = True, kernel_name: str | None = None,
                   progress: bool = True) -> Path:
    """Run (or resume) every arm's runs unless `run` is false, then execute the comparison notebook; returns the
    output folder (figure, table, summary.json, the executed notebook)."""
    runs = comparison_runs(params, seeds, runs_root)
    out = Path(output_dir) if output_dir else default_output_dir(params, runs_root)
    out.mkdir(parents=True, exist_ok=True)
    if run:
        for seed_runs in runs:
            for p, run_dir in ((seed_runs.main, seed_runs.main_dir), (seed_runs.control, seed_runs.control_dir)):
                log(f"compare: seed {seed_runs.seed}, run {run_dir}")
                run_pipeline(p, run_dir, kernel_name=kernel_name, progress=progress)
    arms = [arm for seed_runs in runs for arm in seed_runs.arms()]
    write_json_atomic(out / ARMS_FILE, {"parameters": params.run_name, "model": params.model,
                                        "seeds": [r.seed for r in runs], "arm_labels": ARM_LABELS, "arms": arms})
    execute_comparison_notebook(out, kernel_name or params.kernel_name, progress=progress)
    return out


def execute_comparison_notebook(output_dir: Path, kernel_name: str, progress: bool = True) -> Path:
    """Notebook 10 on `output_dir/arms.json`, executed into `output_dir/notebook.ipynb` (written under its running
    name first, like a stage's; its kernel is stopped with everything it started, also on Ctrl-C)."""
    import papermill as pm

    notebook = notebooks_dir() / COMPARISON_NOTEBOOK
    check_notebooks([notebook])
    executed, running = output_dir / NOTEBOOK, output_dir / RUNNING_NOTEBOOK
    runtime = Path(tempfile.mkdtemp(prefix=kernel_dir_prefix()))
    kernels = StageKernels(runtime, {})
    try:
        kernels.run(lambda: pm.execute_notebook(
            stage_notebook(notebook), str(running), parameters={"output_dir": str(output_dir.resolve())},
            kernel_name=kernel_name, progress_bar=progress, cwd=str(output_dir), log_output=False,
            start_timeout=KERNEL_START_TIMEOUT_S, kernel_manager_class=kernels.manager_class()))
        os.replace(running, executed)
    except pm.PapermillExecutionError as e:
        raise PipelineError(f"the comparison notebook failed in cell {e.exec_count}: {e.ename}: {e.evalue}\n"
                            f"  executed notebook (with the error): {executed}") from None
    finally:
        kernels.kill_remaining()
        keep_failed_notebook(running, executed)
        shutil.rmtree(runtime, ignore_errors=True)
    return executed


def arm_folder(arm: dict) -> Path:
    """The evaluation folder of one arm (see `SeedRuns.arms`)."""
    return Path(arm["run_dir"]) / arm["stage"]
