"""Incremental sync: JSONL files → the SQLite index (see index_schema for the tables).

Each file's identity (device, inode, first bytes) and byte offset are remembered; a sync
reads only the bytes after the offset and ingests whole lines only, so a line still being
written is picked up by a later sync. A file whose identity changed, that shrank, or whose
byte before the offset is not a newline was replaced: its rows are removed and it is read
again. A file that disappeared has its rows removed. Malformed lines are counted, never
fatal.

Every chunk is one `BEGIN IMMEDIATE` transaction that re-reads the file's offset under the
write lock, so any number of processes may sync at once: each line is ingested once.
"""

from __future__ import annotations

import math
import os
import sqlite3
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from promptlab.index import parse
from promptlab.index.parse import (
    MAX_PROBLEMS,
    Batch,
    content_text,
    entry_texts,
    list_log_files,
    parse_lines,
    read_lines,
    rollup_rows,
    sanitize,
    score_rows,
)
from promptlab.index.schema import (
    ENTRY_COLUMNS,
    ENTRY_INDEXES,
    ROLLUP_KEYS,
    ROLLUP_MEASURES,
    UNIT_MAX_ABS,
    UNIT_METRICS,
    UNIT_SQL,
    rollup_select_sql,
    score_unit_rollup_select_sql,
    unit_rollup_columns,
    unit_rollup_select_sql,
    unit_rollup_upsert_sql,
)
from promptlab.logs.reader import parse_line, stem_of

BULK_BYTES = 64 * 1024 * 1024  # an empty index loading more than this drops secondary indexes
PREFETCH = True  # parse the next chunk on a helper thread while SQLite indexes this one

_INSERT_ENTRY = (
    f"INSERT OR IGNORE INTO entries ({', '.join(ENTRY_COLUMNS)}) "
    f"VALUES ({', '.join('?' * len(ENTRY_COLUMNS))})"
)
_SCORE_COLS = (
    "entry_rowid, entry_id, name, value, is_bool, source, feedback_id, "
    "prompt_id, prompt_version, experiment, variant, unit, own"
)
_INSERT_OWN_SCORE = (
    f"INSERT INTO scores ({_SCORE_COLS}) VALUES (?, ?, ?, ?, ?, 'entry', NULL, ?, ?, ?, ?, ?, 1) "
    "ON CONFLICT (entry_rowid, name) DO NOTHING"
)
# Feedback replaces a value and keeps `own`: the entry's line still carries its own score.
_FOLD_FEEDBACK = (
    f"INSERT INTO scores ({_SCORE_COLS}) VALUES (?, ?, ?, ?, ?, 'feedback', ?, ?, ?, ?, ?, ?, 0) "
    "ON CONFLICT (entry_rowid, name) DO UPDATE SET value = excluded.value, "
    "is_bool = excluded.is_bool, source = 'feedback', feedback_id = excluded.feedback_id "
    "WHERE scores.source = 'entry' OR scores.feedback_id < excluded.feedback_id"
)
# What a score row copies from its entry: the columns, then the randomisation unit.
_TARGET_BASE = ("rowid", "id", "prompt_id", "prompt_version", "experiment", "variant")
_TARGET_COLS = ", ".join(_TARGET_BASE) + ", " + UNIT_SQL.format(p="")
_UNIT_ID, _ITEM_ID = ENTRY_COLUMNS.index("unit_id"), ENTRY_COLUMNS.index("item_id")
# The per-unit roll-up of a batch of new rows (`unit_rollup_rows`), merged into unit_rollup
# (migration 008); and of whole prompt versions, to recompute them after rows were removed.
_UNIT_ROLLUP_ADD = unit_rollup_upsert_sql()
_UNIT_ROLLUP_VERSION = (
    f"INSERT INTO unit_rollup ({', '.join(unit_rollup_columns())}) "
    + unit_rollup_select_sql("prompt_id = ? AND prompt_version = ?"))
_KIND, _PROMPT, _VERSION, _STATUS = (ENTRY_COLUMNS.index(c) for c in (
    "kind", "prompt_id", "prompt_version", "status"))
_METRIC_COLS = tuple(ENTRY_COLUMNS.index(c) for c in UNIT_METRICS)
# The per-unit score roll-up (migration 009): the keys a batch touched, recomputed from
# `scores` (never adjusted), in the same transaction as the change.
_TOUCHED_TABLE = ("CREATE TEMP TABLE IF NOT EXISTS touched_units (p TEXT NOT NULL, "
                  "v TEXT NOT NULL, n TEXT NOT NULL, u TEXT NOT NULL, "
                  "PRIMARY KEY (p, v, n, u)) WITHOUT ROWID")
_TOUCH = "INSERT OR IGNORE INTO temp.touched_units VALUES (?, ?, ?, ?)"
# A call without unit or item id is a unit of its own and not rolled up — unless its id is
# some other call's unit id (then it belongs to that unit's row): touched only if that row
# exists.
_IN_ROLLUP = ("EXISTS (SELECT 1 FROM score_unit_rollup r WHERE r.prompt_id = {p} AND "
              "r.prompt_version = {v} AND r.name = {n} AND r.unit = {u})")
_LONE_TABLE = _TOUCHED_TABLE.replace("touched_units", "lone_units")
_TOUCH_LONE = "INSERT OR IGNORE INTO temp.lone_units VALUES (?, ?, ?, ?)"
_LONE_IN_ROLLUP = ("INSERT OR IGNORE INTO temp.touched_units SELECT l.p, l.v, l.n, l.u FROM "
                   "temp.lone_units l WHERE "
                   + _IN_ROLLUP.format(p="l.p", v="l.v", n="l.n", u="l.u"))
_VERSION_ROLLED = ("SELECT 1 FROM score_unit_rollup WHERE prompt_id = ? AND "
                   "prompt_version = ? LIMIT 1")
_TOUCH_ROWS = ("INSERT OR IGNORE INTO temp.touched_units SELECT prompt_id, prompt_version, "
               "name, unit FROM scores s WHERE entry_rowid IN ({rowids}) AND prompt_id IS NOT "
               "NULL AND prompt_version IS NOT NULL AND (unit != entry_id OR "
               + _IN_ROLLUP.format(p="s.prompt_id", v="s.prompt_version", n="s.name",
                                   u="s.unit") + ")")
_SCORE_UNITS_CLEAR = ("DELETE FROM score_unit_rollup WHERE (prompt_id, prompt_version, name, "
                      "unit) IN (SELECT p, v, n, u FROM temp.touched_units)")
_SCORE_UNITS_REDO = ("INSERT INTO score_unit_rollup "
                     + score_unit_rollup_select_sql("temp.touched_units"))
_SCORE_UNITS_STALE = "score_unit_rollup_stale"
_OWN_SCORES_UNREAD = "own_scores_unread"


def unit_rollup_rows(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """unit_rollup rows of a batch of entry rows, as schema.unit_rollup_select_sql computes
    them from the table (in Python: a third of the time of that SQL's two passes)."""
    groups: dict[tuple[Any, ...], list[tuple[Any, ...]]] = {}
    for r in rows:
        if r[_KIND] != "llm" or r[_PROMPT] is None or r[_VERSION] is None:
            continue
        unit = r[_UNIT_ID]
        if unit is None:
            unit = r[_ITEM_ID]
        key = (r[_PROMPT], r[_VERSION], 0, "") if unit is None else (
            r[_PROMPT], r[_VERSION], 1, unit)
        found = groups.get(key)
        if found is None:
            groups[key] = [r]
        else:
            found.append(r)
    out = []
    empty = (0, 0.0, 0.0, 0, 0, 0)
    for key, group in groups.items():
        if len(group) == 1:  # the common case with many units: one call per unit and batch
            r = group[0]
            if r[_STATUS] == "error":
                out.append((*key, 1, 1, *empty * len(_METRIC_COLS)))
                continue
            one: list[Any] = [*key, 1, 0]
            for col in _METRIC_COLS:
                x = r[col]
                if x is None:
                    one += empty
                elif not isinstance(x, int | float):
                    one += (0, 0.0, 0.0, 0, 0, 1)
                elif -UNIT_MAX_ABS <= x <= UNIT_MAX_ABS:
                    one += (1, float(x), 0.0, int(x in (0, 1)), 0, 0)
                else:
                    one += (0, 0.0, 0.0, 0, 1, 0)
            out.append(tuple(one))
            continue
        ok = [r for r in group if r[_STATUS] != "error"]
        row: list[Any] = [*key, len(group), len(group) - len(ok)]
        for col in _METRIC_COLS:
            xs, big, bad = [], 0, 0
            for r in ok:
                x = r[col]
                if x is None:
                    continue
                if isinstance(x, int | float):
                    if -UNIT_MAX_ABS <= x <= UNIT_MAX_ABS:
                        xs.append(x)
                    else:
                        big += 1
                else:
                    bad += 1
            n = len(xs)
            if n == 1:
                row += (1, float(xs[0]), 0.0, int(xs[0] in (0, 1)), big, bad)
            elif n:
                mean = math.fsum(xs) / n
                row += (n, mean, math.fsum((x - mean) * (x - mean) for x in xs),
                        sum(1 for x in xs if x in (0, 1)), big, bad)
            else:
                row += (0, 0.0, 0.0, 0, big, bad)
        out.append(tuple(row))
    return out


def _unit(row: tuple[Any, ...]) -> Any:
    """An entry row's randomisation unit, as UNIT_SQL computes it."""
    unit = row[_UNIT_ID]
    if unit is None:
        unit = row[_ITEM_ID]
    return row[1] if unit is None else unit


@dataclass
class SyncStats:
    """What one sync did. `problems` holds the first malformed lines as `file:line: why`."""

    files: int = 0
    entries: int = 0
    duplicates: int = 0
    malformed: int = 0
    replaced: int = 0
    removed: int = 0
    bytes: int = 0
    seconds: float = 0.0
    problems: list[str] = field(default_factory=list)



# -- writing -----------------------------------------------------------------------------

_INSERT_FTS_JSON = (
    "INSERT INTO entries_fts (rowid, system_prompt, user_message, assistant_response) "
    "SELECT value->>0, value->>1, value->>2, value->>3 FROM json_each(?)"
)
_INSERT_TAGS = (
    "INSERT OR IGNORE INTO entry_tags (tag, entry_rowid) SELECT t.value, e.rowid "
    "FROM entries e, json_each(e.tags) t WHERE e.rowid BETWEEN ? AND ? AND e.tags IS NOT NULL"
)
_ROLLUP_ADD = {
    table: (
        f"INSERT INTO {table} ({', '.join((*ROLLUP_KEYS, *tag, *ROLLUP_MEASURES))}) "
        f"VALUES ({', '.join('?' * (len(ROLLUP_KEYS) + len(tag) + len(ROLLUP_MEASURES)))}) "
        "ON CONFLICT DO UPDATE SET "
        + ", ".join(f"{m} = {m} + excluded.{m}" for m in ROLLUP_MEASURES)
    )
    for table, tag in (("rollup", ()), ("rollup_tags", ("tag",)))
}


@dataclass(frozen=True)
class _Work:
    """A file with new bytes, as the index knew it when the sync started."""

    name: str
    file_id: int
    offset: int
    lines: int


@dataclass
class _Prefetch:
    """The next chunk of a file, parsed ahead on the helper thread."""

    key: tuple[int, int, int, int]  # (file_id, offset, first rowid, lines before)
    future: Any


class Syncer:
    """Brings the index tables up to date with the JSONL files of one log folder."""

    def __init__(self, conn: sqlite3.Connection, log_dir: Path):
        self.conn = conn
        self.log_dir = log_dir
        self._executor: Any = None
        # score_unit_rollup keys touched since the last flush; None while the roll-up is
        # rebuilt as a whole at the end of the sync (bulk load: no scores_by_unit meanwhile)
        self._touched: set[tuple[Any, ...]] | None = set()
        self._lone: set[tuple[Any, ...]] = set()  # keys of calls without unit or item id

    # - public -

    def sync(self) -> SyncStats:
        """Ingest what is new in every file; remove the rows of files that disappeared."""
        started = time.perf_counter()
        stats = SyncStats()
        if self._meta("reindex_needed"):
            self.clear()
        if self._meta(_OWN_SCORES_UNREAD):
            self._in_transaction(self._read_own_scores)
        names = list_log_files(self.log_dir)
        known = {
            row[0]: row[1:]
            for row in self.conn.execute("SELECT name, dev, inode, size, mtime_ns FROM files")
        }
        todo: list[tuple[str, int]] = []
        for name in names:
            try:
                st = os.stat(self.log_dir / name)
            except FileNotFoundError:
                continue
            if known.get(name) != (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns):
                todo.append((name, st.st_size))
        gone = sorted(set(known) - set(names))
        if not todo and not gone:
            if self._meta(_SCORE_UNITS_STALE) and not self._missing_indexes():
                self._in_transaction(self._rebuild_score_units)  # an interrupted bulk load
            stats.seconds = time.perf_counter() - started
            return stats
        stale = self._missing_indexes() or bool(self._meta(_SCORE_UNITS_STALE))
        self._touched = None if stale else set()
        for name in gone:
            self._in_transaction(self._forget_file, name, stats)
        bulk = (
            sum(size for _, size in todo) > BULK_BYTES
            and self.conn.execute("SELECT 1 FROM entries LIMIT 1").fetchone() is None
        )
        try:
            if bulk:
                self._touched = None
                self._in_transaction(self._drop_secondary_indexes)
            self._ingest([name for name, _ in todo], stats)
        finally:
            if self._executor is not None:
                self._executor.shutdown(wait=True)
                self._executor = None
            if bulk or self._missing_indexes():
                self._in_transaction(self._create_indexes)
            if self._touched is None:
                self._in_transaction(self._rebuild_score_units)
            self._touched = set()
        stats.seconds = time.perf_counter() - started
        return stats

    def clear(self) -> None:
        """Empty every derived table (the next sync reads all files from the start)."""

        def run() -> None:
            for table in ("entries", "entry_tags", "scores", "pending_feedback", "rollup",
                          "rollup_tags", "unit_rollup", "score_unit_rollup", "files", "meta"):
                self.conn.execute(f"DELETE FROM {table}")
            self.conn.execute("INSERT INTO entries_fts (entries_fts) VALUES ('delete-all')")

        self._in_transaction(run)

    def read_entry(self, file_id: int, offset: int, length: int) -> dict[str, Any] | None:
        """The entry stored at a file position, or None when it cannot be read any more."""
        row = self.conn.execute("SELECT name FROM files WHERE file_id = ?", (file_id,)).fetchone()
        if row is None:
            return None
        try:
            with open(self.log_dir / row[0], "rb") as fh:
                data = os.pread(fh.fileno(), length, offset)
        except OSError:
            return None
        return parse_line(data, stem_of(row[0]), 0)[0]

    # - plumbing -

    def _in_transaction(self, fn: Any, *args: Any) -> Any:
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            result = fn(*args)
        except BaseException:
            if self.conn.in_transaction:
                self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")
        return result

    def _meta(self, key: str, default: Any = None) -> Any:
        row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return default if row is None else row[0]

    def _set_meta(self, key: str, value: Any) -> None:
        self.conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    def _missing_indexes(self) -> bool:
        have = {r[0] for r in self.conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'index'")}
        return not set(ENTRY_INDEXES) <= have

    def _drop_secondary_indexes(self) -> None:
        # Readers must not trust score_unit_rollup until it is rebuilt (sync's end).
        self._set_meta(_SCORE_UNITS_STALE, 1)
        for name in ENTRY_INDEXES:
            self.conn.execute(f"DROP INDEX IF EXISTS {name}")

    # - the per-unit score roll-up -

    def _touch(self, keys: Iterable[tuple[Any, ...]], keyed: bool = True) -> None:
        """Remember score_unit_rollup keys (prompt, version, name, unit) to recompute —
        not `keyed` (a call without unit or item id): only if the key has a row."""
        if self._touched is not None:
            (self._touched if keyed else self._lone).update(k for k in keys if None not in k)

    def _touch_rows(self, rowids: str) -> None:
        """Remember the keys of the score rows of some entries (before they change)."""
        if self._touched is None:
            return
        self._flush_touched_keys()
        self.conn.execute(_TOUCH_ROWS.format(rowids=rowids))

    def _flush_touched_keys(self) -> None:
        self.conn.execute(_TOUCHED_TABLE)
        if self._touched:
            self.conn.executemany(_TOUCH, sorted(self._touched))
            self._touched.clear()
        if self._lone:
            # Mostly none of them has a row: skip the versions without any row at all.
            rolled: dict[tuple[Any, ...], bool] = {}
            for version in {k[:2] for k in self._lone}:
                rolled[version] = bool(self.conn.execute(_VERSION_ROLLED, version).fetchone())
            lone = sorted(k for k in self._lone if rolled[k[:2]])
            self._lone.clear()
            if lone:
                self.conn.execute(_LONE_TABLE)
                self.conn.executemany(_TOUCH_LONE, lone)
                self.conn.execute(_LONE_IN_ROLLUP)
                self.conn.execute("DELETE FROM temp.lone_units")

    def _flush_score_units(self) -> None:
        """Recompute every touched key's score_unit_rollup row from its rows in `scores`."""
        if self._touched is None:
            return
        self._flush_touched_keys()
        conn = self.conn
        if conn.execute("SELECT 1 FROM temp.touched_units LIMIT 1").fetchone():
            conn.execute(_SCORE_UNITS_CLEAR)
            try:
                conn.execute(_SCORE_UNITS_REDO)
            except sqlite3.OperationalError as exc:
                # Another process's bulk load dropped scores_by_unit meanwhile: rebuild the
                # roll-up as a whole at the end (readers leave it alone until then).
                if "index" not in str(exc) and "query solution" not in str(exc):
                    raise
                self._set_meta(_SCORE_UNITS_STALE, 1)
                self._touched = None
            conn.execute("DELETE FROM temp.touched_units")

    def _rebuild_score_units(self) -> None:
        self.conn.execute("DELETE FROM score_unit_rollup")
        self.conn.execute(f"INSERT INTO score_unit_rollup {score_unit_rollup_select_sql()}")
        self.conn.execute("DELETE FROM meta WHERE key = ?", (_SCORE_UNITS_STALE,))

    def _create_indexes(self) -> None:
        for sql in ENTRY_INDEXES.values():
            self.conn.execute(sql)

    def _next_rowid(self) -> int:
        stored = self._meta("next_rowid", 1)
        top = self.conn.execute("SELECT max(rowid) FROM entries").fetchone()[0] or 0
        return max(int(stored), top + 1)

    # - files and chunks -

    def _plan(self, names: list[str]) -> list[_Work]:
        """Register new files; return what each file to read holds so far (under the lock)."""
        for name in names:
            self.conn.execute(
                "INSERT OR IGNORE INTO files (name, size, mtime_ns) VALUES (?, -1, 0)", (name,)
            )
        rows = {
            r[0]: r[1:] for r in self.conn.execute("SELECT name, file_id, offset, lines FROM files")
        }
        return [_Work(name, *rows[name]) for name in names]

    def _ingest(self, names: list[str], stats: SyncStats) -> None:
        plan = self._in_transaction(self._plan, names)
        files_with_news: set[str] = set()
        prefetch: _Prefetch | None = None
        i = 0
        try:
            while i < len(plan):
                self.conn.execute("BEGIN IMMEDIATE")
                try:
                    chunk_bytes = 0
                    while i < len(plan) and chunk_bytes < parse.CHUNK_BYTES:
                        following = plan[i + 1] if i + 1 < len(plan) else None
                        more, prefetch, consumed = self._ingest_chunk(
                            plan[i], following, stats, prefetch
                        )
                        chunk_bytes += consumed
                        if consumed:
                            files_with_news.add(plan[i].name)
                        if not more:
                            i += 1
                except BaseException:
                    self.conn.execute("ROLLBACK")
                    raise
                self.conn.execute("COMMIT")
        finally:
            if prefetch is not None:  # abandoned on an error: let the helper finish first
                prefetch.future.exception()
        stats.files += len(files_with_news)

    def _ingest_chunk(
        self, work: _Work, following: _Work | None, stats: SyncStats,
        prefetch: _Prefetch | None,
    ) -> tuple[bool, _Prefetch | None, int]:
        """Ingest the next chunk of whole lines of one file (inside a write transaction).

        Returns (more may follow in this file, the chunk being parsed ahead, bytes consumed).
        """
        path = self.log_dir / work.name
        try:
            fh = open(path, "rb")  # noqa: SIM115 - closed below
        except FileNotFoundError:
            self._forget_file(work.name, stats)
            return False, prefetch, 0
        with fh:
            fd = fh.fileno()
            st = os.fstat(fd)
            row = self.conn.execute(
                "SELECT file_id, dev, inode, offset, head, lines FROM files WHERE name = ?",
                (work.name,),
            ).fetchone()
            if row is None:  # another process saw it vanish and forgot it
                return False, prefetch, 0
            file_id, dev, inode, offset, head, lines = row
            if dev is not None and (
                (dev, inode) != (st.st_dev, st.st_ino)
                or st.st_size < offset
                or (head and os.pread(fd, len(head), 0) != head)
                or (offset and os.pread(fd, 1, offset - 1) != b"\n")
            ):
                self._remove_rows(file_id, stats)
                stats.replaced += 1
                offset, lines = 0, 0
                self.conn.execute(
                    "UPDATE files SET offset = 0, head = NULL, lines = 0, malformed = 0 "
                    "WHERE file_id = ?", (file_id,),
                )
            first_rowid = self._next_rowid()
            key = (file_id, offset, first_rowid, lines, st.st_dev, st.st_ino)
            batch = None
            if prefetch is not None:
                ready = prefetch.future.result()
                if prefetch.key == key[:4] and (ready.dev, ready.ino) == key[4:]:
                    batch = ready
            if batch is None:
                batch = self._read_and_parse(work.name, key[:4], fd)
            if batch.consumed == 0:
                self.conn.execute(
                    "UPDATE files SET dev = ?, inode = ?, size = ?, mtime_ns = ? "
                    "WHERE file_id = ?",
                    (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, file_id),
                )
                return False, None, 0
            done = batch.read_end >= st.st_size
            next_rowid = first_rowid + len(batch.entries)
            if not done:
                next_key = (file_id, offset + batch.consumed, next_rowid, lines + batch.lines)
                next_name = work.name
            elif following is not None:
                next_key = (following.file_id, following.offset, next_rowid, following.lines)
                next_name = following.name
            ahead: list[_Prefetch] = []

            def start_prefetch() -> None:
                if not PREFETCH or (done and following is None):
                    return
                if self._executor is None:
                    from concurrent.futures import ThreadPoolExecutor

                    self._executor = ThreadPoolExecutor(1, thread_name_prefix="promptlab-sync")
                ahead.append(_Prefetch(next_key, self._executor.submit(
                    self._read_and_parse, next_name, next_key, None)))

            self._write_batch(batch, stats, start_prefetch)
            if ahead:
                # Let the helper finish before any more SQL: each statement needs the GIL
                # back, and taking it from a busy thread can cost a 5 ms switch interval.
                ahead[0].future.exception()
            stats.bytes += batch.consumed
            stats.malformed += batch.malformed
            stats.problems.extend(batch.problems[: MAX_PROBLEMS - len(stats.problems)])
            # A size of -1 makes the next sync look again if this one stops between chunks.
            self.conn.execute(
                "UPDATE files SET dev = ?, inode = ?, size = ?, mtime_ns = ?, offset = ?, "
                "head = COALESCE(head, ?), lines = lines + ?, malformed = malformed + ? "
                "WHERE file_id = ?",
                (st.st_dev, st.st_ino, st.st_size if done else -1, st.st_mtime_ns,
                 offset + batch.consumed, batch.head or None, batch.lines, batch.malformed,
                 file_id),
            )
            self._set_meta("next_rowid", next_rowid)
            return not done, (ahead[0] if ahead else None), batch.consumed

    def _read_and_parse(self, name: str, key: tuple[int, int, int, int],
                        fd: int | None) -> Batch:
        """Read and parse the chunk at `key` (file_id, offset, first rowid, lines before).

        Runs on the helper thread (fd None: opens the file itself) or inline."""
        file_id, offset, first_rowid, lines = key
        if fd is None:
            try:
                with open(self.log_dir / name, "rb") as fh:
                    return self._read_and_parse(name, key, fh.fileno())
            except FileNotFoundError:
                return Batch(offset=offset, read_end=offset, dev=-1, ino=-1)
        st = os.fstat(fd)
        data, read_end = read_lines(fd, offset, st.st_size)
        batch = parse_lines(
            data, offset=offset, read_end=read_end, start_line=lines, file_id=file_id,
            file_name=name, first_rowid=first_rowid,
        )
        batch.dev, batch.ino = st.st_dev, st.st_ino
        return batch

    def _write_batch(self, batch: Batch, stats: SyncStats, start_prefetch: Any) -> None:
        """Insert a batch. `start_prefetch` is called once the GIL-heavy part is over, so the
        helper thread parses the next chunk while SQLite builds the full-text index."""
        conn = self.conn
        rows = batch.entries
        lo, hi = batch.first_rowid, batch.first_rowid + len(rows) - 1
        kept: set[int] | None = None
        if rows:
            before = conn.total_changes
            conn.execute("SAVEPOINT batch")
            try:
                conn.executemany(_INSERT_ENTRY, rows)
            except (sqlite3.ProgrammingError, sqlite3.InterfaceError, OverflowError):
                conn.execute("ROLLBACK TO batch")
                before = conn.total_changes
                rows = batch.entries = [sanitize(r) for r in rows]
                conn.executemany(_INSERT_ENTRY, rows)
            conn.execute("RELEASE batch")
            inserted = conn.total_changes - before
            stats.entries += inserted
            if inserted != len(rows):  # ids already indexed (a copied file, a repeated line)
                kept = {r[0] for r in conn.execute(
                    "SELECT rowid FROM entries WHERE rowid BETWEEN ? AND ?", (lo, hi))}
                stats.duplicates += len(rows) - inserted
                rows = [r for r in rows if r[0] in kept]
            if batch.has_tags:
                conn.execute(_INSERT_TAGS, (lo, hi))
            own = batch.own_scores
            if kept is not None:
                own = [s for s in own if s[0] in kept]
            if own:
                units = {r[0]: _unit(r) for r in rows}
                conn.executemany(_INSERT_OWN_SCORE, [(*s, units[s[0]]) for s in own])
                self._touch((s[5], s[6], s[2], units[s[0]]) for s in own
                            if units[s[0]] != s[1])
                self._touch(((s[5], s[6], s[2], s[1]) for s in own if units[s[0]] == s[1]),
                            keyed=False)
            if batch.feedback:
                self._fold_batch_feedback(batch.feedback, rows, kept)
            if kept is not None:
                tag_lists = {k: v for k, v in batch.tag_lists.items() if k in kept}
                batch.rollup, batch.rollup_tags = rollup_rows(rows, tag_lists)
            conn.executemany(_ROLLUP_ADD["rollup"], batch.rollup)
            conn.executemany(_ROLLUP_ADD["rollup_tags"], batch.rollup_tags)
            if batch.rollup:  # some llm calls: their units' roll-up (duplicates are not rows)
                conn.executemany(_UNIT_ROLLUP_ADD, unit_rollup_rows(rows))
        if conn.execute("SELECT 1 FROM pending_feedback LIMIT 1").fetchone():
            self._fold_pending()
        self._flush_score_units()
        start_prefetch()
        if batch.texts:
            texts_json = batch.texts_json
            if kept is not None:
                texts_json = orjson.dumps([t for t in batch.texts if t[0] in kept])
            conn.execute(_INSERT_FTS_JSON, (texts_json,))

    # - feedback -

    def _fold_batch_feedback(self, feedback: list[tuple[str, str, Any]],
                             rows: list[tuple[Any, ...]], kept: set[int] | None) -> None:
        in_batch = {r[1]: r for r in rows}
        for feedback_id, target, scores in feedback:
            if kept is not None and feedback_id not in in_batch:
                continue  # this feedback line was a duplicate
            r = in_batch.get(target)
            found = (r[0], r[1], r[11], r[12], r[16], r[17], _unit(r)) if r else self.conn.execute(
                f"SELECT {_TARGET_COLS} FROM entries WHERE id = ?", (target,)
            ).fetchone()
            if found:
                self._fold(found, feedback_id, scores)
            else:
                self.conn.execute(
                    "INSERT OR REPLACE INTO pending_feedback VALUES (?, ?, ?)",
                    (feedback_id, target, orjson.dumps(scores).decode()),
                )

    def _fold(self, target: tuple[Any, ...], feedback_id: str, scores: Any) -> None:
        rowid, entry_id, prompt_id, prompt_version, experiment, variant, unit = target
        rows = score_rows(scores)
        self.conn.executemany(_FOLD_FEEDBACK, [
            (rowid, entry_id, name, value, is_bool, feedback_id,
             prompt_id, prompt_version, experiment, variant, unit)
            for name, value, is_bool in rows
        ])
        self._touch(((prompt_id, prompt_version, name, unit) for name, _, _ in rows),
                    keyed=unit != entry_id)

    def _fold_pending(self) -> None:
        cols = ", ".join("e." + c for c in _TARGET_BASE) + ", " + UNIT_SQL.format(p="e.")
        ready = self.conn.execute(
            f"SELECT p.feedback_id, p.scores, {cols} FROM pending_feedback p "
            "JOIN entries e ON e.id = p.target"
        ).fetchall()
        for feedback_id, scores, *target in sorted(ready):
            self._fold(tuple(target), feedback_id, orjson.loads(scores))
            self.conn.execute("DELETE FROM pending_feedback WHERE feedback_id = ?", (feedback_id,))

    # - removing a file's rows -

    def _forget_file(self, name: str, stats: SyncStats) -> None:
        row = self.conn.execute("SELECT file_id FROM files WHERE name = ?", (name,)).fetchone()
        if row is None:
            return
        self._remove_rows(row[0], stats)
        self.conn.execute("DELETE FROM files WHERE file_id = ?", (row[0],))
        stats.removed += 1

    def _remove_rows(self, file_id: int, stats: SyncStats) -> None:
        """Remove a file's entries and what was derived from them, keeping the rest exact."""
        conn = self.conn
        rows = conn.execute(
            "SELECT rowid, id, kind, target, day FROM entries WHERE file_id = ?", (file_id,)
        ).fetchall()
        if not rows:
            return
        conn.execute("CREATE TEMP TABLE IF NOT EXISTS gone (rowid INTEGER PRIMARY KEY, id TEXT)")
        conn.execute("DELETE FROM temp.gone")
        conn.executemany("INSERT INTO temp.gone VALUES (?, ?)", [(r[0], r[1]) for r in rows])
        removed_ids = {r[1] for r in rows}
        refold = {r[3] for r in rows if r[2] == "feedback" and r[3]} - removed_ids
        self._touch_rows("SELECT rowid FROM temp.gone")
        conn.execute("DELETE FROM scores WHERE entry_rowid IN (SELECT rowid FROM temp.gone)")
        conn.execute("DELETE FROM entry_tags WHERE entry_rowid IN (SELECT rowid FROM temp.gone)")
        conn.execute("DELETE FROM pending_feedback WHERE feedback_id IN (SELECT id FROM temp.gone)")
        # Feedback kept in other files whose target goes away waits again for that target.
        orphaned = conn.execute(
            "SELECT id, target, file_id, offset, length FROM entries WHERE kind = 'feedback' "
            "AND target IN (SELECT id FROM temp.gone) AND file_id != ?", (file_id,),
        ).fetchall()
        for feedback_id, target, fid, off, length in orphaned:
            entry = self.read_entry(fid, off, length)
            if entry is not None:
                conn.execute(
                    "INSERT OR REPLACE INTO pending_feedback VALUES (?, ?, ?)",
                    (feedback_id, target, orjson.dumps(entry.get("scores")).decode()),
                )
        versions = conn.execute(
            "SELECT DISTINCT prompt_id, prompt_version FROM entries WHERE file_id = ? AND "
            "kind = 'llm' AND prompt_id IS NOT NULL AND prompt_version IS NOT NULL", (file_id,),
        ).fetchall()
        conn.execute("DELETE FROM entries WHERE file_id = ?", (file_id,))
        for target in sorted(refold):
            self._refold(target)
        self._recompute_rollup(sorted({r[4] for r in rows}))
        for prompt_id, prompt_version in versions:  # those versions' units, from scratch
            conn.execute("DELETE FROM unit_rollup WHERE prompt_id = ? AND prompt_version = ?",
                         (prompt_id, prompt_version))
            conn.execute(_UNIT_ROLLUP_VERSION, (prompt_id, prompt_version))
        self._flush_score_units()
        self._set_meta("fts_stale", int(self._meta("fts_stale", 0)) + len(rows))

    def _refold(self, target_id: str) -> None:
        """Recompute one entry's scores from its own line and the feedback still indexed."""
        row = self.conn.execute(
            f"SELECT {_TARGET_COLS}, file_id, offset, length FROM entries WHERE id = ?",
            (target_id,),
        ).fetchone()
        if row is None:
            return
        target = row[:7]
        self._touch_rows(str(int(row[0])))
        self.conn.execute("DELETE FROM scores WHERE entry_rowid = ?", (row[0],))
        own = self.read_entry(*row[7:])
        if own is not None:
            mine = score_rows(own.get("scores"))
            self.conn.executemany(_INSERT_OWN_SCORE, [
                (row[0], row[1], name, value, is_bool, *row[2:7]) for name, value, is_bool in mine
            ])
            self._touch(((row[2], row[3], name, row[6]) for name, _, _ in mine),
                        keyed=row[6] != row[1])
        for feedback_id, fid, off, length in self.conn.execute(
            "SELECT id, file_id, offset, length FROM entries WHERE kind = 'feedback' "
            "AND target = ? ORDER BY id", (target_id,),
        ).fetchall():
            entry = self.read_entry(fid, off, length)
            if entry is not None:
                self._fold(target, feedback_id, entry.get("scores"))

    def _read_own_scores(self) -> None:
        """Set `own` on the feedback rows that replaced an entry's own score, from the
        entries' lines (migration 010 left them at 0 and put the flag up)."""
        if not self._meta(_OWN_SCORES_UNREAD):
            return  # another process did it meanwhile
        for rowid, file_id, offset, length in self.conn.execute(
            "SELECT e.rowid, e.file_id, e.offset, e.length FROM entries e WHERE e.rowid IN "
            "(SELECT DISTINCT entry_rowid FROM scores WHERE source = 'feedback')"
        ).fetchall():
            entry = self.read_entry(file_id, offset, length)
            names = [name for name, _, _ in score_rows(entry.get("scores"))] if entry else []
            self.conn.executemany("UPDATE scores SET own = 1 WHERE entry_rowid = ? AND name = ?",
                                  [(rowid, name) for name in names])
        self.conn.execute("DELETE FROM meta WHERE key = ?", (_OWN_SCORES_UNREAD,))

    def _recompute_rollup(self, days: Iterable[int]) -> None:
        day_list = ", ".join(str(int(d)) for d in days)
        if not day_list:
            return
        for table, per_tag in (("rollup", False), ("rollup_tags", True)):
            self.conn.execute(f"DELETE FROM {table} WHERE day IN ({day_list})")
            self.conn.execute(
                f"INSERT INTO {table} "
                + rollup_select_sql(per_tag=per_tag, where=f"e.day IN ({day_list})")
            )


__all__ = ["Batch", "SyncStats", "Syncer", "content_text", "entry_texts", "list_log_files"]
