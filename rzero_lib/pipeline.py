"""The pipeline driver: runs the stage notebooks in order with papermill.

Order: base evaluation (iteration 0); then for k = 1..K: challenger training →
question generation → voting → (verification, when enabled) → solver training
→ evaluation; then the analysis report. Each stage runs in its own kernel (its
memory is released when it ends) and its executed notebook is saved in its
stage folder, errors included.

Resume: a stage whose `manifest.json` exists is skipped, so the same command
on an existing run directory continues at the first unfinished stage. If the
resolved parameters differ from the frozen `params.yaml`, the driver refuses
and lists the fields (only `iterations` may grow, to extend a run); `fresh`
starts a new run directory instead.

The driver knows stages and paths, not models: it never imports torch.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

from rzero_lib.config import RunParams, diff_params, params_hash, params_to_dict
from rzero_lib.rundir import RunDir, iteration_dir_name

NOTEBOOKS = {
    "challenger_training": "01_challenger_training.ipynb",
    "question_generation": "02_question_generation.ipynb",
    "voting": "03_voting.ipynb",
    "verification": "03b_verification.ipynb",
    "solver_training": "04_solver_training.ipynb",
    "evaluation": "05_evaluation.ipynb",
    "analysis": "06_analysis.ipynb",
}
# Parameters that may change on an existing run without invalidating finished stages.
MUTABLE_PARAMS = ("iterations", "kernel_name")


class PipelineError(RuntimeError):
    """A stage failed or the run directory cannot be used; the message says which and why."""


def notebooks_dir() -> Path:
    env = os.environ.get("RZERO_NOTEBOOKS_DIR")
    return Path(env) if env else Path(__file__).resolve().parent.parent / "notebooks"


@dataclass(frozen=True)
class StageRun:
    iteration: int | None
    stage: str

    @property
    def key(self) -> str:
        return "report" if self.stage == "analysis" else f"{iteration_dir_name(self.iteration)}/{self.stage}"

    @property
    def notebook(self) -> Path:
        return notebooks_dir() / NOTEBOOKS[self.stage]

    def folder(self, run: RunDir) -> Path:
        return run.report_dir if self.stage == "analysis" else run.stage_dir(self.iteration, self.stage)


def plan(params: RunParams) -> list[StageRun]:
    """Every stage of a run, in execution order."""
    runs = [StageRun(0, "evaluation")]
    for k in range(1, params.iterations + 1):
        stages = ["challenger_training", "question_generation", "voting"]
        if params.verifier.enabled:
            stages.append("verification")
        stages += ["solver_training", "evaluation"]
        runs += [StageRun(k, s) for s in stages]
    runs.append(StageRun(None, "analysis"))
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
        diffs = [d for d in diff_params(frozen, current) if d.split(":")[0] not in MUTABLE_PARAMS]
        if diffs:
            raise PipelineError(
                f"{run.path} was started with different parameters:\n  " + "\n  ".join(diffs)
                + "\nUse the same parameters to resume, --fresh to start a new run directory, or another --run-dir.")
        if current["iterations"] != frozen.get("iterations"):
            run.freeze_params(params)  # extend (or shorten) the run; finished stages stay valid
    else:
        run.freeze_params(params)
    return run


def _log(msg: str) -> None:
    print(f"[rzero {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def _fmt(seconds: float) -> str:
    return f"{seconds / 60:.1f} min" if seconds >= 90 else f"{seconds:.1f} s"


def analysis_is_current(run: RunDir, params: RunParams) -> bool:
    """The report was made with these parameters (a run extended by iterations needs a new one)."""
    manifest = run.manifest_of(run.report_dir)
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
                            parameters={"run_dir": str(run.path), "iteration": stage.iteration},
                            kernel_name=kernel_name, progress_bar=progress, cwd=str(folder),
                            log_output=False, request_save_on_cell_execute=True,
                            kernel_manager_class=_ipc_kernel_manager())
    except pm.PapermillExecutionError as e:
        raise PipelineError(f"stage {stage.key} failed in cell {e.exec_count}: {e.ename}: {e.evalue}\n"
                            f"  executed notebook (with the error): {output}") from None
    if not run.is_done(folder):
        raise PipelineError(f"stage {stage.key} finished without writing {folder / 'manifest.json'}; "
                            f"see {output}")
    if stage.stage == "analysis":
        _export_html(output, folder / "report.html")
    return time.time() - t0


def _ipc_kernel_manager():
    """Kernels on local IPC sockets rather than TCP: nothing listens on the network,
    and the kernel stops printing its unencrypted-TCP warning into every stage."""
    from jupyter_client.manager import AsyncKernelManager

    class IPCKernelManager(AsyncKernelManager):
        def __init__(self, **kwargs):
            kwargs.setdefault("transport", "ipc")
            super().__init__(**kwargs)

    return IPCKernelManager


def _export_html(notebook: Path, html: Path) -> None:
    """A self-contained HTML copy of the executed analysis notebook (images embedded)."""
    import nbformat
    from nbconvert import HTMLExporter

    from rzero_lib.rundir import write_text_atomic

    nb = nbformat.read(notebook, as_version=4)
    body, _ = HTMLExporter(embed_images=True, exclude_input_prompt=True).from_notebook_node(nb)
    write_text_atomic(html, body)


def run_pipeline(params: RunParams, run_dir: str | Path | None = None, *, fresh: bool = False,
                 kernel_name: str | None = None, progress: bool = True) -> RunDir:
    """Run (or resume) every stage; returns the run directory."""
    run = prepare_run_dir(params, run_dir, fresh=fresh)
    kernel = kernel_name or params.kernel_name
    stages = plan(params)
    _log(f"run directory {run.path} ({len(stages)} stages, {params.iterations} iterations, model {params.model})")
    t_run = time.time()
    for i, stage in enumerate(stages, 1):
        folder = stage.folder(run)
        done = run.is_done(folder)
        if done and stage.stage == "analysis" and not analysis_is_current(run, params):
            (folder / "manifest.json").unlink()  # the run grew: the report must cover every iteration
            done = False
        if done:
            _log(f"[{i}/{len(stages)}] {stage.key}: done, skipped")
            continue
        _log(f"[{i}/{len(stages)}] {stage.key}: started")
        seconds = run_stage(run, stage, kernel, progress=progress)
        _log(f"[{i}/{len(stages)}] {stage.key}: finished in {_fmt(seconds)}")
    _log(f"run complete in {_fmt(time.time() - t_run)}: report in {run.report_dir}")
    return run


# --------------------------------------------------------------------------
# status
# --------------------------------------------------------------------------


def status_rows(run_dir: str | Path) -> list[dict]:
    """One row per planned stage: state, duration and the key counts from its manifest."""
    run = RunDir.at(run_dir)
    params = run.load_params()
    rows = []
    for stage in plan(params):
        folder = stage.folder(run)
        manifest = run.manifest_of(folder)
        if manifest is not None:
            state = "done"
        elif (folder / "notebook.ipynb").exists():
            state = "failed/running"
        else:
            state = "pending"
        rows.append({"stage": stage.key, "state": state,
                     "seconds": manifest.get("seconds") if manifest else None,
                     "key counts": _key_counts(stage.stage, manifest.get("summary", {}) if manifest else {})})
    return rows


def _key_counts(stage: str, s: dict) -> str:
    def pct(x):
        return f"{100 * x:.0f}%" if isinstance(x, (int, float)) else "?"

    if not s:
        return ""
    if stage == "challenger_training":
        if not s.get("trained", True):
            return "untrained (baseline)"
        return f"steps {s.get('optimizer_steps')}, reward {s.get('reward_first', float('nan')):.3f} → " \
               f"{s.get('reward_last', float('nan')):.3f}"
    if stage == "question_generation":
        return f"{s.get('kept')}/{s.get('generated')} kept, parse rate {pct(s.get('parse_rate'))}"
    if stage == "voting":
        return f"{s.get('kept')}/{s.get('questions')} in band, boxed {pct(s.get('boxed_rate'))}, " \
               f"mean p̂ {s.get('mean_p_hat', 0):.2f}"
    if stage == "verification":
        return f"{s.get('kept')}/{s.get('questions')} kept by the verifier"
    if stage == "solver_training":
        return f"{s.get('training_questions')} questions, steps {s.get('optimizer_steps')}"
    if stage == "evaluation":
        acc = s.get("accuracy") or {}
        return ", ".join(f"{k} {100 * v:.1f}%" for k, v in acc.items()) or s.get("skipped", "")
    if stage == "analysis":
        return ", ".join(f"{k}" for k in list(s)[:4])
    return ""


def format_status(rows: list[dict]) -> str:
    widths = [max(len("stage"), *(len(r["stage"]) for r in rows)), 14, 10]
    lines = [f"{'stage':<{widths[0]}}  {'state':<{widths[1]}}  {'time':>{widths[2]}}  key counts"]
    for r in rows:
        t = _fmt(r["seconds"]) if r["seconds"] is not None else ""
        lines.append(f"{r['stage']:<{widths[0]}}  {r['state']:<{widths[1]}}  {t:>{widths[2]}}  {r['key counts']}")
    return "\n".join(lines)
