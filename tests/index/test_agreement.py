"""The index agrees with the log: the reader, `logs check` and the index sync decide every
line with the one parser (promptlab.logs.reader.parse_line), so they hold the same entries
and report the same skipped lines, whatever the file holds."""

from __future__ import annotations

import json
from pathlib import Path

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from promptlab.index.core import Index
from promptlab.logs.reader import ReadStats, check_files, read_entries

from .conftest import run
from .helpers import append, entry, line

DAY = "2026-01-05"


def _good(n: int) -> bytes:
    return line(entry(DAY, n, user_message=f"message number {n}"))


def _no_id(n: int) -> bytes:
    e = entry(DAY, n)
    del e["id"]
    return line(e)


def _glued(n: int) -> bytes:  # a killed writer's fragment, then a whole entry on the same line
    return b'{"v":1,"id":"01KILLED","user_message":"killed mid-wri' + _good(n)


def _glued_bad(n: int) -> bytes:
    return b'{"v":1,"model":"x' + line(entry(DAY, n, latency_ms="fast"))


def _mistyped(n: int) -> bytes:
    field, value = [("model", 123), ("latency_ms", "fast"), ("output_tokens", 1e30),
                    ("v", 99), ("timestamp", "not a time"), ("kind", "chat"),
                    ("tags", [1, 2]), ("input_tokens", -3), ("cost_usd", 1e300)][n % 9]
    return line(entry(DAY, n, **{field: value}))


def _non_finite(n: int) -> bytes:
    text = json.dumps(entry(DAY, n, latency_ms=1.0))
    return text.replace("1.0", ["NaN", "Infinity", "1e999"][n % 3]).encode() + b"\n"


LINES = {
    "good": _good, "no_id": _no_id, "glued": _glued, "glued_bad": _glued_bad,
    "mistyped": _mistyped, "non_finite": _non_finite,
    "not_json": lambda n: b"{oops\n", "not_object": lambda n: b"[1, 2]\n",
    "blank": lambda n: b"\n", "bom": lambda n: b"\xef\xbb\xbf" + _good(n),
}


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(kinds=st.lists(st.sampled_from(sorted(LINES)), min_size=1, max_size=18),
       torn_tail=st.booleans())
def test_reader_check_and_index_agree(tmp_path_factory, kinds: list[str],
                                      torn_tail: bool) -> None:
    log_dir = tmp_path_factory.mktemp("logs")
    data = b"".join(LINES[kind](i + 1) for i, kind in enumerate(kinds))
    if torn_tail:
        data += b'{"v":1,"id":"01TORN","model":"gp'
    (log_dir / f"{DAY}.jsonl").write_bytes(data)

    stats = ReadStats()
    read = list(read_entries(log_dir, stats=stats))
    [report] = check_files(log_dir)
    [checked] = json.loads(run("logs", "check", "--log-dir", str(log_dir), "--json",
                               ok=False).stdout)
    with Index(log_dir) as index:
        sync = index.sync()
        indexed = [r[0] for r in index.conn.execute("SELECT id FROM entries ORDER BY rowid")]
        malformed = index.conn.execute("SELECT malformed FROM files").fetchone()[0]
        shown = [e["id"] for e in index.entries(limit=None, kind="all")]

    ids = [e["id"] for e in read]
    assert ids == indexed
    assert sorted(shown) == sorted(ids)  # listing reads each line back to the same entry
    assert report.entries == stats.entries == len(ids) == sync.entries == checked["entries"]
    assert [p["line"] for p in checked["problems"]] == [p.line for p in stats.problems]
    # Every whole line the reader skipped or repaired, the index counted, with its number.
    whole = [p for p in stats.problems if not p.reason.startswith("torn last line")]
    assert malformed == len(whole)
    assert [p.split(":")[1] for p in sync.problems] == [str(p.line) for p in whole]
    assert len(stats.problems) == len(whole) + torn_tail
    expected_entries = sum(kinds.count(k) for k in ("good", "no_id", "glued", "bom"))
    assert len(ids) == expected_entries


def test_entry_glued_after_a_torn_line_is_found_by_search(log_dir: Path) -> None:
    before = entry(seconds=1)
    victim = entry(seconds=2, user_message="glued victim entry zebra")
    append(log_dir, before, raw=b'{"v":1,"id":"01X","user_message":"killed mid-wri'
           + line(victim))
    result = run("logs", "search", "zebra", "--json")
    assert [hit["entry"]["id"] for hit in json.loads(result.stdout)] == [victim["id"]]
    assert "torn fragment of" in result.stderr
    shown = json.loads(run("logs", "show", victim["id"][:12], "--json").stdout)
    assert shown["entry"] == victim


def test_mistyped_lines_never_crash_show_or_reach_costs(log_dir: Path) -> None:
    append(log_dir, entry(seconds=1, model=123), entry(seconds=2, output_tokens=1e30),
           entry(seconds=3, latency_ms="fast"), entry(seconds=4, model="gpt-4o",
                                                      input_tokens=1000, output_tokens=100))
    listing = run("logs", "--json")
    assert len(json.loads(listing.stdout)) == 1
    assert "skipped 3 malformed log lines" in listing.stderr
    assert "2026-01-05.jsonl:1: field 'model' must be a string, got int 123" in listing.stderr
    run("logs", "show", "last")
    costs = json.loads(run("costs", "--json").stdout)
    assert costs["total"]["output_tokens"] == 100
    check = run("logs", "check", ok=False)
    assert check.exit_code == 1
    assert "2026-01-05.jsonl:2: field 'output_tokens' must be between 0 and 1,000,000,000" \
        in check.stdout


def test_entries_without_id_get_the_same_derived_id_everywhere(log_dir: Path) -> None:
    hand = entry(seconds=1, user_message="hand written okapi")
    del hand["id"]
    append(log_dir, entry(seconds=0), hand)
    derived = f"{DAY}:2"
    assert [e["id"] for e in read_entries(log_dir)][1] == derived
    check = run("logs", "check")
    assert "2 entries" in check.stderr and "all good" in check.stderr
    assert derived in run("logs").stdout
    hits = json.loads(run("logs", "search", "okapi", "--json").stdout)
    assert [h["entry"]["id"] for h in hits] == [derived]
    shown = json.loads(run("logs", "show", derived, "--json").stdout)
    assert shown["entry"] == {**hand, "id": derived}


def test_invalid_timestamp_never_becomes_the_sync_time(log_dir: Path) -> None:
    bad = entry(seconds=1, timestamp="2026-13-45T99:00:00Z")
    no_stamp = entry(seconds=2)
    del no_stamp["timestamp"]
    append(log_dir, bad, no_stamp)
    rows = json.loads(run("logs", "--json").stdout)
    assert [r["id"] for r in rows] == [no_stamp["id"]]
    assert rows[0]["timestamp"].startswith(DAY)  # taken from the ULID, never "now"
    assert orjson.loads(orjson.dumps(rows[0]))["timestamp"] == \
        next(iter(read_entries(log_dir)))["timestamp"]


def test_logger_entry_after_another_writers_torn_line_is_indexed(log_dir: Path) -> None:
    from promptlab import Logger

    logger = Logger()
    first = logger.log(model="m", user_message="first")
    [path] = log_dir.glob("*.jsonl")
    with open(path, "ab") as fh:  # another process, killed mid-line
        fh.write(b'{"v":1,"id":"01KILLEDWRITER","user_message":"killed mid-wri')
    victim = logger.log(model="m", user_message="glued victim entry zebra")
    hits = json.loads(run("logs", "search", "zebra", "--json").stdout)
    assert [h["entry"]["id"] for h in hits] == [victim["id"]]
    assert [e["id"] for e in read_entries(log_dir)] == [first["id"], victim["id"]]
    with Index(log_dir) as index:
        assert index.get(victim["id"]) == victim
