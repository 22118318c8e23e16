"""Shared fixtures: the real tiny model (built once, cached), the smoke run, a reduced sandbox model, and a
quiet environment. Helpers without state are in `tests/support.py`."""

from __future__ import annotations

import os

import pytest

from tests.support import SMOKE, TINY, fail_then_resume

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

REDUCED_SANDBOX_STEPS = 60


@pytest.hookimpl(tryfirst=True)  # before `-m "not slow"` deselects
def pytest_collection_modifyitems(config, items):
    """Tests on the smoke run are slow (it runs the whole pipeline); GPU tests are skipped, with the reason,
    where there is no CUDA device."""
    from rzero_lib.engine.device import cuda_available

    for item in items:
        if "smoke_run" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.slow)
    if cuda_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU (none on this machine)")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def tiny_model_path() -> str:
    from rzero_lib.engine.models import resolve_model_path

    return resolve_model_path(TINY)


@pytest.fixture(scope="session")
def tiny_generator(tiny_model_path):
    from rzero_lib.engine.transformers_backend import TransformersGenerator

    return TransformersGenerator.from_spec(TINY, batch_size=16)


@pytest.fixture(scope="session")
def format_model_path(tiny_model_path) -> str:
    """The tiny model writes noise in the roles' formats (see `tiny_random.format_warmup`)."""
    return tiny_model_path


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory):
    """The whole chain on params/smoke.yaml through the real driver and papermill,
    made to fail at iter_01/voting first (RZERO_FAIL_STAGE) and then resumed."""
    from rzero_lib.config import load_params

    return fail_then_resume(load_params(SMOKE), tmp_path_factory.mktemp("runs") / "smoke", "iter_01/voting")


@pytest.fixture(scope="session")
def reduced_sandbox(tmp_path_factory):
    """A temporary RZERO_CACHE_DIR holding a reduced `builtin:arith-sandbox` (a few pretraining steps), built
    once; the environment is restored afterwards so other tests use the real cache."""
    from rzero_lib.engine.builtins.arith_sandbox import STEPS_ENV
    from rzero_lib.engine.models import builtin_path

    cache = tmp_path_factory.mktemp("sandbox_cache")
    saved = {k: os.environ.get(k) for k in ("RZERO_CACHE_DIR", STEPS_ENV)}
    os.environ["RZERO_CACHE_DIR"] = str(cache)
    os.environ[STEPS_ENV] = str(REDUCED_SANDBOX_STEPS)
    try:
        path = builtin_path("arith-sandbox")
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return {"cache": cache, "path": path, "steps": REDUCED_SANDBOX_STEPS}
