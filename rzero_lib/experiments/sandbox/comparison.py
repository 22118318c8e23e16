"""The sandbox's main run against its controls: per-run tables, the comparison, and what notebook 07 writes.

`load_comparison` reads every run's votes, evaluation samples and Challenger
records; `label_accuracy` scores every kept question against the exact oracle
(Wilson intervals); `write_comparison` makes the figures, the tables and
`summary.json` (with each run's report numbers) in one output folder.
"""

from __future__ import annotations

import json
import math
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from rzero_lib.arithmetic_expressions import arithmetic_answer
from rzero_lib.atomic_files import atomic_path, write_json_atomic, write_text_atomic
from rzero_lib.experiments.sandbox.figures import (
    plot_comparison_challenger_p_hat,
    plot_comparison_difficulty,
    plot_comparison_heldout_accuracy,
    plot_comparison_label_accuracy,
    save_png,
)
from rzero_lib.experiments.sandbox.measure import (
    accuracy_by_operand_size,
    heldout_table,
    plot_accuracy_by_operand_size,
)
from rzero_lib.experiments.sandbox.runs import (
    CONTROL_RUNS,
    HELDOUT_BENCHMARK,
    MAIN_RUN,
    RUN_LABELS,
    VERIFIER_RUN,
)
from rzero_lib.pipeline.run_tables import stage_tables, stages_done
from rzero_lib.pipeline.rundir import RunDir
from rzero_lib.report.label_metrics import LABEL_COLUMNS, label_accuracy_table, label_sample, score_labels
from rzero_lib.sandbox_world import answer_digits, operand_digits, question_operator
from rzero_lib.stats import wilson_interval
from rzero_lib.values import jsonable
from rzero_lib.voting import band_filter

# What each run's report (`report/summary.json`, rzero_lib.report.analysis) contributes to the comparison.
REPORT_SUMMARY_KEYS = ("label_accuracy", "benchmarks")


def _oracle_answers(questions) -> list[str | None]:
    return [arithmetic_answer(str(q)) if q is not None else None for q in questions]


def load_votes(run_dir: str | Path) -> pd.DataFrame:
    """Every finished iteration's votes.parquet with its `iteration` (empty DataFrame when none)."""
    return stage_tables(run_dir, "voting", "votes.parquet")


DIFFICULTY_COLUMNS = ["iteration", "questions", "evaluable", "operand_digits", "answer_digits", "share_1_digit",
                      "share_2_digit", "share_3plus_digit", "share_plus", "share_minus", "share_times",
                      "mean_p_hat", "mean_abs_p_hat_minus_half", "in_band", "kept", "kept_fraction",
                      "oracle_accuracy_of_solver"]


def difficulty_table(votes: pd.DataFrame, band_delta: float = 0.25,
                     band_bounds: tuple[float, float] | None = None) -> pd.DataFrame:
    """Per iteration, over the questions the Challenger wrote (all voted questions):
    operand digits (largest operand), oracle answer digits, operator mix, p̂ statistics,
    the share in the run's band, the kept fraction, and the voting Solver's per-sample
    accuracy against the oracle."""
    if votes.empty:
        return pd.DataFrame(columns=DIFFICULTY_COLUMNS)
    df = votes.copy()
    df["oracle_answer"] = _oracle_answers(df["question"])
    df["operand_digits"] = [operand_digits(q) for q in df["question"]]
    df["answer_digits"] = [answer_digits(a) for a in df["oracle_answer"]]
    df["operator"] = [question_operator(q) for q in df["question"]]
    df["sample_accuracy"] = [
        (sum(a is not None and str(a) == o for a in list(answers)) / len(answers)) if o is not None and len(answers)
        else None for answers, o in zip(df["answers"], df["oracle_answer"])]
    rows = []
    for k, g in df.groupby("iteration", sort=True):
        ev = g[g["oracle_answer"].notna()]
        digits = ev["operand_digits"].dropna()
        ops = ev["operator"]
        rows.append({
            "iteration": int(k), "questions": len(g), "evaluable": len(ev),
            "operand_digits": float(digits.mean()) if len(digits) else math.nan,
            "answer_digits": float(ev["answer_digits"].dropna().mean()) if len(ev) else math.nan,
            "share_1_digit": float((digits == 1).mean()) if len(digits) else math.nan,
            "share_2_digit": float((digits == 2).mean()) if len(digits) else math.nan,
            "share_3plus_digit": float((digits >= 3).mean()) if len(digits) else math.nan,
            "share_plus": float((ops == "+").mean()) if len(ops) else math.nan,
            "share_minus": float((ops == "-").mean()) if len(ops) else math.nan,
            "share_times": float((ops == "*").mean()) if len(ops) else math.nan,
            "mean_p_hat": float(g["p_hat"].mean()),
            "mean_abs_p_hat_minus_half": float((g["p_hat"] - 0.5).abs().mean()),
            "in_band": float(g["p_hat"].map(lambda p: band_filter(p, band_delta, band_bounds)).mean()),
            "kept": int(g["kept"].sum()), "kept_fraction": float(g["kept"].mean()),
            "oracle_accuracy_of_solver": float(ev["sample_accuracy"].dropna().mean()) if len(ev) else math.nan,
        })
    return pd.DataFrame(rows, columns=DIFFICULTY_COLUMNS)


def label_accuracy(votes):
    """Pseudo-label accuracy of **all** kept questions per iteration against the exact oracle,
    with 95% Wilson intervals (`rzero_lib.report.label_metrics.label_accuracy_table` on every kept question)."""
    if votes.empty or not votes["kept"].any():
        return pd.DataFrame(columns=LABEL_COLUMNS)
    sample = label_sample(votes, size=len(votes) + 1, which="kept")
    scored = score_labels(sample, _oracle_answers(sample["question"]))
    return label_accuracy_table(scored, votes)


def heldout_accuracy(run_dir: str | Path):
    """Held-out (`arith_sandbox`) accuracy per iteration (0 = the base model), overall and per
    largest-operand digits, from the evaluation stages' samples (greedy, exact answers)."""
    items = heldout_table()[["id", "digits", "operator"]]
    rows = []
    evaluated = stage_tables(run_dir, "evaluation", "samples.parquet")
    for k, samples in (evaluated.groupby("iteration", sort=True) if not evaluated.empty else []):
        samples = samples[samples["benchmark"] == HELDOUT_BENCHMARK].merge(items, on="id", how="left")
        if samples.empty:
            continue
        groups = [("all", samples)] + [(f"{int(d)} digit", g) for d, g in samples.groupby("digits", sort=True)]
        for scope, g in groups:
            n, correct = len(g), int(g["correct"].astype(bool).sum())
            low, high = wilson_interval(correct, n)
            rows.append({"iteration": k, "scope": scope, "n": n, "correct": correct, "accuracy": correct / n,
                         "ci_low": low, "ci_high": high})
    return pd.DataFrame(rows, columns=["iteration", "scope", "n", "correct", "accuracy", "ci_low", "ci_high"])


def challenger_progress(run_dir: str | Path):
    """The Challenger's GRPO steps: mean p̂ of the questions it wrote, its reward and operand digits,
    per iteration and step (from `challenger_questions.jsonl` of every finished Challenger training)."""
    run = RunDir.at(run_dir)
    rows = []
    for k in stages_done(run)["challenger_training"]:
        path = run.stage_dir(k, "challenger_training") / "challenger_questions.jsonl"
        if not path.exists():
            continue
        df = pd.read_json(path, lines=True)
        if df.empty:
            continue
        df["operand_digits"] = [operand_digits(q) for q in df["question"]]
        df["step"] = df["step"].fillna(-1).astype(int)  # the trainer's global step when the batch was scored
        for step, g in df.groupby("step", sort=True):
            parsed = g[g["question"].notna()]
            rows.append({"iteration": k, "step": int(step), "completions": len(g),
                         "parse_rate": len(parsed) / len(g),
                         "mean_p_hat": float(parsed["p_hat"].mean()) if len(parsed) else math.nan,
                         "mean_abs_p_hat_minus_half": float((parsed["p_hat"] - 0.5).abs().mean())
                         if len(parsed) else math.nan,
                         "reward": float(g["reward"].mean()),
                         "operand_digits": float(parsed["operand_digits"].mean()) if len(parsed) else math.nan})
    return pd.DataFrame(rows)

@dataclass
class Comparison:
    """The main run and its controls, one table per quantity, each with a `run` column."""

    runs: dict[str, str]  # run name -> label, for the runs found
    missing: list[str]
    difficulty: object
    labels: object
    heldout: object
    challenger: object
    summaries: dict


def load_comparison(runs_root: str | Path = "runs", run_names: Sequence[str] | None = None) -> Comparison:
    """Read the main run and the controls under `runs_root` (runs that do not exist are listed as missing)."""
    names = list(run_names) if run_names is not None else [MAIN_RUN, *CONTROL_RUNS, VERIFIER_RUN]
    found, missing = {}, []
    tables: dict[str, list] = {"difficulty": [], "labels": [], "heldout": [], "challenger": []}
    summaries = {}
    for name in names:
        run_dir = Path(runs_root) / name
        if not (run_dir / "params.yaml").exists():
            missing.append(name)
            continue
        found[name] = RUN_LABELS.get(name, name)
        votes = load_votes(run_dir)
        voting = RunDir.at(run_dir).load_params().voting
        for key, table in (("difficulty", difficulty_table(votes, voting.band_delta, voting.band_bounds)), ("labels", label_accuracy(votes)),
                           ("heldout", heldout_accuracy(run_dir)), ("challenger", challenger_progress(run_dir))):
            if not table.empty:
                tables[key].append(table.assign(run=name))
        summary_path = run_dir / "report" / "summary.json"
        if summary_path.exists():
            summaries[name] = json.loads(summary_path.read_text())

    def cat(frames):
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()

    return Comparison(found, missing, cat(tables["difficulty"]), cat(tables["labels"]), cat(tables["heldout"]),
                      cat(tables["challenger"]), summaries)

def comparison_summary(comparison: Comparison) -> dict:
    """The headline numbers of every run and of its report (`label_accuracy`, `benchmarks`), JSON-ready."""
    def records(df, cols):
        if df.empty:
            return {}
        return {name: g[cols].to_dict(orient="records") for name, g in df.groupby("run", sort=False)}

    label_cols = ["iteration", "kept_questions", "covered", "label_accuracy", "ci_low", "ci_high", "majority_ratio"]
    return jsonable({
        "runs": comparison.runs, "missing": comparison.missing,
        "difficulty": records(comparison.difficulty, DIFFICULTY_COLUMNS),
        "label_accuracy": records(comparison.labels, label_cols),
        "heldout": records(comparison.heldout, ["iteration", "scope", "n", "accuracy", "ci_low", "ci_high"]),
        "report_summaries": {name: {k: s[k] for k in REPORT_SUMMARY_KEYS if k in s}
                             for name, s in comparison.summaries.items()},
    })



@dataclass
class ComparisonReport:
    """What `write_comparison` made: the tables, the figures (name -> PNG path) and the summary it wrote."""

    comparison: Comparison
    output_dir: Path
    base_table: pd.DataFrame | None = None
    verifier: pd.DataFrame | None = None
    figures: dict[str, Path] = field(default_factory=dict)
    summary: dict = field(default_factory=dict)


def write_comparison(runs_root: str | Path, run_names: Sequence[str], output_dir: str | Path, *,
                     verifier_run: str | None = None, base_model: str | None = None) -> ComparisonReport:
    """Compare the runs and write the figures, tables and `summary.json` into `output_dir`.

    `base_model`: also measure that model's accuracy by operand size (greedy and
    sampled at temperature 1), ~30 s. `verifier_run`: a run with the Verifier,
    whose report's Verifier table and figure are copied in.
    """
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    comparison = load_comparison(runs_root, [*run_names, *([verifier_run] if verifier_run else [])])
    report = ComparisonReport(comparison, out)
    if base_model:
        greedy = accuracy_by_operand_size(base_model)
        sampled = accuracy_by_operand_size(base_model, samples=10, temperature=1.0)
        report.base_table = pd.concat([greedy, sampled], ignore_index=True)
        write_text_atomic(out / "base_accuracy_by_operand_size.csv", report.base_table.to_csv(index=False))
        pooled = report.base_table[report.base_table["operator"] == "all"].assign(operator="all operators")
        report.figures["base_accuracy"] = save_png(plot_accuracy_by_operand_size(pooled),
                                                   out / "sandbox_base_accuracy.png")
    for name, plot in (("difficulty", plot_comparison_difficulty), ("challenger_p_hat", plot_comparison_challenger_p_hat),
                       ("label_accuracy", plot_comparison_label_accuracy),
                       ("heldout_accuracy", plot_comparison_heldout_accuracy)):
        report.figures[name] = save_png(plot(comparison), out / f"sandbox_{name}.png")
    verifier_report = Path(runs_root) / verifier_run / "report" if verifier_run else None
    if verifier_report is not None and (verifier_report / "verifier.csv").exists():
        report.verifier = pd.read_csv(verifier_report / "verifier.csv")
        figure = verifier_report / "fig8_verifier.png"
        if figure.exists():
            with atomic_path(out / "sandbox_verifier.png", suffix=".png") as tmp:
                shutil.copyfile(figure, tmp)
            report.figures["verifier"] = out / "sandbox_verifier.png"
    summary = comparison_summary(comparison)
    if report.base_table is not None:
        summary["base_accuracy_by_operand_size"] = jsonable(report.base_table.to_dict(orient="records"))
    if report.verifier is not None:
        summary["verifier"] = jsonable(report.verifier.to_dict(orient="records"))
    report.summary = summary
    write_json_atomic(out / "summary.json", summary)
    return report
