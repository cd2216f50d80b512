"""The writer: daily files, permissions, rotation, and many writers at once."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import orjson
import pytest

from promptlab import Logger
from promptlab.errors import LogError
from promptlab.logs.reader import ReadStats, read_entries
from promptlab.logs.writer import PIPE_BUF, LogWriter

DAY = "2026-11-26"
TS = f"{DAY}T12:00:00.000000Z"


def test_folder_0700_and_file_0600_even_with_a_permissive_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        entry = Logger(tmp_path / "deep" / "logs").log(model="m")
    finally:
        os.umask(old)
    folder = tmp_path / "deep" / "logs"
    path = folder / f"{entry['timestamp'][:10]}.jsonl"
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_entries_go_to_the_file_of_their_utc_day(tmp_path: Path) -> None:
    logger = Logger(tmp_path)
    logger.log(model="m", timestamp="2026-11-26T23:59:59.999999Z")
    logger.log(model="m", timestamp="2026-11-27T00:00:00Z")
    logger.log(model="m", timestamp="2026-11-27T01:30:00+02:00")  # 23:30 UTC the day before
    logger.log(model="m", timestamp="2026-11-27T08:00:00Z")
    days = {p.name: [json.loads(x)["timestamp"] for x in p.read_text().splitlines()]
            for p in tmp_path.glob("*.jsonl")}
    assert days == {
        "2026-11-26.jsonl": ["2026-11-26T23:59:59.999999Z", "2026-11-26T23:30:00.000000Z"],
        "2026-11-27.jsonl": ["2026-11-27T00:00:00.000000Z", "2026-11-27T08:00:00.000000Z"],
    }


def test_day_rollover_with_the_clock(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import promptlab.logs.logger as logger_module

    logger = Logger(tmp_path)
    now = [1_795_000_000 * 10**9 + 86_399 * 10**9 // 1000]  # some time on 2026-11-18
    monkeypatch.setattr(logger_module.time, "time_ns", lambda: now[0])
    first = logger.log(model="m")
    now[0] += 2 * 86_400 * 10**9  # two days later, same process, same open logger
    second = logger.log(model="m")
    assert first["timestamp"][:10] != second["timestamp"][:10]
    for entry in (first, second):
        lines = (tmp_path / f"{entry['timestamp'][:10]}.jsonl").read_text().splitlines()
        assert [json.loads(x)["id"] for x in lines] == [entry["id"]]


def test_reopens_a_file_renamed_or_deleted_by_log_rotation(tmp_path: Path) -> None:
    logger = Logger(tmp_path, check_interval=0)
    logger.log(model="m", timestamp=TS, user_message="one")
    path = tmp_path / f"{DAY}.jsonl"
    path.rename(tmp_path / f"{DAY}.jsonl.1")
    logger.log(model="m", timestamp=TS, user_message="two")
    assert [e["user_message"] for e in read_entries(tmp_path)] == ["two"]
    path.unlink()
    logger.log(model="m", timestamp=TS, user_message="three")
    assert [e["user_message"] for e in read_entries(tmp_path)] == ["three"]
    assert json.loads((tmp_path / f"{DAY}.jsonl.1").read_text())["user_message"] == "one"


def test_recreates_a_deleted_log_folder(tmp_path: Path) -> None:
    logger = Logger(tmp_path / "logs", check_interval=0)
    logger.log(model="m", timestamp=TS)
    for p in (tmp_path / "logs").iterdir():
        p.unlink()
    (tmp_path / "logs").rmdir()
    logger.log(model="m", timestamp=TS, user_message="after")
    assert [e.get("user_message") for e in read_entries(tmp_path / "logs")] == ["after"]


def test_fsync_option_writes_the_same_lines(tmp_path: Path) -> None:
    entry = Logger(tmp_path, fsync=True).log(model="m", timestamp=TS)
    assert list(read_entries(tmp_path)) == [entry]


def test_big_lines_use_the_lock_and_stay_whole(tmp_path: Path) -> None:
    writer = LogWriter(tmp_path)
    small, big = b'{"a":1}\n', b'{"b":"' + b"x" * (PIPE_BUF * 50) + b'"}\n'
    for _ in range(3):
        writer.write(small, DAY)
        writer.write(big, DAY)
    assert (tmp_path / f"{DAY}.jsonl").read_bytes() == (small + big) * 3


def test_a_new_writer_terminates_a_torn_tail_before_appending(tmp_path: Path) -> None:
    path = tmp_path / f"{DAY}.jsonl"
    path.write_bytes(b'{"v":1,"id":"first"}\n{"v":1,"id":"tor')
    entry = Logger(tmp_path).log(model="m", timestamp=TS)
    stats = ReadStats()
    entries = list(read_entries(tmp_path, stats=stats))
    assert [e["id"] for e in entries] == ["first", entry["id"]]
    assert [(p.line, p.torn) for p in stats.problems] == [(2, False)]


def test_threads_share_one_logger_safely(tmp_path: Path) -> None:
    logger = Logger(tmp_path)

    def work(n: int) -> None:
        for i in range(1500):
            logger.log(model="m", timestamp=TS, metadata={"thread": n, "seq": i},
                       user_message=f"t{n}-{i}-" * (1 + i % 700))

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stats = ReadStats()
    entries = list(read_entries(tmp_path, stats=stats))
    assert not stats.problems and len(entries) == 8 * 1500
    assert len({e["id"] for e in entries}) == len(entries)
    for e in entries:
        n, i = e["metadata"]["thread"], e["metadata"]["seq"]
        assert e["user_message"] == f"t{n}-{i}-" * (1 + i % 700)


# -- 8 processes x 5,000 entries, a quarter of them over 100 KB -------------------------------

WRITERS, PER_WRITER, BIG = 8, 5000, 102_500  # > 100 KB by either definition


def _payload(writer: int, seq: int) -> str:
    unit = f"[w{writer}s{seq}]"
    if seq % 4 == 0:  # a quarter of the entries are > 100 KB
        return (unit * (BIG // len(unit) + 1))[:BIG]
    return unit * (1 + seq % 40)


def _write_many(log_dir: str, writer: int, start: multiprocessing.Event) -> None:  # type: ignore[type-arg]
    logger = Logger(log_dir, strict=True, redact=False)  # redaction is tested elsewhere
    start.wait()
    for seq in range(PER_WRITER):
        logger.log(model="m", timestamp=TS, assistant_response=_payload(writer, seq),
                   metadata={"writer": writer, "seq": seq})


def test_eight_processes_never_tear_or_interleave_lines(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("fork")
    start = ctx.Event()
    procs = [ctx.Process(target=_write_many, args=(str(tmp_path), w, start))
             for w in range(WRITERS)]
    for p in procs:
        p.start()
    began = time.perf_counter()
    start.set()
    for p in procs:
        p.join(timeout=120)
        assert p.exitcode == 0
    written = time.perf_counter()
    seen: dict[int, set[int]] = {w: set() for w in range(WRITERS)}
    big = 0
    with open(tmp_path / f"{DAY}.jsonl", "rb") as fh:
        for number, line in enumerate(fh, 1):
            entry = orjson.loads(line)  # every line parses...
            writer, seq = entry["metadata"]["writer"], entry["metadata"]["seq"]
            # ...and carries exactly the payload its writer sent with that sequence number
            assert entry["assistant_response"] == _payload(writer, seq), f"line {number}"
            assert seq not in seen[writer], f"duplicate w{writer} s{seq}"
            seen[writer].add(seq)
            big += len(line) > 102_400
    assert all(s == set(range(PER_WRITER)) for s in seen.values()), "entries lost"
    assert big == WRITERS * PER_WRITER // 4
    print(f"write {written - began:.2f}s, verify {time.perf_counter() - written:.2f}s")
    (tmp_path / f"{DAY}.jsonl").unlink()  # 1 GB: do not leave it in pytest's kept temp dirs


# -- a writer killed mid-stream --------------------------------------------------------------

_KILLED_WRITER = """
import sys
from promptlab import Logger
logger = Logger(sys.argv[1], strict=True)
seq = 0
while True:
    size = 3_000_000 if seq % 3 == 2 else 100
    logger.log(model="m", timestamp="TS", metadata={"seq": seq}, user_message="k" * size)
    seq += 1
""".replace("TS", TS)


def test_sigkill_mid_stream_loses_at_most_the_entry_in_flight(tmp_path: Path) -> None:
    path = tmp_path / f"{DAY}.jsonl"
    proc = subprocess.Popen([sys.executable, "-c", _KILLED_WRITER, str(tmp_path)])
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if path.exists() and path.stat().st_size > 20_000_000:
                break
            time.sleep(0.005)
        else:
            pytest.fail("the writer did not get going")
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    data = path.read_bytes()
    stats = ReadStats()
    entries = list(read_entries(tmp_path, stats=stats))
    seqs = [e["metadata"]["seq"] for e in entries]
    assert seqs == list(range(len(seqs))) and len(seqs) >= 6  # nothing before the kill lost
    for e in entries:
        assert e["user_message"] == "k" * (3_000_000 if e["metadata"]["seq"] % 3 == 2 else 100)
    if data.endswith(b"\n"):
        assert stats.problems == []
    else:  # the kill landed inside a write: a torn tail, reported, never fatal
        assert [(p.torn, p.line) for p in stats.problems] == [(True, len(seqs) + 1)]
    # a new writer terminates the torn tail and its entries read back cleanly
    after = Logger(tmp_path).log(model="m", timestamp=TS, user_message="after the crash")
    assert list(read_entries(tmp_path))[-1] == after


def test_an_unfinished_line_of_a_live_writer_is_not_mistaken_for_a_torn_tail(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Another process is appending a small line (no lock); while the kernel copies it, the
    # file briefly ends mid-line. A writer opening the file then must not add a newline.
    import promptlab.logs.writer as writer_module

    path = tmp_path / f"{DAY}.jsonl"
    path.write_bytes(b'{"seq":1}\n{"seq":')
    waits = []

    def other_writer_finishes(seconds: float) -> None:
        waits.append(seconds)
        with open(path, "ab") as fh:
            fh.write(b"2}\n")

    monkeypatch.setattr(writer_module.time, "sleep", other_writer_finishes)
    entry = Logger(tmp_path).log(model="m", timestamp=TS)
    lines = path.read_bytes().splitlines()
    assert lines[:2] == [b'{"seq":1}', b'{"seq":2}'] and len(lines) == 3
    assert json.loads(lines[2]) == entry and len(waits) == 1


def test_a_tail_that_stays_unterminated_is_torn_and_gets_ended(tmp_path: Path) -> None:
    path = tmp_path / f"{DAY}.jsonl"
    path.write_bytes(b'{"seq":1}\n{"seq":')  # its writer was killed: nothing more comes
    entry = Logger(tmp_path).log(model="m", timestamp=TS)
    assert path.read_bytes().splitlines()[1:] == [b'{"seq":', orjson.dumps(entry)]


def test_rotation_check_follows_the_clock_even_when_it_is_set_back(tmp_path: Path) -> None:
    writer = LogWriter(tmp_path, check_interval=60)
    now = time.time_ns()
    writer.write(b'{"a":1}\n', DAY, now)
    (tmp_path / f"{DAY}.jsonl").rename(tmp_path / "rotated.jsonl")
    writer.write(b'{"a":2}\n', DAY, now + 10**9)  # within the interval: still the old file
    writer.write(b'{"a":3}\n', DAY, now - 3600 * 10**9)  # clock set back an hour: check now
    assert (tmp_path / "rotated.jsonl").read_bytes() == b'{"a":1}\n{"a":2}\n'
    assert (tmp_path / f"{DAY}.jsonl").read_bytes() == b'{"a":3}\n'


# -- day files that are not regular files -----------------------------------------------------


def _log_in_thread(logger: Logger, **fields: object) -> tuple[list, list[str]]:
    """Log from a thread that must finish at once (a blocked open would hang it)."""
    import warnings

    out: list = []
    caught: list[str] = []

    def run() -> None:
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            out.append(logger.log(**fields))
            out.append(logger.log(**fields))
        caught.extend(str(w.message) for w in seen)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(10)
    assert not thread.is_alive(), "logging blocked"
    return out, caught


def test_a_fifo_day_file_never_blocks_and_is_refused_once(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / f"{DAY}.jsonl")
    logger = Logger(tmp_path)
    entries, warnings_seen = _log_in_thread(logger, model="m", timestamp=TS)
    assert len(entries) == 2 and logger.dropped == 2
    assert warnings_seen == [
        f"promptlab: a log entry was not written: cannot write to log file {tmp_path}/{DAY}.jsonl:"
        " it is a FIFO, not a regular file; remove it; promptlab writes only to regular files"]
    assert stat.S_ISFIFO(os.lstat(tmp_path / f"{DAY}.jsonl").st_mode)  # left as it was


@pytest.mark.parametrize("target_exists", [True, False])
def test_a_symlinked_day_file_is_never_followed(tmp_path: Path, target_exists: bool) -> None:
    logs, outside = tmp_path / "logs", tmp_path / "outside.txt"
    logs.mkdir()
    if target_exists:
        outside.write_text("precious\n")
    (logs / f"{DAY}.jsonl").symlink_to(outside)
    logger = Logger(logs)
    _entries, warnings_seen = _log_in_thread(logger, model="m", timestamp=TS)
    assert logger.dropped == 2
    assert warnings_seen == [
        f"promptlab: a log entry was not written: cannot write to log file {logs}/{DAY}.jsonl: "
        "it is a symbolic link (log files are never followed through links); remove the link"]
    if target_exists:
        assert outside.read_text() == "precious\n"
    else:
        assert not outside.exists()  # a dangling link is not created through either
    with pytest.raises(LogError, match="symbolic link"):
        Logger(logs, strict=True).log(model="m", timestamp=TS)


def test_a_symlink_swapped_in_after_opening_is_not_followed(tmp_path: Path) -> None:
    logs, outside = tmp_path / "logs", tmp_path / "outside.txt"
    logs.mkdir()
    outside.write_text("")
    logger = Logger(logs, check_interval=0)
    logger.log(model="m", timestamp=TS, user_message="one")
    path = logs / f"{DAY}.jsonl"
    path.rename(logs / "moved.jsonl")
    path.symlink_to(outside)
    _entries, warnings_seen = _log_in_thread(logger, model="m", timestamp=TS)
    assert outside.read_text() == "" and logger.dropped == 2
    assert "symbolic link" in warnings_seen[0]


def test_a_folder_where_the_day_file_belongs_is_refused(tmp_path: Path) -> None:
    writer = LogWriter(tmp_path)
    (tmp_path / f"{DAY}.jsonl").mkdir()  # a folder where the file belongs
    with pytest.raises(LogError, match="it is a folder; remove or rename it"):
        writer.write(b"{}\n", DAY)
