"""QA (#12): `promptlab log` refuses a model, provider or tag that is empty or holds a
control character (one line, exit 2, nothing logged and the command not run)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from promptlab.cli import main


@pytest.mark.parametrize(("args", "error"), [
    (["-m", "bad\nmodel"], "Error: --model 'bad\\nmodel' holds a control character"),
    (["-m", "m\x1b[31m"], "Error: --model 'm\\x1b[31m' holds a control character"),
    (["-m", ""], "Error: --model is empty"),
    (["-t", ""], "Error: --tag is empty"),
    (["-t", "ok", "-t", "  "], "Error: --tag is empty"),
    (["-t", "a\tb"], "Error: --tag 'a\\tb' holds a control character"),
    (["--provider", "p\x9b"], "Error: --provider 'p\\x9b' holds a control character"),
])
def test_bad_names_are_refused(args, error, log_dir: Path, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    run = CliRunner().invoke(main, ["log", *args, "--", sys.executable, "-c",
                                    f"open({str(marker)!r}, 'w')"])
    assert run.exit_code == 2, (run.output, run.exception)
    assert run.stderr.startswith(error) and len(run.stderr.strip().splitlines()) == 1
    assert not marker.exists()
    assert not list(log_dir.glob("*.jsonl"))


def test_good_names_are_logged(log_dir: Path) -> None:
    run = CliRunner().invoke(main, ["log", "-m", "gpt-4o mini", "-t", "a b", "--", "true"])
    assert run.exit_code == 0, run.output
    entry = json.loads(next(log_dir.glob("*.jsonl")).read_text().splitlines()[-1])
    assert entry["model"] == "gpt-4o mini" and entry["tags"] == ["a b"]


def test_a_control_character_in_the_commands_model_is_not_logged(log_dir: Path) -> None:
    out = json.dumps({"model": "evil\x1b]0;x\x07", "usage": {"input_tokens": 3,
                                                             "output_tokens": 1}})
    run = CliRunner().invoke(main, ["log", "--usage-from", "json", "--", sys.executable, "-c",
                                    f"print({out!r})"])
    assert run.exit_code == 0, run.output
    assert "ignored the model name" in run.stderr
    entry = json.loads(next(log_dir.glob("*.jsonl")).read_text().splitlines()[-1])
    assert "\x1b" not in (entry.get("model") or "")
    assert entry["input_tokens"] == 3
