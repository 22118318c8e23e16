"""Prompt -> tokens: one rule for every backend and for TRL."""

from rzero_lib.engine.prompt_tokens import encode_prompt, prompt_text, trl_prompt
from rzero_lib.prompts import PromptSpec, render_plain

PROMPTS = [
    [{"role": "user", "content": "What is 2 + 2?"}],
    [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Name a prime number larger than ten."}],
    "plain text prompt:",
    PromptSpec("sys", "{question}", (("u1", "a1"),)).messages("Q?"),
]


def test_messages_use_the_chat_template_and_text_gets_special_tokens(tiny_generator):
    tok = tiny_generator.tokenizer
    for prompt in PROMPTS:
        text, add_special = prompt_text(tok, prompt)
        if isinstance(prompt, str):
            assert (text, add_special) == (prompt, True)
        else:
            assert text == tok.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True)
            assert add_special is False  # the template already holds them
        assert encode_prompt(tok, prompt) == tok(text, add_special_tokens=add_special)["input_ids"]


def test_token_ids_are_used_as_given(tiny_generator):
    ids = encode_prompt(tiny_generator.tokenizer, PROMPTS[0])
    assert encode_prompt(tiny_generator.tokenizer, ids) == ids


class PlainTokenizer:
    """A tokenizer without a chat template (duck-typed)."""

    chat_template = None


def test_trl_gets_messages_with_a_template_and_plain_text_without(tiny_generator):
    messages = PROMPTS[1]
    assert trl_prompt(tiny_generator.tokenizer, messages) == messages
    assert trl_prompt(PlainTokenizer(), messages) == render_plain(messages)
    assert prompt_text(PlainTokenizer(), messages) == (render_plain(messages), True)
