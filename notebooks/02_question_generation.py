# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 02 · Question generation
#
# The Challenger of this iteration samples N candidate questions (docs/algorithm.md, step 2). Each output is parsed for its
# last `<question>…</question>` and the Challenger's own `\boxed{}` answer (recorded, never used as a label).
# Exact duplicates are counted and, as in the paper and the authors' code, kept unless `drop_duplicates` is on.
# Every output stays in `questions.parquet`, with the reason it was dropped.

# %% tags=["parameters"]
run_dir = None  # None: the run named by $RZERO_RUN_DIR (make lab sets it); a relative path is looked up from the kernel folder upward
iteration = 1
recompute = False

# %%
from IPython.display import Markdown, display

from rzero_lib.pipeline.context import StageContext
from rzero_lib.pipeline.stages.question_generation import run_question_generation

ctx = StageContext.open(run_dir, iteration, "question_generation")
display(Markdown(f"run `{ctx.run.path}` · iteration **{iteration}** · Challenger `{ctx.run.challenger_model(iteration)}`"))
ctx.params.question_generation

# %%
result = run_question_generation(ctx, recompute=recompute)
s = result.summary
display(Markdown(f"**{s['parsed']} of {s['generated']}** outputs parse (parse rate **{s['parse_rate']:.0%}**); "
                 f"the Challenger boxed its own answer in {s['challenger_boxed_rate']:.0%}; "
                 f"{s['duplicates']} exact duplicates ({s['duplicate_rate']:.0%} of parsed; "
                 f"{s['duplicates_dropped']} dropped); **{s['kept']} questions** go to voting."))
if s["parse_rate"] < 0.2:
    display(Markdown("⚠️ **Low parse rate**: this model barely follows the `<question>` format. "
                     "Try `prompts.challenger.num_demonstrations: 3` or more `max_new_tokens`."))

# %%
questions = result.tables["questions"]
questions["drop_reason"].fillna("kept").value_counts().rename("outputs").to_frame()

# %% [markdown]
# ## A sample of the questions

# %%
display(questions[questions["kept"]][["question_id", "question", "challenger_answer"]].head(15))

# %% [markdown]
# ## A sample of what did not parse

# %%
display(questions[~questions["kept"]][["question_id", "parse_failure", "output"]].head(5))
