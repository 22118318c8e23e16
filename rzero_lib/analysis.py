"""The analysis report: label-accuracy decline, difficulty, and the co-evolution figures.

What it does
- Reads whatever a run directory holds (finished stages only: a stage folder
  without `manifest.json` is ignored, so a run stopped early is analysed as
  far as it got) and writes into `report/`:
  1. `fig1_label_accuracy`: pseudo-label (majority-vote) accuracy per
     iteration against the oracle, on a fixed-size random sample of each
     iteration's kept questions (`analysis.label_sample_size`, default 200),
     with 95% Wilson intervals; the base model's accuracy on the same
     questions; the paper's numbers as dashed reference series.
  2. `fig2_difficulty`: accuracy of the base model and of every trained
     Solver on each iteration's sampled questions, scored against the oracle
     (the paper's difficulty table), as a heat-map (+ `difficulty_table.csv/.md`).
  3. `fig3_label_accuracy_by_agreement`: label accuracy per agreement bucket
     (k of m Solver answers in the majority), on the kept sample plus a
     same-size sample of the questions dropped for being outside the band.
  4. `fig4_p_hat_histograms`: p̂ per iteration, kept band shaded, kept fraction.
  5. `fig5_training_curves`: Challenger reward, uncertainty term, repetition
     penalty, format-failure rate; Solver reward, `frac_reward_zero_std`, KL,
     boxed-answer rate; all iterations on one step axis.
  6. `fig6_benchmarks`: benchmark accuracy per iteration (evaluation stage),
     with the paper's math average when the model is Qwen3-4B/8B-Base
     (+ `evaluation_table.csv/.md` from `rzero_lib.evaluation`).
  7. `fig7_diversity`: self-BLEU, distinct-1/2 and the repetition penalty's
     cluster sizes of each iteration's generated questions.
  Every figure is saved as PNG and PDF; every headline number goes into
  `summary.json`; `run_analysis(ctx)` is what the `06_analysis` notebook calls.
- TTRL-style label metrics per iteration: label accuracy, majority ratio
  (mean p̂ of the kept questions), reward accuracy (how often the Solver's
  pseudo-label reward `[answer ≡ majority]` equals the oracle reward
  `[answer ≡ oracle]`, over the m voting answers of the sampled questions), and
  the Challenger's own answer accuracy.

Oracles and caches
- The oracle comes from `analysis.oracle` (`rzero_lib.oracle.make_oracle`); with
  no oracle (the math domain without `model`/`openai`) the label-accuracy and
  difficulty figures say "no oracle configured" and everything else is made.
- Oracle answers are cached in `report/oracle.parquet`, and the difficulty
  generations (extracted answers) in `report/difficulty.parquet`, keyed by
  the model (a trained Solver by its output hash), the sampling settings and
  the prompt; re-running the analysis, with or without `recompute`, never
  asks the oracle or a model twice. Delete those files to redo that work.
- Called again on a finished report whose inputs (the finished stages and the
  oracle) have not changed, `run_analysis` loads the report instead of
  recomputing (`recompute=True` forces it).

Choices and simplifications
- Binomial intervals are Wilson score intervals (95%); they behave at 0%
  and 100% and for small n, unlike the normal approximation, and need no
  scipy. The interval is over questions; difficulty accuracies average
  several samples per question and get no interval.
- Accuracy is over the sampled questions the oracle could answer; coverage
  (answered / sampled) is reported next to every accuracy.
- Difficulty samples use the voting stage's sampling settings (temperature,
  top_p, top_k, max_new_tokens) and the run's Solver prompt,
  `analysis.solver_difficulty_samples` answers per question.
- Self-BLEU is the mean pairwise sentence BLEU, `1 −` the repetition penalty's
  distance (`rzero_lib.rewards.bleu_distance_condensed`, hypothesis i,
  reference j, i < j), not the multi-reference self-BLEU of Zhu et al.;
  clusters are the penalty's clustering (`analysis` cuts at the run's
  `challenger_training.penalty_threshold`) over at most
  `DIVERSITY_MAX_QUESTIONS` parsed questions per iteration (a fixed-seed
  sample), not over training batches. distinct-n uses whitespace tokens.
- Reward accuracy is measured on the voting samples of Solver_{k-1}, not on
  the GRPO rollouts of Solver training (those are not stored).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from statistics import NormalDist

import numpy as np
import pandas as pd

from rzero_lib.rundir import (
    ITERATION_STAGES,
    RunDir,
    atomic_path,
    write_json_atomic,
    write_parquet_atomic,
    write_text_atomic,
)

# --------------------------------------------------------------------------
# constants: the paper's reference numbers (DESIGN.md §6)
# --------------------------------------------------------------------------

CONFIDENCE = 0.95
PAPER_REFERENCE_LABEL = "paper (Qwen3-4B, GPT-4o oracle)"
PAPER_LABEL_ACCURACY = {1: 0.79, 2: 0.69, 3: 0.63}  # pseudo-label accuracy on 200 questions per iteration
PAPER_BASE_ACCURACY = {1: 0.480, 2: 0.525, 3: 0.440}  # base model accuracy on those questions
# Math average over the 7 benchmarks: base, iteration 1, 2, 3 (paper v1).
PAPER_MATH_AVERAGE = {"Qwen3-4B-Base": {0: 42.58, 1: 48.06, 2: 48.44, 3: 49.07},
                      "Qwen3-8B-Base": {0: 49.18, 1: 53.39, 2: 53.84, 3: 54.69}}
DIVERSITY_MAX_QUESTIONS = 1000
NO_ORACLE = "no oracle configured"
NO_ORACLE_FIGURE_NOTE = f"{NO_ORACLE}\n(set analysis.oracle.kind to 'model' or 'openai')"

FIGURES = {
    "fig1_label_accuracy": "Pseudo-label accuracy per iteration",
    "fig2_difficulty": "Difficulty: model accuracy on each iteration's questions",
    "fig3_label_accuracy_by_agreement": "Label accuracy by agreement (p̂ bucket)",
    "fig4_p_hat_histograms": "p̂ per iteration and the kept band",
    "fig5_training_curves": "Training curves",
    "fig6_benchmarks": "Benchmark accuracy per iteration",
    "fig7_diversity": "Question diversity per iteration",
}
TABLE_FILES = {  # name -> (file, has an index column)
    "label_accuracy": ("label_accuracy.csv", False),
    "label_accuracy_by_agreement": ("label_accuracy_by_agreement.csv", False),
    "difficulty": ("difficulty_table.csv", True),
    "voting": ("voting_summary.csv", False),
    "diversity": ("diversity.csv", False),
    "training": ("training_summary.csv", False),
    "evaluation": ("evaluation_table.csv", True),
    "label_sample": ("label_sample.parquet", False),
}
VERIFIER_FIGURE = ("fig8_verifier", "Verifier: label accuracy with and without it")  # only when it ran
VERIFIER_TABLE = "verifier.csv"
ORACLE_CACHE = "oracle.parquet"
DIFFICULTY_CACHE = "difficulty.parquet"

CHALLENGER_CURVES = (("reward", "Challenger reward"), ("challenger/uncertainty", "uncertainty term"),
                     ("challenger/penalty", "repetition penalty"),
                     ("challenger/format_failure_rate", "format-failure rate"))
SOLVER_CURVES = (("reward", "Solver reward"), ("frac_reward_zero_std", "frac_reward_zero_std"),
                 ("kl", "KL to the phase's start"), ("solver/boxed_rate", "boxed-answer rate"))


# --------------------------------------------------------------------------
# statistics
# --------------------------------------------------------------------------


def wilson_interval(successes: int, n: int, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion; (nan, nan) when n = 0."""
    if n < 0 or successes < 0 or successes > n:
        raise ValueError(f"need 0 <= successes <= n, got successes={successes}, n={n}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    if n == 0:
        return math.nan, math.nan
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    # The interval contains p; clamp away float rounding at p = 0 and p = 1.
    return max(0.0, min(p, centre - half)), min(1.0, max(p, centre + half))


def _ratio(num: float, den: float) -> float:
    return num / den if den else math.nan


# --------------------------------------------------------------------------
# reading a run
# --------------------------------------------------------------------------


def run_iterations(run: RunDir) -> list[int]:
    """Iteration numbers that have a folder (`iter_KK`), sorted."""
    out = []
    for path in run.path.glob("iter_*"):
        suffix = path.name[len("iter_"):]
        if path.is_dir() and suffix.isdigit():
            out.append(int(suffix))
    return sorted(out)


def stages_done(run: RunDir) -> dict[str, list[int]]:
    """Finished iterations of every stage (a stage is finished when its manifest exists)."""
    done: dict[str, list[int]] = {stage: [] for stage in ITERATION_STAGES}
    for k in run_iterations(run):
        for stage in ITERATION_STAGES:
            if run.is_done(run.stage_dir(k, stage)):
                done[stage].append(k)
    return done


def analysis_inputs(run: RunDir) -> dict:
    """What the report depends on: every finished stage and when it finished."""
    inputs = {}
    for stage, iterations in stages_done(run).items():
        for k in iterations:
            manifest = run.manifest_of(run.stage_dir(k, stage)) or {}
            inputs[f"iter_{k:02d}/{stage}"] = manifest.get("finished_at")
    return dict(sorted(inputs.items()))


@dataclass
class RunData:
    """The finished artifacts of a run, concatenated over iterations."""

    done: dict[str, list[int]]
    votes: pd.DataFrame
    questions: pd.DataFrame
    challenger_log: pd.DataFrame
    solver_log: pd.DataFrame
    scores: pd.DataFrame
    model_hashes: dict[int, str] = field(default_factory=dict)  # Solver_k -> its output hash
    verdicts: pd.DataFrame = field(default_factory=pd.DataFrame)  # the optional Verifier's decisions


def stage_tables(run: RunDir, stage: str, filename: str, iterations: Sequence[int] | None = None) -> pd.DataFrame:
    """`filename` of every finished `stage` (or of `iterations`), concatenated, with an `iteration` column."""
    iterations = stages_done(run)[stage] if iterations is None else iterations
    frames = [pd.read_parquet(path).assign(iteration=k) for k in iterations
              if (path := run.stage_dir(k, stage) / filename).exists()]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def load_run_data(run: RunDir) -> RunData:
    from rzero_lib.evaluation import load_scores
    from rzero_lib.stages import _read_log_history

    done = stages_done(run)
    challenger, solver = [], []
    hashes = {}
    for stage, sink in (("challenger_training", challenger), ("solver_training", solver)):
        for k in done[stage]:
            rows = _read_log_history(run.stage_dir(k, stage) / "log_history.jsonl")
            if rows:
                df = pd.DataFrame(rows)
                df.insert(0, "iteration", k)
                sink.append(df)
    for k in done["solver_training"]:
        manifest = run.manifest_of(run.stage_dir(k, "solver_training")) or {}
        hashes[k] = (manifest.get("outputs", {}).get("model") or {}).get("hash") or str(manifest.get("finished_at"))

    def cat(frames):
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()

    return RunData(done, stage_tables(run, "voting", "votes.parquet", done["voting"]),
                   stage_tables(run, "question_generation", "questions.parquet", done["question_generation"]),
                   cat(challenger), cat(solver), load_scores(run.path), hashes,
                   stage_tables(run, "verification", "verdicts.parquet", done["verification"]))


# --------------------------------------------------------------------------
# label samples and label accuracy
# --------------------------------------------------------------------------

SAMPLE_COLUMNS = ["iteration", "question_id", "sample", "question", "challenger_answer", "answers",
                  "majority_answer", "p_hat", "majority_count", "m", "kept", "drop_reason"]


def label_sample(votes: pd.DataFrame, size: int, seed: int = 0, which: str = "kept") -> pd.DataFrame:
    """A fixed random sample (at most `size` per iteration) of the kept questions,
    or (`which="outside_band"`) of those dropped for being outside the band.

    Deterministic: rows are ordered by question_id before sampling with
    `seed + iteration`, and returned in question_id order.
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
            group = group.sample(n=size, random_state=seed + int(k)).sort_values("question_id")
        frames.append(group)
    if not frames:
        return pd.DataFrame(columns=SAMPLE_COLUMNS)
    out = pd.concat(frames, ignore_index=True)
    out["sample"] = which
    out["m"] = out["answers"].map(len)
    return out[SAMPLE_COLUMNS].reset_index(drop=True)


def _answers(value) -> list:
    if value is None:
        return []
    return [None if a is None or (isinstance(a, float) and math.isnan(a)) else str(a) for a in list(value)]


def _present(value) -> bool:
    return value is not None and not (isinstance(value, float) and math.isnan(value))


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
    from rzero_lib.answers import equivalent_many

    df = sample.reset_index(drop=True).copy()
    oracle_answers = list(oracle_answers)
    if len(oracle_answers) != len(df):
        raise ValueError(f"{len(oracle_answers)} oracle answers for {len(df)} sampled questions")
    df["oracle_answer"] = pd.Series([a if _present(a) else None for a in oracle_answers], dtype=object)
    pairs: list[tuple] = []
    plan = []  # per row: (start index in pairs, number of voting answers) or None
    for row in df.itertuples(index=False):
        if row.oracle_answer is None:
            plan.append(None)
            continue
        majority = row.majority_answer if _present(row.majority_answer) else None
        challenger = row.challenger_answer if _present(row.challenger_answer) else None
        answers = _answers(row.answers)
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
            "coverage": _ratio(n, len(group)), "correct": correct, "label_accuracy": _ratio(correct, n),
            "ci_low": low, "ci_high": high,
            "majority_ratio": float(kept_votes["p_hat"].mean()) if len(kept_votes) else math.nan,
            "reward_accuracy": _ratio(float(covered["reward_agree"].sum()), float(covered["reward_total"].sum()))
            if n else math.nan,
            "challenger_accuracy": _ratio(int(covered["challenger_correct"].astype(bool).sum()), n),
        })
    return pd.DataFrame(rows, columns=LABEL_COLUMNS)


BUCKET_COLUMNS = ["scope", "majority_count", "m", "p_hat", "in_band", "n", "correct", "accuracy", "ci_low",
                  "ci_high"]


def accuracy_by_agreement(scored: pd.DataFrame, band_delta: float = 0.25,
                          band_bounds: tuple[float, float] | None = None,
                          confidence: float = CONFIDENCE) -> pd.DataFrame:
    """Label accuracy per agreement bucket (majority_count of m), pooled ("all") and per iteration."""
    from rzero_lib.voting import band_filter

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


# --------------------------------------------------------------------------
# difficulty
# --------------------------------------------------------------------------

DIFFICULTY_CACHE_COLUMNS = ["model_key", "sampling_key", "question", "answers", "created_at"]


def score_difficulty(rows: pd.DataFrame, timeout_s: float | None = None) -> pd.DataFrame:
    """`rows` (model, model_iteration, iteration, question_id, oracle_answer, answers) with
    `n_samples` and `n_correct` (answers ≡ oracle answer) added."""
    from rzero_lib.answers import equivalent_many

    df = rows.reset_index(drop=True).copy()
    answers = [_answers(a) for a in df["answers"]]
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
    g["accuracy"] = [_ratio(c, s) for c, s in zip(g["correct"], g["samples"])]
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


# --------------------------------------------------------------------------
# voting, diversity, training
# --------------------------------------------------------------------------

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
                         "kept_fraction": _ratio(len(kept), len(g)), "mean_p_hat": float(g["p_hat"].mean()),
                         "mean_p_hat_kept": float(kept["p_hat"].mean()) if len(kept) else math.nan,
                         "answered_rate": _ratio(float(g["num_answered"].sum()), float(m.sum())),
                         "drop_reasons": json.dumps({str(r): int(c) for r, c in reasons.items()})})
    return pd.DataFrame(rows, columns=VOTING_COLUMNS)


def distinct_n(questions: Sequence[str], n: int) -> float:
    """Distinct n-grams / all n-grams over the questions (whitespace tokens); nan without n-grams."""
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    grams = [tuple(tokens[i:i + n]) for q in questions for tokens in [str(q).split()]
             for i in range(len(tokens) - n + 1)]
    return _ratio(len(set(grams)), len(grams))


def self_bleu(questions: Sequence[str]) -> float:
    """Mean pairwise sentence BLEU (1 − the repetition penalty's distance); nan below 2 questions."""
    from rzero_lib.rewards import bleu_distance_condensed

    questions = [str(q) for q in questions]
    if len(questions) < 2:
        return math.nan
    return float(np.mean(1.0 - bleu_distance_condensed(questions)))


def cluster_sizes(questions: Sequence[str], threshold: float = 0.5) -> list[int]:
    """Sizes (largest first) of the repetition penalty's clusters of these questions."""
    from rzero_lib.rewards import repetition_clusters

    labels = repetition_clusters([str(q) for q in questions], threshold)
    return sorted((int(c) for c in np.bincount(np.asarray(labels, dtype=np.int64))), reverse=True) if labels else []


CLUSTER_SIZE_BUCKETS = (("1", 1, 1), ("2", 2, 2), ("3–5", 3, 5), ("6–10", 6, 10), ("11–50", 11, 50),
                        (">50", 51, math.inf))


def cluster_size_shares(sizes: Sequence[int]) -> dict[str, float]:
    """Share of questions whose cluster size falls in each bucket of `CLUSTER_SIZE_BUCKETS`."""
    total = sum(sizes)
    return {label: _ratio(sum(s for s in sizes if low <= s <= high), total)
            for label, low, high in CLUSTER_SIZE_BUCKETS}


DIVERSITY_COLUMNS = ["iteration", "parsed_questions", "analysed", "unique_fraction", "self_bleu", "distinct_1",
                     "distinct_2", "clusters", "largest_cluster", "largest_cluster_fraction", "singleton_fraction",
                     "cluster_sizes"]


def diversity_table(questions: pd.DataFrame, threshold: float = 0.5, max_questions: int = DIVERSITY_MAX_QUESTIONS,
                    seed: int = 0) -> pd.DataFrame:
    """Per iteration, over (a fixed-seed sample of at most `max_questions`) parsed questions."""
    from rzero_lib.rewards import bleu_distance_condensed, clusters_from_condensed

    rows = []
    if not questions.empty:
        parsed = questions[questions["question"].notna()]
        for k, g in parsed.groupby("iteration", sort=True):
            g = g.sort_values("question_id") if "question_id" in g else g
            texts = g["question"].astype(str).tolist()
            if len(texts) > max_questions:
                texts = g.sample(n=max_questions, random_state=seed + int(k))["question"].astype(str).tolist()
            if len(texts) >= 2:
                condensed = bleu_distance_condensed(texts)
                bleu = float(np.mean(1.0 - condensed))
                labels = clusters_from_condensed(condensed, threshold)
                sizes = sorted((int(c) for c in np.bincount(np.asarray(labels))), reverse=True)
            else:
                bleu, sizes = math.nan, [1] * len(texts)
            rows.append({"iteration": int(k), "parsed_questions": len(g), "analysed": len(texts),
                         "unique_fraction": _ratio(len(set(texts)), len(texts)), "self_bleu": bleu,
                         "distinct_1": distinct_n(texts, 1), "distinct_2": distinct_n(texts, 2),
                         "clusters": len(sizes), "largest_cluster": max(sizes) if sizes else 0,
                         "largest_cluster_fraction": _ratio(max(sizes) if sizes else 0, len(texts)),
                         "singleton_fraction": _ratio(sum(1 for s in sizes if s == 1), len(texts)),
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
                if _present(value):
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


def paper_benchmark_reference(model: str) -> tuple[str, dict[int, float]] | None:
    """The paper's math average per iteration for a Qwen3-4B/8B-Base model spec, else None."""
    name = str(model).lower()
    for key, values in PAPER_MATH_AVERAGE.items():
        size = key.split("-")[1].lower()  # "4b" / "8b"
        if "qwen3" in name and f"-{size}" in name:
            return key, values
    return None


# --------------------------------------------------------------------------
# figures
# --------------------------------------------------------------------------


def _figure(rows: int = 1, cols: int = 1, size: tuple[float, float] = (7.0, 4.2)):
    from matplotlib.figure import Figure

    fig = Figure(figsize=size, layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False)
    return fig, axes


def _message(ax, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, fontsize=11, color="0.3",
            bbox={"facecolor": "white", "edgecolor": "0.7", "boxstyle": "round,pad=0.5"})


def _iteration_axis(ax, iterations: Sequence[int]) -> None:
    if len(iterations):
        ax.set_xticks(sorted(set(int(i) for i in iterations)))
    ax.set_xlabel("iteration")


def _error_bars(y: np.ndarray, table: pd.DataFrame) -> np.ndarray:
    """Asymmetric error bars (2 × n, never negative) from the `ci_low`/`ci_high` columns, in %."""
    low = y - 100 * table["ci_low"].to_numpy(float)
    high = 100 * table["ci_high"].to_numpy(float) - y
    return np.clip(np.vstack([low, high]), 0.0, None)


def save_figure(fig, folder: str | Path, stem: str) -> dict[str, str]:
    """Write `<stem>.png` (150 dpi) and `<stem>.pdf` atomically; returns their file names."""
    folder = Path(folder)
    out = {}
    for fmt in ("png", "pdf"):
        target = folder / f"{stem}.{fmt}"
        with atomic_path(target, suffix=f".{fmt}") as tmp:
            fig.savefig(tmp, format=fmt, dpi=150)
        out[fmt] = target.name
        fig.set_layout_engine("none")  # the first save laid it out; the second reuses the positions (faster)
    return out


def plot_label_accuracy(table: pd.DataFrame, difficulty: pd.DataFrame | None = None, note: str | None = None,
                        oracle_name: str = "oracle"):
    """Figure 1: pseudo-label accuracy per iteration (Wilson CIs) and base-model accuracy, with the paper's."""
    fig, axes = _figure(size=(8, 5.4))
    ax = axes[0, 0]
    ref_x = sorted(PAPER_LABEL_ACCURACY)
    ax.plot(ref_x, [100 * PAPER_LABEL_ACCURACY[i] for i in ref_x], ls="--", color="tab:blue", alpha=0.55,
            marker="s", ms=4, label=f"{PAPER_REFERENCE_LABEL}: pseudo-label accuracy")
    ax.plot(ref_x, [100 * PAPER_BASE_ACCURACY[i] for i in ref_x], ls="--", color="tab:orange", alpha=0.55,
            marker="s", ms=4, label=f"{PAPER_REFERENCE_LABEL}: base-model accuracy")
    iterations = list(ref_x)
    data = table.dropna(subset=["label_accuracy"]) if not table.empty else table
    if len(data):
        y = 100 * data["label_accuracy"].to_numpy(float)
        err = _error_bars(y, data)
        ax.errorbar(data["iteration"], y, yerr=err, color="tab:blue", marker="o", lw=2, capsize=4,
                    label=f"this run: pseudo-label accuracy (95% Wilson CI, {oracle_name})")
        for row in data.itertuples():
            ax.annotate(f"{row.covered} of {row.sampled} checked", (row.iteration, 100 * row.label_accuracy),
                        textcoords="offset points", xytext=(7, 4), fontsize=7, color="tab:blue")
        iterations += data["iteration"].tolist()
    if difficulty is not None and not difficulty.empty:
        base = difficulty[difficulty["model_iteration"] == 0].dropna(subset=["accuracy"]).sort_values("iteration")
        if len(base):
            ax.plot(base["iteration"], 100 * base["accuracy"], color="tab:orange", marker="o", lw=2,
                    label="this run: base-model accuracy on the questions")
            iterations += base["iteration"].tolist()
    if not len(data):
        _message(ax, note or NO_ORACLE_FIGURE_NOTE)
    ax.set_ylim(-4, 104)
    ax.set_ylabel("accuracy on the kept questions (%)")
    _iteration_axis(ax, iterations)
    ax.set_title("Pseudo-label (majority-vote) accuracy against the oracle")
    ax.grid(alpha=0.3)
    fig.legend(*ax.get_legend_handles_labels(), fontsize=7, loc="outside lower center", ncol=2)
    return fig


def plot_difficulty(matrix: pd.DataFrame, note: str | None = None):
    """Figure 2: heat-map of model accuracy (%) on each iteration's questions."""
    rows = max(1, len(matrix))
    fig, axes = _figure(size=(max(5.0, 1.6 * max(1, matrix.shape[1]) + 2.5), 1.0 + 0.6 * rows + 1.2))
    ax = axes[0, 0]
    if matrix.empty:
        _message(ax, note or "no difficulty data (needs an oracle and the sampled questions)")
        ax.axis("off")
        ax.set_title("Difficulty: model accuracy on each iteration's questions")
        return fig
    values = matrix.to_numpy(float)
    image = ax.imshow(values, cmap="viridis", vmin=0, vmax=100, aspect="auto")
    ax.set_xticks(range(matrix.shape[1]), matrix.columns, fontsize=8)
    ax.set_yticks(range(matrix.shape[0]), matrix.index, fontsize=8)
    for i in range(values.shape[0]):
        for j in range(values.shape[1]):
            v = values[i, j]
            ax.text(j, i, "–" if np.isnan(v) else f"{v:.1f}%", ha="center", va="center", fontsize=9,
                    color="white" if np.isnan(v) or v < 60 else "black")
    fig.colorbar(image, ax=ax, label="accuracy vs oracle (%)")
    ax.set_xlabel("questions generated in")
    ax.set_ylabel("model answering")
    ax.set_title("Difficulty: model accuracy on each iteration's questions")
    return fig


def plot_accuracy_by_agreement(buckets: pd.DataFrame, note: str | None = None, band_delta: float = 0.25,
                               band_bounds: tuple[float, float] | None = None):
    """Figure 3: label accuracy per agreement bucket (pooled, with CIs; per iteration, light), band shaded."""
    fig, axes = _figure(size=(7.5, 4.5))
    ax = axes[0, 0]
    if buckets.empty:
        _message(ax, note or NO_ORACLE_FIGURE_NOTE)
    else:
        pooled = buckets[buckets["scope"] == "all"].sort_values("p_hat")
        low, high = band_bounds if band_bounds is not None else (0.5 - band_delta, 0.5 + band_delta)
        ax.axvspan(low, high, color="tab:green", alpha=0.12, label=f"kept band ({low:g} ≤ p̂ ≤ {high:g})")
        per_iteration = buckets[buckets["scope"] != "all"]
        if per_iteration["scope"].nunique() > 1:
            for scope, g in per_iteration.groupby("scope", sort=True):
                g = g.sort_values("p_hat")
                ax.plot(g["p_hat"], 100 * g["accuracy"], marker=".", lw=0.8, alpha=0.45, label=scope)
        y = 100 * pooled["accuracy"].to_numpy(float)
        err = _error_bars(y, pooled)
        ax.errorbar(pooled["p_hat"], y, yerr=err, color="black", marker="o", lw=2, capsize=4,
                    label="all iterations (95% Wilson CI)")
        for row in pooled.itertuples():
            ax.annotate(f"{row.majority_count}/{row.m}, n={row.n}", (row.p_hat, 100 * row.accuracy),
                        textcoords="offset points", xytext=(5, 5), fontsize=7, ha="left")
        fig.legend(*ax.get_legend_handles_labels(), fontsize=7, loc="outside lower center", ncol=4)
    ax.set_xlim(0, 1.05)
    ax.set_ylim(-4, 112)
    ax.set_xlabel("p̂ (share of the Solver's m answers in the majority)")
    ax.set_ylabel("pseudo-label accuracy (%)")
    ax.set_title("How trustworthy is a k-of-m majority label?")
    ax.grid(alpha=0.3)
    return fig


def plot_p_hat_histograms(votes: pd.DataFrame, m: int, band_delta: float = 0.25,
                          band_bounds: tuple[float, float] | None = None):
    """Figure 4: one p̂ histogram per iteration, the kept band shaded and the kept fraction."""
    from rzero_lib.plots import plot_p_hat_histogram

    iterations = sorted(int(k) for k in votes["iteration"].unique()) if not votes.empty else []
    cols = min(3, max(1, len(iterations)))
    rows = max(1, math.ceil(len(iterations) / cols))
    fig, axes = _figure(rows, cols, size=(4.6 * cols, 3.3 * rows))
    if not iterations:
        _message(axes[0, 0], "no finished voting stage yet")
        axes[0, 0].axis("off")
        return fig
    for ax, k in zip(axes.flat, iterations):
        g = votes[votes["iteration"] == k]
        m_k = int(g["answers"].map(len).max()) if len(g) else m
        plot_p_hat_histogram(g["p_hat"].astype(float), m_k or m, band_delta, band_bounds, ax=ax)
        ax.set_title(f"iteration {k}")
        kept = g[g["kept"].astype(bool)]
        ax.hist(kept["p_hat"].astype(float), bins=(np.arange((m_k or m) + 2) - 0.5) / (m_k or m), color="tab:green",
                alpha=0.8, edgecolor="white", label="kept (after all filters)")
        ax.text(0.02, 0.95, f"{len(kept)}/{len(g)} kept ({_ratio(len(kept), len(g)):.0%})", transform=ax.transAxes,
                va="top", fontsize=8)
        ax.legend(fontsize=7, loc="upper right")
    for ax in list(axes.flat)[len(iterations):]:
        ax.axis("off")
    fig.suptitle("p̂ per iteration (Solver_{k−1} voting on Challenger_k's questions)")
    return fig


def plot_training_curves(challenger: pd.DataFrame, solver: pd.DataFrame):
    """Figure 5: Challenger (top row) and Solver (bottom row) metrics over all iterations."""
    fig, axes = _figure(2, 4, size=(16, 6.5))
    for row, (curves, spec, role) in enumerate(((challenger, CHALLENGER_CURVES, "Challenger"),
                                                (solver, SOLVER_CURVES, "Solver"))):
        for ax, (metric, title) in zip(axes[row], spec):
            data = curves[curves["metric"] == metric] if not curves.empty else curves
            if data.empty:
                _message(ax, "not logged")
            else:
                for k, g in data.groupby("iteration", sort=True):
                    ax.plot(g["global_step"], g["value"], marker="o", ms=3, label=f"iter {k}")
                starts = data.groupby("iteration")["global_step"].min().tolist()[1:]
                for x in starts:
                    ax.axvline(x - 0.5, color="0.6", ls=":", lw=1)
                ax.legend(fontsize=7)
            ax.set_title(f"{role}: {title}", fontsize=9)
            ax.set_xlabel("optimizer step (all iterations)", fontsize=8)
            ax.grid(alpha=0.3)
    fig.suptitle("Training curves")
    return fig


def plot_benchmarks(scores: pd.DataFrame, table: pd.DataFrame, model: str = ""):
    """Figure 6: accuracy per benchmark and the average per iteration (0 = base model)."""
    fig, axes = _figure(size=(8, 4.5))
    ax = axes[0, 0]
    iterations: list[int] = []
    if scores.empty:
        _message(ax, "no finished evaluation stage")
    else:
        for bench, g in scores.groupby("benchmark", sort=True):
            g = g.sort_values("iteration")
            ax.plot(g["iteration"], 100 * g["accuracy"].astype(float), marker=".", lw=1, alpha=0.7, label=bench)
        if not table.empty and "average" in table:
            xs = [0 if i == "base" else int(str(i).split()[-1]) for i in table.index]
            avg = pd.Series(table["average"].to_numpy(float), index=xs).sort_index()
        else:
            avg = scores.groupby("iteration")["accuracy"].mean() * 100
        from rzero_lib.benchmarks import MATH_BENCHMARKS

        which = "math average" if set(scores["benchmark"]) & set(MATH_BENCHMARKS) else "average"
        ax.plot(avg.index, avg.to_numpy(float), color="black", marker="o", lw=2.5, label=f"{which} (this run)")
        iterations = sorted(set(scores["iteration"].astype(int)))
    ref = paper_benchmark_reference(model)
    if ref is not None:
        name, values = ref
        xs = sorted(values)
        ax.plot(xs, [values[i] for i in xs], color="black", ls="--", alpha=0.55, marker="s", ms=4,
                label=f"paper ({name}): math average")
        iterations += xs
    ax.set_ylabel("accuracy (%)")
    _iteration_axis(ax, iterations)
    ax.set_xlabel("iteration (0 = base model)")
    ax.set_title("Benchmark accuracy per iteration")
    ax.grid(alpha=0.3)
    if iterations:
        ax.legend(fontsize=7, loc="best", ncol=2)
    return fig


def plot_diversity(diversity: pd.DataFrame):
    """Figure 7: self-BLEU, distinct-n and the cluster-size distribution per iteration."""
    fig, axes = _figure(1, 3, size=(14, 4))
    if diversity.empty:
        for ax in axes[0]:
            _message(ax, "no finished question-generation stage")
            ax.axis("off")
        return fig
    ax1, ax2, ax3 = axes[0]
    its = diversity["iteration"]
    ax1.plot(its, diversity["self_bleu"], marker="o", color="tab:red")
    ax1.set_ylabel("mean pairwise BLEU (higher = more repetitive)")
    ax1.set_title("self-BLEU")
    ax2.plot(its, diversity["distinct_1"], marker="o", label="distinct-1")
    ax2.plot(its, diversity["distinct_2"], marker="o", label="distinct-2")
    ax2.set_ylabel("distinct n-grams / all n-grams")
    ax2.set_title("distinct-n")
    ax2.legend(fontsize=8)
    width = 0.8 / max(1, len(diversity))
    for j, row in enumerate(diversity.itertuples()):
        shares = cluster_size_shares(json.loads(row.cluster_sizes))
        xs = np.arange(len(shares)) + (j - (len(diversity) - 1) / 2) * width
        ax3.bar(xs, [100 * v for v in shares.values()], width=width,
                label=f"iter {row.iteration} ({row.clusters} clusters / {row.analysed} questions)")
    ax3.set_xticks(range(len(CLUSTER_SIZE_BUCKETS)), [label for label, _, _ in CLUSTER_SIZE_BUCKETS])
    ax3.set_xlabel("size of the question's cluster")
    ax3.set_ylabel("share of questions (%)")
    ax3.set_title("repetition-penalty clusters (BLEU distance)")
    ax3.legend(fontsize=7)
    for ax in (ax1, ax2):
        _iteration_axis(ax, its.tolist())
        ax.set_ylim(bottom=0)
    for ax in (ax1, ax2, ax3):
        ax.grid(alpha=0.3)
    fig.suptitle("Question diversity per iteration (parsed Challenger questions)")
    return fig


# --------------------------------------------------------------------------
# the Verifier's effect on label quality
# --------------------------------------------------------------------------

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
    from rzero_lib.answers import equivalent_many
    from rzero_lib.verifier import verifier_label_metrics

    if verdicts.empty:
        return pd.DataFrame(columns=VERIFIER_COLUMNS)
    df = verdicts.reset_index(drop=True).assign(oracle_answer=[a if _present(a) else None for a in oracle_answers])
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


def plot_verifier(table: pd.DataFrame, note: str | None = None):
    """Figure 8: label accuracy without / with the Verifier per iteration (Wilson CIs)."""
    fig, axes = _figure(size=(7, 4.2))
    ax = axes[0, 0]
    if table.empty or table["without_accuracy"].isna().all():
        _message(ax, note or "no labels the oracle could check")
        return fig
    x = table["iteration"].to_numpy(float)
    for offset, prefix, label, color in ((-0.12, "without", "all band-passing labels", "tab:gray"),
                                         (0.12, "with", "kept by the Verifier (top confidence)", "tab:green")):
        y = 100 * table[f"{prefix}_accuracy"].to_numpy(float)
        low = 100 * table[f"{prefix}_ci_low"].to_numpy(float)
        high = 100 * table[f"{prefix}_ci_high"].to_numpy(float)
        err = np.vstack([np.clip(y - low, 0, None), np.clip(high - y, 0, None)])
        ax.errorbar(x + offset, y, yerr=np.nan_to_num(err), fmt="o", capsize=4, color=color, label=label)
        for xi, yi, n in zip(x + offset, y, table[f"{prefix}_n"]):
            if np.isfinite(yi):
                ax.annotate(f"n={n}", (xi, yi), textcoords="offset points", xytext=(5, -10), fontsize=7)
    ax.set_ylim(-4, 104)
    ax.set_ylabel("label accuracy vs oracle (%)")
    _iteration_axis(ax, table["iteration"].tolist())
    ax.set_title("Pseudo-label accuracy with and without the Verifier")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return fig


# --------------------------------------------------------------------------
# the analysis stage
# --------------------------------------------------------------------------


def _open_oracle(ctx, oracle):
    """(oracle or None, note). A missing oracle is not an error; a misconfigured one is."""
    from rzero_lib.oracle import NoOracleError, make_oracle

    if oracle is not None:
        return oracle, f"oracle: {oracle.describe()}"
    try:
        made = make_oracle(ctx.params, ctx.params.analysis.oracle)
    except NoOracleError as e:
        return None, f"{NO_ORACLE} ({e})"
    return made, f"oracle: {made.describe()}"


def _difficulty_models(ctx, data: RunData) -> list[tuple[str, int, str, str]]:
    """(label, iteration, spec, cache key) for the base model and every trained Solver."""
    base = ctx.run.base_model()
    models = [("base", 0, base, f"base:{base}")]
    for k in sorted(data.done["solver_training"]):
        spec = ctx.run.solver_model(k)
        models.append((f"solver {k}", k, spec, f"solver_{k}:{data.model_hashes.get(k, '')}"))
    return models


def _difficulty_sampling_key(sampling, prompt) -> str:
    from rzero_lib.oracle import _prompt_digest

    return (f"n={sampling.n}|T={sampling.temperature:g}|top_p={sampling.top_p:g}|top_k={sampling.top_k}"
            f"|max_new_tokens={sampling.max_new_tokens}|seed={sampling.seed}|prompt={_prompt_digest(prompt)}")


def difficulty_answers(ctx, data: RunData, questions: pd.DataFrame,
                       generator_factory: Callable[[str], object] | None = None) -> pd.DataFrame:
    """Extracted answers of every model to every covered sampled question, through the cache.

    Returns one row per (model, question): model, model_iteration, iteration,
    question_id, question, oracle_answer, answers.
    """
    from rzero_lib.answers import extract_boxed
    from rzero_lib.generation import SamplingConfig
    from rzero_lib.prompts import solver_messages
    from rzero_lib.stages import _generator

    cols = ["model", "model_iteration", "iteration", "question_id", "question", "oracle_answer", "answers"]
    if questions.empty:
        return pd.DataFrame(columns=cols)
    v = ctx.params.voting
    sampling = SamplingConfig(n=ctx.params.analysis.solver_difficulty_samples, temperature=v.temperature,
                              top_p=v.top_p, top_k=v.top_k, max_new_tokens=v.max_new_tokens, seed=ctx.params.seed + 5)
    _, prompt = ctx.prompts()
    sampling_key = _difficulty_sampling_key(sampling, prompt)
    cache_path = ctx.folder / DIFFICULTY_CACHE
    cache = pd.read_parquet(cache_path) if cache_path.exists() else pd.DataFrame(columns=DIFFICULTY_CACHE_COLUMNS)
    factory = generator_factory or (lambda spec: _generator(ctx, spec))
    unique = list(dict.fromkeys(questions["question"].astype(str)))
    rows = []
    for label, k, spec, model_key in _difficulty_models(ctx, data):
        mine = cache[(cache["model_key"] == model_key) & (cache["sampling_key"] == sampling_key)]
        known = {q: _answers(a) for q, a in zip(mine["question"], mine["answers"])}
        missing = [q for q in unique if q not in known]
        if missing:
            gen = factory(spec)
            try:
                outputs = gen.generate([solver_messages(prompt, q) for q in missing], sampling,
                                       progress=f"difficulty: {label} answering")
            finally:
                gen.close()
            new = pd.DataFrame({"model_key": model_key, "sampling_key": sampling_key, "question": missing,
                                "answers": [[extract_boxed(t) for t in group] for group in outputs],
                                "created_at": time.strftime("%Y-%m-%dT%H:%M:%S")}, columns=DIFFICULTY_CACHE_COLUMNS)
            cache = new if cache.empty else pd.concat([cache, new], ignore_index=True)
            write_parquet_atomic(cache, cache_path)
            known.update(zip(missing, (_answers(a) for a in new["answers"])))
        for q in questions.itertuples(index=False):
            rows.append({"model": label, "model_iteration": k, "iteration": int(q.iteration),
                         "question_id": q.question_id, "question": q.question, "oracle_answer": q.oracle_answer,
                         "answers": known[str(q.question)]})
    return pd.DataFrame(rows, columns=cols)


def _jsonable(value):
    """Plain JSON types: NaN -> None, numpy scalars -> Python, keys -> str."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _by_iteration(table: pd.DataFrame, columns: Sequence[str]) -> dict:
    return {str(int(r["iteration"])): {c: r[c] for c in columns} for r in table.to_dict(orient="records")}


def _write_csv(df: pd.DataFrame, path: Path, index: bool = False) -> None:
    write_text_atomic(path, df.to_csv(index=index))


def _difficulty_markdown(matrix: pd.DataFrame) -> str:
    if matrix.empty:
        return "(no difficulty data)\n"
    head = "| model | " + " | ".join(matrix.columns) + " |"
    lines = [head, "|" + "---|" * (len(matrix.columns) + 1)]
    for name, row in matrix.iterrows():
        lines.append(f"| {name} | " + " | ".join("–" if pd.isna(v) else f"{v:.1f}" for v in row) + " |")
    return "\n".join(lines) + "\n\naccuracy (%) against the oracle, mean over the sampled answers\n"


def run_analysis(ctx, recompute: bool = False, *, oracle=None,
                 generator_factory: Callable[[str], object] | None = None):
    """Make (or load) the report of the run in `ctx.run` into `ctx.folder` (= `<run>/report`).

    `oracle` overrides the one the parameters configure; `generator_factory(spec)`
    overrides how the difficulty generators are built (tests). Returns a
    `StageResult` whose summary is `summary.json` and whose tables are the
    report's tables (pandas DataFrames).
    """
    from rzero_lib.config import params_hash
    from rzero_lib.evaluation import cross_iteration_table, table_markdown
    from rzero_lib.oracle import cached_oracle_answers
    from rzero_lib.stages import StageResult

    oracle, oracle_note = _open_oracle(ctx, oracle)
    inputs = {"stages": analysis_inputs(ctx.run), "oracle": oracle.cache_key if oracle else None}
    manifest = ctx.manifest
    if (ctx.done and not recompute and manifest.get("inputs") == inputs
            and manifest.get("params_hash") == params_hash(ctx.params) and (ctx.folder / "summary.json").exists()):
        if oracle is not None:
            oracle.close()
        return load_analysis(ctx.folder)

    t0 = time.time()
    params = ctx.params
    folder = ctx.folder
    (folder / "manifest.json").unlink(missing_ok=True)  # a crash while redoing it must not look finished
    p = params.analysis
    data = load_run_data(ctx.run)
    timeout = params.voting.equivalence_timeout_s

    # 1 + 3: label samples, oracle answers, label metrics
    sample = pd.concat([label_sample(data.votes, p.label_sample_size, params.seed, "kept"),
                        label_sample(data.votes, p.label_sample_size, params.seed, "outside_band")],
                       ignore_index=True)
    try:
        if oracle is not None and len(sample):
            answers = cached_oracle_answers(oracle, sample["question"].tolist(), folder / ORACLE_CACHE)
        else:
            answers = [None] * len(sample)
        if oracle is not None and not data.verdicts.empty:
            verdict_answers = cached_oracle_answers(oracle, data.verdicts["question"].tolist(), folder / ORACLE_CACHE)
        else:
            verdict_answers = [None] * len(data.verdicts)
    finally:
        if oracle is not None:
            oracle.close()
    scored = score_labels(sample, answers, timeout_s=timeout)
    labels = label_accuracy_table(scored, data.votes)
    buckets = accuracy_by_agreement(scored, params.voting.band_delta, params.voting.band_bounds)
    verifier = verifier_table(data.verdicts, verdict_answers, params.verifier.threshold, timeout)

    # 2: difficulty on the covered kept sample
    covered = scored[(scored["sample"] == "kept") & scored["oracle_answer"].notna()]
    diff_rows = score_difficulty(difficulty_answers(ctx, data, covered, generator_factory), timeout_s=timeout) \
        if len(covered) else pd.DataFrame()
    diff_long = difficulty_long(diff_rows)
    diff_matrix = difficulty_matrix(diff_long)

    # 4, 5, 6, 7
    voting = voting_summary(data.votes)
    diversity = diversity_table(data.questions, params.challenger_training.penalty_threshold,
                                DIVERSITY_MAX_QUESTIONS, params.seed)
    challenger_curves = training_curves(data.challenger_log, [m for m, _ in CHALLENGER_CURVES])
    solver_curves = training_curves(data.solver_log, [m for m, _ in SOLVER_CURVES])
    training = pd.concat([training_summary(challenger_curves, "challenger"),
                          training_summary(solver_curves, "solver")], ignore_index=True)
    evaluation = cross_iteration_table(data.scores)

    # figures
    no_oracle = None if oracle is not None else NO_ORACLE_FIGURE_NOTE
    figure_makers = {
        "fig1_label_accuracy": lambda: plot_label_accuracy(labels, diff_long, no_oracle,
                                                           oracle.name if oracle else "oracle"),
        "fig2_difficulty": lambda: plot_difficulty(diff_matrix, no_oracle),
        "fig3_label_accuracy_by_agreement": lambda: plot_accuracy_by_agreement(
            buckets, no_oracle, params.voting.band_delta, params.voting.band_bounds),
        "fig4_p_hat_histograms": lambda: plot_p_hat_histograms(data.votes, params.voting.num_samples,
                                                               params.voting.band_delta, params.voting.band_bounds),
        "fig5_training_curves": lambda: plot_training_curves(challenger_curves, solver_curves),
        "fig6_benchmarks": lambda: plot_benchmarks(data.scores, evaluation, params.model),
        "fig7_diversity": lambda: plot_diversity(diversity),
    }
    if not data.verdicts.empty:
        figure_makers[VERIFIER_FIGURE[0]] = lambda: plot_verifier(verifier, no_oracle)
    titles = {**FIGURES, VERIFIER_FIGURE[0]: VERIFIER_FIGURE[1]}
    figures = {}
    for stem, make in figure_makers.items():
        figures[stem] = {"title": titles[stem], **save_figure(make(), folder, stem)}

    # tables
    sample_out = scored.drop(columns=["answers"]).assign(
        n_answers=scored["answers"].map(len),
        answers=scored["answers"].map(_answers))
    write_parquet_atomic(sample_out, folder / "label_sample.parquet")
    _write_csv(labels, folder / "label_accuracy.csv")
    _write_csv(buckets, folder / "label_accuracy_by_agreement.csv")
    _write_csv(diff_matrix, folder / "difficulty_table.csv", index=True)
    write_text_atomic(folder / "difficulty_table.md", _difficulty_markdown(diff_matrix))
    _write_csv(voting, folder / "voting_summary.csv")
    _write_csv(diversity, folder / "diversity.csv")
    _write_csv(training, folder / "training_summary.csv")
    _write_csv(evaluation, folder / "evaluation_table.csv", index=True)
    write_text_atomic(folder / "evaluation_table.md", table_markdown(evaluation))
    if not verifier.empty:
        _write_csv(verifier, folder / VERIFIER_TABLE)

    summary = build_summary(ctx, oracle, oracle_note, data, labels, buckets, diff_long, voting, diversity,
                            training, evaluation, figures)
    if not verifier.empty:
        summary["verifier"] = _jsonable(_by_iteration(verifier, [c for c in VERIFIER_COLUMNS if c != "iteration"]))
        summary["tables"]["verifier"] = VERIFIER_TABLE
    summary["seconds"] = round(time.time() - t0, 2)
    write_json_atomic(folder / "summary.json", summary)
    outputs = ["summary.json", "difficulty_table.md", "evaluation_table.md"]
    outputs += [f for f, _ in TABLE_FILES.values()]
    outputs += [name for fig in figures.values() for key, name in fig.items() if key in ("png", "pdf")]
    outputs += [c for c in (ORACLE_CACHE, DIFFICULTY_CACHE, VERIFIER_TABLE) if (folder / c).exists()]
    ctx.finish(inputs=inputs, outputs=outputs, summary=summary)
    tables = {"label_accuracy": labels, "label_accuracy_by_agreement": buckets, "difficulty": diff_matrix,
              "voting": voting, "diversity": diversity, "training": training, "evaluation": evaluation,
              "label_sample": sample_out}
    if not verifier.empty:
        tables["verifier"] = verifier
    return StageResult(summary, tables)


def build_summary(ctx, oracle, oracle_note, data, labels, buckets, diff_long, voting, diversity, training,
                  evaluation, figures) -> dict:
    """Every headline number of the report (see the module docstring for definitions)."""
    params = ctx.params
    label_cols = [c for c in LABEL_COLUMNS if c != "iteration"]
    difficulty = {}
    for row in diff_long.itertuples():
        difficulty.setdefault(row.model, {})[str(row.iteration)] = row.accuracy
    benchmarks = {}
    if not evaluation.empty:
        benchmarks = {"average": dict(evaluation["average"]) if "average" in evaluation else {},
                      "table": {str(i): dict(r) for i, r in evaluation.iterrows()},
                      "note": evaluation.attrs.get("note")}
    acc = labels.dropna(subset=["label_accuracy"]) if not labels.empty else labels
    base_row = diff_long[diff_long["model_iteration"] == 0] if not diff_long.empty else diff_long
    headline = {
        "iterations_with_labels": [int(i) for i in acc["iteration"]] if len(acc) else [],
        "label_accuracy_first": float(acc["label_accuracy"].iloc[0]) if len(acc) else None,
        "label_accuracy_last": float(acc["label_accuracy"].iloc[-1]) if len(acc) else None,
        "label_accuracy_change": float(acc["label_accuracy"].iloc[-1] - acc["label_accuracy"].iloc[0])
        if len(acc) else None,
        "mean_coverage": float(labels["coverage"].mean()) if len(labels) else None,
        "base_accuracy_on_questions": {str(int(r.iteration)): r.accuracy for r in base_row.itertuples()},
        "kept_fraction_mean": float(voting["kept_fraction"].mean()) if len(voting) else None,
        "mean_p_hat": float(data.votes["p_hat"].mean()) if not data.votes.empty else None,
        "self_bleu_last": float(diversity["self_bleu"].iloc[-1]) if len(diversity) else None,
        "benchmark_average": benchmarks.get("average", {}),
    }
    pooled = buckets[buckets["scope"] == "all"] if not buckets.empty else buckets
    summary = {
        "headline": headline,
        "run_name": params.run_name,
        "domain": params.domain,
        "model": params.model,
        "stages_done": data.done,
        "oracle": {"configured": oracle is not None, "kind": oracle.name if oracle else None,
                   "key": oracle.cache_key if oracle else None, "exact": bool(oracle.exact) if oracle else None,
                   "note": oracle_note},
        "label_sample_size": params.analysis.label_sample_size,
        "confidence": CONFIDENCE,
        "interval": "wilson",
        "label_accuracy": _by_iteration(labels, label_cols),
        "label_accuracy_by_agreement": [
            {c: r[c] for c in ("majority_count", "m", "p_hat", "in_band", "n", "accuracy", "ci_low", "ci_high")}
            for r in pooled.to_dict(orient="records")],
        "difficulty": difficulty,
        "difficulty_samples_per_question": params.analysis.solver_difficulty_samples,
        "voting": _by_iteration(voting, [c for c in VOTING_COLUMNS if c not in ("iteration", "drop_reasons")]),
        "drop_reasons": {str(int(r.iteration)): json.loads(r.drop_reasons) for r in voting.itertuples()},
        "diversity": _by_iteration(diversity, [c for c in DIVERSITY_COLUMNS
                                               if c not in ("iteration", "cluster_sizes")]),
        "training": {role: {str(int(k)): {f"{r.metric}_{stat}": getattr(r, stat) for r in g.itertuples()
                                          for stat in ("first", "last", "mean")}
                            for k, g in training[training["role"] == role].groupby("iteration")}
                     for role in ("challenger", "solver")},
        "benchmarks": benchmarks,
        "paper_reference": {"label": PAPER_REFERENCE_LABEL,
                            "label_accuracy": PAPER_LABEL_ACCURACY, "base_accuracy": PAPER_BASE_ACCURACY,
                            "math_average": (paper_benchmark_reference(params.model) or (None, None))[1]},
        "figures": figures,
        "tables": {name: f for name, (f, _) in TABLE_FILES.items()},
    }
    return _jsonable(summary)


def load_analysis(folder: str | Path):
    """The `StageResult` of a finished report, read back from its files."""
    from rzero_lib.stages import StageResult

    folder = Path(folder)
    summary = json.loads((folder / "summary.json").read_text())
    tables = {}
    for name, (file, has_index) in TABLE_FILES.items():
        path = folder / file
        if not path.exists():
            continue
        if file.endswith(".parquet"):
            tables[name] = pd.read_parquet(path)
        else:
            try:
                tables[name] = pd.read_csv(path, index_col=0 if has_index else None)
            except pd.errors.EmptyDataError:
                tables[name] = pd.DataFrame()
    return StageResult(summary, tables, loaded=True)


def figure_paths(folder: str | Path, summary: dict, fmt: str = "png") -> dict[str, Path]:
    """Figure stem -> file path, in report order."""
    return {stem: Path(folder) / info[fmt] for stem, info in summary.get("figures", {}).items() if fmt in info}


def show_report(folder: str | Path, result) -> None:
    """Display the headline numbers, every figure and the main tables (in a notebook)."""
    from IPython.display import Image, Markdown, display

    s = result.summary
    h = s.get("headline", {})
    oracle = s.get("oracle", {})
    lines = [f"**Run** `{s.get('run_name')}` — domain `{s.get('domain')}`, model `{s.get('model')}`",
             f"**Oracle**: {oracle.get('note')}"]
    if h.get("label_accuracy_first") is not None:
        lines.append(f"**Pseudo-label accuracy**: {100 * h['label_accuracy_first']:.1f}% (first iteration) → "
                     f"{100 * h['label_accuracy_last']:.1f}% (last); mean oracle coverage "
                     f"{100 * (h.get('mean_coverage') or 0):.0f}%")
    display(Markdown("\n\n".join(lines)))
    for stem, path in figure_paths(folder, s).items():
        display(Markdown(f"### {s['figures'][stem].get('title', stem)}"))
        display(Image(filename=str(path)))
    for name in ("label_accuracy", "difficulty", "label_accuracy_by_agreement", "voting", "diversity"):
        table = result.tables.get(name)
        if table is not None and not table.empty:
            display(Markdown(f"### Table: {name.replace('_', ' ')}"))
            display(table)
    evaluation = Path(folder) / "evaluation_table.md"
    if evaluation.exists():
        display(Markdown("### Benchmarks across iterations (accuracy, %)\n\n" + evaluation.read_text()))
