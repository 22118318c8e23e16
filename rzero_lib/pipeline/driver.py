"""The pipeline driver: runs the stage notebooks in order with papermill, and resumes.

Order: base evaluation (iteration 0); for k = 1..K challenger training →
question generation → voting → (verification) → solver training → evaluation;
then (optionally) the supervised stage and its evaluation; then the analysis
report. Each stage runs in its own kernel and leaves its
executed notebook, errors included, in its stage folder. The driver holds the
run directory's lock for its whole life (`pipeline.lock`), verifies every
finished stage before anything runs (`pipeline.resume`: outputs against their
hashes, parameters against those now in force) and redoes what is missing or
depends on something redone. A stage's notebook is written as
`notebook.running.ipynb` and renamed to `notebook.ipynb` when it ends (with
its error when it failed); the stage's manifest is committed only after that
(and, for the report, after `report.html`). SIGTERM and SIGHUP stop the driver
like Ctrl-C: the kernel and everything it started are stopped. The driver
knows stages and paths, not models: it never imports torch.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import secrets
import shutil
import signal
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from rzero_lib.config import RunParams, diff_params, params_to_dict
from rzero_lib.pipeline.lock import RunLock
from rzero_lib.pipeline.notebooks import check_notebooks, notebooks_dir, stage_notebook
from rzero_lib.pipeline.report_html import export_report_html
from rzero_lib.pipeline.resume import (
    DONE,
    OUTDATED,
    ResumeError,
    StageCheck,
    check_run,
    resume_problems,
)
from rzero_lib.pipeline.rundir import (
    ANALYSIS_STAGE,
    DEFERRED_COMMIT_ENV,
    MANIFEST,
    PENDING_MANIFEST,
    PipelineError,
    RunDir,
    stage_key,
)
from rzero_lib.processes import pid_alive, process_start_time, stop_group, terminate_as_interrupt
from rzero_lib.resource_usage import StageUsage

# The stage notebooks (py:percent files, `rzero_lib.pipeline.notebooks`).
NOTEBOOKS = {
    "challenger_training": "01_challenger_training.py",
    "question_generation": "02_question_generation.py",
    "voting": "03_voting.py",
    "verification": "03b_verification.py",
    "solver_training": "04_solver_training.py",
    "evaluation": "05_evaluation.py",
    "analysis": "06_analysis.py",
    "supervised_training": "08_supervised_training.py",
    "supervised_evaluation": "05_evaluation.py",  # the iterations' evaluation, told its stage
}
NOTEBOOK = "notebook.ipynb"
RUNNING_NOTEBOOK = "notebook.running.ipynb"  # papermill writes here while the stage runs
KERNEL_DIR_PREFIX = "rzero-kernel-"  # a private folder per stage kernel: connection file and IPC sockets
KERNEL_START_TIMEOUT_S = 120
STOP_GRACE_S = 10.0  # after an interrupt: time for the stage's `finally` blocks and papermill's save


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


def choose_run_dir(params: RunParams, run_dir: str | Path | None = None, fresh: bool = False) -> Path:
    """The run directory to use. `fresh`: a directory this call creates (mkdir is atomic, so two fresh
    starts in the same second never share one): the given one if it does not exist yet, else one named
    after it with the time and a random suffix."""
    path = Path(run_dir) if run_dir else default_run_dir(params)
    if not fresh:
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    candidates = [path] + [path.with_name(f"{path.name}-{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(3)}")
                           for _ in range(20)]
    for candidate in candidates:
        try:
            candidate.mkdir()
            return candidate
        except FileExistsError:
            continue
    raise PipelineError(f"could not create a fresh run directory next to {path}")


def open_run(params: RunParams, run: RunDir) -> list[StageCheck]:
    """Check a locked run directory against `params` and make it ready to run; returns every planned
    stage's check. Raises ResumeError (nothing changed) when a finished stage does not match what it
    recorded or the parameters now in force."""
    stages = plan(params)
    frozen = run.load_params() if run.exists() else params
    checks = check_run(run, params, stages, frozen=frozen)
    problems = resume_problems(checks)
    if problems:
        raise ResumeError(f"{run.path}: {problems}")
    changed = diff_params(params_to_dict(frozen), params_to_dict(params))
    if changed:
        log("parameters changed since the last start (no finished stage depends on them): " + "; ".join(changed))
    if changed or not run.exists():
        run.freeze_params(params)
    for c in checks:
        if c.state == OUTDATED:
            (c.folder / MANIFEST).unlink(missing_ok=True)
            log(f"{c.key}: will be redone ({c.problem})")
    run.write_state({c.key: c.manifest for c in checks if c.state == DONE})
    return checks


def prepare_run_dir(params: RunParams, run_dir: str | Path | None = None, fresh: bool = False) -> RunDir:
    """Create or reopen the run directory (under its lock) and check it against `params`."""
    run = RunDir.at(choose_run_dir(params, run_dir, fresh))
    with RunLock(run.path):
        open_run(params, run)
    return run


def log(msg: str) -> None:
    print(f"[rzero {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def format_seconds(seconds: float) -> str:
    return f"{seconds / 60:.1f} min" if seconds >= 90 else f"{seconds:.1f} s"


def run_stage(run: RunDir, stage: StageRun, kernel_name: str, progress: bool = True,
              export_html: bool = True) -> float:
    """Execute one stage notebook and commit its manifest; returns its wall time. Raises PipelineError on
    failure, leaving the executed notebook (with the error) as the stage's notebook.ipynb. The report stage
    also writes `report.html` unless `export_html` is false (`analysis.export_html`).

    papermill runs in a worker thread; the main thread waits, so that Ctrl-C or SIGTERM never lands inside
    papermill's event loop. It then interrupts the kernel (the stage's `finally` blocks run: servers are
    stopped by their owner), lets papermill save the notebook and shut the kernel down, and kills what is
    left after `STOP_GRACE_S`.
    """
    import papermill as pm

    check_notebooks([stage.notebook])
    folder = stage.folder(run)
    folder.mkdir(parents=True, exist_ok=True)
    output, running = folder / NOTEBOOK, folder / RUNNING_NOTEBOOK
    (folder / PENDING_MANIFEST).unlink(missing_ok=True)
    runtime = Path(tempfile.mkdtemp(prefix=kernel_dir_prefix()))
    kernels = StageKernels(runtime, {DEFERRED_COMMIT_ENV: "1"})
    t0 = time.time()
    committed = False
    usage = StageUsage(os.getpid()).start()  # the kernel and everything it starts are this process's descendants
    try:
        try:
            kernels.run(lambda: pm.execute_notebook(
                stage_notebook(stage.notebook), str(running),
                parameters={"run_dir": str(run.path), **stage.parameters},
                kernel_name=kernel_name, progress_bar=progress, cwd=str(folder), log_output=False,
                request_save_on_cell_execute=True, start_timeout=KERNEL_START_TIMEOUT_S,
                kernel_manager_class=kernels.manager_class()))
        except pm.PapermillExecutionError as e:
            raise PipelineError(f"stage {stage.key} failed in cell {e.exec_count}: {e.ename}: {e.evalue}"
                                f"{failure_hint(e.ename, e.evalue)}\n  executed notebook (with the error): "
                                f"{output}") from None
        except Exception as e:  # noqa: BLE001 - the kernel's failures, told as such; anything else re-raised
            raise kernel_failure(stage, e, output) from e
        resources = usage.stop()  # the kernel has been shut down and reaped: its CPU time is counted
        os.replace(running, output)
        html = stage.stage == ANALYSIS_STAGE and export_html
        if html:
            export_report_html(output, folder / "report.html", title=f"R-Zero run report: {run.path.name}")
        elif stage.stage == ANALYSIS_STAGE:  # a report.html of an earlier analysis would not match this notebook
            (folder / "report.html").unlink(missing_ok=True)
        run.commit_manifest(folder, stage.key, ("report.html",) if html else (),
                            extra={"resources": resources})
        committed = True
    finally:
        usage.stop()
        kernels.kill_remaining()  # normally papermill has shut it down already
        if not committed:
            (folder / PENDING_MANIFEST).unlink(missing_ok=True)
            keep_failed_notebook(running, output)
        shutil.rmtree(runtime, ignore_errors=True)
    return time.time() - t0


class StageKernels:
    """The kernel(s) of one stage run: where they keep their sockets, what they get in their environment,
    and how they are stopped when the driver is interrupted."""

    def __init__(self, runtime_dir: Path, env: dict[str, str]) -> None:
        self.runtime_dir = runtime_dir
        self.env = env
        self.managers: list = []
        self.stopping = threading.Event()

    def manager_class(self):
        """A kernel manager class: IPC sockets (nothing listens on the network) in this stage's own folder
        (two kernels never share a socket), `env` added to the kernel's environment."""
        from jupyter_client.manager import AsyncKernelManager

        owner = self

        class StageKernelManager(AsyncKernelManager):
            def __init__(self, **kwargs):
                kwargs.setdefault("transport", "ipc")
                kwargs.setdefault("connection_file", str(owner.runtime_dir / "kernel.json"))
                super().__init__(**kwargs)
                owner.managers.append(self)

            async def start_kernel(self, **kw):
                if owner.stopping.is_set():
                    raise RuntimeError("the stage was stopped before its kernel started")
                kw["env"] = {**(kw.get("env") or os.environ), **owner.env}
                result = await super().start_kernel(**kw)
                if owner.stopping.is_set():
                    owner.signal_kernels(signal.SIGKILL)
                return result

        return StageKernelManager

    def kernel_processes(self) -> list:
        return [p for km in self.managers if (p := getattr(getattr(km, "provisioner", None), "process", None))]

    def signal_kernels(self, sig: int) -> None:
        for proc in self.kernel_processes():
            if proc.poll() is None:
                with contextlib.suppress(OSError):
                    os.killpg(proc.pid, sig)  # the kernel leads its own process group

    def kill_remaining(self) -> None:
        """Every kernel this stage started is gone after this (SIGTERM, then SIGKILL, to its group)."""
        for proc in self.kernel_processes():
            if proc.poll() is None:
                stop_group(proc, term_timeout_s=3.0, kill_timeout_s=5.0)

    def run(self, execute):
        """`execute()` in a worker thread; on an interrupt of this thread, stop the kernel and re-raise."""
        box: dict = {}

        def target():
            try:
                box["result"] = execute()
            except BaseException as e:  # noqa: BLE001 - handed to the waiting thread
                box["error"] = e

        worker = threading.Thread(target=target, name="rzero-stage", daemon=True)
        worker.start()
        try:
            while worker.is_alive():
                worker.join(0.2)
        except KeyboardInterrupt:
            self.stop(worker)
            raise
        if "error" in box:
            raise box["error"]
        return box.get("result")

    def stop(self, worker: threading.Thread) -> None:
        """Interrupt the kernel, give the stage and papermill `STOP_GRACE_S` to finish, then kill."""
        self.stopping.set()
        try:
            self.signal_kernels(signal.SIGINT)
            worker.join(STOP_GRACE_S)
        except KeyboardInterrupt:
            pass  # interrupted again: stop now
        self.kill_remaining()
        worker.join(5.0)


def keep_failed_notebook(running: Path, output: Path) -> None:
    """A failed or interrupted stage's notebook becomes its notebook.ipynb when it is a whole notebook
    (papermill saves it with the error); a truncated one (disk full) keeps its running name."""
    try:
        json.loads(running.read_text())
    except (OSError, ValueError):
        return
    with contextlib.suppress(OSError):
        os.replace(running, output)


def failure_hint(ename: str, evalue: str) -> str:
    """One sentence on what to do for the failures that have a usual cause."""
    text = f"{ename} {evalue}"
    if "No space left" in text or "[Errno 28]" in text:
        return ". The disk is full: free space, then run the same command again to resume"
    if ename in ("MemoryError", "OutOfMemoryError") or "out of memory" in text.lower():
        return (". Out of memory: lower the batch sizes (engine.generation_batch_size, the GRPO micro_batch_size) "
                "or the token budgets, then run the same command again to resume")
    return ""


def kernel_failure(stage: StageRun, error: Exception, output: Path) -> Exception:
    """A PipelineError for the ways a stage's kernel fails outside a cell; other errors unchanged."""
    name = type(error).__name__
    where = f"stage {stage.key}"
    record = f" Its notebook so far: {output}."
    if name == "DeadKernelError":
        return PipelineError(f"{where}: its kernel died while running ({error}). The usual cause is memory: the "
                             "out-of-memory killer leaves a line in `dmesg`. Lower the batch sizes or token budgets,"
                             f" then run the same command again to resume.{record}")
    if name == "CellTimeoutError":
        return PipelineError(f"{where}: a cell ran past its time limit ({error}).{record}")
    if name == "NoSuchKernel":
        return PipelineError(f"{where}: the Jupyter kernel {error} is not installed (see `jupyter kernelspec list`)."
                             " Set kernel_name or pass --kernel.")
    if isinstance(error, RuntimeError) and "didn't respond" in str(error):
        return PipelineError(f"{where}: its Jupyter kernel did not start ({error}). The machine may be overloaded,"
                             f" or the kernel crashed at start (try `python -m ipykernel --version`); run the same "
                             "command again to resume.")
    if isinstance(error, OSError) and error.errno == errno.ENOSPC:
        return PipelineError(f"{where}: the disk is full ({error}). Free space, then run the same command again "
                             "to resume.")
    return error


def kernel_dir_prefix() -> str:
    return f"{KERNEL_DIR_PREFIX}{os.getpid()}-{process_start_time(os.getpid()) or 0}-"


def clean_stale_kernel_dirs() -> int:
    """Remove the kernel folders (connection files, IPC sockets) of drivers that no longer run."""
    removed = 0
    for d in Path(tempfile.gettempdir()).glob(f"{KERNEL_DIR_PREFIX}*"):
        parts = d.name[len(KERNEL_DIR_PREFIX):].split("-")
        try:
            pid, start = int(parts[0]), int(parts[1])
            if d.stat().st_uid != os.getuid():
                continue
        except (IndexError, ValueError, OSError):
            continue
        if not pid_alive(pid, start or None):
            shutil.rmtree(d, ignore_errors=True)
            removed += 1
    return removed


def clean_stage_leftovers(run: RunDir) -> None:
    """Kernel socket files that older versions left in stage folders, and uncommitted manifests."""
    for pattern in ("iter_*/*/kernel-ipc-*", "report/kernel-ipc-*", f"iter_*/*/{PENDING_MANIFEST}",
                    f"report/{PENDING_MANIFEST}"):
        for f in run.path.glob(pattern):
            with contextlib.suppress(OSError):
                f.unlink()


def run_pipeline(params: RunParams, run_dir: str | Path | None = None, *, fresh: bool = False,
                 kernel_name: str | None = None, progress: bool = True) -> RunDir:
    """Run (or resume) every stage under the run directory's lock; returns the run directory."""
    check_notebooks(stage.notebook for stage in plan(params))  # before the run directory is made
    with terminate_as_interrupt():
        run = RunDir.at(choose_run_dir(params, run_dir, fresh))
        with RunLock(run.path) as lock:
            if lock.replaced is not None:
                log(f"took over the lock of a process that ended ({lock.replaced.describe()})")
            clean_stale_kernel_dirs()
            clean_stage_leftovers(run)
            checks = open_run(params, run)
            kernel = kernel_name or params.kernel_name
            log(f"run directory {run.path} ({len(checks)} stages, {params.iterations} iterations, "
                f"model {params.model})")
            t_run = time.time()
            for i, check in enumerate(checks, 1):
                stage = check.stage
                if check.state == DONE:
                    log(f"[{i}/{len(checks)}] {stage.key}: done, skipped")
                    continue
                log(f"[{i}/{len(checks)}] {stage.key}: started")
                seconds = run_stage(run, stage, kernel, progress=progress,
                                    export_html=params.analysis.export_html)
                log(f"[{i}/{len(checks)}] {stage.key}: finished in {format_seconds(seconds)}")
            log(f"run complete in {format_seconds(time.time() - t_run)}: report in {run.report_dir}")
    return run


def analyze_run(run_dir: str | Path, kernel_name: str | None = None, progress: bool = True) -> RunDir:
    """Redo the analysis report of an existing run (under its lock)."""
    run = RunDir.at(run_dir)
    params = run.load_params()  # not a run directory: says so before anything is created
    with terminate_as_interrupt(), RunLock(run.path):
        (run.report_dir / MANIFEST).unlink(missing_ok=True)
        run.update_state("report", None)
        run_stage(run, StageRun(None, ANALYSIS_STAGE), kernel_name or params.kernel_name, progress=progress,
                  export_html=params.analysis.export_html)
    return run
