"""Incremental sync: appends, torn tails, replaced and deleted files, malformed lines."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from promptlab.index import parse as sync_parse
from promptlab.index import sync as sync_module
from promptlab.index.core import Index
from promptlab.index.schema import rollup_select_sql

from .helpers import append, entry, line


def ids(index: Index) -> list[str]:
    return [r[0] for r in index.conn.execute("SELECT id FROM entries ORDER BY rowid")]


def fts_ids(index: Index, query: str) -> list[str]:
    return [r[0] for r in index.conn.execute(
        "SELECT e.id FROM entries_fts f JOIN entries e ON e.rowid = f.rowid "
        "WHERE entries_fts MATCH ? ORDER BY e.rowid", (query,))]


def rollup_matches_entries(index: Index) -> bool:
    def norm(rows: list[tuple]) -> list[tuple]:
        return sorted(tuple(round(v, 6) if isinstance(v, float) else v for v in r) for r in rows)

    for table, per_tag in (("rollup", False), ("rollup_tags", True)):
        kept = index.conn.execute(f"SELECT * FROM {table} WHERE calls > 0").fetchall()
        fresh = index.conn.execute(rollup_select_sql(per_tag=per_tag)).fetchall()
        if norm(kept) != norm(fresh):
            return False
    return True


def test_sync_ingests_appended_lines_only_once(log_dir: Path) -> None:
    first = [entry(seconds=i) for i in range(3)]
    append(log_dir, *first)
    with Index(log_dir) as index:
        stats = index.sync()
        assert (stats.entries, stats.files, stats.malformed) == (3, 1, 0)
        assert index.sync().entries == 0  # nothing new: nothing done
        more = [entry(seconds=10 + i) for i in range(2)]
        append(log_dir, *more)
        assert index.sync().entries == 2
        assert ids(index) == [e["id"] for e in first + more]
        row = index.conn.execute(
            "SELECT kind, model, status, input_tokens, latency_ms, day, ts FROM entries LIMIT 1"
        ).fetchone()
        assert row[:5] == ("llm", "gpt-4o-mini", "ok", 10, 120.5)
        assert row[5] == int(row[6] // 86400)


def test_torn_last_line_waits_until_it_is_complete(log_dir: Path) -> None:
    done, torn = entry(seconds=1), entry(seconds=2, assistant_response="second half")
    encoded = line(torn)
    path = append(log_dir, done, raw=encoded[:25])
    with Index(log_dir) as index:
        stats = index.sync()
        assert (stats.entries, stats.malformed) == (1, 0)
        with open(path, "ab") as fh:
            fh.write(encoded[25:])
        assert index.sync().entries == 1
        assert ids(index) == [done["id"], torn["id"]]
        assert fts_ids(index, "second") == [torn["id"]]


def test_malformed_lines_are_counted_with_their_line_numbers(log_dir: Path) -> None:
    good1, good2 = entry(seconds=1), entry(seconds=2)
    append(log_dir, good1, raw=b'{"id": broken\n[1, 2]\n{"no": "id"}\n\n')
    append(log_dir, good2)
    with Index(log_dir) as index:
        stats = index.sync()
        assert stats.entries == 3  # the line without an id is an entry with a derived id
        assert stats.malformed == 2
        assert [p.split(": ")[:2] for p in stats.problems] == [
            ["2026-01-05.jsonl:2", "invalid JSON"],
            ["2026-01-05.jsonl:3", "not a JSON object (a list)"],
        ]
        assert index.conn.execute("SELECT lines, malformed FROM files").fetchone() == (6, 2)
        assert index.conn.execute("SELECT id FROM entries WHERE rowid = 2").fetchone() == (
            "2026-01-05:4",)


def test_new_day_file_is_picked_up(log_dir: Path) -> None:
    append(log_dir, entry("2026-01-05", 5))
    with Index(log_dir) as index:
        index.sync()
        append(log_dir, entry("2026-01-06", 5))
        stats = index.sync()
        assert (stats.entries, stats.files) == (1, 1)
        assert [r[0] for r in index.conn.execute("SELECT name FROM files ORDER BY name")] == [
            "2026-01-05.jsonl", "2026-01-06.jsonl"]


def test_replaced_file_is_read_again(log_dir: Path) -> None:
    old = [entry(seconds=i, tags=["old"]) for i in range(3)]
    path = append(log_dir, *old)
    with Index(log_dir) as index:
        index.sync()
        new = [entry(seconds=100 + i, assistant_response="rewritten") for i in range(2)]
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(b"".join(line(e) for e in new))
        os.replace(tmp, path)  # a new inode under the same name
        stats = index.sync()
        assert (stats.replaced, stats.entries) == (1, 2)
        assert ids(index) == [e["id"] for e in new]
        assert fts_ids(index, "rewritten") == [e["id"] for e in new]
        assert index.conn.execute("SELECT count(*) FROM entry_tags").fetchone() == (0,)
        assert rollup_matches_entries(index)


def test_file_truncated_in_place_is_read_again(log_dir: Path) -> None:
    path = append(log_dir, *[entry(seconds=i) for i in range(3)])
    with Index(log_dir) as index:
        index.sync()
        keep = entry(seconds=50)
        path.write_bytes(line(keep))  # same inode, shorter
        assert index.sync().replaced == 1
        assert ids(index) == [keep["id"]]


def test_deleted_file_takes_its_entries_out_of_the_index(log_dir: Path) -> None:
    append(log_dir, entry("2026-01-05", 1))
    keep = entry("2026-01-06", 1)
    append(log_dir, keep)
    with Index(log_dir) as index:
        index.sync()
        (log_dir / "2026-01-05.jsonl").unlink()
        stats = index.sync()
        assert stats.removed == 1
        assert ids(index) == [keep["id"]]
        assert rollup_matches_entries(index)


def test_duplicate_ids_are_indexed_once(log_dir: Path) -> None:
    e = entry(seconds=1)
    append(log_dir, e, e)
    append(log_dir, e, day="2026-01-06")  # a copied line in another file
    with Index(log_dir) as index:
        stats = index.sync()
        assert (stats.entries, stats.duplicates) == (1, 2)
        assert fts_ids(index, "hello") == [e["id"]]
        assert rollup_matches_entries(index)


def test_mistyped_and_non_finite_lines_are_skipped_with_the_field_named(log_dir: Path) -> None:
    import json

    bad = [entry(seconds=1, model=123), entry(seconds=2, latency_ms="fast"),
           entry(seconds=3, output_tokens=1e30), entry(seconds=4, v=99),
           entry(seconds=5, timestamp="yesterday at noon")]
    nan = json.dumps(entry(seconds=6, latency_ms=float("nan"))).encode()
    good = entry(seconds=7)
    append(log_dir, *bad, raw=nan + b"\n" + b"\xef\xbb\xbf" + line(good)[:-1] + b"\n")
    with Index(log_dir) as index:
        stats = index.sync()
        assert (stats.entries, stats.malformed) == (1, 6)
        assert [p.split(": ", 1)[1][:30] for p in stats.problems] == [
            "field 'model' must be a string",
            "field 'latency_ms' must be a n",
            "field 'output_tokens' must be ",
            "schema version v=99 was writte",
            "field 'timestamp' must be an I",
            "invalid JSON: unexpected chara",
        ]
        assert [r[0] for r in index.conn.execute("SELECT id FROM entries")] == [good["id"]]


def test_entries_with_only_messages_are_searchable(log_dir: Path) -> None:
    chat = entry(seconds=1, system_prompt=None, user_message=None, assistant_response=None,
                 messages=[{"role": "system", "content": "Be terse"},
                           {"role": "user", "content": [{"type": "text", "text": "quokka?"}]},
                           {"role": "assistant", "content": "marsupial"}])
    append(log_dir, chat)
    with Index(log_dir) as index:
        index.sync()
        assert fts_ids(index, "system_prompt:terse") == [chat["id"]]
        assert fts_ids(index, "user_message:quokka") == [chat["id"]]
        assert fts_ids(index, "assistant_response:marsupial") == [chat["id"]]


def test_timestamp_missing_falls_back_to_the_id_time(log_dir: Path) -> None:
    e = entry(seconds=30)
    del e["timestamp"]
    append(log_dir, e, day="2026-01-05")
    with Index(log_dir) as index:
        index.sync()
        assert index.conn.execute("SELECT timestamp FROM entries").fetchone() == (
            "2026-01-05T00:00:30.000000Z",)


def test_chunked_and_prefetched_sync_builds_the_same_index(
    log_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    days = ["2026-01-05", "2026-01-06", "2026-01-07"]
    for day in days:
        append(log_dir, *[entry(day, i, tags=[f"t{i % 3}"], scores={"ok": i % 2 == 0},
                                assistant_response=f"word{i % 7} reply") for i in range(60)])
    append(log_dir, raw=b"garbage\n", day=days[1])
    monkeypatch.setattr(sync_parse, "CHUNK_BYTES", 2000)  # many chunks per file
    monkeypatch.setattr(sync_module, "BULK_BYTES", 1000)  # and the bulk path
    with Index(log_dir) as index:
        stats = index.sync()
        chunked = _dump(index)
        assert (stats.entries, stats.malformed) == (180, 1)
        assert index.sync().entries == 0
        missing = [n for n in ("entries_by_ts", "scores_by_prompt") if not index.conn.execute(
            "SELECT 1 FROM sqlite_master WHERE name = ?", (n,)).fetchone()]
        assert missing == []
    monkeypatch.setattr(sync_module, "PREFETCH", False)
    monkeypatch.setattr(sync_parse, "CHUNK_BYTES", 16 * 1024 * 1024)
    with Index(log_dir, path=str(tmp_path / "plain.db")) as plain:
        plain.sync()
        assert _dump(plain) == chunked
        assert rollup_matches_entries(plain)


def _dump(index: Index) -> dict[str, list[tuple]]:
    q = index.conn.execute
    return {
        "entries": q("SELECT id, offset, length, tags FROM entries ORDER BY id").fetchall(),
        "scores": q("SELECT entry_id, name, value FROM scores ORDER BY 1, 2").fetchall(),
        "tags": q("SELECT tag, count(*) FROM entry_tags GROUP BY tag").fetchall(),
        "rollup": q("SELECT * FROM rollup ORDER BY 1, 2, 3, 4, 5, 6").fetchall(),
        "fts": q("SELECT e.id FROM entries_fts f JOIN entries e ON e.rowid = f.rowid "
                 "WHERE entries_fts MATCH 'word3' ORDER BY 1").fetchall(),
        "files": q("SELECT name, offset, lines, malformed FROM files ORDER BY 1").fetchall(),
    }


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cuts=st.lists(st.integers(min_value=0, max_value=4000), max_size=6))
def test_any_sequence_of_partial_writes_indexes_exactly_the_whole_lines(
    tmp_path_factory: pytest.TempPathFactory, cuts: list[int]
) -> None:
    log_dir = tmp_path_factory.mktemp("logs")
    entries = [entry(seconds=i, assistant_response=f"reply {i}") for i in range(12)]
    data = b"".join(line(e) for e in entries)
    path = log_dir / "2026-01-05.jsonl"
    written = 0
    with Index(log_dir) as index:
        for cut in [*sorted(cuts), len(data)]:
            cut = min(cut, len(data))
            with open(path, "ab") as fh:
                fh.write(data[written:cut])
            written = max(written, cut)
            index.sync()
            complete = data[:written].count(b"\n")
            assert ids(index) == [e["id"] for e in entries[:complete]]
        assert index.conn.execute("SELECT malformed FROM files").fetchone() == (0,)
