# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 01 · Challenger training
#
# GRPO for the **Challenger** against the **frozen Solver** of the previous iteration (docs/algorithm.md, step 1).
# For every sampled question the Solver draws m answers; their majority-vote agreement p̂ gives the
# uncertainty reward (largest at p̂ = ½), minus a repetition penalty over the whole batch (BLEU-distance
# clusters). Unparseable outputs are format failures. Challenger_k starts from Challenger_{k-1}.
#
# Run by `rzero run`, or open it by hand against an existing run directory: a finished stage is
# loaded from disk unless `recompute = True`.

# %% tags=["parameters"]
run_dir = None  # None: the run named by $RZERO_RUN_DIR (make lab sets it); a relative path is looked up from the kernel folder upward
iteration = 1
recompute = False

# %%
from IPython.display import Markdown, display

from rzero_lib.pipeline.context import StageContext
from rzero_lib.pipeline.stages.challenger_training import run_challenger_training

ctx = StageContext.open(run_dir, iteration, "challenger_training")
display(Markdown(f"run `{ctx.run.path}` · iteration **{iteration}** · "
                 f"start `{ctx.run.challenger_model(iteration - 1)}` · frozen Solver `{ctx.run.solver_model(iteration - 1)}`"))
ctx.params.challenger_training

# %%
result = run_challenger_training(ctx, recompute=recompute)
result.summary

# %% [markdown]
# ## Reward and its components per step

# %%
from rzero_lib.report.stage_plots import plot_log_history

history = result.tables.get("log_history")
if history is not None and not history.empty:
    display(plot_log_history(history, ["reward", "challenger/uncertainty", "challenger/penalty",
                                       "challenger/format_failure_rate", "challenger/p_hat", "kl"],
                             title=f"Challenger training, iteration {iteration}"))
else:
    print("no training log (untrained-Challenger baseline)")

# %% [markdown]
# ## Questions the Challenger wrote during training, with the Solver's agreement

# %%
questions = result.tables.get("questions")
if questions is not None:
    display(questions[["step", "question", "p_hat", "solver_majority", "uncertainty", "penalty", "reward"]]
            .dropna(subset=["question"]).tail(12))
