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
SMOKE = REPO_ROOT / "params" / "smoke.yaml"

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


def _mtimes(run_dir: Path) -> dict[str, float]:
    return {str(p.relative_to(run_dir)): p.stat().st_mtime for p in run_dir.rglob("*") if p.is_file()}


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory):
    """The whole chain on params/smoke.yaml through the real driver and papermill,
    made to fail at iter_01/voting first (RZERO_FAIL_STAGE) and then resumed."""
    from rzero_lib.config import load_params
    from rzero_lib.pipeline import PipelineError, run_pipeline

    run_dir = tmp_path_factory.mktemp("runs") / "smoke"
    params = load_params(SMOKE)
    os.environ["RZERO_FAIL_STAGE"] = "iter_01/voting"
    try:
        with pytest.raises(PipelineError) as failure:
            run_pipeline(params, run_dir, progress=False)
    finally:
        del os.environ["RZERO_FAIL_STAGE"]
    before = _mtimes(run_dir)
    run_pipeline(params, run_dir, progress=False)
    return {"dir": run_dir, "params": params, "failure": str(failure.value), "before": before}


