"""The response cache: identical requests are answered from `<log_dir>/cache.db`.

The key is a sha256 over provider type, model, endpoint, params, messages and the repeat
index, so repeats stay independent samples and a changed parameter is a new request.
Only successful responses are stored. Several threads share one connection under a lock;
several processes share the file (WAL, busy timeout). Writes are committed in small
batches — a crash loses at most the last few entries, which are then simply asked again.

Nothing secret is written in clear: the request appears only as its hash, and every
string of a stored response (text, model) goes through the same redaction as the log
(`redact`, given by the runner). A hit therefore returns the redacted text — what the log
holds anyway. Files written before schema version 2 stored responses unredacted: opening
one drops those rows and compacts the file (VACUUM), so no clear-text copy survives; the
requests are simply asked again.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import sqlite3
import stat
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from promptlab.errors import ExperimentError
from promptlab.providers.base import Request, Response

SCHEMA_VERSION = 2  # 2: responses are redacted before they are written
_COMMIT_EVERY = 64
_COMMIT_INTERVAL_S = 0.5


def cache_key(provider_type: str, endpoint: str, request: Request) -> str:
    data = {"v": SCHEMA_VERSION, "provider": provider_type, "endpoint": endpoint,
            "model": request.model, "params": request.params,
            "messages": request.messages, "repeat": request.repeat}
    text = json.dumps(data, sort_keys=True, ensure_ascii=False, separators=(",", ":"),
                      default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class ResponseCache:
    """`get(key) -> Response | None`, `put(key, response)`; `close()` commits."""

    def __init__(self, path: Path, redact: Callable[[str], str] | None = None):
        self.path = path
        self.redact = redact
        self.hits = 0
        self.misses = 0
        self._lock = threading.Lock()
        self._pending = 0
        self._last_commit = time.monotonic()
        try:
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            # As the log's day files: never follow a link (responses would be written
            # wherever it points) and never open anything but a regular file.
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK, 0o600)
            try:
                regular = stat.S_ISREG(os.fstat(fd).st_mode)
            finally:
                os.close(fd)
            if not regular:
                raise ExperimentError(f"response cache {path} is not a regular file; move it "
                                      "away or run with --no-cache")
            self._conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None,
                                         timeout=10.0)
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")
            self._conn.execute("PRAGMA secure_delete=ON")
            version = self._conn.execute("PRAGMA user_version").fetchone()[0]
            if version < SCHEMA_VERSION:
                self._drop_clear_text()
            self._conn.execute(
                "CREATE TABLE IF NOT EXISTS responses (key TEXT PRIMARY KEY, provider TEXT, "
                "model TEXT, created REAL NOT NULL, response TEXT NOT NULL)")
            self._conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        except sqlite3.DatabaseError as exc:
            raise ExperimentError(f"response cache {path} cannot be used ({exc}); delete it or "
                                  "run with --no-cache") from exc
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise ExperimentError(f"response cache {path} is a symbolic link; promptlab "
                                      "does not follow it: remove it, or run with --no-cache"
                                      ) from exc
            if exc.errno in (errno.EISDIR, errno.ENXIO):  # a folder, a FIFO without reader
                raise ExperimentError(f"response cache {path} is not a regular file; move it "
                                      "away or run with --no-cache") from exc
            raise ExperimentError(f"response cache {path}: {exc.strerror}; run with --no-cache"
                                  ) from exc
        self._in_tx = False

    def _drop_clear_text(self) -> None:
        """Rows of an older schema were written unredacted: delete them for good."""
        conn = self._conn
        exists = conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'responses'").fetchone()
        if exists:
            conn.execute("DROP TABLE responses")
            conn.execute("VACUUM")
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def get(self, key: str) -> Response | None:
        with self._lock:
            row = self._conn.execute("SELECT response FROM responses WHERE key = ?",
                                     (key,)).fetchone()
        if row is None:
            self.misses += 1
            return None
        self.hits += 1
        try:
            return Response.from_dict(json.loads(row[0]))
        except (ValueError, TypeError, RecursionError):  # a damaged row: ask again
            self.hits -= 1
            self.misses += 1
            return None

    def put(self, key: str, response: Response, provider: str) -> None:
        stored = response.to_dict()
        model = response.model
        if self.redact is not None:
            stored = {k: self.redact(v) if isinstance(v, str) else v for k, v in stored.items()}
            model = stored.get("model")
        data = json.dumps(stored, ensure_ascii=False)
        with self._lock:
            if not self._in_tx:
                self._conn.execute("BEGIN")
                self._in_tx = True
            self._conn.execute("INSERT OR REPLACE INTO responses VALUES (?, ?, ?, ?, ?)",
                               (key, provider, model, time.time(), data))
            self._pending += 1
            now = time.monotonic()
            if self._pending >= _COMMIT_EVERY or now - self._last_commit > _COMMIT_INTERVAL_S:
                self._commit()

    def _commit(self) -> None:
        if self._in_tx:
            self._conn.execute("COMMIT")
            self._in_tx = False
        self._pending = 0
        self._last_commit = time.monotonic()

    def close(self) -> None:
        with self._lock:
            try:
                self._commit()
            finally:
                self._conn.close()

    def __enter__(self) -> ResponseCache:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
