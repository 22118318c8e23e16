"""Model specs to loaded models: hub ids, local folders, LoRA adapter chains and built-ins.

A folder this project saves carries `rzero_model.json` (its kind and base
model); an adapter folder is merged into its base chain on load. Built-ins are
built once into `$RZERO_CACHE_DIR` (default `~/.cache/rzero`). dtype "auto" is
fp32 on CPU and bf16 on CUDA (`rzero_lib.engine.device`); no quantised loading.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from rzero_lib.atomic_files import atomic_folder
from rzero_lib.engine.builtins import BUILTINS
from rzero_lib.engine.device import resolve_device, torch_dtype
from rzero_lib.model_specs import ModelSpecError, builtin_name, known_builtins, validate_model_spec

MODEL_INFO_FILE = "rzero_model.json"  # written next to every model this project saves


def cache_dir() -> Path:
    return Path(os.environ.get("RZERO_CACHE_DIR") or Path.home() / ".cache" / "rzero")


def builtin_path(name: str) -> Path:
    """Folder of a built-in model, building it on first use (atomically: a crash leaves no half-built model)."""
    if name not in BUILTINS:
        raise ModelSpecError(f"unknown built-in model 'builtin:{name}'; known: {known_builtins()}")
    b = BUILTINS[name]
    target = cache_dir() / "models" / f"{name}-v{b.version}"
    if (target / "config.json").exists():
        return target
    with atomic_folder(target, replace=False) as tmp:
        b.build(tmp)
    return target


def model_info(path: str | Path) -> dict:
    """The `rzero_model.json` record of a folder this project saved ({} otherwise)."""
    f = Path(path) / MODEL_INFO_FILE
    return json.loads(f.read_text()) if f.exists() else {}


def is_adapter(path: str | Path) -> bool:
    return (Path(path) / "adapter_config.json").exists()


def base_model_of(path: str | Path, info: dict) -> str:
    """The base an adapter folder merges into: its recorded relative location when that exists (a copied
    or moved run directory uses its own base), else the spec recorded when it was saved."""
    relative = info.get("base_model_path")
    if relative:
        candidate = (Path(path) / relative).resolve()
        if candidate.exists():
            return str(candidate)
    return info["base_model"]


def resolve_model_path(spec: str) -> str:
    """A loadable location for `spec`: a local folder (built-ins are built) or a hub id."""
    spec = validate_model_spec(spec)
    name = builtin_name(spec)
    if name is not None:
        return str(builtin_path(name))
    return str(Path(spec).expanduser()) if Path(spec).expanduser().exists() else spec


def load_tokenizer(spec: str):
    """The tokenizer of `spec`, left-padded, with a pad token."""
    from transformers import AutoTokenizer

    path = resolve_model_path(spec)
    if is_adapter(path):
        info = model_info(path)
        tok_path = path if (Path(path) / "tokenizer_config.json").exists() else \
            resolve_model_path(base_model_of(path, info))
    else:
        tok_path = path
    try:
        tokenizer = AutoTokenizer.from_pretrained(tok_path)
    except OSError as e:
        raise ModelSpecError(f"cannot load tokenizer for model '{spec}' (looked in {tok_path}): {e}") from e
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"
    return tokenizer


def load_model(spec: str, dtype: str = "auto", device: str = "auto"):
    """Load (model, tokenizer) for a spec. Adapter folders are merged into their base."""
    from transformers import AutoModelForCausalLM

    device = resolve_device(device)
    weights_dtype = torch_dtype(dtype, device)
    path = resolve_model_path(spec)
    if is_adapter(path):
        from peft import PeftModel

        info = model_info(path)
        if "base_model" not in info:
            raise ModelSpecError(f"adapter folder {path} has no {MODEL_INFO_FILE} naming its base model")
        base, _ = load_model(base_model_of(path, info), dtype=dtype, device=device)
        model = PeftModel.from_pretrained(base, path).merge_and_unload()
    else:
        try:
            model = AutoModelForCausalLM.from_pretrained(path, dtype=weights_dtype)
        except OSError as e:
            raise ModelSpecError(
                f"cannot load model '{spec}' (resolved to '{path}'): {e}. Use a local folder, a hub id on an "
                f"online machine, or one of: {known_builtins()}"
            ) from e
    model.to(device)
    model.eval()
    tokenizer = load_tokenizer(spec)
    if model.generation_config.pad_token_id is None:
        model.generation_config.pad_token_id = tokenizer.pad_token_id
    return model, tokenizer


def save_model(model, tokenizer, target: str | Path, *, base_model: str, kind: str, extra: dict | None = None,
               state_dict: dict | None = None) -> Path:
    """Save a model (or LoRA adapter) folder atomically with its `rzero_model.json`.

    `kind` is "full" or "lora"; for "lora", `base_model` is what the adapter
    must be merged into (itself possibly an adapter folder). A local base is
    also recorded relative to the target, so that copying the folders
    together (a run directory) keeps the pair.
    """
    target = Path(target)
    with atomic_folder(target) as tmp:
        model.save_pretrained(tmp, state_dict=state_dict)  # state_dict: weights gathered from ZeRO-3/FSDP ranks
        tokenizer.save_pretrained(tmp)
        info = {"kind": kind, "base_model": base_model, **(extra or {})}
        if Path(base_model).is_absolute() and Path(base_model).exists():
            info["base_model_path"] = os.path.relpath(base_model, target.resolve())
        (tmp / MODEL_INFO_FILE).write_text(json.dumps(info, indent=2))
    return target


def count_parameters(model) -> int:
    return sum(p.numel() for p in model.parameters())
