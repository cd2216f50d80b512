"""Reading logs back: date ranges, malformed and torn lines, `logs check`."""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from promptlab import Logger
from promptlab.cli.logs_check import logs_check
from promptlab.errors import UsageError
from promptlab.logs.reader import ReadStats, check_files, log_files, parse_bound, read_entries


def line(i: int, day: str = "2026-11-26", hour: int = 12) -> str:
    return json.dumps({"v": 1, "id": f"id{i}", "timestamp": f"{day}T{hour:02d}:00:00.000000Z",
                       "kind": "llm", "model": "m"}) + "\n"


@pytest.fixture
def damaged(tmp_path: Path) -> Path:
    """A day file with a malformed line, a non-object line, a glued fragment and a torn tail."""
    path = tmp_path / "2026-11-26.jsonl"
    path.write_text(
        line(1)
        + "this is not json\n"
        + line(2)
        + "[1, 2]\n"
        + "\n"
        + '{"v":1,"id":"cut-off","user_message":"abc' + line(3)  # a killed writer's fragment
        + line(4)
        + '{"v":1,"id":"torn","model":"gp'
    )
    return tmp_path


def test_bad_lines_are_skipped_counted_and_never_cost_good_ones(damaged: Path) -> None:
    stats = ReadStats()
    ids = [e["id"] for e in read_entries(damaged, stats=stats)]
    assert ids == ["id1", "id2", "id3", "id4"]
    assert [(p.line, p.torn) for p in stats.problems] == [(2, False), (4, False), (6, True),
                                                          (8, True)]
    assert stats.problems[0].reason.startswith("invalid JSON")
    assert stats.problems[1].reason == "not a JSON object (a list)"
    assert "torn fragment of 41 bytes before an entry" in stats.problems[2].reason
    assert stats.problems[3].reason.startswith("torn last line")
    assert stats.entries == 4 and stats.malformed == 2 and stats.torn == 2
    assert stats.summary() == ("skipped 4 unreadable log line(s) (2026-11-26.jsonl:2, "
                               "2026-11-26.jsonl:4, 2026-11-26.jsonl:6, 2026-11-26.jsonl:8); "
                               "run 'promptlab logs check' for details")


def test_complete_last_line_without_newline_is_kept(tmp_path: Path) -> None:
    (tmp_path / "2026-11-26.jsonl").write_text(line(1) + line(2).rstrip("\n"))
    stats = ReadStats()
    assert [e["id"] for e in read_entries(tmp_path, stats=stats)] == ["id1", "id2"]
    assert stats.problems == []


def test_date_range_selects_files_and_entries(tmp_path: Path) -> None:
    for day in ("2026-11-24", "2026-11-25", "2026-11-26"):
        (tmp_path / f"{day}.jsonl").write_text(
            "".join(line(i, day, hour) for i, hour in ((1, 6), (2, 18))))
    (tmp_path / "index.db").write_text("not a log")
    (tmp_path / "2026-11-25.jsonl.1").write_text("rotated away")

    def ids(**kw: object) -> list[str]:
        return [f"{e['timestamp'][8:13]}" for e in read_entries(tmp_path, **kw)]

    assert ids() == ["24T06", "24T18", "25T06", "25T18", "26T06", "26T18"]
    assert ids(since="2026-11-25") == ["25T06", "25T18", "26T06", "26T18"]
    assert ids(until=dt.date(2026, 11, 25)) == ["24T06", "24T18", "25T06", "25T18"]
    assert ids(since="2026-11-24T12:00:00Z", until="2026-11-26T07:00:00Z") == [
        "24T18", "25T06", "25T18", "26T06"]
    assert [p.name for p in log_files(tmp_path, since="2026-11-25", until="2026-11-25")] == [
        "2026-11-25.jsonl"]


def test_date_range_reads_a_timestamp_with_an_offset_as_its_utc_time(tmp_path: Path) -> None:
    """02:00+05:00 on the 2nd is 21:00 UTC on the 1st: compared as text it fell on the
    wrong side of a bound at the day's edge."""
    (tmp_path / "2026-12-01.jsonl").write_text(
        '{"id": "east", "timestamp": "2026-12-02T02:00:00+05:00", "model": "m"}\n'
        '{"id": "naive", "timestamp": "2026-12-01T23:00:00", "model": "m"}\n')
    assert [e["id"] for e in read_entries(tmp_path, until="2026-12-01T22:00:00Z")] == ["east"]
    assert [e["id"] for e in read_entries(tmp_path, since="2026-12-01T22:00:00Z")] == ["naive"]


def test_relative_and_bad_bounds() -> None:
    now = dt.datetime(2026, 11, 26, 12, tzinfo=dt.UTC).timestamp()
    assert parse_bound("7d", now=now) == "2026-11-19T12:00:00.000000Z"
    assert parse_bound("90m", now=now) == "2026-11-26T10:30:00.000000Z"
    assert parse_bound("today", now=now) == "2026-11-26T00:00:00.000000Z"
    assert parse_bound("yesterday", end=True, now=now) == "2026-11-26T00:00:00.000000Z"
    with pytest.raises(UsageError, match="'last week' is not a date"):
        parse_bound("last week")


def test_missing_folder_reads_as_empty(tmp_path: Path) -> None:
    assert list(read_entries(tmp_path / "nope")) == []


def test_reads_what_the_logger_wrote_with_the_default_folder(log_dir: Path) -> None:
    written = [Logger().log(model="m", user_message=str(i)) for i in range(3)]
    assert list(read_entries()) == written


def test_check_files_reports_per_file(damaged: Path) -> None:
    (damaged / "2026-11-25.jsonl").write_text(line(9, "2026-11-25"))
    reports = check_files(damaged)
    assert [(r.path.name, r.entries, r.ok, r.torn_tail) for r in reports] == [
        ("2026-11-25.jsonl", 1, True, False), ("2026-11-26.jsonl", 4, False, True)]
    assert [p.line for p in reports[1].problems] == [2, 4, 6, 8]


# -- promptlab logs check --------------------------------------------------------------------


def test_logs_check_lists_problems_with_line_numbers_and_exits_1(damaged: Path) -> None:
    result = CliRunner().invoke(logs_check, ["--log-dir", str(damaged)])
    assert result.exit_code == 1
    out = result.stdout
    assert "2026-11-26.jsonl" in out and "PROBLEMS" in out
    assert f"{damaged / '2026-11-26.jsonl'}:2: invalid JSON" in out
    assert f"{damaged / '2026-11-26.jsonl'}:4: not a JSON object (a list)" in out
    assert f"{damaged / '2026-11-26.jsonl'}:8: torn last line" in out
    assert "1 file(s), 4 entries, 4 unreadable line(s)" in result.stderr


def test_logs_check_clean_logs_exit_0(log_dir: Path) -> None:
    Logger().log(model="m")
    Logger().log(model="m")
    result = CliRunner().invoke(logs_check, [])
    assert result.exit_code == 0, result.output
    assert "ok" in result.stdout
    assert "1 file(s), 2 entries, 0 unreadable line(s): all good" in result.stderr


@pytest.mark.parametrize(("make", "kind"), [
    (lambda p: Path("/dev/null"), "a device"),
    (lambda p: (os.mkfifo(p / "some.fifo"), p / "some.fifo")[1], "a named pipe"),
    (lambda p: (os.symlink("/dev/null", p / "link.jsonl"), p / "link.jsonl")[1], "a device"),
], ids=["dev-null", "fifo", "link-to-a-device"])
def test_logs_check_names_a_file_that_is_not_a_regular_file(tmp_path: Path, make: Any,
                                                            kind: str) -> None:
    from promptlab.cli import main

    path = make(tmp_path)
    result = CliRunner().invoke(main, ["logs", "check", str(path)])
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr == (f"Error: log file {path} is not a regular file ({kind}); give "
                             "the .jsonl files of the log folder, such as 2026-11-26.jsonl\n")
    missing = CliRunner().invoke(main, ["logs", "check", str(tmp_path / "nope.jsonl")])
    assert missing.exit_code == 2
    assert missing.stderr == f"Error: log file {tmp_path / 'nope.jsonl'} not found\n"


def test_logs_check_json(damaged: Path) -> None:
    result = CliRunner().invoke(logs_check, ["--log-dir", str(damaged), "--json"])
    assert result.exit_code == 1
    (report,) = json.loads(result.stdout)
    assert report["entries"] == 4 and report["ok"] is False
    assert [p["line"] for p in report["problems"]] == [2, 4, 6, 8]
    assert report["problems"][3]["torn"] is True


def test_logs_check_named_file_and_missing_file(damaged: Path) -> None:
    path = damaged / "2026-11-26.jsonl"
    result = CliRunner().invoke(logs_check, [str(path)])
    assert result.exit_code == 1 and f"{path}:2: invalid JSON" in result.stdout
    from promptlab.cli import main

    missing = CliRunner().invoke(main, ["logs", "check", str(damaged / "nope.jsonl")])
    assert missing.exit_code == 2
    assert missing.stderr.strip() == f"Error: log file {damaged / 'nope.jsonl'} not found"


def test_logs_check_empty_folder(tmp_path: Path) -> None:
    result = CliRunner().invoke(logs_check, ["--log-dir", str(tmp_path)])
    assert result.exit_code == 0
    assert result.stderr.strip() == f"No log files in {tmp_path}."


# -- one parser: what a line is ---------------------------------------------------------------


@pytest.mark.parametrize(("text", "reason"), [
    ('{"v":1,"id":"a","timestamp":"2026-11-26T12:00:00Z","latency_ms":NaN}', "invalid JSON"),
    ('{"v":1,"id":"a","timestamp":"2026-11-26T12:00:00Z","latency_ms":Infinity}',
     "invalid JSON"),
    ('{"v":1,"id":"a","timestamp":"2026-11-26T12:00:00Z","cost_usd":1e999}', "invalid JSON"),
    ('{"v":1,"id":"a","timestamp":"2026-11-26T12:00:00Z","model":123}',
     "field 'model' must be a string, got int 123"),
    ('{"v":1,"id":"a","timestamp":"2026-11-26T12:00:00Z","latency_ms":"fast"}',
     "field 'latency_ms' must be a number, got str 'fast'"),
    ('{"v":1,"id":"a","timestamp":"2026-11-26T12:00:00Z","output_tokens":1e30}',
     "field 'output_tokens' must be between 0 and 1,000,000,000, got float 1e+30"),
    ('{"v":99,"id":"a","timestamp":"2026-11-26T12:00:00Z"}',
     "schema version v=99 was written by a newer promptlab (this one reads v=1); upgrade"),
    ('{"v":1,"id":"a","timestamp":"yesterday"}', "field 'timestamp' must be an ISO 8601 time"),
    ('{"v":1,"id":"a","timestamp":"0001-01-01T00:00:00+01:00"}',  # year 0 in UTC
     "field 'timestamp' must be an ISO 8601 time"),
    ('{"v":1,"id":"a","timestamp":"9999-12-31T23:59:59-01:00"}',
     "field 'timestamp' must be an ISO 8601 time"),
    ('{"v":true,"id":"a","timestamp":"2026-11-26T12:00:00Z"}', "field 'v' must be 1"),
    ('{"v":1,"id":"a","timestamp":"2026-11-26T12:00:00Z","kind":"chat"}',
     "field 'kind' must be llm or span or feedback"),
    ('{"v":1,"id":"a","timestamp":"2026-11-26T12:00:00Z","tags":[1]}',
     "field 'tags' must be a list of strings"),
    ('{"v":1,"id":"a","timestamp":"2026-11-26T12:00:00Z","cost_usd":-1}',
     "field 'cost_usd' must be between 0 and 1,000,000"),
])
def test_non_finite_and_mistyped_lines_are_skipped_with_the_reason(
        tmp_path: Path, text: str, reason: str) -> None:
    (tmp_path / "2026-11-26.jsonl").write_text(line(1) + text + "\n" + line(2))
    stats = ReadStats()
    assert [e["id"] for e in read_entries(tmp_path, stats=stats)] == ["id1", "id2"]
    assert [(p.line, p.torn) for p in stats.problems] == [(2, False)]
    assert stats.problems[0].reason.startswith(reason)
    [report] = check_files(tmp_path)
    assert (report.entries, [p.line for p in report.problems]) == (2, [2])


def test_entries_without_id_or_timestamp_get_stable_derived_ones(tmp_path: Path) -> None:
    (tmp_path / "2026-11-26.jsonl").write_text(
        line(1)
        + '{"model":"hand-written","timestamp":"2026-11-26T08:00:00Z"}\n'
        + '{"v":1,"id":"01KE8000000000000000000001","model":"m"}\n'
        + '{"model":"no id, no time"}\n')
    entries = list(read_entries(tmp_path))
    assert [e["id"] for e in entries] == ["id1", "2026-11-26:2", "01KE8000000000000000000001",
                                          "2026-11-26:4"]
    assert entries[2]["timestamp"] == "2026-01-05T21:11:17.760000Z"  # the ULID's time
    assert entries[3]["timestamp"] == "2026-11-26T00:00:00.000000Z"  # the file's day
    assert [e["id"] for e in read_entries(tmp_path)] == [e["id"] for e in entries]  # stable


def test_glued_entry_after_a_fragment_holding_a_nested_v_key(tmp_path: Path) -> None:
    glued = '{"v":1,"id":"g","timestamp":"2026-11-26T12:00:00Z","metadata":{"v":2}}'
    (tmp_path / "2026-11-26.jsonl").write_text('{"v":1,"id":"cut","user_message":"ab'
                                               + glued + "\n")
    stats = ReadStats()
    assert [e["id"] for e in read_entries(tmp_path, stats=stats)] == ["g"]
    assert stats.torn == 1


def test_a_folder_or_fifo_named_like_a_day_file_is_not_read(tmp_path: Path) -> None:
    import os

    (tmp_path / "2026-11-25.jsonl").mkdir()
    os.mkfifo(tmp_path / "2026-11-24.jsonl")  # opening it would block forever
    (tmp_path / "2026-11-26.jsonl").write_text(line(1))
    assert [e["id"] for e in read_entries(tmp_path)] == ["id1"]
    assert [r.path.name for r in check_files(tmp_path)] == ["2026-11-26.jsonl"]


@pytest.mark.parametrize(("value", "end", "bound"), [
    ("99999999999d", False, "0001-01-01T00:00:00.000000Z"),
    ("9" * 30 + "d", True, "0001-01-01T00:00:00.000000Z"),
    ("9999-12-31", True, "9999-12-31T23:59:59.999999Z"),
    ("9999-12-31T23:59:59-01:00", False, "9999-12-31T23:59:59.999999Z"),
    ("0001-01-01T00:00:00+01:00", False, "0001-01-01T00:00:00.000000Z"),
])
def test_bounds_beyond_datetime_are_clamped(value: str, end: bool, bound: str) -> None:
    assert parse_bound(value, end=end) == bound


def test_logs_check_with_extreme_bounds(damaged: Path) -> None:
    for option, value in (("--since", "9" * 30 + "d"), ("--until", "9999-12-31")):
        result = CliRunner().invoke(logs_check, ["--log-dir", str(damaged), option, value])
        assert result.exit_code == 1 and "Traceback" not in result.output
        assert "1 file(s), 4 entries" in result.stderr


@pytest.mark.parametrize(("stamp", "shown"), [
    ("2026-11-26T23:33:13.123456Z", "2026-11-26 23:33:13"),
    ("2026-11-26T23:33:13Z", "2026-11-26 23:33:13"),
    ("2026-12-02T02:00:00+05:00", "2026-12-01 21:00:00"),
    ("2026-12-01T22:30:00.5-03:30", "2026-12-02 02:00:00"),
    ("2026-12-01T20:00:00", "2026-12-01 20:00:00"),  # no zone: UTC
    ("2026-12-01", "2026-12-01 00:00:00"),
    ("0001-01-01T01:00:00+05:00", "0001-01-01 01:00:00"),  # before year 1 in UTC: as written
    ("", ""),
    (None, ""),
])
def test_utc_time_shows_the_utc_time_of_any_timestamp(stamp: str | None, shown: str) -> None:
    from promptlab.logs.reader import utc_time

    assert utc_time(stamp) == shown
