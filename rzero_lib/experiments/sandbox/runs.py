"""The sandbox's runs: the main run, its controls (each differs in one switch), single-seed extras, the
smaller-model run of the iteration-scaling stretch, and where each seed's run directory lives.

Their parameter files are `params/<name>.yaml`; `scripts/run_sandbox.sh` makes the run directories
`<runs root>/<name>/seed_<s>` (`rzero run params/<name>.yaml --set seed=<s>`).
"""

from __future__ import annotations

from pathlib import Path

MAIN_RUN = "sandbox"
UNTRAINED_CHALLENGER_RUN = "sandbox_untrained_challenger"  # challenger_training.enabled: false
ORACLE_LABELS_RUN = "sandbox_oracle_labels"  # solver_training.label_source: oracle
CONTROL_RUNS = {
    UNTRAINED_CHALLENGER_RUN: "untrained Challenger",
    ORACLE_LABELS_RUN: "oracle labels (upper bound)",
}
# Issue 8: the main run with a Verifier (threshold policy): `builtin:arith-sandbox-verifier`, pretrained to verify.
VERIFIER_RUN = "sandbox_verifier"
# Optional runs made for one seed only (SANDBOX_EXTRAS in scripts/run_sandbox.sh).
EXTRA_RUNS = {
    "sandbox_no_penalty": "no repetition penalty",
    "sandbox_no_band": "no band filter",
    VERIFIER_RUN: "with Verifier (external model, threshold)",
}
# The stretch of issue 13 (paper: iteration scaling): the main run on a smaller model (`model:` its one switch),
# both for SCALING_ITERATIONS iterations; SIZE_RUNS from the smaller model to the larger.
SMALL_MODEL_RUN = "sandbox_small"
SIZE_RUNS = {SMALL_MODEL_RUN: "~0.55M params", MAIN_RUN: "~1M params"}
SCALING_ITERATIONS = 6
RUN_LABELS = {MAIN_RUN: "R-Zero (majority labels)", **CONTROL_RUNS, **EXTRA_RUNS,
              SMALL_MODEL_RUN: "R-Zero, smaller model"}
SEEDS = (0, 1, 2)
CRITERIA_ITERATION = 3  # the criteria 1-4 compare iteration 1 with this one (or the last, if earlier)
HELDOUT_BENCHMARK = "arith_sandbox"  # for reporting
DEV_BENCHMARK = "arith_sandbox_dev"  # for tuning


def seed_run_dir(runs_root: str | Path, name: str, seed: int) -> Path:
    """The run directory of run `name` with seed `seed`."""
    return Path(runs_root) / name / f"seed_{int(seed)}"
