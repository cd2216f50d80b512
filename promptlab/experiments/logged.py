"""What the logs already hold for an experiment: the cells `--resume` skips and the
counts `experiment status` shows.

The SQLite index is used when it can be (it syncs incrementally, so this stays fast on a
big log); otherwise the JSONL files are read with the tolerant log reader.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from promptlab.errors import PromptlabError

_COLUMNS = ("variant", "item_id", "repeat", "status", "run_id", "prompt_version", "unit_id",
            "timestamp", "latency_ms", "cost_usd")


@dataclass(frozen=True)
class LoggedCell:
    """One logged `llm` entry of the experiment, reduced to what resume and status need."""

    variant: str | None
    item_id: str | None
    repeat: int
    status: str
    run_id: str | None
    prompt_version: str | None
    unit_id: str | None
    timestamp: str
    latency_ms: float | None = None
    cost_usd: float | None = None
    scores: frozenset[str] = frozenset()  # names of the entry's own scores (not feedback)


def logged_cells(log_dir: Path, experiment: str) -> list[LoggedCell]:
    """Every `llm` entry logged for `experiment`, oldest first."""
    if not log_dir.is_dir():
        return []
    try:
        return _from_index(log_dir, experiment)
    except (ImportError, PromptlabError, OSError):
        pass
    except Exception as exc:  # sqlite3 errors and the like: the JSONL files still answer
        import sqlite3

        if not isinstance(exc, sqlite3.Error):
            raise
    return _from_files(log_dir, experiment)


def _from_index(log_dir: Path, experiment: str) -> list[LoggedCell]:
    from promptlab.index.core import Index

    with Index(log_dir) as index:
        index.sync()
        rows = index.conn.execute(
            f"SELECT {', '.join(_COLUMNS)}, (SELECT group_concat(name, char(31)) FROM scores "
            "WHERE scores.entry_rowid = entries.rowid AND own = 1) FROM entries "
            "WHERE experiment = ? AND coalesce(kind, 'llm') = 'llm' ORDER BY timestamp, rowid",
            (experiment,)
        ).fetchall()
    cells = []
    for row in rows:
        fields = dict(zip(_COLUMNS, row[:-1], strict=True))
        fields["scores"] = dict.fromkeys(row[-1].split("\x1f")) if row[-1] else {}
        cells.append(_cell(fields))
    return cells


def _from_files(log_dir: Path, experiment: str) -> list[LoggedCell]:
    from promptlab.logs.reader import read_entries

    cells = [_cell(entry) for entry in read_entries(log_dir)
             if entry.get("experiment") == experiment and entry.get("kind", "llm") == "llm"]
    cells.sort(key=lambda c: c.timestamp)
    return cells


def _cell(row: dict[str, Any]) -> LoggedCell:
    status = row.get("status") or ("error" if row.get("error") else "ok")
    repeat = row.get("repeat")
    return LoggedCell(
        variant=row.get("variant"), item_id=_text(row.get("item_id")),
        repeat=repeat if isinstance(repeat, int) else 0, status=status,
        run_id=row.get("run_id"), prompt_version=row.get("prompt_version"),
        unit_id=_text(row.get("unit_id")), timestamp=row.get("timestamp") or "",
        latency_ms=row.get("latency_ms"), cost_usd=row.get("cost_usd"),
        scores=frozenset(scores) if isinstance(scores := row.get("scores"), dict) else frozenset(),
    )


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def done_keys(cells: list[LoggedCell], versions: dict[str, str]) -> set[tuple[str, str, int]]:
    """(variant, item_id, repeat) of the cells logged successfully with the version each
    variant resolves to now (a moved label makes its old cells stale)."""
    return {(c.variant, c.item_id, c.repeat) for c in cells
            if c.status == "ok" and c.variant in versions and c.item_id is not None
            and c.prompt_version == versions[c.variant]}  # type: ignore[misc]


def latest_run(cells: list[LoggedCell]) -> str | None:
    """The run id of the most recent entry that has one."""
    for cell in reversed(cells):
        if cell.run_id:
            return cell.run_id
    return None
