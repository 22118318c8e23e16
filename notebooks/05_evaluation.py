# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 05 · Evaluation
#
# Scores the Solver of this iteration (the base model at iteration 0) on the configured benchmarks
# (docs/algorithm.md, step 5): greedy by default, the mean over k samples for AMC/AIME as in the paper. Answers are
# extracted from the last `\boxed{}` (or the option letter) and compared with math equivalence. A `limit`
# subsample is reported in every row. The cross-iteration table puts base and every finished iteration side by side.
#
# The same notebook evaluates the model of the optional supervised stage (`stage = "supervised_evaluation"`,
# docs/supervised.md) with the same benchmarks, decoding and seeds; its table adds a `supervised` row.

# %% tags=["parameters"]
run_dir = None  # None: the run named by $RZERO_RUN_DIR (make lab sets it); a relative path is looked up from the kernel folder upward
iteration = 0
stage = "evaluation"  # or "supervised_evaluation"
recompute = False

# %%
from IPython.display import Markdown, display

from rzero_lib.pipeline.context import StageContext
from rzero_lib.pipeline.stages.evaluation import evaluation_model, run_evaluation

ctx = StageContext.open(run_dir, iteration, stage)
display(Markdown(f"run `{ctx.run.path}` · `{ctx.key}` · model `{evaluation_model(ctx)}`"))
ctx.params.evaluation

# %%
result = run_evaluation(ctx, recompute=recompute)
scores = result.tables.get("scores")
display(scores if scores is not None else result.summary)

# %% [markdown]
# ## Base vs every iteration (and the supervised model) (accuracy, %)

# %%
table = result.tables.get("table")
if table is not None and not table.empty:
    display(table)
    display(Markdown(table.attrs.get("note", "")))

# %% [markdown]
# ## A few responses

# %%
samples = result.tables.get("samples")
if samples is not None and not samples.empty:
    display(samples[["benchmark", "id", "extracted", "gold", "correct", "response"]].head(10))
