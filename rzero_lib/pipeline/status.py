"""`rzero status RUN`: one row per planned stage with its state, duration and key counts.

The state is checked, not trusted: a finished stage whose outputs are missing
or changed shows as "modified", one whose parameters differ from the run's
as "params changed" (`pipeline.resume.check_run`, as the driver checks before
resuming); the stage a live driver is running shows as "running".
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
