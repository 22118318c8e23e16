"""Stage 3b (optional): the Verifier judges the kept labels; the Solver trains on those it keeps (or weights)."""

from __future__ import annotations

import pandas as pd

from rzero_lib.atomic_files import write_parquet_atomic
from rzero_lib.pipeline.context import StageContext, StageError, StageResult
from rzero_lib.pipeline.stages.tables import VERDICT_COLUMNS, solver_train_table
from rzero_lib.values import stored_text
from rzero_lib.verifier import apply_policy, confidence_of, supporting_response, verify_labels


def verifier_model(ctx: StageContext) -> str:
    v = ctx.params.verifier
    if v.kind == "model":
        if not v.model:
            raise StageError("verifier.kind is 'model' but verifier.model is not set")
        return v.model
    return ctx.run.solver_model(ctx.iteration - 1)  # self-verification: the Solver that voted


def run_verification(ctx: StageContext, recompute: bool = False) -> StageResult:
    verdicts_file, train_file = ctx.folder / "verdicts.parquet", ctx.folder / "solver_train.parquet"
    if ctx.done and not recompute:
        return ctx.loaded_result(verdicts="verdicts.parquet", solver_train="solver_train.parquet")
    v = ctx.params.verifier
    k = ctx.iteration
    votes_file = ctx.run.stage_dir(k, "voting") / "votes.parquet"
    votes = pd.read_parquet(votes_file)
    kept = votes[votes["kept"]].reset_index(drop=True)
    solutions = [supporting_response(list(r.responses), list(r.answers), r.majority_answer) or
                 f"The answer is \\boxed{{{r.majority_answer}}}." for r in kept.itertuples()]
    spec = verifier_model(ctx)
    gen = ctx.generator(spec)
    try:
        verdicts = verify_labels(gen, kept["question"].tolist(), solutions, samples=v.samples,
                                 temperature=v.temperature, max_new_tokens=v.max_new_tokens, seed=ctx.seed("sampling"),
                                 system=v.system, user=v.user)
        stats = gen.record()
    finally:
        gen.close()
    rows = []
    for r, solution, vs in zip(kept.itertuples(), solutions, verdicts):
        decision = apply_policy(confidence_of(vs), v.policy, v.threshold)
        rows.append({"question_id": r.question_id, "question": r.question, "majority_answer": r.majority_answer,
                     "p_hat": r.p_hat, "solution": stored_text(solution), "verdicts": [str(x) for x in vs],
                     "yes": sum(x is True for x in vs), "no": sum(x is False for x in vs),
                     "unparsed": sum(x is None for x in vs), "confidence": decision.confidence,
                     "kept": decision.kept, "weight": decision.weight, "drop_reason": decision.reason})
    df = pd.DataFrame(rows, columns=VERDICT_COLUMNS)
    train_rows = df[df["kept"]]
    train = solver_train_table(train_rows, "majority_answer", train_rows["weight"])
    write_parquet_atomic(df, verdicts_file)
    write_parquet_atomic(train, train_file)
    n_verdicts = int(df[["yes", "no", "unparsed"]].to_numpy().sum()) if len(df) else 0
    summary = {"verifier_model": spec, "kind": v.kind, "policy": v.policy, "threshold": v.threshold,
               "questions": len(df), "kept": len(train), "mean_confidence": float(df["confidence"].mean())
               if len(df) else 0.0, "verdict_parse_rate": 1 - df["unparsed"].sum() / n_verdicts
               if n_verdicts else 0.0, "generation": stats}
    if train.empty:
        raise StageError(f"The Verifier kept none of the {len(df)} labels (policy {v.policy}, threshold "
                         f"{v.threshold}, verdict parse rate {summary['verdict_parse_rate']:.0%}). Lower "
                         "verifier.threshold, use verifier.policy: weight, or check verdicts.parquet.")
    ctx.finish(inputs={"votes": str(votes_file), "verifier_model": spec},
               outputs=["verdicts.parquet", "solver_train.parquet"], summary=summary)
    return StageResult(summary, {"verdicts": df, "solver_train": train})
