"""Stage 5: benchmark accuracy of the iteration's Solver (iteration 0: the base model), and of the supervised
stage's model (`supervised_evaluation`, the same evaluation with the same seeds)."""

from __future__ import annotations

import pandas as pd

from rzero_lib.atomic_files import write_parquet_atomic
from rzero_lib.evaluation.evaluate import cross_iteration_table, evaluate_model
from rzero_lib.pipeline.context import StageContext, StageResult
from rzero_lib.pipeline.run_tables import load_scores

SUPERVISED_ROW = "supervised"


def evaluation_model(ctx: StageContext) -> str:
    """Iteration 0 evaluates the base model, iteration k the Solver of iteration k, and the supervised
    evaluation the supervised stage's model."""
    if ctx.stage == "supervised_evaluation":
        return ctx.run.supervised_model()
    return ctx.run.solver_model(ctx.iteration)


def comparison_table(ctx: StageContext, scores) -> pd.DataFrame:
    """Accuracy (%) of the base model, every finished iteration and (in the supervised evaluation) the supervised
    model, per benchmark."""
    scores_by_iteration = load_scores(ctx.run)
    if ctx.stage != "supervised_evaluation" or scores is None:
        return cross_iteration_table(scores_by_iteration)
    row = int(scores_by_iteration["iteration"].max()) + 1 if len(scores_by_iteration) else 1
    table = cross_iteration_table(pd.concat([scores_by_iteration, scores.assign(iteration=row)], ignore_index=True))
    return table.rename(index={f"iter {row}": SUPERVISED_ROW})


def run_evaluation(ctx: StageContext, recompute: bool = False) -> StageResult:
    scores_file, samples_file = ctx.folder / "scores.parquet", ctx.folder / "samples.parquet"
    if ctx.done and not recompute:
        if not scores_file.exists():  # evaluation was disabled
            return StageResult(ctx.manifest["summary"], {}, loaded=True)
        result = ctx.loaded_result(scores="scores.parquet", samples="samples.parquet")
        result.tables["table"] = comparison_table(ctx, result.tables["scores"])
        return result
    p = ctx.params.evaluation
    model = evaluation_model(ctx)
    _, solver_prompt = ctx.prompts()
    if not p.enabled or not p.benchmarks:
        summary = {"model": model, "skipped": "evaluation.enabled is false or no benchmarks are configured"}
        ctx.finish(inputs={"model": model}, outputs=[], summary=summary)
        return StageResult(summary, {})
    gen = ctx.generator(model)
    try:
        scores, samples = evaluate_model(gen, p.benchmarks, p, solver_prompt, seed=ctx.params.seed)
        stats = gen.record()
    finally:
        gen.close()
    write_parquet_atomic(scores, scores_file)
    write_parquet_atomic(samples, samples_file)
    summary = {"model": model, "accuracy": {r.benchmark: round(float(r.accuracy), 4) for r in scores.itertuples()},
               "limit": p.limit, "generation": stats}
    ctx.finish(inputs={"model": model}, outputs=["scores.parquet", "samples.parquet"], summary=summary)
    return StageResult(summary, {"scores": scores, "samples": samples, "table": comparison_table(ctx, scores)})
