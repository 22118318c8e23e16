"""A vLLM OpenAI server started for data parallelism, used through its HTTP API (it owns the server)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from rzero_lib.config import EngineParams
from rzero_lib.engine.models import cache_dir
from rzero_lib.engine.solver_server.process import SolverServer
from rzero_lib.engine.vllm_support import resolve_vllm_dtype, vllm_engine_info
from rzero_lib.sampling import Generator, Prompt, SamplingConfig


class ServedVLLMGenerator(Generator):
    """A vLLM OpenAI server started for data parallelism; `close()` stops it."""

    def __init__(self, server, client, settings: dict | None = None) -> None:
        super().__init__(backend_name="vllm")
        self.server = server
        self.client = client
        self.stats = client.stats
        self.settings = settings or {}

    @classmethod
    def start(cls, spec: str, *, dtype: str, tensor_parallel_size: int, data_parallel_size: int,
              gpu_memory_utilization: float, max_model_len: int | None, enforce_eager: bool) -> ServedVLLMGenerator:
        engine = EngineParams(backend="vllm", dtype=resolve_vllm_dtype(dtype), tensor_parallel_size=tensor_parallel_size,
                              data_parallel_size=data_parallel_size, gpu_memory_utilization=gpu_memory_utilization,
                              max_model_len=max_model_len, enforce_eager=enforce_eager)
        log_dir = Path(os.environ.get("RZERO_VLLM_LOG_DIR") or cache_dir() / "logs")
        server = SolverServer.start(spec, log_dir=log_dir, engine=engine, backend="vllm")
        return cls(server, server.generator(), {"dtype": engine.dtype, "tensor_parallel_size": tensor_parallel_size,
                                                "data_parallel_size": data_parallel_size,
                                                "enforce_eager": enforce_eager, "max_model_len": max_model_len})

    def engine_info(self) -> dict:
        return vllm_engine_info(mode="server", **self.settings)

    def generate(self, prompts: Sequence[Prompt], sampling: SamplingConfig,
                 progress: bool | str = True) -> list[list[str]]:
        return self.client.generate(prompts, sampling, progress=progress)

    def close(self) -> None:
        self.client.close()
        self.server.stop()
