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

import errno
import hashlib
import os
import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING, Any

from promptlab.config import cache_dir
from promptlab.errors import LogsUnavailableError, MissingLogDirError
from promptlab.index.safety import refuse_unsafe_database
from promptlab.index.schema import migrate
from promptlab.index.sync import Syncer, SyncStats

if TYPE_CHECKING:
    from promptlab.index.costs import CostReport
    from promptlab.index.query import Filters, SearchHit
    from promptlab.index.trace import TraceNode

__all__ = ["Index", "SyncStats", "index_path", "query"]

INDEX_NAME = "index.db"
REQUIRED_TABLES = frozenset({"meta", "files", "entries", "entry_tags", "scores",
                             "pending_feedback", "entries_fts", "rollup", "rollup_tags"})
BUSY_TIMEOUT_S = 60.0
# Search by meaning lives a layer above the index (promptlab.semantic, an optional extra):
# the index reaches it by name, as it would a plugin, and never imports it at load time.
SEARCH_MODES = {"semantic": "promptlab.semantic.search:semantic_search",
                "hybrid": "promptlab.semantic.search:semantic_search"}


class Index:
    """The SQLite index of one log folder. Opens (and creates) index.db on first use."""

    def __init__(self, log_dir: str | os.PathLike[str] | None = None, *, path: str | None = None):
        if log_dir is None:
            from promptlab.config import default_log_dir

            log_dir = default_log_dir()
        self.log_dir = Path(log_dir).expanduser()
        self.path = Path(path) if path else index_path(self.log_dir)
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
        refuse_unsafe_database(self.path, "the log index", "remove it (the index is rebuilt "
                               "from the JSONL logs) and run the command again")
        if self.path.is_dir():
            raise LogsUnavailableError(
                f"{self.path} is a folder, not the log index; move or rename it (promptlab "
                "never deletes a folder) and run the command again"
            )
        if not self.log_dir.is_dir():  # the index never creates the folder it indexes
            raise MissingLogDirError(
                f"log folder {self.log_dir} "
                f"{'is not a folder' if self.log_dir.exists() else 'does not exist'}: "
                "nothing has been logged there; point log_dir (--log-dir, PROMPTLAB_LOG_DIR) "
                "at the folder holding the .jsonl files")
        try:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            if not self.path.exists():
                os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW
                                 | os.O_NONBLOCK, 0o600))
        except OSError as exc:
            if exc.errno == errno.ENOSPC:
                raise _disk_full(self.path) from exc
            if self.path.parent != self.log_dir:  # the index of a read-only log folder
                raise LogsUnavailableError(
                    f"cannot create the log index {self.path}: {exc.strerror}; the log folder "
                    f"{self.log_dir} cannot be written, so its index is kept in the cache "
                    "folder: set PROMPTLAB_CACHE_DIR to a folder you can write"
                ) from exc
            if isinstance(exc, FileExistsError | NotADirectoryError):
                raise LogsUnavailableError(
                    f"cannot create the log index {self.path}: the log folder {self.log_dir} "
                    "is not a folder (a file or a broken link is in its place); move it away, "
                    "or set log_dir to a folder, and run the command again"
                ) from exc
            raise LogsUnavailableError(
                f"cannot create the log index {self.path}: {exc.strerror}; give yourself "
                "write access to the log folder (promptlab keeps index.db and its -wal and "
                "-shm files there)"
            ) from exc
        try:
            conn = sqlite3.connect(
                self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as exc:
            raise LogsUnavailableError(f"cannot open the log index {self.path}: {exc}") from exc
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
            missing = sorted(REQUIRED_TABLES - {r[0] for r in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table'")})
            if missing:
                raise sqlite3.DatabaseError(f"table {missing[0]} is missing")
        except sqlite3.DatabaseError as exc:
            conn.close()
            if isinstance(exc, sqlite3.OperationalError) and _transient(exc):
                raise _operational(exc, self.path) from exc
            raise DamagedIndexError(
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
        except sqlite3.DatabaseError as exc:
            raise _operational(exc, self.path) from exc
        except OSError as exc:
            if exc.errno == errno.ENOSPC:
                raise _disk_full(self.path) from exc
            why = exc.strerror or str(exc)
            if exc.filename is not None and Path(exc.filename) != self.log_dir:
                why += f" ({exc.filename})"
            raise LogsUnavailableError(
                f"cannot read the logs in {self.log_dir}: {why}; make sure the folder and its "
                ".jsonl files are readable by this user, then try again") from exc
        self._synced = True
        return stats

    def ensure_synced(self) -> None:
        if not self._synced:
            self.sync()

    def reindex(self) -> SyncStats:
        """Rebuild every table from the JSONL files. A damaged index.db (not a database, a
        table missing, built by a newer promptlab) is replaced by a new one."""
        try:
            Syncer(self.conn, self.log_dir).clear()
        except DamagedIndexError:
            self._remove_files()
            self.conn  # noqa: B018 - creates the new index (a LogsUnavailableError says why not)
        except sqlite3.DatabaseError as exc:
            if isinstance(exc, sqlite3.OperationalError) and _transient(exc):
                raise _operational(exc, self.path) from exc
            self._remove_files()
            self.conn  # noqa: B018
        try:
            return self.sync()
        except DamagedIndexError:  # damage clear() could not see: start from a new file
            self._remove_files()
            return self.sync()

    def _remove_files(self) -> None:
        self.close()
        for suffix in ("", "-wal", "-shm"):
            try:
                os.unlink(f"{self.path}{suffix}")
            except FileNotFoundError:
                pass
            except OSError as exc:
                raise LogsUnavailableError(
                    f"cannot replace the damaged log index {self.path}{suffix}: "
                    f"{exc.strerror}; remove it yourself (the JSONL logs are kept)") from exc

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
               raw: bool = False, mode: str = "fts", embedder: Any = None,
               **kwargs: Any) -> list[SearchHit]:
        """Search; each hit has `.entry`, `.snippet` and `.rank`.

        `mode="fts"` (full text): `sort="rank"` ranks the newest `window` matches by bm25
        (None: every match); `"recent"` returns the newest first. `field`: "system", "user"
        or "response". `raw`: `text` is FTS5 syntax.

        `mode="semantic"` ranks by meaning, `"hybrid"` fuses full-text and vector ranks
        (the semantic extra; see promptlab.semantic.semantic_search): hits also carry
        `.score` and `.distance`, and `.rank` is the bm25 rank where full text found them.
        `embedder`: an Embedder or a `--model` string (default: the project's).
        Keyword filters as for `entries`."""
        from promptlab.index.query import make_filters, search_entries

        if mode in SEARCH_MODES:
            return self._search_by_meaning(text, mode, limit, embedder, filters, kwargs)
        if mode != "fts":
            from promptlab.errors import UsageError

            raise UsageError(f"search mode {mode!r}: expected fts, semantic or hybrid")
        self.ensure_synced()
        return search_entries(self, text, make_filters(filters, kwargs), limit=limit, sort=sort,
                              window=window, raw=raw, field_name=field)

    def _search_by_meaning(self, text: str, mode: str, limit: int | None, embedder: Any,
                           filters: Filters | None, kwargs: dict[str, Any]) -> list[SearchHit]:
        import importlib

        from promptlab.index.query import SearchHit, filter_kwargs

        self.ensure_synced()
        # The vectors are read through another SQLite library (apsw, see index.vectors),
        # which must not share the file with this connection: close it (it reopens on use).
        self.close()
        module, _, name = SEARCH_MODES[mode].partition(":")
        search = getattr(importlib.import_module(module), name)
        values = filter_kwargs(filters)
        if "tag" in kwargs:
            values.pop("tags")
        found = search(text, log_dir=self.log_dir, mode=mode, limit=limit, embedder=embedder,
                       synced=True, **{**values, **kwargs})
        return [SearchHit(entry=h.entry, rowid=h.rowid, rank=h.bm25, snippet=h.snippet,
                          score=h.score, distance=h.distance) for h in found]

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


def index_path(log_dir: Path) -> Path:
    """Where the index of `log_dir` is kept: `<log_dir>/index.db`, or, when the folder
    exists but cannot be written (a read-only mount, someone else's logs), a file of the
    user's cache folder named after the folder's real path.

    SQLite needs to write beside an index in WAL mode (its -wal and -shm files), and the
    index must be synced before each answer, so a read-only folder's own index.db (if
    any) is not used: the first command builds the one in the cache, later ones add what
    was appended."""
    own = log_dir / INDEX_NAME
    if not log_dir.is_dir() or os.access(log_dir, os.W_OK | os.X_OK):
        return own
    real = os.path.realpath(log_dir)
    key = hashlib.sha256(os.fsencode(real)).hexdigest()[:16]
    name = "".join(c if c.isalnum() or c in "-_." else "_" for c in Path(real).name)[:40]
    return cache_dir() / "indexes" / f"{name}-{key}" / INDEX_NAME


class DamagedIndexError(LogsUnavailableError):
    """index.db is not a usable log index (`reindex` replaces it)."""


def _transient(exc: sqlite3.OperationalError) -> bool:
    """Whether an error is about the machine (disk full, locked, read-only), not the file."""
    text = str(exc)
    return _is_full(exc) or any(w in text for w in ("locked", "busy", "readonly", "read-only",
                                                     "unable to open", "disk I/O"))


def _is_full(exc: BaseException) -> bool:
    return "full" in str(exc) or getattr(exc, "sqlite_errorname", "") == "SQLITE_FULL"


def _disk_full(path: Path) -> LogsUnavailableError:
    return LogsUnavailableError(
        f"no space left on the disk holding {path}: free some space and run the command "
        "again (nothing is lost: the JSONL logs are intact and the index resumes where it "
        "stopped)"
    )


def _operational(exc: sqlite3.Error, path: Path) -> LogsUnavailableError:
    text = str(exc)
    if _is_full(exc):
        return _disk_full(path)
    if "readonly" in text or "read-only" in text:
        return LogsUnavailableError(
            f"cannot update the log index {path}: it is read-only; give yourself write access "
            "to it and its folder, or use --log-dir on a copy of the logs"
        )
    if "locked" in text or "busy" in text:
        return LogsUnavailableError(
            f"the log index {path} stayed locked for {BUSY_TIMEOUT_S:.0f} s by another process; "
            "try again when it finishes"
        )
    if "unable to open" in text:
        return LogsUnavailableError(
            f"cannot open the log index {path} ({text}): SQLite must read it and create its "
            f"-wal and -shm files beside it; give yourself read access to it and write "
            f"access to {path.parent}, or remove it (it is rebuilt from the JSONL logs)"
        )
    if isinstance(exc, sqlite3.OperationalError) and _transient(exc):
        return LogsUnavailableError(f"log index {path}: {text}")
    return DamagedIndexError(f"log index {path}: {text}; rebuild it with "
                             "`promptlab logs reindex`")


def query(text: str | None = None, *, log_dir: str | os.PathLike[str] | None = None,
          limit: int | None = 20, sort: str = "rank", mode: str = "fts",
          **filters: Any) -> list[dict[str, Any]]:
    """Entries (dicts) matching the filters, newest first; `text` runs a search: full text
    (`mode="fts"`: best matches first, or newest with sort="recent"), by meaning
    (`mode="semantic"`) or both fused (`mode="hybrid"`; the semantic extra).

    Filters: prompt, version, model, tag, experiment, variant, status, kind, since, until,
    trace_id. `since`/`until` take a date, an ISO time, a datetime, or `7d`/`24h`/`30m`.
    """
    with Index(log_dir) as index:
        if text:
            return [hit.entry for hit in index.search(text, limit=limit, sort=sort, mode=mode,
                                                      **filters)]
        return index.entries(limit=limit, **filters)
