"""Benchmark tasks: what a benchmark is (`BenchmarkSpec`), its normalised items, and reading its rows.

A task family module (`math_sets`, `general_sets`, `builtin_sets`) defines the
specs and, per spec, how a row (offline-copy or hub schema: one normaliser
accepts both) becomes a `BenchmarkItem`; `rzero_lib.evaluation.registry` holds
them all. Rows are read from `<data_dir>/<file>`, else `$RZERO_BENCHMARKS_DIR`,
else the Hugging Face hub (`datasets` is imported only then). Hub revisions are
"main" (unverified offline); pin one with `hub_revision`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ENV_DATA_DIR = "RZERO_BENCHMARKS_DIR"
ANSWER_TYPES = ("math", "number", "choice", "text")
LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


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
    # How the items are made: `normalise(spec, row, index)` for file / hub rows (after `select_rows`),
    # or `make_items(spec) -> (items, source)` for sets built here.
    normalise: Callable[[BenchmarkSpec, dict, int], BenchmarkItem] | None = field(default=None, compare=False,
                                                                                   repr=False)
    select_rows: Callable[[list[dict]], list[dict]] | None = field(default=None, compare=False, repr=False)
    make_items: Callable[[BenchmarkSpec], tuple[list[BenchmarkItem], str]] | None = field(
        default=None, compare=False, repr=False)

    @property
    def greedy(self) -> bool:
        return self.num_samples == 1 and self.temperature == 0.0


def sampled(**kw) -> dict:
    """AMC / AIME: accuracy is the mean over 32 samples (paper); 0.6 / 0.95 is a common setting the paper
    does not state."""
    return dict(num_samples=32, temperature=0.6, top_p=0.95, **kw)


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



def make_item(spec: BenchmarkSpec, native: str, prompt: str, gold: str, *, choices=None,
              **metadata) -> BenchmarkItem:
    return BenchmarkItem(
        id=f"{spec.name}-{native}", benchmark=spec.name, prompt=str(prompt).strip(),
        gold=str(gold).strip(), answer_type=spec.answer_type,
        choices=tuple(str(c).strip() for c in choices) if choices is not None else None,
        metadata={k: v for k, v in metadata.items() if v is not None},
    )


def first_field(row: dict, fields: Sequence[str], default=None):
    """The first present, non-blank field of a row."""
    for f in fields:
        v = row.get(f)
        if v is not None and not (isinstance(v, str) and not v.strip()):
            return v
    return default


def native_id(row: dict, fields: Sequence[str], index: int) -> str:
    v = first_field(row, fields)
    return str(v) if v is not None else f"{index:05d}"


def choice_prompt(question: str, choices: Sequence[str]) -> str:
    lines = [f"({LETTERS[i]}) {str(c).strip()}" for i, c in enumerate(choices)]
    return question.strip() + "\n\n" + "\n".join(lines)


def stable_rng(*parts: str) -> random.Random:
    digest = hashlib.sha256("\x1f".join(parts).encode("utf-8")).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


# --------------------------------------------------------------------------
# Reading rows
# --------------------------------------------------------------------------


def read_rows(path: Path) -> list[dict]:
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


def local_candidates(spec: BenchmarkSpec, data_dir: str | os.PathLike) -> list[Path]:
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


def hub_source(spec: BenchmarkSpec) -> str:
    cfg = f"/{spec.hub_config}" if spec.hub_config else ""
    return f"hub:{spec.hub_id}{cfg}@{spec.hub_revision}:{spec.hub_split}"


def load_hub_rows(spec: BenchmarkSpec) -> list[dict]:
    import datasets  # lazy: only hub loading needs it

    ds = datasets.load_dataset(spec.hub_id, spec.hub_config, split=spec.hub_split,
                               revision=spec.hub_revision)
    return [dict(r) for r in ds]


def load_rows(spec: BenchmarkSpec, data_dir: str | os.PathLike | None) -> tuple[list[dict], str]:
    dirs: list[str] = []
    if data_dir is not None:
        dirs.append(str(data_dir))
    env = os.environ.get(ENV_DATA_DIR)
    if env and env not in dirs:
        dirs.append(env)
    looked: list[Path] = []
    for d in dirs:
        for p in local_candidates(spec, d):
            looked.append(p)
            if p.is_file():
                return read_rows(p), str(p)
    if spec.hub_id is None:
        raise FileNotFoundError(f"benchmark {spec.name!r}: no file found (looked for {looked})")
    try:
        rows = load_hub_rows(spec)
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
    return rows, hub_source(spec)



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



def check_unique_ids(name: str, items: Sequence[BenchmarkItem]) -> None:
    seen: set[str] = set()
    dup = [it.id for it in items if it.id in seen or seen.add(it.id)]
    if dup:
        raise ValueError(f"{name}: duplicate item ids {dup[:5]}")
