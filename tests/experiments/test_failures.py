"""Failure paths of a run: a failed run never looks green, one bad response or slow
server never stops (or hangs) a run, no user input reaches the user as a traceback, and
nothing secret lands in the response cache."""

from __future__ import annotations

import json
import socket
import sqlite3
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from promptlab.cli import main
from promptlab.experiments import load_experiment
from promptlab.experiments.assign import Splitter
from promptlab.experiments.cache import ResponseCache
from promptlab.experiments.runner import RunOptions, run_experiment
from promptlab.providers.base import Response

from .conftest import FakeLLM, Reply


def run(*args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(main, list(args))


def openai_provider(server: FakeLLM | str) -> str:
    url = server if isinstance(server, str) else server.url
    return f'type = "openai"\nmodel = "gpt-test"\nbase_url = "{url}/v1"'


def ok_body(usage: dict[str, object]) -> dict[str, object]:
    return {"model": "gpt-test", "usage": usage,
            "choices": [{"message": {"role": "assistant", "content": "looks fine f0"}}]}


# -- a failed run must not look green ---------------------------------------------------------


def test_a_small_run_where_every_cell_failed_exits_1_without_next(exp_project, toml, rows,
                                                                  fake_llm) -> None:
    fake_llm.then(*[Reply(400, {"error": {"message": "invalid model"}})] * 6)
    exp_project.write("ab", toml(openai_provider(fake_llm)), rows[:3])
    result = run("experiment", "run", "ab", "--no-cache")
    assert result.exit_code == 1, result.output
    assert "6 cells" in result.stdout and "6 errors" in result.stdout
    assert "Next:" not in result.output
    assert ("Error: the run failed: 6 of 6 cells failed (100%), more than [run] "
            "max_error_rate = 0.5; fix the cause, then continue with: promptlab experiment "
            "run ab --resume") in result.stderr


def test_error_rate_above_the_limit_fails_however_small(exp_project, toml, rows,
                                                        fake_llm) -> None:
    fake_llm.then(Reply(400, {"error": {"message": "bad"}}), Reply(400, {"error": {"message": "bad"}}))
    exp_project.write("ab", toml(openai_provider(fake_llm),
                                 extra="[run]\nmax_error_rate = 0.2\nconcurrency = 1\n"), rows[:3])
    result = run("experiment", "run", "ab", "--no-cache")
    assert result.exit_code == 1 and "Next:" not in result.output
    assert "2 of 6 cells failed (33%), more than [run] max_error_rate = 0.2" in result.stderr
    # within the limit: the run passes and says what to do next
    fake_llm.then(Reply(400, {"error": {"message": "bad"}}))
    exp_project.write("ab", toml(openai_provider(fake_llm),
                                 extra="[run]\nmax_error_rate = 0.5\nconcurrency = 1\n"), rows[:3])
    result = run("experiment", "run", "ab", "--no-cache")
    assert result.exit_code == 0, result.output
    assert "Next: promptlab compare v1 v2 --experiment ab" in result.stdout


def test_nothing_succeeded_fails_even_with_max_error_rate_1(exp_project, toml, rows,
                                                            fake_llm) -> None:
    fake_llm.then(*[Reply(400, {"error": {"message": "invalid model"}})] * 2)
    exp_project.write("ab", toml(openai_provider(fake_llm), variants="v1 = 1",
                                 extra="[run]\nmax_error_rate = 1\n"), rows[:2])
    result = run_experiment(load_experiment("ab"), RunOptions(cache=False))
    assert result.failed == "all 2 cells failed"


@pytest.mark.parametrize("flags", [(), ("--no-cache",)])
def test_an_unwritable_log_folder_fails_before_any_call(exp_project, toml, rows, fake_llm,
                                                       monkeypatch, tmp_path, flags) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    monkeypatch.setenv("PROMPTLAB_LOG_DIR", str(blocker / "logs"))
    exp_project.write("ab", toml(openai_provider(fake_llm)), rows[:3])
    result = run("experiment", "run", "ab", *flags)
    assert result.exit_code == 1 and "Next:" not in result.output
    assert result.stderr.startswith(f"Error: cannot create the log folder {blocker / 'logs'}: ")
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
    assert fake_llm.requests == []  # nothing paid for that could not be logged


def test_a_cell_that_cannot_be_logged_stops_and_fails_the_run(exp_project, toml, rows,
                                                              fake_llm) -> None:
    # The folder is writable but today's day file cannot be written (a folder in its place).
    exp_project.log_dir.mkdir(parents=True)
    today = datetime.now(UTC)
    for day in (today - timedelta(days=1), today, today + timedelta(days=1)):
        (exp_project.log_dir / f"{day:%Y-%m-%d}.jsonl").mkdir()
    exp_project.write("ab", toml(openai_provider(fake_llm), extra="[run]\nconcurrency = 1\n"),
                      rows)
    result = run("experiment", "run", "ab", "--no-cache")
    assert result.exit_code == 1, result.output
    assert "Next:" not in result.output
    assert "Error: the run failed: stopped: a cell could not be logged: " in result.stderr
    assert "fix the log folder, then run again" in result.stderr
    assert len(fake_llm.requests) < 12  # stopped at the first cell it could not log


def test_a_lenient_logger_that_drops_entries_fails_the_run(exp_project, toml, rows) -> None:
    from promptlab.logs.logger import Logger

    exp_project.log_dir.mkdir(parents=True)
    day = datetime.now(UTC)
    for d in (day - timedelta(days=1), day, day + timedelta(days=1)):
        (exp_project.log_dir / f"{d:%Y-%m-%d}.jsonl").mkdir()
    exp_project.write("ab", toml(), rows)
    with pytest.warns(Warning):
        result = run_experiment(load_experiment("ab"), RunOptions(concurrency=1),
                                logger=Logger(exp_project.log_dir))
    assert result.stopped == "log" and result.unlogged >= 1
    assert result.failed and "could not be logged" in result.failed


SCORER = '''
def boom(output):
    raise ValueError("cannot parse the verdict")

def picky(output, item_id):
    if item_id == "item-0":
        raise ValueError("item-0 is odd")
    return True
'''


def test_a_scorer_failing_on_every_cell_fails_the_run_and_is_counted(exp_project, toml,
                                                                    rows) -> None:
    (exp_project.experiments / "checks.py").parent.mkdir(exist_ok=True)
    (exp_project.experiments / "checks.py").write_text(SCORER)
    scorers = ('[[scorers]]\nname = "verdict"\ntype = "python"\nfunction = "checks.py:boom"\n'
               '[[scorers]]\nname = "picky"\ntype = "python"\nfunction = "checks.py:picky"\n')
    exp_project.write("ab", toml(scorers=scorers), rows[:3])
    result = run("experiment", "run", "ab")
    assert result.exit_code == 1, result.output
    assert "Next:" not in result.output
    assert "6 cells" in result.stdout and "0 errors, 8 scorer failures" in result.stdout
    header = result.stdout.splitlines()[0].split()
    assert "scorer_errors" in header
    v1 = result.stdout.splitlines()[2].split()
    assert v1[header.index("scorer_errors")] == "3"
    assert ("Scorer 'verdict' failed on 6 of 6 cells; first: ValueError: cannot parse the "
            "verdict") in result.stderr
    assert "Scorer 'picky' failed on 2 of 6 cells; first: ValueError: item-0 is odd" in (
        result.stderr)
    assert ("Error: the run failed: scorer 'verdict' failed on every cell it scored (6 of 6); "
            "first: ValueError: cannot parse the verdict") in result.stderr

    status = run("experiment", "status", "ab")
    lines = status.stdout.splitlines()
    assert lines[0].split()[-2:] == ["scorer_errors", "runs"]
    assert lines[2].split()[-2:] == ["3", "1"]
    assert "0 errors, 8 scorer failures" in status.stdout
    assert "scorer 'verdict' gave no score on 6 of 6 cells of the last run" in status.stderr
    data = json.loads(run("experiment", "status", "ab", "--json").stdout)
    assert data["last_run"]["scorer_errors"] == {"verdict": 6, "picky": 2}


def test_a_scorer_failing_on_some_cells_is_counted_but_the_run_passes(exp_project, toml,
                                                                     rows) -> None:
    (exp_project.experiments).mkdir(exist_ok=True)
    (exp_project.experiments / "checks.py").write_text(SCORER)
    exp_project.write("ab", toml(scorers='[[scorers]]\nname = "picky"\ntype = "python"\n'
                                         'function = "checks.py:picky"\n'), rows[:3])
    result = run("experiment", "run", "ab")
    assert result.exit_code == 0, result.output
    assert "0 errors, 2 scorer failures" in result.stdout
    assert "Next: promptlab compare" in result.stdout


def test_a_score_beyond_64_bits_is_kept_as_a_float(exp_project, toml, rows) -> None:
    """A log line holds 64-bit integers: a scorer returning 2**64 made every cell a
    provider error ("unusable response: … Integer exceeds 64-bit range")."""
    exp_project.experiments.mkdir(exist_ok=True)
    (exp_project.experiments / "big.py").write_text("def score(output):\n    return 2**64\n")
    exp_project.write("ab", toml(scorers='[[scorers]]\nname = "big"\ntype = "python"\n'
                                         'function = "big.py:score"\n'), rows[:2])
    result = run("experiment", "run", "ab")
    assert result.exit_code == 0, result.output
    entries = exp_project.entries()
    assert len(entries) == 4 and all(e["status"] == "ok" for e in entries)
    assert {e["scores"]["big"] for e in entries} == {float(2**64)}


# -- one bad response must not kill a run ------------------------------------------------------


def test_out_of_range_usage_is_an_error_cell_and_resume_moves_on(exp_project, toml, rows,
                                                                  fake_llm) -> None:
    fake_llm.then(Reply(body=ok_body({"prompt_tokens": -5, "completion_tokens": 3})))
    exp_project.write("ab", toml(openai_provider(fake_llm), extra="[run]\nconcurrency = 1\n"),
                      rows)
    result = run("experiment", "run", "ab")
    assert result.exit_code == 0, result.output  # 1 of 12 failed: the run goes on
    errors = [e for e in exp_project.entries() if e["status"] == "error"]
    assert len(errors) == 1 and len(exp_project.entries()) == 12
    assert errors[0]["error"] == (
        f"{fake_llm.url}/v1/chat/completions reported usage.prompt_tokens = -5, which is not "
        "a token count (an integer from 0 to 1e+09)")
    assert "input_tokens" not in errors[0]
    result = run("experiment", "run", "ab", "--resume")
    assert result.exit_code == 0, result.output
    assert "1 cell in" in result.stdout and "11 cells were already logged" in result.stdout


HUGE_USAGE = ('import json, sys\nsys.stdin.read()\n'
              'print(json.dumps({"output": "ok", "usage": {"input_tokens": 10**30}}))\n')


def test_a_command_reporting_absurd_usage_is_an_error_cell(exp_project, toml, rows) -> None:
    import sys

    exp_project.experiments.mkdir(exist_ok=True)
    (exp_project.experiments / "model.py").write_text(HUGE_USAGE)
    provider = f'type = "command"\ncommand = ["{sys.executable}", "model.py"]\ncwd = "."'
    exp_project.write("ab", toml(provider, extra="[run]\nconcurrency = 2\n"), rows[:1])
    result = run("experiment", "run", "ab")
    assert result.exit_code == 1 and "Traceback" not in result.output
    entries = exp_project.entries()
    assert len(entries) == 2 and all(e["status"] == "error" for e in entries)
    assert entries[0]["error"].startswith("command ") and (
        "reported usage.input_tokens = 1000000000000000000000000000000, which is not a token "
        "count") in entries[0]["error"]


def test_a_response_the_log_refuses_is_an_error_cell(exp_project, toml, rows) -> None:
    from promptlab.logs.logger import Logger

    class Picky(Logger):
        """A logger that refuses one field, as the log's own checks would."""

        def log(self, **fields):  # type: ignore[no-untyped-def]
            if fields.get("status") == "ok" and fields.get("item_id") == "item-1":
                from promptlab.logs.entry import EntryError

                raise EntryError("log field 'output_tokens' must be an integer >= 0")
            return super().log(**fields)

    exp_project.write("ab", toml(), rows[:3])
    result = run_experiment(load_experiment("ab"), logger=Picky(exp_project.log_dir))
    assert (result.done, result.errors, result.failed) == (6, 2, None)
    bad = [e for e in exp_project.entries() if e["status"] == "error"]
    assert {e["error"] for e in bad} == {
        "unusable response: log field 'output_tokens' must be an integer >= 0"}


# -- timeout_s is a limit on the whole call ----------------------------------------------------


class Trickle:
    """A raw HTTP server on a real socket that answers one byte every `every_s` seconds —
    from the status line (`headers=True`) or after complete headers (the body)."""

    def __init__(self, every_s: float, headers: bool):
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.every_s = every_s
        self.headers = headers
        self.closed = threading.Event()
        self.connections = 0
        threading.Thread(target=self._serve, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}"

    def _serve(self) -> None:
        while not self.closed.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn: socket.socket) -> None:
        body = json.dumps(ok_body({"prompt_tokens": 1, "completion_tokens": 1})).encode()
        head = (f"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                f"content-length: {len(body)}\r\n\r\n").encode()
        with conn:
            conn.recv(65536)
            data = head + body
            if not self.headers:
                conn.sendall(head)
                data = body
            try:
                for i in range(len(data)):
                    if self.closed.wait(self.every_s):
                        return
                    conn.sendall(data[i:i + 1])
            except OSError:
                return

    def close(self) -> None:
        self.closed.set()
        self.sock.close()


@pytest.fixture
def trickle() -> Iterator[list[Trickle]]:
    servers: list[Trickle] = []
    yield servers
    for server in servers:
        server.close()


@pytest.mark.parametrize("headers", [True, False], ids=["status-line", "body"])
def test_a_trickling_server_times_out_at_the_wall_clock_limit(exp_project, toml, rows, trickle,
                                                              headers) -> None:
    server = Trickle(0.05, headers)
    trickle.append(server)
    exp_project.write("ab", toml(openai_provider(server.url), variants="v1 = 1",
                                 extra="[run]\nmax_retries = 0\ntimeout_s = 0.4\n"), rows[:1])
    start = time.monotonic()
    result = run_experiment(load_experiment("ab"), RunOptions(cache=False))
    took = time.monotonic() - start
    assert took < 3  # each byte comes well within httpx's per-read timeout
    assert (result.done, result.errors) == (1, 1)
    assert result.first_errors == [f"{server.url}/v1/chat/completions timed out after 0.4s"]
    assert exp_project.entries()[0]["status"] == "error"


def test_retries_stop_at_the_deadline_of_the_whole_call(exp_project, toml, rows,
                                                        fake_llm) -> None:
    fake_llm.then(*[Reply(429, {"error": {"message": "slow down"}},
                          headers={"retry-after": "5"})] * 3)
    exp_project.write("ab", toml(openai_provider(fake_llm), variants="v1 = 1",
                                 extra="[run]\nmax_retries = 3\ntimeout_s = 0.5\n"
                                       "max_backoff_s = 0\n"), rows[:1])
    start = time.monotonic()
    result = run_experiment(load_experiment("ab"), RunOptions(cache=False))
    assert time.monotonic() - start < 1.5  # never slept the 5 s asked for
    assert len(fake_llm.requests) == 1
    assert result.first_errors[0] == (
        f"HTTP 429 from {fake_llm.url}/v1/chat/completions: slow down (gave up after 1 "
        "attempts: retrying would pass the 2s deadline of this call and its retries)")


# -- no traceback for a user's input -----------------------------------------------------------


def test_a_dataset_line_nested_too_deep_is_one_line(exp_project, toml, rows) -> None:
    exp_project.write("ab", toml(), rows[:1])
    with (exp_project.experiments / "data.jsonl").open("a") as fh:
        fh.write("[" * 100_000 + "]" * 100_000 + "\n")
    result = run("experiment", "run", "ab")
    assert result.exit_code == 2
    assert result.stderr == ("Error: experiments/data.jsonl:2: the JSON is nested too deeply "
                             "to read; flatten the row\n")


@pytest.mark.parametrize(("text", "message"), [
    ("[" * 100_000 + "]" * 100_000, "experiments/data.json: the JSON is nested too deeply"),
    ('[{"id": ' + "1" * 5000 + "}]", "experiments/data.json: cannot read the JSON: Exceeds"),
])
def test_a_json_dataset_that_cannot_be_held_is_one_line(exp_project, toml, text,
                                                        message) -> None:
    exp_project.write("ab", toml(dataset='path = "data.json"'))
    (exp_project.experiments / "data.json").write_text(text)
    result = run("experiment", "run", "ab")
    assert result.exit_code == 2 and result.stderr.startswith(f"Error: {message}")


def test_a_dataset_that_is_a_fifo_is_refused_without_blocking(exp_project, toml) -> None:
    import os

    exp_project.write("ab", toml())
    os.mkfifo(exp_project.experiments / "data.jsonl")
    result = run("experiment", "run", "ab")
    assert result.exit_code == 2
    assert result.stderr == ("Error: dataset experiments/data.jsonl is not a regular file; "
                             "point [dataset] path at a .jsonl, .json or .csv file\n")


def test_a_csv_dataset_with_a_huge_field_is_read(exp_project, toml) -> None:
    exp_project.write("ab", toml(dataset='path = "data.csv"'))
    (exp_project.experiments / "data.csv").write_text("id,code\n1,x\n2," + "y" * 200_000 + "\n")
    result = run("experiment", "run", "ab", "--dry-run")  # fields up to 64 MiB (was 128 KiB)
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize("tail", [
    "x = " + "[" * 100_000 + "]" * 100_000,
    "x = " + "{a = " * 3000 + "1" + "}" * 3000,
    "x = " + "9" * 5000,
])
def test_an_experiment_file_that_cannot_be_held_is_one_line(exp_project, toml, tail) -> None:
    exp_project.write("ab", tail + "\n" + toml())
    for command in (("experiment", "run", "ab"), ("experiment", "assign", "ab", "u1")):
        result = run(*command)
        assert result.exit_code == 2, result.output
        assert result.stderr.startswith("Error: experiments/ab.toml: invalid TOML: ")
        assert len(result.stderr.splitlines()) == 1


@pytest.mark.parametrize(("weight", "message"), [
    ("nan", "'v1' must be a finite number, got nan"),
    ("inf", "'v1' must be a finite number, got inf"),
    ("-inf", "'v1' must be a finite number, got -inf"),
    ("1e308", "'v1' must be ≤ 1e+09, got 1e+308"),
    ("-1", "'v1' must be ≥ 0, got -1"),
    ("1" + "0" * 400, "'v1' must be ≤ 1e+09"),
])
def test_weights_are_finite_bounded_numbers(exp_project, toml, rows, weight, message) -> None:
    exp_project.write("ab", toml(variants=f"v1 = {weight}\nv2 = 50"), rows)
    for command in (("experiment", "run", "ab"), ("experiment", "assign", "ab", "u1"),
                    ("experiment", "status", "ab")):
        result = run(*command)
        assert result.exit_code == 2, result.output
        assert result.stderr.startswith(f"Error: experiments/ab.toml [variants]: {message}")


def test_two_huge_weights_still_split_evenly() -> None:
    splitter = Splitter({"v1": 1e300, "v2": 1e300}, "salt")
    counts = {"v1": 0, "v2": 0}
    for n in range(2000):
        counts[splitter.assign(f"user-{n}")] += 1
    assert 900 < counts["v1"] < 1100
    from promptlab.errors import ExperimentError

    for bad in (float("nan"), float("inf"), -1.0):
        with pytest.raises(ExperimentError, match="is not a finite number"):
            Splitter({"v1": bad, "v2": 1}, "salt")


# -- template limits: an error cell, and the run goes on ---------------------------------------

RECURSIVE = ("---\nmodel: gpt-4o-mini\n---\n{% macro r(n) %}{{ r(n + 1) }}{% endmacro %}"
             "{% if code == 'boom' %}{{ r(0) }}{% endif %}Review {{ code }}\n")
HUGE = ("---\nmodel: gpt-4o-mini\n---\n{% if code == 'big' %}{{ 'a' * 3000000000 }}{% endif %}"
        "Review {{ code }}\n")


SLOW = ("---\nmodel: gpt-4o-mini\n---\n{% if code == 'slow' %}{% for i in range(100000) %}"
        "{% for j in range(100000) %}{% endfor %}{% endfor %}{% endif %}Review {{ code }}\n")


@pytest.mark.parametrize(("template", "bad", "message"), [
    (RECURSIVE, "boom", "recursion too deep"),
    (HUGE, "big", "more than render_max_chars"),
    (SLOW, "slow", "rendering took longer than render_timeout_s (0.2 s)"),
])
def test_a_render_past_the_template_limits_is_an_error_cell(exp_project, toml, template, bad,
                                                           message) -> None:
    # Only the slow case runs into the time limit: on a loaded machine the runaway macro
    # could hit 0.2 s before the recursion limit.
    timeout = "0.2" if bad == "slow" else "10"
    (exp_project.root / "promptlab.toml").write_text(f"render_timeout_s = {timeout}\n")
    folder = exp_project.root / "prompts" / "limits"
    folder.mkdir()
    (folder / "v1.txt").write_text(template)
    rows = [{"id": "a", "vars": {"code": "fine"}}, {"id": "b", "vars": {"code": bad}},
            {"id": "c", "vars": {"code": "also fine"}}]
    exp_project.write("ab", toml(variants="v1 = 1", scorers="").replace(
        'prompt = "code-review"', 'prompt = "limits"'), rows)
    result = run("experiment", "run", "ab", "--json")
    data = json.loads(result.stdout)
    assert (data["done"], data["errors"]) == (3, 1)
    entries = {e["item_id"]: e for e in exp_project.entries()}
    assert entries["a"]["status"] == entries["c"]["status"] == "ok"
    error = entries["b"]["error"]
    assert error.startswith("item 'b' cannot be rendered with v1: ") and message in error
    assert "prompts/limits/v1.txt" in error
    assert entries["b"]["prompt_version"] == "v1" and "assistant_response" not in entries["b"]
    dry = run("experiment", "run", "ab", "--dry-run")
    assert dry.exit_code == 1
    assert dry.stderr.splitlines()[-1].startswith(
        "Error: 1 of 3 cells cannot be rendered within the template limits; first: item 'b' "
        "cannot be rendered with v1: ")


# -- the response cache is redacted ------------------------------------------------------------

SECRET = "sk-proj-" + "A1b2C3d4E5f6G7h8I9j0" * 2
LEAKY = f'def answer(text):\n    return "use the key {SECRET} here: " + text[:20]\n'


def test_the_response_cache_holds_no_secret(exp_project, toml, rows) -> None:
    exp_project.experiments.mkdir(exist_ok=True)
    (exp_project.experiments / "leaky.py").write_text(LEAKY)
    exp_project.write("ab", toml('type = "python"\nfunction = "leaky.py:answer"', scorers=""),
                      rows[:2])
    first = run("experiment", "run", "ab")
    assert first.exit_code == 0, first.output
    again = run_experiment(load_experiment("ab"))
    assert again.cache_hits == 4
    for path in exp_project.log_dir.iterdir():
        assert SECRET.encode() not in path.read_bytes(), path.name
    texts = {e["assistant_response"] for e in exp_project.entries()}
    assert all("sk-[REDACTED]" in t for t in texts)


def test_a_cache_from_before_redaction_is_emptied(tmp_path: Path) -> None:
    path = tmp_path / "cache.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE responses (key TEXT PRIMARY KEY, provider TEXT, model TEXT, "
                 "created REAL NOT NULL, response TEXT NOT NULL)")
    conn.execute("INSERT INTO responses VALUES ('k', 'openai', 'm', 0, ?)",
                 (json.dumps({"text": f"key {SECRET}"}),))
    conn.execute("PRAGMA user_version=1")
    conn.commit()
    conn.close()
    assert SECRET.encode() in path.read_bytes()
    with ResponseCache(path, redact=lambda t: t) as cache:
        assert cache.get("k") is None
        cache.put("k2", Response(text="fresh"), "openai")
        assert cache.get("k2").text == "fresh"  # type: ignore[union-attr]
    data = b"".join(p.read_bytes() for p in tmp_path.iterdir())
    assert SECRET.encode() not in data
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 2
    conn.close()
