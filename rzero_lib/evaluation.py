"""Evaluation of a Solver on the configured benchmarks, scored honestly.

What it does
- `evaluate_model(spec, ...)`: for each benchmark, loads its items
  (`rzero_lib.benchmarks`), asks the Solver (its prompt; greedy, or the mean
  over k samples for AMC/AIME as in the paper) through the generation
  backend's batching, scores every response with the project's `equivalent`
  (with its timeouts), and returns two tables:
  `scores` (benchmark, n, accuracy, stderr, limit, decoding, ...) and
  `samples` (per item and sample: response, extracted answer, gold, correct,
  timed_out).
- An optional judge (any OpenAI-compatible endpoint; the paper re-checked
  with GPT-4o) re-checks the responses the rules scored wrong. Its verdict is
  a separate column (`judge_correct`, `judge_accuracy`), never merged into
  `accuracy`. The key comes from an environment variable, never a file.
- `cross_iteration_table(run_dir)`: base vs every iteration, in the paper's
  column order, with the math average and the delta to the base.

Simplifications
- Accuracy is per item averaged over its samples, then averaged over items;
  the standard error is that of the per-item means.
- A `limit` (fixed-seed subsample) is reported in every table row, so a
  subsampled number is never mistaken for a full one.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

from rzero_lib.benchmarks import MATH_BENCHMARKS, get_spec, load_benchmark, score_responses_detailed
from rzero_lib.generation import Generator, SamplingConfig
from rzero_lib.prompts import PromptSpec, solver_messages

MAX_STORED_RESPONSE_CHARS = 2000

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
    for b, name in enumerate(benchmarks):
        items = load_benchmark(name, data_dir=params.data_dir, limit=params.limit, seed=seed)
        if not items:
            raise ValueError(f"benchmark {name} has no items")
        sampling, label = decoding_settings(name, params)
        sampling = SamplingConfig(**{**sampling.__dict__, "seed": seed * 100 + b})
        responses = generator.generate([solver_messages(solver_prompt, it.prompt) for it in items], sampling,
                                       progress=f"evaluating {name}" if progress else False)
        flat_items = [it for it, group in zip(items, responses) for _ in group]
        flat_resp = [r for group in responses for r in group]
        scores = score_responses_detailed(flat_items, flat_resp)
        judge = _judge(params, flat_items, scores)
        per_item: dict[str, list[float]] = {}
        for k, (it, resp, sc) in enumerate(zip(flat_items, flat_resp, scores)):
            sample_index = k % sampling.n
            per_item.setdefault(it.id, []).append(float(sc.correct))
            sample_rows.append({"benchmark": name, "id": it.id, "sample": sample_index,
                                "response": resp[-MAX_STORED_RESPONSE_CHARS:], "extracted": sc.extracted,
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


def _judge(params, items, scores) -> list[bool | None] | None:
    """Re-check rule-wrong responses with an OpenAI-compatible judge; None when no judge is configured."""
    judge = params.judge
    if not judge.enabled:
        return None
    from rzero_lib.openai_client import chat_completion

    out: list[bool | None] = [None] * len(items)
    for k, (it, sc) in enumerate(zip(items, scores)):
        if sc.correct or sc.extracted is None:
            continue
        reply = chat_completion(judge.base_url, judge.model, judge.api_key_env,
                                [{"role": "user", "content": JUDGE_PROMPT.format(gold=it.gold, pred=sc.extracted)}],
                                max_tokens=4, temperature=0.0)
        out[k] = reply.strip().lower().startswith("yes")
    return out


# --------------------------------------------------------------------------
# cross-iteration table
# --------------------------------------------------------------------------


def load_scores(run_dir: str | Path):
    """All evaluation scores of a run: one row per (iteration, benchmark)."""
    import pandas as pd

    frames = []
    for path in sorted(Path(run_dir).glob("iter_*/evaluation/scores.parquet")):
        if not (path.parent / "manifest.json").exists():
            continue
        df = pd.read_parquet(path)
        df.insert(0, "iteration", int(path.parent.parent.name.split("_")[1]))
        frames.append(df)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["iteration", *SCORE_COLUMNS])


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

