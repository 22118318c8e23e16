"""Evaluation benchmarks: loaders that normalise each set, and response scoring.

What it does
- `BENCHMARKS`: one `BenchmarkSpec` per benchmark (offline file name, question /
  answer fields, Hugging Face dataset id / config / split / revision, answer
  type, default `max_new_tokens`, number of samples and temperature), so the
  evaluation stage reads its per-benchmark defaults from one place.
  `MATH_BENCHMARKS` lists the paper's seven math sets in the paper's column
  order; `GENERAL_BENCHMARKS` the general-reasoning sets.
- `load_benchmark(name, data_dir=None, limit=None, seed=0)`: normalised
  `BenchmarkItem`s (`id`, `benchmark`, `prompt`, `gold`, `answer_type`,
  `choices`, `metadata`). Rows are read from `<data_dir>/<file>` (the argument,
  else the `RZERO_BENCHMARKS_DIR` environment variable); when no such file
  exists the set is loaded from the Hugging Face hub. A local file may be in
  either the offline-copy schema or the hub schema: one normaliser per
  benchmark accepts both, so the code that reads hub rows is the code the
  tests run on hand-written hub-schema fixtures. `limit` takes a subsample
  that depends only on `seed` and the item ids (not on the file's line order).
- `extract_answer`, `score_response`, `score_responses`: scoring of model
  responses. Free-form math: the last `\\boxed{}` compared with
  `rzero_lib.answers.equivalent` (math-verify in worker processes).
  Numbers: exact rational comparison when both sides parse as a plain
  number ("1,000" == "1000", "18.0" == "18", "\\frac{3}{4}" == "0.75"), else
  math-verify. Multiple choice: the boxed letter, else an explicit "the answer
  is (C)" / "Answer: C", else a standalone letter on the last line.
  `score_responses` sends every math-verify pair of a batch at once through
  `rzero_lib.answers.equivalent_many`.

Per-benchmark gold decisions
- gsm8k: the number after `####`, thousands separators removed.
- aime24 / aime25 / amc23: integers as plain strings ("025" -> "25",
  27.0 -> "27"); scored as numbers.
- math500: the `answer` field as is (math-verify handles `\\text{}`, `10,\\!080`,
  intervals, `x \\in [...]`).
- minerva_math: the last boxed answer of `solution` (the hub copy has an
  `answer` field, used when present). E-notation ("4.5e33") is written as
  `4.5\\times 10^{33}` on both sides before comparison, because math-verify
  does not read e-notation.
- olympiadbench: `final_answer` (a list) joined with ", ", `$` removed. A
  multi-answer item (`is_multiple_answer`) is correct when the response's box
  holds all the answers in any order (as a set in math-verify, or, failing
  that, as a one-to-one matching of its comma-separated parts); several boxes
  in the last paragraph are joined for such items. The one item with an
  `error` tolerance is compared with that absolute tolerance.
- gpqa_diamond: the offline copy inlines the choices and always puts the
  correct one at A; the loader parses the choices out, drops the copy's own
  answer instruction, and re-orders the choices with a fixed permutation per
  question (seeded by the question text), so the gold letter is spread over
  A-D. Hub rows (`Correct Answer`, `Incorrect Answer 1..3`) get the same
  treatment.
- mmlu_stem: the 18 STEM subjects of MMLU (3018 test questions); gold is the
  answer index as a letter. mmlu_pro: `answer` letter (or `answer_index`).
  supergpqa: `answer_letter`. bbeh: free-text `target`, scored as "text".

Simplifications
- Math and number answers are read from `\\boxed{}` only (the Solver prompt
  asks for one); a response without a box is wrong.
- "text" answers (BBEH) are compared after a light normalisation (case,
  `\\text{}`, quotes, surrounding parentheses, whitespace around commas) or as
  numbers; this approximates, not reproduces, BBEH's official fuzzy matcher.
- Hub revisions are "main": the commits could not be verified from this
  (offline) machine. Set `BenchmarkSpec.hub_revision` to pin one.
- The sampling temperature for the 32-sample AMC/AIME scores is not stated in
  the paper; 0.6 / top-p 0.95 is a common choice for such evaluations.

This module imports neither torch nor transformers; `datasets` is imported
only when a set is loaded from the hub.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

from rzero_lib.answers import (
    MAX_ANSWER_CHARS,
    MAX_TEXT_CHARS,
    default_checker,
    equivalent_many,
    extract_boxed,
)

logger = logging.getLogger(__name__)

ENV_DATA_DIR = "RZERO_BENCHMARKS_DIR"
ANSWER_TYPES = ("math", "number", "choice", "text")
LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"

# The 18 MMLU subjects of the offline `mmlu_stem.jsonl` (3018 test questions).
MMLU_STEM_SUBJECTS = (
    "abstract_algebra", "astronomy", "college_biology", "college_chemistry",
    "college_computer_science", "college_mathematics", "college_physics",
    "computer_security", "conceptual_physics", "electrical_engineering",
    "elementary_mathematics", "high_school_biology", "high_school_chemistry",
    "high_school_computer_science", "high_school_mathematics", "high_school_physics",
    "high_school_statistics", "machine_learning",
)


# --------------------------------------------------------------------------
# Specs
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class BenchmarkSpec:
    """Where a benchmark lives, how its rows read, and how it is evaluated by default."""

    name: str
    category: str  # "math" | "general" | "builtin"
    answer_type: str  # one of ANSWER_TYPES
    offline_file: str | None  # file name inside the benchmarks directory
    question_fields: tuple[str, ...]  # first present one is the question
    answer_fields: tuple[str, ...]  # first present one is the gold (see the normaliser)
    hub_id: str | None = None
    hub_config: str | None = None
    hub_split: str = "test"
    hub_revision: str = "main"  # unverified offline; pin a commit here to freeze the data
    max_new_tokens: int = 4096
    num_samples: int = 1  # 1 = greedy; AMC / AIME: mean over 32 samples as in the paper
    temperature: float = 0.0
    top_p: float = 1.0
    description: str = ""

    @property
    def greedy(self) -> bool:
        return self.num_samples == 1 and self.temperature == 0.0


def _sampled(**kw) -> dict:
    # AMC / AIME: accuracy is the mean over 32 samples (paper). Temperature and
    # top-p are not given in the paper: 0.6 / 0.95 is a common setting.
    return dict(num_samples=32, temperature=0.6, top_p=0.95, **kw)


_SPECS = [
    BenchmarkSpec(
        "amc23", "math", "number", "amc23.jsonl", ("problem", "question"), ("answer",),
        hub_id="math-ai/amc23", hub_split="test", max_new_tokens=4096,
        description="AMC 2023, 40 problems, numeric answers", **_sampled(),
    ),
    BenchmarkSpec(
        "minerva_math", "math", "math", "minerva_math.jsonl", ("problem", "question"),
        ("answer", "solution"), hub_id="math-ai/minervamath", hub_split="test",
        max_new_tokens=4096, description="Minerva OCW problems (272), answer boxed in the solution",
    ),
    BenchmarkSpec(
        "math500", "math", "math", "math500.jsonl", ("problem",), ("answer",),
        hub_id="HuggingFaceH4/MATH-500", hub_split="test", max_new_tokens=4096,
        description="MATH-500 subset of MATH",
    ),
    BenchmarkSpec(
        "gsm8k", "math", "number", "gsm8k.jsonl", ("question",), ("answer",),
        hub_id="openai/gsm8k", hub_config="main", hub_split="test", max_new_tokens=2048,
        description="GSM8K test (1319), gold after ####",
    ),
    BenchmarkSpec(
        "olympiadbench", "math", "math", "olympiadbench.jsonl", ("question",), ("final_answer",),
        hub_id="Hothan/OlympiadBench", hub_config="OE_TO_maths_en_COMP", hub_split="train",
        max_new_tokens=4096, description="OlympiadBench, English text-only math (675)",
    ),
    BenchmarkSpec(
        "aime25", "math", "number", "aime25.jsonl", ("problem", "question"), ("answer",),
        hub_id="math-ai/aime25", hub_split="test", max_new_tokens=8192,
        description="AIME 2025 (I and II)", **_sampled(),
    ),
    BenchmarkSpec(
        "aime24", "math", "number", "aime24.jsonl", ("problem", "question"), ("answer",),
        hub_id="HuggingFaceH4/aime_2024", hub_split="train", max_new_tokens=8192,
        description="AIME 2024 (I and II)", **_sampled(),
    ),
    BenchmarkSpec(
        "mmlu_pro", "general", "choice", "mmlu_pro.jsonl", ("question",), ("answer", "answer_index"),
        hub_id="TIGER-Lab/MMLU-Pro", hub_split="test", max_new_tokens=2048,
        description="MMLU-Pro test, up to 10 options",
    ),
    BenchmarkSpec(
        "supergpqa", "general", "choice", "supergpqa.jsonl", ("question",), ("answer_letter",),
        hub_id="m-a-p/SuperGPQA", hub_split="train", max_new_tokens=2048,
        description="SuperGPQA (285 graduate disciplines)",
    ),
    BenchmarkSpec(
        "bbeh", "general", "text", "bbeh.jsonl", ("input",), ("target",),
        hub_id="BBEH/bbeh", hub_split="train", max_new_tokens=4096,
        description="BIG-Bench Extra Hard, free-text targets",
    ),
    BenchmarkSpec(
        "gpqa_diamond", "general", "choice", "gpqa.jsonl", ("question", "Question"),
        ("answer", "Correct Answer"), hub_id="Idavidrein/gpqa", hub_config="gpqa_diamond",
        hub_split="train", max_new_tokens=2048,
        description="GPQA diamond (198); gated on the hub",
    ),
    BenchmarkSpec(
        "mmlu_stem", "general", "choice", "mmlu_stem.jsonl", ("question",), ("answer",),
        hub_id="cais/mmlu", hub_config="all", hub_split="test", max_new_tokens=2048,
        description="MMLU STEM subjects (18 subjects, 3018 questions)",
    ),
    BenchmarkSpec(
        "arithmetic", "builtin", "number", None, ("question",), ("answer",),
        max_new_tokens=1024,
        description="built-in arithmetic set: rzero_lib.arithmetic.builtin_eval_set(n=100, seed=1234)",
    ),
    BenchmarkSpec(
        "arith_sandbox", "builtin", "number", None, ("question",), ("answer",),
        max_new_tokens=16,
        description="arithmetic sandbox held-out set: rzero_lib.sandbox.sandbox_heldout_problems() "
                    "(480 items, + - * by largest-operand digits 1-4)",
    ),
    BenchmarkSpec(
        "arith_sandbox_dev", "builtin", "number", None, ("question",), ("answer",),
        max_new_tokens=16,
        description="arithmetic sandbox development set, shaped like arith_sandbox with another seed: "
                    "rzero_lib.sandbox.sandbox_dev_problems() (for tuning; arith_sandbox is for reporting)",
    ),
]

BENCHMARKS: dict[str, BenchmarkSpec] = {s.name: s for s in _SPECS}

# The paper's math table, in its column order.
MATH_BENCHMARKS: tuple[str, ...] = (
    "amc23", "minerva_math", "math500", "gsm8k", "olympiadbench", "aime25", "aime24",
)
# The paper reports MMLU-Pro, SuperGPQA and BBEH; GPQA-diamond and MMLU-STEM have offline copies.
GENERAL_BENCHMARKS: tuple[str, ...] = ("mmlu_pro", "supergpqa", "bbeh", "gpqa_diamond", "mmlu_stem")
OFFLINE_BENCHMARKS: tuple[str, ...] = tuple(
    n for n in (*MATH_BENCHMARKS, "gpqa_diamond", "mmlu_stem") if BENCHMARKS[n].offline_file
)


def get_spec(name: str) -> BenchmarkSpec:
    """The spec of `name`, or ValueError listing the known names."""
    try:
        return BENCHMARKS[name]
    except KeyError:
        raise ValueError(
            f"unknown benchmark {name!r}; known benchmarks: {', '.join(sorted(BENCHMARKS))}"
        ) from None


# --------------------------------------------------------------------------
# Items
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class BenchmarkItem:
    """One normalised evaluation question."""

    id: str  # stable: "<benchmark>-<native id or row index>"
    benchmark: str
    prompt: str  # the question the Solver sees (choices inlined for multiple choice)
    gold: str  # "C" for choice, "27" for number, LaTeX for math, text for BBEH
    answer_type: str  # one of ANSWER_TYPES
    choices: tuple[str, ...] | None = None
    metadata: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def letters(self) -> str:
        """The option letters of a multiple-choice item ("ABCD")."""
        return LETTERS[: len(self.choices)] if self.choices else ""

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["choices"] = list(self.choices) if self.choices else None
        return d


class BenchmarkItems(list):
    """A list of `BenchmarkItem`s that also says where it came from and how it was subsampled."""

    def __init__(self, items, *, benchmark: str, source: str, total: int,
                 limit: int | None, seed: int) -> None:
        super().__init__(items)
        self.benchmark = benchmark
        self.source = source  # file path or "hub:<id>[/<config>]@<revision>:<split>"
        self.total = total  # items before subsampling
        self.limit = limit
        self.seed = seed

    @property
    def subsampled(self) -> bool:
        return len(self) < self.total

    def describe(self) -> str:
        what = (f"{len(self)} of {self.total} items (limit={self.limit}, seed={self.seed})"
                if self.subsampled else f"all {self.total} items")
        return f"{self.benchmark}: {what} from {self.source}"


# --------------------------------------------------------------------------
# Reading rows
# --------------------------------------------------------------------------


def _read_rows(path: Path) -> list[dict]:
    if path.suffix == ".parquet":
        import pandas as pd

        return pd.read_parquet(path).to_dict("records")
    rows = []
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise ValueError(f"{path}:{lineno}: not a JSON line ({e.msg})") from None
    return rows


def _local_candidates(spec: BenchmarkSpec, data_dir: str | os.PathLike) -> list[Path]:
    stem = Path(spec.offline_file).stem
    base = Path(data_dir)
    names = [spec.offline_file, f"{stem}.jsonl", f"{stem}.parquet", f"{spec.name}.jsonl",
             f"{spec.name}.parquet"]
    out: list[Path] = []
    for n in names:
        p = base / n
        if p not in out:
            out.append(p)
    return out


def _hub_source(spec: BenchmarkSpec) -> str:
    cfg = f"/{spec.hub_config}" if spec.hub_config else ""
    return f"hub:{spec.hub_id}{cfg}@{spec.hub_revision}:{spec.hub_split}"


def _load_hub_rows(spec: BenchmarkSpec) -> list[dict]:
    import datasets  # lazy: only hub loading needs it

    ds = datasets.load_dataset(spec.hub_id, spec.hub_config, split=spec.hub_split,
                               revision=spec.hub_revision)
    return [dict(r) for r in ds]


def _load_rows(spec: BenchmarkSpec, data_dir: str | os.PathLike | None) -> tuple[list[dict], str]:
    dirs: list[str] = []
    if data_dir is not None:
        dirs.append(str(data_dir))
    env = os.environ.get(ENV_DATA_DIR)
    if env and env not in dirs:
        dirs.append(env)
    looked: list[Path] = []
    for d in dirs:
        for p in _local_candidates(spec, d):
            looked.append(p)
            if p.is_file():
                return _read_rows(p), str(p)
    if spec.hub_id is None:
        raise FileNotFoundError(f"benchmark {spec.name!r}: no file found (looked for {looked})")
    try:
        rows = _load_hub_rows(spec)
    except Exception as e:  # offline, gated, renamed...: say what was tried
        where = (", ".join(str(p) for p in looked) if looked
                 else f"no data directory given (data_dir argument or ${ENV_DATA_DIR})")
        raise FileNotFoundError(
            f"benchmark {spec.name!r}: no local file ({where}) and loading the Hugging Face "
            f"dataset {spec.hub_id!r} (config={spec.hub_config!r}, split={spec.hub_split!r}, "
            f"revision={spec.hub_revision!r}) failed: {type(e).__name__}: {e}. Put "
            f"{spec.offline_file!r} in a directory named by data_dir or ${ENV_DATA_DIR}, or "
            f"go online / log in (gated sets such as GPQA need `huggingface-cli login`); on an "
            f"offline machine HF_HUB_OFFLINE=1 skips the hub's network retries."
        ) from e
    return rows, _hub_source(spec)


# --------------------------------------------------------------------------
# Normalisation helpers
# --------------------------------------------------------------------------


def _first(row: dict, fields: Sequence[str], default=None):
    for f in fields:
        v = row.get(f)
        if v is not None and not (isinstance(v, str) and not v.strip()):
            return v
    return default


def _number_gold(value) -> str:
    """27.0 -> "27", "025" -> "25", "70,000" -> "70000"; other values as stripped strings."""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    s = str(value).strip().replace(",", "")
    num = _parse_number(s)
    if num is not None and num.denominator == 1 and re.fullmatch(r"[+-]?\d+(\.0*)?", s):
        return str(num.numerator)
    return s


_DOLLAR_RE = re.compile(r"(?<!\\)\$")


def _strip_dollars(s: str) -> str:
    """Remove unescaped `$` (math delimiters), keep `\\$` (currency)."""
    return _DOLLAR_RE.sub("", s).strip()


def _native_id(row: dict, fields: Sequence[str], index: int) -> str:
    v = _first(row, fields)
    return str(v) if v is not None else f"{index:05d}"


def _choice_prompt(question: str, choices: Sequence[str]) -> str:
    lines = [f"({LETTERS[i]}) {str(c).strip()}" for i, c in enumerate(choices)]
    return question.strip() + "\n\n" + "\n".join(lines)


def _stable_rng(*parts: str) -> random.Random:
    digest = hashlib.sha256("\x1f".join(parts).encode("utf-8")).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


_GPQA_INSTRUCTION_RE = re.compile(r"\n\s*Please reason step-by-step.*\Z", re.DOTALL)
_GPQA_CHOICES_RE = re.compile(r"\nA\. (.*)\nB\. (.*)\nC\. (.*)\nD\. (.*)\Z", re.DOTALL)


# --------------------------------------------------------------------------
# Per-benchmark normalisers: row (offline or hub schema) -> BenchmarkItem
# --------------------------------------------------------------------------


def _item(spec: BenchmarkSpec, native: str, prompt: str, gold: str, *, choices=None,
          **metadata) -> BenchmarkItem:
    return BenchmarkItem(
        id=f"{spec.name}-{native}", benchmark=spec.name, prompt=str(prompt).strip(),
        gold=str(gold).strip(), answer_type=spec.answer_type,
        choices=tuple(str(c).strip() for c in choices) if choices is not None else None,
        metadata={k: v for k, v in metadata.items() if v is not None},
    )


def _norm_gsm8k(spec, row, i):
    raw = str(row["answer"])
    gold = _number_gold(raw.split("####")[-1]) if "####" in raw else _number_gold(raw)
    return _item(spec, _native_id(row, ("idx", "id"), i), row["question"], gold)


def _norm_simple_math(spec, row, i):
    question = _first(row, spec.question_fields)
    answer = _first(row, ("answer",))
    if answer is None:
        answer = extract_boxed(str(_first(row, ("solution",), "")))
    if answer is None:
        raise ValueError("no answer field and no \\boxed{} in the solution")
    gold = _number_gold(answer) if spec.answer_type == "number" else _strip_dollars(str(answer))
    native = _native_id(row, ("unique_id", "id", "idx"), i)
    meta = {k: row.get(k) for k in ("subject", "level", "type", "url") if row.get(k) not in (None, "")}
    return _item(spec, native, question, gold, raw_answer=answer, **meta)


def _norm_minerva(spec, row, i):
    question = _first(row, spec.question_fields)
    answer = _first(row, ("answer",))
    if answer is None:
        answer = extract_boxed(str(row.get("solution", "")))
    if answer is None:
        raise ValueError("no answer field and no \\boxed{} in the solution")
    return _item(spec, _native_id(row, ("idx", "id"), i), question, _strip_dollars(str(answer)),
                 course=row.get("type"))


def _norm_olympiad(spec, row, i):
    question = str(_first(row, spec.question_fields))
    context = row.get("context")
    if context:
        question = f"{str(context).strip()}\n\n{question}"
    final = row.get("final_answer")
    if final is None:
        raise ValueError("no final_answer")
    parts = list(final) if isinstance(final, list | tuple) else [final]
    gold = ", ".join(_strip_dollars(str(p)) for p in parts if str(p).strip())
    multi = bool(row.get("is_multiple_answer")) or len(parts) > 1
    tol = row.get("error")
    try:
        tol = float(tol) if tol not in (None, "") else None
    except ValueError:
        tol = None
    return _item(spec, _native_id(row, ("id",), i), question, gold, multiple_answers=multi,
                 tolerance=tol, unit=row.get("unit") or None, olympiad_answer_type=row.get("answer_type"),
                 subfield=row.get("subfield"))


def _norm_gpqa(spec, row, i):
    if "Correct Answer" in row:  # hub schema (Idavidrein/gpqa)
        stem = str(row["Question"]).strip()
        correct = str(row["Correct Answer"]).strip()
        wrong = [str(row[f"Incorrect Answer {k}"]).strip() for k in (1, 2, 3)]
        native = _native_id(row, ("Record ID", "id"), i)
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
        native = _native_id(row, ("id",), i)
    # Fixed per-question permutation: the offline copy always has the gold at A.
    options = [correct, *wrong]
    order = list(range(len(options)))
    _stable_rng("gpqa", stem).shuffle(order)
    choices = [options[j] for j in order]
    gold = LETTERS[order.index(0)]
    return _item(spec, native, _choice_prompt(stem, choices), gold, choices=choices,
                 domain=row.get("High-level domain"))


def _norm_mmlu(spec, row, i):
    subject = row.get("subject") or row.get("type")
    choices = list(row["choices"])
    answer = row["answer"]
    gold = LETTERS[int(answer)] if not isinstance(answer, str) or answer.isdigit() else answer.strip()
    return _item(spec, _native_id(row, ("id",), i), _choice_prompt(row["question"], choices), gold,
                 choices=choices, subject=subject)


def _norm_mmlu_pro(spec, row, i):
    choices = list(row["options"])
    answer = row.get("answer")
    if isinstance(answer, str) and answer.strip().upper() in LETTERS[: len(choices)] and answer.strip():
        gold = answer.strip().upper()
    else:
        gold = LETTERS[int(row["answer_index"])]
    return _item(spec, _native_id(row, ("question_id", "id"), i), _choice_prompt(row["question"], choices),
                 gold, choices=choices, category=row.get("category"), src=row.get("src"))


def _norm_supergpqa(spec, row, i):
    choices = list(row["options"])
    gold = str(row.get("answer_letter") or "").strip().upper()
    if not gold:  # fall back on the answer text
        gold = LETTERS[[str(c).strip() for c in choices].index(str(row["answer"]).strip())]
    return _item(spec, _native_id(row, ("uuid", "id"), i), _choice_prompt(row["question"], choices), gold,
                 choices=choices, discipline=row.get("discipline"), field=row.get("field"),
                 subfield=row.get("subfield"), difficulty=row.get("difficulty"))


def _norm_bbeh(spec, row, i):
    return _item(spec, _native_id(row, ("id", "idx"), i), row["input"], str(row["target"]),
                 task=row.get("task"), mini=bool(row["mini"]) if row.get("mini") is not None else None)


_NORMALISERS = {
    "gsm8k": _norm_gsm8k,
    "math500": _norm_simple_math,
    "amc23": _norm_simple_math,
    "aime24": _norm_simple_math,
    "aime25": _norm_simple_math,
    "minerva_math": _norm_minerva,
    "olympiadbench": _norm_olympiad,
    "gpqa_diamond": _norm_gpqa,
    "mmlu_stem": _norm_mmlu,
    "mmlu_pro": _norm_mmlu_pro,
    "supergpqa": _norm_supergpqa,
    "bbeh": _norm_bbeh,
}


def _filter_rows(spec: BenchmarkSpec, rows: list[dict]) -> list[dict]:
    if spec.name == "mmlu_stem":
        keep = set(MMLU_STEM_SUBJECTS)
        return [r for r in rows if (r.get("subject") or r.get("type")) in keep]
    return rows


def _arithmetic_items(spec: BenchmarkSpec) -> list[BenchmarkItem]:
    from rzero_lib.arithmetic import builtin_eval_set  # lazy: optional sibling module

    items = []
    for k, p in enumerate(builtin_eval_set(n=100, seed=1234)):
        items.append(_item(spec, f"{k:03d}", p.question, str(p.answer),
                           expression=getattr(p, "expression", None),
                           max_digits=getattr(p, "max_digits", None)))
    return items


def _arith_sandbox_items(spec: BenchmarkSpec) -> tuple[list[BenchmarkItem], str]:
    """The sandbox's held-out set, or its development twin for `arith_sandbox_dev`; and where it came from."""
    from rzero_lib import sandbox  # lazy: the sandbox module loads only for its benchmarks

    maker = sandbox.sandbox_dev_problems if spec.name == "arith_sandbox_dev" else sandbox.sandbox_heldout_problems
    items = [_item(spec, f"{k:03d}", p.question, p.answer, expression=p.expression, max_digits=p.max_digits,
                   operator=p.operators) for k, p in enumerate(maker())]
    return items, f"rzero_lib.sandbox.{maker.__name__}()"


def subsample(items: Sequence[BenchmarkItem], limit: int | None, seed: int = 0) -> list[BenchmarkItem]:
    """`limit` items chosen by a seeded hash of their ids, kept in their original order.

    The choice depends only on (seed, id): the same items whatever the order of
    the file's lines, and a larger limit keeps the items of a smaller one.
    """
    if limit is None or limit >= len(items):
        return list(items)
    if limit < 0:
        raise ValueError(f"limit must be >= 0, got {limit}")

    def key(it: BenchmarkItem) -> bytes:
        return hashlib.sha256(f"{seed}\x1f{it.id}".encode()).digest()

    chosen = {id(it) for it in sorted(items, key=key)[:limit]}
    return [it for it in items if id(it) in chosen]


def load_benchmark(name: str, data_dir: str | None = None, limit: int | None = None,
                   seed: int = 0) -> list[BenchmarkItem]:
    """Normalised items of benchmark `name` (see the module docstring).

    Rows come from `<data_dir>/<file>`, else `$RZERO_BENCHMARKS_DIR/<file>`,
    else the Hugging Face hub. `limit` keeps a deterministic subsample (seeded
    by `seed`); the returned `BenchmarkItems` list says where the items came
    from and how many there were (`.source`, `.total`, `.describe()`).
    """
    spec = get_spec(name)
    if limit is not None and limit < 0:
        raise ValueError(f"limit must be >= 0 or None, got {limit}")
    if spec.name == "arithmetic":
        items, source = _arithmetic_items(spec), "rzero_lib.arithmetic.builtin_eval_set(n=100, seed=1234)"
    elif spec.name in ("arith_sandbox", "arith_sandbox_dev"):
        items, source = _arith_sandbox_items(spec)
    else:
        rows, source = _load_rows(spec, data_dir)
        rows = _filter_rows(spec, rows)
        norm = _NORMALISERS[spec.name]
        items = []
        for i, row in enumerate(rows):
            try:
                items.append(norm(spec, row, i))
            except (KeyError, ValueError, TypeError, IndexError) as e:
                raise ValueError(f"{spec.name}: row {i} of {source} does not fit the expected schema: "
                                 f"{type(e).__name__}: {e}") from e
        if not items:
            raise ValueError(f"{spec.name}: no items in {source}")
    _check_unique_ids(spec.name, items)
    total = len(items)
    out = BenchmarkItems(subsample(items, limit, seed), benchmark=spec.name, source=source,
                         total=total, limit=limit, seed=seed)
    logger.info("%s", out.describe())
    return out


def _check_unique_ids(name: str, items: Sequence[BenchmarkItem]) -> None:
    seen: set[str] = set()
    dup = [it.id for it in items if it.id in seen or seen.add(it.id)]
    if dup:
        raise ValueError(f"{name}: duplicate item ids {dup[:5]}")


# --------------------------------------------------------------------------
# Answer extraction
# --------------------------------------------------------------------------

_BOX_START_RE = re.compile(r"\\(?:boxed|fbox)(?=[{ ])")


def _all_boxed(text: str) -> list[tuple[int, str]]:
    """(position, content) of every complete box, in order."""
    starts = [m.start() for m in _BOX_START_RE.finditer(text)]
    out = []
    for k, s in enumerate(starts):
        end = starts[k + 1] if k + 1 < len(starts) else len(text)
        c = extract_boxed(text[s:end])
        if c is None:  # nested box: let the longer span decide
            c = extract_boxed(text[s:])
        if c is not None:
            out.append((s, c))
    return out


_TEXT_WRAP_RE = re.compile(r"\\(?:text|textbf|textit|mathrm|mathbf|mbox|operatorname)\s*\{([^{}]*)\}")


def _unwrap_text(s: str) -> str:
    prev = None
    while prev != s:
        prev, s = s, _TEXT_WRAP_RE.sub(r"\1", s)
    return s


def _choice_from_content(content: str, item: BenchmarkItem) -> str | None:
    """A letter from a box's content: "C", "(C)", "C.", "\\text{C}", "C) 4.5 eV", or an option's text."""
    letters = item.letters or LETTERS[:10]
    full = _unwrap_text(content).strip().strip("$*").strip()

    def by_text(cand: str) -> str | None:  # the option's text was boxed instead of its letter
        norm = _norm_text(cand)
        hits = [letters[k] for k, c in enumerate(item.choices or ()) if norm and norm == _norm_text(c)]
        return hits[0] if len(hits) == 1 else None

    if len(full) > 3 and (hit := by_text(full)):
        return hit
    s = re.sub(r"^(?:option|choice|answer)\s*[:\-]?\s*", "", full, flags=re.IGNORECASE)
    m = re.match(r"^\(?([A-Z])\)?(?:[.:)\]]|\s|$)", s)
    prose = re.match(r"^[AI]\s+[a-z]", s)  # "A photon ...", "I think ...": words, not letters
    if m and not prose:
        return m.group(1) if m.group(1) in letters else None
    return by_text(full) or by_text(s)


_MARKUP = r"(?:\*\*|\*|__|\$|\\text\{|\\textbf\{|\\mathrm\{|\\boxed\{)*"
_ANSWER_CUE_RE = re.compile(
    r"(?i:\banswer\s*(?:is|:|would\s+be|should\s+be|must\s+be|=)|"
    r"\b(?:correct|right|best|final)\s+(?:option|choice|answer)\s*(?:is|:|would\s+be|should\s+be)?|"
    r"\b(?:I|we)\s+(?:choose|select|pick))"
    r"\s*[:\-]?\s*(?i:(?:option|choice)\s*)?" + _MARKUP + r"\s*\(?([A-Z])\)?(?![A-Za-z0-9])"
)
_PAREN_LETTER_RE = re.compile(r"\(([A-Z])\)")


def _extract_choice(item: BenchmarkItem, text: str) -> str | None:
    letters = item.letters or LETTERS[:10]
    boxed = extract_boxed(text)
    if boxed is not None:
        letter = _choice_from_content(boxed, item)
        if letter is not None:
            return letter
    cues = [m.group(1) for m in _ANSWER_CUE_RE.finditer(text) if m.group(1) in letters]
    if cues:
        return cues[-1]
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    if not lines:
        return None
    last = re.sub(r"^[#>\-\s]+", "", lines[-1])
    bare = re.sub(r"[*_$]", "", last).strip()
    m = (re.fullmatch(r"\(?([A-Z])\)?[.:)]?", bare)
         or re.match(r"^\(([A-Z])\)", bare)
         or re.match(r"^([A-Z])[.:)](?:\s|$)", bare)
         or re.match(r"^(?i:option|choice)\s+\(?([A-Z])\)?(?![A-Za-z0-9])", bare))
    if m and m.group(1) in letters:
        return m.group(1)
    found = {x for x in _PAREN_LETTER_RE.findall(bare) if x in letters}
    if len(found) == 1:
        return found.pop()
    return None


_TEXT_CUE_RE = re.compile(r"(?i:\b(?:final\s+)?answer\s*(?:is\s*:?|:))\s*(.+)")


def _extract_text(text: str) -> str | None:
    boxed = extract_boxed(text)
    if boxed is not None:
        return boxed
    cues = _TEXT_CUE_RE.findall(text)
    if cues:
        ans = cues[-1].strip().strip("*").strip()
        return ans[:MAX_ANSWER_CHARS] or None
    return None


def extract_answer(item: BenchmarkItem, response_text: str) -> str | None:
    """The answer a response gives for `item`, or None.

    choice: a letter (boxed, else an explicit "answer is (C)", else a
    standalone letter on the last line); math / number: the last `\\boxed{}`
    (for a multi-answer item, all boxes of the last paragraph joined by ", "
    when the last box alone holds fewer answers than the gold); text: the last
    box, else the rest of the line after the last "answer is" / "Answer:".
    """
    text = str(response_text or "")[-MAX_TEXT_CHARS:]
    if not text.strip():
        return None
    if item.answer_type == "choice":
        return _extract_choice(item, text)
    if item.answer_type == "text":
        return _extract_text(text)
    boxed = extract_boxed(text)
    if boxed is None:
        return None
    if item.metadata.get("multiple_answers"):
        need = len(_split_top_level(item.gold))
        if len(_split_top_level(boxed)) < need:
            boxes = _all_boxed(text)
            para_start = text.rfind("\n\n", 0, boxes[-1][0]) if boxes else -1
            tail = [c for pos, c in boxes if pos > para_start]
            if len(tail) > 1:
                return ", ".join(tail)
    return boxed


# --------------------------------------------------------------------------
# Comparison helpers
# --------------------------------------------------------------------------

_NUM_RE = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_THOUSANDS_RE = re.compile(r"[+-]?\d{1,3}(?:,\d{3})+(?:\.\d+)?")
_FRAC_RE = re.compile(r"([+-]?)\\[dt]?frac\{\s*([+-]?\d+)\s*\}\{\s*([+-]?\d+)\s*\}")
_SLASH_RE = re.compile(r"([+-]?\d+)\s*/\s*([+-]?\d+)")
# A unit after a number: "%" or whitespace then words ("18 dollars", "5 \text{ cm}").
_UNIT_TAIL_RE = re.compile(r"(?:\s*\\?%|\s+[A-Za-z][A-Za-z./^\d ]*)$")


def _plain_number(t: str) -> Fraction | None:
    try:
        if _THOUSANDS_RE.fullmatch(t):
            return Fraction(t.replace(",", ""))
        if _NUM_RE.fullmatch(t):
            return Fraction(t)
        m = _FRAC_RE.fullmatch(t)
        if m:
            sign, p, q = m.groups()
            value = Fraction(int(p), int(q))
            return -value if sign == "-" else value
        m = _SLASH_RE.fullmatch(t)
        if m:
            return Fraction(int(m.group(1)), int(m.group(2)))
    except (ValueError, ZeroDivisionError):
        return None
    return None


def _parse_number(s: str | None) -> Fraction | None:
    """A plain number ("1,000", "18.0", "-3/4", "\\frac{3}{4}", "\\$18", "18 dollars", "2.5e3"), else None."""
    if s is None:
        return None
    t = _unwrap_text(str(s)[:200]).strip()
    t = re.sub(r"\\[,!;: ]|\{,\}", "", t)  # LaTeX spacing / thousands separators
    t = t.replace("\\$", "").replace("$", "").strip()
    t = re.sub(r"^[A-Za-z]\s*=\s*", "", t)  # "x = 18"
    t = t.rstrip(".").strip()
    if not t:
        return None
    value = _plain_number(t)
    if value is None and _UNIT_TAIL_RE.search(t):
        value = _plain_number(_UNIT_TAIL_RE.sub("", t).rstrip(".").strip())
    return value


_E_NOTATION_RE = re.compile(r"([+-]?\d+(?:\.\d+)?)[eE]([+-]?\d+)")


def _clean_math(s: str) -> str:
    """Light surface clean-up before math-verify (applied to both gold and prediction)."""
    t = _strip_dollars(str(s)[:MAX_ANSWER_CHARS])
    t = re.sub(r"(\d)\.(?=[^\d]|$)", r"\1", t) if re.search(r"\d\.(?!\d)", t) else t  # "-1./3" -> "-1/3"
    m = _E_NOTATION_RE.fullmatch(t.strip())
    if m:  # math-verify does not read "4.5e33"
        t = f"{m.group(1)}\\times 10^{{{int(m.group(2))}}}"
    return t.strip()


def _split_top_level(s: str) -> list[str]:
    """Split at commas outside (), [], {} (a LaTeX `\\!`/`\\,` after a comma is kept out)."""
    parts, depth, cur = [], 0, []
    i = 0
    while i < len(s):
        ch = s[i]
        if ch == "\\" and i + 1 < len(s) and s[i + 1] in "{}":
            cur.append(s[i : i + 2])
            i += 2
            continue
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
        i += 1
    parts.append("".join(cur))
    parts = [re.sub(r"^\\[!,;: ]", "", p.strip()).strip() for p in parts]
    return [p for p in parts if p]


def _norm_text(s: str) -> str:
    t = _unwrap_text(str(s)).strip()
    t = t.replace("$", "").replace("**", "")
    t = t.strip().strip("\"'`").strip()
    t = t.rstrip(".").strip()
    t = re.sub(r"\s+", " ", t.lower())
    t = re.sub(r"\s*,\s*", ", ", t)
    m = re.fullmatch(r"\(([a-z])\)", t)
    if m:
        t = m.group(1)
    return t


def _text_equal(gold: str, pred: str) -> bool:
    g, p = _norm_text(gold), _norm_text(pred)
    if not g or not p:
        return False
    if g == p:
        return True
    gn, pn = _parse_number(gold), _parse_number(pred)
    return gn is not None and pn is not None and gn == pn


def _bipartite_match(ok: list[list[bool]]) -> bool:
    """True when every row can be matched to a distinct column."""
    n = len(ok)
    match_col: dict[int, int] = {}

    def try_row(r: int, seen: set[int]) -> bool:
        for c in range(n):
            if ok[r][c] and c not in seen:
                seen.add(c)
                if c not in match_col or try_row(match_col[c], seen):
                    match_col[c] = r
                    return True
        return False

    return all(try_row(r, set()) for r in range(n))


# --------------------------------------------------------------------------
# Scoring
# --------------------------------------------------------------------------


def score_response(item: BenchmarkItem, response_text: str) -> bool:
    """True when `response_text` answers `item` correctly (see the module docstring)."""
    return score_responses([item], [response_text])[0]


@dataclass(frozen=True)
class Score:
    """One scored response: correctness, the extracted answer, and whether math-verify timed out."""

    correct: bool
    extracted: str | None
    timed_out: bool = False


def score_responses(items: Sequence[BenchmarkItem], responses: Sequence[str],
                    timeout_s: float | None = None) -> list[bool]:
    """`score_response` for many (item, response) pairs; all math-verify pairs go in one batch."""
    return [s.correct for s in score_responses_detailed(items, responses, timeout_s=timeout_s)]


def score_responses_detailed(items: Sequence[BenchmarkItem], responses: Sequence[str],
                             timeout_s: float | None = None) -> list[Score]:
    """Like `score_responses`, with the extracted answer and the timeout flag of each response."""
    if len(items) != len(responses):
        raise ValueError(f"{len(items)} items but {len(responses)} responses")
    results: list[bool | None] = [None] * len(items)
    pairs: list[tuple[str, str]] = []
    owners: list[int] = []
    preds: list[str | None] = []
    for k, (item, resp) in enumerate(zip(items, responses)):
        pred = extract_answer(item, resp)
        preds.append(pred)
        if pred is None:
            results[k] = False
            continue
        kind = item.answer_type
        if kind == "choice":
            results[k] = pred.strip().upper() == item.gold.strip().upper()
        elif kind == "text":
            results[k] = _text_equal(item.gold, pred)
        elif kind == "number":
            g, p = _parse_number(item.gold), _parse_number(pred)
            if g is not None and p is not None:
                results[k] = g == p
            else:
                pairs.append((_clean_math(item.gold), _clean_math(pred)))
                owners.append(k)
        elif kind == "math":
            tol = item.metadata.get("tolerance")
            g, p = _parse_number(_clean_math(item.gold)), _parse_number(_clean_math(pred))
            if tol is not None and g is not None and p is not None:
                results[k] = abs(float(g) - float(p)) <= float(tol) + 1e-12
                continue
            pairs.append((_clean_math(item.gold), _clean_math(pred)))
            owners.append(k)
        else:
            raise ValueError(f"unknown answer_type {kind!r} for item {item.id}")
    if pairs:
        for k, verdict in zip(owners, equivalent_many(pairs, timeout_s=timeout_s)):
            results[k] = verdict
    # Multi-answer items that failed as a whole: match the comma-separated parts one to one.
    retry: list[tuple[int, int]] = []  # (item index, number of parts)
    part_pairs: list[tuple[str, str]] = []
    for k, item in enumerate(items):
        if results[k] or not item.metadata.get("multiple_answers") or preds[k] is None:
            continue
        gparts = _split_top_level(_clean_math(item.gold))
        pparts = _split_top_level(_clean_math(preds[k]))
        if len(gparts) < 2 or len(gparts) != len(pparts):
            continue
        retry.append((k, len(gparts)))
        part_pairs.extend((g, p) for g in gparts for p in pparts)
    if part_pairs:
        verdicts = equivalent_many(part_pairs, timeout_s=timeout_s)
        pos = 0
        for k, n in retry:
            flat = verdicts[pos : pos + n * n]
            pos += n * n
            results[k] = _bipartite_match([flat[r * n : (r + 1) * n] for r in range(n)])
    checker = default_checker()
    timed_out = {k for k, (g, p) in zip(owners, pairs) if checker.timed_out(g, p)}
    return [Score(bool(r), preds[k], k in timed_out) for k, r in enumerate(results)]


def gold_response(item: BenchmarkItem) -> str:
    """A response that states the gold answer the way the Solver is asked to (for checks)."""
    return f"Reasoning omitted. The final answer is \\boxed{{{item.gold}}}."


__all__ = [
    "ANSWER_TYPES", "BENCHMARKS", "ENV_DATA_DIR", "GENERAL_BENCHMARKS", "MATH_BENCHMARKS",
    "MMLU_STEM_SUBJECTS", "OFFLINE_BENCHMARKS", "BenchmarkItem", "BenchmarkItems", "BenchmarkSpec",
    "Score", "extract_answer", "get_spec", "gold_response", "load_benchmark", "score_response",
    "score_responses", "score_responses_detailed", "subsample",
]
