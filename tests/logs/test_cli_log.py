"""`promptlab log -- CMD`: wrap any command-line LLM tool and log its calls exactly."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from promptlab.cli import main
from promptlab.logs.reader import read_entries

TRICKY = 'He said "it\'s done"\nline two\t✨ naïve — 日本語 🚀\n'
ECHO_UPPER = [sys.executable, "-c", "import sys; d = sys.stdin.buffer.read().decode('utf-8'); "
              "sys.stdout.buffer.write(d.upper().encode('utf-8'))"]


def run(args: list[str], stdin: str | bytes | None = None):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(main, args, input=stdin)


def test_passes_stdin_through_and_logs_text_exactly(log_dir: Path) -> None:
    result = run(["log", "--model", "echo-1", "--tag", "demo", "--tag", "cli", "--", *ECHO_UPPER],
                 TRICKY)
    assert result.exit_code == 0, result.output
    assert result.stdout_bytes == TRICKY.upper().encode()  # printed unchanged
    (entry,) = read_entries(log_dir)
    assert entry["user_message"] == TRICKY
    assert entry["assistant_response"] == TRICKY.upper()
    assert entry["model"] == "echo-1" and entry["provider"] == "command"
    assert entry["tags"] == ["demo", "cli"] and entry["status"] == "ok"
    assert entry["metadata"] == {"command": ECHO_UPPER, "exit_code": 0}
    assert entry["latency_ms"] > 0


def test_prompt_is_rendered_fed_on_stdin_and_stamped(project: Path, log_dir: Path) -> None:
    cat = [sys.executable, "-c", "import sys; sys.stdout.write(sys.stdin.read())"]
    result = run(["log", "--prompt", "summarization", "--var", "text=Quotes \"q\" and\nnewlines",
                  "--var", "sentences=2", "--", *cat])
    assert result.exit_code == 0, result.output
    (entry,) = read_entries(log_dir)
    assert entry["prompt_id"] == "summarization" and entry["prompt_version"] == "v1"
    assert entry["prompt_label"] == "current" and len(entry["prompt_sha"]) == 64
    assert entry["model"] == "gpt-4o-mini" and entry["config"]["temperature"] == 0.3
    assert entry["system_prompt"].startswith("You write faithful, concise summaries.")
    assert "at most 2 sentences" in entry["user_message"]
    assert 'Quotes "q" and\nnewlines' in entry["user_message"]
    # the command received the whole rendered prompt and echoed it
    assert result.stdout == entry["system_prompt"] + "\n\n" + entry["user_message"] + "\n"
    assert entry["assistant_response"] == result.stdout


def test_exit_code_is_the_commands_and_failures_are_logged(log_dir: Path) -> None:
    fail = [sys.executable, "-c", "import sys; print('partial'); sys.exit(7)"]
    result = run(["log", "--", *fail], "")
    assert result.exit_code == 7
    assert result.stdout == "partial\n"
    (entry,) = read_entries(log_dir)
    assert entry["status"] == "error" and entry["error"] == "exit status 7"
    assert entry["assistant_response"] == "partial\n"
    assert entry["metadata"]["exit_code"] == 7


def test_unknown_command_is_one_clear_line(log_dir: Path) -> None:
    result = run(["log", "--", "no-such-llm-tool", "--flag"], "hi")
    assert result.exit_code == 2
    assert result.stderr == ("Error: command not found: 'no-such-llm-tool'; check the name "
                             "after '--' (it runs without a shell)\n")
    assert list(read_entries(log_dir)) == []


def test_var_without_prompt_is_refused(log_dir: Path) -> None:
    result = run(["log", "--var", "x=1", "--", "cat"], "hi")
    assert result.exit_code == 2
    assert "--var/--vars need --prompt ID" in result.stderr
    assert list(read_entries(log_dir)) == []


def test_unknown_prompt_is_refused_before_running(project: Path, log_dir: Path) -> None:
    marker = project / "ran"
    result = run(["log", "--prompt", "nope", "--", sys.executable, "-c",
                  f"open({str(marker)!r}, 'w')"])
    assert result.exit_code == 2 and result.stderr.startswith("Error: ")
    assert "nope" in result.stderr and not marker.exists()


def test_unwritable_log_warns_but_keeps_the_commands_result(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    result = run(["log", "--log-dir", str(blocker / "logs"), "--", *ECHO_UPPER], "ok")
    assert result.exit_code == 0 and result.stdout == "OK"
    assert "Warning: call not logged: cannot create log folder" in result.stderr


def test_print_id(log_dir: Path) -> None:
    result = run(["log", "--print-id", "--", *ECHO_UPPER], "x")
    (entry,) = read_entries(log_dir)
    assert result.stderr == f"promptlab: logged {entry['id']}\n"


def test_real_console_script_with_binary_safe_pipes(console_script: str, log_dir: Path, tmp_path: Path) -> None:
    exe = [console_script]
    proc = subprocess.run([*exe, "log", "-m", "local", "--", *ECHO_UPPER],
                          input=TRICKY.encode(), capture_output=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == TRICKY.upper().encode()
    (line,) = next(log_dir.glob("*.jsonl")).read_text(encoding="utf-8").splitlines()
    entry = json.loads(line)
    assert entry["user_message"] == TRICKY and entry["assistant_response"] == TRICKY.upper()
    failing = subprocess.run([*exe, "log", "--", sys.executable, "-c", "raise SystemExit(3)"],
                             input=b"", capture_output=True, timeout=60)
    assert failing.returncode == 3 and failing.stderr == b""
