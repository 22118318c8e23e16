#!/usr/bin/env bash
# GPU smoke test: the CPU rehearsal's parameters (params/rehearsal.yaml) on a GPU with the GPU
# engines, then the GPU- and vLLM-marked tests. It prints the same per-stage table as
# `make rehearsal` (the engine from each manifest, wall and CPU seconds, peak memory of the stage's
# process tree) and the GPU's peak memory, so the first GPU run only has to compare the two
# (README, "What the CPU rehearsal proves").
#
# What differs from the CPU rehearsal, on purpose (what the GPU recipes run):
#   - vLLM on CUDA for the generation stages and the Solver server (bf16, the file's memory shares);
#   - TRL's colocated rollouts with TRL's own weight sync (manifest: weight_sync trl, not vllm_reload);
#   - Solver training under accelerate with the paper recipe's zero2 config on min(2, GPUs) processes
#     (one GPU: one process; two DeepSpeed ranks cannot share a GPU).
#
# Usage:  bash scripts/gpu_smoke.sh [extra --set key=value ...]
# Environment:
#   PYTHON            interpreter with rzero and the gpu extra (default: python)
#   RUN_DIR           run folder (default: runs/gpu-smoke-<timestamp>)
#   SMOKE_TIMEOUT_S   limit for the pipeline run (default 1800)
#   SMOKE_TESTS       0: skip the pytest part
set -uo pipefail

cd "$(dirname "$0")/.."
PY="${PYTHON:-python}"
RUN_DIR="${RUN_DIR:-runs/gpu-smoke-$(date +%Y%m%d-%H%M%S)}"
TIMEOUT_S="${SMOKE_TIMEOUT_S:-1800}"
mkdir -p "$RUN_DIR"
MEMLOG="$RUN_DIR/gpu_memory.csv"
LOG="$RUN_DIR/gpu_smoke.log"

die() { echo "gpu_smoke: $*" >&2; exit 2; }

command -v nvidia-smi >/dev/null 2>&1 || die "nvidia-smi not found: this script needs an NVIDIA GPU"
"$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" \
    || die "torch sees no CUDA device (a CPU-only torch build? reinstall torch for CUDA)"
"$PY" -c "import vllm" 2>/dev/null || die "vLLM is not importable: pip install -e '.[gpu]'"

echo "== GPU"
nvidia-smi --query-gpu=index,name,memory.total,driver_version --format=csv,noheader
"$PY" - <<'EOF'
import torch, vllm, transformers, trl
print(f"torch {torch.__version__} (CUDA {torch.version.cuda}), vllm {vllm.__version__}, "
      f"transformers {transformers.__version__}, trl {trl.__version__}")
EOF

# Peak memory: poll nvidia-smi in the background (our own child, stopped by PID).
echo "timestamp,index,memory_used_mib" > "$MEMLOG"
(
    while true; do
        nvidia-smi --query-gpu=timestamp,index,memory.used --format=csv,noheader,nounits >> "$MEMLOG" 2>/dev/null
        sleep 1
    done
) &
POLLER=$!
cleanup() { kill "$POLLER" 2>/dev/null; wait "$POLLER" 2>/dev/null; }
trap cleanup EXIT

if command -v rzero >/dev/null 2>&1; then
    RZERO=(rzero)
else
    RZERO=("$PY" -c "import sys; from rzero_lib.pipeline.cli import main; sys.exit(main())")
fi

GPUS=$(nvidia-smi -L | wc -l)
SETS=(
    --set solver_training.accelerate_config=zero2
    --set solver_training.num_processes=$(( GPUS < 2 ? GPUS : 2 ))
)

echo "== pipeline: params/rehearsal.yaml -> $RUN_DIR (limit ${TIMEOUT_S}s)"
START=$(date +%s)
timeout "$TIMEOUT_S" "${RZERO[@]}" run params/rehearsal.yaml --run-dir "$RUN_DIR" --no-progress "${SETS[@]}" "$@" \
    2>&1 | tee "$LOG"
RUN_RC=${PIPESTATUS[0]}
RUN_S=$(( $(date +%s) - START ))

echo "== per stage (compare with \`make rehearsal\`'s table)"
"${RZERO[@]}" status "$RUN_DIR" --engines 2>&1 | tee -a "$LOG"

cleanup
trap - EXIT
PEAK=$(awk -F', *' 'NR > 1 && $3 ~ /^[0-9]+$/ { if ($3 > max) max = $3 } END { print max + 0 }' "$MEMLOG")
echo "== pipeline exit code $RUN_RC after ${RUN_S}s; peak GPU memory ${PEAK} MiB (samples: $MEMLOG)"

TEST_RC=0
if [[ "${SMOKE_TESTS:-1}" == "1" ]]; then
    echo "== pytest -m 'gpu or vllm'"
    START=$(date +%s)
    "$PY" -m pytest -q -m "gpu or vllm" 2>&1 | tee -a "$LOG"
    TEST_RC=${PIPESTATUS[0]}
    echo "== tests exit code $TEST_RC after $(( $(date +%s) - START ))s"
fi

if [[ $RUN_RC -eq 124 ]]; then
    echo "gpu_smoke: the pipeline did not finish within ${TIMEOUT_S}s" >&2
fi
[[ $RUN_RC -eq 0 && $TEST_RC -eq 0 ]]
