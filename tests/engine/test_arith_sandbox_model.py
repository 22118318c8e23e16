"""`builtin:arith-sandbox`: the reduced model, its tokenizer, its pretraining corpus and the build's determinism.

The reduced model (a few pretraining steps) is built once into a temporary cache (the `reduced_sandbox`
fixture), never into the real one.
"""

from __future__ import annotations

import json

import pytest

from rzero_lib.answers import extract_boxed, parse_challenger_output
from rzero_lib.arithmetic_expressions import arithmetic_answer
from rzero_lib.engine.builtins.arith_sandbox import (
    FORMAT_TOKENS,
    PretrainCorpus,
    build_char_tokenizer,
    build_sandbox_model,
    build_small_sandbox_model,
)
from rzero_lib.engine.transformers_backend import TransformersGenerator
from rzero_lib.sampling import SamplingConfig
from rzero_lib.sandbox_world import (
    DEFAULT_WORLD,
    LEADS_WORLD,
    REFUSAL,
    V3_WORLD,
    parse_question,
    sandbox_challenger_prompt,
    sandbox_solver_prompt,
)


def test_reduced_model_is_a_complete_hf_folder(reduced_sandbox):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = reduced_sandbox["path"]
    assert str(path).startswith(str(reduced_sandbox["cache"]))  # not the real cache
    record = json.loads((path / "sandbox_pretraining.json").read_text())
    assert record["settings"]["steps"] == reduced_sandbox["steps"]
    assert 0.9e6 < record["parameters"] < 1.1e6  # about 1M parameters
    model = AutoModelForCausalLM.from_pretrained(path)
    tok = AutoTokenizer.from_pretrained(path)
    assert model.config.model_type == "qwen3"
    assert tok.eos_token == "<|im_end|>" and tok.pad_token_id is not None


def test_tokenizer_round_trip_and_chat_template():
    tok = build_char_tokenizer()
    corpus = PretrainCorpus(tok, seed=3)
    texts = [ex.prompt + ex.completion for ex in corpus.batch(300)]
    texts += ["What is 47 + 38?", "Line one\nline two: {x} [y] ~!@#$%^&*()_+|", "\\boxed{-12} \\boxed 7"]
    for text in texts:
        ids = tok(text, add_special_tokens=False)["input_ids"]
        assert tok.decode(ids) == text
    # One token per character, plus the format strings and chat markers as single tokens.
    assert len(tok("12 + 7 = ?", add_special_tokens=False)["input_ids"]) == len("12 + 7 = ?")
    for single in FORMAT_TOKENS + ["<|user|>", "<|assistant|>", "<|im_end|>"]:
        assert len(tok(single, add_special_tokens=False)["input_ids"]) == 1
    # The chat template renders the run's prompts exactly as the corpus does.
    rendered = tok.apply_chat_template(sandbox_solver_prompt().messages("3 + 4 = ?"), tokenize=False,
                                       add_generation_prompt=True)
    assert rendered == "<|user|>3 + 4 = ?<|im_end|><|assistant|>"
    assert corpus.challenger_prompt == tok.apply_chat_template(
        sandbox_challenger_prompt().messages(), tokenize=False, add_generation_prompt=True)
    # Special tokens are dropped by skip_special_tokens; the format tokens are kept.
    ids = tok("<question>1 + 2 = ?</question><|im_end|>", add_special_tokens=False)["input_ids"]
    assert tok.decode(ids, skip_special_tokens=True) == "<question>1 + 2 = ?</question>"


@pytest.mark.parametrize("world", [DEFAULT_WORLD, V3_WORLD, LEADS_WORLD], ids=["default", "v3", "leads"])
def test_corpus_questions_are_oracle_evaluable_and_solutions_worked(world):
    corpus = PretrainCorpus(build_char_tokenizer(), seed=1, world=world)
    examples = corpus.batch(600)
    assert {ex.role for ex in examples} == {"challenger", "solver"}
    exact = careless = refused = 0
    leads = set()
    for ex in examples:
        assert arithmetic_answer(ex.problem.question) == ex.problem.answer
        if ex.role == "challenger":
            assert ex.completion == f"<question>{ex.problem.question}</question><|im_end|>"
            continue
        question = ex.prompt.split("<|user|>", 1)[1].split("<|im_end|>", 1)[0]
        if ex.completion == f"{REFUSAL}<|im_end|>":
            assert parse_question(question) is None  # only malformed questions are refused
            refused += 1
            continue
        c, a, b = parse_question(question)
        lead = ex.completion[0] if world.careful_leads else ""
        cells = ex.completion[len(lead):].split(" \\boxed{")[0].split()
        assert len(cells) in (b, b - 1) and all(len(x) == 3 for x in cells)
        assert b >= world.trap_onset or len(cells) == b  # no early stops below the misconception's onset
        if world.careful_leads:  # the careless method always opens with its own lead, the careful one with several
            assert (lead == world.careless_lead) == (len(cells) == b - 1)
            leads.add(lead)
        careless += len(cells) == b - 1
        exact += extract_boxed(ex.completion) == ex.problem.answer
    solver = sum(ex.role == "solver" for ex in examples)
    # noisy execution of a skill that exists at every length: mostly right, some early stops, a few refusals
    assert 0.3 * solver < exact < 0.9 * solver and careless > 0.1 * solver and 0 < refused < 0.12 * solver
    assert leads == (set(world.careful_leads + world.careless_lead) if world.careful_leads else set())
    # the base Challenger writes mostly short questions
    steps = [ex.problem.max_digits for ex in examples if ex.role == "challenger"]
    assert sum(b <= 3 for b in steps) > 0.6 * len(steps)


def test_verifier_corpus_judges_the_corpus_own_solutions():
    """`builtin:arith-sandbox-verifier`'s extra conversations: a question, one of the corpus's own worked solutions
    (slips, early stops, leads) rendered exactly as the Verification stage renders its prompt, and the true verdict."""
    from rzero_lib.answers import extract_boxed
    from rzero_lib.engine.builtins.arith_sandbox import VERIFIER_SHARE
    from rzero_lib.prompts import render_prompt
    from rzero_lib.sandbox_world import SANDBOX_VERIFIER_SYSTEM, SANDBOX_VERIFIER_USER
    from rzero_lib.verifier import parse_verdict, verification_messages

    tok = build_char_tokenizer()
    examples = PretrainCorpus(tok, seed=2, verifier_share=VERIFIER_SHARE).batch(800)
    verifier = [ex for ex in examples if ex.role == "verifier"]
    assert 0.18 * len(examples) < len(verifier) < 0.32 * len(examples)
    verdicts = []
    for ex in verifier:
        question = ex.problem.question
        user = ex.prompt.split("<|user|>", 1)[1].split("<|im_end|>", 1)[0]
        assert user.startswith(question + " ")
        solution = user[len(question) + 1:]
        assert ex.prompt == render_prompt(tok, verification_messages(question, solution, system=SANDBOX_VERIFIER_SYSTEM,
                                                                     user=SANDBOX_VERIFIER_USER))
        verdict = parse_verdict(ex.completion)
        assert verdict == (extract_boxed(solution) == ex.problem.answer)
        verdicts.append(verdict)
    assert 0.3 < sum(verdicts) / len(verdicts) < 0.7  # both verdicts, neither rare
    assert not any(ex.role == "verifier" for ex in PretrainCorpus(tok, seed=2).batch(300))
    with pytest.raises(ValueError, match="verifier_share"):
        PretrainCorpus(tok, verifier_share=1.0)


@pytest.mark.parametrize("world, sha256", [
    (DEFAULT_WORLD, "85850adc2913b647d411d7015e18c96a2a3e2281162c47fce462787064aa791e"),
    (V3_WORLD, "c399948e4b25c6f764112cc4b7f8b429062e3ba173fe4ab8bdf03f1e8a2ec07b"),
], ids=["default", "v3"])
def test_corpus_is_the_one_its_builtin_version_was_built_from(world, sha256):
    """The cached `builtin:arith-sandbox` (version "5") was pretrained on exactly the default world's stream, the
    earlier measured builtin v3 on V3_WORLD's: a change to a world, its draws or the corpus must come with a new
    builtin version (rzero_lib/engine/builtins/__init__.py)."""
    import hashlib

    from rzero_lib.engine.builtins import BUILTINS

    digest = hashlib.sha256()
    for ex in PretrainCorpus(build_char_tokenizer(), world=world).batch(3000):
        digest.update((ex.role + ex.prompt + "\x00" + ex.completion + "\x01").encode())
    assert digest.hexdigest() == sha256
    assert BUILTINS["arith-sandbox"].version == "5"  # bump it together with the default digest


def test_build_is_deterministic_for_a_seed(tmp_path):
    from safetensors.torch import load_file

    a = build_sandbox_model(tmp_path / "a", steps=3, seed=5)
    b = build_sandbox_model(tmp_path / "b", steps=3, seed=5)
    c = build_sandbox_model(tmp_path / "c", steps=3, seed=6)
    wa, wb, wc = (load_file(p / "model.safetensors") for p in (a, b, c))
    assert all((wa[k] == wb[k]).all() for k in wa)
    assert any((wa[k] != wc[k]).any() for k in wa)


def test_small_model_is_the_same_recipe_at_half_the_parameters(tmp_path, reduced_sandbox):
    from transformers import AutoModelForCausalLM

    from rzero_lib.engine.builtins import BUILTINS

    path = build_small_sandbox_model(tmp_path / "small", steps=2)
    small = json.loads((path / "sandbox_pretraining.json").read_text())
    large = json.loads((reduced_sandbox["path"] / "sandbox_pretraining.json").read_text())
    assert 0.4 < small["parameters"] / large["parameters"] < 0.6
    assert small["model_shape"]["hidden_size"] < large["model_shape"]["hidden_size"]
    assert small["model_shape"]["num_hidden_layers"] == large["model_shape"]["num_hidden_layers"]
    assert small["world"] == large["world"] and small["prompts"] == large["prompts"]
    assert {k: v for k, v in small["settings"].items() if k != "steps"} == \
        {k: v for k, v in large["settings"].items() if k != "steps"}
    model = AutoModelForCausalLM.from_pretrained(path)
    assert sum(p.numel() for p in model.parameters()) == small["parameters"]
    assert BUILTINS["arith-sandbox-small"].build.__name__ == "build_small_sandbox_model"


def test_reduced_model_writes_in_both_formats(reduced_sandbox):

    gen = TransformersGenerator.from_spec(str(reduced_sandbox["path"]), batch_size=64)
    questions = gen.generate([sandbox_challenger_prompt().messages()],
                             SamplingConfig(n=32, temperature=1.0, max_new_tokens=24, seed=0), progress=False)[0]
    parsed = [parse_challenger_output(t) for t in questions]
    assert sum(p.ok for p in parsed) >= 8, questions[:5]
    # the runs' Solver budget (voting.max_new_tokens: 56): a 60-step model still rambles on past two cells
    answers = gen.generate([sandbox_solver_prompt().messages("37 + 7 * 2 = ?")],
                           SamplingConfig(n=16, temperature=1.0, max_new_tokens=56, seed=0), progress=False)[0]
    assert sum(extract_boxed(t) is not None for t in answers) >= 8, answers[:5]
