"""Stage 4: GRPO for the Solver on the kept questions with their (pseudo-)labels.

The labels are the Verifier's training table when it ran, else the vote's;
`label_source: oracle` is the oracle-label control.
"""

from __future__ import annotations

import pandas as pd

from rzero_lib.engine.oracles import make_oracle
from rzero_lib.pipeline.context import StageContext, StageError, StageResult
from rzero_lib.pipeline.stages.grpo_phase import (
    curve_summary,
    launched_training,
    launches,
    load_training,
    training_engine_record,
)
from rzero_lib.training.roles import train_solver


def solver_training_set(ctx: StageContext):
    """The Solver's training table for this iteration: the Verifier's when it ran, else the vote's."""
    k = ctx.iteration
    verified = ctx.run.stage_dir(k, "verification") / "solver_train.parquet"
    source = verified if ctx.params.verifier.enabled else ctx.run.stage_dir(k, "voting") / "solver_train.parquet"
    if not source.exists():
        raise StageError(f"the Solver's training set {source} does not exist yet; run the earlier stages first")
    return pd.read_parquet(source), source


def run_solver_training(ctx: StageContext, recompute: bool = False) -> StageResult:
    if ctx.done and not recompute:
        return load_training(ctx)
    p = ctx.params.solver_training
    k = ctx.iteration
    train, source = solver_training_set(ctx)
    label_note = "majority vote"
    if p.label_source == "oracle":
        train, label_note = oracle_labels(ctx, train)
    if p.max_questions is not None and len(train) > p.max_questions:
        train = train.sample(n=p.max_questions, random_state=ctx.seed("subsample")).reset_index(drop=True)
    if train.empty:
        raise StageError(f"the Solver's training set is empty ({source}); see the voting stage's drop reasons")
    start = ctx.run.solver_model(k - 1)
    _, solver_prompt = ctx.prompts()
    weights = train["weight"].tolist() if "weight" in train and (train["weight"] != 1.0).any() else None
    arguments = dict(params=p, solver_prompt=solver_prompt, output_dir=ctx.folder, engine=ctx.params.engine,
                     seed=ctx.seed("grpo"), weights=weights)
    launched = launches(p)
    if launched:
        result = launched_training(ctx, "solver", start_model=start, questions=train["question"].tolist(),
                                   labels=train["label"].tolist(), **arguments)
    else:
        result = train_solver(start, train["question"].tolist(), train["label"].tolist(), **arguments)
    history = pd.DataFrame(result.log_history)
    summary = {**result.summary(), "training_questions": len(train), "labels": label_note,
               **curve_summary(history, "reward"), "launched": launched,
               "engine": training_engine_record(p, result, launched)}
    ctx.finish(inputs={"start_model": start, "training_set": str(source)}, outputs=["model", "log_history.jsonl"],
               summary=summary, extra={"model": str(result.model_dir)})
    return StageResult(summary, {"log_history": history, "train": train})


def oracle_labels(ctx: StageContext, train):
    """Ablation `solver_training.label_source: oracle`: replace pseudo-labels by the oracle's answers."""
    with make_oracle(ctx.params, ctx.params.analysis.oracle) as oracle:  # a model oracle frees its model
        answers = oracle.answer_many(train["question"].tolist())
        name = oracle.name
    train = train.assign(label=answers)
    covered = train["label"].notna()
    return train[covered].reset_index(drop=True), f"oracle ({name}; {int(covered.sum())}/{len(covered)} covered)"
