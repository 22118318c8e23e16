# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 07 · Arithmetic sandbox: R-Zero against its controls
#
# The sandbox (`rzero_lib.sandbox`, `make sandbox`) runs R-Zero on `builtin:arith-sandbox`, a ~1M-parameter
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
# `scripts/run_sandbox.sh` makes them.

# %% tags=["parameters"]
runs_root = "runs"
main_run = "sandbox"
control_runs = ["sandbox_oracle_labels", "sandbox_untrained_challenger", "sandbox_no_penalty", "sandbox_no_band"]
verifier_run = "sandbox_verifier"  # "" to leave it out
output_dir = "runs/sandbox_comparison"
base_model = "builtin:arith-sandbox"
measure_base_model = True  # accuracy of the base model by operand size (greedy and sampled), ~30 s

# %%
import json
from pathlib import Path

import pandas as pd
from IPython.display import Markdown, display

from rzero_lib import sandbox as S

out = Path(output_dir)
out.mkdir(parents=True, exist_ok=True)
comparison = S.load_comparison(runs_root, [main_run, *control_runs, *([verifier_run] if verifier_run else [])])
display(Markdown("runs found: " + ", ".join(f"`{n}` ({label})" for n, label in comparison.runs.items())
                 + ("  \nmissing: " + ", ".join(f"`{n}`" for n in comparison.missing) if comparison.missing else "")))

# %% [markdown]
# ## The base model: accuracy by operand size
#
# Greedy (what the held-out evaluation uses) and sampled at temperature 1 (the per-answer accuracy that p̂ and
# the majority vote are built from). Partial competence: good on small operands, weak on large ones.

# %%
base_table = None
if measure_base_model:
    greedy = S.accuracy_by_operand_size(base_model)
    sampled = S.accuracy_by_operand_size(base_model, samples=10, temperature=1.0)
    base_table = pd.concat([greedy, sampled], ignore_index=True)
    base_table.to_csv(out / "base_accuracy_by_operand_size.csv", index=False)
    fig = S.plot_accuracy_by_operand_size(base_table[base_table["operator"] == "all"]
                                          .assign(operator="all operators"))
    S.save_png(fig, out / "sandbox_base_accuracy.png")
    display(base_table.pivot_table(index=["operator", "decoding"], columns="digits", values="accuracy").round(3))

# %% [markdown]
# ## 1 · Question difficulty and p̂ by iteration
#
# Over every question the Challenger wrote in iteration k (voted by Solver_{k−1}). `oracle_accuracy_of_solver` is
# the voting Solver's per-answer accuracy on them, measured with the oracle (the questions get harder when it falls).

# %%
if not comparison.difficulty.empty:
    display(comparison.difficulty.set_index(["run", "iteration"]).round(3))
fig = S.plot_difficulty(comparison)
S.save_png(fig, out / "sandbox_difficulty.png")

# %%
fig = S.plot_challenger_p_hat(comparison)
S.save_png(fig, out / "sandbox_challenger_p_hat.png")

# %% [markdown]
# ## 2 · Pseudo-label accuracy of the kept questions (exact oracle)

# %%
if not comparison.labels.empty:
    display(comparison.labels[["run", "iteration", "kept_questions", "covered", "label_accuracy", "ci_low",
                               "ci_high", "majority_ratio"]].round(3))
fig = S.plot_label_accuracy(comparison)
S.save_png(fig, out / "sandbox_label_accuracy.png")

# %% [markdown]
# ## 3 · Solver accuracy on the held-out set (iteration 0 = base model)

# %%
if not comparison.heldout.empty:
    display(comparison.heldout.pivot_table(index=["run", "scope"], columns="iteration", values="accuracy").round(3))
fig = S.plot_heldout_accuracy(comparison)
S.save_png(fig, out / "sandbox_heldout_accuracy.png")

# %% [markdown]
# ## 4 · The Verifier: label accuracy with and without it
#
# From the Verifier run's report (`06_analysis`): per iteration, the accuracy of the labels the Verifier kept
# against the accuracy of all kept labels and of the same number of labels chosen by the Verifier's confidence
# (top-confidence subset), with the share of wrong labels removed and right labels lost.

# %%
verifier = None
verifier_csv = Path(runs_root) / verifier_run / "report" / "verifier.csv" if verifier_run else None
if verifier_csv is not None and verifier_csv.exists():
    verifier = pd.read_csv(verifier_csv)
    display(verifier.round(3))
    figure = verifier_csv.parent / "fig8_verifier.png"
    if figure.exists():
        (out / "sandbox_verifier.png").write_bytes(figure.read_bytes())
        display(Markdown(f"![verifier]({(out / 'sandbox_verifier.png').resolve()})"))
else:
    display(Markdown(f"no Verifier run found (`{verifier_csv}`)"))

# %% [markdown]
# ## Summary (written to `summary.json`)

# %%
summary = S.comparison_summary(comparison)
if base_table is not None:
    summary["base_accuracy_by_operand_size"] = base_table.to_dict(orient="records")
summary["report_summaries"] = {name: {k: s.get(k) for k in ("label_accuracy", "evaluation") if k in s}
                               for name, s in comparison.summaries.items()}
if verifier is not None:
    summary["verifier"] = verifier.to_dict(orient="records")
(out / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
display(Markdown(f"figures and `summary.json` in `{out}`"))
