# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 10 · R-Zero as mid-training: the three arms
#
# The paper's supervised comparison (its Table 4 / Figure 4; docs/supervised.md): **R-Zero only** (the last
# iteration), **labels only** (the base model trained on the labelled data) and **R-Zero, then labels** (the last
# Solver trained on the same data with the same budget), with the base model for reference. `rzero compare
# PARAMS.yaml --seeds ...` runs or resumes the arms' runs and executes this notebook into its output folder;
# `arms.json` there says where each arm's evaluation is.
#
# Per benchmark and averaged: accuracy (mean over seeds), a 95% bootstrap interval over items (paired across
# arms), the spread over seeds, and — for Qwen3-4B — the paper's Table 4 beside ours, with its caveat.

# %% tags=["parameters"]
output_dir = "runs/supervised_sandbox-comparison"

# %%
from IPython.display import Image, Markdown, display

from rzero_lib.report.supervised_comparison import markdown_tables, write_supervised_comparison

result = write_supervised_comparison(output_dir)
if result.missing:
    display(Markdown("**Not finished yet:** " + ", ".join(f"{a['arm']} (seed {a['seed']}: `{a['run_dir']}`)"
                                                         for a in result.missing)))
display(Markdown(markdown_tables(result.table, result.differences)))

# %%
if result.figure:
    display(Image(filename=f"{output_dir}/{result.figure['png']}"))
