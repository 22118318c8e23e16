"""The built-in models: one builder per name of `rzero_lib.model_specs.BUILTIN_MODELS`.

A builder writes a complete Hugging Face folder into an empty directory;
`rzero_lib.engine.models.builtin_path` builds it once into the cache. Bump a
version to rebuild caches when its recipe changes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rzero_lib.engine.builtins.arith_sandbox import (
    build_sandbox_model,
    build_small_sandbox_model,
    build_verifier_sandbox_model,
)
from rzero_lib.engine.builtins.smollm2 import build_smollm2
from rzero_lib.engine.builtins.tiny_random import build_tiny_random
from rzero_lib.model_specs import BUILTIN_MODELS


@dataclass(frozen=True)
class Builtin:
    version: str
    build: Callable[[Path], object]  # writes a complete HF folder into the given (empty) dir


BUILTINS: dict[str, Builtin] = {
    "tiny-random": Builtin("2", build_tiny_random),
    "smollm2-135m-instruct": Builtin("1", build_smollm2),
    # "5": the world with the misconception from b = 6 on (docs/sandbox.md); "3" was V3_WORLD; "4" named a research
    # build of LEADS_WORLD in some caches, so it is skipped
    "arith-sandbox": Builtin("5", build_sandbox_model),
    "arith-sandbox-small": Builtin("2", build_small_sandbox_model),
    "arith-sandbox-verifier": Builtin("1", build_verifier_sandbox_model),
}

if set(BUILTINS) != set(BUILTIN_MODELS):
    raise RuntimeError("rzero_lib.engine.builtins and rzero_lib.model_specs.BUILTIN_MODELS list different models")
