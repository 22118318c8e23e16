# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 04 · Solver training
#
# GRPO for the **Solver** on the kept questions with their majority-vote pseudo-labels (docs/algorithm.md, step 4):
# reward 1 when the boxed answer is equivalent to ỹ (optional 0.1 format term, authors' code).
# Solver_k starts from Solver_{k-1}. `frac_reward_zero_std` is the share of groups whose completions all got
# the same reward: questions too easy or too hard to teach anything.

# %% tags=["parameters"]
run_dir = None  # None: the run named by $RZERO_RUN_DIR (make lab sets it); a relative path is looked up from the kernel folder upward
iteration = 1
recompute = False

# %%
from IPython.display import Markdown, display

from rzero_lib.pipeline.context import StageContext
from rzero_lib.pipeline.stages.solver_training import run_solver_training, solver_training_set

ctx = StageContext.open(run_dir, iteration, "solver_training")
train, source = solver_training_set(ctx)
display(Markdown(f"run `{ctx.run.path}` · iteration **{iteration}** · start `{ctx.run.solver_model(iteration - 1)}` · "
                 f"**{len(train)}** training questions from `{source}`"))
ctx.params.solver_training

# %%
result = run_solver_training(ctx, recompute=recompute)
result.summary

# %%
from rzero_lib.report.stage_plots import plot_log_history

plot_log_history(result.tables["log_history"], ["reward", "frac_reward_zero_std", "kl", "solver/boxed_rate",
                                                 "completions/mean_length"],
                 title=f"Solver training, iteration {iteration}")
