"""Reading the daily log files back, tolerant of damage.

A malformed line (not JSON, not an object) or a torn last line (a writer killed mid-line)
is skipped and recorded with its file and line number; the good lines around it are always
returned. When a killed writer left a fragment without its newline and another writer
appended after it, the two share one physical line: the fragment is reported and the
complete entry after it is still returned (an entry's `{"v":` can only occur at its start,
since quotes inside JSON strings are escaped).

`parse_line` is the one place that decides what a line is: the reader, `logs check` and the
index (promptlab.index.parse) all call it, so they always agree on which lines are entries.
A line is an entry when it is strict JSON (no NaN, Infinity or numbers too large for a
double), an object, of schema version 1 (or without `v`), and every known field has the
type the schema gives it within sane bounds (`LIMITS`); otherwise the whole line is skipped
and reported with its line number and the field at fault. An entry without an `id` (written
by hand, or by an older tool) gets a stable derived id `<file stem>:<line number>`, e.g.
`2026-11-26:12`; one without a `timestamp` gets its ULID's time, else the start of its
file's day. Unknown fields are kept as they are, and so are score values that are not
numbers or booleans (every roll-up ignores them).
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
from promptlab.logs.entry import KINDS, SCHEMA, SCHEMA_VERSION, STATUSES

_DAY_FILE = re.compile(r"^(\d{4}-\d{2}-\d{2})\.jsonl$")
_ENTRY_START = b'{"v":'
_RELATIVE = re.compile(r"^(\d+)\s*([smhdw])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}

TimeBound = _dt.date | _dt.datetime | _dt.timedelta | str | None
EARLIEST = "0001-01-01T00:00:00.000000Z"
LATEST = "9999-12-31T23:59:59.999999Z"
_MAX_AGE_S = 62_000_000_000  # about 1,965 years: from now, before year 1


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
            seconds = int(m.group(1)) * _UNITS[m.group(2)]
            if seconds >= _MAX_AGE_S:  # before year 1: from the very start
                return EARLIEST
            value = _dt.timedelta(seconds=seconds)
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
    # Times beyond what datetime holds are clamped to the first or last representable one.
    if isinstance(value, _dt.timedelta):
        current = time.time() if now is None else now
        try:
            value = _dt.datetime.fromtimestamp(current - value.total_seconds(), tz=_dt.UTC)
        except (OverflowError, OSError, ValueError):
            return EARLIEST if value.total_seconds() > 0 else LATEST
    if isinstance(value, _dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=_dt.UTC)
        try:
            value = value.astimezone(_dt.UTC)
        except OverflowError:
            return EARLIEST if value.year == 1 else LATEST
        return f"{value.year:04d}" + value.strftime("-%m-%dT%H:%M:%S.%f") + "Z"  # "%Y" drops the 0s
    if isinstance(value, _dt.date):
        if end:
            if value == _dt.date.max:
                return LATEST
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
    if folder.exists() and not folder.is_dir():
        raise UsageError(f"log folder {folder} is a file, not a folder")
    files = []
    for name in log_file_names(folder):  # the index reads the same files
        day = name[:10]
        if lo is not None and day < lo[:10]:
            continue
        if hi is not None and day + "T00:00:00.000000Z" >= hi:
            continue
        files.append(folder / name)
    return files


# -- one line: the only parser -------------------------------------------------------------

# Upper bounds for numbers no real call reaches: a line beyond them is damaged or forged,
# and letting it through would price a call at $10^25 or overflow SQLite's integers.
LIMITS: dict[str, float] = {
    "tokens": 10**9,  # input/output/cached/reasoning tokens of one call
    "repeat": 10**9,
    "latency_ms": 10**10,  # about 116 days
    "cost_usd": 10**6,  # one call
}
MAX_ID_CHARS = 200
_BOM = b"\xef\xbb\xbf"
_CROCKFORD = {c: i for i, c in enumerate("0123456789ABCDEFGHJKMNPQRSTVWXYZ")}
_ULID = re.compile(r"^[0-7][0-9A-HJKMNP-TV-Z]{25}$")
_DAY_STEM = re.compile(r"^\d{4}-\d{2}-\d{2}$")
# Schema type tag -> check code; the loop in check_entry branches on these.
_CODE = {"str": 0, "int": 1, "num": 2, "bool": 3, "tags": 4, "obj": 5, "msgs": 6,
         "scores": 7, "id": 8}
_FIELD_CODES: dict[str, int] = {name: _CODE[kind] for name, kind in SCHEMA.items()}
for _special in ("v", "id", "timestamp", "kind", "status"):
    _FIELD_CODES.pop(_special, None)
# Fields a string is wrong for (tags and ids accept one), and what they want instead.
_NOT_STR = frozenset(name for name, code in _FIELD_CODES.items() if code not in (0, 4, 8))
_WANTS = {1: "a whole number", 2: "a number", 3: "true or false", 5: "a JSON object",
          6: "a list of {\"role\": …, \"content\": …} objects",
          7: "an object of score name to number or true/false"}
_INT_LIMIT = {name: LIMITS["tokens"] for name in (
    "input_tokens", "output_tokens", "cached_tokens", "reasoning_tokens")}
_INT_LIMIT["repeat"] = LIMITS["repeat"]


def parse_line(raw: bytes, stem: str, line: int, *, derived_id: str | None = None,
               ) -> tuple[dict[str, Any] | None, int, str | None, bool]:
    """Decide what one physical line (without its newline) holds.

    Returns (entry or None, where the entry starts in `raw`, why something was skipped or
    None, whether that was a torn write). A line holding a torn fragment glued to a good
    entry returns the entry *and* a torn reason. `stem` (the file name without `.jsonl`)
    and `line` (1-based) make the derived id of an entry that has none (`derived_id`, when
    given, is used instead: a reader that knows it from the index).
    """
    start = 3 if raw.startswith(_BOM) else 0
    try:
        value = _loads(raw[start:] if start else raw)
    except ValueError as exc:
        reason = f"invalid JSON: {_short(exc)}"
        pos = raw.find(_ENTRY_START, 1)
        while pos > 0:  # a writer killed mid-line, then a whole entry appended after it
            try:
                glued = _loads(raw[pos:])
            except ValueError:
                pos = raw.find(_ENTRY_START, pos + 1)
                continue
            if type(glued) is not dict:
                break
            fragment = (f"torn fragment of {pos} bytes before an entry "
                        "(a writer stopped mid-line)")
            problem = check_entry(glued, stem, line, derived_id)
            if problem is not None:
                return None, 0, f"{fragment}; the entry after it: {problem}", True
            return glued, pos, fragment, True
        return None, 0, reason, False
    if type(value) is not dict:
        return None, 0, f"not a JSON object (a {type(value).__name__})", False
    problem = check_entry(value, stem, line, derived_id)
    if problem is not None:
        return None, 0, problem, False
    return value, start, None, False


_LONG_DIGITS = re.compile(rb"[0-9]{20}")


def parse_exact(raw: bytes, stem: str, line: int, *, derived_id: str | None = None,
                ) -> tuple[dict[str, Any] | None, int, str | None, bool]:
    """`parse_line`, with integers beyond 64 bits kept exact, for showing entries as logged.

    orjson reads an integer outside -2**63..2**64-1 as a float (123456789012345678901234567890
    becomes 1.2345678901234568e+29). Such a line, found by its run of 20 digits, is decoded
    again with the standard library, whose integers are exact; parse_line still decides
    whether it is an entry. Other lines cost one regular-expression scan."""
    result = parse_line(raw, stem, line, derived_id=derived_id)
    entry, start = result[0], result[1]
    if entry is None or _LONG_DIGITS.search(raw, start) is None:
        return result
    import json

    try:
        exact = json.loads(raw[start:])  # strict JSON already (orjson accepted it)
    except ValueError:  # an integer of more than 4,300 digits: keep orjson's reading
        return result
    if type(exact) is not dict or check_entry(exact, stem, line, derived_id) is not None:
        return result
    return exact, start, result[2], result[3]


def _loads(data: bytes) -> Any:
    import orjson

    global _loads
    _loads = orjson.loads  # orjson refuses NaN, Infinity and 1e999: no lenient fallback
    return _loads(data)


def check_entry(entry: dict[str, Any], stem: str, line: int,
                derived_id: str | None = None) -> str | None:
    """Why `entry` (a decoded line) is not a log entry, or None. Fills in a missing `id`
    (`<stem>:<line>`) and a missing `timestamp` (from the ULID, else the file's day)."""
    g = entry.get
    v = g("v")
    if v is not None and (v != SCHEMA_VERSION or v is True):
        if type(v) is int and v > SCHEMA_VERSION:
            return (f"schema version v={v} was written by a newer promptlab (this one reads "
                    f"v={SCHEMA_VERSION}); upgrade promptlab")
        return _bad("v", f"{SCHEMA_VERSION}", v)
    entry_id = g("id")
    if entry_id is None:
        entry["id"] = entry_id = derived_id or f"{stem}:{line}"
    elif type(entry_id) is not str or not entry_id.strip() or len(entry_id) > MAX_ID_CHARS:
        return _bad("id", f"a non-empty string of at most {MAX_ID_CHARS} characters", entry_id)
    stamp = g("timestamp")
    if stamp is None:
        derived = _derived_time(entry_id, stem)
        if derived is None:
            return "no \"timestamp\" (and no ULID id or dated file name to take it from)"
        entry["timestamp"] = derived
    elif type(stamp) is not str or _parse_time(stamp) is None:
        return _bad("timestamp", "an ISO 8601 time such as 2026-11-26T23:33:13.123456Z", stamp)
    kind = g("kind")
    if kind is not None and kind not in KINDS:
        return _bad("kind", " or ".join(KINDS), kind)
    status = g("status")
    if status is not None and status not in STATUSES:
        return _bad("status", " or ".join(STATUSES), status)
    return _check_fields(entry)


def _check_fields(entry: dict[str, Any]) -> str | None:
    """Check every schema field of `entry` (other than the ones check_entry looked at)."""
    codes = _FIELD_CODES
    not_str = _NOT_STR
    for name, value in entry.items():
        tv = type(value)
        if tv is str:  # most values: right unless the field wants something else
            if name in not_str:
                return _bad(name, _WANTS[codes[name]], value)
            continue
        code = codes.get(name)
        if code is None or value is None:
            continue
        if code == 0:
            if tv is not str:
                return _bad(name, "a string", value)
        elif code == 1:
            if tv is not int and not (tv is float and value.is_integer()):
                return _bad(name, "a whole number", value)
            if not 0 <= value <= _INT_LIMIT.get(name, LIMITS["tokens"]):
                return _bad(name, f"between 0 and {_INT_LIMIT.get(name, LIMITS['tokens']):,.0f}",
                            value)
        elif code == 2:
            if tv is not int and tv is not float:
                return _bad(name, "a number", value)
            limit = LIMITS.get(name, LIMITS["latency_ms"])
            if not 0 <= value <= limit:
                return _bad(name, f"between 0 and {limit:,.0f}", value)
        elif code == 3:
            if tv is not bool:
                return _bad(name, "true or false", value)
        elif code == 4:
            if tv is not str and not (tv is list and all(type(t) is str for t in value)):
                return _bad(name, "a list of strings", value)
        elif code == 5:
            if tv is not dict:
                return _bad(name, "a JSON object", value)
        elif code == 6:
            if tv is not list or not all(type(m) is dict and type(m.get("role")) is str
                                         for m in value):
                return _bad(name, "a list of {\"role\": …, \"content\": …} objects", value)
        elif code == 7:  # values that are not numbers or booleans are ignored by every reader
            if tv is not dict:
                return _bad(name, "an object of score name to number or true/false", value)
        elif code == 8 and tv is not str and tv is not int:
            return _bad(name, "a string or an integer", value)
    return None


def _short(exc: Exception) -> str:
    text = str(exc)
    return text if len(text) <= 80 else text[:77] + "..."


def _bad(name: str, what: str, value: Any) -> str:
    shown = repr(value)
    if len(shown) > 40:
        shown = shown[:37] + "..."
    return f"field {name!r} must be {what}, got {type(value).__name__} {shown}"


def _parse_time(text: str) -> _dt.datetime | None:
    """The time `text` names (naive means UTC), or None when it is not ISO 8601 or falls
    outside years 1-9999 once in UTC."""
    try:
        moment = _dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.year in (1, 9999) and moment.utcoffset():  # UTC may be in year 0 or 10000
        try:
            moment.astimezone(_dt.UTC)
        except OverflowError:
            return None
    return moment


def _utc_bound(timestamp: str) -> str:
    """A timestamp written with an offset (or none) in the canonical UTC form the bounds of
    `read_entries` are compared with; unchanged when it is not a time."""
    moment = _parse_time(timestamp)
    if moment is None:
        return timestamp
    return parse_bound(moment) or timestamp


def utc_time(timestamp: str | None) -> str:
    """A logged timestamp as `YYYY-MM-DD HH:MM:SS` in UTC, for tables that say "(UTC)".

    promptlab writes `…Z` timestamps, which are cut, not parsed; any other form (an offset
    such as `+05:00`, no zone: UTC) is converted. Text that is not a time is shown cut."""
    if not timestamp:
        return ""
    if timestamp[-1] == "Z" and len(timestamp) >= 20 and timestamp[10] == "T" \
            and timestamp[19] in ".Z":
        return timestamp[:10] + " " + timestamp[11:19]
    moment = _parse_time(timestamp)
    if moment is None:
        return timestamp[:19].replace("T", " ")
    if moment.tzinfo is not None:
        moment = moment.astimezone(_dt.UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def _derived_time(entry_id: str, stem: str) -> str | None:
    """The time in a ULID id, else midnight (UTC) of a day file, as a canonical timestamp."""
    if _ULID.match(entry_id):
        ms = 0
        for ch in entry_id[:10]:
            ms = ms * 32 + _CROCKFORD[ch]
        moment = _dt.datetime.fromtimestamp(ms / 1000, tz=_dt.UTC)
        return moment.strftime("%Y-%m-%dT%H:%M:%S.%f") + "Z"
    if _DAY_STEM.match(stem) and _parse_time(stem) is not None:
        return stem + "T00:00:00.000000Z"
    return None


def stem_of(name: str) -> str:
    """A log file's name without `.jsonl`: the first part of derived ids."""
    return name[:-6] if name.endswith(".jsonl") else name


def log_file_names(folder: Path) -> list[str]:
    """Names of the daily files `YYYY-MM-DD.jsonl` in `folder` (regular files), sorted."""
    import os

    try:
        with os.scandir(folder) as it:
            return sorted(e.name for e in it if _DAY_FILE.match(e.name) and e.is_file())
    except (FileNotFoundError, NotADirectoryError):
        return []


# -- reading --------------------------------------------------------------------------------------


def read_file(path: str | Path, stats: ReadStats | None = None) -> Iterator[dict[str, Any]]:
    """Entries of one file in order; unreadable lines go to `stats.problems`."""
    path = Path(path)
    stem = stem_of(path.name)
    with open(path, "rb") as fh:
        lineno = 0
        for raw in fh:
            lineno += 1
            if not raw.endswith(b"\n"):
                if raw and not raw.isspace():
                    entry, _, problem, _ = parse_line(raw, stem, lineno)
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
            if raw.isspace():
                continue
            entry, _, problem, torn = parse_line(raw, stem, lineno)
            if problem is not None and stats is not None:
                stats.problems.append(Problem(path, lineno, problem, torn))
            if entry is not None:
                if stats is not None:
                    stats.entries += 1
                yield entry


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
                if isinstance(ts, str) and ts[-1:] != "Z":  # an offset, or no zone: as UTC
                    ts = _utc_bound(ts)
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
