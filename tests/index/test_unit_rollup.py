"""unit_rollup (migration 008): the built-in metrics per (prompt, version, randomisation
unit), kept by sync, always agrees with the same roll-up computed from scratch from the
entries — after incremental appends, duplicate lines, feedback, removed files, reindex and
the migration's backfill."""

from __future__ import annotations

import random
import sqlite3
from pathlib import Path

import pytest

from promptlab.index.core import Index
from promptlab.index.schema import (
    MIGRATIONS,
    migrate,
    unit_rollup_columns,
    unit_rollup_select_sql,
)

from .helpers import append, entry, random_unit

KEYS = 4  # prompt_id, prompt_version, keyed, unit


def _table(conn: sqlite3.Connection, sql: str) -> dict[tuple, tuple]:
    return {tuple(r[:KEYS]): tuple(r[KEYS:]) for r in conn.execute(sql)}


def assert_exact(conn: sqlite3.Connection) -> dict[tuple, tuple]:
    """The maintained roll-up equals the from-scratch one (means and m2 to rounding)."""
    kept = _table(conn, f"SELECT {', '.join(unit_rollup_columns())} FROM unit_rollup")
    fresh = _table(conn, unit_rollup_select_sql())
    assert kept.keys() == fresh.keys()
    for key, row in fresh.items():
        assert kept[key] == pytest.approx(row, rel=1e-12, abs=1e-12), key
    return kept


def _calls(rng: random.Random, day: str, n: int, start: int = 0) -> list[dict]:
    out = []
    for i in range(n):
        fields: dict = {"prompt_id": "qa", "prompt_version": rng.choice(["v1", "v2"]),
                        "latency_ms": round(rng.lognormvariate(6, 0.5), 3),
                        "output_tokens": rng.randint(0, 3), "input_tokens": rng.randint(5, 9),
                        "cost_usd": rng.random() / 1000, "scores": {"q": rng.randint(1, 5)}}
        random_unit(rng, fields)
        if rng.random() < 0.1:
            fields.update(status="error", error="timeout", output_tokens=None)
        if rng.random() < 0.05:
            fields["cost_usd"] = None
        out.append(entry(day, start + i, **fields))
    return out


def test_roll_up_stays_exact_under_appends_feedback_removal_and_reindex(log_dir: Path) -> None:
    rng = random.Random(15)
    first = _calls(rng, "2026-01-05", 60)
    append(log_dir, *first)
    append(log_dir, entry("2026-01-05", 900, kind="span", name="s", prompt_id="qa",
                          prompt_version="v1", unit_id="user-1", latency_ms=5.0))
    with Index(log_dir) as index:
        index.sync()
        before = assert_exact(index.conn)
        assert {k[2] for k in before} == {0, 1}  # keyed units and the pooled unkeyed calls
        # llm calls only, not the span
        assert sum(r[0] for r in before.values()) == index.conn.execute(
            "SELECT count(*) FROM entries WHERE kind = 'llm'").fetchone()[0] == 60
        # appends to the same file and a new file: units that already have a row merge
        append(log_dir, *_calls(rng, "2026-01-05", 40, start=100))
        index.sync()
        append(log_dir, *_calls(rng, "2026-01-06", 50))
        index.sync()
        rows = assert_exact(index.conn)
        assert sum(r[0] for r in rows.values()) == 150
        # feedback changes scores, never the built-ins
        feedback = [entry("2026-01-07", i, kind="feedback", target=e["id"], scores={"q": 1})
                    for i, e in enumerate(first[:20])]
        append(log_dir, *feedback)
        index.sync()
        assert assert_exact(index.conn) == rows
        # a file copied under another name: its lines are duplicates, counted once
        (log_dir / "2026-01-08.jsonl").write_bytes((log_dir / "2026-01-06.jsonl").read_bytes())
        index.sync()
        assert assert_exact(index.conn) == rows
    # a file removed, another rewritten: those versions' units recomputed
    (log_dir / "2026-01-06.jsonl").unlink()
    (log_dir / "2026-01-05.jsonl").write_bytes(
        b"".join(line for line in (log_dir / "2026-01-05.jsonl").read_bytes().splitlines(True)[
            :30]))
    with Index(log_dir) as index:
        index.sync()
        rows = assert_exact(index.conn)
        calls = index.conn.execute(
            "SELECT count(*) FROM entries WHERE kind = 'llm'").fetchone()[0]
        assert 0 < sum(r[0] for r in rows.values()) == calls < 150
        assert index.reindex().entries
        rows = assert_exact(index.conn)
        assert sum(r[0] for r in rows.values()) == index.conn.execute(
            "SELECT count(*) FROM entries WHERE kind = 'llm'").fetchone()[0]


def test_roll_up_values_match_the_entries(log_dir: Path) -> None:
    calls = [
        entry(seconds=1, prompt_id="qa", prompt_version="v1", unit_id="u1", latency_ms=100.0,
              output_tokens=1),
        entry(seconds=2, prompt_id="qa", prompt_version="v1", unit_id="u1", latency_ms=300.0,
              output_tokens=0),
        entry(seconds=3, prompt_id="qa", prompt_version="v1", unit_id="u1", status="error",
              error="x", latency_ms=999.0),
        entry(seconds=4, prompt_id="qa", prompt_version="v1", item_id="u1", latency_ms=7.0),
        entry(seconds=5, prompt_id="qa", prompt_version="v1", latency_ms=10.0),
        entry(seconds=6, prompt_id="qa", prompt_version="v1", latency_ms=None),
        entry(seconds=7, prompt_id="qa", latency_ms=1.0),  # no version: not rolled up
    ]
    with Index(log_dir) as index:
        append(log_dir, *calls[:2])
        index.sync()
        append(log_dir, *calls[2:])  # merged into u1's row
        index.sync()
        rows = {r[:4]: r[4:] for r in index.conn.execute(
            "SELECT prompt_id, prompt_version, keyed, unit, calls, errors, latency_ms_n,"
            " latency_ms_mean, latency_ms_m2, output_tokens_n01 FROM unit_rollup")}
    # an item id is a unit too (u1 as an item pools with u1 as a unit id, as compare does)
    assert rows == {
        ("qa", "v1", 1, "u1"): (4, 1, 3, pytest.approx(407 / 3), pytest.approx(
            sum((x - 407 / 3) ** 2 for x in (100, 300, 7))), 2),
        ("qa", "v1", 0, ""): (2, 0, 1, 10.0, 0.0, 0)}


def test_migration_backfills_the_roll_up() -> None:
    conn = sqlite3.connect(":memory:", isolation_level=None)
    upto = [m.name for m in MIGRATIONS].index("008_unit_rollup")
    migrate(conn, upto=upto)
    # values an older index may hold: a string, a number out of range
    for rowid, unit_id, status, latency in ((1, "u1", "ok", 5.0), (2, "u1", "ok", 7.0),
                                            (3, None, "error", 1.0), (4, None, "ok", "slow"),
                                            (5, "u1", "ok", 1e200)):
        conn.execute(
            "INSERT INTO entries (rowid, id, file_id, offset, length, timestamp, ts, day, kind,"
            " status, prompt_id, prompt_version, unit_id, latency_ms) VALUES (?, ?, 1, 0, 10,"
            " '2026-01-02T00:00:00.000000Z', 1767312000, 20455, 'llm', ?, 'qa', 'v1', ?, ?)",
            (rowid, f"E{rowid}", status, unit_id, latency))
    assert migrate(conn, upto=upto + 1) == ["008_unit_rollup"]
    assert conn.execute(
        "SELECT keyed, unit, calls, errors, latency_ms_n, latency_ms_mean, latency_ms_m2,"
        " latency_ms_big, latency_ms_bad FROM unit_rollup ORDER BY keyed").fetchall() == [
        (0, "", 2, 1, 0, 0.0, 0.0, 0, 1), (1, "u1", 3, 0, 2, 6.0, 2.0, 1, 0)]
