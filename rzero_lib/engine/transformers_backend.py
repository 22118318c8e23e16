"""The transformers backend: batched sampling with its own decoding loop.

The n samples of every prompt are spread over fixed-size batches of sequences
sorted by prompt length; within a batch each distinct prompt is prefilled once
and its KV cache copied to its samples; a sequence leaves the batch at EOS.
Sampling is temperature, then top-k, then top-p (transformers' order), no other
logits processors. A batch's torch seed is `derive_seed(sampling.seed, "batch", b)`:
the same prompts, settings and batch size give the same texts on CPU. Greedy
output equals `model.generate`'s (a test checks it).
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Sequence

from rzero_lib.engine.device import release_accelerator_memory
from rzero_lib.engine.models import load_model
from rzero_lib.engine.prompt_tokens import encode_prompt, prompt_text
from rzero_lib.sampling import Generator, Prompt, SamplingConfig, check_prompts, progress_bar
from rzero_lib.seeds import derive_seed


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
        # transformers renamed `past_key_values` to `cache` (5.2x); accept both.
        forward_args = inspect.signature(model.forward).parameters
        self._cache_arg = "cache" if "cache" in forward_args else "past_key_values"
        # Only the last position's logits are needed (saves the LM head over the prompt), where supported.
        self._keep_last = {"logits_to_keep": 1} if "logits_to_keep" in forward_args else {}

    @classmethod
    def from_spec(cls, spec: str, dtype: str = "auto", device: str = "auto", batch_size: int = 64,
                  **kwargs) -> TransformersGenerator:
        model, tokenizer = load_model(spec, dtype=dtype, device=device)
        return cls(model, tokenizer, batch_size=batch_size, **kwargs)

    def render(self, prompt: Prompt) -> tuple[str, bool]:
        """(text, whether the tokenizer adds its special tokens) as `encode_prompt` uses them."""
        return prompt_text(self.tokenizer, prompt)

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

        check_prompts(prompts)
        if len(prompts) == 0:
            return []
        t0 = time.perf_counter()
        encoded = [encode_prompt(self.tokenizer, p) for p in prompts]
        lengths = [len(e) for e in encoded]
        # Every (prompt, sample) pair is one sequence; longest prompts first so
        # a batch holds similar lengths.
        seqs = sorted(((p, k) for p in range(len(prompts)) for k in range(sampling.n)),
                      key=lambda s: (-lengths[s[0]], s[0], s[1]))
        batches = self._batches(seqs, lengths, sampling.max_new_tokens)
        out: list[list[str | None]] = [[None] * sampling.n for _ in prompts]
        bar = progress_bar(len(seqs), progress, "generating")
        try:
            for b, batch in enumerate(batches):
                torch.manual_seed(derive_seed(sampling.seed, "batch", b))
                with torch.inference_mode():
                    new_tokens, finished = self._sample_batch([encoded[p] for p, _ in batch], sampling)
                for row, (p, k) in enumerate(batch):
                    toks = new_tokens[row]
                    if finished[row]:
                        self.stats.generated_tokens += len(toks) + 1  # the EOS counts as generated
                    else:
                        self.stats.truncated += 1
                        self.stats.generated_tokens += len(toks)
                    out[p][k] = self.tokenizer.decode(toks, skip_special_tokens=True)
                if bar is not None:
                    bar.update(len(batch))
        finally:
            if bar is not None:
                bar.close()
        self.stats.prompts += len(prompts)
        self.stats.sequences += len(seqs)
        self.stats.seconds += time.perf_counter() - t0
        return [[t or "" for t in group] for group in out]

    def _forward(self, ids, mask, positions, cache=None):
        kwargs = {"input_ids": ids, "attention_mask": mask, "position_ids": positions, "use_cache": True,
                  self._cache_arg: cache, **self._keep_last}
        out = self.model(**kwargs)
        return out.logits[:, -1, :], getattr(out, self._cache_arg)

    def _sample_batch(self, rows: list[list[int]], sampling: SamplingConfig) -> tuple[list[list[int]], list[bool]]:
        """Sample one continuation per row; rows holding the same prompt share its prefill.

        Returns the new tokens of each row (without the EOS) and whether it
        ended at EOS (False: it hit max_new_tokens).
        """
        import torch

        device = self.model.device
        distinct: dict[tuple[int, ...], int] = {}
        owner = [distinct.setdefault(tuple(r), len(distinct)) for r in rows]
        prompts = list(distinct)
        width = max(len(p) for p in prompts)
        ids = torch.full((len(prompts), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(prompts), width), dtype=torch.long)
        for i, p in enumerate(prompts):
            ids[i, width - len(p):] = torch.tensor(p, dtype=torch.long)
            mask[i, width - len(p):] = 1
        ids, mask = ids.to(device), mask.to(device)
        # Left padding: positions count real tokens only, as `model.generate` does.
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        logits, cache = self._forward(ids, mask, positions)
        index = torch.tensor(owner, device=device)
        cache.batch_select_indices(index)  # one copy of the prompt's cache per sample
        logits, mask, position = logits[index], mask[index], positions[index, -1] + 1
        eos = torch.tensor(self.eos_ids, device=device)
        live = torch.arange(len(rows), device=device)  # batch row -> original row
        tokens: list[list[int]] = [[] for _ in rows]
        finished = [False] * len(rows)
        for step in range(sampling.max_new_tokens):
            picked = pick_tokens(logits, sampling)
            done = torch.isin(picked, eos)
            for row, tok, d in zip(live.tolist(), picked.tolist(), done.tolist(), strict=True):
                if d:
                    finished[row] = True
                else:
                    tokens[row].append(tok)
            if step == sampling.max_new_tokens - 1 or bool(done.all()):
                break
            if bool(done.any()):  # finished rows leave the batch and its cache
                keep = (~done).nonzero().squeeze(1)
                cache.batch_select_indices(keep)
                live, picked, mask, position = live[keep], picked[keep], mask[keep], position[keep]
            mask = torch.cat([mask, mask.new_ones((len(live), 1))], dim=1)
            logits, cache = self._forward(picked[:, None], mask, position[:, None], cache)
            position = position + 1
        return tokens, finished

    def close(self) -> None:
        self.model = None
        release_accelerator_memory()


def pick_tokens(logits, sampling: SamplingConfig):
    """Next token per row: argmax when greedy, else temperature, top-k, top-p, then a draw."""
    import torch

    if sampling.greedy:
        return logits.argmax(dim=-1)
    logits = logits.float() / sampling.temperature
    if sampling.top_k and sampling.top_k < logits.shape[-1]:
        kth = torch.topk(logits, sampling.top_k, dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if sampling.top_p < 1.0:
        ordered, order = logits.sort(dim=-1, descending=True)
        probs = ordered.softmax(dim=-1)
        # Drop a token once the more likely ones already cover top_p (the most likely always stays).
        outside = probs.cumsum(dim=-1) - probs >= sampling.top_p
        logits = logits.scatter(1, order, ordered.masked_fill(outside, float("-inf")))
    return torch.multinomial(logits.softmax(dim=-1), num_samples=1).squeeze(1)
