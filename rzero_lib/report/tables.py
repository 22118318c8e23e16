"""Per-iteration tables of the report: voting, question diversity, training curves."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from rzero_lib.rewards import bleu_distance_condensed, clusters_from_condensed, repetition_clusters
from rzero_lib.seeds import derive_seed
from rzero_lib.stats import ratio
from rzero_lib.values import present

DIVERSITY_MAX_QUESTIONS = 1000
CHALLENGER_CURVES = (("reward", "Challenger reward"), ("challenger/uncertainty", "uncertainty term"),
                     ("challenger/penalty", "repetition penalty"),
                     ("challenger/format_failure_rate", "format-failure rate"))
SOLVER_CURVES = (("reward", "Solver reward"), ("frac_reward_zero_std", "frac_reward_zero_std"),
                 ("kl", "KL to the phase's start"), ("solver/boxed_rate", "boxed-answer rate"))


VOTING_COLUMNS = ["iteration", "questions", "kept", "kept_fraction", "mean_p_hat", "mean_p_hat_kept",
                  "answered_rate", "drop_reasons"]


def voting_summary(votes: pd.DataFrame) -> pd.DataFrame:
    """Per iteration: questions voted, kept, kept fraction, mean p̂, answer rate, drop reasons."""
    rows = []
    if not votes.empty:
        for k, g in votes.groupby("iteration", sort=True):
            kept = g[g["kept"].astype(bool)]
            m = g["answers"].map(len)
            reasons = g["drop_reason"].dropna().value_counts()
            rows.append({"iteration": int(k), "questions": len(g), "kept": len(kept),
                         "kept_fraction": ratio(len(kept), len(g)), "mean_p_hat": float(g["p_hat"].mean()),
                         "mean_p_hat_kept": float(kept["p_hat"].mean()) if len(kept) else math.nan,
                         "answered_rate": ratio(float(g["num_answered"].sum()), float(m.sum())),
                         "drop_reasons": json.dumps({str(r): int(c) for r, c in reasons.items()})})
    return pd.DataFrame(rows, columns=VOTING_COLUMNS)


def distinct_n(questions: Sequence[str], n: int) -> float:
    """Distinct n-grams / all n-grams over the questions (whitespace tokens); nan without n-grams."""
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    grams = [tuple(tokens[i:i + n]) for q in questions for tokens in [str(q).split()]
             for i in range(len(tokens) - n + 1)]
    return ratio(len(set(grams)), len(grams))


def self_bleu(questions: Sequence[str]) -> float:
    """Mean pairwise sentence BLEU (1 − the repetition penalty's distance); nan below 2 questions."""
    questions = [str(q) for q in questions]
    if len(questions) < 2:
        return math.nan
    return float(np.mean(1.0 - bleu_distance_condensed(questions)))


def cluster_sizes(questions: Sequence[str], threshold: float = 0.5) -> list[int]:
    """Sizes (largest first) of the repetition penalty's clusters of these questions."""
    labels = repetition_clusters([str(q) for q in questions], threshold)
    return sorted((int(c) for c in np.bincount(np.asarray(labels, dtype=np.int64))), reverse=True) if labels else []


CLUSTER_SIZE_BUCKETS = (("1", 1, 1), ("2", 2, 2), ("3–5", 3, 5), ("6–10", 6, 10), ("11–50", 11, 50),
                        (">50", 51, math.inf))


def cluster_size_shares(sizes: Sequence[int]) -> dict[str, float]:
    """Share of questions whose cluster size falls in each bucket of `CLUSTER_SIZE_BUCKETS`."""
    total = sum(sizes)
    return {label: ratio(sum(s for s in sizes if low <= s <= high), total)
            for label, low, high in CLUSTER_SIZE_BUCKETS}


DIVERSITY_COLUMNS = ["iteration", "parsed_questions", "analysed", "unique_fraction", "self_bleu", "distinct_1",
                     "distinct_2", "clusters", "largest_cluster", "largest_cluster_fraction", "singleton_fraction",
                     "cluster_sizes"]


def diversity_table(questions: pd.DataFrame, threshold: float = 0.5, max_questions: int = DIVERSITY_MAX_QUESTIONS,
                    seed: int = 0) -> pd.DataFrame:
    """Per iteration, over (a fixed-seed sample of at most `max_questions`) parsed questions."""
    rows = []
    if not questions.empty:
        parsed = questions[questions["question"].notna()]
        for k, g in parsed.groupby("iteration", sort=True):
            g = g.sort_values("question_id") if "question_id" in g else g
            texts = g["question"].astype(str).tolist()
            if len(texts) > max_questions:
                texts = g.sample(n=max_questions, random_state=derive_seed(seed, "diversity", int(k)))["question"].astype(str).tolist()
            if len(texts) >= 2:
                condensed = bleu_distance_condensed(texts)
                bleu = float(np.mean(1.0 - condensed))
                labels = clusters_from_condensed(condensed, threshold)
                sizes = sorted((int(c) for c in np.bincount(np.asarray(labels))), reverse=True)
            else:
                bleu, sizes = math.nan, [1] * len(texts)
            rows.append({"iteration": int(k), "parsed_questions": len(g), "analysed": len(texts),
                         "unique_fraction": ratio(len(set(texts)), len(texts)), "self_bleu": bleu,
                         "distinct_1": distinct_n(texts, 1), "distinct_2": distinct_n(texts, 2),
                         "clusters": len(sizes), "largest_cluster": max(sizes) if sizes else 0,
                         "largest_cluster_fraction": ratio(max(sizes) if sizes else 0, len(texts)),
                         "singleton_fraction": ratio(sum(1 for s in sizes if s == 1), len(texts)),
                         "cluster_sizes": json.dumps(sizes)})
    return pd.DataFrame(rows, columns=DIVERSITY_COLUMNS)


def training_curves(log: pd.DataFrame, metrics: Sequence[str]) -> pd.DataFrame:
    """Long table (iteration, step, global_step, metric, value) of the logged metrics.

    `global_step` puts all iterations on one axis: iteration k's steps follow
    the last step of iteration k−1. Rows without a metric (TRL's final
    summary row) are skipped.
    """
    cols = ["iteration", "step", "global_step", "metric", "value"]
    if log.empty:
        return pd.DataFrame(columns=cols)
    rows, offset = [], 0
    for k, g in log.groupby("iteration", sort=True):
        steps = g["step"] if "step" in g else pd.Series(range(1, len(g) + 1), index=g.index)
        steps = steps.fillna(0).astype(int)
        for metric in metrics:
            if metric not in g:
                continue
            for step, value in zip(steps, g[metric]):
                if present(value):
                    rows.append({"iteration": int(k), "step": int(step), "global_step": offset + int(step),
                                 "metric": metric, "value": float(value)})
        offset += int(steps.max()) if len(steps) else 0
    return pd.DataFrame(rows, columns=cols)


def training_summary(curves: pd.DataFrame, role: str) -> pd.DataFrame:
    """First, last and mean of every metric per iteration."""
    cols = ["role", "iteration", "metric", "points", "first", "last", "mean"]
    if curves.empty:
        return pd.DataFrame(columns=cols)
    rows = []
    for (k, metric), g in curves.groupby(["iteration", "metric"], sort=True):
        g = g.sort_values("step")
        rows.append({"role": role, "iteration": int(k), "metric": metric, "points": len(g),
                     "first": float(g["value"].iloc[0]), "last": float(g["value"].iloc[-1]),
                     "mean": float(g["value"].mean())})
    return pd.DataFrame(rows, columns=cols)
