#!/usr/bin/env bash
# The supervised sandbox measurement (`make sandbox-supervised`, issue 18; docs/supervised.md): R-Zero only vs
# labels only vs R-Zero then labels on the arithmetic sandbox, three seeds, through `rzero compare`.
#
#   scripts/run_supervised_sandbox.sh                    # seeds 0 1 2, into runs/
#   RUNS_ROOT=/tmp/r SEEDS="0" scripts/run_supervised_sandbox.sh
#
# Per seed: the main run (R-Zero's 3 iterations, then GRPO on builtin:arith-sandbox-labelled from the last Solver)
# and the labels-only control (the same stage from the base model). Every run resumes where it stopped, so the
# script can be re-run. The comparison (figure, tables, summary.json with the pre-registered difference) is
# written to $RUNS_ROOT/supervised_sandbox-comparison/.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${VENV:-.venv}
RUNS_ROOT=${RUNS_ROOT:-runs}
SEEDS=${SEEDS:-"0 1 2"}
PARAMS=${PARAMS:-params/supervised_sandbox.yaml}
# Passive OpenMP waiting: on shared cores busy-waiting makes torch many times slower (scripts/run_sandbox.sh).
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
export TOKENIZERS_PARALLELISM=false

start=$(date +%s)
echo "[sandbox-supervised $(date +%H:%M:%S)] sandbox model (pretrained on first use, then cached)"
"$VENV/bin/python" -c "from rzero_lib.engine.models import builtin_path; print(builtin_path('arith-sandbox'))"
# shellcheck disable=SC2086  # SEEDS is a list
"$VENV/bin/rzero" compare "$PARAMS" --seeds $SEEDS --runs-root "$RUNS_ROOT" --no-progress
echo "[sandbox-supervised $(date +%H:%M:%S)] done in $(( $(date +%s) - start )) s"
