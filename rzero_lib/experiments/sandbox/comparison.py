"""The sandbox's main run against its controls over seeds: per-seed tables, seed means with their spread, the
issue's pre-registered criteria, and what notebook 07 writes.

`load_comparison` reads `<runs root>/<name>/seed_<s>` for every run name and seed: each iteration's votes
(written and kept questions, their difficulty, every kept label against the exact oracle with a Wilson
interval, the share of kept labels that are the misconception's early-stop answer), the base Solver's sampled
accuracy on each iteration's kept questions (the paper's "base model acc"), and the greedy accuracy on one
benchmark per iteration (0 = base), overall and per difficulty. `seed_means` aggregates over seeds (mean, sd,
min, max); `evaluate_criteria` checks the four criteria of issue 13 mechanically; `write_comparison` writes the
figures, the tables and `summary.json` into one folder.
"""

from __future__ import annotations

import json
import math
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from rzero_lib.atomic_files import atomic_path, write_json_atomic, write_text_atomic
from rzero_lib.domains import resolve_prompts
from rzero_lib.experiments.sandbox.figures import (
    plot_difficulty,
    plot_heldout_accuracy,
    plot_iteration_scaling,
    plot_label_accuracy,
    save_png,
)
from rzero_lib.experiments.sandbox.measure import (
    benchmark_difficulty,
    matches_oracle,
    sampled_accuracy,
    voting_sampling,
)
from rzero_lib.experiments.sandbox.runs import (
    CRITERIA_ITERATION,
    HELDOUT_BENCHMARK,
    MAIN_RUN,
    ORACLE_LABELS_RUN,
    RUN_LABELS,
    SEEDS,
    SIZE_RUNS,
    UNTRAINED_CHALLENGER_RUN,
    seed_run_dir,
)
from rzero_lib.oracle import arithmetic_answer
from rzero_lib.pipeline.run_tables import stage_tables, vote_difficulty
from rzero_lib.pipeline.rundir import RunDir
from rzero_lib.sandbox_world import early_stop_answer, parse_question
from rzero_lib.seeds import derive_seed
from rzero_lib.stats import wilson_interval
from rzero_lib.values import jsonable

BASE_SAMPLES = 4  # base Solver answers per kept question (the paper's "base model acc")
QUESTION_COLUMNS = ["run", "seed", "iteration", "written", "written_difficulty", "kept", "kept_difficulty",
                    "labels_checked", "labels_correct", "label_accuracy", "ci_low", "ci_high", "early_stop_share",
                    "base_samples", "base_accuracy"]
QUESTION_QUANTITIES = ["written_difficulty", "kept_difficulty", "label_accuracy", "early_stop_share",
                       "base_accuracy", "kept"]
HELDOUT_COLUMNS = ["run", "seed", "iteration", "scope", "n", "correct", "accuracy", "se"]
ITEM_COLUMNS = ["run", "seed", "iteration", "id", "difficulty", "correct"]
GAIN_POINTS = 0.05  # criterion 2: at least 5 points above the base model


def _mean(values) -> float:
    values = [float(v) for v in values if v is not None and not pd.isna(v)]
    return sum(values) / len(values) if values else math.nan


# --------------------------------------------------------------------------
# one seed of one run
# --------------------------------------------------------------------------


def question_table(votes: pd.DataFrame, domain: str) -> pd.DataFrame:
    """Per iteration (votes of one run): questions written (voted) and kept with their mean difficulty, every
    kept label against the oracle (Wilson 95%), and the share of kept labels equal to the early-stop answer
    (over kept questions in the sandbox form)."""
    cols = [c for c in QUESTION_COLUMNS if c not in ("run", "seed", "base_samples", "base_accuracy")]
    if votes.empty:
        return pd.DataFrame(columns=cols)
    df = votes.assign(difficulty=vote_difficulty(votes, domain), kept=votes["kept"].astype(bool))
    rows = []
    for k, g in df.groupby("iteration", sort=True):
        kept = g[g["kept"]]
        oracle = [arithmetic_answer(str(q)) for q in kept["question"]]
        checked = [(a, o) for a, o in zip(kept["majority_answer"], oracle) if o is not None]
        correct = sum(matches_oracle(a, o) for a, o in checked)
        low, high = wilson_interval(correct, len(checked))
        parsed = [(p, a) for q, a in zip(kept["question"], kept["majority_answer"]) if (p := parse_question(q))]
        early = sum(a is not None and str(a).strip() == early_stop_answer(*p) for p, a in parsed)
        rows.append({"iteration": int(k), "written": len(g), "written_difficulty": _mean(g["difficulty"]),
                     "kept": len(kept), "kept_difficulty": _mean(kept["difficulty"]),
                     "labels_checked": len(checked), "labels_correct": correct,
                     "label_accuracy": correct / len(checked) if checked else math.nan, "ci_low": low,
                     "ci_high": high, "early_stop_share": early / len(parsed) if parsed else math.nan})
    return pd.DataFrame(rows, columns=cols)


def heldout_items(run_dir: str | Path, benchmark: str, difficulty: pd.DataFrame) -> pd.DataFrame:
    """Greedy correctness of every `benchmark` item per iteration (0 = base) from the evaluation samples,
    with the item's difficulty (`difficulty`: id -> difficulty, `benchmark_difficulty`)."""
    samples = stage_tables(run_dir, "evaluation", "samples.parquet")
    if samples.empty:
        return pd.DataFrame(columns=ITEM_COLUMNS[2:])
    samples = samples[samples["benchmark"] == benchmark]
    items = (samples.assign(correct=samples["correct"].astype(float))
             .groupby(["iteration", "id"], as_index=False)["correct"].mean())
    return items.merge(difficulty[["id", "difficulty"]], on="id", how="left")[ITEM_COLUMNS[2:]]


def _accuracy_row(correct: pd.Series) -> dict:
    n = len(correct)
    p = float(correct.mean()) if n else math.nan
    return {"n": n, "correct": float(correct.sum()), "accuracy": p,
            "se": math.sqrt(p * (1 - p) / n) if n else math.nan}


def _scopes(items: pd.DataFrame):
    yield "all", items
    for d, g in items.dropna(subset=["difficulty"]).groupby("difficulty", sort=True):
        yield f"b={int(d)}", g


def heldout_table(items: pd.DataFrame) -> pd.DataFrame:
    """Accuracy with its binomial standard error per iteration, overall (`all`) and per difficulty (`b=…`)."""
    rows = [{"iteration": int(k), "scope": scope, **_accuracy_row(g["correct"])}
            for k, by_k in items.groupby("iteration", sort=True) for scope, g in _scopes(by_k)]
    return pd.DataFrame(rows, columns=HELDOUT_COLUMNS[2:])


# --------------------------------------------------------------------------
# the comparison
# --------------------------------------------------------------------------


@dataclass
class SeedRun:
    name: str
    seed: int
    path: Path
    params: object  # RunParams


def find_runs(runs_root: str | Path, run_names: Sequence[str], seeds: Sequence[int]):
    """(every `SeedRun` found, the (name, seed) pairs without a run directory)."""
    found, missing = [], []
    for name in run_names:
        for seed in seeds:
            path = seed_run_dir(runs_root, name, seed)
            if (path / "params.yaml").exists():
                found.append(SeedRun(name, int(seed), path, RunDir.at(path).load_params()))
            else:
                missing.append((name, int(seed)))
    return found, missing


def base_accuracy_on_kept(runs: Sequence[SeedRun], kept: dict[tuple[str, int], pd.DataFrame],
                          samples: int = BASE_SAMPLES, batch_size: int = 256) -> pd.DataFrame:
    """The base Solver's sampled accuracy on each iteration's kept questions (run, seed, iteration,
    base_samples, base_accuracy): `samples` answers per question with the run's voting sampling settings and
    Solver prompt, the base model loaded once for all runs that share it and asked once per distinct question.
    `kept`: (run, seed) -> its kept votes (every iteration)."""
    cols = ["run", "seed", "iteration", "base_samples", "base_accuracy"]
    groups: dict[tuple, list[SeedRun]] = {}
    seed = derive_seed(0, "sandbox comparison", "base accuracy on kept")
    for r in runs:
        sampling = voting_sampling(r.params.voting, samples, seed)
        groups.setdefault((RunDir.at(r.path).base_model(), resolve_prompts(r.params)[1], sampling), []).append(r)
    rows = []
    for (spec, prompt, sampling), members in groups.items():
        # a run that stopped before voting has no kept table (and no columns)
        questions = [q for r in members for q in kept[(r.name, r.seed)].get("question", [])]
        scored = sampled_accuracy(spec, prompt, questions, sampling, batch_size=batch_size).set_index("question")
        for r in members:
            votes = kept[(r.name, r.seed)]
            for k, g in (votes.groupby("iteration", sort=True) if not votes.empty else []):
                s = scored.loc[[str(q) for q in g["question"]]]
                s = s[s["oracle_answer"].notna()]
                total = int(s["samples"].sum())
                rows.append({"run": r.name, "seed": r.seed, "iteration": int(k), "base_samples": total,
                             "base_accuracy": float(s["correct"].sum()) / total if total else math.nan})
    return pd.DataFrame(rows, columns=cols)


def seed_means(table: pd.DataFrame, keys: Sequence[str], quantities: Sequence[str]) -> pd.DataFrame:
    """Long table: per `keys` (run, iteration, …) and quantity, the mean over seeds, the sd (ddof 1; NaN for
    one seed), the min, the max and the number of seeds."""
    cols = [*keys, "quantity", "mean", "sd", "min", "max", "seeds"]
    if table.empty:
        return pd.DataFrame(columns=cols)
    rows = []
    for key, g in table.groupby(list(keys), sort=True):
        key = key if isinstance(key, tuple) else (key,)
        for q in quantities:
            v = g[q].dropna().astype(float)
            rows.append({**dict(zip(keys, key)), "quantity": q, "mean": v.mean() if len(v) else math.nan,
                         "sd": v.std(ddof=1) if len(v) > 1 else math.nan, "min": v.min() if len(v) else math.nan,
                         "max": v.max() if len(v) else math.nan, "seeds": len(v)})
    return pd.DataFrame(rows, columns=cols)


def pooled_labels(questions: pd.DataFrame) -> pd.DataFrame:
    """Kept-label accuracy per run and iteration with every seed's labels pooled (Wilson 95%)."""
    cols = ["run", "iteration", "labels_checked", "labels_correct", "label_accuracy", "ci_low", "ci_high"]
    rows = []
    for (name, k), g in (questions.groupby(["run", "iteration"], sort=True) if not questions.empty else []):
        n, c = int(g["labels_checked"].sum()), int(g["labels_correct"].sum())
        low, high = wilson_interval(c, n)
        rows.append({"run": name, "iteration": int(k), "labels_checked": n, "labels_correct": c,
                     "label_accuracy": c / n if n else math.nan, "ci_low": low, "ci_high": high})
    return pd.DataFrame(rows, columns=cols)


def seed_mean_correct(items: pd.DataFrame) -> pd.DataFrame:
    """Per run, iteration and item: the correctness averaged over the seeds (the unit of the standard errors)."""
    if items.empty:
        return pd.DataFrame(columns=["run", "iteration", "id", "difficulty", "correct"])
    return items.groupby(["run", "iteration", "id"], as_index=False).agg(
        difficulty=("difficulty", "first"), correct=("correct", "mean"))


def heldout_seed_means(items: pd.DataFrame, per_seed: pd.DataFrame) -> pd.DataFrame:
    """Per run, iteration and scope: the seed mean of the accuracy, its spread over seeds (sd, min, max), and
    its standard error over items of the seed-averaged correctness."""
    cols = ["run", "iteration", "scope", "n", "accuracy", "se", "sd", "min", "max", "seeds"]
    if items.empty:
        return pd.DataFrame(columns=cols)
    spread = seed_means(per_seed, ["run", "iteration", "scope"], ["accuracy"]).set_index(["run", "iteration", "scope"])
    rows = []
    for (name, k), g in seed_mean_correct(items).groupby(["run", "iteration"], sort=True):
        for scope, s in _scopes(g):
            n = len(s)
            spread_row = spread.loc[(name, k, scope)]
            rows.append({"run": name, "iteration": int(k), "scope": scope, "n": n,
                         "accuracy": float(spread_row["mean"]),
                         "se": float(s["correct"].std(ddof=1)) / math.sqrt(n) if n > 1 else math.nan,
                         "sd": spread_row["sd"], "min": spread_row["min"], "max": spread_row["max"],
                         "seeds": int(spread_row["seeds"])})
    return pd.DataFrame(rows, columns=cols)


@dataclass
class Comparison:
    """Every run and seed found, the per-seed tables (each with `run` and `seed` columns) and their seed means."""

    runs: dict[str, str]  # run name -> label, for the runs found
    seeds: dict[str, list[int]]  # run name -> seeds found
    missing: list[tuple[str, int]]
    benchmark: str
    questions: pd.DataFrame  # QUESTION_COLUMNS
    heldout: pd.DataFrame  # HELDOUT_COLUMNS
    items: pd.DataFrame  # ITEM_COLUMNS
    headlines: dict  # run -> seed -> its report's headline (report/summary.json)

    @property
    def question_means(self) -> pd.DataFrame:
        return seed_means(self.questions, ["run", "iteration"], QUESTION_QUANTITIES)

    @property
    def labels_pooled(self) -> pd.DataFrame:
        return pooled_labels(self.questions)

    @property
    def heldout_means(self) -> pd.DataFrame:
        return heldout_seed_means(self.items, self.heldout)


def load_comparison(runs_root: str | Path = "runs", run_names: Sequence[str] | None = None,
                    seeds: Sequence[int] = SEEDS, benchmark: str = HELDOUT_BENCHMARK, *,
                    base_samples: int = BASE_SAMPLES) -> Comparison:
    """Read every run `<runs_root>/<name>/seed_<s>` (those that do not exist are listed as missing) and
    measure the base Solver on their kept questions (`base_samples` = 0: not measured, NaN)."""
    names = list(run_names) if run_names is not None else [MAIN_RUN, UNTRAINED_CHALLENGER_RUN, ORACLE_LABELS_RUN]
    runs, missing = find_runs(runs_root, names, seeds)
    difficulty = benchmark_difficulty(benchmark)
    questions, heldout, items, headlines, kept = [], [], [], {}, {}
    for r in runs:
        votes = stage_tables(r.path, "voting", "votes.parquet")
        kept[(r.name, r.seed)] = votes[votes["kept"].astype(bool)] if not votes.empty else votes
        tag = {"run": r.name, "seed": r.seed}
        questions.append(question_table(votes, r.params.domain).assign(**tag))
        seed_items = heldout_items(r.path, benchmark, difficulty)
        items.append(seed_items.assign(**tag))
        heldout.append(heldout_table(seed_items).assign(**tag))
        summary = r.path / "report" / "summary.json"
        if summary.exists():
            headlines.setdefault(r.name, {})[str(r.seed)] = json.loads(summary.read_text()).get("headline", {})

    def cat(frames, cols):
        frames = [f for f in frames if not f.empty]
        return pd.concat(frames, ignore_index=True)[cols] if frames else pd.DataFrame(columns=cols)

    q = cat(questions, [c for c in QUESTION_COLUMNS if c not in ("base_samples", "base_accuracy")])
    base = base_accuracy_on_kept(runs, kept, base_samples) if base_samples > 0 and not q.empty else None
    if base is not None and not base.empty:
        q = q.merge(base, on=["run", "seed", "iteration"], how="left")
    else:
        q = q.assign(base_samples=0, base_accuracy=math.nan)
    seeds_found: dict[str, list[int]] = {}
    for r in runs:
        seeds_found.setdefault(r.name, []).append(r.seed)
    return Comparison({n: RUN_LABELS.get(n, n) for n in seeds_found}, seeds_found, missing, benchmark,
                      q[QUESTION_COLUMNS], cat(heldout, HELDOUT_COLUMNS), cat(items, ITEM_COLUMNS), headlines)


# --------------------------------------------------------------------------
# the pre-registered criteria (issue 13)
# --------------------------------------------------------------------------


def _value(means: pd.DataFrame, run: str, k: int, quantity: str, column: str = "mean") -> float:
    row = means[(means["run"] == run) & (means["iteration"] == k) & (means["quantity"] == quantity)]
    return float(row[column].iloc[0]) if len(row) else math.nan


def _heldout(means: pd.DataFrame, run: str, k: int, column: str = "accuracy") -> float:
    row = means[(means["run"] == run) & (means["iteration"] == k) & (means["scope"] == "all")]
    return float(row[column].iloc[0]) if len(row) else math.nan


def _verdict(rule: str, numbers: dict, passed, note: str | None = None) -> dict:
    numbers = {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in numbers.items()}
    missing = [k for k, v in numbers.items() if v is None]
    if passed is None or missing:
        passed = None
        note = note or f"not evaluable: no {', '.join(missing)} (a run, seed or iteration not found)"
    return {"rule": rule, "pass": None if passed is None else bool(passed), "numbers": numbers,
            **({"note": note} if note else {})}


def _last_common_iteration(table: pd.DataFrame, run: str, cap: int | None = None) -> int | None:
    """The last iteration that every seed of `run` reached (at most `cap`)."""
    t = table[table["run"] == run]
    if t.empty:
        return None
    last = int(t.groupby("seed")["iteration"].max().min())
    return min(last, cap) if cap is not None else last


def gain_standard_error(items: pd.DataFrame, run: str, first: int, last: int) -> float:
    """The standard error of (accuracy at `last` − at `first`), paired by item, over the seed-averaged
    correctness (items evaluated at both)."""
    m = seed_mean_correct(items[items["run"] == run])
    a = m[m["iteration"] == first].set_index("id")["correct"]
    b = m[m["iteration"] == last].set_index("id")["correct"]
    d = (b - a).dropna()
    return float(d.std(ddof=1)) / math.sqrt(len(d)) if len(d) > 1 else math.nan


def evaluate_criteria(comparison: Comparison, main: str = MAIN_RUN, untrained: str = UNTRAINED_CHALLENGER_RUN,
                      oracle: str = ORACLE_LABELS_RUN, last_iteration: int = CRITERIA_ITERATION) -> dict:
    """The four pre-registered criteria of issue 13, each with `pass` (true, false, or null when a run or an
    iteration it needs is missing), the numbers it was decided on, and the rule. "First" is iteration 1 and
    "last" the last iteration every seed of the main run reached, at most `last_iteration` (the issue's 3:
    runs extended to more iterations for the stretch are judged at iteration 3)."""
    qm, hm = comparison.question_means, comparison.heldout_means
    first, last = 1, _last_common_iteration(comparison.questions, main, last_iteration)
    trend_note = None
    if last is None or last <= first:
        trend_note = f"not evaluable: the main run needs iterations {first} and a later one (last: {last})"
        last = first if last is None else last
    criteria = {}

    kd1, kd3 = _value(qm, main, first, "kept_difficulty"), _value(qm, main, last, "kept_difficulty")
    ba1, ba3 = _value(qm, main, first, "base_accuracy"), _value(qm, main, last, "base_accuracy")
    criteria["1_harder_questions"] = _verdict(
        f"seed mean of the kept questions' difficulty rises from iteration {first} to {last}, and the base "
        "Solver's sampled accuracy on them falls",
        {"first_iteration": first, "last_iteration": last, "kept_difficulty_first": kd1,
         "kept_difficulty_last": kd3, "base_accuracy_first": ba1, "base_accuracy_last": ba3},
        None if trend_note else (kd3 > kd1 and ba3 < ba1), trend_note)

    k_last = _last_common_iteration(comparison.heldout, main, last_iteration)
    base, final = _heldout(hm, main, 0), _heldout(hm, main, k_last) if k_last else math.nan
    gain = final - base
    se = gain_standard_error(comparison.items, main, 0, k_last) if k_last else math.nan
    u_last = _last_common_iteration(comparison.heldout, untrained, last_iteration)
    untrained_final = _heldout(hm, untrained, u_last) if u_last else math.nan
    main_range = _heldout(hm, main, k_last, "max") - _heldout(hm, main, k_last, "min") if k_last else math.nan
    u_range = (_heldout(hm, untrained, u_last, "max") - _heldout(hm, untrained, u_last, "min")
               if u_last else math.nan)
    spread = max(main_range, u_range) if not (math.isnan(main_range) or math.isnan(u_range)) else math.nan
    criteria["2_solver_improves"] = _verdict(
        f"{comparison.benchmark}: seed-mean greedy accuracy after the last iteration ≥ base + "
        f"{100 * GAIN_POINTS:g} points and the gain > 2 standard errors (paired by item); and main − untrained "
        "Challenger > the seeds' spread (the larger min–max range of the two runs' final accuracies)",
        {"last_iteration": k_last, "base": base, "final": final, "gain": gain, "gain_se": se,
         "untrained_last_iteration": u_last, "untrained_final": untrained_final,
         "main_minus_untrained": final - untrained_final,
         "main_seed_range": main_range, "untrained_seed_range": u_range, "seed_spread": spread},
        None if not k_last else (gain >= GAIN_POINTS - 1e-12 and gain > 2 * se
                                 and final - untrained_final > spread))

    la1, la3 = _value(qm, main, first, "label_accuracy"), _value(qm, main, last, "label_accuracy")
    pooled = comparison.labels_pooled
    pooled = pooled[pooled["run"] == main].set_index("iteration")
    criteria["3_labels_get_worse"] = _verdict(
        f"seed mean of the kept labels' accuracy against the oracle ≥ 0.70 in iteration {first} and lower in "
        f"iteration {last}",
        {"first_iteration": first, "last_iteration": last, "label_accuracy_first": la1,
         "label_accuracy_last": la3,
         "pooled_wilson_first": [pooled.loc[first, "ci_low"], pooled.loc[first, "ci_high"]]
         if first in pooled.index else None,
         "pooled_wilson_last": [pooled.loc[last, "ci_low"], pooled.loc[last, "ci_high"]]
         if last in pooled.index else None},
        None if trend_note else (la1 >= 0.70 and la3 < la1), trend_note)

    o_last = _last_common_iteration(comparison.heldout, oracle, last_iteration)
    oracle_final = _heldout(hm, oracle, o_last) if o_last else math.nan
    criteria["4_labels_matter"] = _verdict(
        f"{comparison.benchmark}: the oracle-label control's seed-mean final accuracy ≥ the main run's",
        {"oracle_last_iteration": o_last, "oracle_final": oracle_final, "main_final": final},
        None if not (o_last and k_last) else oracle_final >= final)
    return criteria


def evaluate_iteration_scaling(comparison: Comparison, size_runs: dict[str, str] | None = None) -> dict | None:
    """The stretch of issue 13 (the paper's iteration scaling), for the runs of `size_runs` (name -> size, from
    the smaller model to the larger; default `SIZE_RUNS`) that were found: the seed-mean held-out accuracy per
    iteration, where it peaks, and whether it falls after the peak; then whether the larger model peaks later.
    None when no run of `size_runs` was found. Rules (pre-registered before the 6-iteration runs):
    peak = the iteration with the highest seed mean (the earliest on ties); "declines" when the last
    iteration's seed mean lies below the peak's by more than the seeds' min–max range at the last iteration,
    "plateaus" when not, "still rising" when the peak is the last iteration."""
    size_runs = dict(SIZE_RUNS if size_runs is None else size_runs)
    hm, qm = comparison.heldout_means, comparison.question_means
    sizes = {}
    for name, size in size_runs.items():
        last = _last_common_iteration(comparison.heldout, name)
        if last is None:
            continue
        g = hm[(hm["run"] == name) & (hm["scope"] == "all") & (hm["iteration"] <= last)]
        accuracy = {int(k): float(a) for k, a in zip(g["iteration"], g["accuracy"])}
        peak = max(sorted(accuracy), key=lambda k: accuracy[k])  # max keeps the first (earliest) of equals
        last_range = _heldout(hm, name, last, "max") - _heldout(hm, name, last, "min")
        if peak == last:
            after = "still rising"
        else:
            after = "declines" if accuracy[peak] - accuracy[last] > last_range + 1e-12 else "plateaus"
        per_iteration = {q: {int(k): _value(qm, name, int(k), q) for k in sorted(accuracy) if k >= 1}
                         for q in ("label_accuracy", "kept_difficulty")}
        sizes[name] = {"size": size, "last_iteration": last, "seeds": len(comparison.seeds.get(name, [])),
                       "heldout_accuracy": accuracy, "peak_iteration": peak, "peak_accuracy": accuracy[peak],
                       "last_accuracy": accuracy[last], "last_seed_range": last_range, "after_peak": after,
                       **per_iteration}
    if not sizes:
        return None
    result = {"rule": "peak = iteration of the highest seed-mean held-out greedy accuracy (earliest on ties); "
                      "declines = last below the peak by more than the seeds' min–max range at the last "
                      "iteration; the larger model peaks later = its peak iteration is later",
              "runs": sizes, "larger_peaks_later": None}
    found = [n for n in size_runs if n in sizes]
    if len(found) >= 2:
        small, large = sizes[found[0]], sizes[found[-1]]
        if small["last_iteration"] != large["last_iteration"]:
            result["note"] = "not comparable: the sizes reached different iterations"
        else:
            result["larger_peaks_later"] = large["peak_iteration"] > small["peak_iteration"]
    return result


# --------------------------------------------------------------------------
# what notebook 07 writes
# --------------------------------------------------------------------------


def _records(df: pd.DataFrame) -> list[dict]:
    return df.to_dict(orient="records")


def comparison_summary(comparison: Comparison) -> dict:
    """Every table (per seed and seed means), the criteria and the runs' report headlines, JSON-ready."""
    return jsonable({
        "benchmark": comparison.benchmark, "runs": comparison.runs, "seeds": comparison.seeds,
        "missing": [{"run": n, "seed": s} for n, s in comparison.missing],
        "criteria": evaluate_criteria(comparison),
        "iteration_scaling": evaluate_iteration_scaling(comparison),
        "questions_seed_mean": _records(comparison.question_means),
        "labels_pooled": _records(comparison.labels_pooled),
        "heldout_seed_mean": _records(comparison.heldout_means),
        "questions_per_seed": _records(comparison.questions),
        "heldout_per_seed": _records(comparison.heldout),
        "report_headlines": comparison.headlines,
    })


@dataclass
class ComparisonReport:
    """What `write_comparison` made: the comparison, its figures (name -> PNG path) and the summary it wrote."""

    comparison: Comparison
    output_dir: Path
    verifier: pd.DataFrame | None = None
    figures: dict[str, Path] = field(default_factory=dict)
    summary: dict = field(default_factory=dict)


TABLES = {"questions_per_seed.csv": lambda c: c.questions, "questions_seed_mean.csv": lambda c: c.question_means,
          "labels_pooled.csv": lambda c: c.labels_pooled, "heldout_per_seed.csv": lambda c: c.heldout,
          "heldout_seed_mean.csv": lambda c: c.heldout_means}


def write_comparison(runs_root: str | Path, run_names: Sequence[str], output_dir: str | Path, *,
                     seeds: Sequence[int] = SEEDS, benchmark: str = HELDOUT_BENCHMARK,
                     base_samples: int = BASE_SAMPLES, verifier_run: str | None = None) -> ComparisonReport:
    """Compare the runs over seeds and write the figures, the tables (CSV) and `summary.json` into
    `output_dir`. `verifier_run`: a run with the Verifier (its first seed found), whose report's Verifier table
    and figure are copied in."""
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    comparison = load_comparison(runs_root, run_names, seeds, benchmark, base_samples=base_samples)
    report = ComparisonReport(comparison, out)
    for name, make in TABLES.items():
        write_text_atomic(out / name, make(comparison).to_csv(index=False))
    for name, plot in (("label_accuracy", plot_label_accuracy), ("difficulty", plot_difficulty),
                       ("heldout_accuracy", plot_heldout_accuracy)):
        report.figures[name] = save_png(plot(comparison), out / f"sandbox_{name}.png")
    summary = comparison_summary(comparison)
    scaling = summary["iteration_scaling"]
    if scaling is not None and len(scaling["runs"]) > 1:  # the stretch's runs: where each size peaks
        report.figures["iteration_scaling"] = save_png(plot_iteration_scaling(comparison, scaling),
                                                       out / "sandbox_iteration_scaling.png")
    verifier_dirs = [seed_run_dir(runs_root, verifier_run, s) / "report" for s in seeds] if verifier_run else []
    verifier_report = next((d for d in verifier_dirs if (d / "verifier.csv").exists()), None)
    if verifier_report is not None:
        report.verifier = pd.read_csv(verifier_report / "verifier.csv")
        figure = verifier_report / "fig8_verifier.png"
        if figure.exists():
            with atomic_path(out / "sandbox_verifier.png", suffix=".png") as tmp:
                shutil.copyfile(figure, tmp)
            report.figures["verifier"] = out / "sandbox_verifier.png"
    if report.verifier is not None:
        summary["verifier"] = jsonable(_records(report.verifier))
    report.summary = summary
    write_json_atomic(out / "summary.json", summary)
    return report

