"""Logger.log's C fast path (promptlab/logs/_speedups.c): taken for plain calls, the same
entries and lines as the Python path, and every case it does not cover handed over intact."""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from promptlab import Logger
from promptlab.logs import entry as entry_module
from promptlab.logs.reader import read_entries

pytestmark = pytest.mark.skipif(entry_module.speedups is None,
                                reason="the C speed-ups are not built here")


@contextmanager
def python_calls() -> Iterator[list[dict[str, Any]]]:
    """Record the calls that reach the Python `Logger.log` (loggers created inside)."""
    calls: list[dict[str, Any]] = []
    real = Logger.log

    def spy(self: Logger, **fields: Any) -> dict[str, Any]:
        calls.append(dict(fields))
        return real(self, **fields)

    with mock.patch.object(Logger, "log", spy):
        yield calls


def lines(folder: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for path in sorted(folder.glob("*.jsonl"))
            for line in path.read_bytes().splitlines()]


def python_only(folder: Path, **options: Any) -> Logger:
    logger = Logger(folder, **options)
    logger.log(model="warm-up")
    logger.__dict__.pop("log")  # the class's Python method from now on
    return logger


# -- the same entries ------------------------------------------------------------------------

_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)
_secrets = st.sampled_from(["sk-proj-Ab3dEf5hIj7kLm9nOp1qRs3tUv5wXy7z0123456789",
                            "AKIAIOSFODNN7EXAMPLE", "Bearer eyJhbGciOiJIUzI1NiJ9.abcdefghijklmnop",
                            "aws_secret_access_key=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"])
_FIELDS = {
    "model": st.sampled_from(["gpt-4o-mini", "claude-sonnet-4-5", "my-own-model"]),
    "provider": st.sampled_from(["openai", "anthropic"]),
    "system_prompt": _text,
    "user_message": st.one_of(_text, st.builds(lambda a, s: f"{a} {s}", _text, _secrets)),
    "assistant_response": _text,
    "input_tokens": st.integers(0, 10**7),
    "output_tokens": st.integers(0, 10**6),
    "cached_tokens": st.integers(0, 10**7),
    "latency_ms": st.one_of(st.integers(0, 10**6), st.floats(0, 1e6)),
    "tags": st.lists(_text.filter(bool), min_size=1, max_size=3),
    "metadata": st.dictionaries(_text, st.one_of(st.integers(-2**63, 2**63 - 1), _text),
                                min_size=1, max_size=3),
    "prompt_id": _text.filter(bool),
    "prompt_version": st.sampled_from(["v1", "v2"]),
    "prompt_dirty": st.booleans(),
    "unit_id": st.one_of(_text, st.integers(0, 99)),
    "repeat": st.integers(0, 5),
    "status": st.sampled_from(["ok", "error"]),
    "error": _text.filter(bool),
}


@st.composite
def plain_calls(draw: st.DrawFn) -> dict[str, Any]:
    names = draw(st.lists(st.sampled_from(sorted(_FIELDS)), min_size=1, unique=True))
    return {name: draw(_FIELDS[name]) for name in names}


@settings(max_examples=200, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(fields=plain_calls())
def test_plain_calls_take_the_fast_path_and_write_what_python_writes(
        tmp_path_factory: pytest.TempPathFactory, fields: dict[str, Any]) -> None:
    fast_dir, slow_dir = tmp_path_factory.mktemp("fast"), tmp_path_factory.mktemp("slow")
    with python_calls() as calls:
        fast = Logger(fast_dir)
        fast.log(**fields)  # may teach the fast path this set of fields and this model
        before = len(calls)
        entry = fast.log(**fields)
        assert len(calls) == before, "a plain call went to the Python path"
    reference = python_only(slow_dir).log(**fields)
    assert entry.keys() == reference.keys()  # the same fields, in the same order
    assert {k: v for k, v in entry.items() if k not in ("id", "timestamp")} == {
        k: v for k, v in reference.items() if k not in ("id", "timestamp")}
    assert lines(fast_dir)[-1] == entry  # returned exactly as written
    assert entry_module.is_ulid(entry["id"])
    assert "[REDACTED]" in json.dumps(entry) or "[REDACTED]" not in json.dumps(reference)


def test_the_timestamp_is_the_start_and_ids_keep_increasing(log_dir: Path) -> None:
    logger = Logger(log_dir)
    logger.log(model="m", latency_ms=1500)
    before = time.time_ns()
    first = logger.log(model="m", latency_ms=1500)
    ids = [logger.log(model="m")["id"] for _ in range(200)]
    assert [first["id"], *ids] == sorted([first["id"], *ids]) and len(set(ids)) == 200
    start = entry_module.normalize_timestamp(first["timestamp"])
    expected = entry_module.format_timestamp(before - 1_500_000_000)
    assert abs(_ns(start) - _ns(expected)) < 1_000_000_000  # within a second of now - 1.5 s


def _ns(ts: str) -> int:
    import datetime as dt

    when = dt.datetime.fromisoformat(ts.replace("Z", "+00:00"))
    return int(when.timestamp() * 1e9)


# -- what the fast path hands over ------------------------------------------------------------

def test_calls_inside_a_span_get_their_trace_fields(log_dir: Path) -> None:
    logger = Logger(log_dir)
    logger.log(model="m")
    with python_calls() as calls:
        logger._install_fast_path()
        with logger.trace("answer") as span:
            entry = logger.log(model="m")
        plain = logger.log(model="m")
    assert len(calls) == 1  # only the call inside the span
    assert entry["trace_id"] == span.trace_id and entry["parent_id"] == span.id
    assert "trace_id" not in plain


def test_values_to_convert_go_to_python_and_come_back_converted(log_dir: Path) -> None:
    logger = Logger(log_dir)
    logger.log(model="m", tags=["a"], input_tokens=1)
    entry = logger.log(model="m", tags=("a", "b"), input_tokens=2.0)  # tuple, float
    assert entry["tags"] == ["a", "b"] and entry["input_tokens"] == 2
    assert type(entry["input_tokens"]) is int
    dropped = logger.log(model="m", tags=["a"], input_tokens=None)
    assert "input_tokens" not in dropped
    with pytest.raises(Exception, match="log field 'input_tokens' must be an integer >= 0"):
        logger.log(model="m", tags=["a"], input_tokens=-1)
    odd = logger.log(model="m", tags=["a"], metadata={"path": Path("/x")}, input_tokens=3)
    assert odd["metadata"] == {"path": "/x"}  # not plain JSON: Python converts it
    assert lines(log_dir)[-1] == odd


def test_a_writer_lock_held_elsewhere_makes_the_call_wait_for_it(log_dir: Path) -> None:
    logger = Logger(log_dir)
    logger.log(model="m")
    lock = logger._writer._lock
    done = threading.Event()
    lock.acquire()
    try:
        worker = threading.Thread(target=lambda: (logger.log(model="late"), done.set()))
        worker.start()
        assert not done.wait(0.2)  # the write waits for the lock, as in Python
        assert [e["model"] for e in lines(log_dir)] == ["m"]
    finally:
        lock.release()
    worker.join(5)
    assert done.is_set() and [e["model"] for e in lines(log_dir)] == ["m", "late"]


def test_large_lines_are_written_whole_under_the_file_lock(log_dir: Path) -> None:
    from promptlab.logs.writer import PIPE_BUF

    logger = Logger(log_dir)
    logger.log(model="m", user_message="x")
    big = "é" * PIPE_BUF * 3
    with mock.patch("fcntl.flock", wraps=__import__("fcntl").flock) as flock:
        entry = logger.log(model="m", user_message=big)
    assert flock.call_count == 2  # locked and unlocked: the Python writer's path
    assert lines(log_dir)[-1] == entry and entry["user_message"] == big


def test_fsync_loggers_still_sync_every_entry(log_dir: Path) -> None:
    logger = Logger(log_dir, fsync=True)
    logger.log(model="m")
    with mock.patch("os.fsync") as fsync:
        for _ in range(3):
            logger.log(model="m")
    assert fsync.call_count == 3


def test_a_failed_write_in_c_warns_once_and_the_caller_goes_on(log_dir: Path) -> None:
    import warnings

    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full here")
    logger = Logger(log_dir)
    first = logger.log(model="m")
    handle = logger._writer._files[first["timestamp"][:10]]
    full = os.open("/dev/full", os.O_WRONLY)
    os.close(handle.fd)
    handle.fd = full  # the open file now fails every write with ENOSPC
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        entry = logger.log(model="m", assistant_response="ok")
    assert entry["assistant_response"] == "ok" and logger.dropped == 1
    (warning,) = caught
    assert "No space left on device" in str(warning.message)
    assert logger.log(model="m")["model"] == "m"  # reopened: the next entry is written
    assert [e["id"] for e in lines(log_dir)] == [first["id"], lines(log_dir)[-1]["id"]]


def test_the_rest_of_a_short_write_is_appended(log_dir: Path) -> None:
    logger = Logger(log_dir)
    entry = logger.log(model="m")
    day = entry["timestamp"][:10]
    line = b'{"v":1,"kind":"llm","model":"rest"}\n'
    os.write(logger._writer._files[day].fd, line[:7])  # what a short write left
    logger._write_line(line, day, time.time_ns(), 7)
    assert lines(log_dir)[-1] == {"v": 1, "kind": "llm", "model": "rest"}


def test_setting_a_redactor_turns_the_fast_path_off_and_on(log_dir: Path) -> None:
    logger = Logger(log_dir)
    logger.log(model="m")
    assert "log" in vars(logger)
    logger.redactor = lambda text: text.replace("secret", "[X]")
    assert "log" not in vars(logger)
    assert logger.log(model="m", user_message="a secret")["user_message"] == "a [X]"
    logger.redactor = None
    assert "log" in vars(logger)
    assert logger.log(model="m", user_message="a secret")["user_message"] == "a secret"


def test_new_days_and_rotated_files_go_through_python(log_dir: Path) -> None:
    logger = Logger(log_dir, check_interval=0)  # check the file before every write
    first = logger.log(model="m")
    path = log_dir / f"{first['timestamp'][:10]}.jsonl"
    path.rename(log_dir / "rotated.jsonl")
    second = logger.log(model="m")
    assert json.loads(path.read_text())["id"] == second["id"]  # a new file at the path
    assert [e["id"] for e in read_entries(log_dir)] == [second["id"]]
    assert json.loads((log_dir / "rotated.jsonl").read_text())["id"] == first["id"]


def test_call_entries_are_appended_by_the_c_writer_too(log_dir: Path) -> None:
    import warnings

    from promptlab.template import Rendered

    logger = Logger(log_dir)
    logger.log(model="m")
    rendered = Rendered(messages=[{"role": "user", "content": "hi"}], model="m", config={},
                        stamp={"prompt_id": "p", "prompt_version": "v1"})
    with logger.call(rendered) as call:
        call.finish(response="ok", input_tokens=3, output_tokens=1)
    assert lines(log_dir)[-1] == call.entry and call.entry["prompt_id"] == "p"
    if not os.path.exists("/dev/full"):
        return
    handle = logger._writer._files[call.entry["timestamp"][:10]]
    os.close(handle.fd)
    handle.fd = os.open("/dev/full", os.O_WRONLY)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with logger.call(rendered) as failing:
            failing.finish(response="lost")
    assert failing.entry["assistant_response"] == "lost" and logger.dropped == 1
    assert "No space left on device" in str(caught[0].message)


def test_the_append_method_checks_its_arguments(log_dir: Path) -> None:
    logger = Logger(log_dir)
    logger.log(model="m")
    with pytest.raises(TypeError, match=r"append\(line: bytes, day: str, now_ns: int\)"):
        logger.log.append("text", "2026-11-27", 0)
    with pytest.raises(OverflowError, match="now_ns is out of range"):
        logger.log.append(b"{}\n", "2026-11-27", 2**70)


def test_threads_logging_while_another_closes_the_files_lose_nothing(log_dir: Path) -> None:
    # The C path writes to the writer's open descriptor; closing (and reopening) the files
    # from another thread at the same time must never make it write to a closed or reused
    # descriptor, nor lose or mix a line.
    logger = Logger(log_dir)
    logger.log(model="m")
    stop = threading.Event()

    def closer() -> None:
        while not stop.is_set():
            logger.close()
            os.close(os.open(os.devnull, os.O_RDONLY))  # reuse descriptor numbers meanwhile
            time.sleep(0.0005)

    def work(n: int) -> None:
        for i in range(1500):
            logger.log(model="m", metadata={"thread": n, "seq": i},
                       user_message=f"t{n}-{i}-" * (1 + i % 500))  # some over PIPE_BUF

    pool = [threading.Thread(target=work, args=(n,)) for n in range(6)]
    other = threading.Thread(target=closer)
    other.start()
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    stop.set()
    other.join()
    entries = [e for e in lines(log_dir) if "metadata" in e]
    assert len(entries) == 6 * 1500 and logger.dropped == 0
    assert len({e["id"] for e in entries}) == len(entries)
    for e in entries:
        n, i = e["metadata"]["thread"], e["metadata"]["seq"]
        assert e["user_message"] == f"t{n}-{i}-" * (1 + i % 500)


def test_a_subclass_that_overrides_log_keeps_its_own_method(log_dir: Path) -> None:
    class Tagged(Logger):
        def log(self, **fields: Any) -> dict[str, Any]:
            return super().log(**{"tags": ["mine"], **fields})

    logger = Tagged(log_dir)
    logger.log(model="m")
    assert "log" not in vars(logger)
    assert logger.log(model="m")["tags"] == ["mine"]
    assert [e["tags"] for e in lines(log_dir)] == [["mine"], ["mine"]]

    class Plain(Logger):  # no override: the fast path serves it
        pass

    plain = Plain(log_dir)
    plain.log(model="m")
    assert "log" in vars(plain)


def test_a_copied_logger_logs_as_itself(tmp_path: Path) -> None:
    import copy

    first = Logger(tmp_path / "a")
    first.log(model="m")
    second = copy.copy(first)
    assert "log" not in vars(second)  # the original's fast path is bound to the original
    second.strict = True  # so this setting is the copy's own
    assert second.log(model="m", user_message="hi")["user_message"] == "hi"
    second.redactor = lambda text: text.upper()
    assert second.log(model="m", user_message="hi")["user_message"] == "HI"
    assert first.log(model="m", user_message="hi")["user_message"] == "hi"


def test_calls_and_span_entries_are_built_and_written_in_c(log_dir: Path) -> None:
    from promptlab.template import Rendered

    rendered = Rendered(messages=[{"role": "system", "content": "be brief"},
                                  {"role": "user", "content": "hi"}], model="gpt-4o-mini",
                        config={"temperature": 0.2},
                        stamp={"prompt_id": "p", "prompt_version": "v1", "prompt_label": None})
    fast, slow = Logger(log_dir / "fast"), python_only(log_dir / "slow")
    entries = {}
    for name, logger in (("fast", fast), ("slow", slow)):
        for _ in range(2):  # the first call of a new set of fields teaches the fast path
            with logger.call(rendered) as call:
                call.finish(response="hello", input_tokens=12, output_tokens=3)
            with logger.trace("t"):
                in_span = logger.log(model="gpt-4o-mini", user_message="inner")
        entries[name] = (call.entry, in_span)
    python_path = mock.patch.object(Logger, "_emit", side_effect=AssertionError("Python"))
    with python_path, fast.call(rendered) as call:
        call.finish(response="hello", input_tokens=12, output_tokens=3)
    # The span's own entry is written by Python when it ends, after the patch is gone.
    with fast.trace("t") as span, python_path:
        inner = fast.log(model="gpt-4o-mini", user_message="inner")
    assert inner["trace_id"] == span.trace_id and inner["span_id"] == inner["id"]
    assert call.entry in lines(log_dir / "fast") and inner in lines(log_dir / "fast")
    varying = ("id", "timestamp", "latency_ms", "trace_id", "parent_id", "span_id")
    for got, expected in zip(entries["fast"], entries["slow"], strict=True):
        assert list(got) == list(expected)
        assert {k: v for k, v in got.items() if k not in varying} == {
            k: v for k, v in expected.items() if k not in varying}
    assert call.entry["cost_usd"] == entries["slow"][0]["cost_usd"]
    assert call.entry["timestamp"] == entry_module.format_timestamp(call.start_ns)


def test_emit_fields_checks_its_arguments_and_hands_over_what_it_does_not_cover(
        log_dir: Path) -> None:
    logger = Logger(log_dir)
    logger.log(model="m")
    fast = logger.log
    with pytest.raises(TypeError, match=r"emit_fields\(fields: dict, entry_id: str"):
        fast.emit_fields([], "ID", None, 0)
    now = time.time_ns()
    assert fast.emit_fields({"model": 3}, entry_module.new_id(), None, now) is None
    assert fast.emit_fields({"modle": "m"}, entry_module.new_id(), None, now) is None
    assert fast.emit_fields({}, entry_module.new_id(), None, now) is None
    written = fast.emit_fields({"model": "m"}, entry_module.new_id(), now - 5_000_000_000, now)
    assert written is not None and lines(log_dir)[-1] == written
    assert written["timestamp"] == entry_module.format_timestamp(now - 5_000_000_000)
