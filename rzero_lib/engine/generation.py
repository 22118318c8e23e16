"""One entry point to the generation backends: `make_generator(spec, backend)`.

`auto` picks vLLM when it is importable and CUDA is present, transformers
otherwise. `engine_generator(spec, engine, seed)` is the same with a run's
`EngineParams` (what every stage and model oracle uses).
"""

from __future__ import annotations

from rzero_lib.config import EngineParams
from rzero_lib.engine.transformers_backend import TransformersGenerator
from rzero_lib.engine.vllm_backend import VLLMGenerator
from rzero_lib.engine.vllm_support import vllm_available
from rzero_lib.sampling import Generator

BACKENDS = ("auto", "transformers", "vllm")


def choose_backend(backend: str = "auto") -> str:
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}; got {backend!r}")
    if backend == "auto":
        return "vllm" if vllm_available() else "transformers"
    return backend


def make_generator(spec: str, backend: str = "auto", dtype: str = "auto", device: str = "auto",
                   batch_size: int = 64, **vllm_kwargs) -> Generator:
    """A generator for a model spec on the chosen backend; `vllm_kwargs` go to `VLLMGenerator.from_spec`."""
    if choose_backend(backend) == "vllm":
        return VLLMGenerator.from_spec(spec, dtype=dtype, **vllm_kwargs)
    return TransformersGenerator.from_spec(spec, dtype=dtype, device=device, batch_size=batch_size)


def vllm_cluster_kwargs(engine: EngineParams) -> dict:
    """vLLM's multi-node settings, passed only when set (the defaults leave vLLM's own choice)."""
    kwargs = {}
    if engine.pipeline_parallel_size > 1:
        kwargs["pipeline_parallel_size"] = engine.pipeline_parallel_size
    if engine.distributed_executor_backend != "auto":
        kwargs["distributed_executor_backend"] = engine.distributed_executor_backend
    return kwargs


def engine_generator(spec: str, engine: EngineParams, seed: int = 0) -> Generator:
    """A generator for `spec` with a run's engine settings (`seed`: vLLM's engine seed)."""
    e = engine
    return make_generator(spec, backend=e.backend, dtype=e.dtype, device=e.device, batch_size=e.generation_batch_size,
                          tensor_parallel_size=e.tensor_parallel_size, data_parallel_size=e.data_parallel_size,
                          gpu_memory_utilization=e.gpu_memory_utilization, max_model_len=e.max_model_len,
                          enforce_eager=e.enforce_eager, seed=seed, **vllm_cluster_kwargs(e))
