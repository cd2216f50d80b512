"""`promptlab log -- CMD`: wrap any command-line LLM tool and log its calls exactly."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
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
    # CMD could run any model: the front matter's is kept aside, not logged as the model
    assert "model" not in entry and "cost_usd" not in entry
    assert entry["metadata"]["prompt_model"] == "gpt-4o-mini"
    assert entry["config"]["temperature"] == 0.3
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


def test_prompt_with_model_logs_that_model(project: Path, log_dir: Path) -> None:
    cat = [sys.executable, "-c", "import sys; sys.stdout.write(sys.stdin.read())"]
    result = run(["log", "--prompt", "summarization", "--var", "text=t", "--var", "sentences=1",
                  "-m", "llama3.1", "--", *cat])
    assert result.exit_code == 0, result.output
    (entry,) = read_entries(log_dir)
    assert entry["model"] == "llama3.1" and "prompt_model" not in entry["metadata"]


def test_token_counts_give_the_cost(log_dir: Path) -> None:
    result = run(["log", "-m", "gpt-4o-mini", "--input-tokens", "1000", "--output-tokens", "500",
                  "--", *ECHO_UPPER], "hi")
    assert result.exit_code == 0, result.output
    (entry,) = read_entries(log_dir)
    assert entry["input_tokens"] == 1000 and entry["output_tokens"] == 500
    assert entry["cost_usd"] == 0.00045  # 1000 x 0.15/M + 500 x 0.60/M
    bad = run(["log", "--input-tokens", "-5", "--", *ECHO_UPPER], "hi")
    assert bad.exit_code == 2 and "--input-tokens" in bad.stderr


def _printing(text: str) -> list[str]:
    return [sys.executable, "-c", f"import sys; sys.stdout.write({text!r})"]


CLAUDE_CODE = json.dumps({
    "type": "result", "subtype": "success", "is_error": False, "result": "Paris.",
    "model": "claude-sonnet-4-5-20250929", "total_cost_usd": 0.0123,
    "usage": {"input_tokens": 4, "cache_creation_input_tokens": 100,
              "cache_read_input_tokens": 2000, "output_tokens": 6}})
OPENAI_CHAT = json.dumps({
    "id": "chatcmpl-1", "object": "chat.completion", "model": "gpt-4o-mini-2024-07-18",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello!"}}],
    "usage": {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15}})
OLLAMA_STREAM = "".join(json.dumps(obj) + "\n" for obj in [
    {"model": "llama3.1", "response": "Hel", "done": False},
    {"model": "llama3.1", "response": "lo", "done": False},
    {"model": "llama3.1", "response": "", "done": True, "prompt_eval_count": 26,
     "eval_count": 290}])
GEMINI = json.dumps({
    "candidates": [{"content": {"parts": [{"text": "Bonjour"}], "role": "model"}}],
    "usageMetadata": {"promptTokenCount": 8, "candidatesTokenCount": 2},
    "modelVersion": "gemini-2.5-flash"})


@pytest.mark.parametrize(("printed", "expected"), [
    (CLAUDE_CODE, {"input_tokens": 2104, "cached_tokens": 2000, "output_tokens": 6,
                   "model": "claude-sonnet-4-5-20250929", "assistant_response": "Paris."}),
    (OPENAI_CHAT, {"input_tokens": 12, "output_tokens": 3, "model": "gpt-4o-mini-2024-07-18",
                   "assistant_response": "Hello!"}),
    (OLLAMA_STREAM, {"input_tokens": 26, "output_tokens": 290, "model": "llama3.1",
                     "assistant_response": ""}),
    (GEMINI, {"input_tokens": 8, "output_tokens": 2, "model": "gemini-2.5-flash",
              "assistant_response": "Bonjour"}),
])
def test_usage_from_json_output(log_dir: Path, printed: str, expected: dict) -> None:
    result = run(["log", "--usage-from", "json", "--", *_printing(printed)], "q")
    assert result.exit_code == 0, result.output
    assert result.stdout == printed  # what the tool printed, unchanged
    assert result.stderr == ""
    (entry,) = read_entries(log_dir)
    assert {k: entry.get(k) for k in expected} == expected
    if entry["model"] == "gpt-4o-mini-2024-07-18":
        assert entry["cost_usd"] > 0


def test_usage_from_json_gives_way_to_explicit_options(log_dir: Path) -> None:
    result = run(["log", "--usage-from", "json", "-m", "mine", "--output-tokens", "9", "--",
                  *_printing(OPENAI_CHAT)], "q")
    assert result.exit_code == 0, result.output
    (entry,) = read_entries(log_dir)
    assert entry["model"] == "mine" and entry["output_tokens"] == 9
    assert entry["input_tokens"] == 12


def test_usage_from_json_without_usage_warns_and_logs_the_output(log_dir: Path) -> None:
    result = run(["log", "--usage-from", "json", "--", *_printing("plain text, no JSON")], "q")
    assert result.exit_code == 0
    assert result.stderr == ("Warning: no token usage found in the command's output "
                             "(--usage-from json)\n")
    (entry,) = read_entries(log_dir)
    assert entry["assistant_response"] == "plain text, no JSON" and "input_tokens" not in entry


@pytest.mark.parametrize(("signum", "code", "name"), [(9, 137, "SIGKILL"), (15, 143, "SIGTERM")])
def test_a_child_killed_by_a_signal_exits_128_plus_n(console_script: str, log_dir: Path,
                                                     signum: int, code: int, name: str) -> None:
    killer = [sys.executable, "-c",
              f"import os, sys; print('partial', flush=True); os.kill(os.getpid(), {signum})"]
    proc = subprocess.run([console_script, "log", "--", *killer], input=b"",
                          capture_output=True, timeout=60)
    assert proc.returncode == code, proc.stderr
    assert proc.stdout == b"partial\n" and proc.stderr == b""
    (entry,) = read_entries(log_dir)
    assert entry["status"] == "error" and entry["error"] == f"killed by signal {name}"
    assert entry["metadata"]["exit_code"] == code and entry["metadata"]["signal"] == name
    result = run(["log", "--", *killer], "")  # in-process too
    assert result.exit_code == code


@pytest.mark.parametrize("to_group", [True, False], ids=["terminal-ctrl-c", "kill-int-promptlab"])
def test_ctrl_c_keeps_what_the_command_printed(console_script: str, log_dir: Path,
                                               to_group: bool) -> None:
    # A terminal's Ctrl-C signals the whole process group; `kill -INT` only promptlab,
    # which passes it on. Either way the output printed so far is the logged response.
    slow = ["sh", "-c", "cat; echo partial; exec sleep 30"]
    proc = subprocess.Popen([console_script, "log", "-m", "gpt-4o", "--", *slow],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, start_new_session=True)
    try:
        proc.stdin.write(b"my question\n")  # type: ignore[union-attr]
        proc.stdin.close()  # type: ignore[union-attr]
        printed = proc.stdout.readline() + proc.stdout.readline()  # type: ignore[union-attr]
        assert printed == b"my question\npartial\n"
        (os.killpg if to_group else os.kill)(proc.pid, signal.SIGINT)
        rest, err = proc.stdout.read(), proc.stderr.read()  # type: ignore[union-attr]
        assert proc.wait(timeout=20) == 130, err
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert rest == b"" and err == b""
    (entry,) = read_entries(log_dir)
    assert entry["status"] == "error" and entry["error"] == "interrupted (Ctrl-C)"
    assert entry["user_message"] == "my question\n"
    assert entry["assistant_response"] == "my question\npartial\n"
    assert entry["metadata"]["exit_code"] == 130 and entry["metadata"]["signal"] == "SIGINT"
