"""Prompt -> token ids, one rule for every backend (transformers, vLLM, the Solver server) and for TRL.

Chat messages are rendered with the tokenizer's chat template (which already
holds the special tokens) or, without a template, as plain `role: text` lines
to which the tokenizer adds its special tokens; a string is taken as rendered
text; a list of token ids is used as given. TRL receives the same prompt as
messages (it applies the template) or as plain text (`trl_prompt`), so training
and generation tokenise identically.
"""

from __future__ import annotations

from collections.abc import Sequence

from rzero_lib.prompts import Message, has_chat_template, render_plain, render_prompt
from rzero_lib.sampling import Prompt


def is_token_ids(prompt) -> bool:
    return isinstance(prompt, list) and bool(prompt) and all(isinstance(t, int) for t in prompt)


def prompt_text(tokenizer, prompt: Prompt) -> tuple[str, bool]:
    """(text, whether the tokenizer should add its special tokens)."""
    if isinstance(prompt, str):
        return prompt, True
    return render_prompt(tokenizer, prompt), not has_chat_template(tokenizer)


def encode_prompt(tokenizer, prompt: Prompt | list[int]) -> list[int]:
    """Token ids for one prompt (messages, rendered text, or token ids used as given)."""
    if is_token_ids(prompt):
        return list(prompt)
    text, add_special = prompt_text(tokenizer, prompt)
    return list(tokenizer(text, add_special_tokens=add_special)["input_ids"])


def trl_prompt(tokenizer, messages: Sequence[Message]):
    """What TRL's GRPOTrainer gets so that it tokenises like `encode_prompt`: messages when the
    tokenizer has a chat template (TRL applies it without adding special tokens twice), else plain text."""
    return list(messages) if has_chat_template(tokenizer) else render_plain(messages)
