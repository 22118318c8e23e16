#!/usr/bin/env bash
# GPU smoke test (one GPU, < 10 minutes): the smoke parameters end to end with
# vLLM generation (offline engine + the vLLM Solver server during Challenger
# training) and TRL GRPO (optionally with TRL's own colocated vLLM), then the
# GPU- and vLLM-marked tests. Prints the GPU model, seconds per stage, and the
# peak GPU memory (nvidia-smi polled every second into the run folder).
#
# Usage:  bash scripts/gpu_smoke.sh [extra --set key=value ...]
# Environment:
#   PYTHON            interpreter with rzero and the gpu extra (default: python)
#   RUN_DIR           run folder (default: runs/gpu-smoke-<timestamp>)
#   SMOKE_TIMEOUT_S   limit for the pipeline run (default 540)
#   SMOKE_TRL_VLLM    1 (default): TRL rollouts through vLLM (colocate) for the Solver phase
#   SMOKE_ACCELERATE  1: run the Solver phase under `accelerate launch` (1 process, zero2)
#   SMOKE_TESTS       0: skip the pytest part
set -uo pipefail

cd "$(dirname "$0")/.."
PY="${PYTHON:-python}"
RUN_DIR="${RUN_DIR:-runs/gpu-smoke-$(date +%Y%m%d-%H%M%S)}"
TIMEOUT_S="${SMOKE_TIMEOUT_S:-540}"
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

SETS=(
    --set engine.backend=vllm
    --set engine.gpu_memory_utilization=0.25
    --set engine.enforce_eager=true
    --set engine.max_model_len=2048
    --set challenger_training.solver_service=vllm_server
)
if [[ "${SMOKE_TRL_VLLM:-1}" == "1" ]]; then
    SETS+=(--set solver_training.use_vllm=true --set solver_training.vllm_mode=colocate
           --set solver_training.vllm_gpu_memory_utilization=0.2)
fi
if [[ "${SMOKE_ACCELERATE:-0}" == "1" ]]; then
    SETS+=(--set solver_training.launcher=accelerate --set solver_training.accelerate_config=zero2
           --set solver_training.num_processes=1)
fi

echo "== pipeline: params/smoke.yaml -> $RUN_DIR (limit ${TIMEOUT_S}s)"
START=$(date +%s)
timeout "$TIMEOUT_S" "${RZERO[@]}" run params/smoke.yaml --run-dir "$RUN_DIR" "${SETS[@]}" "$@" 2>&1 | tee "$LOG"
RUN_RC=${PIPESTATUS[0]}
RUN_S=$(( $(date +%s) - START ))

echo "== seconds per stage"
"$PY" - "$RUN_DIR" <<'EOF'
import json, sys
from pathlib import Path
run = Path(sys.argv[1])
rows = []
for m in sorted(run.rglob("manifest.json")):
    try:
        d = json.loads(m.read_text())
    except (OSError, ValueError):
        continue
    rows.append((str(m.parent.relative_to(run)), d.get("seconds")))
for name, s in rows:
    print(f"  {name:45s} {s if s is not None else '?':>8} s")
if not rows:
    print("  (no finished stage)")
EOF

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
