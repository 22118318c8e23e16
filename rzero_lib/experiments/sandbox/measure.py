"""Measuring a model on sandbox questions: the base Solver's sampled accuracy on the questions a run kept
(the paper's "base model acc" column), and the difficulty of each item of a benchmark."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from rzero_lib.answers import extract_boxed
from rzero_lib.domains import get_domain
from rzero_lib.engine.transformers_backend import TransformersGenerator
from rzero_lib.evaluation.registry import load_benchmark
from rzero_lib.oracle import arithmetic_answer
from rzero_lib.prompts import PromptSpec, solver_messages
from rzero_lib.sampling import SamplingConfig

SAMPLED_COLUMNS = ["question", "oracle_answer", "answers", "samples", "correct", "accuracy"]


def matches_oracle(answer, oracle: str | None) -> bool:
    """An answer equals the exact oracle's (the sandbox's answers are integers: string equality, where the
    report's label scoring uses math equivalence)."""
    return oracle is not None and answer is not None and str(answer).strip() == oracle


def benchmark_difficulty(benchmark: str) -> pd.DataFrame:
    """Every item of an arithmetic benchmark with its difficulty (`Domain.difficulty`: steps b for the
    sandbox's sets): columns id, question, difficulty."""
    rule = get_domain("arithmetic").difficulty
    items = load_benchmark(benchmark)
    return pd.DataFrame({"id": [it.id for it in items], "question": [it.prompt for it in items],
                         "difficulty": [rule(it.prompt) for it in items]})


def voting_sampling(voting_params, samples: int, seed: int) -> SamplingConfig:
    """The voting stage's sampling settings (temperature, top-p, top-k, length) with `samples` answers."""
    v = voting_params
    return SamplingConfig(n=samples, temperature=v.temperature, top_p=v.top_p, top_k=v.top_k,
                          max_new_tokens=v.max_new_tokens, seed=seed)


def sampled_accuracy(spec: str, prompt: PromptSpec, questions: Sequence[str], sampling: SamplingConfig, *,
                     batch_size: int = 256) -> pd.DataFrame:
    """Model `spec` answers each distinct question `sampling.n` times; each answer is scored against the exact
    oracle (`rzero_lib.oracle.arithmetic_answer`). One row per distinct question (SAMPLED_COLUMNS);
    `accuracy` is NaN where the oracle has no answer."""
    unique = list(dict.fromkeys(str(q) for q in questions))
    if not unique:
        return pd.DataFrame(columns=SAMPLED_COLUMNS)
    gen = TransformersGenerator.from_spec(spec, batch_size=batch_size)
    try:
        outputs = gen.generate([solver_messages(prompt, q) for q in unique], sampling, progress=False)
    finally:
        gen.close()
    rows = []
    for q, group in zip(unique, outputs):
        oracle = arithmetic_answer(q)
        answers = [extract_boxed(t) for t in group]
        correct = sum(matches_oracle(a, oracle) for a in answers)
        rows.append({"question": q, "oracle_answer": oracle, "answers": answers, "samples": len(answers),
                     "correct": correct,
                     "accuracy": correct / len(answers) if oracle is not None and answers else float("nan")})
    return pd.DataFrame(rows, columns=SAMPLED_COLUMNS)
