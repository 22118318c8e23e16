"""Shared fixtures: the real tiny model (built once, cached) and a quiet environment."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

REPO_ROOT = Path(__file__).resolve().parent.parent
TINY = "builtin:tiny-random"


def pytest_collection_modifyitems(config, items):
    """GPU tests are skipped, with the reason, where there is no CUDA device."""
    try:
        import torch

        has_cuda = torch.cuda.is_available()
    except ImportError:
        has_cuda = False
    if has_cuda:
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU (none on this machine)")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def tiny_model_path() -> str:
    from rzero_lib.models import resolve_model_path

    return resolve_model_path(TINY)


@pytest.fixture(scope="session")
def tiny_generator(tiny_model_path):
    from rzero_lib.generation import TransformersGenerator

    return TransformersGenerator.from_spec(TINY, batch_size=16)
