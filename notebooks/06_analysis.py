# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 06 · Analysis: the label-accuracy decline and the co-evolution figures
#
# R-Zero trains the Solver on majority-vote pseudo-labels. As the Challenger's
# questions get harder, how fast do those labels go wrong? (Paper, Qwen3-4B,
# 200 questions per iteration checked by GPT-4o: 79% → 69% → 63%, while the
# base model's accuracy on the questions falls.)
#
# The analysis answers it for this run and draws the other
# co-evolution figures: label accuracy by agreement, the difficulty table,
# p̂ histograms, training curves, benchmark scores and question diversity.
# All the work happens in `rzero_lib.report.analysis.run_analysis`; figures (PNG + PDF),
# tables and `summary.json` go to `<run_dir>/report/`. Oracle answers and
# difficulty generations are cached there, so re-running never asks twice.
# In JupyterLab an interactive explorer over every voted question is at the end.

# %%
from IPython.display import display

from rzero_lib.pipeline.context import StageContext
from rzero_lib.report.analysis import run_analysis, show_label_sample, show_report

# %% tags=["parameters"]
run_dir = None  # None: the run named by $RZERO_RUN_DIR (make lab sets it); a relative path is looked up from the kernel folder upward
iteration = None  # unused: the analysis covers every iteration (the pipeline passes it to every stage)
recompute = False

# %%
ctx = StageContext.open(run_dir, None, "analysis")
result = run_analysis(ctx, recompute=recompute)
print(f"report folder: {ctx.folder.relative_to(ctx.run.path.parent)} ({'loaded' if result.loaded else 'computed'})")

# %% [markdown]
# ## Headline numbers, figures and tables

# %%
show_report(ctx.folder, result)

# %% [markdown]
# ## The label sample
#
# The questions whose majority label was checked against the oracle, with the m answers
# (the first 40; every row is in `label_sample.parquet`).

# %%
show_label_sample(result)

# %% [markdown] tags=["interactive"]
# ## Interactive explorer
#
# Pick an iteration; filter by p̂, kept/dropped, drop reason and whether the
# majority label agrees with the oracle; see the question, the m answers grouped
# by equivalence, the majority, the oracle's and the Challenger's answers.
# (Widgets need a live kernel: open this notebook in JupyterLab against the run directory;
# `report.html` leaves this section out.)

# %% tags=["interactive"]
try:
    from rzero_lib.report.explorer import explore

    display(explore(ctx.run.path))
except Exception as error:  # the report must not fail because widgets cannot render
    print(f"explorer unavailable here: {error}")
