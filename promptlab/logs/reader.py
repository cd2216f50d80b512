"""Reading the daily log files back, tolerant of damage.

A malformed line (not JSON, not an object) or a torn last line (a writer killed mid-line)
is skipped and recorded with its file and line number; the good lines around it are always
returned. When a killed writer left a fragment without its newline and another writer
appended after it, the two share one physical line: the fragment is reported and the
complete entry after it is still returned (an entry's `{"v":` can only occur at its start,
since quotes inside JSON strings are escaped).
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import re
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from promptlab.errors import UsageError

_DAY_FILE = re.compile(r"^(\d{4}-\d{2}-\d{2})\.jsonl$")
_ENTRY_START = b'{"v":'
_RELATIVE = re.compile(r"^(\d+)\s*([smhdw])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}

TimeBound = _dt.date | _dt.datetime | _dt.timedelta | str | None


@dataclass(frozen=True)
class Problem:
    """One unreadable line: where it is and why it was skipped."""

    path: Path
    line: int
    reason: str
    torn: bool = False

    def __str__(self) -> str:
        return f"{self.path.name}:{self.line}: {self.reason}"


@dataclass
class ReadStats:
    """Filled in by `read_entries`: what was read and what was skipped."""

    files: int = 0
    entries: int = 0
    problems: list[Problem] = field(default_factory=list)

    @property
    def malformed(self) -> int:
        return sum(1 for p in self.problems if not p.torn)

    @property
    def torn(self) -> int:
        return sum(1 for p in self.problems if p.torn)

    def summary(self) -> str | None:
        """One line describing skipped lines, or None when everything was readable."""
        if not self.problems:
            return None
        shown = ", ".join(f"{p.path.name}:{p.line}" for p in self.problems[:5])
        more = f" and {len(self.problems) - 5} more" if len(self.problems) > 5 else ""
        return (f"skipped {len(self.problems)} unreadable log line(s) ({shown}{more}); "
                "run 'promptlab logs check' for details")


@dataclass
class FileReport:
    """`check_files` result for one file."""

    path: Path
    entries: int = 0
    problems: list[Problem] = field(default_factory=list)
    size: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def torn_tail(self) -> bool:
        return any(p.torn for p in self.problems)


# -- files and time bounds ----------------------------------------------------------------------


def _default_log_dir() -> Path:
    from promptlab.config import load_settings

    return load_settings().log_dir


def parse_bound(value: TimeBound, *, end: bool = False, now: float | None = None) -> str | None:
    """A time bound as a canonical timestamp string (comparable with entry timestamps).

    Accepts a date (the whole day: `end=True` gives the start of the next day), a
    datetime, a timedelta or "7d"/"24h"/"30m" (that long ago), "today", "yesterday"
    (UTC days), or an ISO date/time string.
    """
    if value is None:
        return None
    if isinstance(value, str):
        text = value.strip()
        m = _RELATIVE.match(text)
        if text in ("today", "yesterday"):
            current = time.time() if now is None else now
            today = _dt.datetime.fromtimestamp(current, tz=_dt.UTC).date()
            value = today if text == "today" else today - _dt.timedelta(days=1)
        elif m:
            value = _dt.timedelta(seconds=int(m.group(1)) * _UNITS[m.group(2)])
        else:
            try:
                if len(text) == 10:
                    value = _dt.date.fromisoformat(text)
                else:
                    value = _dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
            except ValueError:
                raise UsageError(f"time {value!r} is not a date (2026-11-01), an ISO time "
                                 "(2026-11-01T12:00:00Z), today, yesterday or an age like 7d, "
                                 "24h, 30m") from None
    if isinstance(value, _dt.timedelta):
        current = time.time() if now is None else now
        value = _dt.datetime.fromtimestamp(current - value.total_seconds(), tz=_dt.UTC)
    if isinstance(value, _dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=_dt.UTC)
        return value.astimezone(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f") + "Z"
    if isinstance(value, _dt.date):
        if end:
            value = value + _dt.timedelta(days=1)
        return value.isoformat() + "T00:00:00.000000Z"
    raise UsageError(f"cannot use {value!r} as a time bound")


def log_files(log_dir: str | Path | None = None, since: TimeBound = None,
              until: TimeBound = None) -> list[Path]:
    """The daily files `YYYY-MM-DD.jsonl` in `log_dir` overlapping [since, until], by date."""
    folder = Path(log_dir) if log_dir is not None else _default_log_dir()
    lo, hi = parse_bound(since), parse_bound(until, end=True)
    return _files_between(folder, lo, hi)


def _files_between(folder: Path, lo: str | None, hi: str | None) -> list[Path]:
    try:
        names = sorted(p.name for p in folder.iterdir())
    except FileNotFoundError:
        return []
    except NotADirectoryError:
        raise UsageError(f"log folder {folder} is a file, not a folder") from None
    files = []
    for name in names:
        m = _DAY_FILE.match(name)
        if not m:
            continue
        day = m.group(1)
        if lo is not None and day < lo[:10]:
            continue
        if hi is not None and day + "T00:00:00.000000Z" >= hi:
            continue
        files.append(folder / name)
    return files


# -- reading --------------------------------------------------------------------------------------


def read_file(path: str | Path, stats: ReadStats | None = None) -> Iterator[dict[str, Any]]:
    """Entries of one file in order; unreadable lines go to `stats.problems`."""
    import orjson

    path = Path(path)
    loads = orjson.loads
    with open(path, "rb") as fh:
        lineno = 0
        for raw in fh:
            lineno += 1
            if not raw.endswith(b"\n"):
                if raw.strip():
                    entry, problem = _parse(raw, path, lineno, loads)
                    if entry is not None and problem is None:
                        # Whole JSON but no newline yet: a write in progress, or a line
                        # that lost only its newline. The entry itself is complete.
                        if stats is not None:
                            stats.entries += 1
                        yield entry
                    elif stats is not None:
                        stats.problems.append(Problem(
                            path, lineno, "torn last line (no newline at the end of the file: "
                            "a writer stopped mid-line, or a write is in progress)", True))
                return
            if not raw.strip():
                continue
            entry, problem = _parse(raw, path, lineno, loads)
            if problem is not None and stats is not None:
                stats.problems.append(problem)
            if entry is not None:
                if stats is not None:
                    stats.entries += 1
                yield entry


def _parse(raw: bytes, path: Path, lineno: int, loads: Any) -> tuple[Any, Problem | None]:
    try:
        value = loads(raw)
    except ValueError as exc:
        start = raw.rfind(_ENTRY_START, 1)
        if start > 0:
            try:
                value = loads(raw[start:])
            except ValueError:
                pass
            else:
                if isinstance(value, dict):
                    return value, Problem(path, lineno, f"torn fragment of {start} bytes "
                                          "before an entry (a writer stopped mid-line)", True)
        return None, Problem(path, lineno, f"invalid JSON: {_short(exc)}")
    if not isinstance(value, dict):
        return None, Problem(path, lineno, f"not a JSON object (a {type(value).__name__})")
    return value, None


def _short(exc: Exception) -> str:
    text = str(exc)
    return text if len(text) <= 80 else text[:77] + "..."


def read_entries(log_dir: str | Path | None = None, since: TimeBound = None,
                 until: TimeBound = None, stats: ReadStats | None = None,
                 files: Iterable[str | Path] | None = None) -> Iterator[dict[str, Any]]:
    """Every entry with `since <= timestamp < until`, oldest file first, in file order.

    `since`/`until` take a date (whole days), a datetime, a timedelta or "7d"/"24h", or an
    ISO string. Unreadable lines are skipped and recorded in `stats` (a `ReadStats`).
    """
    lo, hi = parse_bound(since), parse_bound(until, end=True)
    if files is None:
        folder = Path(log_dir) if log_dir is not None else _default_log_dir()
        paths = _files_between(folder, lo, hi)
    else:
        paths = [Path(p) for p in files]
    for path in paths:
        if stats is not None:
            stats.files += 1
        edge = _is_edge(path, lo, hi)
        for entry in read_file(path, stats):
            if edge:
                ts = entry.get("timestamp")
                if isinstance(ts, str) and ((lo is not None and ts < lo)
                                            or (hi is not None and ts >= hi)):
                    if stats is not None:
                        stats.entries -= 1
                    continue
            yield entry


def _is_edge(path: Path, lo: str | None, hi: str | None) -> bool:
    """Whether entries of this day file may fall outside [lo, hi) and need a check."""
    m = _DAY_FILE.match(path.name)
    if not m:
        return lo is not None or hi is not None
    day = m.group(1)
    return (lo is not None and day <= lo[:10]) or (hi is not None and day >= hi[:10])


def check_files(log_dir: str | Path | None = None, files: Iterable[str | Path] | None = None,
                since: TimeBound = None, until: TimeBound = None) -> list[FileReport]:
    """Per file: how many entries parse and which lines do not (with line numbers)."""
    if files is None:
        folder = Path(log_dir) if log_dir is not None else _default_log_dir()
        paths = _files_between(folder, parse_bound(since), parse_bound(until, end=True))
    else:
        paths = [Path(p) for p in files]
    reports = []
    for path in paths:
        stats = ReadStats()
        for _ in read_file(path, stats):
            pass
        report = FileReport(path=path, entries=stats.entries, problems=stats.problems)
        with contextlib.suppress(OSError):
            report.size = path.stat().st_size
        reports.append(report)
    return reports
