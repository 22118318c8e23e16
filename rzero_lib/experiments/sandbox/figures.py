"""The comparison figures: every run on the same axes, the mean over seeds as a line and the seeds' min–max
range as a band (main run in black)."""

from __future__ import annotations

from pathlib import Path

from rzero_lib.atomic_files import write_figure_atomic
from rzero_lib.experiments.sandbox.runs import MAIN_RUN


def _axes(panels: int, width: float = 3.6, height: float = 3.0):
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, panels, figsize=(width * panels, height), squeeze=False)
    return fig, list(axes[0])


def _style(name: str) -> dict:
    return dict(lw=2.4, color="black", zorder=5) if name == MAIN_RUN else dict(lw=1.4)


def _band(ax, x, mean, low, high, name: str, label: str, scale: float = 1.0) -> str:
    """The seed mean as a line, the seeds' min–max as a shaded band of the same colour (returned)."""
    line, = ax.plot(x, scale * mean, marker="o", ms=4, label=label, **_style(name))
    ax.fill_between(x, scale * low, scale * high, color=line.get_color(), alpha=0.15, lw=0)
    return line.get_color()


def _seed_note(comparison) -> str:
    return "seeds: " + ", ".join(f"{n} {len(s)}" for n, s in comparison.seeds.items())


def _quantity_band(ax, means, name: str, label: str, quantity: str, scale: float) -> None:
    """One run's seed means of one question quantity per iteration, with the seeds' band (if it has any)."""
    g = means[(means["run"] == name) & (means["quantity"] == quantity)].dropna(subset=["mean"])
    if len(g):
        g = g.sort_values("iteration")
        _band(ax, g["iteration"], g["mean"], g["min"], g["max"], name, label, scale)


def _quantity_panels(comparison, panels, suptitle: str):
    fig, axes = _axes(len(panels))
    means = comparison.question_means
    for ax, (quantity, title, scale) in zip(axes, panels):
        for name, label in comparison.runs.items():
            _quantity_band(ax, means, name, label, quantity, scale)
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("iteration", fontsize=8)
        ax.grid(alpha=0.3)
        if not means.empty:
            ax.set_xticks(sorted(means["iteration"].unique()))
    axes[0].legend(fontsize=7)
    fig.suptitle(f"{suptitle} (line: seed mean, band: min–max; {_seed_note(comparison)})", fontsize=9)
    fig.tight_layout()
    return fig


def plot_label_accuracy(comparison):
    """Pseudo-label accuracy of every kept question against the oracle, and the share of kept labels that are
    the early-stop (misconception) answer."""
    fig = _quantity_panels(comparison, [("label_accuracy", "kept labels = oracle (%)", 100),
                                        ("early_stop_share", "kept labels = early-stop answer (%)", 100)],
                           "pseudo-labels")
    fig.axes[0].axhline(70, color="grey", ls=":", lw=1)
    return fig


def plot_difficulty(comparison):
    """Mean difficulty (steps b) of the questions written and kept, and the base Solver's sampled accuracy on
    the kept questions (the paper's "base model acc")."""
    return _quantity_panels(comparison, [("written_difficulty", "written questions: mean b", 1),
                                         ("kept_difficulty", "kept questions: mean b", 1),
                                         ("base_accuracy", "base Solver on kept questions (%)", 100)],
                            "question difficulty")


def plot_heldout_accuracy(comparison):
    """Greedy accuracy on the benchmark per iteration (0 = base; error bars ± 1 SE of the seed mean), and per
    difficulty after each run's last iteration against the base model."""
    fig, (ax, ax_b) = _axes(2, width=4.4)
    h = comparison.heldout_means
    for name, label in comparison.runs.items():
        g = h[(h["run"] == name) & (h["scope"] == "all")].sort_values("iteration") if not h.empty else h
        if g.empty:
            continue
        color = _band(ax, g["iteration"], g["accuracy"], g["min"], g["max"], name, label, 100)
        ax.errorbar(g["iteration"], 100 * g["accuracy"], yerr=100 * g["se"].fillna(0), fmt="none", capsize=2,
                    color=color, lw=0.8)
        per_b = h[(h["run"] == name) & (h["scope"] != "all")]
        last = per_b[per_b["iteration"] == per_b["iteration"].max()] if len(per_b) else per_b
        if len(last):
            b = last["scope"].str.removeprefix("b=").astype(int)
            ax_b.plot(b, 100 * last["accuracy"], marker="o", ms=3, label=f"{label}, iter {last['iteration'].iloc[0]}",
                      **{**_style(name), "color": color})
        if name == MAIN_RUN:
            base = per_b[per_b["iteration"] == 0]
            if len(base):
                ax_b.plot(base["scope"].str.removeprefix("b=").astype(int), 100 * base["accuracy"], ls="--",
                          color="grey", marker=".", label="base model")
    ax.set_title(f"{comparison.benchmark}: greedy accuracy (%)", fontsize=9)
    ax.set_xlabel("iteration (0 = base)", fontsize=8)
    ax_b.set_title("by difficulty b, last iteration", fontsize=9)
    ax_b.set_xlabel("b (steps)", fontsize=8)
    for a in (ax, ax_b):
        a.grid(alpha=0.3)
        a.legend(fontsize=6)
    if not h.empty:
        ax.set_xticks(sorted(h["iteration"].unique()))
    fig.suptitle(f"held-out accuracy (line: seed mean, band: min–max, bars: ± 1 SE; {_seed_note(comparison)})",
                 fontsize=9)
    fig.tight_layout()
    return fig


def plot_iteration_scaling(comparison, scaling: dict):
    """The stretch (`evaluate_iteration_scaling`): held-out greedy accuracy per iteration for each model size
    with its peak starred, and the kept labels' accuracy and the kept questions' difficulty per iteration."""
    fig, axes = _axes(3, width=3.8)
    h, q = comparison.heldout_means, comparison.question_means
    for name, label in comparison.runs.items():
        size = scaling["runs"].get(name)
        title = f"{label} ({size['size']})" if size else label
        g = h[(h["run"] == name) & (h["scope"] == "all")].sort_values("iteration") if not h.empty else h
        if g.empty:
            continue
        color = _band(axes[0], g["iteration"], g["accuracy"], g["min"], g["max"], name, title, 100)
        if size:
            axes[0].plot([size["peak_iteration"]], [100 * size["peak_accuracy"]], marker="*", ms=13, color=color,
                         zorder=6, ls="none")
        for ax, quantity, scale in ((axes[1], "label_accuracy", 100), (axes[2], "kept_difficulty", 1)):
            _quantity_band(ax, q, name, title, quantity, scale)
    for ax, title, xlabel in ((axes[0], f"{comparison.benchmark}: greedy accuracy (%), ★ peak", "iteration (0 = base)"),
                              (axes[1], "kept labels = oracle (%)", "iteration"),
                              (axes[2], "kept questions: mean b", "iteration")):
        ax.set_title(title, fontsize=9)
        ax.set_xlabel(xlabel, fontsize=8)
        ax.grid(alpha=0.3)
    if not h.empty:
        axes[0].set_xticks(sorted(h["iteration"].unique()))
    axes[0].legend(fontsize=6)
    fig.suptitle(f"iterations and model size (line: seed mean, band: min–max; {_seed_note(comparison)})", fontsize=9)
    fig.tight_layout()
    return fig


def save_png(fig, path: str | Path, dpi: int = 90) -> Path:
    """Save a figure as a small PNG (README-sized), atomically."""
    return write_figure_atomic(fig, path, dpi=dpi, bbox_inches="tight")
