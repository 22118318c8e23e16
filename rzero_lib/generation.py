"""One generation interface, two backends.

What it does
- `SamplingConfig`: n samples per prompt, temperature (0 = greedy), top_p,
  top_k, max_new_tokens, seed. Validated on construction.
- `Generator.generate(prompts, sampling)` → texts grouped per prompt
  (`result[i]` holds the n completions of prompt i). A prompt is chat
  messages (rendered with the tokenizer's chat template, or plain text when
  there is none) or an already-rendered string.
- `TransformersGenerator`: batched `model.generate` with left padding; the
  n samples of every prompt are spread over fixed-size batches of sequences
  sorted by prompt length (little padding); stops at EOS; a progress bar;
  deterministic on CPU for a fixed seed and batch size.
- `make_generator(spec, backend="auto")`: vLLM when it is importable and CUDA
  is present (`rzero_lib.vllm_backend`), transformers otherwise.

Simplifications
- The transformers backend does not share the prompt's KV cache between the
  n samples (vLLM does); it batches them instead.
- Seeds are per batch (seed, batch index): the same prompts, settings and
  batch size give the same texts on CPU; GPU kernels may still differ.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from rzero_lib.prompts import Message, has_chat_template, render_prompt

Prompt = str | Sequence[Message]


@dataclass(frozen=True)
class SamplingConfig:
    n: int = 1
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int | None = None  # None or 0: no top-k
    max_new_tokens: int = 256
    seed: int = 0

    def __post_init__(self) -> None:
        if self.n < 1:
            raise ValueError(f"n (samples per prompt) must be >= 1, got {self.n}")
        if self.temperature < 0:
            raise ValueError(f"temperature must be >= 0 (0 = greedy), got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.top_k is not None and self.top_k < 0:
            raise ValueError(f"top_k must be >= 0 or None, got {self.top_k}")
        if self.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {self.max_new_tokens}")

    @property
    def greedy(self) -> bool:
        return self.temperature == 0


@dataclass
class GenerationStats:
    """Running totals; `tokens_per_second` is generated tokens (up to EOS) / wall time."""

    prompts: int = 0
    sequences: int = 0
    generated_tokens: int = 0
    seconds: float = 0.0
    truncated: int = 0  # sequences that hit max_new_tokens without EOS

    @property
    def tokens_per_second(self) -> float:
        return self.generated_tokens / self.seconds if self.seconds > 0 else 0.0

    def as_dict(self) -> dict:
        return {"prompts": self.prompts, "sequences": self.sequences, "generated_tokens": self.generated_tokens,
                "seconds": round(self.seconds, 3), "truncated": self.truncated,
                "tokens_per_second": round(self.tokens_per_second, 2)}


@dataclass
class Generator:
    """Interface shared by the backends."""

    backend_name: str = "abstract"
    stats: GenerationStats = field(default_factory=GenerationStats)

    def generate(self, prompts: Sequence[Prompt], sampling: SamplingConfig,
                 progress: bool | str = True) -> list[list[str]]:
        raise NotImplementedError

    def close(self) -> None:
        """Release the model (and GPU memory)."""


def _check_prompts(prompts: Sequence[Prompt]) -> None:
    if isinstance(prompts, str):
        raise TypeError("generate() takes a list of prompts, not a single string")


class TransformersGenerator(Generator):
    """Batched sampling with `transformers` (CPU, or a GPU without vLLM)."""

    def __init__(self, model, tokenizer, batch_size: int = 64, max_batch_tokens: int | None = None) -> None:
        super().__init__(backend_name="transformers")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.model = model
        self.tokenizer = tokenizer
        self.batch_size = batch_size
        self.max_batch_tokens = max_batch_tokens
        eos = model.generation_config.eos_token_id
        eos_ids = set(eos if isinstance(eos, list) else [eos]) if eos is not None else set()
        if tokenizer.eos_token_id is not None:
            eos_ids.add(tokenizer.eos_token_id)
        self.eos_ids = sorted(eos_ids)
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else self.eos_ids[0]

    @classmethod
    def from_spec(cls, spec: str, dtype: str = "auto", device: str = "auto", batch_size: int = 64,
                  **kwargs) -> TransformersGenerator:
        from rzero_lib.models import load_model

        model, tokenizer = load_model(spec, dtype=dtype, device=device)
        return cls(model, tokenizer, batch_size=batch_size, **kwargs)

    def render(self, prompt: Prompt) -> tuple[str, bool]:
        """(text, whether the tokenizer should add its special tokens).

        Chat-templated text already holds its special tokens; plain text does
        not. TRL tokenises prompts the same way (see `training.trl_prompt`).
        """
        if isinstance(prompt, str):
            return prompt, True
        templated = has_chat_template(self.tokenizer)
        return render_prompt(self.tokenizer, prompt), not templated

    def _encode(self, prompts: Sequence[Prompt]) -> list[list[int]]:
        encoded = []
        for p in prompts:
            text, add_special = self.render(p)
            encoded.append(self.tokenizer(text, add_special_tokens=add_special)["input_ids"])
        return encoded

    def _batches(self, seqs: list[tuple[int, int]], lengths: list[int], max_new: int) -> list[list[tuple[int, int]]]:
        batches, current, longest = [], [], 0
        for s in seqs:
            longest_if = max(longest, lengths[s[0]])
            full = len(current) >= self.batch_size
            if self.max_batch_tokens is not None and current:
                full = full or (len(current) + 1) * (longest_if + max_new) > self.max_batch_tokens
            if full:
                batches.append(current)
                current, longest_if = [], lengths[s[0]]
            current.append(s)
            longest = longest_if
        if current:
            batches.append(current)
        return batches

    def generate(self, prompts: Sequence[Prompt], sampling: SamplingConfig,
                 progress: bool | str = True) -> list[list[str]]:
        import torch

        _check_prompts(prompts)
        if len(prompts) == 0:
            return []
        t0 = time.perf_counter()
        encoded = self._encode(prompts)
        lengths = [len(e) for e in encoded]
        # Every (prompt, sample) pair is one sequence; longest prompts first so
        # a batch holds similar lengths.
        seqs = sorted(((p, k) for p in range(len(prompts)) for k in range(sampling.n)),
                      key=lambda s: (-lengths[s[0]], s[0], s[1]))
        batches = self._batches(seqs, lengths, sampling.max_new_tokens)
        out: list[list[str | None]] = [[None] * sampling.n for _ in prompts]
        device = self.model.device
        gen_kwargs = {"max_new_tokens": sampling.max_new_tokens, "eos_token_id": self.eos_ids,
                      "pad_token_id": self.pad_id}
        if sampling.greedy:
            gen_kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        else:
            gen_kwargs.update(do_sample=True, temperature=sampling.temperature, top_p=sampling.top_p,
                              top_k=sampling.top_k or 0)
        bar = _progress(len(seqs), progress, "generating")
        try:
            for b, batch in enumerate(batches):
                width = max(lengths[p] for p, _ in batch)
                ids = torch.full((len(batch), width), self.pad_id, dtype=torch.long)
                mask = torch.zeros((len(batch), width), dtype=torch.long)
                for row, (p, _) in enumerate(batch):
                    ids[row, width - lengths[p]:] = torch.tensor(encoded[p], dtype=torch.long)
                    mask[row, width - lengths[p]:] = 1
                torch.manual_seed(sampling.seed * 1_000_003 + b)
                with torch.inference_mode():
                    generated = self.model.generate(input_ids=ids.to(device), attention_mask=mask.to(device),
                                                    **gen_kwargs)
                new_tokens = generated[:, width:].tolist()
                for row, (p, k) in enumerate(batch):
                    toks = new_tokens[row]
                    end = next((i for i, t in enumerate(toks) if t in self.eos_ids), None)
                    if end is None:
                        self.stats.truncated += 1
                        kept = [t for t in toks if t != self.pad_id]
                        self.stats.generated_tokens += len(kept)
                    else:
                        kept = toks[:end]
                        self.stats.generated_tokens += end + 1
                    out[p][k] = self.tokenizer.decode(kept, skip_special_tokens=True)
                if bar is not None:
                    bar.update(len(batch))
        finally:
            if bar is not None:
                bar.close()
        self.stats.prompts += len(prompts)
        self.stats.sequences += len(seqs)
        self.stats.seconds += time.perf_counter() - t0
        return [[t or "" for t in group] for group in out]

    def close(self) -> None:
        self.model = None
        release_accelerator_memory()


def release_accelerator_memory() -> None:
    """Collect garbage and return cached CUDA memory (a no-op on CPU)."""
    import gc

    gc.collect()
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except ImportError:
        pass


def _progress(total: int, progress: bool | str, desc: str):
    if not progress:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=progress if isinstance(progress, str) else desc, unit="seq", leave=False)


def vllm_available() -> bool:
    """vLLM importable and a CUDA device present."""
    import importlib.util

    if importlib.util.find_spec("vllm") is None:
        return False
    try:
        import torch

        return torch.cuda.is_available()
    except ImportError:
        return False


def choose_backend(backend: str = "auto") -> str:
    if backend not in ("auto", "transformers", "vllm"):
        raise ValueError(f"backend must be one of auto, transformers, vllm; got {backend!r}")
    if backend == "auto":
        return "vllm" if vllm_available() else "transformers"
    return backend


def make_generator(spec: str, backend: str = "auto", dtype: str = "auto", device: str = "auto",
                   batch_size: int = 64, **vllm_kwargs) -> Generator:
    """A generator for a model spec on the chosen backend (`auto`: vLLM on CUDA when installed)."""
    name = choose_backend(backend)
    if name == "vllm":
        from rzero_lib.vllm_backend import VLLMGenerator

        return VLLMGenerator.from_spec(spec, dtype=dtype, **vllm_kwargs)
    return TransformersGenerator.from_spec(spec, dtype=dtype, device=device, batch_size=batch_size)

