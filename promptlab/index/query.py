"""Reading the index: filters, listing newest first, full-text search, one entry by id.

Results carry the entry exactly as logged (read from its JSONL line by byte offset), so the
index never stores the texts a second time.
"""

from __future__ import annotations

import os
import re
import sqlite3
import time
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from promptlab.errors import LogIndexError, OptionError, UsageError
from promptlab.index.fts import FtsQuery, SearchQueryError, check_size, parse_search, snippet
from promptlab.index.ids import EntryNotFoundError, resolve_id
from promptlab.logs.reader import parse_exact, stem_of

if TYPE_CHECKING:
    from promptlab.index.core import Index

KINDS = ("llm", "span", "feedback")
STATUSES = ("ok", "error")
SEARCH_WINDOW = 1000  # default: rank the newest this-many matches


# -- filters ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Filters:
    """What to select. `since`/`until` are epoch seconds (use parse_when for user text)."""

    prompt: str | None = None
    version: str | None = None
    model: str | None = None
    tags: tuple[str, ...] = ()
    experiment: str | None = None
    variant: str | None = None
    status: str | None = None
    kind: str | None = "llm"  # None: every kind
    since: float | None = None
    until: float | None = None
    trace_id: str | None = None

    def where(self, alias: str = "e", conn: Any = None) -> tuple[str, list[Any]]:
        """SQL condition over `entries AS alias` and its parameters. With `conn`, a tag
        filter is planned by how common the tag is (a rare tag: look its entries up; a common
        one: check each entry while walking newest first and stop at the limit)."""
        a = alias
        clauses: list[str] = []
        params: list[Any] = []
        for column, value in (
            ("prompt_id", self.prompt), ("prompt_version", self.version),
            ("experiment", self.experiment), ("variant", self.variant),
            ("status", self.status), ("kind", self.kind), ("trace_id", self.trace_id),
        ):
            if value is not None:
                clauses.append(f"{a}.{column} = ?")
                params.append(value)
        if self.model is not None:
            if any(c in self.model for c in "*?["):
                clauses.append(f"{a}.model GLOB ?")
            else:
                clauses.append(f"{a}.model = ?")
            params.append(self.model)
        for tag in self.tags:
            if conn is not None and _is_common_tag(conn, tag):
                clauses.append(f"EXISTS (SELECT 1 FROM entry_tags WHERE tag = ? AND "
                               f"entry_rowid = {a}.rowid)")
            else:
                clauses.append(f"{a}.rowid IN (SELECT entry_rowid FROM entry_tags WHERE tag = ?)")
            params.append(tag)
        if self.since is not None:
            clauses.append(f"{a}.ts >= ?")
            params.append(self.since)
        if self.until is not None:
            clauses.append(f"{a}.ts < ?")
            params.append(self.until)
        return (" AND ".join(clauses) or "1"), params


def _is_common_tag(conn: Any, tag: str, threshold: int = 5000) -> bool:
    return conn.execute(
        "SELECT count(*) FROM (SELECT 1 FROM entry_tags WHERE tag = ? LIMIT ?)", (tag, threshold)
    ).fetchone()[0] >= threshold


# Times outside years 1..9999 are clamped to them: "--since 99999999d" means "from the start".
MIN_TS = datetime(1, 1, 1, tzinfo=UTC).timestamp()
MAX_TS = datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC).timestamp()
MAX_TAGS = 64  # tags one filter may require (each is a clause: SQLite's depth is bounded)
MAX_ROWS = 2**62  # a larger --limit or --window means "all" (SQLite's integers are 64-bit)


def row_limit(value: int | None, what: str = "limit") -> int | None:
    """A LIMIT SQLite can take: None (no limit) for None or anything beyond MAX_ROWS;
    UsageError for anything but a whole number of 0 or more."""
    if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                              or value < 0):
        raise UsageError(f"{what} {value!r}: expected a whole number, 0 or more (None: no "
                         "limit)")
    if value is None or value > MAX_ROWS:
        return None
    return int(value)


_AGE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|sec|m|min|h|hr|d|day|days|w|wk|weeks?)\s*$", re.I)
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_when(value: Any, *, option: str = "since", end: bool = False,
               now: float | None = None) -> float | None:
    """Epoch seconds for a user's time: a date (UTC), an ISO time, `7d`/`24h`/`30m`/`2w`,
    `today`, `yesterday`, or a datetime. With `end`, a bare date means the end of that day.
    A bad value raises an OptionError naming `option`."""
    if value is None or value == "":
        return None
    when = _when(value, option, end, now)
    if when != when:  # NaN
        raise OptionError(lambda p: f"{p}{option} {value!r} is not a time")
    return min(max(when, MIN_TS), MAX_TS)


def _when(value: Any, option: str, end: bool, now: float | None) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()
    text = str(value).strip()
    now = time.time() if now is None else now
    age = _AGE.match(text)
    if age:
        return now - float(age.group(1)) * _UNITS[age.group(2)[0].lower()]
    lowered = text.lower()
    if lowered in ("today", "yesterday", "now"):
        if lowered == "now":
            return now
        midnight = (now // 86400) * 86400 - (86400 if lowered == "yesterday" else 0)
        return midnight + (86400 if end else 0)
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            day = datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=UTC).timestamp()
            return day + (86400 if end else 0)
        dt = datetime.fromisoformat(text)
    except ValueError:
        dt = None
    if dt is None:
        raise OptionError(
            lambda p: f"{p}{option} {text!r}: expected a date (2026-01-31), a time "
            "(2026-01-31T14:00), an age (30m, 24h, 7d, 2w), today or yesterday"
        )
    return (dt if dt.tzinfo else dt.replace(tzinfo=UTC)).timestamp()


def make_filters(base: Filters | None, values: dict[str, Any]) -> Filters:
    """Filters from keyword arguments (as the Python API and the CLI take them), validated."""
    values = {k: v for k, v in values.items() if v is not None and v != ()}
    known = {"prompt", "version", "model", "tag", "tags", "experiment", "variant", "status",
             "kind", "since", "until", "trace_id"}
    unknown = sorted(set(values) - known)
    if unknown:
        raise UsageError(f"unknown filter {unknown[0]!r}; known: {', '.join(sorted(known))}")
    f = base or Filters()
    prompt = values.get("prompt", f.prompt)
    version = values.get("version", f.version)
    if prompt is not None and version is None:
        prompt, version = split_prompt_ref(str(prompt))
    if version is not None:
        version = normalize_version(str(version))
    tags = values.get("tags", values.get("tag", f.tags))
    if isinstance(tags, str):
        tags = (tags,)
    tags = tuple(dict.fromkeys(str(t) for t in tags))  # a tag given twice is one filter
    if len(tags) > MAX_TAGS:
        raise OptionError(lambda p: f"{len(tags):,} {p}tag filters: at most {MAX_TAGS} (an "
                          "entry must carry every one)")
    kind = values.get("kind", f.kind)
    if kind == "all":
        kind = None
    if kind is not None and kind not in KINDS:
        raise OptionError(lambda p: f"{p}kind {kind!r}: expected one of {', '.join(KINDS)} "
                          "or all")
    status = values.get("status", f.status)
    if status is not None and status not in STATUSES:
        raise OptionError(lambda p: f"{p}status {status!r}: expected ok or error")
    since = parse_when(values["since"], option="since") if "since" in values else f.since
    until = (parse_when(values["until"], option="until", end=True)
             if "until" in values else f.until)
    if since is not None and until is not None and since >= until:
        raise OptionError(lambda p: f"{p}since ({_iso(since)}) is not before {p}until "
                          f"({_iso(until)})")
    return replace(
        f, prompt=prompt, version=version, model=values.get("model", f.model),
        tags=tags, experiment=values.get("experiment", f.experiment),
        variant=values.get("variant", f.variant), status=status, kind=kind, since=since,
        until=until, trace_id=values.get("trace_id", f.trace_id),
    )


def filter_kwargs(f: Filters | None) -> dict[str, Any]:
    """The keyword arguments `make_filters` turns back into `f` (for APIs taking keywords)."""
    if f is None:
        return {}
    return {"prompt": f.prompt, "version": f.version, "model": f.model, "tags": f.tags,
            "experiment": f.experiment, "variant": f.variant, "status": f.status,
            "kind": "all" if f.kind is None else f.kind, "since": f.since, "until": f.until,
            "trace_id": f.trace_id}


def split_prompt_ref(ref: str) -> tuple[str, str | None]:
    """`code-review@v2` or `code-review/v2` → ("code-review", "v2"); else (ref, None)."""
    for sep in ("@", "/"):
        head, found, tail = ref.rpartition(sep)
        if found and head and re.fullmatch(r"v?\d+", tail):
            return head, normalize_version(tail)
    return ref, None


def normalize_version(version: str) -> str:
    return f"v{version}" if version.isdigit() else version


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


# -- hits -------------------------------------------------------------------------------


@dataclass
class SearchHit:
    """One result: the logged entry, and for searches a snippet and the bm25 rank; searches
    by meaning add `score` (higher is better) and `distance` (cosine, 0 to 2)."""

    entry: dict[str, Any]
    rowid: int = 0
    rank: float | None = None
    snippet: str | None = None
    fields: dict[str, Any] = field(default_factory=dict)
    score: float | None = None
    distance: float | None = None


_HIT_COLUMNS = ("rowid", "id", "file_id", "offset", "length", "timestamp", "kind", "model",
                "prompt_id", "prompt_version", "status", "error", "input_tokens",
                "output_tokens", "latency_ms", "cost_usd", "trace_id", "name", "target")


def _select_hits(alias: str = "e") -> str:
    return ", ".join(f"{alias}.{c}" for c in _HIT_COLUMNS)


def load_entries(index: Index, rows: Iterable[tuple[Any, ...]]) -> list[SearchHit]:
    """Hits for rows of _HIT_COLUMNS, each entry read from its JSONL line (one open per
    file). An entry whose line cannot be read any more falls back to the indexed columns."""
    rows = list(rows)
    names = dict(index.conn.execute("SELECT file_id, name FROM files").fetchall())
    by_file: dict[int, list[int]] = {}
    for i, row in enumerate(rows):
        by_file.setdefault(row[2], []).append(i)
    entries: list[dict[str, Any] | None] = [None] * len(rows)
    for file_id, positions in by_file.items():
        name = names.get(file_id)
        if name is None:
            continue
        try:
            fd = os.open(index.log_dir / name, os.O_RDONLY)
        except OSError:
            continue
        stem = stem_of(name)
        try:
            for i in positions:
                _, entry_id, _, offset, length = rows[i][:5]
                try:
                    raw = os.pread(fd, length, offset)
                except OSError:
                    continue
                # The reader's own parser: the same derived id and timestamp, the same checks
                # (and integers beyond 64 bits exact: the entry is shown as logged).
                value = parse_exact(raw, stem, 0, derived_id=entry_id)[0]
                if value is not None and value["id"] == entry_id:
                    entries[i] = value
        finally:
            os.close(fd)
    hits = []
    for row, entry in zip(rows, entries, strict=True):
        fields = dict(zip(_HIT_COLUMNS, row, strict=False))
        if entry is None:  # the file changed since the last sync
            entry = {k: v for k, v in fields.items()
                     if v is not None and k not in ("rowid", "file_id", "offset", "length")}
        hits.append(SearchHit(entry=entry, rowid=row[0], fields=fields))
    return hits


# -- listing ------------------------------------------------------------------------------


def list_entries(index: Index, filters: Filters, limit: int | None = 20) -> list[SearchHit]:
    """Entries matching `filters`, newest first."""
    where, params = filters.where(conn=index.conn)
    sql = (f"SELECT {_select_hits()} FROM entries e WHERE {where} "
           "ORDER BY e.ts DESC, e.rowid DESC")
    limit = row_limit(limit)
    if limit is not None:
        sql += " LIMIT ?"
        params.append(limit)
    return load_entries(index, index.conn.execute(sql, params).fetchall())


# -- search -----------------------------------------------------------------------------


def search_entries(index: Index, text: str, filters: Filters, *, limit: int | None = 20,
                   sort: str = "rank", window: int | None = SEARCH_WINDOW,
                   raw: bool = False, field_name: str | None = None,
                   snippet_width: int = 160) -> list[SearchHit]:
    """Full-text search. `sort="rank"` ranks (bm25) the newest `window` matches (None: all
    of them); `sort="recent"` returns the newest matches. Query syntax: see index_fts."""
    if sort not in ("rank", "recent"):
        raise OptionError(lambda p: f"{p}sort {sort!r}: expected rank or recent")
    if raw:
        check_size(text)
    query = FtsQuery(text, raw=True) if raw else parse_search(text)
    match = query.match(field_name)
    filters = replace(filters, kind=None) if filters.kind == "llm" else filters
    where, params = filters.where(conn=index.conn)
    rank = "f.rank" if sort == "rank" else "NULL"
    stale = index.conn.execute("SELECT value FROM meta WHERE key = 'fts_stale'").fetchone()
    if where == "1" and not (stale and stale[0]):
        # Nothing to filter, no rows of removed lines: rank on the full-text index alone and
        # fetch the columns of the top rows only.
        sql = (f"SELECT f.rowid, {rank} FROM entries_fts f WHERE entries_fts MATCH ? "
               "ORDER BY f.rowid DESC")
    else:
        sql = (f"SELECT f.rowid, {rank} FROM entries_fts f JOIN entries e ON e.rowid = f.rowid "
               f"WHERE entries_fts MATCH ? AND {where} ORDER BY f.rowid DESC")
    limit, window = row_limit(limit), row_limit(window, "window")
    cap = limit if sort == "recent" else window
    if cap is not None:
        sql += f" LIMIT {int(cap)}"
    try:
        ranked = index.conn.execute(sql, [match, *params]).fetchall()
    except sqlite3.OperationalError as exc:  # fts5 syntax errors and the like
        if raw:
            raise LogIndexError(
                f"invalid full-text query {text!r}: {exc}; leave out --fts to search the words "
                "literally"
            ) from exc
        if "fts5" not in str(exc) and "string" not in str(exc):
            raise
        raise SearchQueryError(f"cannot search for {text!r}: {exc}; try fewer special "
                               "characters") from exc
    if sort == "rank":
        ranked.sort(key=lambda r: (r[1], -r[0]))
    if limit is not None:
        ranked = ranked[: int(limit)]
    found = {}
    for start in range(0, len(ranked), 500):
        chunk = [r[0] for r in ranked[start:start + 500]]
        found.update((r[0], r) for r in index.conn.execute(
            f"SELECT {_select_hits()} FROM entries e WHERE e.rowid IN "
            f"({', '.join('?' * len(chunk))})", chunk))
    rows = [(*found[rowid], rank_value) for rowid, rank_value in ranked if rowid in found]
    hits = load_entries(index, [r[:-1] for r in rows])
    for hit, row in zip(hits, rows, strict=True):
        hit.rank = row[-1]
        hit.snippet = snippet(hit.entry, query.highlight_terms(), width=snippet_width)
    return hits


# -- one entry ------------------------------------------------------------------------------


def find_entry_row(index: Index, ref: str, *, what: str = "entry") -> tuple[Any, ...]:
    """The row (_HIT_COLUMNS) of an entry by id, by a unique prefix of at least
    ids.MIN_PREFIX characters, or `last` for the newest LLM call."""
    ref = ref.strip()
    if ref.lower() in ("last", "latest"):
        row = index.conn.execute(
            f"SELECT {_select_hits()} FROM entries e WHERE e.kind = 'llm' "
            "ORDER BY e.ts DESC, e.rowid DESC LIMIT 1").fetchone()
        if row is None:
            raise EntryNotFoundError(f"no LLM calls in the log index of {index.log_dir} yet")
        return row
    entry_id = resolve_id(index.conn, ref, what=what, place=f"the log index of {index.log_dir}",
                          hint="list recent ones with `promptlab logs`")
    return index.conn.execute(
        f"SELECT {_select_hits()} FROM entries e WHERE e.id = ?", (entry_id,)).fetchone()


def get_entry(index: Index, ref: str) -> SearchHit:
    return load_entries(index, [find_entry_row(index, ref)])[0]


@dataclass
class EntryDetails:
    """`logs show`: the entry, its scores (with where each came from), the feedback entries
    that scored it, and where it sits in its trace."""

    entry: dict[str, Any]
    scores: list[dict[str, Any]]
    feedback: list[dict[str, Any]]
    trace: dict[str, Any] | None


def entry_details(index: Index, ref: str) -> EntryDetails:
    hit = get_entry(index, ref)
    conn = index.conn
    scores = [
        {"name": name, "value": bool(value) if is_bool else value, "source": source,
         "feedback_id": feedback_id}
        for name, value, is_bool, source, feedback_id in conn.execute(
            "SELECT name, value, is_bool, source, feedback_id FROM scores "
            "WHERE entry_rowid = ? ORDER BY name", (hit.rowid,))
    ]
    feedback_rows = conn.execute(
        f"SELECT {_select_hits()} FROM entries e WHERE e.target = ? ORDER BY e.id",
        (hit.entry.get("id"),)).fetchall()
    feedback = [h.entry for h in load_entries(index, feedback_rows)]
    trace = None
    trace_id = hit.fields.get("trace_id")
    if trace_id:
        from promptlab.index.trace import build_trace, position_in

        trace = position_in(build_trace(index, trace_id), hit.entry)
    return EntryDetails(entry=hit.entry, scores=scores, feedback=feedback, trace=trace)
