"""The sandbox's runs: the main run, its controls (each differs in one switch) and the Verifier run.

Their parameter files are `params/<name>.yaml`; `scripts/run_sandbox.sh` makes them.
"""

MAIN_RUN = "sandbox"
CONTROL_RUNS = {
    "sandbox_oracle_labels": "oracle labels (upper bound)",
    "sandbox_untrained_challenger": "untrained Challenger",
    "sandbox_no_penalty": "no repetition penalty",
    "sandbox_no_band": "no band filter",
}
# Issue 8: the main run with the self-verifying Verifier (threshold policy), pretrained to verify like it solves.
VERIFIER_RUN = "sandbox_verifier"
RUN_LABELS = {MAIN_RUN: "R-Zero (majority labels)", **CONTROL_RUNS, VERIFIER_RUN: "with Verifier (self, threshold)"}
HELDOUT_BENCHMARK = "arith_sandbox"
