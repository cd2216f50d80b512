"""`promptlab feedback ID name=value …`: score a logged call from the command line."""

from __future__ import annotations

import json
import time
from pathlib import Path

from click.testing import CliRunner

from promptlab import Logger
from promptlab.cli import main
from promptlab.logs.reader import read_entries


def run(*args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(main, list(args))


def test_feedback_by_id_prefix_and_last(log_dir: Path) -> None:
    logger = Logger()
    first = logger.log(model="m", user_message="first")
    time.sleep(0.005)  # another millisecond: ids of one millisecond differ only at the end
    second = logger.log(model="m", user_message="second")
    result = run("feedback", first["id"], "helpful=true", "rating=4", "quality=0.75",
                 "--comment", "good answer", "--tag", "review")
    assert result.exit_code == 0, result.output
    fb = [e for e in read_entries(log_dir) if e["kind"] == "feedback"]
    assert len(fb) == 1
    assert fb[0]["target"] == first["id"]
    assert fb[0]["scores"] == {"helpful": True, "rating": 4, "quality": 0.75}
    assert fb[0]["metadata"] == {"comment": "good answer"} and fb[0]["tags"] == ["review"]
    assert result.stdout == (f"Logged feedback {fb[0]['id']} for {first['id']}: "
                             "helpful=true rating=4 quality=0.75\n")
    assert run("feedback", "last", "correct=no").exit_code == 0
    # a unique prefix, any case
    assert run("feedback", second["id"][:12].lower(), "stars=5").exit_code == 0
    targets = [(e["target"], e["scores"]) for e in read_entries(log_dir)
               if e["kind"] == "feedback"][1:]
    assert targets == [(second["id"], {"correct": False}), (second["id"], {"stars": 5})]
    shown = json.loads(run("logs", "show", second["id"], "--json").stdout)
    assert {s["name"]: s["value"] for s in shown["scores"]} == {"correct": False, "stars": 5}


def test_feedback_json_output(log_dir: Path) -> None:
    entry = Logger().log(model="m")
    result = run("feedback", entry["id"], "ok=yes", "--json")
    assert result.exit_code == 0, result.output
    printed = json.loads(result.stdout)
    assert printed["kind"] == "feedback" and printed["target"] == entry["id"]
    assert printed["scores"] == {"ok": True}


def test_feedback_mistakes_are_one_line_and_log_nothing(log_dir: Path) -> None:
    entry = Logger().log(model="m")
    cases = {
        ("rating",): "Error: score 'rating' must be NAME=VALUE, e.g. helpful=true or rating=4\n",
        ("rating=great",): "Error: score 'rating' must be a number or true/false, got 'great'\n",
        ("rating=nan",): "Error: score 'rating' must be a finite number, got 'nan'\n",
        ("bad name=1",): "Error: score name 'bad name' may use letters, digits, '_', '.' and "
                         "'-' (at most 100)\n",
    }
    for items, message in cases.items():
        result = run("feedback", entry["id"], *items)
        assert result.exit_code == 2 and result.stderr == message, (items, result.output)
    missing = run("feedback", "01KE8000000000000000000000", "ok=1")
    assert missing.exit_code == 2 and missing.stderr.startswith("Error: ")
    assert "01KE8000000000000000000000" in missing.stderr
    assert run("feedback", entry["id"]).exit_code == 2  # at least one score
    fb = run("feedback", entry["id"], "ok=1")
    fb_id = fb.stdout.split()[2]
    on_feedback = run("feedback", fb_id, "ok=1")
    assert on_feedback.exit_code == 2 and "is a feedback entry" in on_feedback.stderr
    assert [e["kind"] for e in read_entries(log_dir)] == ["llm", "feedback"]


def test_feedback_before_anything_was_logged(log_dir: Path) -> None:
    result = run("feedback", "01KE8000000000000000000000", "ok=1")
    assert result.exit_code == 2
    assert "No log entries yet" in result.stderr
