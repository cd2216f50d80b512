"""Datasets: the items an experiment sends through each variant.

Rows are `{"id": …, "vars": {…}, "expected": …}` in JSON Lines (`.jsonl`, `.ndjson`), a
JSON list (`.json`) or CSV (`.csv`, one column per variable). Optional per row: `unit_id`
(the unit assigned in a split design; default: the id) and `metadata`. A row without
`vars` uses its other keys as variables; a row with `vars` keeps its other keys as
metadata. A row without `id` gets its 1-based row number — give ids so that `--resume`
and pairing survive edits to the file.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from promptlab.errors import ExperimentError
from promptlab.experiments._validate import display_path

RESERVED = ("id", "vars", "expected", "unit_id", "metadata")
FORMATS = (".jsonl", ".ndjson", ".json", ".csv")
MAX_CSV_FIELD = 64 * 1024 * 1024


@dataclass(frozen=True)
class Item:
    """One dataset row."""

    id: str
    vars: dict[str, Any]
    expected: Any = None
    unit_id: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)
    line: int = 0


def load_dataset(path: Path) -> list[Item]:
    """Read and validate every row of `path`; errors name the file and the line."""
    shown = display_path(path)
    if path.suffix.lower() not in FORMATS:
        raise ExperimentError(f"{shown}: unknown dataset format {path.suffix!r}; use "
                              f"{', '.join(FORMATS)}")
    if path.exists() and not path.is_file():  # a folder, a FIFO, a device: never block on it
        raise ExperimentError(f"dataset {shown} is not a regular file; point [dataset] path "
                              "at a .jsonl, .json or .csv file")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError as exc:
        raise ExperimentError(f"dataset {shown} not found; check [dataset] path (it is "
                              "relative to the experiment file)") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ExperimentError(f"{shown}: cannot read as UTF-8 text: {exc}") from exc
    suffix = path.suffix.lower()
    rows = (_csv_rows(text, shown) if suffix == ".csv"
            else _json_rows(text, shown) if suffix == ".json" else _jsonl_rows(text, shown))
    items: list[Item] = []
    seen: dict[str, int] = {}
    for number, (line, row) in enumerate(rows, start=1):
        item = _item(row, number, line, shown)
        if item.id in seen:
            raise ExperimentError(f"{shown}:{line}: duplicate id {item.id!r} (first on line "
                                  f"{seen[item.id]}); ids must be unique")
        seen[item.id] = line
        items.append(item)
    if not items:
        raise ExperimentError(f"{shown}: the dataset has no rows")
    return items


def _jsonl_rows(text: str, shown: str) -> list[tuple[int, Any]]:
    rows = []
    for line_no, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rows.append((line_no, json.loads(line)))
        except json.JSONDecodeError as exc:
            raise ExperimentError(f"{shown}:{line_no}: invalid JSON ({exc.msg} at column "
                                  f"{exc.colno}); each line must be one JSON object") from exc
        except (RecursionError, ValueError) as exc:
            raise ExperimentError(f"{shown}:{line_no}: {_unreadable(exc)}") from None
    return rows


def _unreadable(exc: BaseException) -> str:
    """What is wrong with JSON that parses but cannot be held: too deep, too big a number."""
    if isinstance(exc, RecursionError):
        return "the JSON is nested too deeply to read; flatten the row"
    return f"cannot read the JSON: {exc}"


def _json_rows(text: str, shown: str) -> list[tuple[int, Any]]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ExperimentError(f"{shown}:{exc.lineno}: invalid JSON ({exc.msg})") from exc
    except (RecursionError, ValueError) as exc:
        raise ExperimentError(f"{shown}: {_unreadable(exc)}") from None
    if isinstance(data, dict) and isinstance(data.get("items"), list):
        data = data["items"]
    if not isinstance(data, list):
        raise ExperimentError(f"{shown}: expected a JSON list of rows (or {{\"items\": [...]}})")
    return [(i, row) for i, row in enumerate(data, start=1)]


def _csv_rows(text: str, shown: str) -> list[tuple[int, Any]]:
    import csv
    import io

    # A field may hold a whole file (code to review): the default 128 KiB limit is too low.
    csv.field_size_limit(max(csv.field_size_limit(), MAX_CSV_FIELD))
    # strict: an unbalanced quote is an error, not every later row swallowed into one field.
    reader = csv.DictReader(io.StringIO(text), strict=True)
    rows = []
    try:
        if not reader.fieldnames:
            raise ExperimentError(f"{shown}: the CSV file has no header row")
        seen: set[str] = set()
        for name in reader.fieldnames:
            if name in seen:
                raise ExperimentError(f"{shown}:1: column {name!r} appears twice in the header; "
                                      "one of them would be lost: rename or remove it")
            seen.add(name)
        for row in reader:
            if None in row:
                raise ExperimentError(f"{shown}:{reader.line_num}: more cells than header "
                                      "columns")
            rows.append((reader.line_num, {k: v for k, v in row.items() if v is not None}))
    except csv.Error as exc:
        raise ExperimentError(f"{shown}:{reader.line_num + 1}: cannot read the CSV: "
                              f"{exc}") from None
    return rows


def _item(row: Any, number: int, line: int, shown: str) -> Item:
    where = f"{shown}:{line}"
    if not isinstance(row, dict):
        raise ExperimentError(f"{where}: each row must be an object like "
                              "{\"id\": …, \"vars\": {…}, \"expected\": …}")
    raw_id = row.get("id", number)
    if isinstance(raw_id, bool) or not isinstance(raw_id, str | int) or str(raw_id) == "":
        raise ExperimentError(f"{where}: 'id' must be a non-empty string or an integer, "
                              f"got {raw_id!r}")
    item_id = str(raw_id)
    extra = {k: v for k, v in row.items() if k not in RESERVED}
    if "vars" in row:
        variables = row["vars"]
        if not isinstance(variables, dict):
            raise ExperimentError(f"{where}: 'vars' must be an object of variables, got "
                                  f"{type(variables).__name__}")
        metadata = extra
    else:
        variables, metadata = extra, {}
    given = row.get("metadata")
    if given is not None:
        if not isinstance(given, dict):
            raise ExperimentError(f"{where}: 'metadata' must be an object")
        metadata = {**metadata, **given}
    unit = row.get("unit_id", item_id)
    if isinstance(unit, bool) or not isinstance(unit, str | int) or str(unit) == "":
        raise ExperimentError(f"{where}: 'unit_id' must be a non-empty string or an integer")
    return Item(id=item_id, vars=dict(variables), expected=row.get("expected"),
                unit_id=str(unit), metadata=metadata, line=line)
