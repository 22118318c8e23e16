"""Labelled data for the supervised stage: where it comes from, checked before anything loads, and what its rows can teach.

A labelled dataset is a local JSONL or Parquet file, a local `datasets` folder, a
Hugging Face hub id, or a built-in set (`builtin:arith-sandbox-labelled`), with a
field mapping for `question`, `answer` and an optional `solution`.
`check_dataset_spec` is what parameter validation calls: a missing file, an
unknown built-in, a mapped field the file does not have, SFT without solutions,
or a hub split that is an evaluation benchmark fail at once, naming the field. A
hub id cannot be checked offline; the stage checks it when it loads the rows,
before any model loads.

`row_drop_reason` says why a row cannot be trained on: no question, or an answer
the Solver's reward cannot score (the reward boxes nothing longer than
`MAX_ANSWER_CHARS` and matches `\\boxed{...}` with balanced braces only). Such
rows are counted and kept in the stage's table with their reason.
`question_key` is the normal form under which training questions are compared
with evaluation questions (overlap). Pure Python; docs/supervised.md.
"""

from __future__ import annotations

import json
from pathlib import Path

from rzero_lib.answers import MAX_ANSWER_CHARS, extract_boxed
from rzero_lib.sandbox_world import (
    parse_question,
    sandbox_dev_problems,
    sandbox_heldout_problems,
    worked_solution,
)
from rzero_lib.values import present

BUILTIN_PREFIX = "builtin:"
LOCAL_SUFFIXES = (".jsonl", ".parquet")
ROLES = ("question", "answer", "solution")  # the field mapping's keys; solution is optional

# Hub splits that are evaluation benchmarks: training on them would train on the test set.
EVALUATION_SPLITS = {
    ("hiyouga/math12k", "test"): "MATH-500 (the math500 benchmark)",
}

# The sandbox's labelled set: drawn like the held-out set (every number of steps), with its own seed, and
# without any question of the held-out or the dev set.
SANDBOX_LABELLED = "arith-sandbox-labelled"
SANDBOX_LABELLED_SEED = 2_508_051
SANDBOX_LABELLED_PER_CELL = 200
LABELLED_BUILTINS = {
    SANDBOX_LABELLED: "sandbox arithmetic with exact answers and worked solutions, disjoint from arith_sandbox "
                      "and arith_sandbox_dev (question, answer, solution)",
}


class LabelledDataError(ValueError):
    """A labelled dataset that cannot be used; the message names the parameter."""


# --------------------------------------------------------------------------
# where the rows come from
# --------------------------------------------------------------------------


def builtin_dataset_name(source: str) -> str | None:
    return source[len(BUILTIN_PREFIX):] if source.startswith(BUILTIN_PREFIX) else None


def source_kind(source: str) -> str:
    """`builtin`, `file` (JSONL / Parquet), `folder` (read with `datasets.load_dataset`) or `hub`.

    A path that does not exist is an error; anything else shaped like `owner/name` is a hub id."""
    source = str(source).strip()
    if not source:
        raise LabelledDataError("supervised_training.dataset.source is empty")
    name = builtin_dataset_name(source)
    if name is not None:
        if name not in LABELLED_BUILTINS:
            raise LabelledDataError(f"supervised_training.dataset.source: unknown built-in dataset {source!r}; "
                                    f"known: {', '.join(BUILTIN_PREFIX + n for n in LABELLED_BUILTINS)}")
        return "builtin"
    path = Path(source).expanduser()
    if path.is_dir():
        return "folder"
    if path.is_file():
        if path.suffix not in LOCAL_SUFFIXES:
            raise LabelledDataError(f"supervised_training.dataset.source: {source} is neither JSONL nor Parquet "
                                    f"(the name must end in {' or '.join(LOCAL_SUFFIXES)})")
        return "file"
    if source.startswith((".", "/", "~")) or path.suffix in LOCAL_SUFFIXES or source.count("/") != 1:
        raise LabelledDataError(f"supervised_training.dataset.source: file {source} does not exist")
    return "hub"


def file_columns(path: str | Path, probe_lines: int = 100) -> list[str]:
    """Column names of a JSONL file (keys of its first `probe_lines` rows) or a Parquet file (its schema)."""
    path = Path(path).expanduser()
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        return list(pq.read_schema(path).names)
    keys: dict[str, None] = {}
    with path.open(encoding="utf-8") as fh:
        seen = 0
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise LabelledDataError(f"supervised_training.dataset.source: {path}:{lineno} is not a JSON line "
                                        f"({e.msg})") from None
            if not isinstance(row, dict):
                raise LabelledDataError(f"supervised_training.dataset.source: {path}:{lineno} is not a JSON object")
            keys.update(dict.fromkeys(row))
            seen += 1
            if seen >= probe_lines:
                break
    if not seen:
        raise LabelledDataError(f"supervised_training.dataset.source: {path} has no rows")
    return list(keys)


def builtin_columns(name: str) -> list[str]:
    return list(ROLES)


def check_fields(columns: list[str], fields: dict[str, str | None], where: str) -> None:
    """Every mapped field is a column of the data (`fields`: role -> column name, or None)."""
    for role in ROLES:
        column = fields.get(role)
        if column is not None and column not in columns:
            raise LabelledDataError(f"supervised_training.dataset.fields.{role}: {where} has no field {column!r} "
                                    f"(its fields: {', '.join(map(str, columns))})")


def check_dataset_spec(source: str, split: str | None, fields: dict[str, str | None], method: str) -> str:
    """Check a labelled dataset without loading it (see the module docstring); returns its kind."""
    for role in ("question", "answer"):
        if not fields.get(role):
            raise LabelledDataError(f"supervised_training.dataset.fields.{role} must name a field")
    if method == "sft" and not fields.get("solution"):
        raise LabelledDataError("supervised_training.method is sft, which trains on worked solutions, but "
                                "supervised_training.dataset.fields.solution is not set; map the solution field or "
                                "use method: grpo (gold answers only)")
    kind = source_kind(source)
    if kind == "builtin":
        check_fields(builtin_columns(builtin_dataset_name(source)), fields, source)
    elif kind == "file":
        check_fields(file_columns(source), fields, source)
    elif kind == "hub":
        evaluation_set = EVALUATION_SPLITS.get((source, split))
        if evaluation_set is not None:
            raise LabelledDataError(f"supervised_training.dataset.split: {source} split {split!r} is "
                                    f"{evaluation_set}, an evaluation set; train on another split")
    return kind


# --------------------------------------------------------------------------
# the built-in sets
# --------------------------------------------------------------------------


def sandbox_labelled_rows(per_cell: int = SANDBOX_LABELLED_PER_CELL, seed: int = SANDBOX_LABELLED_SEED) -> list[dict]:
    """Sandbox questions with exact answers, none of them in the held-out or the dev set.

    The solution is the sandbox Solver's response form: the correct worked computation (every running
    total), then the boxed answer."""
    evaluation = {p.question for p in (*sandbox_heldout_problems(), *sandbox_dev_problems())}
    return [{"question": p.question, "answer": p.answer, "solution": worked_solution(*parse_question(p.question))}
            for p in sandbox_heldout_problems(per_cell, seed=seed) if p.question not in evaluation]


def builtin_rows(source: str) -> list[dict]:
    name = builtin_dataset_name(source)
    if name == SANDBOX_LABELLED:
        return sandbox_labelled_rows()
    raise LabelledDataError(f"supervised_training.dataset.source: unknown built-in dataset {source!r}")


# --------------------------------------------------------------------------
# rows
# --------------------------------------------------------------------------


def present_text(value) -> str | None:
    """The stripped text of a field, None when missing, NaN or blank."""
    if not present(value):
        return None
    text = str(value).strip()
    return text or None


def answer_problem(answer: str | None) -> str | None:
    """Why the Solver's reward cannot score `answer`, or None when it can.

    The reward boxes the last `\\boxed{...}` of a response and compares it with the label: a
    label that a response boxing exactly it would not match can never be rewarded."""
    if answer is None:
        return "missing_answer"
    if len(answer) > MAX_ANSWER_CHARS:
        return "answer_too_long"
    if extract_boxed(f"\\boxed{{{answer}}}") != answer:
        return "unboxable_answer"  # unbalanced braces: no boxed response can carry it
    return None


UNPARSABLE_REASONS = ("missing_answer", "answer_too_long", "unboxable_answer")


def row_drop_reason(question: str | None, answer: str | None, solution: str | None, method: str) -> str | None:
    """Why a labelled row cannot be trained on (None: it can)."""
    if question is None:
        return "missing_question"
    problem = answer_problem(answer)
    if problem is not None:
        return problem
    if method == "sft" and solution is None:
        return "missing_solution"
    return None


def question_key(text: str | None) -> str:
    """Questions compared for overlap: case-folded, whitespace collapsed (exact duplicates, not paraphrases)."""
    return " ".join(str(text or "").split()).casefold()
