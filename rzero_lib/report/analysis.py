"""The analysis stage: the report of a run (`06_analysis`, `rzero analyze RUN`) into `<run>/report/`.

`run_analysis(ctx)` reads whatever finished stages the run holds, asks the
oracle (cached) about fixed label samples, generates the difficulty answers
(cached), and writes every figure as PNG and PDF, every table as CSV or
Parquet and every headline number into `summary.json`. Called again on a report
whose inputs have not changed, it loads it instead. With no oracle (the math
domain without `model`/`openai`) the label figures say so and the rest is made.
What each figure and number means: docs/report.md.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from rzero_lib.atomic_files import write_json_atomic, write_parquet_atomic, write_text_atomic
from rzero_lib.engine.oracles import make_oracle
from rzero_lib.evaluation.evaluate import cross_iteration_table, table_markdown
from rzero_lib.oracle import NoOracleError, Oracle
from rzero_lib.pipeline.context import StageContext, StageResult
from rzero_lib.pipeline.run_tables import vote_difficulty
from rzero_lib.pipeline.rundir import MANIFEST
from rzero_lib.report.difficulty import (
    DIFFICULTY_CACHE,
    difficulty_answers,
    difficulty_long,
    difficulty_markdown,
    difficulty_matrix,
    merge_generation_records,
    score_difficulty,
)
from rzero_lib.report.figures import (
    FIGURES,
    NO_ORACLE,
    NO_ORACLE_FIGURE_NOTE,
    VERIFIER_FIGURE,
    plot_accuracy_by_agreement,
    plot_benchmarks,
    plot_difficulty,
    plot_diversity,
    plot_label_accuracy,
    plot_p_hat_histograms,
    plot_training_curves,
    plot_verifier,
    save_figure,
)
from rzero_lib.report.label_metrics import (
    LABEL_COLUMNS,
    VERIFIER_COLUMNS,
    accuracy_by_agreement,
    answer_list,
    label_accuracy_table,
    label_sample,
    score_labels,
    verifier_table,
)
from rzero_lib.report.oracle_cache import ORACLE_CACHE_FILE, cached_oracle_answers
from rzero_lib.report.paper import (
    PAPER_BASE_ACCURACY,
    PAPER_LABEL_ACCURACY,
    PAPER_REFERENCE_LABEL,
    paper_benchmark_reference,
)
from rzero_lib.report.run_data import RunData, analysis_inputs, load_run_data
from rzero_lib.report.tables import (
    CHALLENGER_CURVES,
    DIVERSITY_COLUMNS,
    DIVERSITY_MAX_QUESTIONS,
    SOLVER_CURVES,
    VOTING_COLUMNS,
    diversity_table,
    training_curves,
    training_summary,
    voting_summary,
)
from rzero_lib.stats import CONFIDENCE
from rzero_lib.values import jsonable

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
VERIFIER_TABLE = "verifier.csv"


def open_oracle(ctx: StageContext, oracle: Oracle | None) -> tuple[Oracle | None, str]:
    """(oracle or None, note: what the oracle is, for the headline). A missing oracle is not an error; a
    misconfigured one is."""
    if oracle is None:
        try:
            oracle = make_oracle(ctx.params, ctx.params.analysis.oracle)
        except NoOracleError as e:
            return None, f"{NO_ORACLE} ({e})"
    return oracle, oracle.describe() + (" (exact)" if oracle.exact else "")


def by_iteration(table: pd.DataFrame, columns: Sequence[str]) -> dict:
    return {str(int(r["iteration"])): {c: r[c] for c in columns} for r in table.to_dict(orient="records")}


def write_csv(df: pd.DataFrame, path: Path, index: bool = False) -> None:
    write_text_atomic(path, df.to_csv(index=index))


@dataclass
class ReportTables:
    """Everything the report computes before drawing and writing."""

    data: RunData
    scored: pd.DataFrame
    labels: pd.DataFrame
    buckets: pd.DataFrame
    verifier: pd.DataFrame
    diff_long: pd.DataFrame
    diff_matrix: pd.DataFrame
    voting: pd.DataFrame
    diversity: pd.DataFrame
    challenger_curves: pd.DataFrame
    solver_curves: pd.DataFrame
    training: pd.DataFrame
    evaluation: pd.DataFrame
    generation: dict  # engine and totals of the difficulty generations ({} when all came from the cache)


def run_analysis(ctx: StageContext, recompute: bool = False, *, oracle: Oracle | None = None,
                 generator_factory: Callable[[str], object] | None = None) -> StageResult:
    """Make (or load) the report of the run in `ctx.run` into `ctx.folder` (= `<run>/report`).

    `oracle` overrides the one the parameters configure; `generator_factory(spec)`
    overrides how the difficulty generators are built (tests). Returns a
    `StageResult` whose summary is `summary.json` and whose tables are the
    report's tables (pandas DataFrames).
    """
    oracle, oracle_note = open_oracle(ctx, oracle)
    inputs = {"stages": analysis_inputs(ctx.run), "oracle": oracle.cache_key if oracle else None}
    manifest = ctx.manifest
    if (ctx.done and not recompute and manifest.get("inputs") == inputs
            and manifest.get("params_hash") == ctx.params_hash and (ctx.folder / "summary.json").exists()):
        if oracle is not None:
            oracle.close()
        return load_analysis(ctx.folder)

    t0 = time.time()
    (ctx.folder / MANIFEST).unlink(missing_ok=True)  # a crash while redoing it must not look finished
    t = compute_tables(ctx, oracle, generator_factory)
    figures = draw_figures(ctx, t, oracle)
    sample_out = write_tables(ctx.folder, t)
    summary = build_summary(ctx, oracle, oracle_note, t.data, t.labels, t.buckets, t.diff_long, t.voting,
                            t.diversity, t.training, t.evaluation, figures)
    if not t.verifier.empty:
        summary["verifier"] = jsonable(by_iteration(t.verifier, [c for c in VERIFIER_COLUMNS if c != "iteration"]))
        summary["tables"]["verifier"] = VERIFIER_TABLE
    if t.generation:  # how the difficulty answers were generated (`rzero status --engines`)
        summary["generation"] = t.generation
    summary["seconds"] = round(time.time() - t0, 2)
    write_json_atomic(ctx.folder / "summary.json", summary)
    outputs = ["summary.json", "difficulty_table.md", "evaluation_table.md"]
    outputs += [f for f, _ in TABLE_FILES.values()]
    outputs += [name for fig in figures.values() for key, name in fig.items() if key in ("png", "pdf")]
    outputs += [c for c in (ORACLE_CACHE_FILE, DIFFICULTY_CACHE, VERIFIER_TABLE) if (ctx.folder / c).exists()]
    ctx.finish(inputs=inputs, outputs=outputs, summary=summary)
    tables = {"label_accuracy": t.labels, "label_accuracy_by_agreement": t.buckets, "difficulty": t.diff_matrix,
              "voting": t.voting, "diversity": t.diversity, "training": t.training, "evaluation": t.evaluation,
              "label_sample": sample_out}
    if not t.verifier.empty:
        tables["verifier"] = t.verifier
    return StageResult(summary, tables)


def compute_tables(ctx: StageContext, oracle: Oracle | None,
                   generator_factory: Callable[[str], object] | None) -> ReportTables:
    """Label samples and their oracle answers, label metrics, difficulty, voting, diversity, training, evaluation.

    The oracle is closed once it has answered (a model oracle frees its model before the difficulty generations).
    """
    params = ctx.params
    p = params.analysis
    data = load_run_data(ctx.run)
    timeout = params.voting.equivalence_timeout_s
    sample = pd.concat([label_sample(data.votes, p.label_sample_size, params.seed, "kept"),
                        label_sample(data.votes, p.label_sample_size, params.seed, "outside_band")],
                       ignore_index=True)
    cache = ctx.folder / ORACLE_CACHE_FILE
    try:
        answers = (cached_oracle_answers(oracle, sample["question"].tolist(), cache)
                   if oracle is not None and len(sample) else [None] * len(sample))
        verdict_answers = (cached_oracle_answers(oracle, data.verdicts["question"].tolist(), cache)
                           if oracle is not None and not data.verdicts.empty else [None] * len(data.verdicts))
    finally:
        if oracle is not None:
            oracle.close()
    scored = score_labels(sample, answers, timeout_s=timeout)
    covered = scored[(scored["sample"] == "kept") & scored["oracle_answer"].notna()]
    generation: list[dict] = []
    diff_rows = (score_difficulty(difficulty_answers(ctx, data, covered, generator_factory, generation),
                                  timeout_s=timeout) if len(covered) else pd.DataFrame())
    diff_long = difficulty_long(diff_rows)
    challenger_curves = training_curves(data.challenger_log, [m for m, _ in CHALLENGER_CURVES])
    solver_curves = training_curves(data.solver_log, [m for m, _ in SOLVER_CURVES])
    return ReportTables(
        data=data, scored=scored, labels=label_accuracy_table(scored, data.votes),
        buckets=accuracy_by_agreement(scored, params.voting.band_delta, params.voting.band_bounds),
        verifier=verifier_table(data.verdicts, verdict_answers, params.verifier.threshold, timeout),
        diff_long=diff_long, diff_matrix=difficulty_matrix(diff_long), voting=voting_summary(data.votes),
        diversity=diversity_table(data.questions, params.challenger_training.penalty_threshold,
                                  DIVERSITY_MAX_QUESTIONS, params.seed),
        challenger_curves=challenger_curves, solver_curves=solver_curves,
        training=pd.concat([training_summary(challenger_curves, "challenger"),
                            training_summary(solver_curves, "solver")], ignore_index=True),
        evaluation=cross_iteration_table(data.scores), generation=merge_generation_records(generation))


def draw_figures(ctx: StageContext, t: ReportTables, oracle: Oracle | None) -> dict:
    """Every figure of the report, saved; returns stem -> {title, png, pdf}."""
    v = ctx.params.voting
    no_oracle = None if oracle is not None else NO_ORACLE_FIGURE_NOTE
    makers = {
        "fig1_label_accuracy": lambda: plot_label_accuracy(t.labels, t.diff_long, no_oracle,
                                                           oracle.name if oracle else "oracle"),
        "fig2_difficulty": lambda: plot_difficulty(t.diff_matrix, no_oracle),
        "fig3_label_accuracy_by_agreement": lambda: plot_accuracy_by_agreement(t.buckets, no_oracle, v.band_delta,
                                                                               v.band_bounds),
        "fig4_p_hat_histograms": lambda: plot_p_hat_histograms(t.data.votes, v.num_samples, v.band_delta,
                                                               v.band_bounds),
        "fig5_training_curves": lambda: plot_training_curves(t.challenger_curves, t.solver_curves),
        "fig6_benchmarks": lambda: plot_benchmarks(t.data.scores, t.evaluation, ctx.params.model),
        "fig7_diversity": lambda: plot_diversity(t.diversity),
    }
    if not t.data.verdicts.empty:
        makers[VERIFIER_FIGURE[0]] = lambda: plot_verifier(t.verifier, no_oracle)
    titles = {**FIGURES, VERIFIER_FIGURE[0]: VERIFIER_FIGURE[1]}
    return {stem: {"title": titles[stem], **save_figure(make(), ctx.folder, stem)} for stem, make in makers.items()}


def write_tables(folder: Path, t: ReportTables) -> pd.DataFrame:
    """Every table of the report as CSV / Markdown / Parquet; returns the label sample as written."""
    sample_out = t.scored.drop(columns=["answers"]).assign(
        n_answers=t.scored["answers"].map(len),
        answers=t.scored["answers"].map(answer_list))
    write_parquet_atomic(sample_out, folder / "label_sample.parquet")
    write_csv(t.labels, folder / "label_accuracy.csv")
    write_csv(t.buckets, folder / "label_accuracy_by_agreement.csv")
    write_csv(t.diff_matrix, folder / "difficulty_table.csv", index=True)
    write_text_atomic(folder / "difficulty_table.md", difficulty_markdown(t.diff_matrix))
    write_csv(t.voting, folder / "voting_summary.csv")
    write_csv(t.diversity, folder / "diversity.csv")
    write_csv(t.training, folder / "training_summary.csv")
    write_csv(t.evaluation, folder / "evaluation_table.csv", index=True)
    write_text_atomic(folder / "evaluation_table.md", table_markdown(t.evaluation))
    if not t.verifier.empty:
        write_csv(t.verifier, folder / VERIFIER_TABLE)
    return sample_out


def build_summary(ctx: StageContext, oracle, oracle_note, data, labels, buckets, diff_long, voting, diversity, training,
                  evaluation, figures) -> dict:
    """Every headline number of the report (definitions: docs/report.md)."""
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
    kept = data.votes[data.votes["kept"].astype(bool)] if not data.votes.empty else data.votes
    kept_difficulty = vote_difficulty(kept, params.domain).groupby(kept["iteration"]).mean() if len(kept) else {}
    headline = {
        "iterations_with_labels": [int(i) for i in acc["iteration"]] if len(acc) else [],
        "label_accuracy_first": float(acc["label_accuracy"].iloc[0]) if len(acc) else None,
        "label_accuracy_last": float(acc["label_accuracy"].iloc[-1]) if len(acc) else None,
        "label_accuracy_change": float(acc["label_accuracy"].iloc[-1] - acc["label_accuracy"].iloc[0])
        if len(acc) else None,
        "mean_coverage": float(labels["coverage"].mean()) if len(labels) else None,
        "base_accuracy_on_questions": {str(int(r.iteration)): r.accuracy for r in base_row.itertuples()},
        "difficulty_mean": {str(int(k)): v for k, v in dict(kept_difficulty).items()},
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
        "label_accuracy": by_iteration(labels, label_cols),
        "label_accuracy_by_agreement": [
            {c: r[c] for c in ("majority_count", "m", "p_hat", "in_band", "n", "accuracy", "ci_low", "ci_high")}
            for r in pooled.to_dict(orient="records")],
        "difficulty": difficulty,
        "difficulty_samples_per_question": params.analysis.solver_difficulty_samples,
        "voting": by_iteration(voting, [c for c in VOTING_COLUMNS if c not in ("iteration", "drop_reasons")]),
        "drop_reasons": {str(int(r.iteration)): json.loads(r.drop_reasons) for r in voting.itertuples()},
        "diversity": by_iteration(diversity, [c for c in DIVERSITY_COLUMNS
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
    return jsonable(summary)


def load_analysis(folder: str | Path) -> StageResult:
    """The `StageResult` of a finished report, read back from its files."""
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
        title = s["figures"][stem].get("title", stem)
        display(Markdown(f"### {title}"))
        display(Image(filename=str(path), alt=title))  # the alt text travels in the output's metadata
    for name in ("label_accuracy", "difficulty", "label_accuracy_by_agreement", "voting", "diversity"):
        table = result.tables.get(name)
        if table is not None and not table.empty:
            display(Markdown(f"### Table: {name.replace('_', ' ')}"))
            display(styled(table))
    evaluation = Path(folder) / "evaluation_table.md"
    if evaluation.exists():
        display(Markdown("### Benchmarks across iterations (accuracy, %)\n\n" + evaluation.read_text()))


LABEL_SAMPLE_COLUMNS = ["iteration", "question", "answers", "majority_answer", "p_hat", "oracle_answer",
                        "label_correct"]


def show_label_sample(result, rows: int = 40) -> None:
    """Display the first `rows` questions of the label sample (the report's static stand-in for the explorer)."""
    from IPython.display import Markdown, display

    sample = result.tables.get("label_sample")
    if sample is None or sample.empty:
        display(Markdown("*No label sample: no finished voting stage kept a question.*"))
        return
    shown = sample[[c for c in LABEL_SAMPLE_COLUMNS if c in sample]].head(rows).copy()
    if "answers" in shown:
        shown["answers"] = shown["answers"].map(lambda a: ", ".join("—" if x is None else str(x) for x in a))
    display(styled(shown).format({"p_hat": "{:.2f}"}, na_rep="—"))


def styled(table: pd.DataFrame):
    """A table as the report shows it: 3 decimals, no row numbers (a named index stays)."""
    style = table.style.format(precision=3, na_rep="—")
    if isinstance(table.index, pd.RangeIndex):
        style = style.hide(axis="index")
    return style
