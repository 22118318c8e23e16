"""Atomic writes: a file or folder is written under a temporary name beside its target and renamed
into place, so a crash never leaves a half-written artifact that looks complete."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

PARTIAL_SUFFIX = ".partial"


@contextmanager
def atomic_path(target: str | Path, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path next to `target`; rename it into place on success."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=suffix + PARTIAL_SUFFIX, dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp makes 0600 files; artifacts are ordinary files
        os.replace(tmp_path, target)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


@contextmanager
def atomic_folder(target: str | Path, replace: bool = True) -> Iterator[Path]:
    """Yield an empty temporary folder next to `target`; rename it into place on success.

    `replace=False`: a folder that appeared at `target` meanwhile (a concurrent
    build of the same thing) is kept and the new one discarded.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        yield tmp
        os.chmod(tmp, 0o755)  # mkdtemp makes 0700 folders
        if replace and target.exists():
            shutil.rmtree(target)
        try:
            os.rename(tmp, target)
        except OSError:
            if replace or not target.exists():
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_text_atomic(target: str | Path, text: str) -> Path:
    with atomic_path(target) as tmp:
        tmp.write_text(text)
    return Path(target)


def write_json_atomic(target: str | Path, data) -> Path:
    return write_text_atomic(target, json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")


def write_parquet_atomic(df, target: str | Path) -> Path:
    with atomic_path(target, suffix=".parquet") as tmp:
        df.to_parquet(tmp, index=False)
    return Path(target)


def write_figure_atomic(fig, target: str | Path, **savefig_kwargs) -> Path:
    """A matplotlib figure saved atomically; the format comes from the target's suffix."""
    target = Path(target)
    fmt = target.suffix.lstrip(".")
    with atomic_path(target, suffix=target.suffix) as tmp:
        fig.savefig(tmp, format=fmt, **savefig_kwargs)
    return target


def clean_partials(folder: str | Path) -> int:
    """Remove leftovers of interrupted atomic file writes in a folder."""
    n = 0
    folder = Path(folder)
    if folder.exists():
        for p in folder.glob(f".*{PARTIAL_SUFFIX}"):
            p.unlink(missing_ok=True)
            n += 1
    return n
