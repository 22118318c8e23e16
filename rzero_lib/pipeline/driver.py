"""The pipeline driver: runs the stage notebooks in order with papermill, and resumes.

Order: base evaluation (iteration 0); for k = 1..K challenger training →
question generation → voting → (verification) → solver training → evaluation;
then (optionally) the supervised stage and its evaluation; then the analysis
report. Each stage runs in its own kernel and leaves its executed notebook,
errors included, in its stage folder. A stage whose `manifest.json` exists is
skipped; parameters that differ from the frozen `params.yaml` are refused (only
`iterations`, `kernel_name` and the `supervised_training` section may change).
The driver knows stages and paths, not models: it never imports torch.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

from rzero_lib.atomic_files import write_text_atomic
from rzero_lib.config import RunParams, diff_params, params_hash, params_to_dict
from rzero_lib.pipeline.rundir import ANALYSIS_STAGE, MANIFEST, RunDir, stage_key

NOTEBOOKS = {
    "challenger_training": "01_challenger_training.ipynb",
    "question_generation": "02_question_generation.ipynb",
    "voting": "03_voting.ipynb",
    "verification": "03b_verification.ipynb",
    "solver_training": "04_solver_training.ipynb",
    "evaluation": "05_evaluation.ipynb",
    "analysis": "06_analysis.ipynb",
    "supervised_training": "08_supervised_training.ipynb",
    "supervised_evaluation": "05_evaluation.ipynb",  # the iterations' evaluation, told its stage
}
# Parameters (top-level names, sections included) that may change on an existing run without invalidating its
# finished iterations: the stages that depend on them are redone (PARAMS_DEPENDENT_STAGES).
MUTABLE_PARAMS = ("iterations", "kernel_name", "supervised_training")
# Stages that depend on the mutable parameters: redone when the run's parameters changed since they ran.
PARAMS_DEPENDENT_STAGES = (ANALYSIS_STAGE, "supervised_training", "supervised_evaluation")


class PipelineError(RuntimeError):
    """A stage failed or the run directory cannot be used; the message says which and why."""


def notebooks_dir() -> Path:
    env = os.environ.get("RZERO_NOTEBOOKS_DIR")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "notebooks"


@dataclass(frozen=True)
class StageRun:
    iteration: int | None
    stage: str

    @property
    def key(self) -> str:
        return stage_key(self.iteration, self.stage)

    @property
    def notebook(self) -> Path:
        return notebooks_dir() / NOTEBOOKS[self.stage]

    def folder(self, run: RunDir) -> Path:
        return run.stage_folder(self.iteration, self.stage)

    @property
    def parameters(self) -> dict:
        """What papermill injects besides the run directory; a notebook that serves several stages is told which."""
        shared = list(NOTEBOOKS.values()).count(NOTEBOOKS[self.stage]) > 1
        return {"iteration": self.iteration, **({"stage": self.stage} if shared else {})}


def plan(params: RunParams) -> list[StageRun]:
    """Every stage of a run, in execution order."""
    runs = [StageRun(0, "evaluation")]
    supervised = params.supervised_training
    labelled_only = supervised.enabled and supervised.start_from == "base"  # the control runs no iteration
    for k in range(1, 0 if labelled_only else params.iterations + 1):
        stages = ["challenger_training", "question_generation", "voting"]
        if params.verifier.enabled:
            stages.append("verification")
        stages += ["solver_training", "evaluation"]
        runs += [StageRun(k, s) for s in stages]
    if supervised.enabled:
        runs += [StageRun(None, "supervised_training"), StageRun(None, "supervised_evaluation")]
    runs.append(StageRun(None, ANALYSIS_STAGE))
    return runs


def default_run_dir(params: RunParams, root: str | Path = "runs") -> Path:
    return Path(root) / params.run_name


def prepare_run_dir(params: RunParams, run_dir: str | Path | None = None, fresh: bool = False) -> RunDir:
    """Create or reopen the run directory; refuse when frozen parameters differ."""
    path = Path(run_dir) if run_dir else default_run_dir(params)
    if fresh and RunDir.at(path).exists():
        path = path.with_name(f"{path.name}-{time.strftime('%Y%m%d-%H%M%S')}")
    run = RunDir.at(path)
    if run.exists():
        frozen = run.load_params_dict()
        current = params_to_dict(params)
        diffs = [d for d in diff_params(frozen, current) if d.split(":")[0].split(".")[0] not in MUTABLE_PARAMS]
        if diffs:
            raise PipelineError(
                f"{run.path} was started with different parameters:\n  " + "\n  ".join(diffs)
                + "\nUse the same parameters to resume, --fresh to start a new run directory, or another --run-dir.")
        if current != frozen:
            run.freeze_params(params)  # extend the run, or add its supervised stage; finished iterations stay valid
    else:
        run.freeze_params(params)
    return run


def log(msg: str) -> None:
    print(f"[rzero {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def format_seconds(seconds: float) -> str:
    return f"{seconds / 60:.1f} min" if seconds >= 90 else f"{seconds:.1f} s"


def stage_is_current(run: RunDir, folder: Path, params: RunParams) -> bool:
    """The stage was made with these parameters (a run extended by iterations needs a new report and a new
    supervised stage on its new last Solver)."""
    manifest = run.manifest_of(folder)
    return manifest is not None and manifest.get("params_hash") == params_hash(params)


def run_stage(run: RunDir, stage: StageRun, kernel_name: str, progress: bool = True) -> float:
    """Execute one stage notebook; returns its wall time. Raises PipelineError on failure."""
    import papermill as pm

    folder = stage.folder(run)
    folder.mkdir(parents=True, exist_ok=True)
    output = folder / "notebook.ipynb"
    if not stage.notebook.exists():
        raise PipelineError(f"notebook {stage.notebook} is missing (set RZERO_NOTEBOOKS_DIR?)")
    t0 = time.time()
    try:
        pm.execute_notebook(str(stage.notebook), str(output),
                            parameters={"run_dir": str(run.path), **stage.parameters},
                            kernel_name=kernel_name, progress_bar=progress, cwd=str(folder),
                            log_output=False, request_save_on_cell_execute=True,
                            kernel_manager_class=ipc_kernel_manager())
    except pm.PapermillExecutionError as e:
        raise PipelineError(f"stage {stage.key} failed in cell {e.exec_count}: {e.ename}: {e.evalue}\n"
                            f"  executed notebook (with the error): {output}") from None
    if not run.is_done(folder):
        raise PipelineError(f"stage {stage.key} finished without writing {folder / MANIFEST}; "
                            f"see {output}")
    if stage.stage == ANALYSIS_STAGE:
        export_html(output, folder / "report.html")
    return time.time() - t0


def ipc_kernel_manager():
    """Kernels on local IPC sockets rather than TCP: nothing listens on the network,
    and the kernel stops printing its unencrypted-TCP warning into every stage."""
    from jupyter_client.manager import AsyncKernelManager

    class IPCKernelManager(AsyncKernelManager):
        def __init__(self, **kwargs):
            kwargs.setdefault("transport", "ipc")
            super().__init__(**kwargs)

    return IPCKernelManager


def export_html(notebook: Path, html: Path) -> None:
    """A self-contained HTML copy of the executed analysis notebook (images embedded)."""
    import nbformat
    from nbconvert import HTMLExporter

    nb = nbformat.read(notebook, as_version=4)
    body, _ = HTMLExporter(embed_images=True, exclude_input_prompt=True).from_notebook_node(nb)
    write_text_atomic(html, body)


def run_pipeline(params: RunParams, run_dir: str | Path | None = None, *, fresh: bool = False,
                 kernel_name: str | None = None, progress: bool = True) -> RunDir:
    """Run (or resume) every stage; returns the run directory."""
    run = prepare_run_dir(params, run_dir, fresh=fresh)
    kernel = kernel_name or params.kernel_name
    stages = plan(params)
    log(f"run directory {run.path} ({len(stages)} stages, {params.iterations} iterations, model {params.model})")
    t_run = time.time()
    for i, stage in enumerate(stages, 1):
        folder = stage.folder(run)
        done = run.is_done(folder)
        if done and stage.stage in PARAMS_DEPENDENT_STAGES and not stage_is_current(run, folder, params):
            (folder / MANIFEST).unlink()  # the run grew: redo it on every iteration
            done = False
        if done:
            log(f"[{i}/{len(stages)}] {stage.key}: done, skipped")
            continue
        log(f"[{i}/{len(stages)}] {stage.key}: started")
        seconds = run_stage(run, stage, kernel, progress=progress)
        log(f"[{i}/{len(stages)}] {stage.key}: finished in {format_seconds(seconds)}")
    log(f"run complete in {format_seconds(time.time() - t_run)}: report in {run.report_dir}")
    return run
