"""`builtin:tiny-random`: a 0.7M-parameter Qwen3 with a locally trained BPE tokenizer, for tests and smoke runs.

Random weights plus a few seconds of format warm-up, so that it writes noise in
the roles' formats; built deterministically in seconds.
"""

from __future__ import annotations

import random
from pathlib import Path

from rzero_lib import prompts as P

CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


def synthetic_corpus(n_lines: int = 4000, seed: int = 0) -> list[str]:
    """Deterministic text for the tiny tokenizer: math, tags, prose fragments."""
    rng = random.Random(seed)
    words = ("what is the sum of product difference answer question compute find number value "
             "total each box apple price cost how many more less than twice half of a an and "
             "please reason step by step put your final within solve write new problem hard "
             "expert integer fraction equal result then so therefore").split()
    ops = ["+", "-", "*", "/"]
    lines = []
    for _ in range(n_lines):
        a, b = rng.randint(0, 999), rng.randint(0, 999)
        op = rng.choice(ops)
        kind = rng.randrange(4)
        if kind == 0:
            lines.append(f"<question>What is {a} {op} {b}?</question> \\boxed{{{a + b}}}")
        elif kind == 1:
            lines.append(" ".join(rng.choice(words) for _ in range(rng.randint(4, 14))) + ".")
        elif kind == 2:
            lines.append(f"{a} {op} {b} = {rng.randint(-999, 9999)}. The answer is \\boxed{{{b}}}.")
        else:
            lines.append(f"Let x = {a}. Then x^2 = {a * a} and \\frac{{{a}}}{{{b + 1}}} is a fraction.")
    return lines


def build_tiny_random(target: Path) -> None:
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast, Qwen3Config, Qwen3ForCausalLM

    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=512, special_tokens=specials, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(synthetic_corpus(), trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>",
                                        unk_token=None, bos_token=None)
    tokenizer.chat_template = CHATML_TEMPLATE
    tokenizer.padding_side = "left"

    config = Qwen3Config(
        vocab_size=len(tokenizer), hidden_size=128, intermediate_size=256, num_hidden_layers=4,
        num_attention_heads=4, num_key_value_heads=2, head_dim=32, tie_word_embeddings=True,
        max_position_embeddings=4096, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
        bos_token_id=None,
    )
    torch.manual_seed(0)
    model = Qwen3ForCausalLM(config)
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    format_warmup(model, tokenizer)
    model.save_pretrained(target)
    tokenizer.save_pretrained(target)


def format_warmup(model, tokenizer, steps: int = 80, seed: int = 0) -> None:
    """A few seconds of next-token training on synthetic role conversations, so the
    tiny model writes noise *in the roles' formats*: `<question>...</question>`
    after a Challenger prompt, `\\boxed{d}` (a random digit) after a Solver prompt.
    Every stage then has parseable data and rewards that vary, which is all a
    smoke run needs; the content stays meaningless."""
    import torch

    rng = random.Random(seed)
    # Short prompts only: with a 512-token vocabulary the paper's long prompts
    # would make the warm-up slow; the format carries over to other prompts.
    challengers = [P.PromptSpec(P.CHALLENGER_SYSTEM_ARITHMETIC, P.CHALLENGER_USER_ARITHMETIC),
                   P.PromptSpec("Write a question in <question></question>.", "Write a new problem.")]
    solvers = [P.paper_solver_prompt(), P.PromptSpec(P.SOLVER_SYSTEM_ARITHMETIC, "{question}"),
               P.PromptSpec("Solve. Put the answer in \\boxed{}.", "{question}")]

    def conversation() -> str:
        a, b = rng.randint(1, 9), rng.randint(1, 9)
        if rng.random() < 0.5:
            messages = rng.choice(challengers).messages() + [
                {"role": "assistant", "content": f"<question>What is {a}+{b}?</question> \\boxed{{{a + b}}}"}]
        else:
            messages = rng.choice(solvers).messages(f"What is {a}+{b}?") + [
                {"role": "assistant", "content": f"The answer is \\boxed{{{rng.randint(1, 4)}}}."}]
        return tokenizer.apply_chat_template(messages, tokenize=False)

    torch.manual_seed(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(steps):
        batch = tokenizer([conversation() for _ in range(12)], return_tensors="pt", padding=True,
                          add_special_tokens=False)
        labels = batch["input_ids"].masked_fill(batch["attention_mask"] == 0, -100)
        loss = model(**batch, labels=labels).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
