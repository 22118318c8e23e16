"""The report's figures (PNG + PDF): label accuracy, difficulty, agreement, p̂, training, benchmarks, diversity,
the Verifier. Each `plot_*` returns a matplotlib Figure built without pyplot."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from rzero_lib.atomic_files import write_figure_atomic
from rzero_lib.evaluation.math_sets import MATH_BENCHMARKS
from rzero_lib.report.paper import (
    PAPER_BASE_ACCURACY,
    PAPER_LABEL_ACCURACY,
    PAPER_REFERENCE_LABEL,
    paper_benchmark_reference,
)
from rzero_lib.report.stage_plots import plot_p_hat_histogram
from rzero_lib.report.tables import (
    CHALLENGER_CURVES,
    CLUSTER_SIZE_BUCKETS,
    SOLVER_CURVES,
    cluster_size_shares,
)
from rzero_lib.stats import ratio
from rzero_lib.voting import band_limits

NO_ORACLE = "no oracle configured"
NO_ORACLE_FIGURE_NOTE = f"{NO_ORACLE}\n(set analysis.oracle.kind to 'model' or 'openai')"
NO_LABEL_CHECKED = "no label checked yet\n(the oracle answered none of the sampled questions)"

FIGURES = {
    "fig1_label_accuracy": "Pseudo-label accuracy per iteration",
    "fig2_difficulty": "Difficulty: model accuracy on each iteration's questions",
    "fig3_label_accuracy_by_agreement": "Label accuracy by agreement (p̂ bucket)",
    "fig4_p_hat_histograms": "p̂ per iteration and the kept band",
    "fig5_training_curves": "Training curves",
    "fig6_benchmarks": "Benchmark accuracy per iteration",
    "fig7_diversity": "Question diversity per iteration",
}
VERIFIER_FIGURE = ("fig8_verifier", "Verifier: label accuracy with and without it")  # only when it ran


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
    out = {}
    for fmt in ("png", "pdf"):
        out[fmt] = write_figure_atomic(fig, Path(folder) / f"{stem}.{fmt}", dpi=150).name
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
        _message(ax, note or NO_LABEL_CHECKED)
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
        _message(ax, note or NO_LABEL_CHECKED)
    else:
        pooled = buckets[buckets["scope"] == "all"].sort_values("p_hat")
        low, high = band_limits(band_delta, band_bounds)
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
    iterations = sorted(int(k) for k in votes["iteration"].unique()) if not votes.empty else []
    cols = min(3, max(1, len(iterations)))
    rows = max(1, math.ceil(len(iterations) / cols))
    # at least 6.4 in wide: the title must fit above a single iteration's panel
    fig, axes = _figure(rows, cols, size=(max(4.6 * cols, 6.4), 3.3 * rows))
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
        ax.text(0.02, 0.95, f"{len(kept)}/{len(g)} kept ({ratio(len(kept), len(g)):.0%})", transform=ax.transAxes,
                va="top", fontsize=8)
        ax.legend(fontsize=7, loc="upper right")
    for ax in list(axes.flat)[len(iterations):]:
        ax.axis("off")
    fig.suptitle("p̂ per iteration k: Solver$_{k-1}$ voting on Challenger$_k$'s questions", fontsize=11)
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
