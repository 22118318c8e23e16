"""Oracle answers through a Parquet cache (`report/oracle.parquet`): a re-run never asks an oracle twice.

Rows are keyed by (question, `oracle.cache_key`), so another oracle model never
reuses these answers; "cannot answer" (None) is cached too. Missing questions
are asked in chunks and the table is rewritten atomically after each chunk, so
an interruption loses at most one chunk.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from rzero_lib.atomic_files import write_parquet_atomic
from rzero_lib.oracle import Oracle
from rzero_lib.values import present

ORACLE_CACHE_FILE = "oracle.parquet"
ORACLE_CACHE_COLUMNS = ["question", "oracle_kind", "oracle_key", "oracle_answer", "created_at"]


def read_oracle_cache(cache_path):
    """The cache table (empty with the right columns when the file does not exist)."""
    path = Path(cache_path)
    if not path.exists():
        return pd.DataFrame({c: pd.Series(dtype=object) for c in ORACLE_CACHE_COLUMNS})
    table = pd.read_parquet(path)
    missing = [c for c in ("question", "oracle_key", "oracle_answer") if c not in table.columns]
    if missing:
        raise ValueError(f"{path} is not an oracle cache (missing columns {missing}); delete it to rebuild")
    return table


def _clean_answer(value) -> str | None:
    return str(value) if present(value) else None


def cached_oracle_answers(oracle: Oracle, questions: Sequence[str | None], cache_path, *,
                          chunk_size: int = 64) -> list[str | None]:
    """`oracle`'s answers to `questions` (in order), asking only for those not in the cache.

    The cache is a Parquet table rewritten atomically after every chunk of
    `chunk_size` new questions. A None question gets None without asking.
    """
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    table = read_oracle_cache(cache_path)
    key = oracle.cache_key
    mine = table[table["oracle_key"] == key]
    known: dict[str, str | None] = {str(q): _clean_answer(a) for q, a in zip(mine["question"], mine["oracle_answer"])}
    wanted = [str(q) if present(q) else None for q in questions]
    missing = [q for q in dict.fromkeys(wanted) if q is not None and q not in known]
    for start in range(0, len(missing), chunk_size):
        chunk = missing[start:start + chunk_size]
        answers = [_clean_answer(a) for a in oracle.answer_many(chunk)]
        if len(answers) != len(chunk):
            raise RuntimeError(f"oracle {key} returned {len(answers)} answers for {len(chunk)} questions")
        rows = pd.DataFrame({"question": chunk, "oracle_kind": oracle.name, "oracle_key": key,
                             "oracle_answer": pd.Series(answers, dtype=object),
                             "created_at": time.strftime("%Y-%m-%dT%H:%M:%S")}, columns=ORACLE_CACHE_COLUMNS)
        table = rows if table.empty else pd.concat([table, rows], ignore_index=True)
        write_parquet_atomic(table, cache_path)
        known.update(zip(chunk, answers))
    return [None if q is None else known[q] for q in wanted]
