"""`promptlab logs`: newest first, every filter, every output form, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .conftest import Sample, run
from .helpers import append, entry


def listed_ids(*args: str) -> list[str]:
    return [e["id"] for e in json.loads(run("logs", "--json", *args).stdout)]


def test_listing_shows_newest_first_with_the_summary_columns(sample: Sample) -> None:
    out = run("logs").stdout.splitlines()
    assert out[0].split() == ["time", "(UTC)", "id", "model", "prompt", "tokens", "latency",
                              "cost", "response"]
    rows = out[2:]
    assert [r.split()[2] for r in rows] == [  # ids, newest first; spans/feedback left out
        sample.e[n]["id"] for n in ("call_in_trace", "chat", "error", "summary", "review_v2",
                                    "review_v1")]
    first_review = rows[-1]
    assert "2026-01-05 01:00:00" in first_review
    assert "code-review@v1" in first_review
    assert "1,000→200" in first_review
    assert "$0.0045" in first_review
    assert "120 ms" in first_review
    assert "Found an off-by-one error: the slice" in first_review
    assert "ERROR: RateLimitError: 429 too many requests" in rows[2]
    assert "Cliquez sur « mot de passe oublié »." in rows[1]  # from `messages`


def test_json_gives_the_entries_exactly_as_logged(sample: Sample) -> None:
    entries = json.loads(run("logs", "--json", "-n", "2").stdout)
    assert entries == [sample.e["call_in_trace"], sample.e["chat"]]
    nl = run("logs", "--nl", "-n", "2").stdout.splitlines()
    assert [json.loads(x) for x in nl] == entries


def test_csv_has_a_header_and_one_line_per_entry(sample: Sample) -> None:
    lines = run("logs", "--csv", "-n", "3").stdout.splitlines()
    assert lines[0] == "time (UTC),id,model,prompt,tokens,latency,cost,response"
    assert len(lines) == 4


def test_limit_and_zero_for_all(sample: Sample) -> None:
    assert len(listed_ids("-n", "1")) == 1
    assert len(listed_ids("-n", "0")) == 6
    assert len(listed_ids("-n", "0", "--kind", "all")) == 9


@pytest.mark.parametrize(("args", "names"), [
    (("--prompt", "code-review"), ["error", "review_v2", "review_v1"]),
    (("--prompt", "code-review", "--version", "v2"), ["error", "review_v2"]),
    (("--prompt", "code-review@v1"), ["review_v1"]),
    (("--prompt", "code-review/2"), ["error", "review_v2"]),
    (("--version", "1"), ["summary", "review_v1"]),
    (("--model", "gpt-4o"), ["call_in_trace", "error", "review_v1"]),
    (("--model", "house-*"), ["chat", "review_v2"]),
    (("--tag", "prod"), ["error", "review_v2", "review_v1"]),
    (("--tag", "prod", "--tag", "eval"), ["review_v2"]),
    (("--experiment", "cr-ab"), ["review_v2"]),
    (("--experiment", "cr-ab", "--variant", "v1"), []),
    (("--status", "error"), ["error"]),
    (("--status", "ok", "--model", "gpt-4o"), ["call_in_trace", "review_v1"]),
    (("--kind", "span"), ["span_child", "span_root"]),
    (("--kind", "feedback"), ["feedback"]),
    (("--since", "2026-01-06"), ["call_in_trace", "chat", "error"]),
    (("--until", "2026-01-05"), ["summary", "review_v2", "review_v1"]),
    (("--since", "2026-01-05T02:00", "--until", "2026-01-05T03:00:00+00:00"), ["review_v2"]),
    (("--since", "2026-01-05T03:00:00+01:00", "--until", "2026-01-05T03:00Z"), ["review_v2"]),
])
def test_each_filter(sample: Sample, args: tuple[str, ...], names: list[str]) -> None:
    assert listed_ids("-n", "0", *args) == [sample.e[n]["id"] for n in names]


def test_relative_since(log_dir: Path) -> None:
    from datetime import UTC, datetime, timedelta

    now = datetime.now(UTC)
    old, new = now - timedelta(days=3), now - timedelta(hours=2)
    for when in (old, new):
        day = when.strftime("%Y-%m-%d")
        append(log_dir, entry(day, when.hour * 3600 + when.minute * 60 + when.second))
    assert len(listed_ids("--since", "24h")) == 1
    assert len(listed_ids("--since", "7d")) == 2
    assert len(listed_ids("--since", "90m")) == 0
    assert len(listed_ids("--until", "1d")) == 1


@pytest.mark.parametrize(("args", "message"), [
    (("--since", "last tuesday"), "Error: --since 'last tuesday': expected a date (2026-01-31),"
                                  " a time (2026-01-31T14:00), an age (30m, 24h, 7d, 2w), "
                                  "today or yesterday"),
    (("--until", "2026-13-45"), "Error: --until '2026-13-45': expected a date"),
    (("--since", "7x"), "Error: --since '7x': expected a date"),
    (("--since", "2026-02-01", "--until", "2026-01-01"),
     "Error: --since (2026-02-01 00:00:00 UTC) is not before --until (2026-01-02 00:00:00 UTC)"),
])
def test_bad_times_are_one_clear_line_and_exit_2(sample: Sample, args: tuple[str, ...],
                                                 message: str) -> None:
    result = run("logs", *args, ok=False)
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.startswith(message)
    assert len(result.stderr.strip().splitlines()) == 1


def test_bad_choices_exit_2(sample: Sample) -> None:
    result = run("logs", "--status", "broken", ok=False)
    assert result.exit_code == 2
    assert "Invalid value for '--status'" in result.stderr
    result = run("logs", "-n", "-3", ok=False)
    assert result.exit_code == 2


def test_no_log_folder_yet(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    result = run("logs", "--log-dir", str(missing))
    assert result.stdout == ""
    assert result.stderr == f"No log entries yet: {missing} does not exist.\n"
    assert json.loads(run("logs", "--log-dir", str(missing), "--json").stdout) == []
    assert not missing.exists()  # a read command creates nothing


def test_empty_result_says_so(sample: Sample) -> None:
    result = run("logs", "--model", "nope")
    assert result.stdout == ""
    assert result.stderr == "No matching log entries.\n"


def test_malformed_lines_are_skipped_with_a_warning(log_dir: Path) -> None:
    good = entry(seconds=5)
    append(log_dir, good, raw=b"{oops\n")
    result = run("logs")
    assert good["id"] in result.stdout
    assert result.stderr == ("Warning: skipped 1 malformed log line (first: 2026-01-05.jsonl:2:"
                             " invalid JSON: unexpected character, expected a string key: line 1 column 2 (char 1));"
                             " `promptlab logs check` lists them\n")
    assert run("logs").stderr == ""  # reported once, when it is first read


def test_listing_sees_new_lines_at_once(sample: Sample) -> None:
    run("logs")
    late = entry("2026-01-07", 5, assistant_response="brand new")
    append(sample.log_dir, late)
    assert listed_ids("-n", "1") == [late["id"]]


def test_reindex_rebuilds_the_same_index(sample: Sample) -> None:
    before = run("logs", "--json", "-n", "0", "--kind", "all").stdout
    result = run("logs", "reindex")
    assert result.stdout.startswith("Indexed 9 entries from 2 files in ")
    assert run("logs", "--json", "-n", "0", "--kind", "all").stdout == before


def test_a_corrupt_index_is_reported_and_reindex_repairs_it(sample: Sample) -> None:
    run("logs")
    for suffix in ("-wal", "-shm"):
        (sample.log_dir / f"index.db{suffix}").unlink(missing_ok=True)
    (sample.log_dir / "index.db").write_bytes(b"this is not a database" * 100)
    result = run("logs", ok=False)
    assert result.exit_code == 2
    assert result.stderr.startswith(f"Error: {sample.log_dir / 'index.db'} is not a usable log "
                                    "index (file is not a database); rebuild it with "
                                    "`promptlab logs reindex`")
    assert run("logs", "reindex").stdout.startswith("Indexed 9 entries")
    assert len(listed_ids("-n", "0")) == 6


def test_deleting_the_index_loses_nothing(sample: Sample) -> None:
    before = listed_ids("-n", "0", "--kind", "all")
    for p in sample.log_dir.glob("index.db*"):
        p.unlink()
    assert listed_ids("-n", "0", "--kind", "all") == before


def test_logs_check_is_attached(sample: Sample) -> None:
    result = run("logs", "check", ok=False)
    assert result.exit_code in (0, 1)
    assert "No such command" not in result.output


def test_common_tags_are_filtered_the_same_way(sample: Sample,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    from promptlab.index import query as index_query

    rare = listed_ids("-n", "0", "--tag", "prod", "--tag", "eval")
    monkeypatch.setattr(index_query, "_is_common_tag", lambda conn, tag: True)
    assert listed_ids("-n", "0", "--tag", "prod", "--tag", "eval") == rare
    assert listed_ids("-n", "0", "--tag", "prod") == [
        sample.e[n]["id"] for n in ("error", "review_v2", "review_v1")]


@pytest.mark.parametrize(("args", "code", "stdout"), [
    (["logs", "reindex"], 0, ""),
    (["logs", "search", "x"], 0, ""),
    (["logs", "show", "01KE8000000000000000000001"], 1, ""),
    (["trace"], 0, ""),
    (["costs"], 0, ""),
    (["costs", "--json"], 0, '{\n  "by": [\n    "day"\n  ],\n  "groups": [],\n  "total": null,'
                              '\n  "unknown_models": {}\n}\n'),
])
def test_every_command_without_a_log_folder(tmp_path: Path, args: list[str], code: int,
                                            stdout: str) -> None:
    missing = tmp_path / "nowhere"
    result = run(*args, "--log-dir", str(missing), ok=False)
    assert result.exit_code == code
    assert result.stdout == stdout
    if not stdout:
        assert result.stderr == f"No log entries yet: {missing} does not exist.\n"
    assert not missing.exists()


def test_times_with_an_offset_are_shown_in_utc(log_dir: Path) -> None:
    # 02:00 at +05:00 is 21:00 UTC the day before: the "time (UTC)" column says so, as
    # costs and --since/--until count it.
    east = entry("2026-12-01", 0, id="01M8TZ00000000000000000001",
                 timestamp="2026-12-02T02:00:00+05:00", assistant_response="from the east")
    naive = entry("2026-12-01", 0, timestamp="2026-12-01T20:00:00", assistant_response="naive")
    append(log_dir, east, naive, day="2026-12-01")
    rows = run("logs").stdout.splitlines()[2:]
    assert rows[0].startswith("2026-12-01 21:00:00  01M8TZ00000000000000000001")
    assert rows[1].startswith("2026-12-01 20:00:00")
    assert "2026-12-01 21:00:00" in run("logs", "search", "east").stdout
    assert listed_ids("--since", "2026-12-01T20:30", "--until", "2026-12-01T21:30") == [
        east["id"]]
    assert json.loads(run("logs", "--json", "-n", "1").stdout)[0]["timestamp"] == \
        "2026-12-02T02:00:00+05:00"  # --json keeps the entry as logged


def test_json_keeps_integers_beyond_64_bits_exact(log_dir: Path) -> None:
    # orjson reads them as floats (1.2345678901234568e+29): shown entries are read exactly.
    metadata = {"big": 123456789012345678901234567890, "neg": -99999999999999999999,
                "u64": 18446744073709551615, "pi": 3.141592653589793,
                "text": "12345678901234567890 in a string"}
    logged = entry("2026-12-01", 0, metadata=metadata)
    plain = entry("2026-12-01", 60, metadata={"n": 1})
    lines = "".join(json.dumps(e, ensure_ascii=False, separators=(",", ":")) + "\n"
                    for e in (logged, plain))
    append(log_dir, day="2026-12-01", raw=lines.encode())  # orjson cannot write them
    listed = json.loads(run("logs", "--json").stdout)
    assert listed == [plain, logged] and listed[1]["metadata"]["big"] == metadata["big"]
    assert json.loads(run("logs", "--nl").stdout.splitlines()[1]) == logged
    assert "123456789012345678901234567890" in run("logs", "--json").stdout
    shown = json.loads(run("logs", "show", logged["id"], "--json").stdout)["entry"]
    assert shown == logged
