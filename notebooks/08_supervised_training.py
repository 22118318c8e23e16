# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 08 · Supervised training (optional, after the last iteration)
#
# R-Zero as mid-training (docs/supervised.md): the last Solver — or the base model, for the labelled-only
# control (`supervised_training.start_from: base`) — is trained on a labelled dataset. `method: grpo` is the
# Solver's GRPO and reward with the gold answer as the label (what the paper most likely did); `method: sft` is
# TRL's SFTTrainer on the worked solutions. Before any model loads, every row of the dataset is read and kept or
# dropped with a reason: no question, an answer the reward cannot score (counted as *unparsable answers*), no
# solution for SFT, a question that is also an evaluation question, or outside the `max_questions` sample.
# `labelled.parquet` holds every row. Notebook 05 then evaluates the trained model like every iteration
# (stage `supervised_evaluation`).

# %% tags=["parameters"]
run_dir = None  # None: the run named by $RZERO_RUN_DIR (make lab sets it); a relative path is looked up from the kernel folder upward
iteration = None
recompute = False

# %%
from IPython.display import Markdown, display

from rzero_lib.pipeline.context import StageContext
from rzero_lib.pipeline.stages.supervised_training import run_supervised_training

ctx = StageContext.open(run_dir, None, "supervised_training")
p = ctx.params.supervised_training
display(Markdown(f"run `{ctx.run.path}` · method **{p.method}** · start from **{p.start_from}** · "
                 f"dataset `{p.dataset.source}` (split {p.dataset.split})"))
p

# %%
result = run_supervised_training(ctx, recompute=recompute)
result.summary

# %% [markdown]
# ## The labelled rows: kept, and why the others were dropped

# %%
labelled = result.tables["labelled"]
display(labelled["drop_reason"].fillna("(trained on)").value_counts().to_frame("rows"))
display(labelled.head(10))

# %%
from rzero_lib.report.stage_plots import plot_log_history

columns = (["reward", "frac_reward_zero_std", "kl", "solver/boxed_rate", "completions/mean_length"]
           if p.method == "grpo" else ["loss", "mean_token_accuracy", "grad_norm"])
plot_log_history(result.tables["log_history"], columns, title=f"Supervised training ({p.method})")
