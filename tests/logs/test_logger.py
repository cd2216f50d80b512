"""The Python logging API: Logger.log, logger.call, feedback, the default logger."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

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
    with pytest.raises(EntryError, match="log field 'input_tokens' must be an integer >= 0"):
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
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    logger = Logger(blocker / "logs")
    with pytest.warns(UserWarning, match="cannot create log folder"):
        entry = logger.log(model="m", user_message="hi")
    assert entry["user_message"] == "hi"
    logger.log(model="m")  # no second warning (pytest would fail on an unexpected one only if errors)
    assert logger.dropped == 2
    with pytest.raises(LogError, match="cannot create log folder"):
        Logger(blocker / "logs", strict=True).log(model="m")
