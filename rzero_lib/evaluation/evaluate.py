"""Evaluating one model on benchmarks: decoding per benchmark, honest scoring, an optional judge, the cross-iteration table.

Greedy by default, the mean over k samples where configured (the paper: 32 for
AMC/AIME). Accuracy is per item averaged over its samples, then over items (the
standard error is that of the per-item means). A `limit` subsample is reported
in every row. An optional OpenAI-compatible judge re-checks rule-wrong
responses into a separate column (`judge_correct`), never into `accuracy`.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

from rzero_lib.engine.openai_client import chat_completion
from rzero_lib.evaluation.math_sets import MATH_BENCHMARKS
from rzero_lib.evaluation.registry import get_spec, load_benchmark
from rzero_lib.evaluation.scoring import score_responses_detailed
from rzero_lib.prompts import PromptSpec, solver_messages
from rzero_lib.sampling import Generator, SamplingConfig
from rzero_lib.seeds import derive_seed
from rzero_lib.values import stored_text

SCORE_COLUMNS = ["benchmark", "category", "n", "total", "limit", "subsampled", "accuracy", "stderr", "num_samples",
                 "decoding", "max_new_tokens", "timeouts", "judge_accuracy", "source"]
SAMPLE_COLUMNS = ["benchmark", "id", "sample", "response", "extracted", "gold", "correct", "timed_out",
                  "judge_correct"]


def decoding_settings(name: str, params) -> tuple[SamplingConfig, str]:
    """Sampling settings of one benchmark under the evaluation parameters, and a label for tables."""
    spec = get_spec(name)
    n = params.num_samples.get(name, spec.num_samples)
    max_new = params.max_new_tokens or spec.max_new_tokens
    if n <= 1:
        return SamplingConfig(n=1, temperature=0.0, max_new_tokens=max_new), "greedy"
    temperature = params.sample_temperature
    top_p = params.sample_top_p
    return (SamplingConfig(n=n, temperature=temperature, top_p=top_p, max_new_tokens=max_new),
            f"mean@{n} (T={temperature:g}, top_p={top_p:g})")


def evaluate_model(generator: Generator, benchmarks: Sequence[str], params, solver_prompt: PromptSpec, *,
                   seed: int = 0, progress: bool = True):
    """Scores and samples tables for one model (pandas DataFrames)."""
    import pandas as pd

    score_rows, sample_rows = [], []
    for name in benchmarks:
        items = load_benchmark(name, data_dir=params.data_dir, limit=params.limit, seed=seed)
        if not items:
            raise ValueError(f"benchmark {name} has no items")
        sampling, label = decoding_settings(name, params)
        sampling = dataclasses.replace(sampling, seed=derive_seed(seed, "evaluation", name))
        responses = generator.generate([solver_messages(solver_prompt, it.prompt) for it in items], sampling,
                                       progress=f"evaluating {name}" if progress else False)
        flat_items = [it for it, group in zip(items, responses) for _ in group]
        flat_resp = [r for group in responses for r in group]
        scores = score_responses_detailed(flat_items, flat_resp)
        judge = judge_wrong_answers(params, flat_items, scores)
        per_item: dict[str, list[float]] = {}
        for k, (it, resp, sc) in enumerate(zip(flat_items, flat_resp, scores)):
            sample_index = k % sampling.n
            per_item.setdefault(it.id, []).append(float(sc.correct))
            sample_rows.append({"benchmark": name, "id": it.id, "sample": sample_index,
                                "response": stored_text(resp), "extracted": sc.extracted,
                                "gold": it.gold, "correct": sc.correct, "timed_out": sc.timed_out,
                                "judge_correct": judge[k] if judge is not None else None})
        item_means = [sum(v) / len(v) for v in per_item.values()]
        n = len(item_means)
        acc = sum(item_means) / n
        var = sum((x - acc) ** 2 for x in item_means) / (n - 1) if n > 1 else 0.0
        judge_acc = None
        if judge is not None:
            judge_acc = sum(bool(j) or sc.correct for j, sc in zip(judge, scores)) / len(scores)
        score_rows.append({"benchmark": name, "category": get_spec(name).category, "n": n, "total": items.total,
                           "limit": params.limit, "subsampled": items.subsampled, "accuracy": acc,
                           "stderr": math.sqrt(var / n) if n > 1 else 0.0, "num_samples": sampling.n,
                           "decoding": label, "max_new_tokens": sampling.max_new_tokens,
                           "timeouts": sum(s.timed_out for s in scores), "judge_accuracy": judge_acc,
                           "source": items.source})
    return pd.DataFrame(score_rows, columns=SCORE_COLUMNS), pd.DataFrame(sample_rows, columns=SAMPLE_COLUMNS)


# --------------------------------------------------------------------------
# optional judge
# --------------------------------------------------------------------------

JUDGE_PROMPT = (
    "You check answers to math and science questions. Reference answer: {gold}\n"
    "Candidate's final answer: {pred}\n"
    "Are they the same answer (mathematically equivalent, or the same option)? Reply with exactly 'yes' or 'no'."
)


def judge_wrong_answers(params, items, scores) -> list[bool | None] | None:
    """Re-check rule-wrong responses with an OpenAI-compatible judge; None when no judge is configured."""
    judge = params.judge
    if not judge.enabled:
        return None
    out: list[bool | None] = [None] * len(items)
    for k, (it, sc) in enumerate(zip(items, scores)):
        if sc.correct or sc.extracted is None:
            continue
        reply = chat_completion(judge.base_url, judge.model, judge.api_key_env,
                                [{"role": "user", "content": JUDGE_PROMPT.format(gold=it.gold, pred=sc.extracted)}],
                                max_tokens=4, temperature=judge.temperature)
        out[k] = reply.strip().lower().startswith("yes")
    return out


# --------------------------------------------------------------------------
# cross-iteration table
# --------------------------------------------------------------------------


def cross_iteration_table(scores):
    """Accuracy (%) per iteration × benchmark (paper column order), math average, delta vs base."""
    import pandas as pd

    if scores.empty:
        return pd.DataFrame()
    wide = scores.pivot_table(index="iteration", columns="benchmark", values="accuracy", aggfunc="first") * 100
    order = [b for b in MATH_BENCHMARKS if b in wide.columns] + sorted(c for c in wide.columns
                                                                       if c not in MATH_BENCHMARKS)
    wide = wide[order]
    math_cols = [b for b in MATH_BENCHMARKS if b in wide.columns]
    avg_cols = math_cols or list(wide.columns)
    wide["average"] = wide[avg_cols].mean(axis=1)
    if 0 in wide.index:
        wide["delta_vs_base"] = wide["average"] - wide.loc[0, "average"]
    wide.index = ["base" if i == 0 else f"iter {i}" for i in wide.index]
    wide.index.name = "model"
    limits = scores["limit"].dropna().unique()
    wide.attrs["note"] = (f"subsampled: limit={int(limits[0])} items per benchmark" if len(limits) else
                          "full benchmarks")
    return wide.round(2)


def table_markdown(table) -> str:
    if table.empty:
        return "(no evaluation scores yet)\n"
    cols = [table.index.name or ""] + [str(c) for c in table.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for idx, row in table.iterrows():
        lines.append("| " + " | ".join([str(idx)] + [f"{v:.2f}" if isinstance(v, float) else str(v)
                                                      for v in row]) + " |")
    note = table.attrs.get("note")
    return "\n".join(lines) + (f"\n\n{note}\n" if note else "\n")

