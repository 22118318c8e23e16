"""A model's accuracy on the sandbox's held-out set by operator and largest-operand size."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from rzero_lib.answers import extract_boxed
from rzero_lib.arithmetic import ArithmeticProblem
from rzero_lib.engine.transformers_backend import TransformersGenerator
from rzero_lib.sampling import SamplingConfig
from rzero_lib.sandbox_world import answer_digits, sandbox_heldout_problems, sandbox_solver_prompt
from rzero_lib.stats import wilson_interval

ACCURACY_COLUMNS = ["operator", "digits", "n", "correct", "accuracy", "ci_low", "ci_high", "decoding"]


def heldout_table(problems: Sequence[ArithmeticProblem] | None = None):
    """The held-out set as a DataFrame (id as in the `arith_sandbox` benchmark, operator, digits, answer)."""
    problems = sandbox_heldout_problems() if problems is None else problems
    return pd.DataFrame({"id": [f"arith_sandbox-{k:03d}" for k in range(len(problems))],
                         "question": [p.question for p in problems], "answer": [p.answer for p in problems],
                         "operator": [p.operators for p in problems], "digits": [p.max_digits for p in problems],
                         "answer_digits": [answer_digits(p.answer) for p in problems]})


def accuracy_by_operand_size(spec: str, problems: Sequence[ArithmeticProblem] | None = None, *,
                             samples: int = 1, temperature: float = 1.0, top_k: int | None = 40,
                             batch_size: int = 512, seed: int = 0):
    """Accuracy of model `spec` per (operator, largest-operand digits) on the held-out set.

    Greedy when `samples == 1`, else the mean over `samples` answers at `temperature`
    (the per-sample accuracy that p̂ is built from). Wilson 95% intervals over answers.
    Rows with operator "all" pool the operators.
    """
    problems = sandbox_heldout_problems() if problems is None else list(problems)
    gen = TransformersGenerator.from_spec(spec, batch_size=batch_size)
    try:
        sampling = (SamplingConfig(n=1, temperature=0.0, max_new_tokens=12, seed=seed) if samples == 1 else
                    SamplingConfig(n=samples, temperature=temperature, top_k=top_k, max_new_tokens=12, seed=seed))
        outputs = gen.generate([sandbox_solver_prompt().messages(p.question) for p in problems], sampling,
                               progress=False)
    finally:
        gen.close()
    decoding = "greedy" if samples == 1 else f"mean@{samples} (T={temperature:g})"
    rows = [{"operator": p.operators, "digits": p.max_digits, "correct": extract_boxed(o) == p.answer}
            for p, group in zip(problems, outputs) for o in group]
    df = pd.DataFrame(rows)
    out = []
    for (op, digits), g in list(df.groupby(["operator", "digits"], sort=True)) + [
            (("all", d), g) for d, g in df.groupby("digits", sort=True)]:
        n, correct = len(g), int(g["correct"].sum())
        low, high = wilson_interval(correct, n)
        out.append({"operator": op, "digits": int(digits), "n": n, "correct": correct, "accuracy": correct / n,
                    "ci_low": low, "ci_high": high, "decoding": decoding})
    return pd.DataFrame(out, columns=ACCURACY_COLUMNS)


def plot_accuracy_by_operand_size(table, title: str = "base model accuracy by operand size", ax=None):
    """Accuracy (with 95% intervals) against largest-operand digits, one line per operator."""
    import matplotlib.pyplot as plt

    if ax is None:
        fig, ax = plt.subplots(figsize=(5.5, 3.4))
    else:
        fig = ax.figure
    for (op, decoding), g in table.groupby(["operator", "decoding"], sort=False):
        g = g.sort_values("digits")
        style = dict(lw=2.5, color="black") if op == "all" else dict(lw=1.4)
        ax.errorbar(g["digits"], 100 * g["accuracy"],
                    yerr=[100 * (g["accuracy"] - g["ci_low"]), 100 * (g["ci_high"] - g["accuracy"])],
                    marker="o", ms=4, capsize=3, label=f"{op} ({decoding})", **style)
    ax.set_xticks(sorted(table["digits"].unique()))
    ax.set_xlabel("digits of the largest operand")
    ax.set_ylabel("accuracy (%)")
    ax.set_ylim(-3, 103)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig
