#!/usr/bin/env bash
# The arithmetic sandbox (`make sandbox`, issue 7): build the sandbox model (cached after the first time),
# run the main R-Zero run, its four controls and the Verifier run (issue 8), then the comparison notebook.
#
#   scripts/run_sandbox.sh                 # everything, into runs/
#   RUNS_ROOT=/tmp/r scripts/run_sandbox.sh
#   SANDBOX_RUNS="sandbox sandbox_oracle_labels" scripts/run_sandbox.sh   # a subset
#
# Each run resumes where it stopped (the pipeline skips finished stages), so the script can be re-run.
# The comparison notebook is written to $RUNS_ROOT/sandbox_comparison/ with its figures and summary.json.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${VENV:-.venv}
PY="$VENV/bin/python"
RUNS_ROOT=${RUNS_ROOT:-runs}
SANDBOX_RUNS=${SANDBOX_RUNS:-"sandbox sandbox_oracle_labels sandbox_untrained_challenger sandbox_no_penalty sandbox_no_band sandbox_verifier"}
# With other jobs on the same cores, OpenMP's default busy-waiting makes torch many times slower
# (measured 25x on 2 shared cores); passive waiting costs nothing measurable on an idle machine.
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
export TOKENIZERS_PARALLELISM=false

log() { echo "[sandbox $(date +%H:%M:%S)] $*"; }

start=$(date +%s)
log "sandbox model (pretrained on first use, then cached)"
"$PY" -c "from rzero_lib.engine.models import builtin_path; print(builtin_path('arith-sandbox'))"

for name in $SANDBOX_RUNS; do
  log "run $name"
  t0=$(date +%s)
  "$VENV/bin/rzero" run "params/$name.yaml" --run-dir "$RUNS_ROOT/$name" --no-progress
  log "run $name finished in $(( $(date +%s) - t0 )) s"
done

out="$RUNS_ROOT/sandbox_comparison"
mkdir -p "$out"
log "comparison notebook -> $out/notebook.ipynb"
# the notebook is its py:percent file: jupytext makes the .ipynb that papermill reads from stdin
"$PY" -m jupytext --to ipynb --output - notebooks/07_sandbox_comparison.py \
  | "$PY" -m papermill - "$out/notebook.ipynb" -k python3 --cwd "$out" \
      -p runs_root "$(cd "$RUNS_ROOT" && pwd)" -p output_dir "$(cd "$out" && pwd)" --no-progress-bar
log "done in $(( $(date +%s) - start )) s; figures and summary.json in $out"
