"""score_unit_rollup (migration 009): each score per (prompt, version, name, randomisation
unit) of the calls with a unit or item id, kept by sync, always equals the roll-up computed from scratch from `scores` — value
for value, means included — after incremental appends, feedback that adds or replaces a
score (also before its target arrives), duplicate lines, removed and rewritten files, a bulk
load, reindex and the migration's backfill; and its means are the very doubles `compare`'s
GROUP BY unit over scores_by_unit computes."""

from __future__ import annotations

import random
import sqlite3
from pathlib import Path

import pytest

from promptlab.index import sync as sync_module
from promptlab.index.core import Index
from promptlab.index.schema import (
    MIGRATIONS,
    SCORE_UNIT_KEYS,
    SCORE_UNIT_MEASURES,
    migrate,
    score_unit_rollup_select_sql,
)

from .helpers import append, entry, random_unit

KEYS = len(SCORE_UNIT_KEYS)


def _table(conn: sqlite3.Connection, sql: str) -> dict[tuple, tuple]:
    return {tuple(r[:KEYS]): tuple(r[KEYS:]) for r in conn.execute(sql)}


def assert_exact(conn: sqlite3.Connection) -> dict[tuple, tuple]:
    """The kept roll-up equals the from-scratch one exactly; it holds every unit with a
    call that has a unit or item id (not the other calls, each a unit of its own), each
    with the mean compare's own per-unit query over scores_by_unit gives."""
    kept = _table(conn, f"SELECT {', '.join((*SCORE_UNIT_KEYS, *SCORE_UNIT_MEASURES))} "
                        "FROM score_unit_rollup")
    fresh = _table(conn, score_unit_rollup_select_sql())
    assert kept == fresh
    groups = conn.execute("SELECT DISTINCT prompt_id, prompt_version, name FROM scores "
                          "WHERE prompt_id IS NOT NULL AND prompt_version IS NOT NULL")
    for p, v, name in groups.fetchall():
        means = conn.execute(
            "SELECT unit, avg(CASE WHEN abs(value) <= 1e150 THEN value END), count(*) "
            "FROM scores WHERE prompt_id = ? AND prompt_version = ? AND name = ? "
            "GROUP BY unit", (p, v, name)).fetchall()
        keyed = {r[0] for r in conn.execute(  # units with a call that has a unit/item id
            "SELECT unit FROM scores WHERE prompt_id = ? AND prompt_version = ? AND name = ? "
            "AND unit != entry_id", (p, v, name))}
        assert [(u, kept[(p, v, name, u)][2], kept[(p, v, name, u)][0]) for u, _, _ in means
                if u in keyed] == [m for m in means if m[0] in keyed]
        assert {k[3] for k in kept if k[:3] == (p, v, name)} == keyed
    assert not conn.execute("SELECT 1 FROM meta WHERE key = 'score_unit_rollup_stale'"
                            ).fetchone()
    return kept


def _calls(rng: random.Random, day: str, n: int, start: int = 0) -> list[dict]:
    out = []
    for i in range(n):
        scores: dict = {"q": round(rng.uniform(0, 5), 3), "ok": rng.random() < 0.6}
        if rng.random() < 0.05:
            scores["q"] = 1e200  # out of range
        if rng.random() < 0.1:
            scores["note"] = "not a number"
        fields: dict = {"prompt_id": "qa", "prompt_version": rng.choice(["v1", "v2"]),
                        "latency_ms": 10.0, "scores": scores}
        random_unit(rng, fields)
        if rng.random() < 0.05:
            del fields["prompt_version"]  # not rolled up
        out.append(entry(day, start + i, **fields))
    return out


def _feedback(day: str, targets: list[dict], scores: dict, start: int = 0) -> list[dict]:
    return [entry(day, start + i, kind="feedback", target=t["id"], scores=scores)
            for i, t in enumerate(targets)]


def test_roll_up_stays_exact_under_appends_feedback_removal_and_reindex(log_dir: Path) -> None:
    rng = random.Random(16)
    first = _calls(rng, "2026-01-05", 60)
    append(log_dir, *first)
    append(log_dir, entry("2026-01-05", 900, kind="span", name="s", prompt_id="qa",
                          prompt_version="v1", unit_id="user-1", scores={"q": 2.0}))
    with Index(log_dir) as index:
        index.sync()
        rows = assert_exact(index.conn)
        assert {k[2] for k in rows} == {"q", "ok"}
        assert sum(r[0] for r in rows.values()) == index.conn.execute(
            "SELECT count(*) FROM scores WHERE prompt_version IS NOT NULL AND unit != entry_id"
        ).fetchone()[0]
        assert sum(r[4] for r in rows.values()) > 0  # out-of-range values counted apart
        # appends to the same file and a new file: rows of units already there recomputed
        second = _calls(rng, "2026-01-05", 40, start=100)
        append(log_dir, *second)
        index.sync()
        assert_exact(index.conn)
        third = _calls(rng, "2026-01-06", 50)
        append(log_dir, *third)
        index.sync()
        before = assert_exact(index.conn)
        # feedback replacing a score, adding a new one, then a later feedback replacing it
        append(log_dir, *_feedback("2026-01-07", first[:20], {"q": 1.25, "h": 3}))
        index.sync()
        after = assert_exact(index.conn)
        assert after != before and any(k[2] == "h" for k in after)
        append(log_dir, *_feedback("2026-01-07", first[:10], {"q": 4.5, "h": True}, 100))
        index.sync()
        assert_exact(index.conn)
        # feedback before its target (pending, folded when the target arrives)
        late = _calls(rng, "2026-01-09", 8)
        append(log_dir, *_feedback("2026-01-08", late, {"q": 0.5}))
        index.sync()
        assert_exact(index.conn)
        append(log_dir, *late)
        index.sync()
        rows = assert_exact(index.conn)
        # a file copied under another name: its lines are duplicates, counted once
        (log_dir / "2026-01-10.jsonl").write_bytes((log_dir / "2026-01-06.jsonl").read_bytes())
        index.sync()
        assert assert_exact(index.conn) == rows
    # the feedback file removed (scores refolded from the entries' own lines), a file with
    # targets removed (their feedback waits again), another rewritten shorter
    (log_dir / "2026-01-07.jsonl").unlink()
    (log_dir / "2026-01-09.jsonl").unlink()
    (log_dir / "2026-01-05.jsonl").write_bytes(
        b"".join((log_dir / "2026-01-05.jsonl").read_bytes().splitlines(True)[:30]))
    with Index(log_dir) as index:
        index.sync()
        rows = assert_exact(index.conn)
        assert not any(k[2] == "h" for k in rows)
        assert index.conn.execute("SELECT count(*) FROM pending_feedback").fetchone()[0] == 8
        assert index.reindex().entries
        assert assert_exact(index.conn) == rows


def test_bulk_load_rebuilds_the_roll_up(log_dir: Path, monkeypatch: pytest.MonkeyPatch
                                        ) -> None:
    rng = random.Random(5)
    calls = _calls(rng, "2026-01-05", 80)
    append(log_dir, *calls, *_feedback("2026-01-05", calls[:5], {"q": 2.5}, 500))
    monkeypatch.setattr(sync_module, "BULK_BYTES", 0)  # an empty index: drop indexes, load
    seen: list[object] = []
    rebuild = sync_module.Syncer._rebuild_score_units

    def spy(self: sync_module.Syncer) -> None:  # the flag is up until the rebuild
        seen.append(self._meta("score_unit_rollup_stale"))
        rebuild(self)

    monkeypatch.setattr(sync_module.Syncer, "_rebuild_score_units", spy)
    with Index(log_dir) as index:
        index.sync()
        assert seen == [1]
        rows = assert_exact(index.conn)
        assert sum(r[0] for r in rows.values()) > 80
        append(log_dir, *_calls(rng, "2026-01-05", 10, start=200))  # incremental again
        index.sync()
        assert seen == [1]
        assert_exact(index.conn)


def test_roll_up_values() -> None:
    conn = sqlite3.connect(":memory:", isolation_level=None)
    upto = [m.name for m in MIGRATIONS].index("009_score_unit_rollup")
    migrate(conn, upto=upto)
    # what an older index may hold: booleans, a value out of range, a row without version
    for rowid, name, value, is_bool, unit, version in (
            (1, "q", 1.0, 0, "u1", "v1"), (2, "q", 4.0, 0, "u1", "v1"),
            (3, "q", 1e200, 0, "u1", "v1"), (1, "ok", 1.0, 1, "u1", "v1"),
            (4, "q", 1e200, 0, "u2", "v1"), (5, "q", 3.0, 0, "u3", None),
            (6, "q", 2.0, 0, "E6", "v1")):  # a call without unit or item id: not rolled up
        conn.execute(
            "INSERT INTO scores (entry_rowid, entry_id, name, value, is_bool, source, "
            "prompt_id, prompt_version, unit) VALUES (?, ?, ?, ?, ?, 'entry', 'qa', ?, ?)",
            (rowid, f"E{rowid}", name, value, is_bool, version, unit))
    assert migrate(conn) == ["009_score_unit_rollup", "010_own_scores", "011_traced_entries",
                            "012_capped_cached_rollup"]
    assert conn.execute(
        "SELECT name, unit, rows, n, mean, n_bool, big FROM score_unit_rollup "
        "ORDER BY name, unit").fetchall() == [
        ("ok", "u1", 1, 1, 1.0, 1, 0), ("q", "u1", 3, 2, 2.5, 0, 1),
        ("q", "u2", 1, 0, None, 0, 1)]
    assert_exact(conn)


def test_index_dropped_by_another_sync_meanwhile(log_dir: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(6)
    append(log_dir, *_calls(rng, "2026-01-05", 40))
    with Index(log_dir) as index:
        index.sync()
        append(log_dir, *_calls(rng, "2026-01-06", 40))
        ingest = sync_module.Syncer._ingest

        def other_bulk_load(self: sync_module.Syncer, *args: object) -> None:
            # as another process's bulk load would, once this sync has started
            self.conn.execute("DROP INDEX scores_by_unit")
            ingest(self, *args)

        monkeypatch.setattr(sync_module.Syncer, "_ingest", other_bulk_load)
        index.sync()
        assert_exact(index.conn)  # rebuilt at the end, flag down
        monkeypatch.setattr(sync_module.Syncer, "_ingest", ingest)
        append(log_dir, *_calls(rng, "2026-01-07", 10))
        index.sync()
        assert_exact(index.conn)


def test_a_call_whose_id_is_another_calls_unit_id(log_dir: Path) -> None:
    """A call without unit or item id is a unit of its own (its id); when another call names
    that id as its unit id, compare pools both under it, and so does the roll-up."""
    lone = entry("2026-01-05", 1, prompt_id="qa", prompt_version="v1", scores={"q": 1.0})
    append(log_dir, lone)
    with Index(log_dir) as index:
        index.sync()
        assert assert_exact(index.conn) == {}  # not rolled up on its own
        other = entry("2026-01-06", 2, prompt_id="qa", prompt_version="v1",
                      unit_id=lone["id"], scores={"q": 3.0})
        append(log_dir, other)
        index.sync()
        assert assert_exact(index.conn) == {("qa", "v1", "q", lone["id"]): (2, 2, 2.0, 0, 0)}
        # feedback on the call without ids changes that unit's row
        append(log_dir, entry("2026-01-07", 3, kind="feedback", target=lone["id"],
                              scores={"q": 5.0}))
        index.sync()
        assert assert_exact(index.conn) == {("qa", "v1", "q", lone["id"]): (2, 2, 4.0, 0, 0)}
        (log_dir / "2026-01-05.jsonl").unlink()  # the call without ids goes
        index.sync()
        assert assert_exact(index.conn) == {("qa", "v1", "q", lone["id"]): (1, 1, 3.0, 0, 0)}
        append(log_dir, lone)  # back, then the call with the unit id goes
        index.sync()
        (log_dir / "2026-01-06.jsonl").unlink()
        index.sync()
        assert assert_exact(index.conn) == {}
