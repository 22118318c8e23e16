"""Quick looks the stage notebooks show while a run is in progress: a trainer's logged metrics, and p̂ with
the kept band. The report's own figures are in `rzero_lib.report.figures`.

A function that makes its own figure closes it before returning it, so a notebook shows it once, as the
cell's value or with `display(fig)`: pyplot's inline backend also shows every figure still open at the end
of a cell, which made each figure appear twice. (Made without pyplot they would not appear at all unless
something imported pyplot: importing it registers the inline backend's PNG formatter.)
"""

from __future__ import annotations

from collections.abc import Sequence

from rzero_lib.voting import band_filter, band_limits


def plot_log_history(history, columns: Sequence[str], title: str = "", step_column: str = "step"):
    """One small panel per logged metric (those present in `history`)."""
    import matplotlib.pyplot as plt

    present = [c for c in columns if c in history and history[c].notna().any()]
    if not present:
        fig, ax = plt.subplots(figsize=(4, 2))
        ax.text(0.5, 0.5, "no metrics logged", ha="center", va="center")
        ax.axis("off")
        plt.close(fig)
        return fig
    cols = min(3, len(present))
    rows = (len(present) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 2.6 * rows), squeeze=False)
    for ax, name in zip(axes.flat, present):
        data = history[[step_column, name]].dropna() if step_column in history else history[[name]].dropna()
        x = data[step_column] if step_column in data else range(len(data))
        ax.plot(x, data[name], marker="o", ms=3)
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("optimizer step", fontsize=8)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(present):]:
        ax.axis("off")
    fig.suptitle(title)
    fig.tight_layout()
    plt.close(fig)
    return fig


def plot_p_hat_histogram(p_hats, m: int, delta: float = 0.25, bounds: tuple[float, float] | None = None,
                         title: str = "", ax=None, kept=None):
    """Histogram of p̂ on the m+1 possible values, the kept band shaded.

    `kept`: the questions' kept flags (votes.parquet's `kept`, after every drop rule); the title's kept
    fraction is theirs. Without them it is the band's share alone.
    """
    import matplotlib.pyplot as plt
    import numpy as np

    own_figure = ax is None
    if own_figure:
        fig, ax = plt.subplots(figsize=(6, 3))
    else:
        fig = ax.figure
    values = np.asarray(list(p_hats), dtype=float)
    edges = (np.arange(m + 2) - 0.5) / m
    ax.hist(values, bins=edges, color="tab:blue", edgecolor="white")
    low, high = band_limits(delta, bounds)
    ax.axvspan(low - 0.5 / m, high + 0.5 / m, color="tab:green", alpha=0.15, label="kept band")
    if kept is not None:
        flags = np.asarray(list(kept), dtype=bool)
        share, what = (float(flags.mean()) if len(flags) else 0.0), "kept"
    else:
        share = float(np.mean([band_filter(v, delta, bounds) for v in values])) if len(values) else 0.0
        what = "in the band"
    label = f"{what} {share:.0%}"
    ax.set_xlabel("p̂ (share of the m answers in the majority)")
    ax.set_ylabel("questions")
    ax.set_title(f"{title}  ({label})" if title else label)
    ax.legend()
    if own_figure:
        plt.close(fig)
    return fig
