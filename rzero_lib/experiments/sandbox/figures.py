"""The comparison figures: every run of the sandbox comparison on the same axes (main run in black)."""

from __future__ import annotations

from pathlib import Path

from rzero_lib.atomic_files import write_figure_atomic
from rzero_lib.experiments.sandbox.runs import MAIN_RUN


def _run_axes(comparison, panels: int, width: float = 4.2, height: float = 3.2):
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, panels, figsize=(width * panels, height), squeeze=False)
    return fig, list(axes[0])


def _style(name: str) -> dict:
    return dict(lw=2.6, color="black", zorder=5) if name == MAIN_RUN else dict(lw=1.4)


def plot_comparison_difficulty(comparison):
    """Operand digits, oracle answer digits and p̂ of the questions the Challenger wrote, by iteration."""
    fig, axes = _run_axes(comparison, 3)
    d = comparison.difficulty
    panels = [("operand_digits", "digits of the largest operand"), ("answer_digits", "digits of the oracle answer"),
              ("mean_abs_p_hat_minus_half", "mean |p̂ − ½| (0 = all at ½)")]
    for ax, (col, title) in zip(axes, panels):
        for name, label in comparison.runs.items():
            g = d[d["run"] == name].sort_values("iteration") if not d.empty else d
            if len(g):
                ax.plot(g["iteration"], g[col], marker="o", label=label, **_style(name))
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("iteration (questions of Challenger_k, voted by Solver_{k-1})", fontsize=8)
        ax.grid(alpha=0.3)
        if not d.empty:
            ax.set_xticks(sorted(d["iteration"].unique()))
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    return fig


def plot_comparison_challenger_p_hat(comparison):
    """Mean p̂ of the Challenger's questions over its GRPO steps (all iterations on one axis)."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
    c = comparison.challenger
    for name, label in comparison.runs.items():
        g = c[c["run"] == name] if not c.empty else c
        if g.empty:
            continue
        g = g.sort_values(["iteration", "step"]).reset_index(drop=True)
        axes[0].plot(g.index, g["mean_p_hat"], marker=".", label=label, **_style(name))
        axes[1].plot(g.index, g["reward"], marker=".", label=label, **_style(name))
        for x in g.index[g["iteration"].diff().fillna(0) != 0]:
            for ax in axes:
                ax.axvline(x - 0.5, color="grey", lw=0.6, ls=":")
    axes[0].axhline(0.5, color="grey", ls="--", lw=1)
    axes[0].set_title("Challenger training: mean p̂ of its questions", fontsize=10)
    axes[1].set_title("Challenger training: mean reward", fontsize=10)
    for ax in axes:
        ax.set_xlabel("GRPO step (iterations separated by dotted lines)", fontsize=8)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    return fig


def plot_comparison_label_accuracy(comparison):
    """Pseudo-label accuracy of the kept questions per iteration (exact oracle, 95% Wilson intervals)."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.6, 3.4))
    t = comparison.labels
    names = list(comparison.runs)
    width = 0.8 / max(1, len(names))
    for i, name in enumerate(names):
        g = t[t["run"] == name].sort_values("iteration") if not t.empty else t
        if g.empty:
            continue
        x = g["iteration"] + (i - (len(names) - 1) / 2) * width
        ax.errorbar(x, 100 * g["label_accuracy"], yerr=[100 * (g["label_accuracy"] - g["ci_low"]),
                                                         100 * (g["ci_high"] - g["label_accuracy"])],
                    marker="o", capsize=3, label=comparison.runs[name], **_style(name))
    ax.set_xlabel("iteration")
    ax.set_ylabel("majority label = oracle (%)")
    ax.set_title("pseudo-label accuracy of the kept questions", fontsize=10)
    if not t.empty:
        ax.set_xticks(sorted(t["iteration"].unique()))
    ax.set_ylim(-3, 103)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def plot_comparison_heldout_accuracy(comparison):
    """Held-out accuracy per iteration (0 = base), overall and per operand size, for every run."""
    h = comparison.heldout
    scopes = ["all"] + sorted(s for s in h["scope"].unique() if s != "all") if not h.empty else ["all"]
    fig, axes = _run_axes(comparison, len(scopes), width=3.2)
    for ax, scope in zip(axes, scopes):
        for name, label in comparison.runs.items():
            g = h[(h["run"] == name) & (h["scope"] == scope)].sort_values("iteration") if not h.empty else h
            if g.empty:
                continue
            ax.errorbar(g["iteration"], 100 * g["accuracy"],
                        yerr=[100 * (g["accuracy"] - g["ci_low"]), 100 * (g["ci_high"] - g["accuracy"])],
                        marker="o", capsize=2, label=label, **_style(name))
        ax.set_title(f"held-out accuracy: {scope}", fontsize=10)
        ax.set_xlabel("iteration (0 = base)", fontsize=8)
        ax.grid(alpha=0.3)
        if not h.empty:
            ax.set_xticks(sorted(h["iteration"].unique()))
    axes[0].set_ylabel("greedy accuracy (%)")
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    return fig



def save_png(fig, path: str | Path, dpi: int = 90) -> Path:
    """Save a figure as a small PNG (README-sized), atomically."""
    return write_figure_atomic(fig, path, dpi=dpi, bbox_inches="tight")
