"""`rzero status RUN`: one row per planned stage with its state, duration and key counts.

The state is checked, not trusted: a finished stage whose outputs are missing
or changed shows as "modified", one whose parameters differ from the run's
as "params changed" (`pipeline.resume.check_run`, as the driver checks before
resuming); the stage a live driver is running shows as "running".

`rzero status RUN --engines`: per finished stage, what its manifest records of
how it ran — the engine (generation backend and vLLM version, or the training's
rollout engine, weight sync, launcher, processes, LoRA and the frozen Solver)
and the driver's measurements (wall and CPU seconds, peak memory of the
stage's process tree) — with totals (`make rehearsal` and
`scripts/gpu_smoke.sh` print it).
"""

from __future__ import annotations

from pathlib import Path

from rzero_lib.pipeline.driver import format_seconds, plan
from rzero_lib.pipeline.lock import current_holder
from rzero_lib.pipeline.resume import DONE, INTERRUPTED, check_run
from rzero_lib.pipeline.rundir import RunDir

RUNNING = "running"


def status_rows(run_dir: str | Path) -> list[dict]:
    """One row per planned stage: state, what is wrong (if anything), duration and key counts."""
    run = RunDir.at(run_dir)
    params = run.load_params()
    holder = current_holder(run.path)
    rows = []
    for check in check_run(run, params, plan(params), frozen=params):
        manifest = check.manifest or {}
        state = RUNNING if check.state == INTERRUPTED and holder is not None else check.state
        counts = key_counts(check.stage.stage, manifest.get("summary", {})) if check.state == DONE else ""
        rows.append({"stage": check.key, "state": state, "problem": check.problem,
                     "seconds": manifest.get("seconds") if check.state == DONE else None,
                     "key counts": counts or check.problem})
    return rows


def run_holder_line(run_dir: str | Path) -> str:
    holder = current_holder(RunDir.at(run_dir).path)
    return f"in use by {holder.describe()}" if holder else "not in use"


def key_counts(stage: str, s: dict) -> str:
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
    if stage == "supervised_training":
        overlap = sum((s.get("evaluation_overlap") or {}).values())
        return f"{s.get('method')} from {s.get('start_from')}: {s.get('trained_on')}/{s.get('rows')} rows, " \
               f"unparsable answers {s.get('unparsable_answers')}, evaluation overlap {overlap}, " \
               f"steps {s.get('optimizer_steps')}"
    if stage in ("evaluation", "supervised_evaluation"):
        acc = s.get("accuracy") or {}
        return ", ".join(f"{k} {100 * v:.1f}%" for k, v in acc.items()) or s.get("skipped", "")
    if stage == "analysis":
        return ", ".join(f"{k}" for k in list(s)[:4])
    return ""


def format_status(rows: list[dict]) -> str:
    widths = [max(len("stage"), *(len(r["stage"]) for r in rows)), 14, 10]
    lines = [f"{'stage':<{widths[0]}}  {'state':<{widths[1]}}  {'time':>{widths[2]}}  key counts"]
    for r in rows:
        t = format_seconds(r["seconds"]) if r["seconds"] is not None else ""
        lines.append(f"{r['stage']:<{widths[0]}}  {r['state']:<{widths[1]}}  {t:>{widths[2]}}  {r['key counts']}")
    return "\n".join(lines)


def engine_rows(run_dir: str | Path) -> list[dict]:
    """One row per finished stage, in run order: the engine its manifest records and its measured resources."""
    run = RunDir.at(run_dir)
    rows = []
    for stage in plan(run.load_params()):
        manifest = run.manifest_of(stage.folder(run))
        if manifest is None:
            continue
        resources = manifest.get("resources") or {}
        rows.append({"stage": stage.key, "engine": engine_line(manifest.get("summary") or {}),
                     "wall_seconds": resources.get("wall_seconds", manifest.get("seconds")),
                     "cpu_seconds": resources.get("cpu_seconds"), "peak_memory_mib": resources.get("peak_memory_mib")})
    return rows


def engine_line(summary: dict) -> str:
    """How a stage ran, in one line, from its manifest's summary ("-" when it generated and trained nothing)."""
    generation = summary.get("generation") or {}
    if "engine" in generation:
        return generator_line(generation["engine"])
    e = summary.get("engine")
    if not e:  # older manifests did not record it
        return "(not recorded)" if "generation" in summary or "optimizer_steps" in summary else "-"
    rollouts = e.get("rollouts", "?") + (f" (weight sync {e['weight_sync']})" if e.get("weight_sync") else "")
    launcher = (f"accelerate {e.get('accelerate_config')}" if e.get("launcher") == "accelerate" else "in-process")
    parts = [f"rollouts {rollouts}", f"{launcher} x{e.get('processes', '?')} on {e.get('device', '?')}",
             "LoRA" if e.get("lora") else "full"]
    solver = e.get("solver")
    if solver:
        parts.append(f"Solver {solver.get('backend')} ({solver.get('service', '').replace('_', '-')})")
    return ", ".join(parts)


def generator_line(engine: dict) -> str:
    if engine.get("backend") != "vllm":
        return str(engine.get("backend"))
    flags = ["eager" if engine.get("enforce_eager") else "compiled"]
    if engine.get("tensor_parallel_size", 1) > 1 or engine.get("data_parallel_size", 1) > 1:
        flags.append(f"TP {engine.get('tensor_parallel_size', 1)} DP {engine.get('data_parallel_size', 1)}")
    return f"vllm {engine.get('vllm')} {engine.get('mode')} on {engine.get('platform')}, {', '.join(flags)}"


def format_engine_table(rows: list[dict]) -> str:
    def number(value, fmt):
        return format(value, fmt) if isinstance(value, (int, float)) else "?"

    width = max(len("stage"), len("total"), *(len(r["stage"]) for r in rows)) if rows else len("stage")
    lines = [f"{'stage':<{width}}  {'wall s':>8}  {'CPU s':>8}  {'peak MiB':>9}  engine"]
    for r in rows:
        lines.append(f"{r['stage']:<{width}}  {number(r['wall_seconds'], '8.1f')}  {number(r['cpu_seconds'], '8.1f')}"
                     f"  {number(r['peak_memory_mib'], '9.0f')}  {r['engine']}")
    if rows:
        def total(key, combine):
            values = [r[key] for r in rows if isinstance(r[key], (int, float))]
            return combine(values) if values else None

        lines.append(f"{'total':<{width}}  {number(total('wall_seconds', sum), '8.1f')}  "
                     f"{number(total('cpu_seconds', sum), '8.1f')}  {number(total('peak_memory_mib', max), '9.0f')}"
                     "  (peak: the largest stage's)")
    return "\n".join(lines)
