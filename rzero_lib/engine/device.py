"""Devices and dtypes: the one CUDA probe, the one dtype table, and releasing accelerator memory."""

from __future__ import annotations

import gc

# Accepted dtype names and their canonical form (the names torch and vLLM use).
DTYPES = {"float32": "float32", "fp32": "float32", "bfloat16": "bfloat16", "bf16": "bfloat16",
          "float16": "float16", "fp16": "float16"}


def cuda_available() -> bool:
    """A CUDA device is visible (False when torch is missing)."""
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


def cuda_device_count() -> int:
    try:
        import torch
    except ImportError:
        return 0
    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def resolve_device(device: str = "auto") -> str:
    """"auto" is "cuda" when a CUDA device is visible, else "cpu"; anything else is kept."""
    if device != "auto":
        return device
    return "cuda" if cuda_available() else "cpu"


def dtype_name(dtype: str | None = "auto", device: str = "cpu") -> str:
    """Canonical dtype name; "auto" is bfloat16 on CUDA and float32 elsewhere.

    fp32 on CPU: bf16 is several times slower without AVX-512.
    """
    if dtype in ("auto", None):
        return "bfloat16" if device.startswith("cuda") else "float32"
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of auto, {', '.join(DTYPES)}; got {dtype!r}")
    return DTYPES[dtype]


def torch_dtype(dtype: str | None = "auto", device: str = "cpu"):
    import torch

    return getattr(torch, dtype_name(dtype, device))


def release_accelerator_memory() -> None:
    """Collect garbage and return cached CUDA memory (a no-op on CPU)."""
    gc.collect()
    if cuda_available():
        import torch

        torch.cuda.empty_cache()
