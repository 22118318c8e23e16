"""The `rzero` command: run, resume, inspect and validate R-Zero runs.

    rzero run PARAMS.yaml [--run-dir DIR] [--iterations K] [--set key=value ...] [--fresh]
    rzero status DIR
    rzero validate PARAMS.yaml [--set key=value ...]
    rzero analyze DIR          (re-run the analysis report of an existing run)
    rzero compare PARAMS.yaml [--seeds 0 1 2] [--runs-root runs] [--output DIR] [--no-run] [--set key=value ...]
                               (R-Zero only / labels only / R-Zero then labels: docs/supervised.md)

Parameters are validated before anything loads; a bad field is named with
what is allowed, and the command exits with status 2.
"""

from __future__ import annotations

import argparse
import sys

import yaml

from rzero_lib.config import ParamsError, load_params, params_to_dict
from rzero_lib.pipeline.compare import run_comparison
from rzero_lib.pipeline.driver import PipelineError, StageRun, run_pipeline, run_stage
from rzero_lib.pipeline.rundir import ANALYSIS_STAGE, MANIFEST, RunDir
from rzero_lib.pipeline.status import format_status, status_rows


def _params(args):
    overrides = list(args.set or [])
    if getattr(args, "iterations", None) is not None:
        overrides.append(f"iterations={args.iterations}")
    return load_params(args.params, overrides)


def cmd_run(args) -> int:
    params = _params(args)
    run_pipeline(params, args.run_dir, fresh=args.fresh, kernel_name=args.kernel, progress=not args.no_progress)
    return 0


def cmd_status(args) -> int:
    print(format_status(status_rows(args.run_dir)))
    return 0


def cmd_validate(args) -> int:
    params = _params(args)
    print(yaml.safe_dump(params_to_dict(params), sort_keys=False), end="")
    print("# parameters are valid", file=sys.stderr)
    return 0


def cmd_analyze(args) -> int:
    run = RunDir.at(args.run_dir)
    params = run.load_params()
    (run.report_dir / MANIFEST).unlink(missing_ok=True)
    run_stage(run, StageRun(None, ANALYSIS_STAGE), args.kernel or params.kernel_name)
    print(f"report written to {run.report_dir}")
    return 0


def cmd_compare(args) -> int:
    out = run_comparison(_params(args), seeds=args.seeds, runs_root=args.runs_root, output_dir=args.output,
                         run=not args.no_run, kernel_name=args.kernel, progress=not args.no_progress)
    print(f"comparison written to {out}")
    return 0


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
    st.set_defaults(func=cmd_status)

    va = sub.add_parser("validate", help="validate parameters and print them resolved")
    va.add_argument("params")
    va.add_argument("--set", action="append", metavar="KEY=VALUE")
    va.add_argument("--iterations", type=int)
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
    return ap


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except ParamsError as e:
        print(f"rzero: {e}", file=sys.stderr)
        return 2
    except (PipelineError, FileNotFoundError) as e:
        print(f"rzero: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("rzero: interrupted; run the same command again to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
