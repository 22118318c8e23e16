"""The supervised stage: training on labelled data after the last iteration (or from the base model).

Before any model loads it reads the labelled rows (a file, a `datasets` folder,
the hub, or a built-in set), checks the field mapping, marks every row it
cannot train on with a `drop_reason` (no question; an answer the Solver's reward
cannot score; no solution for SFT; a question that is also an evaluation
question; outside the `max_questions` subsample) and writes them all to
`labelled.parquet`. Then GRPO with the gold answers as labels (the Solver's GRPO
and reward) or SFT on the solutions. docs/supervised.md.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pandas as pd

from rzero_lib.atomic_files import write_parquet_atomic
from rzero_lib.evaluation.registry import load_benchmark
from rzero_lib.evaluation.tasks import read_rows
from rzero_lib.labelled_data import (
    UNPARSABLE_REASONS,
    LabelledDataError,
    builtin_rows,
    check_fields,
    present_text,
    question_key,
    row_drop_reason,
    source_kind,
)
from rzero_lib.pipeline.context import StageContext, StageError, StageResult
from rzero_lib.pipeline.stages.grpo_phase import (
    curve_summary,
    launched_training,
    launches,
    load_training,
    training_engine_record,
)
from rzero_lib.training.roles import train_solver, train_solver_sft

LABELLED_FILE = "labelled.parquet"
LABELLED_COLUMNS = ["row", "question", "answer", "solution", "drop_reason", "kept"]
OVERLAP_PREFIX = "overlaps_evaluation:"
EXAMPLES = 5  # unparsable answers quoted in the summary


def supervised_start_model(ctx: StageContext) -> str:
    """The last Solver (Solver_K), or the base model for the labelled-only control."""
    if ctx.params.supervised_training.start_from == "base":
        return ctx.run.base_model()
    return ctx.run.solver_model(ctx.params.iterations)


# --------------------------------------------------------------------------
# the labelled rows
# --------------------------------------------------------------------------


def load_labelled_rows(dataset) -> tuple[list[dict], str]:
    """(rows, where they came from) for `supervised_training.dataset`; StageError when they cannot be read."""
    source = dataset.source
    try:
        kind = source_kind(source)
    except LabelledDataError as e:
        raise StageError(str(e)) from None
    if kind == "builtin":
        return builtin_rows(source), source
    if kind == "file":
        return read_rows(Path(source).expanduser()), str(Path(source).expanduser().resolve())
    import datasets  # a datasets folder or the hub

    where = f"{source}@{dataset.revision}:{dataset.split}" if kind == "hub" else f"{source}:{dataset.split}"
    try:
        loaded = datasets.load_dataset(source, dataset.config, split=dataset.split,
                                       revision=dataset.revision if kind == "hub" else None)
    except Exception as e:  # offline, unknown id, no such split...: say what was tried
        raise StageError(
            f"supervised_training.dataset: cannot load {'the hub dataset' if kind == 'hub' else 'the datasets folder'} "
            f"{source!r} (split {dataset.split!r}, config {dataset.config!r}, revision {dataset.revision!r}): "
            f"{type(e).__name__}: {e}. On an offline machine, save the split as JSONL or Parquet and give its path "
            "as supervised_training.dataset.source.") from None
    return [dict(r) for r in loaded], ("hub:" if kind == "hub" else "") + where


def labelled_table(rows: list[dict], fields, method: str, where: str) -> pd.DataFrame:
    """Every row with its question, answer, solution and why it cannot be trained on (None: it can)."""
    columns = list(dict.fromkeys(k for r in rows for k in r))
    if not rows:
        raise StageError(f"supervised_training.dataset: {where} has no rows")
    try:
        check_fields(columns, fields.model_dump(), where)
    except LabelledDataError as e:
        raise StageError(str(e)) from None
    out = []
    for i, r in enumerate(rows):
        question, answer = present_text(r.get(fields.question)), present_text(r.get(fields.answer))
        solution = present_text(r.get(fields.solution)) if fields.solution else None
        reason = row_drop_reason(question, answer, solution, method)
        out.append({"row": i, "question": question, "answer": answer, "solution": solution, "drop_reason": reason,
                    "kept": reason is None})
    return pd.DataFrame(out, columns=LABELLED_COLUMNS)


def evaluation_questions(ctx: StageContext) -> dict[str, str]:
    """Normalised question -> the first evaluation benchmark that asks it (every item, not a `limit` sample)."""
    p = ctx.params.evaluation
    if not p.enabled:
        return {}
    keys: dict[str, str] = {}
    for name in p.benchmarks:
        try:
            items = load_benchmark(name, data_dir=p.data_dir)
        except (FileNotFoundError, ValueError) as e:
            raise StageError(f"cannot check the labelled data against evaluation benchmark {name!r} (the supervised "
                             f"evaluation needs it too): {e}") from None
        for item in items:
            keys.setdefault(question_key(item.prompt), name)
    return keys


def mark_evaluation_overlap(table: pd.DataFrame, evaluation: dict[str, str], policy: str) -> dict[str, int]:
    """Drop usable rows whose question is an evaluation question; counts per benchmark. `refuse`: StageError."""
    hits = {i: evaluation.get(question_key(q)) for i, q in table.loc[table["kept"], "question"].items()}
    hits = {i: b for i, b in hits.items() if b is not None}
    counts = dict(Counter(hits.values()))
    if hits and policy == "refuse":
        raise StageError(f"{len(hits)} labelled questions are evaluation questions ({counts}); remove them from the "
                         "dataset or set supervised_training.evaluation_overlap: drop")
    for i, benchmark in hits.items():
        table.at[i, "drop_reason"] = OVERLAP_PREFIX + benchmark
        table.at[i, "kept"] = False
    return counts


def subsample_rows(table: pd.DataFrame, limit: int | None, seed: int) -> None:
    """Keep a seeded sample of `limit` usable rows; the others are marked `not_sampled`."""
    usable = table.index[table["kept"]]
    if limit is None or len(usable) <= limit:
        return
    chosen = set(pd.Series(usable).sample(n=limit, random_state=seed))
    for i in usable:
        if i not in chosen:
            table.at[i, "drop_reason"] = "not_sampled"
            table.at[i, "kept"] = False


def prepare_labelled_data(ctx: StageContext) -> tuple[pd.DataFrame, dict]:
    """The labelled table (every row, with drop reasons) and its summary; nothing loads a model."""
    p = ctx.params.supervised_training
    rows, where = load_labelled_rows(p.dataset)
    table = labelled_table(rows, p.dataset.fields, p.method, where)
    overlap = mark_evaluation_overlap(table, evaluation_questions(ctx), p.evaluation_overlap)
    subsample_rows(table, p.max_questions, ctx.seed("subsample"))
    reasons = {str(r): int(c) for r, c in table["drop_reason"].value_counts().items()}
    unparsable = table[table["drop_reason"].isin(UNPARSABLE_REASONS)]
    summary = {"dataset": where, "rows": len(table), "trained_on": int(table["kept"].sum()),
               "drop_reasons": reasons, "unparsable_answers": len(unparsable),
               "unparsable_examples": [str(a) if a is not None else None
                                       for a in unparsable["answer"].head(EXAMPLES)],
               "evaluation_overlap": overlap, "evaluation_overlap_policy": p.evaluation_overlap}
    if not summary["trained_on"]:
        raise StageError(f"no labelled row can be trained on ({len(table)} rows; drops: {reasons}); check "
                         f"supervised_training.dataset.fields and {LABELLED_FILE} in {ctx.folder}")
    return table, summary


# --------------------------------------------------------------------------
# the stage
# --------------------------------------------------------------------------


def run_supervised_training(ctx: StageContext, recompute: bool = False) -> StageResult:
    if ctx.done and not recompute:
        result = load_training(ctx)
        result.tables["labelled"] = pd.read_parquet(ctx.folder / LABELLED_FILE)
        return result
    p = ctx.params.supervised_training
    table, data_summary = prepare_labelled_data(ctx)  # every data error surfaces here, before a model loads
    write_parquet_atomic(table, ctx.folder / LABELLED_FILE)
    train = table[table["kept"]]
    start = supervised_start_model(ctx)
    _, solver_prompt = ctx.prompts()
    common = dict(solver_prompt=solver_prompt, output_dir=ctx.folder, engine=ctx.params.engine)
    launched = p.method == "grpo" and launches(p)
    if p.method == "sft":
        result = train_solver_sft(start, train["question"].tolist(), train["solution"].tolist(), params=p,
                                  seed=ctx.seed("sft"), **common)
    elif launched:
        solver_params = p.solver_params()
        result = launched_training(ctx, "solver", start_model=start,
                                   questions=train["question"].tolist(), labels=train["answer"].tolist(),
                                   params=solver_params, seed=ctx.seed("grpo"), weights=None, **common)
    else:
        result = train_solver(start, train["question"].tolist(), train["answer"].tolist(), params=p.solver_params(),
                              seed=ctx.seed("grpo"), **common)
    history = pd.DataFrame(result.log_history)
    summary = {"method": p.method, "start_from": p.start_from, "start_model": start, **data_summary,
               **result.summary(), "launched": launched, "engine": training_engine_record(p, result, launched),
               **curve_summary(history, "reward" if p.method == "grpo" else "loss")}
    ctx.finish(inputs={"start_model": start, "dataset": data_summary["dataset"]},
               outputs=["model", "log_history.jsonl", LABELLED_FILE], summary=summary,
               extra={"model": str(result.model_dir)})
    return StageResult(summary, {"log_history": history, "labelled": table})
