"""Question difficulty: every model's accuracy on every iteration's covered sample, through a generation cache.

The extracted answers of the base model and each trained Solver are cached in
`report/difficulty.parquet`, keyed by the model (a trained Solver by its output
hash), the sampling settings and the prompt, so re-running never asks a model
twice. Sampling follows the voting stage's settings.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import fields

import pandas as pd

from rzero_lib.answers import equivalent_many, extract_boxed
from rzero_lib.atomic_files import write_parquet_atomic
from rzero_lib.pipeline.context import StageContext
from rzero_lib.prompts import prompt_digest, solver_messages
from rzero_lib.report.label_metrics import answer_list
from rzero_lib.report.run_data import RunData
from rzero_lib.sampling import GenerationStats, SamplingConfig
from rzero_lib.seeds import derive_seed
from rzero_lib.stats import ratio

DIFFICULTY_CACHE = "difficulty.parquet"
DIFFICULTY_CACHE_COLUMNS = ["model_key", "sampling_key", "question", "answers", "created_at"]


def score_difficulty(rows: pd.DataFrame, timeout_s: float | None = None) -> pd.DataFrame:
    """`rows` (model, model_iteration, iteration, question_id, oracle_answer, answers) with
    `n_samples` and `n_correct` (answers ≡ oracle answer) added."""
    df = rows.reset_index(drop=True).copy()
    answers = [answer_list(a) for a in df["answers"]]
    pairs = [(a, o) for group, o in zip(answers, df["oracle_answer"]) for a in group]
    verdicts = iter(equivalent_many(pairs, timeout_s=timeout_s) if pairs else [])
    df["n_samples"] = [len(g) for g in answers]
    df["n_correct"] = [sum(next(verdicts) for _ in g) for g in answers]
    return df


def difficulty_long(scored: pd.DataFrame) -> pd.DataFrame:
    """Accuracy of each model on each iteration's questions (correct samples / samples)."""
    cols = ["model", "model_iteration", "iteration", "questions", "samples", "correct", "accuracy"]
    if scored.empty:
        return pd.DataFrame(columns=cols)
    g = scored.groupby(["model_iteration", "model", "iteration"], sort=True).agg(
        questions=("question_id", "nunique"), samples=("n_samples", "sum"), correct=("n_correct", "sum"))
    g = g.reset_index()
    g["accuracy"] = [ratio(c, s) for c, s in zip(g["correct"], g["samples"])]
    return g[cols]


def difficulty_matrix(long: pd.DataFrame) -> pd.DataFrame:
    """Models (rows, base first) × "iter k questions" (columns), accuracy in %."""
    if long.empty:
        return pd.DataFrame()
    wide = long.pivot_table(index=["model_iteration", "model"], columns="iteration", values="accuracy",
                            aggfunc="first") * 100
    wide.index = wide.index.get_level_values("model")
    wide.index.name = "model"
    wide.columns = [f"iter {int(c)} questions" for c in wide.columns]
    return wide.round(2)


def difficulty_models(ctx: StageContext, data: RunData) -> list[tuple[str, int, str, str]]:
    """(label, iteration, spec, cache key) for the base model and every trained Solver."""
    base = ctx.run.base_model()
    models = [("base", 0, base, f"base:{base}")]
    for k in sorted(data.done["solver_training"]):
        spec = ctx.run.solver_model(k)
        models.append((f"solver {k}", k, spec, f"solver_{k}:{data.model_hashes.get(k, '')}"))
    return models


def difficulty_sampling_key(sampling, prompt) -> str:
    return (f"n={sampling.n}|T={sampling.temperature:g}|top_p={sampling.top_p:g}|top_k={sampling.top_k}"
            f"|max_new_tokens={sampling.max_new_tokens}|seed={sampling.seed}|prompt={prompt_digest(prompt)}")


def difficulty_answers(ctx: StageContext, data: RunData, questions: pd.DataFrame,
                       generator_factory: Callable[[str], object] | None = None,
                       generation_records: list | None = None) -> pd.DataFrame:
    """Extracted answers of every model to every covered sampled question, through the cache.

    Returns one row per (model, question): model, model_iteration, iteration,
    question_id, question, oracle_answer, answers. Each generator that ran
    appends its `record()` (engine and totals) to `generation_records`.
    """
    cols = ["model", "model_iteration", "iteration", "question_id", "question", "oracle_answer", "answers"]
    if questions.empty:
        return pd.DataFrame(columns=cols)
    v = ctx.params.voting
    sampling = SamplingConfig(n=ctx.params.analysis.solver_difficulty_samples, temperature=v.temperature,
                              top_p=v.top_p, top_k=v.top_k, max_new_tokens=v.max_new_tokens,
                              seed=derive_seed(ctx.params.seed, "difficulty"))
    _, prompt = ctx.prompts()
    sampling_key = difficulty_sampling_key(sampling, prompt)
    cache_path = ctx.folder / DIFFICULTY_CACHE
    cache = pd.read_parquet(cache_path) if cache_path.exists() else pd.DataFrame(columns=DIFFICULTY_CACHE_COLUMNS)
    factory = generator_factory or ctx.generator
    unique = list(dict.fromkeys(questions["question"].astype(str)))
    rows = []
    for label, k, spec, model_key in difficulty_models(ctx, data):
        mine = cache[(cache["model_key"] == model_key) & (cache["sampling_key"] == sampling_key)]
        known = {q: answer_list(a) for q, a in zip(mine["question"], mine["answers"])}
        missing = [q for q in unique if q not in known]
        if missing:
            gen = factory(spec)
            try:
                outputs = gen.generate([solver_messages(prompt, q) for q in missing], sampling,
                                       progress=f"difficulty: {label} answering")
                if generation_records is not None:
                    generation_records.append(gen.record())
            finally:
                gen.close()
            new = pd.DataFrame({"model_key": model_key, "sampling_key": sampling_key, "question": missing,
                                "answers": [[extract_boxed(t) for t in group] for group in outputs],
                                "created_at": time.strftime("%Y-%m-%dT%H:%M:%S")}, columns=DIFFICULTY_CACHE_COLUMNS)
            cache = new if cache.empty else pd.concat([cache, new], ignore_index=True)
            write_parquet_atomic(cache, cache_path)
            known.update(zip(missing, (answer_list(a) for a in new["answers"])))
        for q in questions.itertuples(index=False):
            rows.append({"model": label, "model_iteration": k, "iteration": int(q.iteration),
                         "question_id": q.question_id, "question": q.question, "oracle_answer": q.oracle_answer,
                         "answers": known[str(q.question)]})
    return pd.DataFrame(rows, columns=cols)



def difficulty_markdown(matrix: pd.DataFrame) -> str:
    if matrix.empty:
        return "(no difficulty data)\n"
    head = "| model | " + " | ".join(matrix.columns) + " |"
    lines = [head, "|" + "---|" * (len(matrix.columns) + 1)]
    for name, row in matrix.iterrows():
        lines.append(f"| {name} | " + " | ".join("–" if pd.isna(v) else f"{v:.1f}" for v in row) + " |")
    return "\n".join(lines) + "\n\naccuracy (%) against the oracle, mean over the sampled answers\n"


def merge_generation_records(records: Sequence[dict]) -> dict:
    """One `generation` entry for a stage that ran several generators (the report's difficulty models): the
    first one's engine (they share the run's engine settings), the totals summed."""
    if not records:
        return {}
    totals = GenerationStats(**{f.name: sum(r.get(f.name, 0) for r in records) for f in fields(GenerationStats)})
    return {"engine": records[0]["engine"], "generators": len(records), **totals.as_dict()}
