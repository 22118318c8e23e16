# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 03 · Voting
#
# The Solver of the previous iteration samples m answers per question (docs/algorithm.md, step 3). Answers are grouped by
# math equivalence (not string equality); the largest group is the pseudo-label ỹ and p̂ = |group| / m.
# Questions with |p̂ − ½| ≤ δ (the authors' code: 0.3 ≤ p̂ ≤ 0.8) are kept for Solver training; the authors'
# vote rules and extra drops (proof / "box" questions, "text" and empty majorities) follow the preset
# (README, "Paper and code"). Every question stays in `votes.parquet` with its drop reason.

# %% tags=["parameters"]
run_dir = None  # None: the run named by $RZERO_RUN_DIR (make lab sets it); a relative path is looked up from the kernel folder upward
iteration = 1
recompute = False

# %%
from IPython.display import Markdown, display

from rzero_lib.pipeline.context import StageContext
from rzero_lib.pipeline.stages.voting import run_voting

ctx = StageContext.open(run_dir, iteration, "voting")
display(Markdown(f"run `{ctx.run.path}` · iteration **{iteration}** · Solver `{ctx.run.solver_model(iteration - 1)}`"))
ctx.params.voting

# %%
result = run_voting(ctx, recompute=recompute)
s = result.summary
display(Markdown(f"**{s['questions']}** questions × m = {s['m']}: boxed-answer rate **{s['boxed_rate']:.0%}**, "
                 f"mean p̂ {s['mean_p_hat']:.2f}; **{s['kept']}** kept ({s['kept_fraction']:.0%})."))
if s["boxed_rate"] < 0.3:
    display(Markdown("⚠️ **Low boxed-answer rate**: the Solver rarely writes `\\boxed{}`; "
                     "try `prompts.solver.num_demonstrations: 2` or more `voting.max_new_tokens`."))
votes = result.tables["votes"]
votes["drop_reason"].fillna("kept").value_counts().rename("questions").to_frame()

# %% [markdown]
# ## p̂ histogram with the kept band

# %%
from rzero_lib.report.stage_plots import plot_p_hat_histogram

plot_p_hat_histogram(votes["p_hat"], m=s["m"], delta=ctx.params.voting.band_delta,
                     bounds=ctx.params.voting.band_bounds, kept=votes["kept"],
                     title=f"Solver agreement, iteration {iteration}")

# %% [markdown]
# ## A sample of questions with their votes

# %%
sample = votes[["question", "group_answers", "group_counts", "majority_answer", "p_hat", "challenger_answer",
                "drop_reason"]]
display(sample.head(12))
