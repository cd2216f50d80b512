"""The Python logging API: Logger.log, logger.call, feedback, the default logger."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from promptlab import Logger, Registry, feedback, get_logger, log, log_llm_call
from promptlab.errors import LogError
from promptlab.logs.entry import FIELDS, EntryError, is_ulid


def read_lines(log_dir: Path) -> list[dict]:
    entries = []
    for path in sorted(log_dir.glob("*.jsonl")):
        entries.extend(json.loads(line) for line in path.read_text(encoding="utf-8").splitlines())
    return entries


def test_log_writes_one_line_and_returns_it_as_written(log_dir: Path) -> None:
    logger = Logger()
    entry = logger.log(model="gpt-4o-mini", system_prompt="Be brief.", user_message="Hi",
                       assistant_response="Hello!", input_tokens=1000, output_tokens=500,
                       latency_ms=812.5, tags=["demo"], metadata={"user": "u1"})
    assert read_lines(log_dir) == [entry]
    assert entry["v"] == 1 and entry["kind"] == "llm"
    assert is_ulid(entry["id"])
    assert entry["timestamp"].endswith("Z") and len(entry["timestamp"]) == 27
    # 1000 input at 0.15/M + 500 output at 0.60/M
    assert entry["cost_usd"] == pytest.approx(0.00045)
    assert list(entry) == [f for f in FIELDS if f in entry]
    assert (log_dir / f"{entry['timestamp'][:10]}.jsonl").exists()


def test_unknown_model_has_no_cost(log_dir: Path) -> None:
    entry = Logger().log(model="my-local-model", input_tokens=10, output_tokens=5)
    assert "cost_usd" not in entry


def test_wrong_field_type_raises_a_clear_error(log_dir: Path) -> None:
    logger = Logger()
    with pytest.raises(EntryError, match="log field 'input_tokens' must be an integer between 0 and"):
        logger.log(model="m", input_tokens="12")
    with pytest.raises(EntryError, match="unknown log field 'modle'; did you mean 'model'"):
        logger.log(modle="m")
    assert not log_dir.exists() or read_lines(log_dir) == []


def test_call_copies_stamp_and_messages_and_measures_latency(project: Path, log_dir: Path) -> None:
    rendered = Registry("prompts").get("code-review").render(code="def f(): pass")
    logger = Logger()
    with logger.call(rendered) as call:
        call.finish(response="BUG: none", input_tokens=120, output_tokens=8)
    entry = call.entry
    assert entry == read_lines(log_dir)[0]
    assert entry["prompt_id"] == "code-review" and entry["prompt_version"] == "v2"
    assert entry["prompt_sha"] == rendered.stamp["prompt_sha"]
    assert entry["system_prompt"] == rendered.system and entry["user_message"] == rendered.user
    assert entry["model"] == "gpt-4o-mini" and entry["status"] == "ok"
    assert entry["latency_ms"] >= 0 and entry["assistant_response"] == "BUG: none"


def test_call_logs_an_error_entry_and_reraises(log_dir: Path) -> None:
    logger = Logger()
    with pytest.raises(TimeoutError), logger.call("question", model="gpt-4o") as call:
        raise TimeoutError("provider took too long")
    assert call.entry["status"] == "error"
    assert call.entry["error"] == "TimeoutError: provider took too long"
    assert read_lines(log_dir) == [call.entry]


def test_feedback_targets_an_earlier_entry(log_dir: Path) -> None:
    logger = Logger()
    entry = logger.log(model="m", user_message="q")
    fb = logger.feedback(entry["id"], helpful=True, rating=4)
    assert fb["kind"] == "feedback" and fb["target"] == entry["id"]
    assert fb["scores"] == {"helpful": True, "rating": 4}
    with pytest.raises(EntryError, match="not a log entry id"):
        logger.feedback("nope", helpful=True)


def test_module_level_shortcuts_use_the_env_log_dir(log_dir: Path) -> None:
    first = log_llm_call("gpt-4o", "sys", "user", "resp", 10, 20)
    second = log(model="gpt-4o", user_message="again")
    feedback(first["id"], good=1)
    assert get_logger().log_dir == log_dir
    entries = read_lines(log_dir)
    assert [e["id"] for e in entries[:2]] == [first["id"], second["id"]]
    assert entries[0]["system_prompt"] == "sys" and entries[0]["input_tokens"] == 10


def test_failure_to_write_warns_once_and_never_raises(tmp_path: Path) -> None:
    import warnings

    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    logger = Logger(blocker / "logs")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        entry = logger.log(model="m", user_message="hi")
        logger.log(model="m")
        logger.log(model="m")
    assert entry["user_message"] == "hi"  # the caller still gets its entry
    assert [str(w.message) for w in caught] == [
        f"promptlab: a log entry was not written: cannot create log folder {blocker / 'logs'}: "
        "Not a directory; set PROMPTLAB_LOG_DIR or log_dir to a writable folder"]
    assert logger.dropped == 3
    with pytest.raises(LogError, match="cannot create log folder"):
        Logger(blocker / "logs", strict=True).log(model="m")


def test_read_only_log_file_is_reported_with_its_path(tmp_path: Path) -> None:
    import os

    if os.geteuid() == 0:
        pytest.skip("root ignores file permissions")
    entry = Logger(tmp_path).log(model="m")
    path = tmp_path / f"{entry['timestamp'][:10]}.jsonl"
    path.chmod(0o400)
    with pytest.raises(LogError, match=f"cannot write to log file {path}: Permission denied"):
        Logger(tmp_path, strict=True).log(model="m")


def test_timestamp_is_the_start_of_the_call(log_dir: Path) -> None:
    import datetime as dt

    before = dt.datetime.now(dt.UTC)
    entry = Logger().log(model="m", latency_ms=60_000)  # logged after a one-minute call
    start = dt.datetime.strptime(entry["timestamp"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=dt.UTC)
    assert 59 <= (before - start).total_seconds() <= 61
    given = Logger().log(model="m", latency_ms=5, timestamp="2026-11-26T10:00:00Z")
    assert given["timestamp"] == "2026-11-26T10:00:00.000000Z"


OPENAI_CHAT = {
    "model": "gpt-4o-mini-2024-07-18",
    "choices": [{"message": {"role": "assistant", "content": "BUG: off by one"}}],
    "usage": {"prompt_tokens": 1200, "completion_tokens": 40,
              "prompt_tokens_details": {"cached_tokens": 1024},
              "completion_tokens_details": {"reasoning_tokens": 0}},
}
ANTHROPIC = {
    "model": "claude-haiku-4-5-20251001", "stop_reason": "end_turn",
    "content": [{"type": "text", "text": "BUG: "}, {"type": "tool_use", "id": "t"},
                {"type": "text", "text": "off by one"}],
    "usage": {"input_tokens": 100, "output_tokens": 20, "cache_read_input_tokens": 1000,
              "cache_creation_input_tokens": 50},
}
RESPONSES = {
    "model": "gpt-5-mini", "output": [
        {"type": "reasoning", "content": []},
        {"type": "message", "content": [{"type": "output_text", "text": "BUG: off by one"}]}],
    "usage": {"input_tokens": 300, "output_tokens": 90,
              "input_tokens_details": {"cached_tokens": 0},
              "output_tokens_details": {"reasoning_tokens": 64}},
}


def test_finish_reads_openai_anthropic_and_responses_replies(log_dir: Path) -> None:
    from types import SimpleNamespace

    logger = Logger()
    with logger.call("q") as call:
        call.finish(response=OPENAI_CHAT)
    e = call.entry
    assert (e["assistant_response"], e["input_tokens"], e["output_tokens"], e["cached_tokens"]) \
        == ("BUG: off by one", 1200, 40, 1024)
    assert e["model"] == "gpt-4o-mini-2024-07-18"  # no model given: the reply's
    assert e["cost_usd"] == pytest.approx((176 * 0.15 + 1024 * 0.075 + 40 * 0.60) / 1e6)

    with logger.call("q", model="claude-haiku-4-5") as call:
        call.finish(response=ANTHROPIC)
    e = call.entry
    assert e["model"] == "claude-haiku-4-5"  # the model asked for wins
    assert e["assistant_response"] == "BUG: off by one"
    assert (e["input_tokens"], e["cached_tokens"], e["output_tokens"]) == (1150, 1000, 20)

    with logger.call("q") as call:
        call.finish(response=RESPONSES, output_tokens=91)  # explicit values win
    e = call.entry
    assert (e["assistant_response"], e["output_tokens"], e["reasoning_tokens"]) == (
        "BUG: off by one", 91, 64)

    reply = SimpleNamespace(model="gpt-4o", choices=[SimpleNamespace(
        message=SimpleNamespace(content="hi"))], usage=SimpleNamespace(
        prompt_tokens=3, completion_tokens=1, prompt_tokens_details=None,
        completion_tokens_details=None))
    with logger.call("q") as call:
        call.finish(response=reply)
    assert call.entry["assistant_response"] == "hi" and call.entry["input_tokens"] == 3

    with pytest.raises(EntryError, match="cannot read a reply from a int"), \
            logger.call("q") as call:
        call.finish(response=42)
    assert call.entry["status"] == "error"  # the failed finish is still logged
    assert len(read_lines(log_dir)) == 5


def test_call_without_with_update_fail_and_async(log_dir: Path) -> None:
    import asyncio

    logger = Logger()
    call = logger.call("q", model="gpt-4o", tags=["a"])
    call.update(metadata={"attempt": 2})
    early_id = call.id
    entry = call.fail(TimeoutError("slow"), latency_ms=5.0)
    assert entry["id"] == early_id and entry["metadata"] == {"attempt": 2}
    assert entry["status"] == "error" and entry["error"] == "TimeoutError: slow"
    with pytest.raises(EntryError, match="already logged"):
        call.finish(response="late")

    async def run() -> dict:
        async with logger.call("q", model="gpt-4o") as acall:
            await asyncio.sleep(0.01)
        return acall.entry

    done = asyncio.run(run())
    assert done["status"] == "ok" and done["latency_ms"] >= 10
    assert "assistant_response" not in done  # finished by the block's end, no reply given


def test_messages_are_kept_when_text_fields_would_lose_turns(log_dir: Path) -> None:
    from promptlab.template import Rendered

    few_shot = Rendered(messages=[
        {"role": "system", "content": "Classify."}, {"role": "user", "content": "great!"},
        {"role": "assistant", "content": "positive"}, {"role": "user", "content": "awful"}],
        model="gpt-4o-mini", stamp={"prompt_id": "sentiment", "prompt_version": "v3",
                                    "salt": "s1"})
    with Logger().call(few_shot) as call:
        call.finish(response="negative")
    e = call.entry
    assert e["messages"] == few_shot.messages
    assert e["user_message"] == "great!\n\nawful" and e["system_prompt"] == "Classify."
    assert e["metadata"] == {"salt": "s1"}  # stamp keys outside the schema are kept


def test_disk_full_warns_with_the_reason(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import errno
    import os
    import warnings

    import promptlab.logs.writer as writer_module

    def full(fd: int, data: bytes) -> int:  # the disk filled up under the writer
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(writer_module.os, "write", full)
    day = "2026-11-26"
    logger = Logger(tmp_path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        entry = logger.log(model="m", timestamp=f"{day}T10:00:00Z", assistant_response="ok")
    assert entry["assistant_response"] == "ok"
    (warning,) = caught
    assert "No space left on device; free some disk space" in str(warning.message)
    with pytest.raises(LogError, match="No space left on device"):
        Logger(tmp_path, strict=True).log(model="m", timestamp=f"{day}T10:00:00Z")


def test_broken_project_config_does_not_break_the_call(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    import warnings

    from promptlab.errors import ConfigError

    (tmp_path / "promptlab.toml").write_text("log_dir = [broken\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PROMPTLAB_LOG_DIR")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        entry = Logger().log(model="m", user_message="still works")
    assert entry["user_message"] == "still works"
    (warning,) = caught
    assert "a log entry was not written: no log folder:" in str(warning.message)
    assert "promptlab.toml: invalid TOML" in str(warning.message)
    with pytest.raises(ConfigError, match="invalid TOML"):
        Logger(strict=True).log(model="m")
    # an explicit folder does not need the project settings
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert Logger(tmp_path / "logs").log(model="m")["model"] == "m"
    assert (tmp_path / "logs").is_dir()


_roles = st.sampled_from(["system", "user", "assistant", "tool"])


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(turns=st.lists(st.tuples(_roles, st.text(max_size=6)), max_size=4))
def test_call_keeps_messages_exactly_when_the_two_texts_would_lose_some(
        log_dir: Path, turns: list[tuple[str, str]]) -> None:
    from promptlab.template import Rendered

    rendered = Rendered(messages=[{"role": r, "content": c} for r, c in turns], model="m")
    with Logger(prices=False).call(rendered) as call:
        call.finish(response="ok")
    entry = call.entry
    assert entry.get("system_prompt") == rendered.system
    assert entry.get("user_message") == rendered.user
    roles = [r for r, _ in turns]
    lossy = any(r not in ("system", "user") for r in roles) or len(set(roles)) < len(roles)
    assert entry.get("messages") == (rendered.messages if lossy and turns else None)


# -- sinks: the seam for live export ---------------------------------------------------------


def test_sinks_get_each_entry_as_written_in_the_callers_thread(tmp_path: Path) -> None:
    import threading

    seen: list[tuple[dict, str]] = []

    def sink(entry: dict) -> None:
        seen.append((entry, threading.current_thread().name))

    later: list[dict] = []
    logger = Logger(tmp_path, sinks=[sink])
    logger.add_sink(later.append)
    first = logger.log(model="m", user_message="key sk-proj-Ab3dEf5hIj7kLm9nOp1qRs3tUv5wXy7z")
    with logger.call("q", model="m") as call:
        call.finish(response="a")
    with logger.trace("root"):
        pass
    written = read_lines(tmp_path)
    assert [e for e, _ in seen] == later == written  # the redacted entries, in order
    assert seen[0][0] is first and "sk-[REDACTED]" in first["user_message"]
    assert {name for _, name in seen} == {threading.current_thread().name}
    logger.remove_sink(sink)
    logger.log(model="m")
    assert len(seen) == 3 and len(later) == 4


def test_a_failing_sink_warns_once_and_never_fails_the_call(tmp_path: Path) -> None:
    import warnings

    calls: list[dict] = []

    def broken(entry: dict) -> None:
        raise ConnectionError("collector down")

    logger = Logger(tmp_path, sinks=[broken, calls.append])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(3):
            logger.log(model="m")
    assert len(read_lines(tmp_path)) == 3 and len(calls) == 3  # the next sink still runs
    assert [str(w.message) for w in caught] == [
        "promptlab: log sink test_a_failing_sink_warns_once_and_never_fails_the_call.<locals>."
        "broken failed: ConnectionError: collector down (further failures of this sink are "
        "not reported)"]
    assert logger.dropped == 0
    with pytest.raises(TypeError, match="must be callable"):
        logger.add_sink("not a function")  # type: ignore[arg-type]


def test_entries_that_were_not_written_are_not_sent(tmp_path: Path) -> None:
    import warnings

    blocker = tmp_path / "file"
    blocker.write_text("")
    sent: list[dict] = []
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        Logger(blocker / "logs", sinks=[sent.append]).log(model="m")
    assert sent == []


def test_close_flushes_and_closes_the_sinks(tmp_path: Path) -> None:
    events: list[str] = []

    class Exporter:
        def __call__(self, entry: dict) -> None:
            events.append("entry")

        def flush(self) -> None:
            events.append("flush")

        def close(self) -> None:
            events.append("close")

    logger = Logger(tmp_path, sinks=[Exporter(), lambda entry: None])
    logger.log(model="m")
    logger.close()
    assert events == ["entry", "flush", "close"]
    logger.log(model="m")  # closed sinks are detached; the log file reopens
    assert events == ["entry", "flush", "close"] and len(read_lines(tmp_path)) == 2
    assert logger.sinks == ()


@pytest.mark.parametrize("latency", [1e308, float("inf"), float("nan"), 1e20, -1.0])
def test_absurd_latencies_are_an_entry_error_naming_the_field(tmp_path: Path,
                                                              latency: float) -> None:
    logger = Logger(tmp_path)
    with pytest.raises(EntryError, match="latency_ms"):
        logger.log(model="m", latency_ms=latency)
    with pytest.raises(EntryError, match="latency_ms"):
        logger.log(model="m", latency_ms=latency, metadata={"x": None}, tags=None)  # slow path
    with pytest.raises(EntryError, match="latency_ms"):
        logger.log(kind="llm", model="m", latency_ms=latency)  # entries that set their head
    assert not list(tmp_path.glob("*.jsonl"))  # nothing half-written


@pytest.mark.parametrize(("fields", "message"), [
    ({"metadata": {"f": float("nan")}}, "log field 'metadata': metadata['f'] must be a finite "
     "number, got nan (JSON has no NaN or Infinity; log None or a string instead)"),
    ({"metadata": {"a": {"b": [1, float("-inf")]}}}, "metadata['a']['b'][1] must be a finite"),
    ({"config": {"temperature": float("inf")}}, "config['temperature'] must be a finite"),
    ({"messages": [{"role": "user", "content": "hi", "w": float("nan")}]},
     "messages[0]['w'] must be a finite"),
    ({"metadata": {"t": (1.0, float("nan"))}}, "metadata['t'][1] must be a finite"),  # tuple
    ({"kind": "span", "name": "s", "metadata": {"f": float("nan")}}, "metadata['f']"),
])
def test_nan_or_infinity_inside_a_field_is_an_entry_error(tmp_path: Path, fields: dict,
                                                          message: str) -> None:
    # orjson writes NaN as null: the entry would silently differ from what was logged.
    logger = Logger(tmp_path, strict=False)
    with pytest.raises(EntryError) as info:
        logger.log(model="m", **fields)
    assert message in str(info.value) and "\n" not in str(info.value)
    assert not list(tmp_path.glob("*.jsonl"))  # nothing written
    entry = logger.log(model="m", metadata={"none": None, "x": 1.5},
                       assistant_response="a null pointer")  # null, but no NaN: written
    assert read_lines(tmp_path) == [entry]


def test_the_write_failure_warning_is_one_clean_line(tmp_path: Path) -> None:
    import subprocess
    import sys

    blocker = tmp_path / "file"
    blocker.write_text("")
    code = ("from promptlab import Logger\n"
            f"Logger({str(blocker / 'logs')!r}).log(model='m')\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=60, check=True)
    assert result.stderr.splitlines() == [
        "promptlab:0: LogWarning: promptlab: a log entry was not written: cannot create log "
        f"folder {blocker / 'logs'}: Not a directory; set PROMPTLAB_LOG_DIR or log_dir to a "
        "writable folder"]


def test_one_python_path_no_compiled_code_of_our_own() -> None:
    # The C extension is retired (issue 13): no C sources, no build script, no switches.
    root = Path(__file__).resolve().parents[2]
    assert not list((root / "promptlab").rglob("*.c"))
    assert not list((root / "promptlab").rglob("*.so"))
    assert not (root / "setup.py").exists()
    import promptlab.logs.entry as entry_module
    import promptlab.logs.redact as redact_module

    assert not hasattr(entry_module, "speedups") and not hasattr(redact_module, "maybe_secret_py")
    assert Logger.log.__doc__ and "Write one entry" in Logger.log.__doc__
    assert "log" not in vars(Logger(prices=False))  # no per-instance fast path over log()
