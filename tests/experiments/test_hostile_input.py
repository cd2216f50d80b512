"""Odd or hostile input to experiments: one line and exit 2 before anything runs, and a
scorer with nothing to compare with is a scorer error, never a silent score."""

from __future__ import annotations

import math
import os
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from promptlab.cli import main
from promptlab.errors import ExperimentError, ScorerError
from promptlab.experiments import load_experiment
from promptlab.experiments.runner import RunOptions, run_experiment
from promptlab.experiments.scorers import ScoreInput, ScorerRuntime, build_scorers, parse_scorer

from .conftest import FakeLLM, Reply


def run(*args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(main, list(args))


def scorer(table: dict[str, Any]):  # type: ignore[no-untyped-def]
    spec = parse_scorer(table, 1, "exp.toml")
    return build_scorers([spec], ScorerRuntime(base_dir=Path.cwd()))[0]


def inp(output: str, expected: Any = None) -> ScoreInput:
    return ScoreInput(output=output, item_id="i1", vars={}, expected=expected)


@pytest.mark.parametrize("args", [["--timeout", "nan"], ["--timeout", "NaN"],
                                  ["-c", "99999999999999999999"], ["-c", "1025"]])
def test_run_options_out_of_range_are_one_line(exp_project, toml, rows, args) -> None:
    exp_project.write("ab", toml(), rows)
    result = run("experiment", "run", "ab", "--no-cache", *args)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and "Next:" not in result.output
    assert "--timeout" in result.output or "--concurrency" in result.output
    assert exp_project.entries() == []  # nothing ran, nothing logged


@pytest.mark.parametrize("options", [RunOptions(timeout_s=math.nan), RunOptions(timeout_s=-1),
                                     RunOptions(concurrency=10**20),
                                     RunOptions(max_retries=10**6)])
def test_run_options_checked_through_the_api(exp_project, toml, rows, options) -> None:
    exp_project.write("ab", toml(), rows)
    with pytest.raises(ExperimentError, match="--timeout|--concurrency|--max-retries"):
        run_experiment(load_experiment("ab"), options)
    assert exp_project.entries() == []


@pytest.mark.parametrize("kind", ["equals", "contains", "icontains", "regex"])
def test_a_row_without_expected_is_a_scorer_error_not_a_score(kind: str) -> None:
    s = scorer({"name": "m", "type": kind, "value": "{{ expected }}"})
    with pytest.raises(ScorerError, match="is empty for item 'i1'"):
        s(inp("None"))  # was True for equals/contains: compared with the text "None"
    with pytest.raises(ScorerError, match="is empty for item 'i1'"):
        s(inp("yes", expected=[]))  # `all` over nothing was True


@pytest.mark.parametrize("kind", ["contains", "icontains"])
def test_an_empty_needle_is_a_scorer_error(kind: str) -> None:
    s = scorer({"name": "m", "type": kind, "value": "{{ expected }}"})
    with pytest.raises(ScorerError, match="empty string"):
        s(inp("anything", expected=""))
    assert scorer({"name": "m", "type": "equals", "value": "{{ expected }}"})(
        inp("  ", expected="")) is True  # an empty answer may be the right one


def test_rows_without_expected_show_as_scorer_failures(exp_project, toml, rows) -> None:
    for row in rows[:2]:
        del row["expected"]
    exp_project.write("ab", toml(), rows)
    result = run("experiment", "run", "ab", "--no-cache")
    assert "Scorer 'mentions' failed on 4 of 12 cells" in result.output, result.output
    assert "is empty for item 'item-0'" in result.output


# -- a provider's server is not trusted -------------------------------------------------------


def anthropic_provider(url: str) -> str:
    return (f'type = "anthropic"\nmodel = "claude-haiku-4-5"\nbase_url = "{url}"\n'
            'api_key_env = "QA_TEST_KEY"')


def test_a_redirect_is_never_followed_with_the_key(exp_project, toml, rows, monkeypatch) -> None:
    monkeypatch.setenv("QA_TEST_KEY", "sk-ant-qa-secret-0123456789")
    thief, server = FakeLLM(), FakeLLM()
    try:
        server.then(*[Reply(307, "", {"location": f"{thief.url}/v1/messages"})] * 12)
        exp_project.write("ab", toml(anthropic_provider(server.url)), rows[:1])
        result = run("experiment", "run", "ab", "--no-cache", "--max-retries", "0")
        assert result.exit_code == 1, result.output
        assert thief.requests == []  # the key (x-api-key) and the prompt stayed home
        assert f"HTTP 307 from {server.url}/v1/messages: redirected to {thief.url}" in result.output
        assert "does not follow redirects" in result.output
    finally:
        thief.close()
        server.close()


def test_an_error_body_nested_too_deep_is_a_cell_error(exp_project, toml, rows,
                                                       fake_llm) -> None:
    fake_llm.then(*[Reply(400, "[" * 100_000)] * 12)
    exp_project.write("ab", toml(f'type = "openai"\nmodel = "gpt-test"\n'
                                 f'base_url = "{fake_llm.url}/v1"'), rows[:1])
    result = run("experiment", "run", "ab", "--no-cache", "--max-retries", "0")
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "First error: HTTP 400 from" in result.output
    assert "RecursionError" not in result.output


def test_a_command_timeout_kills_what_the_command_started(exp_project, toml, rows,
                                                           tmp_path) -> None:
    pid_file = tmp_path / "helper.pid"
    script = f"cat >/dev/null; sleep 60 & echo $! > {pid_file}; echo positive; wait"
    exp_project.write("ab", toml(f'type = "command"\ncommand = ["sh", "-c", "{script}"]\n'
                                 'input = "text"', variants="v1 = 100"), rows[:1])
    started = time.monotonic()
    result = run("experiment", "run", "ab", "--no-cache", "--timeout", "1", "--max-retries", "0")
    assert result.exit_code == 1 and "command 'sh' timed out after 1s" in result.output
    assert time.monotonic() - started < 15
    helper = int(pid_file.read_text())
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and _alive(helper):
        time.sleep(0.05)
    assert not _alive(helper)  # was left running after every timed-out call


_FLOOD = "import sys\nwhile True:\n    sys.{0}.write('y' * 65536)\n"


def test_a_command_that_floods_stdout_is_stopped_at_the_limit(exp_project, toml, rows) -> None:
    """A runaway command (`yes`, a loop) is killed once it has written 16 MB, long before its
    timeout, instead of filling memory: one error cell, no traceback."""
    import json
    import sys

    command = json.dumps([sys.executable, "-c", _FLOOD.format("stdout")])
    exp_project.write("ab", toml(f'type = "command"\ncommand = {command}\ninput = "text"',
                                 variants="v1 = 100"), rows[:1])
    started = time.monotonic()
    result = run("experiment", "run", "ab", "--no-cache", "--timeout", "120",
                 "--max-retries", "0")
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "wrote more than 16 MB to stdout and was stopped" in result.output, result.output
    assert time.monotonic() - started < 60


def test_a_command_scorer_that_floods_stderr_is_stopped(tmp_path: Path) -> None:
    import sys

    s = scorer({"name": "c", "type": "command", "timeout_s": 120,
                "command": [sys.executable, "-c", _FLOOD.format("stderr")]})
    with pytest.raises(ScorerError, match="wrote more than 16 MB to stderr and was stopped"):
        s(inp("x", expected="x"))


def test_run_process_limits_and_stdin() -> None:
    """Output up to the limit is kept whole; one byte more stops the command; a command that
    never reads a large stdin still answers; an empty stdin is closed at once."""
    import subprocess
    import sys

    from promptlab.providers.command import OutputTooLarge, run_process

    write = [sys.executable, "-c", "import sys; sys.stdout.write('z' * int(sys.argv[1]))"]
    assert run_process([*write, "100000"], b"", 30, limit=100_000).stdout == b"z" * 100_000
    with pytest.raises(OutputTooLarge) as raised:
        run_process([*write, "100001"], b"", 30, limit=100_000)
    assert str(raised.value) == "wrote more than 100,000 bytes to stdout"
    done = run_process(["sh", "-c", "echo hi"], b"x" * (4 << 20), 30)
    assert (done.returncode, done.stdout) == (0, b"hi\n")
    assert run_process(["cat"], b"", 30).stdout == b""
    echoed = run_process(["cat"], b"abc" * 300_000, 30)  # more than a pipe holds
    assert echoed.stdout == b"abc" * 300_000
    with pytest.raises(subprocess.TimeoutExpired):
        run_process(["sleep", "30"], b"", 0.5)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as fh:  # an unreaped zombie is not alive
        return fh.read().split(")")[-1].split()[0] != "Z"


@pytest.mark.parametrize("timeout", ["nan", "inf", "-1", "1e300"])
def test_command_scorer_timeout_must_be_finite(timeout: str) -> None:
    with pytest.raises(ExperimentError, match="'timeout_s' must be a number of seconds > 0"):
        scorer({"name": "c", "type": "command", "command": ["true"],
                "timeout_s": float(timeout)})


def test_command_scorer_timeout_kills_its_helpers(tmp_path: Path) -> None:
    pid_file = tmp_path / "helper.pid"
    s = scorer({"name": "c", "type": "command", "timeout_s": 1,
                "command": ["sh", "-c", f"sleep 60 & echo $! > {pid_file}; echo 1; wait"]})
    with pytest.raises(ScorerError, match="timed out after 1s"):
        s(inp("x", expected="x"))
    helper = int(pid_file.read_text())
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and _alive(helper):
        time.sleep(0.05)
    assert not _alive(helper)


def test_status_counts_read_in_the_singular(exp_project, toml, rows) -> None:
    del rows[0]["expected"]
    exp_project.write("ab", toml(variants="v1 = 100"), rows[:1])
    run("experiment", "run", "ab", "--no-cache")
    result = run("experiment", "status", "ab")
    assert ": 1 cell, 0 errors, 1 scorer failure, " in result.output, result.output


# -- CSV datasets ---------------------------------------------------------------------------------


def csv_experiment(exp_project, toml, text: str) -> None:
    exp_project.experiments.mkdir(exist_ok=True)
    (exp_project.experiments / "data.csv").write_text(text, encoding="utf-8")
    exp_project.write("ab", toml(dataset='path = "data.csv"'))


def test_csv_field_bigger_than_128k_is_read(exp_project, toml) -> None:
    code = "x = 1\n" * 40_000  # 240 KB: a whole file to review
    csv_experiment(exp_project, toml, 'id,code,expected\na,"' + code + '",x\n')
    items = load_experiment("ab").load_items()
    assert items[0].vars["code"] == code


def test_csv_unbalanced_quote_is_an_error_not_rows_swallowed(exp_project, toml) -> None:
    csv_experiment(exp_project, toml, 'id,code,expected\na,"oops,x\nb,fine,y\nc,fine,z\n')
    result = run("experiment", "run", "ab", "--dry-run")
    assert result.exit_code == 2, result.output  # was: 1 item, b and c inside a's code
    assert "data.csv:2: cannot read the CSV: unexpected end of data" in result.stderr


def test_csv_duplicate_column_is_an_error(exp_project, toml) -> None:
    csv_experiment(exp_project, toml, "id,code,code,expected\na,one,two,x\n")
    result = run("experiment", "run", "ab", "--dry-run")
    assert result.exit_code == 2
    assert "data.csv:1: column 'code' appears twice in the header" in result.stderr


# -- the response cache --------------------------------------------------------------------------


def test_a_cache_db_link_is_never_followed(tmp_path: Path) -> None:
    from promptlab.experiments.cache import ResponseCache

    target = tmp_path / "elsewhere.db"
    (tmp_path / "logs").mkdir()
    os.symlink(target, tmp_path / "logs" / "cache.db")
    with pytest.raises(ExperimentError, match="is a symbolic link; promptlab does not follow"):
        ResponseCache(tmp_path / "logs" / "cache.db")
    assert not target.exists()  # was: created there, and every response written to it


@pytest.mark.parametrize("kind", ["fifo", "folder"])
def test_a_cache_db_that_is_not_a_file(tmp_path: Path, kind: str) -> None:
    from promptlab.experiments.cache import ResponseCache

    path = tmp_path / "cache.db"
    os.mkfifo(path) if kind == "fifo" else path.mkdir()
    with pytest.raises(ExperimentError, match="cache.db is not a regular file; move it away"):
        ResponseCache(path)


@pytest.mark.parametrize(("value", "where"), [("sk-\x01abc", "at position 4"),
                                               ("sk-é-key", "at position 4"),
                                               ("   ", "(only spaces)")])
def test_an_api_key_no_header_can_carry_is_one_line_and_never_shown(
        exp_project, toml, rows, fake_llm, monkeypatch, value, where) -> None:
    monkeypatch.setenv("QA_TEST_KEY", value)
    exp_project.write("ab", toml(f'type = "openai"\nmodel = "gpt-test"\nbase_url = '
                                 f'"{fake_llm.url}/v1"\napi_key_env = "QA_TEST_KEY"'), rows[:1])
    result = run("experiment", "run", "ab", "--no-cache")
    assert result.exit_code == 2, result.output  # was: every cell failed, the key in the error
    assert f"QA_TEST_KEY holds a character an API key cannot have {where}" in result.stderr
    assert value.strip() not in result.output or not value.strip()
    assert fake_llm.requests == [] and exp_project.entries() == []


def test_an_api_key_read_with_its_newline_works(exp_project, toml, rows, fake_llm,
                                                monkeypatch) -> None:
    monkeypatch.setenv("QA_TEST_KEY", "sk-qa-key-0123\r\n")  # from a .env file
    exp_project.write("ab", toml(f'type = "openai"\nmodel = "gpt-test"\nbase_url = '
                                 f'"{fake_llm.url}/v1"\napi_key_env = "QA_TEST_KEY"'), rows[:1])
    result = run("experiment", "run", "ab", "--no-cache")
    assert result.exit_code == 0, result.output
    assert fake_llm.requests[0]["headers"]["Authorization"] == "Bearer sk-qa-key-0123"


@pytest.mark.parametrize("url", ["http://", "http://[::1", "http://exa mple.com/v1",
                                 "http://127.0.0.1:99999/v1", "http://host:port/v1"])
def test_a_base_url_that_cannot_work_is_one_line_before_the_run(exp_project, toml, rows,
                                                                url) -> None:
    exp_project.write("ab", toml(f'type = "openai"\nmodel = "gpt-test"\nbase_url = "{url}"'),
                      rows[:1])
    result = run("experiment", "run", "ab", "--no-cache")
    assert result.exit_code == 2, result.output  # was: a run where every cell failed
    assert f"base_url {url!r} is not a valid URL" in result.stderr
    assert exp_project.entries() == []
