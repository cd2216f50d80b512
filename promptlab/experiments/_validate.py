"""Small checks shared by the experiment file, dataset and scorer loaders.

Each raises ExperimentError with `where` (file and table) in front, so a message always
names the file and the key to fix.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from promptlab.errors import ExperimentError, suggest


def display_path(path: Path | str) -> str:
    """`path` relative to the working directory when it is below it, else as is."""
    path = Path(path)
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except (ValueError, OSError):
        return str(path)


def check_keys(table: Mapping[str, Any], known: Iterable[str], where: str) -> None:
    known = set(known)
    for key in table:
        if key not in known:
            raise ExperimentError(f"{where}: unknown key {key!r}{suggest(key, known)}")


def get_str(table: Mapping[str, Any], key: str, where: str, default: str | None = None,
            required: bool = False) -> str | None:
    value = table.get(key, default)
    if value is None:
        if required:
            raise ExperimentError(f"{where}: missing key {key!r}")
        return None
    if not isinstance(value, str) or (required and not value.strip()):
        raise ExperimentError(f"{where}: {key!r} must be a non-empty string, got {value!r}")
    return value


def get_number(table: Mapping[str, Any], key: str, where: str, default: float | None,
               *, minimum: float | None = None, maximum: float | None = None,
               integer: bool = False, exclusive_min: bool = False) -> Any:
    value = table.get(key, default)
    if value is None:
        return None
    kind = "an integer" if integer else "a number"
    ok_type = isinstance(value, int) if integer else isinstance(value, int | float)
    if isinstance(value, bool) or not ok_type:
        raise ExperimentError(f"{where}: {key!r} must be {kind}, got {value!r}")
    if isinstance(value, float) and not math.isfinite(value):
        raise ExperimentError(f"{where}: {key!r} must be a finite number, got {value!r}")
    if minimum is not None and (value <= minimum if exclusive_min else value < minimum):
        sign = ">" if exclusive_min else "≥"
        raise ExperimentError(f"{where}: {key!r} must be {sign} {minimum:g}, got {value!r}")
    if maximum is not None and value > maximum:
        raise ExperimentError(f"{where}: {key!r} must be ≤ {maximum:g}, got {value!r}")
    return value


def get_bool(table: Mapping[str, Any], key: str, where: str, default: bool) -> bool:
    value = table.get(key, default)
    if not isinstance(value, bool):
        raise ExperimentError(f"{where}: {key!r} must be true or false, got {value!r}")
    return value


def get_table(table: Mapping[str, Any], key: str, where: str) -> dict[str, Any]:
    value = table.get(key, {})
    if not isinstance(value, dict):
        raise ExperimentError(f"{where}: {key!r} must be a table, got {value!r}")
    return value


def get_str_list(table: Mapping[str, Any], key: str, where: str) -> list[str]:
    value = table.get(key, [])
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ExperimentError(f"{where}: {key!r} must be a list of strings, got {value!r}")
    return list(value)


def resolve_path(base: Path, value: str) -> Path:
    """`value` (with ~ and $VARS expanded) relative to `base` unless absolute."""
    path = Path(os.path.expandvars(value)).expanduser()
    return path if path.is_absolute() else base / path
