"""No traceback for a user's input: every `logs`/`trace`/`costs` failure is one line, exit 2,
and says what to do (free space, move a folder, reindex) — and reindex then really rebuilds."""

from __future__ import annotations

import json
import sqlite3
import subprocess
from pathlib import Path

import pytest

from promptlab.cli._logs_format import fmt_cost
from promptlab.index.core import Index
from promptlab.index.fts import MAX_TERMS, parse_search
from promptlab.index.sync import Syncer

from .conftest import Sample, run
from .helpers import append, entry

HUGE = "9" * 20
AGES = "9" * 400 + "d"


def one_line_error(result, exit_code: int = 2) -> str:
    assert result.exit_code == exit_code, result.output
    assert "Traceback" not in result.output and len(result.stderr.splitlines()) == 1
    return result.stderr


@pytest.mark.parametrize("args", [
    ["logs", "-n", HUGE],
    ["logs", "search", "function", "--window", HUGE],
    ["logs", "search", "function", "-n", HUGE, "--sort", "recent"],
    ["trace", "-n", HUGE],
    ["logs", "--since", AGES],
    ["logs", "--until", AGES],
    ["trace", "--since", AGES],
    ["costs", "--since", AGES],
    ["costs", "--until", AGES, "--by", "day"],
    ["costs", "--since", "0001-01-01", "--until", "9999-12-31", "--by", "day"],
    ["logs", "--since", "9999-12-31"],
])
def test_extreme_limits_and_times_never_crash(sample: Sample, args: list[str]) -> None:
    result = run(*args, "--prices", str(sample.prices)) if args[0] == "costs" else run(*args)
    assert "Traceback" not in result.output


def test_huge_limit_means_all(sample: Sample) -> None:
    assert len(json.loads(run("logs", "-n", HUGE, "--json").stdout)) == 6
    assert len(json.loads(run("logs", "search", "function", "--window", HUGE,
                              "--json").stdout)) == 2


def test_reindex_refuses_a_folder_named_index_db(sample: Sample) -> None:
    (sample.log_dir / "index.db").mkdir()
    for args in (["logs", "reindex"], ["logs"]):
        error = one_line_error(run(*args, ok=False))
        assert error == (f"Error: {sample.log_dir / 'index.db'} is a folder, not the log index; "
                         "move or rename it (promptlab never deletes a folder) and run the "
                         "command again\n")
    assert (sample.log_dir / "index.db").is_dir()


def test_missing_fts_table_is_reported_and_reindex_rebuilds_it(sample: Sample) -> None:
    run("logs")
    with sqlite3.connect(sample.log_dir / "index.db") as conn:
        conn.execute("DROP TABLE entries_fts")
    error = one_line_error(run("logs", "search", "function", ok=False))
    assert "(table entries_fts is missing); rebuild it with `promptlab logs reindex`" in error
    result = run("logs", "reindex")
    assert result.stdout.startswith("Indexed 9 entries from 2 files")
    assert len(json.loads(run("logs", "search", "function", "--json").stdout)) == 2


def test_reindex_replaces_a_file_that_is_not_a_database(sample: Sample) -> None:
    (sample.log_dir / "index.db").write_bytes(b"not a database, just some text " * 10)
    assert "is not a usable log index" in one_line_error(run("logs", ok=False))
    assert run("logs", "reindex").stdout.startswith("Indexed 9 entries")


@pytest.mark.parametrize("failure", [
    sqlite3.OperationalError("database or disk is full"),
    OSError(28, "No space left on device"),
])
def test_disk_full_during_sync_says_to_free_space(
        sample: Sample, monkeypatch: pytest.MonkeyPatch, failure: Exception) -> None:
    def full(*args: object) -> None:
        raise failure

    with monkeypatch.context() as patch:
        patch.setattr(Syncer, "_write_batch", full)
        error = one_line_error(run("logs", ok=False))
    assert error.startswith(f"Error: no space left on the disk holding "
                            f"{sample.log_dir / 'index.db'}: free some space and run the command")
    assert "reindex" not in error
    assert len(json.loads(run("logs", "--json").stdout)) == 6  # resumes after space is freed


def test_search_caps_terms_and_length(sample: Sample) -> None:
    assert len(parse_search(" ".join(["function"] * 200)).groups) == 1  # repeats count once
    hits = json.loads(run("logs", "search", " ".join(["function"] * 200), "--json").stdout)
    assert len(hits) == 2
    words = " ".join(f"word{i}" for i in range(MAX_TERMS + 1))
    for args in (["logs", "search", words], ["logs", "search", "--fts", words]):
        assert one_line_error(run(*args, ok=False)) == (
            f"Error: search has {MAX_TERMS + 1} different words; the limit is {MAX_TERMS} "
            "(each word makes ranking slower: search for a few distinctive ones)\n")
    error = one_line_error(run("logs", "search", "zebra " * 1000, ok=False))
    assert error.startswith("Error: search text is 6,000 characters long; the limit is 2,000")


def test_costs_are_never_in_scientific_notation() -> None:
    assert fmt_cost(3.6e-06) == "$0.0000036"
    assert fmt_cost(0.000012345) == "$0.000012"
    assert fmt_cost(1234.5) == "$1,234.5000"
    assert fmt_cost(0) == "$0.0000"
    assert fmt_cost(1e-15) == "<$0.00000000001"
    assert "e-" not in fmt_cost(2.5e-9, 6)


def test_two_key_cost_grouping_has_one_total_label(sample: Sample) -> None:
    result = run("costs", "--by", "day", "--by", "model", "--prices", str(sample.prices))
    last = result.stdout.splitlines()[-1]
    assert last.split()[:2] == ["total", "6"]  # was "total  total  6 …"


def test_single_call_trace_says_one_llm_call(log_dir: Path) -> None:
    root = entry(seconds=1, kind="span", name="job", model=None, provider=None,
                 system_prompt=None, user_message=None, assistant_response=None,
                 input_tokens=None, output_tokens=None, latency_ms=10.0)
    root.update(trace_id=root["id"], span_id=root["id"])
    call = entry(seconds=1, trace_id=root["id"], parent_id=root["id"])
    call["span_id"] = call["id"]
    append(log_dir, root, call)
    assert "1 span · 1 LLM call ·" in run("trace", root["id"]).stdout
    assert "trace has 1 span, 1 LLM call)" in run("logs", "show", call["id"]).stdout
    with Index(log_dir) as index:
        assert index.trace(root["id"][:20])[0].children[0].id == call["id"]


def test_log_folder_that_is_a_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    afile = tmp_path / "logs"
    afile.write_text("not a folder")
    monkeypatch.setenv("PROMPTLAB_LOG_DIR", str(afile))
    for args in (["logs"], ["logs", "reindex"], ["logs", "search", "x"], ["costs"], ["trace"]):
        error = one_line_error(run(*args, ok=False))
        assert error.startswith(f"Error: log folder {afile} is a file, not a folder"), args


def test_reindex_rebuilds_when_its_own_sync_finds_damage(
        sample: Sample, monkeypatch: pytest.MonkeyPatch) -> None:
    run("logs")
    calls = []
    real = Syncer.sync

    def damaged_once(self: Syncer):  # type: ignore[no-untyped-def]
        calls.append(1)
        if len(calls) == 1:
            raise sqlite3.DatabaseError("database disk image is malformed")
        return real(self)

    monkeypatch.setattr(Syncer, "sync", damaged_once)
    result = run("logs", "reindex")
    assert result.stdout.startswith("Indexed 9 entries") and "reindex" not in result.stderr


def test_repeated_ids_are_indexed_once_and_said_so(log_dir: Path) -> None:
    e = entry(seconds=1)
    append(log_dir, e, e)
    result = run("logs", "--json")
    assert [r["id"] for r in json.loads(result.stdout)] == [e["id"]]
    assert "1 log line repeats an id already indexed" in result.stderr


def _read_only_run(folder: Path, args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    """`promptlab ARGS --log-dir FOLDER` with FOLDER read-only for real: a read-only bind
    mount for root (whom file modes do not stop), the folder's mode otherwise."""
    import os
    import shlex
    import shutil
    import sys

    exe = str(Path(sys.executable).parent / "promptlab")
    command = [exe, *args, "--log-dir", str(folder)]
    if os.geteuid() != 0:
        folder.chmod(0o500)
        try:
            return subprocess.run(command, capture_output=True, text=True, env=env, timeout=60)
        finally:
            folder.chmod(0o700)
    if shutil.which("unshare") is None:
        pytest.skip("root without unshare: cannot make a folder read-only")
    quoted = shlex.quote(str(folder))
    script = (f"mount --bind {quoted} {quoted} && mount -o remount,bind,ro {quoted} && "
              f"{shlex.join(command)}")
    proc = subprocess.run(["unshare", "-m", "sh", "-c", script], capture_output=True,
                          text=True, env=env, timeout=60)
    if "mount" in proc.stderr and proc.returncode != 0 and "Error:" not in proc.stderr:
        pytest.skip(f"cannot mount here: {proc.stderr.strip()}")
    return proc


def test_a_read_only_log_folder_is_indexed_in_the_cache(tmp_path: Path) -> None:
    import os

    logs = tmp_path / "ro-logs"
    first = entry("2026-01-05", 60, assistant_response="read only please")
    append(logs, first)
    run("logs", "--log-dir", str(logs))  # an index.db already there: not usable read-only
    assert (logs / "index.db").exists()
    append(logs, entry("2026-01-05", 120, assistant_response="appended since"))
    before = sorted(p.name for p in logs.iterdir())
    cache = tmp_path / "cache"
    env = {**os.environ, "PROMPTLAB_CACHE_DIR": str(cache)}
    env.pop("PROMPTLAB_LOG_DIR", None)
    for args, shown in ((["logs"], "appended since"), (["costs"], "total"),
                        (["logs", "search", "read"], "only please"),
                        (["trace"], ""), (["logs", "show", first["id"]], "read only please")):
        proc = _read_only_run(logs, args, env)
        assert proc.returncode == 0, (args, proc.stderr)
        assert shown in proc.stdout and "Traceback" not in proc.stderr
    (index,) = cache.glob("indexes/ro-logs-*/index.db")  # named after the folder
    assert sorted(p.name for p in logs.iterdir()) == before
    # No writable cache either: one line naming both folders and the way out.
    env["PROMPTLAB_CACHE_DIR"] = str(logs / "2026-01-05.jsonl" / "cache")  # under a file
    proc = _read_only_run(logs, ["logs"], env)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.splitlines() == [
        f"Error: cannot create the log index {logs / '2026-01-05.jsonl' / 'cache'}/indexes/"
        f"{index.parent.name}/index.db: Not a directory; the log folder {logs} cannot be "
        "written, so its index is kept in the cache folder: set PROMPTLAB_CACHE_DIR to a "
        "folder you can write"]


def test_an_index_sqlite_cannot_open_says_what_it_needs() -> None:
    from promptlab.index.core import _operational

    message = str(_operational(sqlite3.OperationalError("unable to open database file"),
                               Path("/srv/logs/index.db")))
    assert message == (
        "cannot open the log index /srv/logs/index.db (unable to open database file): SQLite "
        "must read it and create its -wal and -shm files beside it; give yourself read "
        "access to it and write access to /srv/logs, or remove it (it is rebuilt from the "
        "JSONL logs)")
