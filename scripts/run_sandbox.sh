#!/usr/bin/env bash
# The arithmetic sandbox (`make sandbox`, issue 13): build the sandbox model (cached after the first time), run
# the main R-Zero run and its two controls for every seed, optional single-seed extras, then the comparison
# notebook (mean over seeds with the seeds' spread, and the issue's pre-registered criteria). Each built-in model
# the runs name (`model: builtin:...`) is built first, with all cores.
#
#   scripts/run_sandbox.sh                                   # 3 seeds of sandbox and its controls, into runs/
#   RUNS_ROOT=/tmp/r SEEDS="0 1" scripts/run_sandbox.sh
#   SANDBOX_RUNS="sandbox" scripts/run_sandbox.sh             # a subset of the seeded runs
#   SANDBOX_EXTRAS="sandbox_verifier sandbox_no_band" scripts/run_sandbox.sh   # + single-seed runs (first seed)
#   SANDBOX_JOBS=2 scripts/run_sandbox.sh                     # two runs at a time, one torch thread each
#   SANDBOX_SET="iterations=1 voting.num_samples=4" scripts/run_sandbox.sh   # --set overrides for every run
#   SANDBOX_DRY_RUN=1 scripts/run_sandbox.sh                  # print the commands only
#   SANDBOX_COMPARISON=sandbox_scaling scripts/run_sandbox.sh  # the comparison's folder under $RUNS_ROOT
#   SANDBOX_RUNS="sandbox sandbox_small" SANDBOX_SET="iterations=6" SANDBOX_COMPARISON=sandbox_scaling \
#     scripts/run_sandbox.sh                                  # the stretch (make sandbox-scaling): 6 iterations at
#                                                             # two model sizes; extends runs/sandbox's seeds
#
# A run's directory is $RUNS_ROOT/<name>/seed_<s> (`rzero run params/<name>.yaml --set seed=<s>`); its log is
# $RUNS_ROOT/logs/<name>_seed_<s>.log (appended to: a rerun keeps the earlier attempt's log) and its wall time a
# line of $RUNS_ROOT/logs/wall_times.tsv. Each run
# resumes where it stopped (the pipeline skips finished stages), so the script can be re-run. The comparison
# notebook is written to $RUNS_ROOT/sandbox_comparison/ with its figures, tables and summary.json.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${VENV:-.venv}
PY="$VENV/bin/python"
RUNS_ROOT=${RUNS_ROOT:-runs}
SEEDS=${SEEDS:-"0 1 2"}
SANDBOX_RUNS=${SANDBOX_RUNS:-"sandbox sandbox_untrained_challenger sandbox_oracle_labels"}
SANDBOX_EXTRAS=${SANDBOX_EXTRAS:-""}
SANDBOX_JOBS=${SANDBOX_JOBS:-1}
BENCHMARK=${BENCHMARK:-arith_sandbox}
DRY_RUN=${SANDBOX_DRY_RUN:-}
overrides=()
for kv in ${SANDBOX_SET:-}; do overrides+=(--set "$kv"); done
# With other jobs on the same cores, OpenMP's default busy-waiting makes torch many times slower
# (measured 25x on 2 shared cores); passive waiting costs nothing measurable on an idle machine.
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
export TOKENIZERS_PARALLELISM=false
log() { echo "[sandbox $(date +%H:%M:%S)] $*"; }
do_or_print() { if [[ -n "$DRY_RUN" ]]; then echo "$*"; else "$@"; fi; }

first_seed=${SEEDS%% *}
jobs=()
for seed in $SEEDS; do
  for name in $SANDBOX_RUNS; do jobs+=("$name $seed"); done
done
for name in $SANDBOX_EXTRAS; do jobs+=("$name $first_seed"); done

run_one() {  # name seed
  local name=$1 seed=$2 t0 rc=0
  local dir="$RUNS_ROOT/$name/seed_$seed" logfile="$RUNS_ROOT/logs/${name}_seed_$seed.log"
  if [[ -n "$DRY_RUN" ]]; then
    echo "$VENV/bin/rzero run params/$name.yaml --run-dir $dir --set seed=$seed ${overrides[*]} --no-progress"
    return 0
  fi
  log "run $name seed $seed -> $dir (log: $logfile)"
  t0=$(date +%s)
  "$VENV/bin/rzero" run "params/$name.yaml" --run-dir "$dir" --set "seed=$seed" "${overrides[@]}" --no-progress \
    >>"$logfile" 2>&1 \
    || rc=$?
  printf '%s\t%s\t%s\t%s\t%s\n' "$name" "$seed" "$(( $(date +%s) - t0 ))" "$rc" "$SANDBOX_JOBS" \
    >>"$RUNS_ROOT/logs/wall_times.tsv"
  if (( rc != 0 )); then
    log "run $name seed $seed FAILED (exit $rc); the end of $logfile:"
    tail -n 20 "$logfile"
    return "$rc"
  fi
  log "run $name seed $seed finished in $(( $(date +%s) - t0 )) s"
}

start=$(date +%s)
[[ -n "$DRY_RUN" ]] || mkdir -p "$RUNS_ROOT/logs"
# the built-in models the runs use, the Verifier's included (read with the project's own parameter loader,
# SANDBOX_SET applied), each pretrained here on first use (all cores), then cached
param_files=()
for job in "${jobs[@]}"; do param_files+=("params/${job%% *}.yaml"); done
models=$(SANDBOX_SET="${SANDBOX_SET:-}" "$PY" -c '
import os, sys
from rzero_lib.config import load_params
from rzero_lib.model_specs import builtin_name
sets = os.environ["SANDBOX_SET"].split()
runs = [load_params(f, sets) for f in sys.argv[1:]]
specs = [r.model for r in runs] + [r.verifier.model for r in runs if r.verifier.enabled and r.verifier.kind == "model"]
print(*sorted({n for spec in specs if (n := builtin_name(spec))}))' "${param_files[@]}")
for model in $models; do
  log "model builtin:$model (pretrained on first use, then cached)"
  do_or_print "$PY" -c "from rzero_lib.engine.models import builtin_path; print(builtin_path('$model'))"
done
if (( SANDBOX_JOBS > 1 )); then
  # several runs side by side: one thread each, so that they do not fight over the cores (the build above
  # used them all)
  export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
fi

failed=0
running=0
for job in "${jobs[@]}"; do
  if (( running >= SANDBOX_JOBS )); then
    wait -n || failed=1
    running=$(( running - 1 ))
  fi
  # shellcheck disable=SC2086  # "name seed"
  run_one $job &
  running=$(( running + 1 ))
done
while (( running > 0 )); do
  wait -n || failed=1
  running=$(( running - 1 ))
done
if (( failed )); then
  log "some runs failed (see above); the comparison below uses what finished"
fi

out="$RUNS_ROOT/${SANDBOX_COMPARISON:-sandbox_comparison}"
names=$(echo $SANDBOX_RUNS $SANDBOX_EXTRAS | tr ' ' ',')
verifier=""
[[ " $SANDBOX_EXTRAS " == *" sandbox_verifier "* ]] && verifier=sandbox_verifier
config="{run_names: [$names], seeds: [$(echo $SEEDS | tr ' ' ',')], benchmark: $BENCHMARK, verifier_run: '$verifier'}"
[[ -n "$DRY_RUN" ]] || mkdir -p "$out"
log "comparison notebook -> $out/notebook.ipynb ($config)"
if [[ -n "$DRY_RUN" ]]; then
  echo "papermill notebooks/07_sandbox_comparison.py -> $out/notebook.ipynb -y $config"
  exit 0
fi
# the notebook is its py:percent file: jupytext makes the .ipynb that papermill reads from stdin
"$PY" -m jupytext --to ipynb --output - notebooks/07_sandbox_comparison.py \
  | "$PY" -m papermill - "$out/notebook.ipynb" -k python3 --cwd "$out" \
      -p runs_root "$(cd "$RUNS_ROOT" && pwd)" -p output_dir "$(cd "$out" && pwd)" -y "$config" --no-progress-bar
log "done in $(( $(date +%s) - start )) s; figures and summary.json in $out"
exit "$failed"
