"""Stage 3: the Solver of the previous iteration answers each question m times; majority vote, p̂, filters."""

from __future__ import annotations

import pandas as pd

from rzero_lib.answers import extract_boxed
from rzero_lib.atomic_files import write_parquet_atomic
from rzero_lib.domains import get_domain
from rzero_lib.pipeline.context import StageContext, StageError, StageResult
from rzero_lib.pipeline.stages.tables import VOTE_COLUMNS, solver_train_table
from rzero_lib.prompts import solver_messages
from rzero_lib.sampling import SamplingConfig
from rzero_lib.values import stored_text
from rzero_lib.voting import drop_reason, filter_settings_of, majority_vote_many, vote_rules_of


def run_voting(ctx: StageContext, recompute: bool = False) -> StageResult:
    votes_file, train_file = ctx.folder / "votes.parquet", ctx.folder / "solver_train.parquet"
    if ctx.done and not recompute:
        return ctx.loaded_result(votes="votes.parquet", solver_train="solver_train.parquet")
    p = ctx.params.voting
    k = ctx.iteration
    questions_file = ctx.run.stage_dir(k, "question_generation") / "questions.parquet"
    questions = pd.read_parquet(questions_file)
    questions = questions[questions["kept"]].reset_index(drop=True)
    solver_spec = ctx.run.solver_model(k - 1)
    _, solver_prompt = ctx.prompts()
    gen = ctx.generator(solver_spec)
    try:
        sampling = SamplingConfig(n=p.num_samples, temperature=p.temperature, top_p=p.top_p, top_k=p.top_k,
                                  max_new_tokens=p.max_new_tokens, seed=ctx.seed("sampling"))
        responses = gen.generate([solver_messages(solver_prompt, q) for q in questions["question"]], sampling,
                                 progress=f"solver voting (m={p.num_samples})")
        stats = gen.record()
    finally:
        gen.close()
    answers = [[extract_boxed(r) for r in group] for group in responses]
    votes = majority_vote_many(answers, timeout_s=p.equivalence_timeout_s, rules=vote_rules_of(p))
    settings = filter_settings_of(p)
    domain = get_domain(ctx.params.domain)
    rows = []
    for (_, q), group, ans, vote in zip(questions.iterrows(), responses, answers, votes):
        reason = drop_reason(q["question"], vote, settings)
        rows.append({"question_id": q["question_id"], "iteration": k, "question": q["question"],
                     "challenger_answer": q["challenger_answer"], "responses": [stored_text(r) for r in group],
                     "answers": ans, "majority_answer": vote.answer, "p_hat": vote.p_hat,
                     "majority_count": vote.majority_count, "num_answered": vote.num_answered,
                     "group_answers": [g.answer for g in vote.groups], "group_counts": [g.count for g in vote.groups],
                     "drop_reason": reason, "kept": reason is None, "difficulty": domain.difficulty(q["question"])})
    df = pd.DataFrame(rows, columns=VOTE_COLUMNS)
    train = solver_train_table(df[df["kept"]], "majority_answer", 1.0)
    write_parquet_atomic(df, votes_file)
    write_parquet_atomic(train, train_file)
    n_samples = sum(len(a) for a in answers)
    summary = {"solver_model": solver_spec, "questions": len(df), "m": p.num_samples,
               "boxed_rate": sum(a is not None for group in answers for a in group) / n_samples if n_samples else 0.0,
               "mean_p_hat": float(df["p_hat"].mean()) if len(df) else 0.0, "kept": len(train),
               "kept_fraction": len(train) / len(df) if len(df) else 0.0,
               "drop_reasons": {str(r): int(c) for r, c in df["drop_reason"].value_counts().items()},
               "generation": stats}
    if len(train) == 0:
        raise StageError(
            f"No question passed the voting filters ({len(df)} voted; drops: {summary['drop_reasons']}). "
            "Widen voting.band_delta, raise question_generation.num_questions, or check the Solver's boxed-answer "
            f"rate ({summary['boxed_rate']:.0%}); votes.parquet in {ctx.folder} has every question.")
    ctx.finish(inputs={"questions": str(questions_file), "solver_model": solver_spec},
               outputs=["votes.parquet", "solver_train.parquet"], summary=summary)
    return StageResult(summary, {"votes": df, "solver_train": train})
