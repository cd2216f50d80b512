"""Several processes syncing the same index while a writer appends."""

from __future__ import annotations

import multiprocessing as mp
import sqlite3
from pathlib import Path

from .helpers import append, entry


def _sync_repeatedly(log_dir: str, rounds: int) -> int:
    from promptlab.index.core import Index

    total = 0
    with Index(log_dir) as index:
        for _ in range(rounds):
            total += index.sync().entries
    return total


def _write(log_dir: str, n: int) -> None:
    for i in range(n):
        append(Path(log_dir), entry("2026-01-05" if i % 2 else "2026-01-06", i,
                                    assistant_response=f"reply {i}"))


def test_two_processes_syncing_at_once_ingest_each_line_once(log_dir: Path) -> None:
    append(log_dir, *[entry(seconds=i) for i in range(50)])
    ctx = mp.get_context("spawn")
    with ctx.Pool(3) as pool:
        writer = pool.apply_async(_write, (str(log_dir), 200))
        syncers = [pool.apply_async(_sync_repeatedly, (str(log_dir), 40)) for _ in range(2)]
        writer.get(timeout=60)
        counts = [s.get(timeout=60) for s in syncers]
    final = _sync_repeatedly(str(log_dir), 1)
    assert sum(counts) + final == 250  # every line ingested by exactly one process
    conn = sqlite3.connect(log_dir / "index.db")
    assert conn.execute("SELECT count(*), count(DISTINCT id) FROM entries").fetchone() == (
        250, 250)
    assert conn.execute("SELECT sum(calls) FROM rollup").fetchone() == (250,)
    lines = sum(p.read_bytes().count(b"\n") for p in log_dir.glob("*.jsonl"))
    assert conn.execute("SELECT sum(lines) FROM files").fetchone() == (lines,)
