# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 03b · Verification (optional)
#
# A third role that protects pseudo-label quality (the paper's closing proposal). For every question that passed
# the band filter, the verifier — the current Solver itself (`verifier.kind: self`) or another model — sees the
# question and one of the Solver's own responses that ends in the majority answer, and answers `\boxed{yes}` or
# `\boxed{no}`, k times. The yes-fraction is the confidence; the policy drops labels under a threshold or weights
# the Solver's reward by it. Runs between voting and Solver training when `verifier.enabled` is true.

# %% tags=["parameters"]
run_dir = None  # None: the run named by $RZERO_RUN_DIR (make lab sets it); a relative path is looked up from the kernel folder upward
iteration = 1
recompute = False

# %%
from IPython.display import Markdown, display

from rzero_lib.pipeline.context import StageContext
from rzero_lib.pipeline.stages.verification import run_verification, verifier_model

ctx = StageContext.open(run_dir, iteration, "verification")
display(Markdown(f"run `{ctx.run.path}` · iteration **{iteration}** · verifier `{verifier_model(ctx)}`"))
ctx.params.verifier

# %%
result = run_verification(ctx, recompute=recompute)
s = result.summary
display(Markdown(f"**{s['kept']} of {s['questions']}** labels kept (policy `{s['policy']}`, threshold "
                 f"{s['threshold']}); mean confidence {s['mean_confidence']:.2f}; verdict parse rate "
                 f"{s['verdict_parse_rate']:.0%}."))

# %%
import matplotlib.pyplot as plt

verdicts = result.tables["verdicts"]
fig, ax = plt.subplots(figsize=(6, 3))
ax.scatter(verdicts["p_hat"], verdicts["confidence"], alpha=0.6)
ax.set_xlabel("p̂ (vote agreement)")
ax.set_ylabel("verifier confidence")
ax.set_title(f"Verifier confidence vs vote agreement, iteration {iteration}")
plt.close(fig)  # shown once, as the cell's value (an open figure would be shown a second time)
fig

# %%
display(verdicts[["question", "majority_answer", "p_hat", "confidence", "kept", "drop_reason"]].head(15))
