"""Plain values in tables and JSON: missing values, JSON-ready conversion, stored model text."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np

# Raw model text kept per sample in stage and evaluation tables (the end holds the answer).
MAX_STORED_RESPONSE_CHARS = 2000


def present(value) -> bool:
    """Not None and not NaN (a missing cell of a pandas table)."""
    return value is not None and not (isinstance(value, float) and math.isnan(value))


def stored_text(text: str) -> str:
    """Model text as stored in a table: its last MAX_STORED_RESPONSE_CHARS characters."""
    return text[-MAX_STORED_RESPONSE_CHARS:] if len(text) > MAX_STORED_RESPONSE_CHARS else text


def jsonable(value):
    """Plain JSON values: pydantic models and dataclasses as dicts, paths as strings,
    numpy scalars as Python numbers, NaN and infinities as None, keys as strings."""
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
