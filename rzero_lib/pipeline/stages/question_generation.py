"""Stage 2: the Challenger of this iteration writes N candidate questions; each is parsed and kept or dropped.

Exact duplicates are counted (the summary's `duplicate_rate`) and dropped only with
`question_generation.drop_duplicates` (neither the paper nor the authors' code drops them);
`require_challenger_answer` drops outputs without the Challenger's boxed answer (authors' code).
"""

from __future__ import annotations

import pandas as pd

from rzero_lib.answers import parse_challenger_output
from rzero_lib.atomic_files import write_parquet_atomic
from rzero_lib.domains import get_domain
from rzero_lib.pipeline.context import StageContext, StageError, StageResult
from rzero_lib.sampling import SamplingConfig
from rzero_lib.values import stored_text


def run_question_generation(ctx: StageContext, recompute: bool = False) -> StageResult:
    out_file = ctx.folder / "questions.parquet"
    if ctx.done and not recompute:
        return ctx.loaded_result(questions="questions.parquet")
    p = ctx.params.question_generation
    k = ctx.iteration
    challenger = ctx.run.challenger_model(k)
    challenger_prompt, _ = ctx.prompts()
    gen = ctx.generator(challenger)
    try:
        sampling = SamplingConfig(n=p.num_questions, temperature=p.temperature, top_p=p.top_p, top_k=p.top_k,
                                  max_new_tokens=p.max_new_tokens, seed=ctx.seed("sampling"))
        outputs = gen.generate([challenger_prompt.messages()], sampling, progress="challenger writing questions")[0]
        stats = gen.record()
    finally:
        gen.close()
    rows, seen = [], set()
    question_form = get_domain(ctx.params.domain).question_form
    for i, text in enumerate(outputs):
        parsed = parse_challenger_output(text, question_form)
        duplicate = parsed.ok and parsed.question in seen
        if parsed.ok:
            seen.add(parsed.question)
        reason = None if parsed.ok else f"unparseable:{parsed.failure}"
        if reason is None and p.require_challenger_answer and parsed.answer is None:
            reason = "no_challenger_answer"
        if reason is None and duplicate and p.drop_duplicates:
            reason = "duplicate"
        rows.append({"question_id": f"it{k:02d}-q{i:05d}", "iteration": k, "output": stored_text(text),
                     "question": parsed.question, "challenger_answer": parsed.answer,
                     "parse_failure": parsed.failure, "duplicate": duplicate, "drop_reason": reason,
                     "kept": reason is None})
    df = pd.DataFrame(rows)
    write_parquet_atomic(df, out_file)
    n = len(df)
    parsed_n = int(df["parse_failure"].isna().sum())
    summary = {"challenger_model": challenger, "generated": n, "parsed": parsed_n,
               "parse_rate": parsed_n / n if n else 0.0,
               "challenger_boxed_rate": float(df["challenger_answer"].notna().mean()) if n else 0.0,
               "duplicates": int(df["duplicate"].sum()),
               "duplicate_rate": float(df["duplicate"].sum()) / parsed_n if parsed_n else 0.0,
               "duplicates_dropped": int((df["drop_reason"] == "duplicate").sum()), "kept": int(df["kept"].sum()),
               "generation": stats}
    off_form = int((df["parse_failure"] == "off_form").sum())
    summary["off_form"] = off_form
    if summary["kept"] == 0:
        form_note = (f"; {off_form} more contain a question outside the '{ctx.params.domain}' domain's form"
                     if off_form else "")
        raise StageError(
            f"The Challenger produced no parseable question ({parsed_n} of {n} outputs contain "
            f"<question>...</question>{form_note}). A small model usually needs format demonstrations "
            "(prompts.challenger.num_demonstrations: 3) or more max_new_tokens; see questions.parquet "
            f"in {ctx.folder} for what it wrote.")
    ctx.finish(inputs={"challenger_model": challenger}, outputs=["questions.parquet"], summary=summary)
    return StageResult(summary, {"questions": df})
