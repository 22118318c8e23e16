import copy

import pytest
import torch

from rzero_lib.engine.generation import choose_backend
from rzero_lib.engine.transformers_backend import TransformersGenerator
from rzero_lib.prompts import PromptSpec
from rzero_lib.sampling import SamplingConfig

PROMPTS = [
    [{"role": "user", "content": "What is 2 + 2?"}],
    [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Name a prime number larger than ten."}],
    "plain text prompt:",
]


def test_shapes_and_grouping(tiny_generator):
    out = tiny_generator.generate(PROMPTS, SamplingConfig(n=3, max_new_tokens=8, seed=1), progress=False)
    assert len(out) == 3 and all(len(group) == 3 for group in out)
    assert all(isinstance(t, str) for group in out for t in group)


def test_seed_determinism(tiny_generator):
    s = SamplingConfig(n=4, max_new_tokens=12, seed=7)
    a = tiny_generator.generate(PROMPTS, s, progress=False)
    b = tiny_generator.generate(PROMPTS, s, progress=False)
    c = tiny_generator.generate(PROMPTS, SamplingConfig(n=4, max_new_tokens=12, seed=8), progress=False)
    assert a == b
    assert a != c


def test_greedy_is_repeatable_and_n_copies_agree(tiny_generator):
    out = tiny_generator.generate(PROMPTS[:1], SamplingConfig(n=3, temperature=0, max_new_tokens=10), progress=False)
    assert out[0][0] == out[0][1] == out[0][2]


def test_batching_does_not_change_greedy_output(tiny_model_path):
    from rzero_lib.engine.models import load_model

    model, tok = load_model(tiny_model_path)
    g1 = TransformersGenerator(model, tok, batch_size=1)
    g8 = TransformersGenerator(model, tok, batch_size=8)
    s = SamplingConfig(n=2, temperature=0, max_new_tokens=6)
    assert g1.generate(PROMPTS, s, progress=False) == g8.generate(PROMPTS, s, progress=False)


def _tiny_with_forced_head(tiny_model_path, favourite: str):
    """A copy of the tiny model whose head picks one token: EOS ("eos") or a plain token ("text")."""
    from rzero_lib.engine.models import load_model

    model, tok = load_model(tiny_model_path)
    model = copy.deepcopy(model)
    head = torch.nn.Linear(model.config.hidden_size, model.config.vocab_size, bias=True)
    head.weight.data.zero_()
    head.bias.data.fill_(-50.0)
    plain = tok("a", add_special_tokens=False)["input_ids"][0]
    head.bias.data[tok.eos_token_id if favourite == "eos" else plain] = 50.0
    model.lm_head = head
    return model, tok


def test_stops_at_eos(tiny_model_path):
    g = TransformersGenerator(*_tiny_with_forced_head(tiny_model_path, "eos"), batch_size=4)
    out = g.generate(PROMPTS, SamplingConfig(n=2, max_new_tokens=20), progress=False)
    assert all(t == "" for group in out for t in group)
    assert g.stats.truncated == 0
    assert g.stats.generated_tokens == 6  # one EOS per sequence, nothing after it


def test_truncation_is_counted(tiny_model_path):
    """A model that never says EOS: every sequence runs to max_new_tokens and is counted as truncated."""
    g = TransformersGenerator(*_tiny_with_forced_head(tiny_model_path, "text"), batch_size=4)
    out = g.generate(PROMPTS, SamplingConfig(n=2, temperature=0, max_new_tokens=5), progress=False)
    assert all(t == "aaaaa" for group in out for t in group)
    assert g.stats.sequences == 6 and g.stats.truncated == 6
    assert g.stats.generated_tokens == 6 * 5


def test_prompt_spec_messages_render_like_chat(tiny_generator):
    spec = PromptSpec("sys", "{question}", (("u1", "a1"),))
    text, add_special = tiny_generator.render(spec.messages("Q?"))
    assert "<|im_start|>system\nsys<|im_end|>" in text and "a1" in text and text.endswith("assistant\n")
    assert add_special is False


@pytest.mark.parametrize("kwargs, field", [
    ({"n": 0}, "n"), ({"temperature": -1}, "temperature"), ({"top_p": 0}, "top_p"),
    ({"top_k": -1}, "top_k"), ({"max_new_tokens": 0}, "max_new_tokens"),
])
def test_sampling_validation(kwargs, field):
    with pytest.raises(ValueError, match=field):
        SamplingConfig(**kwargs)


def test_single_string_is_rejected(tiny_generator):
    with pytest.raises(TypeError):
        tiny_generator.generate("one prompt", SamplingConfig())


def test_backend_choice_without_cuda():
    assert choose_backend("auto") == ("vllm" if torch.cuda.is_available() else "transformers")
    with pytest.raises(ValueError, match="backend"):
        choose_backend("tgi")


def test_greedy_matches_model_generate(tiny_model_path):
    """The own decoding loop (shared prefill, rows leaving at EOS) gives what `model.generate` gives."""
    from rzero_lib.engine.models import load_model

    model, tok = load_model(tiny_model_path)
    g = TransformersGenerator(model, tok, batch_size=4)
    ours = g.generate(PROMPTS, SamplingConfig(n=2, temperature=0, max_new_tokens=12), progress=False)
    for prompt, group in zip(PROMPTS, ours, strict=True):
        text, add_special = g.render(prompt)
        ids = tok(text, add_special_tokens=add_special, return_tensors="pt")["input_ids"]
        with torch.inference_mode():
            full = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), do_sample=False,
                                  max_new_tokens=12, eos_token_id=g.eos_ids, pad_token_id=g.pad_id)
        expected = tok.decode([t for t in full[0, ids.shape[1]:].tolist() if t not in g.eos_ids],
                              skip_special_tokens=True)
        assert group == [expected, expected]


def test_top_k_one_is_greedy(tiny_generator):
    greedy = tiny_generator.generate(PROMPTS, SamplingConfig(n=2, temperature=0, max_new_tokens=8), progress=False)
    top1 = tiny_generator.generate(PROMPTS, SamplingConfig(n=2, top_k=1, max_new_tokens=8), progress=False)
    tiny_p = tiny_generator.generate(PROMPTS, SamplingConfig(n=2, top_p=1e-6, max_new_tokens=8), progress=False)
    assert greedy == top1 == tiny_p
