"""The paper's seven math benchmarks: AMC23, Minerva, MATH-500, GSM8K, OlympiadBench, AIME25, AIME24.

Per-benchmark gold decisions (gsm8k's `####`, integer golds, Minerva's boxed
solution, OlympiadBench's multi-answer and tolerance items): docs/evaluation.md.
"""

from __future__ import annotations

from rzero_lib.answers import extract_boxed
from rzero_lib.evaluation.answer_forms import number_gold, strip_dollars
from rzero_lib.evaluation.tasks import BenchmarkSpec, first_field, make_item, native_id, sampled

# The paper's math table, in its column order.
MATH_BENCHMARKS: tuple[str, ...] = (
    "amc23", "minerva_math", "math500", "gsm8k", "olympiadbench", "aime25", "aime24",
)


def _norm_gsm8k(spec, row, i):
    raw = str(row["answer"])
    gold = number_gold(raw.split("####")[-1]) if "####" in raw else number_gold(raw)
    return make_item(spec, native_id(row, ("idx", "id"), i), row["question"], gold)


def _norm_simple_math(spec, row, i):
    question = first_field(row, spec.question_fields)
    answer = first_field(row, ("answer",))
    if answer is None:
        answer = extract_boxed(str(first_field(row, ("solution",), "")))
    if answer is None:
        raise ValueError("no answer field and no \\boxed{} in the solution")
    gold = number_gold(answer) if spec.answer_type == "number" else strip_dollars(str(answer))
    native = native_id(row, ("unique_id", "id", "idx"), i)
    meta = {k: row.get(k) for k in ("subject", "level", "type", "url") if row.get(k) not in (None, "")}
    return make_item(spec, native, question, gold, raw_answer=answer, **meta)


def _norm_minerva(spec, row, i):
    question = first_field(row, spec.question_fields)
    answer = first_field(row, ("answer",))
    if answer is None:
        answer = extract_boxed(str(row.get("solution", "")))
    if answer is None:
        raise ValueError("no answer field and no \\boxed{} in the solution")
    return make_item(spec, native_id(row, ("idx", "id"), i), question, strip_dollars(str(answer)),
                 course=row.get("type"))


def _norm_olympiad(spec, row, i):
    question = str(first_field(row, spec.question_fields))
    context = row.get("context")
    if context:
        question = f"{str(context).strip()}\n\n{question}"
    final = row.get("final_answer")
    if final is None:
        raise ValueError("no final_answer")
    parts = list(final) if isinstance(final, list | tuple) else [final]
    gold = ", ".join(strip_dollars(str(p)) for p in parts if str(p).strip())
    multi = bool(row.get("is_multiple_answer")) or len(parts) > 1
    tol = row.get("error")
    try:
        tol = float(tol) if tol not in (None, "") else None
    except ValueError:
        tol = None
    return make_item(spec, native_id(row, ("id",), i), question, gold, multiple_answers=multi,
                 tolerance=tol, unit=row.get("unit") or None, olympiad_answer_type=row.get("answer_type"),
                 subfield=row.get("subfield"))


SPECS = [
    BenchmarkSpec(
        "amc23", "math", "number", "amc23.jsonl", ("problem", "question"), ("answer",),
        hub_id="math-ai/amc23", hub_split="test", max_new_tokens=4096,
        description="AMC 2023, 40 problems, numeric answers", **sampled(),
        normalise=_norm_simple_math,
    ),
    BenchmarkSpec(
        "minerva_math", "math", "math", "minerva_math.jsonl", ("problem", "question"),
        ("answer", "solution"), hub_id="math-ai/minervamath", hub_split="test",
        max_new_tokens=4096, description="Minerva OCW problems (272), answer boxed in the solution",
        normalise=_norm_minerva,
    ),
    BenchmarkSpec(
        "math500", "math", "math", "math500.jsonl", ("problem",), ("answer",),
        hub_id="HuggingFaceH4/MATH-500", hub_split="test", max_new_tokens=4096,
        description="MATH-500 subset of MATH",
        normalise=_norm_simple_math,
    ),
    BenchmarkSpec(
        "gsm8k", "math", "number", "gsm8k.jsonl", ("question",), ("answer",),
        hub_id="openai/gsm8k", hub_config="main", hub_split="test", max_new_tokens=2048,
        description="GSM8K test (1319), gold after ####",
        normalise=_norm_gsm8k,
    ),
    BenchmarkSpec(
        "olympiadbench", "math", "math", "olympiadbench.jsonl", ("question",), ("final_answer",),
        hub_id="Hothan/OlympiadBench", hub_config="OE_TO_maths_en_COMP", hub_split="train",
        max_new_tokens=4096, description="OlympiadBench, English text-only math (675)",
        normalise=_norm_olympiad,
    ),
    BenchmarkSpec(
        "aime25", "math", "number", "aime25.jsonl", ("problem", "question"), ("answer",),
        hub_id="math-ai/aime25", hub_split="test", max_new_tokens=8192,
        description="AIME 2025 (I and II)", **sampled(),
        normalise=_norm_simple_math,
    ),
    BenchmarkSpec(
        "aime24", "math", "number", "aime24.jsonl", ("problem", "question"), ("answer",),
        hub_id="HuggingFaceH4/aime_2024", hub_split="train", max_new_tokens=8192,
        description="AIME 2024 (I and II)", **sampled(),
        normalise=_norm_simple_math,
    ),
]
