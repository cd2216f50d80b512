"""The index schema: ordered named migrations, upgrade of an older index."""

from __future__ import annotations

import sqlite3

import pytest

from promptlab.errors import LogIndexError
from promptlab.index.schema import MIGRATIONS, applied_migrations, migrate


def _conn() -> sqlite3.Connection:
    return sqlite3.connect(":memory:", isolation_level=None)


def test_fresh_index_applies_every_migration_in_order() -> None:
    conn = _conn()
    assert migrate(conn) == [m.name for m in MIGRATIONS]
    assert applied_migrations(conn) == [m.name for m in MIGRATIONS]
    assert conn.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    assert migrate(conn) == []  # idempotent


def test_older_schema_is_migrated_and_keeps_its_rows() -> None:
    conn = _conn()
    migrate(conn, upto=1)  # an index built before full-text search and roll-ups existed
    conn.execute(
        "INSERT INTO entries (rowid, id, file_id, offset, length, timestamp, ts, day, kind,"
        " status, model, input_tokens, output_tokens, cost_usd, tags)"
        " VALUES (1, 'A', 1, 0, 10, '2026-01-02T00:00:00.000000Z', 1767312000, 20455, 'llm',"
        " 'ok', 'gpt-4o', 100, 20, 0.5, '[\"prod\"]')"
    )
    conn.execute("INSERT INTO entry_tags VALUES ('prod', 1)")
    assert migrate(conn) == [m.name for m in MIGRATIONS[1:]]
    # The roll-up was backfilled from the rows already there.
    assert conn.execute("SELECT day, model, calls, input_tokens, cost_usd FROM rollup").fetchall() \
        == [(20455, "gpt-4o", 1, 100, 0.5)]
    assert conn.execute("SELECT tag, calls FROM rollup_tags").fetchall() == [("prod", 1)]
    # FTS cannot be backfilled from the database (texts live in the JSONL): flagged.
    assert conn.execute("SELECT value FROM meta WHERE key = 'reindex_needed'").fetchone() == (1,)
    indexes = {name for (name,) in conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert "entries_traced" in indexes and "entries_trace_roots" not in indexes  # 011


def test_experiment_cells_index_replaces_the_experiment_variant_index() -> None:
    conn = _conn()
    before = [m.name for m in MIGRATIONS].index("006_experiment_cells")
    migrate(conn, upto=before)  # an index with only (experiment, variant)
    conn.execute(
        "INSERT INTO entries (rowid, id, file_id, offset, length, timestamp, ts, day, kind,"
        " status, experiment, variant, run_id, item_id)"
        " VALUES (1, 'A', 1, 0, 10, '2026-01-02T00:00:00.000000Z', 1767312000, 20455, 'llm',"
        " 'ok', 'ab', 'v1', 'r1', '7')"
    )
    assert "006_experiment_cells" in migrate(conn)
    indexes = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert "entries_by_experiment_cells" in indexes and "entries_by_experiment" not in indexes
    # what `experiment status` groups by is read from the index alone, rows kept
    plan = " ".join(str(r) for r in conn.execute(
        "EXPLAIN QUERY PLAN SELECT variant, run_id, prompt_version, count(*), min(timestamp),"
        " count(DISTINCT coalesce(unit_id, item_id)) FROM entries WHERE experiment = 'ab'"
        " AND kind = 'llm' GROUP BY variant, run_id, prompt_version"))
    assert "COVERING INDEX entries_by_experiment_cells" in plan and "TEMP B-TREE FOR GROUP" \
        not in plan
    assert conn.execute("SELECT variant, run_id, count(*) FROM entries WHERE experiment = 'ab'"
                        " GROUP BY 1, 2").fetchall() == [("v1", "r1", 1)]


def test_score_units_are_backfilled_and_indexed_for_per_unit_means() -> None:
    conn = _conn()
    migrate(conn, upto=[m.name for m in MIGRATIONS].index("007_score_units"))
    for rowid, unit_id, item_id in ((1, "u1", "i1"), (2, None, "i2"), (3, None, None)):
        conn.execute(
            "INSERT INTO entries (rowid, id, file_id, offset, length, timestamp, ts, day, kind,"
            " status, prompt_id, prompt_version, unit_id, item_id) VALUES (?, ?, 1, 0, 10,"
            " '2026-01-02T00:00:00.000000Z', 1767312000, 20455, 'llm', 'ok', 'qa', 'v1', ?, ?)",
            (rowid, f"E{rowid}", unit_id, item_id))
        conn.execute(
            "INSERT INTO scores (entry_rowid, entry_id, name, value, is_bool, source,"
            " prompt_id, prompt_version) VALUES (?, ?, 'q', ?, 0, 'entry', 'qa', 'v1')",
            (rowid, f"E{rowid}", rowid / 2))
    assert migrate(conn, upto=[m.name for m in MIGRATIONS].index("007_score_units") + 1
                   ) == ["007_score_units"]
    assert conn.execute("SELECT entry_rowid, unit FROM scores ORDER BY 1").fetchall() == [
        (1, "u1"), (2, "i2"), (3, "E3")]
    # a score's per-unit means come from the covering index alone
    query = ("SELECT avg(value), total(is_bool) FROM scores WHERE prompt_id = 'qa' AND"
             " prompt_version = 'v1' AND name = 'q' GROUP BY unit")
    plan = " ".join(str(r) for r in conn.execute("EXPLAIN QUERY PLAN " + query))
    assert "COVERING INDEX scores_by_unit" in plan and "TEMP B-TREE" not in plan
    assert conn.execute(query).fetchall() == [(1.5, 0.0), (1.0, 0.0), (0.5, 0.0)]


def test_an_old_index_on_disk_is_upgraded_and_refilled_on_first_use(log_dir) -> None:
    from promptlab.index.core import Index

    from .helpers import append, entry

    e = entry(seconds=1, assistant_response="searchable after the upgrade")
    append(log_dir, e)
    conn = sqlite3.connect(log_dir / "index.db", isolation_level=None)
    migrate(conn, upto=1)  # what an early promptlab left behind, with a row already in it
    size = (log_dir / "2026-01-05.jsonl").stat().st_size
    conn.execute("INSERT INTO files (file_id, name, offset, size) VALUES "
                 "(1, '2026-01-05.jsonl', ?, ?)", (size, size))  # already read to the end
    conn.execute("INSERT INTO entries (rowid, id, file_id, offset, length, timestamp, ts, day,"
                 " kind, status) VALUES (1, ?, 1, 0, ?, ?, 0, 0, 'llm', 'ok')",
                 (e["id"], size - 1, e["timestamp"]))
    conn.close()
    with Index(log_dir) as index:
        assert [h.entry for h in index.search("upgrade")] == [e]
        assert index.conn.execute("SELECT sum(calls) FROM rollup").fetchone() == (1,)
        assert applied_migrations(index.conn) == [m.name for m in MIGRATIONS]


def test_index_from_a_newer_promptlab_is_refused_with_advice() -> None:
    conn = _conn()
    migrate(conn)
    conn.execute("INSERT INTO migrations VALUES ('099_future', 0)")
    conn.execute("PRAGMA user_version = 99")
    with pytest.raises(LogIndexError, match="newer promptlab.*099_future.*delete the index"):
        migrate(conn, where="/tmp/x/index.db")
