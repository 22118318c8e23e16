"""The generation interface every backend implements: prompts in, n sampled texts per prompt out.

A prompt is chat messages (rendered with the model's chat template) or an
already-rendered string. `Generator.generate(prompts, sampling)` returns
`result[i]`, the n completions of prompt i. The backends live in
`rzero_lib.engine`; code above the engine only sees this interface.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from rzero_lib.prompts import Message

Prompt = str | Sequence[Message]


@dataclass(frozen=True)
class SamplingConfig:
    """n samples per prompt; temperature 0 is greedy; top-k None or 0 is off."""

    n: int = 1
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int | None = None
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

    def engine_info(self) -> dict:
        """What generates, for a stage's manifest (backends add their engine's facts)."""
        return {"backend": self.backend_name}

    def record(self) -> dict:
        """The engine and its running totals, as a stage's manifest records them (`generation`)."""
        return {"engine": self.engine_info(), **self.stats.as_dict()}


def check_prompts(prompts: Sequence[Prompt]) -> None:
    """A list of prompts, not a single string (which would be read as one prompt per character)."""
    if isinstance(prompts, str):
        raise TypeError("generate() takes a list of prompts, not a single string")


def progress_bar(total: int, progress: bool | str, desc: str):
    """A tqdm bar for `generate(..., progress=...)`: False for none, a string for its label."""
    if not progress:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=progress if isinstance(progress, str) else desc, unit="seq", leave=False)
