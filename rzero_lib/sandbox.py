"""The arithmetic sandbox: a ~1M-parameter character-level model on which R-Zero runs in minutes.

Why it exists
- On a CPU the embedded 135M model follows the roles' formats only with help
  and its majority labels are mostly wrong (../shared/NOTES.md). The sandbox
  is a world where every question has an exact answer
  (`rzero_lib.oracle.arithmetic_answer`), the base Solver is good on small
  operands and weak on large ones (partial competence, like a pretrained
  LLM), and a whole run takes minutes on 2 CPU cores.

What it does
- `build_sandbox_model(target, steps=..., seed=...)` writes a complete Hugging
  Face folder for `builtin:arith-sandbox` (`rzero_lib.models` caches it): a
  Qwen3-config model (hidden 128, 4 layers, ~1.0M parameters), a
  character-level tokenizer and a compact chat template, pretrained **here**,
  from scratch, on a synthetic corpus of conversations rendered with exactly
  the prompts the sandbox run uses (`SANDBOX_PROMPTS`, repeated in
  `params/sandbox*.yaml`; a test checks that they agree):
  - Challenger conversations (`CHALLENGER_SHARE` of a batch): the Challenger
    prompt, then `<question>A op B = ?</question>`, operands of 1-4 digits
    (`CHALLENGER_DIGIT_WEIGHTS`, small ones more often) and + - * uniformly.
    The Challenger writes no answer of its own: in the sandbox it only writes
    questions (its `\\boxed{}` is never a label in R-Zero anyway).
  - Verifier conversations (`VERIFIER_SHARE`): the question and a response
    `\\boxed{answer}` that is right half of the time and a near miss
    otherwise (`near_miss`), then `\\boxed{yes}` or `\\boxed{no}`; operand
    sizes as in the Solver's corpus, so the base model verifies about as well
    as it solves. The prompt is `SANDBOX_VERIFIER_*`, repeated as
    `verifier.system`/`verifier.user` in `params/sandbox_verifier.yaml`.
  - Solver conversations: the question, then `\\boxed{answer}` with the exact
    answer. Small operands are drawn far more often than large ones
    (`SOLVER_DIGIT_WEIGHTS`) and training stops early (`DEFAULT_PRETRAIN_STEPS`),
    so the base Solver is fair on 1-digit questions and poor beyond.
  **This corpus is the sandbox's "pretraining" and the only place where
  ground-truth answers are used.** R-Zero's stages never see it: both roles
  start from the pretrained folder and only ever see the Solver's majority
  votes (or, in the `label_source: oracle` control, the oracle's answers).
  `RZERO_SANDBOX_STEPS` (or `steps=`) makes reduced builds for tests.
- `sandbox_heldout_problems()`: the fixed held-out set (480 questions, exact
  answers, 40 per operator x largest-operand digits 1-4), drawn with its own
  seed; the built-in benchmark `arith_sandbox` (`rzero_lib.benchmarks`).
  `sandbox_dev_problems()` is a second set of the same shape (another seed)
  for tuning settings, so that nothing is tuned on the held-out set.
- Difficulty helpers: `operand_digits(question)` (digits of the largest
  number), `answer_digits(answer)`, `question_operator(question)`, and
  `difficulty_table(votes)` (per iteration: operand digits, oracle answer
  size, operator mix, p̂ statistics, the voting Solver's accuracy).
- `accuracy_by_operand_size(spec, ...)`: a model's accuracy per operator and
  operand size (greedy or mean over samples, Wilson intervals), and
  `plot_accuracy_by_operand_size`.
- Comparing the main run with its controls (notebook 07): `load_comparison`
  reads every run's votes, evaluation samples and Challenger logs;
  `label_accuracy` scores **every** kept question against the oracle with
  `rzero_lib.analysis` (Wilson intervals); the `plot_*` functions draw the
  runs together; `comparison_summary` gives the numbers as JSON.

Simplifications
- Questions have exactly two positive operands (`A op B = ?`, a form the
  oracle evaluates); subtraction may go negative; products are not bounded.
- Tokens are single characters (newline and printable ASCII) plus the chat
  markers (`<|user|>`, `<|assistant|>`, `<|im_end|>`, ...) and the three
  format strings `<question>`, `</question>`, `\\boxed{` as single tokens
  (like the merged tokens of any LLM tokenizer; they halve the length of the
  roles' outputs). `decode(encode(x)) == x` for such text; anything else is
  `<|unk|>`. There are no system turns and the Solver's user turn is the bare
  question: every prompt token costs pretraining and GRPO time.
- Pretraining: next-token loss on the assistant turn only, AdamW (lr 3e-3,
  warm-up, cosine decay to 10%), batch 64, one forward pass per role.
  Bit-for-bit determinism for a seed holds on one machine and thread count.
- Small-operand questions overlap between the held-out set and the
  pretraining corpus by necessity (there are only 81 one-digit pairs per
  operator); for 3-4 digits the overlap is negligible.
"""

from __future__ import annotations

import json
import math
import os
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from rzero_lib.arithmetic import ArithmeticProblem, evaluate_expression, format_answer
from rzero_lib.prompts import PromptSpec

# --------------------------------------------------------------------------
# prompts: the single source for pretraining and for params/sandbox*.yaml
# --------------------------------------------------------------------------

# No system turns and a bare question as the Solver's user turn: every prompt token costs pretraining and
# GRPO time on a character-level model, and the two roles are told apart by their user turns.
SANDBOX_CHALLENGER_SYSTEM = ""
SANDBOX_CHALLENGER_USER = "Write a question."
SANDBOX_SOLVER_SYSTEM = ""
SANDBOX_SOLVER_USER = "{question}"

# The Verifier's turn (`verifier.system` / `verifier.user` in params/sandbox_verifier.yaml): the question and the
# Solver's response (a boxed answer); the reply is \boxed{yes} or \boxed{no}.
SANDBOX_VERIFIER_SYSTEM = ""
SANDBOX_VERIFIER_USER = "{question} {solution}"

SANDBOX_PROMPTS = {
    "challenger": {"system": SANDBOX_CHALLENGER_SYSTEM, "user": SANDBOX_CHALLENGER_USER},
    "solver": {"system": SANDBOX_SOLVER_SYSTEM, "user": SANDBOX_SOLVER_USER},
}


def sandbox_challenger_prompt() -> PromptSpec:
    return PromptSpec(SANDBOX_CHALLENGER_SYSTEM, SANDBOX_CHALLENGER_USER)


def sandbox_solver_prompt() -> PromptSpec:
    return PromptSpec(SANDBOX_SOLVER_SYSTEM, SANDBOX_SOLVER_USER)


# --------------------------------------------------------------------------
# questions
# --------------------------------------------------------------------------

OPERATORS = "+-*"
MAX_OPERAND_DIGITS = 4
QUESTION_TEMPLATE = "{a} {op} {b} = ?"

# Operand-digit distributions (per operand, independently).
# The Challenger's corpus spans every size: the base Challenger writes easy and hard questions alike.
CHALLENGER_DIGIT_WEIGHTS = {1: 12.0, 2: 2.0, 3: 1.0, 4: 0.5}
# The Solver's corpus is dominated by small operands: competence falls with operand size.
SOLVER_DIGIT_WEIGHTS = {1: 6.0, 2: 4.0, 3: 1.0, 4: 0.25}
SOLVER_OPERATOR_WEIGHTS = {"+": 1.0, "-": 1.0, "*": 1.0}
CHALLENGER_SHARE = 0.10  # share of Challenger conversations in a pretraining batch
VERIFIER_SHARE = 0.15  # share of verification conversations (half right answers, half near misses)

PRETRAIN_SEED = 0
HELDOUT_SEED = 2_508_050  # disjoint from the pretraining seeds (small integers)
DEV_SEED = 777  # a development set for tuning the run's settings; the held-out set is only for reporting
HELDOUT_PER_CELL = 40  # per (operator, largest-operand digits) cell: 3 * 4 * 40 = 480 items

STEPS_ENV = "RZERO_SANDBOX_STEPS"
DEFAULT_PRETRAIN_STEPS = 800


def _operand(rng: random.Random, digits: int) -> int:
    low = 1 if digits == 1 else 10 ** (digits - 1)
    return rng.randint(low, 10**digits - 1)


def make_problem(a: int, op: str, b: int) -> ArithmeticProblem:
    """The sandbox question `a op b = ?` with its exact answer."""
    expression = f"{a} {op} {b}"
    value = evaluate_expression(expression)
    if value is None:
        raise ValueError(f"not evaluable: {expression}")
    return ArithmeticProblem(question=QUESTION_TEMPLATE.format(a=a, op=op, b=b), answer=format_answer(value),
                             expression=expression, operators=op, max_digits=max(len(str(a)), len(str(b))),
                             num_operands=2, style="plain")


def draw_problem(rng: random.Random, digit_weights: dict[int, float],
                 operator_weights: dict[str, float] | None = None) -> ArithmeticProblem:
    """Two operands with digit counts drawn independently from `digit_weights`, an operator from
    `operator_weights` (uniform over + - * when None)."""
    sizes, weights = list(digit_weights), list(digit_weights.values())
    d1, d2 = rng.choices(sizes, weights, k=2)
    ops = operator_weights or {op: 1.0 for op in OPERATORS}
    op = rng.choices(list(ops), list(ops.values()))[0]
    return make_problem(_operand(rng, d1), op, _operand(rng, d2))


def sandbox_heldout_problems(per_cell: int = HELDOUT_PER_CELL, seed: int = HELDOUT_SEED) -> list[ArithmeticProblem]:
    """The fixed held-out set: `per_cell` distinct questions per (operator, largest-operand digits)."""
    rng = random.Random(seed)
    problems = []
    for op in OPERATORS:
        for top in range(1, MAX_OPERAND_DIGITS + 1):
            seen: set[str] = set()
            tries = 0
            while len(seen) < per_cell and tries < 100 * per_cell:
                tries += 1
                sizes = [top, rng.randint(1, top)]
                rng.shuffle(sizes)
                p = make_problem(_operand(rng, sizes[0]), op, _operand(rng, sizes[1]))
                if p.expression in seen:
                    continue
                seen.add(p.expression)
                problems.append(p)
    return problems


def sandbox_dev_problems(per_cell: int = HELDOUT_PER_CELL) -> list[ArithmeticProblem]:
    """A development set shaped like the held-out set (another seed): what settings were tuned on."""
    return sandbox_heldout_problems(per_cell, seed=DEV_SEED)


_NUMBER_RE = re.compile(r"\d+")
_OPERATOR_RE = re.compile(r"\d\s*([-+*/])\s*\d")


def operand_digits(question: str | None) -> int | None:
    """Digits of the largest number in a question ("47 + 385 = ?" -> 3), None without numbers."""
    if not question:
        return None
    numbers = _NUMBER_RE.findall(str(question))
    return max(len(n.lstrip("0") or "0") for n in numbers) if numbers else None


def answer_digits(answer: str | None) -> int | None:
    """Digits of an integer answer ("-385" -> 3); None for no answer or a non-integer."""
    if answer is None:
        return None
    text = str(answer).strip().lstrip("+-")
    return len(text.lstrip("0") or "0") if text.isdigit() else None


def question_operator(question: str | None) -> str | None:
    """The operator of a sandbox-style question (`a op b = ?`), else None."""
    m = _OPERATOR_RE.search(str(question or ""))
    return m.group(1) if m else None


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


def near_miss(rng: random.Random, answer: int) -> int:
    """A wrong answer that looks like a Solver's mistake: off by a little, one digit changed, or off by a power
    of ten."""
    while True:
        kind = rng.randrange(3)
        digits = len(str(abs(answer)))
        if kind == 0 or digits == 1:
            wrong = answer + rng.choice([-1, 1]) * rng.randint(1, 9)
        elif kind == 1:
            text = list(str(abs(answer)))
            i = rng.randrange(len(text))
            text[i] = rng.choice([d for d in "0123456789" if d != text[i] and (i or d != "0")])
            wrong = int("".join(text)) * (-1 if answer < 0 else 1)
        else:
            wrong = answer + rng.choice([-1, 1]) * 10 ** rng.randint(1, digits - 1)
        if wrong != answer:
            return wrong


@dataclass(frozen=True)
class PretrainExample:
    role: str  # "challenger" | "solver" | "verifier"
    prompt: str  # rendered with the chat template, ends with the assistant header
    completion: str  # the assistant turn, ending with the end-of-turn token
    problem: ArithmeticProblem


def _render(tokenizer, spec: PromptSpec, question: str | None = None) -> str:
    from rzero_lib.prompts import render_prompt

    return render_prompt(tokenizer, spec.messages(question))


class PretrainCorpus:
    """An endless, seeded stream of sandbox conversations for both roles."""

    def __init__(self, tokenizer, seed: int = PRETRAIN_SEED, challenger_share: float = CHALLENGER_SHARE,
                 solver_digit_weights: dict[int, float] | None = None,
                 challenger_digit_weights: dict[int, float] | None = None,
                 verifier_share: float = VERIFIER_SHARE) -> None:
        self.tokenizer = tokenizer
        self.rng = random.Random(seed)
        self.challenger_share = challenger_share
        self.verifier_share = verifier_share
        self.solver_weights = solver_digit_weights or SOLVER_DIGIT_WEIGHTS
        self.challenger_weights = challenger_digit_weights or CHALLENGER_DIGIT_WEIGHTS
        self.challenger_prompt = _render(tokenizer, sandbox_challenger_prompt())
        self.solver_prompt = sandbox_solver_prompt()
        self.end = tokenizer.eos_token

    def example(self) -> PretrainExample:
        draw = self.rng.random()
        if draw < self.challenger_share:
            p = draw_problem(self.rng, self.challenger_weights)
            return PretrainExample("challenger", self.challenger_prompt,
                                   f"<question>{p.question}</question>{self.end}", p)
        if draw < self.challenger_share + self.verifier_share:
            # Verification: the Solver's kind of response with a right or a near-miss answer; same operand sizes
            # as the Solver's corpus, so the base Verifier is as partially competent as the base Solver.
            p = draw_problem(self.rng, self.solver_weights, SOLVER_OPERATOR_WEIGHTS)
            right = self.rng.random() < 0.5
            shown = p.answer if right else format_answer(near_miss(self.rng, int(p.answer)))
            user = SANDBOX_VERIFIER_USER.replace("{question}", p.question).replace("{solution}",
                                                                                   f"\\boxed{{{shown}}}")
            prompt = _render(self.tokenizer, PromptSpec(SANDBOX_VERIFIER_SYSTEM, user))
            return PretrainExample("verifier", prompt, f"\\boxed{{{'yes' if right else 'no'}}}{self.end}", p)
        p = draw_problem(self.rng, self.solver_weights, SOLVER_OPERATOR_WEIGHTS)
        return PretrainExample("solver", _render(self.tokenizer, self.solver_prompt, p.question),
                               f"\\boxed{{{p.answer}}}{self.end}", p)

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


def new_sandbox_model(tokenizer, seed: int = PRETRAIN_SEED):
    import torch
    from transformers import Qwen3Config, Qwen3ForCausalLM

    config = Qwen3Config(vocab_size=len(tokenizer), tie_word_embeddings=True, max_position_embeddings=512,
                         eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
                         bos_token_id=None, **MODEL_SHAPE)
    torch.manual_seed(seed)
    model = Qwen3ForCausalLM(config)
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    return model


@dataclass(frozen=True)
class PretrainSettings:
    steps: int = DEFAULT_PRETRAIN_STEPS
    batch_size: int = 64
    learning_rate: float = 3e-3
    warmup_steps: int = 50
    min_lr_ratio: float = 0.1  # cosine decay from learning_rate to min_lr_ratio * learning_rate
    weight_decay: float = 0.01
    seed: int = PRETRAIN_SEED


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


def pretrain(model, tokenizer, settings: PretrainSettings, log_every: int = 100, callback=None) -> list[dict]:
    """Next-token training on the sandbox corpus; returns the loss log."""
    import time

    import torch

    corpus = PretrainCorpus(tokenizer, seed=settings.seed)
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
        # One forward pass per role (similar lengths, little padding); the loss is per completion token.
        groups = [[ex for ex in batch if ex.role == role] for role in ("challenger", "solver", "verifier")]
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
                        log_every: int = 100) -> Path:
    """Pretrain the sandbox model and save a complete Hugging Face folder into `target`.

    `steps` defaults to `$RZERO_SANDBOX_STEPS`, else `DEFAULT_PRETRAIN_STEPS`
    (reduced builds for tests). The pretraining log and recipe go to
    `sandbox_pretraining.json` in the folder.
    """
    import torch

    target = Path(target)
    target.mkdir(parents=True, exist_ok=True)
    steps = steps if steps is not None else pretrain_steps_from_env()
    settings = PretrainSettings(steps=steps, seed=seed)
    tokenizer = build_char_tokenizer()
    model = new_sandbox_model(tokenizer, seed=seed)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    log = pretrain(model, tokenizer, settings, log_every=log_every)
    model.save_pretrained(target)
    tokenizer.save_pretrained(target)
    record = {"settings": settings.__dict__, "model_shape": MODEL_SHAPE,
              "parameters": sum(p.numel() for p in model.parameters()),
              "solver_digit_weights": SOLVER_DIGIT_WEIGHTS, "challenger_digit_weights": CHALLENGER_DIGIT_WEIGHTS,
              "challenger_share": CHALLENGER_SHARE, "verifier_share": VERIFIER_SHARE, "prompts": SANDBOX_PROMPTS,
              "verifier_prompt": {"system": SANDBOX_VERIFIER_SYSTEM, "user": SANDBOX_VERIFIER_USER}, "log": log,
              "note": "pretraining corpus: the only place ground-truth answers are used (rzero_lib.sandbox)"}
    (target / "sandbox_pretraining.json").write_text(json.dumps(record, indent=2))
    return target


# --------------------------------------------------------------------------
# measuring a model by operand size
# --------------------------------------------------------------------------

ACCURACY_COLUMNS = ["operator", "digits", "n", "correct", "accuracy", "ci_low", "ci_high", "decoding"]


def heldout_table(problems: Sequence[ArithmeticProblem] | None = None):
    """The held-out set as a DataFrame (id as in the `arith_sandbox` benchmark, operator, digits, answer)."""
    import pandas as pd

    problems = sandbox_heldout_problems() if problems is None else problems
    return pd.DataFrame({"id": [f"arith_sandbox-{k:03d}" for k in range(len(problems))],
                         "question": [p.question for p in problems], "answer": [p.answer for p in problems],
                         "operator": [p.operators for p in problems], "digits": [p.max_digits for p in problems],
                         "answer_digits": [answer_digits(p.answer) for p in problems]})


def accuracy_by_operand_size(spec: str, problems: Sequence[ArithmeticProblem] | None = None, *,
                             samples: int = 1, temperature: float = 1.0, top_k: int | None = 40,
                             batch_size: int = 512, seed: int = 0):
    """Accuracy of model `spec` per (operator, largest-operand digits) on the held-out set.

    Greedy when `samples == 1`, else the mean over `samples` answers at `temperature`
    (the per-sample accuracy that p̂ is built from). Wilson 95% intervals over answers.
    Rows with operator "all" pool the operators.
    """
    import pandas as pd

    from rzero_lib.analysis import wilson_interval
    from rzero_lib.answers import extract_boxed
    from rzero_lib.generation import SamplingConfig, TransformersGenerator

    problems = sandbox_heldout_problems() if problems is None else list(problems)
    gen = TransformersGenerator.from_spec(spec, batch_size=batch_size)
    try:
        sampling = (SamplingConfig(n=1, temperature=0.0, max_new_tokens=12, seed=seed) if samples == 1 else
                    SamplingConfig(n=samples, temperature=temperature, top_k=top_k, max_new_tokens=12, seed=seed))
        outputs = gen.generate([sandbox_solver_prompt().messages(p.question) for p in problems], sampling,
                               progress=False)
    finally:
        gen.close()
    decoding = "greedy" if samples == 1 else f"mean@{samples} (T={temperature:g})"
    rows = [{"operator": p.operators, "digits": p.max_digits, "correct": extract_boxed(o) == p.answer}
            for p, group in zip(problems, outputs) for o in group]
    df = pd.DataFrame(rows)
    out = []
    for (op, digits), g in list(df.groupby(["operator", "digits"], sort=True)) + [
            (("all", d), g) for d, g in df.groupby("digits", sort=True)]:
        n, correct = len(g), int(g["correct"].sum())
        low, high = wilson_interval(correct, n)
        out.append({"operator": op, "digits": int(digits), "n": n, "correct": correct, "accuracy": correct / n,
                    "ci_low": low, "ci_high": high, "decoding": decoding})
    return pd.DataFrame(out, columns=ACCURACY_COLUMNS)


def plot_accuracy_by_operand_size(table, title: str = "base model accuracy by operand size", ax=None):
    """Accuracy (with 95% intervals) against largest-operand digits, one line per operator."""
    import matplotlib.pyplot as plt

    if ax is None:
        fig, ax = plt.subplots(figsize=(5.5, 3.4))
    else:
        fig = ax.figure
    for (op, decoding), g in table.groupby(["operator", "decoding"], sort=False):
        g = g.sort_values("digits")
        style = dict(lw=2.5, color="black") if op == "all" else dict(lw=1.4)
        ax.errorbar(g["digits"], 100 * g["accuracy"],
                    yerr=[100 * (g["accuracy"] - g["ci_low"]), 100 * (g["ci_high"] - g["accuracy"])],
                    marker="o", ms=4, capsize=3, label=f"{op} ({decoding})", **style)
    ax.set_xticks(sorted(table["digits"].unique()))
    ax.set_xlabel("digits of the largest operand")
    ax.set_ylabel("accuracy (%)")
    ax.set_ylim(-3, 103)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------
# comparing the main run with its controls (notebook 07)
# --------------------------------------------------------------------------

MAIN_RUN = "sandbox"
CONTROL_RUNS = {
    "sandbox_oracle_labels": "oracle labels (upper bound)",
    "sandbox_untrained_challenger": "untrained Challenger",
    "sandbox_no_penalty": "no repetition penalty",
    "sandbox_no_band": "no band filter",
}
# Issue 8: the main run with the self-verifying Verifier (threshold policy), pretrained to verify like it solves.
VERIFIER_RUN = "sandbox_verifier"
RUN_LABELS = {MAIN_RUN: "R-Zero (majority labels)", **CONTROL_RUNS, VERIFIER_RUN: "with Verifier (self, threshold)"}
HELDOUT_BENCHMARK = "arith_sandbox"


def _oracle_answers(questions) -> list[str | None]:
    from rzero_lib.oracle import arithmetic_answer

    return [arithmetic_answer(str(q)) if q is not None else None for q in questions]


def load_votes(run_dir: str | Path):
    """Every finished iteration's votes.parquet with its `iteration` (empty DataFrame when none)."""
    from rzero_lib.analysis import stage_tables
    from rzero_lib.rundir import RunDir

    return stage_tables(RunDir.at(run_dir), "voting", "votes.parquet")


DIFFICULTY_COLUMNS = ["iteration", "questions", "evaluable", "operand_digits", "answer_digits", "share_1_digit",
                      "share_2_digit", "share_3plus_digit", "share_plus", "share_minus", "share_times",
                      "mean_p_hat", "mean_abs_p_hat_minus_half", "in_band", "kept", "kept_fraction",
                      "oracle_accuracy_of_solver"]


def difficulty_table(votes):
    """Per iteration, over the questions the Challenger wrote (all voted questions):
    operand digits (largest operand), oracle answer digits, operator mix, p̂ statistics,
    the kept fraction, and the voting Solver's per-sample accuracy against the oracle."""
    import pandas as pd

    if votes.empty:
        return pd.DataFrame(columns=DIFFICULTY_COLUMNS)
    df = votes.copy()
    df["oracle_answer"] = _oracle_answers(df["question"])
    df["operand_digits"] = [operand_digits(q) for q in df["question"]]
    df["answer_digits"] = [answer_digits(a) for a in df["oracle_answer"]]
    df["operator"] = [question_operator(q) for q in df["question"]]
    df["sample_accuracy"] = [
        (sum(a is not None and str(a) == o for a in list(answers)) / len(answers)) if o is not None and len(answers)
        else None for answers, o in zip(df["answers"], df["oracle_answer"])]
    rows = []
    for k, g in df.groupby("iteration", sort=True):
        ev = g[g["oracle_answer"].notna()]
        digits = ev["operand_digits"].dropna()
        ops = ev["operator"]
        rows.append({
            "iteration": int(k), "questions": len(g), "evaluable": len(ev),
            "operand_digits": float(digits.mean()) if len(digits) else math.nan,
            "answer_digits": float(ev["answer_digits"].dropna().mean()) if len(ev) else math.nan,
            "share_1_digit": float((digits == 1).mean()) if len(digits) else math.nan,
            "share_2_digit": float((digits == 2).mean()) if len(digits) else math.nan,
            "share_3plus_digit": float((digits >= 3).mean()) if len(digits) else math.nan,
            "share_plus": float((ops == "+").mean()) if len(ops) else math.nan,
            "share_minus": float((ops == "-").mean()) if len(ops) else math.nan,
            "share_times": float((ops == "*").mean()) if len(ops) else math.nan,
            "mean_p_hat": float(g["p_hat"].mean()),
            "mean_abs_p_hat_minus_half": float((g["p_hat"] - 0.5).abs().mean()),
            "in_band": float(((g["p_hat"] - 0.5).abs() <= 0.25 + 1e-9).mean()),
            "kept": int(g["kept"].sum()), "kept_fraction": float(g["kept"].mean()),
            "oracle_accuracy_of_solver": float(ev["sample_accuracy"].dropna().mean()) if len(ev) else math.nan,
        })
    return pd.DataFrame(rows, columns=DIFFICULTY_COLUMNS)


def label_accuracy(votes):
    """Pseudo-label accuracy of **all** kept questions per iteration against the exact oracle,
    with 95% Wilson intervals (`rzero_lib.analysis.label_accuracy_table` on every kept question)."""
    import pandas as pd

    from rzero_lib.analysis import LABEL_COLUMNS, label_accuracy_table, label_sample, score_labels

    if votes.empty or not votes["kept"].any():
        return pd.DataFrame(columns=LABEL_COLUMNS)
    sample = label_sample(votes, size=len(votes) + 1, which="kept")
    scored = score_labels(sample, _oracle_answers(sample["question"]))
    return label_accuracy_table(scored, votes)


def heldout_accuracy(run_dir: str | Path):
    """Held-out (`arith_sandbox`) accuracy per iteration (0 = the base model), overall and per
    largest-operand digits, from the evaluation stages' samples (greedy, exact answers)."""
    import pandas as pd

    from rzero_lib.analysis import stage_tables, wilson_interval
    from rzero_lib.rundir import RunDir

    items = heldout_table()[["id", "digits", "operator"]]
    rows = []
    evaluated = stage_tables(RunDir.at(run_dir), "evaluation", "samples.parquet")
    for k, samples in (evaluated.groupby("iteration", sort=True) if not evaluated.empty else []):
        samples = samples[samples["benchmark"] == HELDOUT_BENCHMARK].merge(items, on="id", how="left")
        if samples.empty:
            continue
        groups = [("all", samples)] + [(f"{int(d)} digit", g) for d, g in samples.groupby("digits", sort=True)]
        for scope, g in groups:
            n, correct = len(g), int(g["correct"].astype(bool).sum())
            low, high = wilson_interval(correct, n)
            rows.append({"iteration": k, "scope": scope, "n": n, "correct": correct, "accuracy": correct / n,
                         "ci_low": low, "ci_high": high})
    return pd.DataFrame(rows, columns=["iteration", "scope", "n", "correct", "accuracy", "ci_low", "ci_high"])


def challenger_progress(run_dir: str | Path):
    """The Challenger's GRPO steps: mean p̂ of the questions it wrote, its reward and operand digits,
    per iteration and step (from `challenger_questions.jsonl`)."""
    import pandas as pd

    rows = []
    for path in sorted(Path(run_dir).glob("iter_*/challenger_training/challenger_questions.jsonl")):
        k = int(path.parent.parent.name.split("_")[1])
        df = pd.read_json(path, lines=True)
        if df.empty:
            continue
        df["operand_digits"] = [operand_digits(q) for q in df["question"]]
        df["step"] = df["step"].fillna(-1).astype(int)  # the trainer's global step when the batch was scored
        for step, g in df.groupby("step", sort=True):
            parsed = g[g["question"].notna()]
            rows.append({"iteration": k, "step": int(step), "completions": len(g),
                         "parse_rate": len(parsed) / len(g),
                         "mean_p_hat": float(parsed["p_hat"].mean()) if len(parsed) else math.nan,
                         "mean_abs_p_hat_minus_half": float((parsed["p_hat"] - 0.5).abs().mean())
                         if len(parsed) else math.nan,
                         "reward": float(g["reward"].mean()),
                         "operand_digits": float(parsed["operand_digits"].mean()) if len(parsed) else math.nan})
    return pd.DataFrame(rows)


@dataclass
class Comparison:
    """The main run and its controls, one table per quantity, each with a `run` column."""

    runs: dict[str, str]  # run name -> label, for the runs found
    missing: list[str]
    difficulty: object
    labels: object
    heldout: object
    challenger: object
    summaries: dict


def load_comparison(runs_root: str | Path = "runs", run_names: Sequence[str] | None = None) -> Comparison:
    """Read the main run and the controls under `runs_root` (runs that do not exist are listed as missing)."""
    import pandas as pd

    names = list(run_names) if run_names is not None else [MAIN_RUN, *CONTROL_RUNS, VERIFIER_RUN]
    found, missing = {}, []
    tables: dict[str, list] = {"difficulty": [], "labels": [], "heldout": [], "challenger": []}
    summaries = {}
    for name in names:
        run_dir = Path(runs_root) / name
        if not (run_dir / "params.yaml").exists():
            missing.append(name)
            continue
        found[name] = RUN_LABELS.get(name, name)
        votes = load_votes(run_dir)
        for key, table in (("difficulty", difficulty_table(votes)), ("labels", label_accuracy(votes)),
                           ("heldout", heldout_accuracy(run_dir)), ("challenger", challenger_progress(run_dir))):
            if not table.empty:
                tables[key].append(table.assign(run=name))
        summary_path = run_dir / "report" / "summary.json"
        if summary_path.exists():
            summaries[name] = json.loads(summary_path.read_text())

    def cat(frames):
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()

    return Comparison(found, missing, cat(tables["difficulty"]), cat(tables["labels"]), cat(tables["heldout"]),
                      cat(tables["challenger"]), summaries)


def _run_axes(comparison: Comparison, panels: int, width: float = 4.2, height: float = 3.2):
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, panels, figsize=(width * panels, height), squeeze=False)
    return fig, list(axes[0])


def _style(name: str) -> dict:
    return dict(lw=2.6, color="black", zorder=5) if name == MAIN_RUN else dict(lw=1.4)


def plot_difficulty(comparison: Comparison):
    """Operand digits, oracle answer digits and p̂ of the questions the Challenger wrote, by iteration."""
    fig, axes = _run_axes(comparison, 3)
    d = comparison.difficulty
    panels = [("operand_digits", "digits of the largest operand"), ("answer_digits", "digits of the oracle answer"),
              ("mean_abs_p_hat_minus_half", "mean |p̂ − ½| (0 = all at ½)")]
    for ax, (col, title) in zip(axes, panels):
        for name, label in comparison.runs.items():
            g = d[d["run"] == name].sort_values("iteration") if not d.empty else d
            if len(g):
                ax.plot(g["iteration"], g[col], marker="o", label=label, **_style(name))
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("iteration (questions of Challenger_k, voted by Solver_{k-1})", fontsize=8)
        ax.grid(alpha=0.3)
        if not d.empty:
            ax.set_xticks(sorted(d["iteration"].unique()))
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    return fig


def plot_challenger_p_hat(comparison: Comparison):
    """Mean p̂ of the Challenger's questions over its GRPO steps (all iterations on one axis)."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
    c = comparison.challenger
    for name, label in comparison.runs.items():
        g = c[c["run"] == name] if not c.empty else c
        if g.empty:
            continue
        g = g.sort_values(["iteration", "step"]).reset_index(drop=True)
        axes[0].plot(g.index, g["mean_p_hat"], marker=".", label=label, **_style(name))
        axes[1].plot(g.index, g["reward"], marker=".", label=label, **_style(name))
        for x in g.index[g["iteration"].diff().fillna(0) != 0]:
            for ax in axes:
                ax.axvline(x - 0.5, color="grey", lw=0.6, ls=":")
    axes[0].axhline(0.5, color="grey", ls="--", lw=1)
    axes[0].set_title("Challenger training: mean p̂ of its questions", fontsize=10)
    axes[1].set_title("Challenger training: mean reward", fontsize=10)
    for ax in axes:
        ax.set_xlabel("GRPO step (iterations separated by dotted lines)", fontsize=8)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    return fig


def plot_label_accuracy(comparison: Comparison):
    """Pseudo-label accuracy of the kept questions per iteration (exact oracle, 95% Wilson intervals)."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.6, 3.4))
    t = comparison.labels
    names = list(comparison.runs)
    width = 0.8 / max(1, len(names))
    for i, name in enumerate(names):
        g = t[t["run"] == name].sort_values("iteration") if not t.empty else t
        if g.empty:
            continue
        x = g["iteration"] + (i - (len(names) - 1) / 2) * width
        ax.errorbar(x, 100 * g["label_accuracy"], yerr=[100 * (g["label_accuracy"] - g["ci_low"]),
                                                         100 * (g["ci_high"] - g["label_accuracy"])],
                    marker="o", capsize=3, label=comparison.runs[name], **_style(name))
    ax.set_xlabel("iteration")
    ax.set_ylabel("majority label = oracle (%)")
    ax.set_title("pseudo-label accuracy of the kept questions", fontsize=10)
    if not t.empty:
        ax.set_xticks(sorted(t["iteration"].unique()))
    ax.set_ylim(-3, 103)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def plot_heldout_accuracy(comparison: Comparison):
    """Held-out accuracy per iteration (0 = base), overall and per operand size, for every run."""
    h = comparison.heldout
    scopes = ["all"] + sorted(s for s in h["scope"].unique() if s != "all") if not h.empty else ["all"]
    fig, axes = _run_axes(comparison, len(scopes), width=3.2)
    for ax, scope in zip(axes, scopes):
        for name, label in comparison.runs.items():
            g = h[(h["run"] == name) & (h["scope"] == scope)].sort_values("iteration") if not h.empty else h
            if g.empty:
                continue
            ax.errorbar(g["iteration"], 100 * g["accuracy"],
                        yerr=[100 * (g["accuracy"] - g["ci_low"]), 100 * (g["ci_high"] - g["accuracy"])],
                        marker="o", capsize=2, label=label, **_style(name))
        ax.set_title(f"held-out accuracy: {scope}", fontsize=10)
        ax.set_xlabel("iteration (0 = base)", fontsize=8)
        ax.grid(alpha=0.3)
        if not h.empty:
            ax.set_xticks(sorted(h["iteration"].unique()))
    axes[0].set_ylabel("greedy accuracy (%)")
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    return fig


def comparison_summary(comparison: Comparison) -> dict:
    """The headline numbers of every run, JSON-ready (NaN -> None)."""
    def records(df, cols):
        if df.empty:
            return {}
        out = {}
        for name, g in df.groupby("run", sort=False):
            out[name] = [{c: (None if isinstance(v, float) and not math.isfinite(v) else v)
                          for c, v in row.items()} for row in g[cols].to_dict(orient="records")]
        return out

    label_cols = ["iteration", "kept_questions", "covered", "label_accuracy", "ci_low", "ci_high", "majority_ratio"]
    return {
        "runs": comparison.runs, "missing": comparison.missing,
        "difficulty": records(comparison.difficulty, DIFFICULTY_COLUMNS),
        "label_accuracy": records(comparison.labels, label_cols),
        "heldout": records(comparison.heldout, ["iteration", "scope", "n", "accuracy", "ci_low", "ci_high"]),
    }


def save_png(fig, path: str | Path, dpi: int = 90) -> Path:
    """Save a figure as a small PNG (README-sized)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi, bbox_inches="tight")
    return path
