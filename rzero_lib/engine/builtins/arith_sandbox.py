"""`builtin:arith-sandbox`: a ~1M-parameter character-level model pretrained here, from scratch, for the sandbox.

The pretraining corpus (Challenger and Solver conversations rendered with the
sandbox's own prompts, written by `rzero_lib.sandbox_world.World`: worked
solutions with slips and an early-stop misconception) is the only place where
ground-truth answers are used; R-Zero's stages never see it. Recipe and
reasons: docs/sandbox.md.

`builtin:arith-sandbox-verifier` is the same build with Verifier conversations
added (`verifier_share`): the corpus's own worked solutions, judged `\boxed{yes}`
or `\boxed{no}` against the exact answer; `params/sandbox_verifier.yaml` uses it as
an external Verifier (`verifier.kind: model`).

Simplifications: the sandbox model itself has no Verifier conversations (so its
self-verification parses no verdict; docs/sandbox.md); bit-for-bit determinism for a
seed holds on one machine and thread count.
`RZERO_SANDBOX_STEPS` (or `steps=`) makes reduced builds for tests.
"""

from __future__ import annotations

import json
import math
import os
import random
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from rzero_lib.answers import extract_boxed
from rzero_lib.arithmetic import ArithmeticProblem
from rzero_lib.prompts import render_prompt
from rzero_lib.sandbox_world import (
    DEFAULT_WORLD,
    REFUSAL,
    SANDBOX_PROMPTS,
    SANDBOX_VERIFIER_SYSTEM,
    SANDBOX_VERIFIER_USER,
    World,
    corpus_solution,
    draw_problem,
    malformed_question,
    parse_question,
    sandbox_challenger_prompt,
    sandbox_solver_prompt,
)
from rzero_lib.verifier import verification_messages

PRETRAIN_SEED = 0

STEPS_ENV = "RZERO_SANDBOX_STEPS"
DEFAULT_PRETRAIN_STEPS = 800
VERIFIER_SHARE = 0.25  # `builtin:arith-sandbox-verifier`: share of Verifier conversations in a pretraining batch


# --------------------------------------------------------------------------
# tokenizer
# --------------------------------------------------------------------------

SPECIAL_TOKENS = ["<|endoftext|>", "<|im_end|>", "<|system|>", "<|user|>", "<|assistant|>", "<|unk|>"]
# Multi-character tokens for the roles' format strings (like the merged tokens of any LLM tokenizer): a
# Challenger question costs 1 token of markup instead of 21 characters, a boxed answer 2 instead of 8.
FORMAT_TOKENS = ["<question>", "</question>", "\\boxed{"]
CHARACTERS = "\n" + "".join(chr(c) for c in range(32, 127))  # newline + printable ASCII
# ChatML without the newlines and with one token per role marker: `<|user|>...<|im_end|><|assistant|>`.
COMPACT_CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|' + message['role'] + '|>' + message['content'] + '<|im_end|>' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>' }}{% endif %}"
)


def build_char_tokenizer():
    """A character-level `PreTrainedTokenizerFast` (plus the format tokens) with a compact chat template."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {tok: i for i, tok in enumerate(SPECIAL_TOKENS + FORMAT_TOKENS)}
    for ch in CHARACTERS:
        vocab.setdefault(ch, len(vocab))
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<|unk|>"))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
    tok.decoder = decoders.Fuse()
    tok.add_special_tokens(SPECIAL_TOKENS)
    tok.add_tokens(FORMAT_TOKENS)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>",
                                        unk_token="<|unk|>", bos_token=None, clean_up_tokenization_spaces=False)
    tokenizer.chat_template = COMPACT_CHAT_TEMPLATE
    tokenizer.padding_side = "left"
    return tokenizer



# --------------------------------------------------------------------------
# pretraining corpus (the only place ground-truth answers are used)
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class PretrainExample:
    role: str  # "challenger" | "solver" | "verifier"
    prompt: str  # rendered with the chat template, ends with the assistant header
    completion: str  # the assistant turn, ending with the end-of-turn token
    problem: ArithmeticProblem


class PretrainCorpus:
    """An endless, seeded stream of sandbox conversations for both roles, written as `world` says, plus (with a
    `verifier_share`) Verifier conversations: a worked solution of the corpus and its verdict."""

    def __init__(self, tokenizer, seed: int = PRETRAIN_SEED, world: World = DEFAULT_WORLD,
                 verifier_share: float = 0.0) -> None:
        if not 0.0 <= verifier_share < 1.0:
            raise ValueError(f"verifier_share must be in [0, 1), got {verifier_share!r}")
        self.tokenizer = tokenizer
        self.rng = random.Random(seed)
        self.world = world
        self.verifier_share = verifier_share
        self.challenger_prompt = render_prompt(tokenizer, sandbox_challenger_prompt().messages())
        self.solver_prompt = sandbox_solver_prompt()
        self.end = tokenizer.eos_token

    def _solver_prompt(self, question: str) -> str:
        return render_prompt(self.tokenizer, self.solver_prompt.messages(question))

    def _verifier_example(self) -> PretrainExample:
        """A question, one of the corpus's own solutions to it (slips, early stops and leads as the world writes
        them) in the Verifier's turn, and the true verdict on its boxed answer."""
        p = draw_problem(self.rng, self.world.solver_step_weights)
        _, solution = corpus_solution(self.rng, *parse_question(p.question), self.world)
        verdict = "yes" if extract_boxed(solution) == p.answer else "no"
        messages = verification_messages(p.question, solution, system=SANDBOX_VERIFIER_SYSTEM,
                                         user=SANDBOX_VERIFIER_USER)
        return PretrainExample("verifier", render_prompt(self.tokenizer, messages),
                               f"\\boxed{{{verdict}}}{self.end}", p)

    def example(self) -> PretrainExample:
        w = self.world
        # no draw without Verifier conversations: the stream builtin v5 was built from
        if self.verifier_share and self.rng.random() < self.verifier_share:
            return self._verifier_example()
        if self.rng.random() < w.challenger_share:
            p = draw_problem(self.rng, w.challenger_step_weights)
            return PretrainExample("challenger", self.challenger_prompt,
                                   f"<question>{p.question}</question>{self.end}", p)
        p = draw_problem(self.rng, w.solver_step_weights)
        if self.rng.random() < w.malformed_share:
            question = malformed_question(self.rng, p.question)
            return PretrainExample("solver", self._solver_prompt(question), f"{REFUSAL}{self.end}", p)
        _, solution = corpus_solution(self.rng, *parse_question(p.question), w)
        return PretrainExample("solver", self._solver_prompt(p.question), f"{solution}{self.end}", p)

    def batch(self, size: int) -> list[PretrainExample]:
        return [self.example() for _ in range(size)]


def encode_batch(tokenizer, examples: Sequence[PretrainExample]):
    """Right-padded input ids, attention mask and labels (loss on the completion only)."""
    import torch

    rows, lengths = [], []
    for ex in examples:
        prompt_ids = tokenizer(ex.prompt, add_special_tokens=False)["input_ids"]
        completion_ids = tokenizer(ex.completion, add_special_tokens=False)["input_ids"]
        rows.append((prompt_ids, completion_ids))
        lengths.append(len(prompt_ids) + len(completion_ids))
    width = max(lengths)
    ids = torch.full((len(rows), width), tokenizer.pad_token_id, dtype=torch.long)
    labels = torch.full((len(rows), width), -100, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, (p, c) in enumerate(rows):
        seq = p + c
        ids[i, : len(seq)] = torch.tensor(seq)
        mask[i, : len(seq)] = 1
        labels[i, len(p): len(seq)] = torch.tensor(c)
    return ids, mask, labels


# --------------------------------------------------------------------------
# the model
# --------------------------------------------------------------------------

MODEL_SHAPE = dict(hidden_size=128, intermediate_size=512, num_hidden_layers=4, num_attention_heads=4,
                   num_key_value_heads=2, head_dim=32)
# `builtin:arith-sandbox-small`: the same recipe at about half the parameters (narrower, same depth), for the
# model-size comparison of docs/sandbox.md ("Six iterations at two sizes").
SMALL_MODEL_SHAPE = dict(hidden_size=96, intermediate_size=384, num_hidden_layers=4, num_attention_heads=3,
                         num_key_value_heads=1, head_dim=32)


def new_sandbox_model(tokenizer, seed: int = PRETRAIN_SEED, shape: dict | None = None):
    import torch
    from transformers import Qwen3Config, Qwen3ForCausalLM

    config = Qwen3Config(vocab_size=len(tokenizer), tie_word_embeddings=True, max_position_embeddings=512,
                         eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
                         bos_token_id=None, **(shape or MODEL_SHAPE))
    torch.manual_seed(seed)
    model = Qwen3ForCausalLM(config)
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    return model


@dataclass(frozen=True)
class PretrainSettings:
    steps: int = DEFAULT_PRETRAIN_STEPS
    batch_size: int = 64
    learning_rate: float = 4e-3
    warmup_steps: int = 50
    min_lr_ratio: float = 0.1  # cosine decay from learning_rate to min_lr_ratio * learning_rate
    weight_decay: float = 0.01
    seed: int = PRETRAIN_SEED
    length_buckets: int = 2  # the Solver's (and Verifier's) examples go in this many forward passes, grouped by length
    verifier_share: float = 0.0  # share of Verifier conversations (`builtin:arith-sandbox-verifier`)


def pretrain_steps_from_env(default: int = DEFAULT_PRETRAIN_STEPS) -> int:
    raw = os.environ.get(STEPS_ENV)
    if not raw:
        return default
    try:
        steps = int(raw)
    except ValueError:
        raise ValueError(f"{STEPS_ENV} must be a positive integer, got {raw!r}") from None
    if steps < 1:
        raise ValueError(f"{STEPS_ENV} must be a positive integer, got {raw!r}")
    return steps


def pretrain(model, tokenizer, settings: PretrainSettings, log_every: int = 100, callback=None,
             world: World = DEFAULT_WORLD) -> list[dict]:
    """Next-token training on the sandbox corpus; returns the loss log."""
    import torch

    corpus = PretrainCorpus(tokenizer, seed=settings.seed, world=world, verifier_share=settings.verifier_share)
    torch.manual_seed(settings.seed)
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.ndim < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": settings.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=settings.learning_rate,
                            betas=(0.9, 0.98))

    def lr_at(step: int) -> float:
        if step < settings.warmup_steps:
            return settings.learning_rate * (step + 1) / settings.warmup_steps
        progress = (step - settings.warmup_steps) / max(1, settings.steps - settings.warmup_steps)
        cosine = 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
        return settings.learning_rate * (settings.min_lr_ratio + (1 - settings.min_lr_ratio) * cosine)

    log, t0, cpu0, running = [], time.perf_counter(), time.process_time(), []
    model.train()
    for step in range(settings.steps):
        for group in opt.param_groups:
            group["lr"] = lr_at(step)
        batch = corpus.batch(settings.batch_size)
        opt.zero_grad(set_to_none=True)
        # Forward passes over examples of similar length (little padding): the Challenger's, then the Solver's
        # sorted by length and cut in `settings.length_buckets` parts. The loss is per completion token.
        solver = sorted((ex for ex in batch if ex.role != "challenger"), key=lambda ex: len(ex.prompt) + len(ex.completion))
        cut = max(1, math.ceil(len(solver) / settings.length_buckets))
        groups = [[ex for ex in batch if ex.role == "challenger"]] + [solver[i:i + cut] for i in range(0, len(solver), cut)]
        encoded = [encode_batch(tokenizer, g) for g in groups if g]
        tokens = sum(int((labels[:, 1:] != -100).sum()) for _, _, labels in encoded)
        loss_value = 0.0
        for ids, mask, labels in encoded:
            logits = model(input_ids=ids, attention_mask=mask).logits[:, :-1]
            loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels[:, 1:].reshape(-1),
                                                     ignore_index=-100, reduction="sum") / tokens
            loss.backward()
            loss_value += float(loss.detach())
        loss = loss_value
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        running.append(loss)
        if (step + 1) % log_every == 0 or step + 1 == settings.steps:
            entry = {"step": step + 1, "loss": sum(running) / len(running), "lr": lr_at(step),
                     "seconds": round(time.perf_counter() - t0, 2),
                     "cpu_seconds": round(time.process_time() - cpu0, 2)}
            log.append(entry)
            running = []
            if callback is not None:
                model.eval()
                callback(entry, model)
                model.train()
    model.eval()
    return log


def build_sandbox_model(target: str | Path, steps: int | None = None, seed: int = PRETRAIN_SEED,
                        log_every: int = 100, world: World = DEFAULT_WORLD, callback=None,
                        shape: dict | None = None, verifier_share: float = 0.0) -> Path:
    """Pretrain the sandbox model and save a complete Hugging Face folder into `target`.

    `steps` defaults to `$RZERO_SANDBOX_STEPS`, else `DEFAULT_PRETRAIN_STEPS`
    (reduced builds for tests). The pretraining log and recipe go to
    `sandbox_pretraining.json` in the folder.
    """
    import torch

    target = Path(target)
    target.mkdir(parents=True, exist_ok=True)
    steps = steps if steps is not None else pretrain_steps_from_env()
    settings = PretrainSettings(steps=steps, seed=seed, verifier_share=verifier_share)
    tokenizer = build_char_tokenizer()
    shape = dict(shape or MODEL_SHAPE)
    model = new_sandbox_model(tokenizer, seed=seed, shape=shape)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    log = pretrain(model, tokenizer, settings, log_every=log_every, callback=callback, world=world)
    model.save_pretrained(target)
    tokenizer.save_pretrained(target)
    record = {"settings": settings.__dict__, "model_shape": shape,
              "parameters": sum(p.numel() for p in model.parameters()),
              "world": asdict(world), "prompts": SANDBOX_PROMPTS, "log": log,
              "note": "pretraining corpus: the only place ground-truth answers are used (docs/sandbox.md)"}
    (target / "sandbox_pretraining.json").write_text(json.dumps(record, indent=2))
    return target


def build_small_sandbox_model(target: str | Path, **kwargs) -> Path:
    """`builtin:arith-sandbox-small`: `build_sandbox_model` with `SMALL_MODEL_SHAPE`."""
    return build_sandbox_model(target, shape=SMALL_MODEL_SHAPE, **kwargs)


def build_verifier_sandbox_model(target: str | Path, **kwargs) -> Path:
    """`builtin:arith-sandbox-verifier`: `build_sandbox_model` with `VERIFIER_SHARE` of Verifier conversations."""
    return build_sandbox_model(target, verifier_share=VERIFIER_SHARE, **kwargs)

