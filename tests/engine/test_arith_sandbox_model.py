"""`builtin:arith-sandbox`: the reduced model, its tokenizer, its pretraining corpus and the build's determinism.

The reduced model (a few pretraining steps) is built once into a temporary cache (the `reduced_sandbox`
fixture), never into the real one.
"""

from __future__ import annotations

import json

from rzero_lib.answers import extract_boxed, parse_challenger_output
from rzero_lib.arithmetic_expressions import arithmetic_answer
from rzero_lib.engine.builtins.arith_sandbox import (
    FORMAT_TOKENS,
    PretrainCorpus,
    build_char_tokenizer,
    build_sandbox_model,
    near_miss,
)
from rzero_lib.engine.transformers_backend import TransformersGenerator
from rzero_lib.sampling import SamplingConfig
from rzero_lib.sandbox_world import sandbox_challenger_prompt, sandbox_solver_prompt


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


def test_corpus_questions_are_oracle_evaluable_and_answers_exact():
    corpus = PretrainCorpus(build_char_tokenizer(), seed=1)
    examples = corpus.batch(400)
    roles = {ex.role for ex in examples}
    assert roles == {"challenger", "solver", "verifier"}
    verdicts = []
    for ex in examples:
        assert arithmetic_answer(ex.problem.question) == ex.problem.answer
        if ex.role == "solver":
            assert ex.completion == f"\\boxed{{{ex.problem.answer}}}<|im_end|>"
        elif ex.role == "verifier":
            # The shown answer is right exactly when the verdict is yes.
            shown = ex.prompt.split("\\boxed{", 1)[1].split("}", 1)[0]
            right = shown == ex.problem.answer
            assert ex.completion == f"\\boxed{{{'yes' if right else 'no'}}}<|im_end|>"
            verdicts.append(right)
        else:
            assert ex.completion == f"<question>{ex.problem.question}</question><|im_end|>"
    # Partial competence by design: the Solver's corpus is dominated by small operands.
    solver_digits = [ex.problem.max_digits for ex in examples if ex.role == "solver"]
    assert sum(d <= 2 for d in solver_digits) > 0.8 * len(solver_digits)
    assert 0.3 < sum(verdicts) / len(verdicts) < 0.7


def test_near_misses_are_wrong_and_close():
    import random

    rng = random.Random(0)
    for answer in [0, 7, -12, 345, 9999, -40000]:
        for _ in range(50):
            wrong = near_miss(rng, answer)
            assert wrong != answer and abs(wrong - answer) < 10 ** len(str(abs(answer)))


def test_build_is_deterministic_for_a_seed(tmp_path):
    from safetensors.torch import load_file

    a = build_sandbox_model(tmp_path / "a", steps=3, seed=5)
    b = build_sandbox_model(tmp_path / "b", steps=3, seed=5)
    c = build_sandbox_model(tmp_path / "c", steps=3, seed=6)
    wa, wb, wc = (load_file(p / "model.safetensors") for p in (a, b, c))
    assert all((wa[k] == wb[k]).all() for k in wa)
    assert any((wa[k] != wc[k]).any() for k in wa)


def test_reduced_model_writes_in_both_formats(reduced_sandbox):

    gen = TransformersGenerator.from_spec(str(reduced_sandbox["path"]), batch_size=64)
    questions = gen.generate([sandbox_challenger_prompt().messages()],
                             SamplingConfig(n=32, temperature=1.0, max_new_tokens=24, seed=0), progress=False)[0]
    parsed = [parse_challenger_output(t) for t in questions]
    assert sum(p.ok for p in parsed) >= 8, questions[:5]
    answers = gen.generate([sandbox_solver_prompt().messages("3 + 4 = ?")],
                           SamplingConfig(n=16, temperature=1.0, max_new_tokens=12, seed=0), progress=False)[0]
    assert sum(extract_boxed(t) is not None for t in answers) >= 8, answers[:5]
