"""General-reasoning benchmarks: MMLU-Pro, SuperGPQA, BBEH (hub), GPQA-diamond and MMLU-STEM (offline copies).

Multiple choice is scored by letter; GPQA's choices are re-ordered with a fixed
per-question permutation (the offline copy always has the gold at A); BBEH's
free-text targets are compared after a light normalisation. Details:
docs/evaluation.md.
"""

from __future__ import annotations

import re

from rzero_lib.evaluation.tasks import (
    LETTERS,
    BenchmarkSpec,
    choice_prompt,
    make_item,
    native_id,
    stable_rng,
)

# The paper reports MMLU-Pro, SuperGPQA and BBEH; GPQA-diamond and MMLU-STEM have offline copies.
GENERAL_BENCHMARKS: tuple[str, ...] = ("mmlu_pro", "supergpqa", "bbeh", "gpqa_diamond", "mmlu_stem")

# The 18 MMLU subjects of the offline `mmlu_stem.jsonl` (3018 test questions).
MMLU_STEM_SUBJECTS = (
    "abstract_algebra", "astronomy", "college_biology", "college_chemistry",
    "college_computer_science", "college_mathematics", "college_physics",
    "computer_security", "conceptual_physics", "electrical_engineering",
    "elementary_mathematics", "high_school_biology", "high_school_chemistry",
    "high_school_computer_science", "high_school_mathematics", "high_school_physics",
    "high_school_statistics", "machine_learning",
)

_GPQA_INSTRUCTION_RE = re.compile(r"\n\s*Please reason step-by-step.*\Z", re.DOTALL)
_GPQA_CHOICES_RE = re.compile(r"\nA\. (.*)\nB\. (.*)\nC\. (.*)\nD\. (.*)\Z", re.DOTALL)


def _norm_gpqa(spec, row, i):
    if "Correct Answer" in row:  # hub schema (Idavidrein/gpqa)
        stem = str(row["Question"]).strip()
        correct = str(row["Correct Answer"]).strip()
        wrong = [str(row[f"Incorrect Answer {k}"]).strip() for k in (1, 2, 3)]
        native = native_id(row, ("Record ID", "id"), i)
    else:  # offline copy: choices inlined, correct one at the letter in `answer`
        text = _GPQA_INSTRUCTION_RE.sub("", str(row["question"]))
        m = _GPQA_CHOICES_RE.search(text)
        if not m:
            raise ValueError("cannot find the inlined choices 'A. ... D. ...'")
        stem = text[: m.start()].strip()
        options = [g.strip() for g in m.groups()]
        k = LETTERS.index(str(row["answer"]).strip().upper())
        correct = options[k]
        wrong = [o for j, o in enumerate(options) if j != k]
        native = native_id(row, ("id",), i)
    # Fixed per-question permutation: the offline copy always has the gold at A.
    options = [correct, *wrong]
    order = list(range(len(options)))
    stable_rng("gpqa", stem).shuffle(order)
    choices = [options[j] for j in order]
    gold = LETTERS[order.index(0)]
    return make_item(spec, native, choice_prompt(stem, choices), gold, choices=choices,
                 domain=row.get("High-level domain"))


def _norm_mmlu(spec, row, i):
    subject = row.get("subject") or row.get("type")
    choices = list(row["choices"])
    answer = row["answer"]
    gold = LETTERS[int(answer)] if not isinstance(answer, str) or answer.isdigit() else answer.strip()
    return make_item(spec, native_id(row, ("id",), i), choice_prompt(row["question"], choices), gold,
                 choices=choices, subject=subject)


def _norm_mmlu_pro(spec, row, i):
    choices = list(row["options"])
    answer = row.get("answer")
    if isinstance(answer, str) and answer.strip().upper() in LETTERS[: len(choices)] and answer.strip():
        gold = answer.strip().upper()
    else:
        gold = LETTERS[int(row["answer_index"])]
    return make_item(spec, native_id(row, ("question_id", "id"), i), choice_prompt(row["question"], choices),
                 gold, choices=choices, category=row.get("category"), src=row.get("src"))


def _norm_supergpqa(spec, row, i):
    choices = list(row["options"])
    gold = str(row.get("answer_letter") or "").strip().upper()
    if not gold:  # fall back on the answer text
        gold = LETTERS[[str(c).strip() for c in choices].index(str(row["answer"]).strip())]
    return make_item(spec, native_id(row, ("uuid", "id"), i), choice_prompt(row["question"], choices), gold,
                 choices=choices, discipline=row.get("discipline"), field=row.get("field"),
                 subfield=row.get("subfield"), difficulty=row.get("difficulty"))


def _norm_bbeh(spec, row, i):
    return make_item(spec, native_id(row, ("id", "idx"), i), row["input"], str(row["target"]),
                 task=row.get("task"), mini=bool(row["mini"]) if row.get("mini") is not None else None)


def _stem_subjects(rows: list[dict]) -> list[dict]:
    keep = set(MMLU_STEM_SUBJECTS)
    return [r for r in rows if (r.get("subject") or r.get("type")) in keep]


SPECS = [
    BenchmarkSpec(
        "mmlu_pro", "general", "choice", "mmlu_pro.jsonl", ("question",), ("answer", "answer_index"),
        hub_id="TIGER-Lab/MMLU-Pro", hub_split="test", max_new_tokens=2048,
        description="MMLU-Pro test, up to 10 options",
        normalise=_norm_mmlu_pro,
    ),
    BenchmarkSpec(
        "supergpqa", "general", "choice", "supergpqa.jsonl", ("question",), ("answer_letter",),
        hub_id="m-a-p/SuperGPQA", hub_split="train", max_new_tokens=2048,
        description="SuperGPQA (285 graduate disciplines)",
        normalise=_norm_supergpqa,
    ),
    BenchmarkSpec(
        "bbeh", "general", "text", "bbeh.jsonl", ("input",), ("target",),
        hub_id="BBEH/bbeh", hub_split="train", max_new_tokens=4096,
        description="BIG-Bench Extra Hard, free-text targets",
        normalise=_norm_bbeh,
    ),
    BenchmarkSpec(
        "gpqa_diamond", "general", "choice", "gpqa.jsonl", ("question", "Question"),
        ("answer", "Correct Answer"), hub_id="Idavidrein/gpqa", hub_config="gpqa_diamond",
        hub_split="train", max_new_tokens=2048,
        description="GPQA diamond (198); gated on the hub",
        normalise=_norm_gpqa,
    ),
    BenchmarkSpec(
        "mmlu_stem", "general", "choice", "mmlu_stem.jsonl", ("question",), ("answer",),
        hub_id="cais/mmlu", hub_config="all", hub_split="test", max_new_tokens=2048,
        description="MMLU STEM subjects (18 subjects, 3018 questions)",
        normalise=_norm_mmlu, select_rows=_stem_subjects,
    ),
]
