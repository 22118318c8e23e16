"""Every benchmark by name, and `load_benchmark(name)`: normalised items, optionally a fixed-seed subsample.

A new benchmark is a `BenchmarkSpec` in a family module's `SPECS` (with its
normaliser or item maker); nothing else changes.
"""

from __future__ import annotations

import logging

from rzero_lib.evaluation import builtin_sets, general_sets, math_sets
from rzero_lib.evaluation.general_sets import GENERAL_BENCHMARKS, MMLU_STEM_SUBJECTS
from rzero_lib.evaluation.math_sets import MATH_BENCHMARKS
from rzero_lib.evaluation.tasks import (
    BenchmarkItem,
    BenchmarkItems,
    BenchmarkSpec,
    check_unique_ids,
    load_rows,
    subsample,
)

logger = logging.getLogger(__name__)

BENCHMARKS: dict[str, BenchmarkSpec] = {s.name: s for s in (*math_sets.SPECS, *general_sets.SPECS,
                                                               *builtin_sets.SPECS)}
OFFLINE_BENCHMARKS: tuple[str, ...] = tuple(
    n for n in (*MATH_BENCHMARKS, "gpqa_diamond", "mmlu_stem") if BENCHMARKS[n].offline_file
)

__all__ = ["BENCHMARKS", "GENERAL_BENCHMARKS", "MATH_BENCHMARKS", "MMLU_STEM_SUBJECTS", "OFFLINE_BENCHMARKS",
           "get_spec", "load_benchmark"]


def get_spec(name: str) -> BenchmarkSpec:
    """The spec of `name`, or ValueError listing the known names."""
    try:
        return BENCHMARKS[name]
    except KeyError:
        raise ValueError(
            f"unknown benchmark {name!r}; known benchmarks: {', '.join(sorted(BENCHMARKS))}"
        ) from None


def load_benchmark(name: str, data_dir: str | None = None, limit: int | None = None,
                   seed: int = 0) -> list[BenchmarkItem]:
    """Normalised items of benchmark `name`.

    Rows come from `<data_dir>/<file>`, else `$RZERO_BENCHMARKS_DIR/<file>`,
    else the Hugging Face hub. `limit` keeps a deterministic subsample (seeded
    by `seed`); the returned `BenchmarkItems` list says where the items came
    from and how many there were (`.source`, `.total`, `.describe()`).
    """
    spec = get_spec(name)
    if limit is not None and limit < 0:
        raise ValueError(f"limit must be >= 0 or None, got {limit}")
    if spec.make_items is not None:
        items, source = spec.make_items(spec)
    else:
        rows, source = load_rows(spec, data_dir)
        if spec.select_rows is not None:
            rows = spec.select_rows(rows)
        items = []
        for i, row in enumerate(rows):
            try:
                items.append(spec.normalise(spec, row, i))
            except (KeyError, ValueError, TypeError, IndexError) as e:
                raise ValueError(f"{spec.name}: row {i} of {source} does not fit the expected schema: "
                                 f"{type(e).__name__}: {e}") from e
        if not items:
            raise ValueError(f"{spec.name}: no items in {source}")
    check_unique_ids(spec.name, items)
    total = len(items)
    out = BenchmarkItems(subsample(items, limit, seed), benchmark=spec.name, source=source,
                         total=total, limit=limit, seed=seed)
    logger.info("%s", out.describe())
    return out
