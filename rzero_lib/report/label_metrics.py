"""Pseudo-label quality against an oracle: fixed label samples, label accuracy with Wilson intervals, accuracy by
agreement, TTRL-style metrics, and the Verifier's effect. Definitions: docs/report.md."""

from __future__ import annotations

import math
from collections.abc import Sequence

import pandas as pd

from rzero_lib.answers import equivalent_many
from rzero_lib.seeds import derive_seed
from rzero_lib.stats import CONFIDENCE, ratio, wilson_interval
from rzero_lib.values import present
from rzero_lib.verifier import verifier_label_metrics
from rzero_lib.voting import band_filter

SAMPLE_COLUMNS = ["iteration", "question_id", "sample", "question", "challenger_answer", "answers",
                  "majority_answer", "p_hat", "majority_count", "m", "kept", "drop_reason"]


def label_sample(votes: pd.DataFrame, size: int, seed: int = 0, which: str = "kept") -> pd.DataFrame:
    """A fixed random sample (at most `size` per iteration) of the kept questions,
    or (`which="outside_band"`) of those dropped for being outside the band.

    Deterministic: rows are ordered by question_id before sampling with
    `derive_seed(seed, "label sample", iteration)`, and returned in question_id order.
    """
    if size < 1:
        raise ValueError(f"size must be >= 1, got {size}")
    if votes.empty:
        return pd.DataFrame(columns=SAMPLE_COLUMNS)
    if which == "kept":
        pool = votes[votes["kept"].astype(bool)]
    elif which == "outside_band":
        pool = votes[(votes["drop_reason"] == "outside_band") & votes["majority_answer"].notna()]
    else:
        raise ValueError(f"which must be 'kept' or 'outside_band', got {which!r}")
    frames = []
    for k, group in pool.groupby("iteration", sort=True):
        group = group.sort_values("question_id")
        if len(group) > size:
            group = group.sample(n=size, random_state=derive_seed(seed, "label sample", int(k))).sort_values(
                "question_id")
        frames.append(group)
    if not frames:
        return pd.DataFrame(columns=SAMPLE_COLUMNS)
    out = pd.concat(frames, ignore_index=True)
    out["sample"] = which
    out["m"] = out["answers"].map(len)
    return out[SAMPLE_COLUMNS].reset_index(drop=True)


def answer_list(value) -> list:
    """The answers of a table cell as a list, missing ones as None."""
    if value is None:
        return []
    return [str(a) if present(a) else None for a in list(value)]



def score_labels(sample: pd.DataFrame, oracle_answers: Sequence[str | None],
                 timeout_s: float | None = None) -> pd.DataFrame:
    """The sample with the oracle's answers and what they say about each label.

    Adds `oracle_answer`, `label_correct` (majority ≡ oracle; None where the
    oracle could not answer), `challenger_correct`, and for TTRL's reward
    accuracy `reward_agree` / `reward_total`: over the m voting answers, how
    often `[answer ≡ majority] == [answer ≡ oracle]` (a missing answer earns 0
    under both). All equivalences go through `rzero_lib.answers.equivalent_many`
    in one batch.
    """
    df = sample.reset_index(drop=True).copy()
    oracle_answers = list(oracle_answers)
    if len(oracle_answers) != len(df):
        raise ValueError(f"{len(oracle_answers)} oracle answers for {len(df)} sampled questions")
    df["oracle_answer"] = pd.Series([a if present(a) else None for a in oracle_answers], dtype=object)
    pairs: list[tuple] = []
    plan = []  # per row: (start index in pairs, number of voting answers) or None
    for row in df.itertuples(index=False):
        if row.oracle_answer is None:
            plan.append(None)
            continue
        majority = row.majority_answer if present(row.majority_answer) else None
        challenger = row.challenger_answer if present(row.challenger_answer) else None
        answers = answer_list(row.answers)
        plan.append((len(pairs), len(answers)))
        pairs.append((majority, row.oracle_answer))
        pairs.append((challenger, row.oracle_answer))
        for a in answers:
            pairs.append((a, majority))
            pairs.append((a, row.oracle_answer))
    verdicts = equivalent_many(pairs, timeout_s=timeout_s) if pairs else []
    label, challenger_ok, agree, total = [], [], [], []
    for entry in plan:
        if entry is None:
            label.append(None)
            challenger_ok.append(None)
            agree.append(None)
            total.append(None)
            continue
        start, m = entry
        label.append(bool(verdicts[start]))
        challenger_ok.append(bool(verdicts[start + 1]))
        rewards = verdicts[start + 2:start + 2 + 2 * m]
        agree.append(sum(rewards[2 * i] == rewards[2 * i + 1] for i in range(m)))
        total.append(m)
    df["label_correct"] = pd.Series(label, dtype=object)
    df["challenger_correct"] = pd.Series(challenger_ok, dtype=object)
    df["reward_agree"] = pd.Series(agree, dtype=object)
    df["reward_total"] = pd.Series(total, dtype=object)
    return df


LABEL_COLUMNS = ["iteration", "kept_questions", "sampled", "covered", "coverage", "correct", "label_accuracy",
                 "ci_low", "ci_high", "majority_ratio", "reward_accuracy", "challenger_accuracy"]


def label_accuracy_table(scored: pd.DataFrame, votes: pd.DataFrame | None = None,
                         confidence: float = CONFIDENCE) -> pd.DataFrame:
    """Per iteration: label accuracy on the covered kept sample with its Wilson interval,
    coverage, majority ratio (mean p̂ of all kept questions when `votes` is given,
    else of the sample), reward accuracy and the Challenger's answer accuracy."""
    kept = scored[scored["sample"] == "kept"] if not scored.empty else scored
    rows = []
    for k, group in kept.groupby("iteration", sort=True):
        covered = group[group["oracle_answer"].notna()]
        n = len(covered)
        correct = int(covered["label_correct"].astype(bool).sum()) if n else 0
        low, high = wilson_interval(correct, n, confidence)
        if votes is not None and not votes.empty:
            kept_votes = votes[(votes["iteration"] == k) & votes["kept"].astype(bool)]
        else:
            kept_votes = group
        rows.append({
            "iteration": int(k), "kept_questions": len(kept_votes), "sampled": len(group), "covered": n,
            "coverage": ratio(n, len(group)), "correct": correct, "label_accuracy": ratio(correct, n),
            "ci_low": low, "ci_high": high,
            "majority_ratio": float(kept_votes["p_hat"].mean()) if len(kept_votes) else math.nan,
            "reward_accuracy": ratio(float(covered["reward_agree"].sum()), float(covered["reward_total"].sum()))
            if n else math.nan,
            "challenger_accuracy": ratio(int(covered["challenger_correct"].astype(bool).sum()), n),
        })
    return pd.DataFrame(rows, columns=LABEL_COLUMNS)


BUCKET_COLUMNS = ["scope", "majority_count", "m", "p_hat", "in_band", "n", "correct", "accuracy", "ci_low",
                  "ci_high"]


def accuracy_by_agreement(scored: pd.DataFrame, band_delta: float = 0.25,
                          band_bounds: tuple[float, float] | None = None,
                          confidence: float = CONFIDENCE) -> pd.DataFrame:
    """Label accuracy per agreement bucket (majority_count of m), pooled ("all") and per iteration."""
    if scored.empty:
        return pd.DataFrame(columns=BUCKET_COLUMNS)
    covered = scored[scored["oracle_answer"].notna()]
    scopes = [("all", covered)] + [(f"iter {int(k)}", g) for k, g in covered.groupby("iteration", sort=True)]
    rows = []
    for scope, group in scopes:
        for (count, m), bucket in group.groupby(["majority_count", "m"], sort=True):
            n = len(bucket)
            correct = int(bucket["label_correct"].astype(bool).sum())
            low, high = wilson_interval(correct, n, confidence)
            p_hat = count / m if m else 0.0
            rows.append({"scope": scope, "majority_count": int(count), "m": int(m), "p_hat": p_hat,
                         "in_band": band_filter(p_hat, band_delta, band_bounds), "n": n, "correct": correct,
                         "accuracy": correct / n, "ci_low": low, "ci_high": high})
    return pd.DataFrame(rows, columns=BUCKET_COLUMNS)



VERIFIER_COLUMNS = ["iteration", "band_questions", "covered", "threshold", "without_n", "without_accuracy",
                    "without_ci_low", "without_ci_high", "with_n", "with_accuracy", "with_ci_low", "with_ci_high",
                    "weighted_accuracy", "wrong_labels_removed", "right_labels_lost", "top_p_hat_accuracy",
                    "top_p_hat_ci_low", "top_p_hat_ci_high"]


def verifier_table(verdicts: pd.DataFrame, oracle_answers: Sequence[str | None], threshold: float,
                   timeout_s: float | None = None) -> pd.DataFrame:
    """Per iteration: label accuracy of the band-passing labels with and without the Verifier.

    With the Verifier = the questions whose confidence reaches `threshold`
    (the top-confidence subset of that size); without = every band-passing
    label, and the same number chosen by the vote's own p̂; all against the oracle, on the questions it could answer
    (`rzero_lib.verifier.verifier_label_metrics`).
    """
    if verdicts.empty:
        return pd.DataFrame(columns=VERIFIER_COLUMNS)
    df = verdicts.reset_index(drop=True).assign(oracle_answer=[a if present(a) else None for a in oracle_answers])
    covered = df[df["oracle_answer"].notna()]
    correct = equivalent_many(list(zip(covered["majority_answer"], covered["oracle_answer"])), timeout_s=timeout_s)
    covered = covered.assign(label_correct=correct)
    rows = []
    for k, group in df.groupby("iteration"):
        mine = covered[covered["iteration"] == k]
        m = verifier_label_metrics(mine["label_correct"].tolist(), mine["confidence"].tolist(), threshold,
                                   p_hat=mine["p_hat"].tolist())
        w, o, v = m["with_verifier"], m["without_verifier"], m["top_p_hat"]
        rows.append({"iteration": int(k), "band_questions": len(group), "covered": len(mine), "threshold": threshold,
                     "without_n": o["n"], "without_accuracy": o["accuracy"], "without_ci_low": o["ci_low"],
                     "without_ci_high": o["ci_high"], "with_n": w["n"], "with_accuracy": w["accuracy"],
                     "with_ci_low": w["ci_low"], "with_ci_high": w["ci_high"],
                     "weighted_accuracy": m["weighted_accuracy"], "wrong_labels_removed": m["wrong_labels_removed"],
                     "right_labels_lost": m["right_labels_lost"], "top_p_hat_accuracy": v["accuracy"],
                     "top_p_hat_ci_low": v["ci_low"], "top_p_hat_ci_high": v["ci_high"]})
    return pd.DataFrame(rows, columns=VERIFIER_COLUMNS)
