# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 07 · Arithmetic sandbox: R-Zero against its controls, over seeds
#
# The sandbox (docs/sandbox.md, `make sandbox`) runs R-Zero on `builtin:arith-sandbox`, a small character-level
# model pretrained from scratch on a synthetic corpus (the only place where ground truth is used). Its questions
# are `c + a * b = ?`; the difficulty of a question is b, the number of steps the Solver writes. Every question
# has an exact answer, so the whole dynamic can be measured, per iteration, as the mean over seeds with the
# seeds' spread (min–max and sd):
#
# 1. **Question difficulty**: mean b of the questions written and kept, and the *base* Solver's sampled accuracy
#    on each iteration's kept questions (the paper's "base model acc": m answers per question with the run's
#    voting sampling settings).
# 2. **Pseudo-labels**: accuracy of every kept label against the exact oracle (Wilson intervals per seed and
#    pooled), and the share of kept labels that are the misconception's early-stop answer.
# 3. **Solver accuracy** on a fixed benchmark (greedy, iteration 0 = base), overall and per b, with standard
#    errors: the main run against the untrained-Challenger control and the oracle-label control.
# 4. **The pre-registered criteria** of issue 13, evaluated mechanically (`summary.json` → `criteria`), at
#    iteration 3.
# 5. **Iterations and model size** (the stretch, when the runs include `sandbox_small`): where held-out
#    accuracy peaks over 6 iterations at two model sizes.
#
# Runs are read from `<runs_root>/<name>/seed_<s>` (`scripts/run_sandbox.sh` makes them). Report on the
# held-out set `arith_sandbox`; tune on `arith_sandbox_dev` (`benchmark`). `write_comparison`
# (`rzero_lib.experiments.sandbox.comparison`) writes every figure, table and `summary.json` into `output_dir`.

# %% tags=["parameters"]
runs_root = "runs"
run_names = ["sandbox", "sandbox_untrained_challenger", "sandbox_oracle_labels"]
seeds = [0, 1, 2]
output_dir = "runs/sandbox_comparison"
benchmark = "arith_sandbox"  # the held-out set (reporting); "arith_sandbox_dev" for tuning
base_samples = 4  # base Solver answers per kept question; 0 to skip that measurement
verifier_run = ""  # e.g. "sandbox_verifier": its report's Verifier table and figure are copied in

# %%
import json
from pathlib import Path

from IPython.display import Image, Markdown, display

from rzero_lib.experiments.sandbox.comparison import write_comparison

written = write_comparison(runs_root, run_names, output_dir, seeds=seeds, benchmark=benchmark,
                           base_samples=base_samples, verifier_run=verifier_run or None)
comparison = written.comparison
display(Markdown("runs found: " + ", ".join(f"`{n}` ({label}; seeds {comparison.seeds[n]})"
                                            for n, label in comparison.runs.items())
                 + ("  \nmissing: " + ", ".join(f"`{n}` seed {s}" for n, s in comparison.missing)
                    if comparison.missing else "")))


def show(name: str) -> None:
    if name in written.figures:
        display(Image(filename=str(written.figures[name])))


def wide(means, quantity):
    g = means[means["quantity"] == quantity]
    return g.pivot_table(index="run", columns="iteration", values=["mean", "min", "max", "sd"]).round(3)


# %% [markdown]
# ## 1 · Question difficulty and the base Solver's accuracy on the kept questions

# %%
for quantity in ("written_difficulty", "kept_difficulty", "base_accuracy"):
    display(Markdown(f"**{quantity}** (mean over seeds, spread)"))
    display(wide(comparison.question_means, quantity))
show("difficulty")

# %% [markdown]
# ## 2 · Pseudo-label accuracy of the kept questions (exact oracle)
#
# Per seed with 95% Wilson intervals, then pooled over seeds; the early-stop share is the misconception's
# concentrated wrong answer winning the vote.

# %%
display(comparison.questions[["run", "seed", "iteration", "kept", "labels_checked", "label_accuracy", "ci_low",
                              "ci_high", "early_stop_share"]].round(3))
display(comparison.labels_pooled.round(3))
show("label_accuracy")

# %% [markdown]
# ## 3 · Solver accuracy on the benchmark (iteration 0 = base model)

# %%
h = comparison.heldout_means
display(h[h["scope"] == "all"].round(4))
display(h.pivot_table(index=["run", "scope"], columns="iteration", values="accuracy", sort=False).round(3))
show("heldout_accuracy")

# %% [markdown]
# ## 4 · The pre-registered criteria (issue 13)

# %%
for key, verdict in written.summary["criteria"].items():
    status = {True: "PASS", False: "FAIL", None: "not evaluable"}[verdict["pass"]]
    display(Markdown(f"**{key}: {status}** — {verdict['rule']}  \n`{json.dumps(verdict['numbers'])}`"
                     + (f"  \n{verdict['note']}" if verdict.get("note") else "")))

# %% [markdown]
# ## 5 · Iterations and model size (the stretch; `make sandbox-scaling`)
#
# When the runs include the main run and `sandbox_small` (the same run on a ~0.55M-parameter model), run for
# more iterations: where each size's held-out accuracy peaks, whether it declines after the peak, and whether
# the larger model peaks later (`summary.json` → `iteration_scaling`; rules in its `rule`).

# %%
scaling = written.summary.get("iteration_scaling")
if "iteration_scaling" in written.figures:  # drawn when the runs hold more than one model size
    for name, r in scaling["runs"].items():
        display(Markdown(f"**{comparison.runs.get(name, name)}** ({r['size']}, {r['seeds']} seeds): peak at "
                         f"iteration {r['peak_iteration']} ({100 * r['peak_accuracy']:.1f}%), iteration "
                         f"{r['last_iteration']} {100 * r['last_accuracy']:.1f}% — {r['after_peak']}"))
    display(Markdown(f"the larger model peaks later: **{scaling['larger_peaks_later']}**"
                     + (f" ({scaling['note']})" if scaling.get("note") else "")))
    show("iteration_scaling")
else:
    display(Markdown("no model-size comparison in these runs (`make sandbox-scaling` makes one)"))

# %% [markdown]
# ## The Verifier run (when `verifier_run` names one)

# %%
if written.verifier is not None:
    display(written.verifier.round(3))
    show("verifier")
display(Markdown(f"figures, tables and `summary.json` in `{Path(output_dir)}`"))
