"""Read-only connections to index.db, one per worker thread, so independent aggregates
run at once (sqlite3 releases the GIL while a statement runs)."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")
_PRAGMAS = ("query_only = ON", "mmap_size = 1073741824", "cache_size = -65536",
            "temp_store = MEMORY")


class Reader:
    """A small pool of read-only connections with `all`/`one` queries and `run` fan-out."""

    def __init__(self, path: Path, workers: int = 2):
        self.path = path
        self._local = threading.local()
        self._conns: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=workers)

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=60, check_same_thread=False)
            for pragma in _PRAGMAS:
                conn.execute(f"PRAGMA {pragma}")
            self._local.conn = conn
            with self._lock:
                self._conns.append(conn)
        return conn

    def all(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self._conn().execute(sql, tuple(params)).fetchall()

    def one(self, sql: str, params: Sequence[Any] = ()) -> tuple[Any, ...]:
        return self._conn().execute(sql, tuple(params)).fetchone()

    def run(self, tasks: Sequence[Callable[[], Any]]) -> list[Any]:
        """Run callables on the worker threads; results in order."""
        if len(tasks) <= 1:
            return [t() for t in tasks]
        return list(self._pool.map(lambda t: t(), tasks))

    def run_per_arm(self, names: Sequence[str], arms: tuple[Any, Any],
                    fn: Callable[[Any, str], T]) -> dict[str, tuple[T, T]]:
        """`fn(arm, name)` for every name and both arms at once: name -> (A's, B's)."""
        return by_name(names, self.run(per_arm_tasks(names, arms, fn)))

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        with self._lock:
            for conn in self._conns:
                conn.close()
            self._conns.clear()


def per_arm_tasks(names: Sequence[str], arms: tuple[Any, Any],
                  fn: Callable[[Any, str], T]) -> list[Callable[[], T]]:
    """One task per name × arm, arms innermost (the order `by_name` reads back)."""
    return [(lambda arm=arm, n=n: fn(arm, n)) for n in names for arm in arms]


def by_name(names: Sequence[str], results: Sequence[T]) -> dict[str, tuple[T, T]]:
    it = iter(results)
    return {n: (next(it), next(it)) for n in names}
