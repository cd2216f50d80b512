"""The log index: `<log_dir>/index.db`, a SQLite database derived from the JSONL logs.

    from promptlab import Index, query

    with Index("~/llm-logs") as index:       # syncs on first use
        index.entries(prompt="code-review", version="v2", limit=5)
        index.search("timeout", limit=10)
        index.conn.execute("SELECT model, count(*) FROM entries GROUP BY model")

    query(model="gpt-4o", since="7d")        # one-shot: list of entry dicts, newest first

Tables and columns are documented in `promptlab.index.schema` (a contract for other
modules writing SQL). The JSONL files stay the source of truth: deleting index.db loses
nothing, `Index.reindex()` rebuilds it. WAL mode and a busy timeout let several processes
sync and read at once.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING, Any

from promptlab.errors import LogIndexError
from promptlab.index.schema import migrate
from promptlab.index.sync import Syncer, SyncStats

if TYPE_CHECKING:
    from promptlab.index.costs import CostReport
    from promptlab.index.query import Filters, SearchHit
    from promptlab.index.trace import TraceNode

__all__ = ["Index", "SyncStats", "query"]

INDEX_NAME = "index.db"
BUSY_TIMEOUT_S = 60.0


class Index:
    """The SQLite index of one log folder. Opens (and creates) index.db on first use."""

    def __init__(self, log_dir: str | os.PathLike[str] | None = None, *, path: str | None = None):
        if log_dir is None:
            from promptlab.config import default_log_dir

            log_dir = default_log_dir()
        self.log_dir = Path(log_dir).expanduser()
        self.path = Path(path) if path else self.log_dir / INDEX_NAME
        self._conn: sqlite3.Connection | None = None
        self._synced = False

    # -- connection ------------------------------------------------------------------------

    @property
    def conn(self) -> sqlite3.Connection:
        """The open connection (autocommit mode; wrap writes in BEGIN IMMEDIATE … COMMIT)."""
        if self._conn is None:
            self._conn = self._open()
        return self._conn

    def _open(self) -> sqlite3.Connection:
        try:
            self.log_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            if not self.path.exists():
                os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o600))
        except OSError as exc:
            raise LogIndexError(
                f"cannot create the log index {self.path}: {exc.strerror}; "
                "check the folder's permissions or choose another with --log-dir"
            ) from exc
        try:
            conn = sqlite3.connect(
                self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as exc:
            raise LogIndexError(f"cannot open the log index {self.path}: {exc}") from exc
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            for pragma in (
                "synchronous = NORMAL",  # the index is derived: durability is not at stake
                "secure_delete = OFF",  # some builds default to ON: zeroing freed pages is waste
                "temp_store = MEMORY",
                "cache_size = -65536",
                "mmap_size = 1073741824",
            ):
                conn.execute(f"PRAGMA {pragma}")
            migrate(conn, where=str(self.path))
        except sqlite3.DatabaseError as exc:
            conn.close()
            raise LogIndexError(
                f"{self.path} is not a usable log index ({exc}); rebuild it with "
                "`promptlab logs reindex` (the JSONL logs are kept)"
            ) from exc
        except BaseException:
            conn.close()
            raise
        return conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __enter__(self) -> Index:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- sync ----------------------------------------------------------------------------

    def sync(self) -> SyncStats:
        """Ingest the new lines of every log file (cheap when nothing changed)."""
        try:
            stats = Syncer(self.conn, self.log_dir).sync()
        except sqlite3.OperationalError as exc:
            raise _operational(exc, self.path) from exc
        self._synced = True
        return stats

    def ensure_synced(self) -> None:
        if not self._synced:
            self.sync()

    def reindex(self) -> SyncStats:
        """Rebuild every table from the JSONL files. A corrupt index.db is replaced."""
        try:
            conn = self.conn
        except LogIndexError:
            self._remove_files()
            conn = self.conn
        try:
            Syncer(conn, self.log_dir).clear()
        except sqlite3.DatabaseError as exc:
            raise _operational(exc, self.path) from exc
        return self.sync()

    def _remove_files(self) -> None:
        self.close()
        for suffix in ("", "-wal", "-shm"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(f"{self.path}{suffix}")

    def read_entry(self, file_id: int, offset: int, length: int) -> dict[str, Any] | None:
        """The full entry stored at a file position (None when that file changed)."""
        return Syncer(self.conn, self.log_dir).read_entry(file_id, offset, length)

    # -- queries (see index_query / index_costs / index_trace) ---------------------------

    def entries(self, filters: Filters | None = None, *, limit: int | None = 20,
                **kwargs: Any) -> list[dict[str, Any]]:
        """Entries newest first, as the dicts that were logged. Keyword filters: see Filters."""
        from promptlab.index.query import list_entries, make_filters

        self.ensure_synced()
        return [hit.entry for hit in list_entries(self, make_filters(filters, kwargs), limit)]

    def search(self, text: str, filters: Filters | None = None, *, limit: int | None = 20,
               sort: str = "rank", window: int | None = 1000, field: str | None = None,
               raw: bool = False, **kwargs: Any) -> list[SearchHit]:
        """Full-text search; each hit has `.entry`, `.snippet` and `.rank`.

        `sort="rank"` ranks the newest `window` matches by bm25 (None: every match);
        `"recent"` returns the newest first. `field`: "system", "user" or "response".
        `raw`: `text` is FTS5 syntax. Keyword filters as for `entries`."""
        from promptlab.index.query import make_filters, search_entries

        self.ensure_synced()
        return search_entries(self, text, make_filters(filters, kwargs), limit=limit, sort=sort,
                              window=window, raw=raw, field_name=field)

    def get(self, entry_id: str) -> dict[str, Any]:
        """One entry by id (or a unique prefix of it)."""
        from promptlab.index.query import get_entry

        self.ensure_synced()
        return get_entry(self, entry_id).entry

    def trace(self, trace_id: str) -> list[TraceNode]:
        """The spans and calls of a trace as a forest of TraceNode (roots first)."""
        from promptlab.index.trace import build_trace

        self.ensure_synced()
        return build_trace(self, trace_id).roots

    def costs(self, by: str | list[str] = "day", filters: Filters | None = None,
              prices: Any = None, **kwargs: Any) -> CostReport:
        """Tokens and USD per group (see index_costs.CostReport)."""
        from promptlab.index.costs import cost_report
        from promptlab.index.query import make_filters

        self.ensure_synced()
        groups = [by] if isinstance(by, str) else list(by)
        return cost_report(self, groups, make_filters(filters, kwargs), prices=prices)


def _operational(exc: sqlite3.Error, path: Path) -> LogIndexError:
    text = str(exc)
    if "readonly" in text or "read-only" in text:
        return LogIndexError(
            f"cannot update the log index {path}: it is read-only; give yourself write access "
            "to it and its folder, or use --log-dir on a copy of the logs"
        )
    if "locked" in text or "busy" in text:
        return LogIndexError(
            f"the log index {path} stayed locked for {BUSY_TIMEOUT_S:.0f} s by another process; "
            "try again when it finishes"
        )
    return LogIndexError(f"log index {path}: {text}; rebuild it with `promptlab logs reindex`")


def query(text: str | None = None, *, log_dir: str | os.PathLike[str] | None = None,
          limit: int | None = 20, sort: str = "rank", **filters: Any) -> list[dict[str, Any]]:
    """Entries (dicts) matching the filters, newest first; `text` runs a full-text search
    (best matches first, or newest with sort="recent").

    Filters: prompt, version, model, tag, experiment, variant, status, kind, since, until,
    trace_id. `since`/`until` take a date, an ISO time, a datetime, or `7d`/`24h`/`30m`.
    """
    with Index(log_dir) as index:
        if text:
            return [hit.entry for hit in index.search(text, limit=limit, sort=sort, **filters)]
        return index.entries(limit=limit, **filters)
