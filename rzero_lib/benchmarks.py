"""Former home of the benchmarks, kept as thin re-exports of `rzero_lib.evaluation` (nothing in the library
imports this module)."""

from rzero_lib.evaluation.registry import (
    BENCHMARKS,
    GENERAL_BENCHMARKS,
    MATH_BENCHMARKS,
    MMLU_STEM_SUBJECTS,
    OFFLINE_BENCHMARKS,
    get_spec,
    load_benchmark,
)
from rzero_lib.evaluation.scoring import (
    Score,
    extract_answer,
    gold_response,
    score_response,
    score_responses,
    score_responses_detailed,
)
from rzero_lib.evaluation.tasks import (
    ANSWER_TYPES,
    ENV_DATA_DIR,
    BenchmarkItem,
    BenchmarkItems,
    BenchmarkSpec,
    subsample,
)

__all__ = [
    "ANSWER_TYPES", "BENCHMARKS", "ENV_DATA_DIR", "GENERAL_BENCHMARKS", "MATH_BENCHMARKS",
    "MMLU_STEM_SUBJECTS", "OFFLINE_BENCHMARKS", "BenchmarkItem", "BenchmarkItems", "BenchmarkSpec",
    "Score", "extract_answer", "get_spec", "gold_response", "load_benchmark", "score_response",
    "score_responses", "score_responses_detailed", "subsample",
]
