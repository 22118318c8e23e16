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

# Prompts among those the tiny model's format warm-up used (`rzero_lib.models._format_warmup`).
from rzero_lib.prompts import PromptSpec  # noqa: E402

SOLVER_PROMPT = PromptSpec("Solve. Put the answer in \\boxed{}.", "{question}")
CHALLENGER_PROMPT = PromptSpec("Write a question in <question></question>.", "Write a new problem.")


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



@pytest.fixture(scope="session")
def format_model_path(tiny_model_path) -> str:
    """The tiny model writes noise in the roles' formats (see `models._format_warmup`)."""
    return tiny_model_path
