# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 07 · Arithmetic sandbox: R-Zero against its controls
#
# The sandbox (docs/sandbox.md, `make sandbox`) runs R-Zero on `builtin:arith-sandbox`, a ~1M-parameter
# character-level model pretrained from scratch on a synthetic corpus (the only place where ground-truth answers
# are used). Every question the Challenger writes has an exact answer, so the whole dynamic can be measured:
#
# 1. **Question difficulty** (operand digits, oracle answer size) by iteration, and p̂ moving toward ½ as the
#    Challenger learns.
# 2. **Pseudo-label accuracy** of the kept questions per iteration against the exact oracle (95% Wilson intervals;
#    every kept question is scored, not a sample).
# 3. **Solver accuracy** on the fixed held-out set `arith_sandbox` (480 questions, exact answers, greedy) for the
#    base model and every iteration, for the main run and the controls: oracle labels (upper bound), untrained
#    Challenger (the paper's baseline), no repetition penalty, no band filter.
# 4. **The Verifier** (issue 8, run `sandbox_verifier`): label accuracy of the Solver's training set with and
#    without the Verifier at the same number of kept questions, and the wrong labels it removed.
#
# This notebook only reads the runs' artifacts (votes, evaluation samples, Challenger logs, report summaries);
# `scripts/run_sandbox.sh` makes them. `write_comparison` (`rzero_lib.experiments.sandbox.comparison`) writes every
# figure, table and `summary.json` into `output_dir`; the cells below show them.

# %% tags=["parameters"]
runs_root = "runs"
main_run = "sandbox"
control_runs = ["sandbox_oracle_labels", "sandbox_untrained_challenger", "sandbox_no_penalty", "sandbox_no_band"]
verifier_run = "sandbox_verifier"  # "" to leave it out
output_dir = "runs/sandbox_comparison"
base_model = "builtin:arith-sandbox"
measure_base_model = True  # accuracy of the base model by operand size (greedy and sampled), ~30 s

# %%
from pathlib import Path

from IPython.display import Image, Markdown, display

from rzero_lib.experiments.sandbox.comparison import write_comparison

written = write_comparison(runs_root, [main_run, *control_runs], output_dir, verifier_run=verifier_run or None,
                           base_model=base_model if measure_base_model else None)
comparison = written.comparison
display(Markdown("runs found: " + ", ".join(f"`{n}` ({label})" for n, label in comparison.runs.items())
                 + ("  \nmissing: " + ", ".join(f"`{n}`" for n in comparison.missing) if comparison.missing else "")))


def show(name: str) -> None:
    if name in written.figures:
        display(Image(filename=str(written.figures[name])))


# %% [markdown]
# ## The base model: accuracy by operand size
#
# Greedy (what the held-out evaluation uses) and sampled at temperature 1 (the per-answer accuracy that p̂ and
# the majority vote are built from). Partial competence: good on small operands, weak on large ones.

# %%
if written.base_table is not None:
    display(written.base_table.pivot_table(index=["operator", "decoding"], columns="digits", values="accuracy")
            .round(3))
show("base_accuracy")

# %% [markdown]
# ## 1 · Question difficulty and p̂ by iteration
#
# Over every question the Challenger wrote in iteration k (voted by Solver_{k−1}). `oracle_accuracy_of_solver` is
# the voting Solver's per-answer accuracy on them, measured with the oracle (the questions get harder when it falls).

# %%
if not comparison.difficulty.empty:
    display(comparison.difficulty.set_index(["run", "iteration"]).round(3))
show("difficulty")
show("challenger_p_hat")

# %% [markdown]
# ## 2 · Pseudo-label accuracy of the kept questions (exact oracle)

# %%
if not comparison.labels.empty:
    display(comparison.labels[["run", "iteration", "kept_questions", "covered", "label_accuracy", "ci_low",
                               "ci_high", "majority_ratio"]].round(3))
show("label_accuracy")

# %% [markdown]
# ## 3 · Solver accuracy on the held-out set (iteration 0 = base model)

# %%
if not comparison.heldout.empty:
    display(comparison.heldout.pivot_table(index=["run", "scope"], columns="iteration", values="accuracy").round(3))
show("heldout_accuracy")

# %% [markdown]
# ## 4 · The Verifier: label accuracy with and without it
#
# From the Verifier run's report (`06_analysis`): per iteration, the accuracy of the labels the Verifier kept
# against the accuracy of all kept labels and of the same number of labels chosen by the vote's own p̂, with the
# share of wrong labels removed and right labels lost.

# %%
if written.verifier is not None:
    display(written.verifier.round(3))
    show("verifier")
else:
    display(Markdown(f"no Verifier run found (`{verifier_run}`)"))

# %% [markdown]
# ## Summary (`summary.json`): every run's tables and its report's label accuracy and benchmark numbers

# %%
display(Markdown(f"figures and `summary.json` in `{Path(output_dir)}`"))
{name: s.get("benchmarks", {}).get("average") for name, s in written.summary["report_summaries"].items()}
