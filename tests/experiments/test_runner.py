"""The runner end to end: cells, retries, timeouts, error-rate stop, resume after Ctrl-C,
the response cache, dry runs, and what the CLI prints."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter

from click.testing import CliRunner

from promptlab.cli import main
from promptlab.experiments import load_experiment
from promptlab.experiments.runner import RunOptions, run_experiment

from .conftest import FakeLLM, Reply


def run(*args: str, input: str | None = None):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(main, list(args), input=input)


def openai_provider(server: FakeLLM) -> str:
    return f'type = "openai"\nmodel = "gpt-test"\nbase_url = "{server.url}/v1"'


FAST_RETRY = "[run]\nbackoff_s = 0.01\nmax_backoff_s = 0.05\n"


# -- cells -----------------------------------------------------------------------------------


def test_paired_design_runs_every_item_through_every_variant(exp_project, toml, rows) -> None:
    exp_project.write("ab", toml(), rows)
    result = run_experiment(load_experiment("ab"))
    assert (result.planned, result.done, result.errors) == (12, 12, 0)
    entries = exp_project.entries()
    assert Counter((e["item_id"], e["variant"]) for e in entries) == {
        (r["id"], v): 1 for r in rows for v in ("v1", "v2")}
    e = entries[0]
    assert e["run_id"] == result.run_id and e["experiment"] == "ab"
    assert e["unit_id"] == e["item_id"] and e["repeat"] == 0
    assert e["prompt_id"] == "code-review" and e["prompt_version"] == e["variant"]
    assert len(e["prompt_sha"]) == 64
    # a stand-in is not the prompt's model (gpt-4o-mini): logged as itself, never priced
    assert e["provider"] == "echo" and e["model"] == "echo" and "cost_usd" not in e
    assert e["scores"] == {"mentions": True} and e["status"] == "ok"
    assert e["assistant_response"].startswith("You are a meticulous code reviewer")
    assert e["config"] == {"temperature": 0.2, "max_tokens": 800}


def test_split_design_runs_each_item_through_its_assigned_variant(exp_project, toml) -> None:
    rows = [{"id": f"i{n}", "unit_id": f"user-{n % 7}", "vars": {"code": "x"}}
            for n in range(40)]
    exp_project.write("ab", toml(dataset='path = "data.jsonl"\ndesign = "split"\nrepeat = 2',
                                 scorers=""), rows)
    exp = load_experiment("ab")
    result = run_experiment(exp)
    assert result.planned == 80
    entries = exp_project.entries()
    assert len(entries) == 80
    for e in entries:
        assert e["variant"] == exp.assign(e["unit_id"])
    assert sorted({e["repeat"] for e in entries}) == [0, 1]
    assert {e["variant"] for e in entries} == {"v1", "v2"}


def test_zero_weight_variant_is_switched_off(exp_project, toml, rows) -> None:
    exp_project.write("ab", toml(variants="v1 = 0\nv2 = 1"), rows)
    result = run_experiment(load_experiment("ab"))
    assert list(result.variants) == ["v2"]
    assert {e["variant"] for e in exp_project.entries()} == {"v2"}


def test_limit_and_dry_run(exp_project, toml, rows) -> None:
    exp_project.write("ab", toml(), rows)
    result = run("experiment", "run", "ab", "--limit", "2", "--dry-run")
    assert result.exit_code == 0, result.output
    assert [line.split() for line in result.stdout.splitlines()[:4]] == [
        ["variant", "version", "cells", "skipped"], ["---------", "---------", "-------",
                                                     "---------"],
        ["v1", "v1", "2", "0"], ["v2", "v2", "2", "0"]]
    assert "Dry run: 4 cells would be called; nothing was called." in result.stdout
    assert "ab: 4 cells — code-review × 2 variants (v1, v2), paired design, repeat 1, first 2 " \
           "items; provider echo" in result.stderr
    assert exp_project.entries() == []


# -- retries and timeouts --------------------------------------------------------------------


def test_retries_honour_retry_after_then_succeed(exp_project, toml, rows, fake_llm) -> None:
    fake_llm.then(Reply(429, {"error": {"message": "slow down"}}, {"Retry-After": "0.3"}),
                  Reply(503, {"error": {"message": "busy"}}))
    exp_project.write("ab", toml(openai_provider(fake_llm), extra=FAST_RETRY
                                 + "concurrency = 1\n"), rows[:1])
    result = run_experiment(load_experiment("ab"), RunOptions(cache=False))
    assert (result.done, result.errors) == (2, 0)
    times = [r["time"] for r in fake_llm.requests]
    assert times[1] - times[0] >= 0.3  # waited as the server asked
    assert times[2] - times[1] < 0.3   # exponential backoff from 10 ms
    first = exp_project.entries()[0]
    assert first["status"] == "ok" and first["metadata"]["attempts"] == 3
    assert first["input_tokens"] == 12 and first["cached_tokens"] == 4


def test_gives_up_after_max_retries_and_logs_the_error(exp_project, toml, rows,
                                                       fake_llm) -> None:
    fake_llm.then(*[Reply(500, {"error": {"message": "boom"}})] * 3)
    exp_project.write("ab", toml(openai_provider(fake_llm), extra=FAST_RETRY
                                 + "concurrency = 1\nmax_retries = 2\n"), rows[:1])
    result = run_experiment(load_experiment("ab"), RunOptions(cache=False))
    assert (result.done, result.errors) == (2, 1)
    failed = [e for e in exp_project.entries() if e["status"] == "error"]
    assert len(failed) == 1
    assert failed[0]["error"] == (f"HTTP 500 from {fake_llm.url}/v1/chat/completions: boom "
                                  "(gave up after 3 attempts)")
    assert failed[0]["metadata"] == {"attempts": 3}
    assert "assistant_response" not in failed[0] and "scores" not in failed[0]
    assert len(fake_llm.requests) == 4  # 3 for the failed cell, 1 for the other


def test_non_retryable_errors_are_not_retried(exp_project, toml, rows, fake_llm) -> None:
    fake_llm.then(Reply(401, {"error": {"message": "bad key"}}))
    exp_project.write("ab", toml(openai_provider(fake_llm), extra="[run]\nconcurrency = 1\n"),
                      rows[:1])
    result = run_experiment(load_experiment("ab"), RunOptions(cache=False))
    assert result.errors == 1 and len(fake_llm.requests) == 2


def test_per_call_timeout(exp_project, toml, rows, fake_llm) -> None:
    fake_llm.then(*[Reply(delay_s=1.0)] * 2)
    exp_project.write("ab", toml(openai_provider(fake_llm), extra="[run]\nmax_retries = 0\n"
                                 "concurrency = 2\n"), rows[:1])
    start = time.monotonic()
    result = run("experiment", "run", "ab", "--timeout", "0.2", "--no-cache")
    assert time.monotonic() - start < 0.9
    assert result.exit_code == 1, result.output  # every cell failed: the run failed
    assert "Next:" not in result.output
    errors = [e["error"] for e in exp_project.entries()]
    assert errors == [f"{fake_llm.url}/v1/chat/completions timed out after 0.2s"] * 2
    assert f"First error: {errors[0]}" in result.stderr


def test_error_rate_stops_the_run_early(exp_project, toml, fake_llm) -> None:
    rows = [{"id": f"i{n}", "vars": {"code": "x"}} for n in range(50)]
    fake_llm.then(*[Reply(400, {"error": {"message": "invalid model"}})] * 200)
    exp_project.write("ab", toml(openai_provider(fake_llm), extra="[run]\nconcurrency = 2\n"
                                 "max_error_rate = 0.5\nmin_cells_for_error_rate = 10\n"), rows)
    result = run("experiment", "run", "ab", "--no-cache")
    assert result.exit_code == 1
    logged = exp_project.entries()
    assert 10 <= len(logged) <= 14  # stopped soon after 10 cells, not after 100
    assert all(e["status"] == "error" for e in logged)
    assert ("Error: the run failed: stopped early: 10 of 10 cells failed (100%), more than [run] "
            "max_error_rate = 0.5; fix the cause, then continue with: promptlab experiment run "
            "ab --resume") in result.stderr


# -- resume ------------------------------------------------------------------------------------


SLOW_MODEL = """
import time
def answer(user, repeat):
    time.sleep(0.05)
    return "reviewed: " + user[-20:]
"""


def test_resume_after_ctrl_c_runs_every_cell_exactly_once(exp_project, toml) -> None:
    rows = [{"id": f"i{n}", "vars": {"code": f"def f{n}(): pass"}, "expected": f"f{n}"}
            for n in range(30)]
    exp_project.experiments.mkdir()
    (exp_project.experiments / "slow.py").write_text(SLOW_MODEL)
    exp_project.write("ab", toml('type = "python"\nfunction = "slow.py:answer"',
                                 extra="[run]\nconcurrency = 2\n"), rows)
    proc = subprocess.Popen([sys.executable, "-m", "promptlab", "experiment", "run", "ab"],
                            cwd=exp_project.root, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=os.environ.copy())
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and len(exp_project.entries()) < 8:
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 130, err
    first = exp_project.entries()
    assert 8 <= len(first) < 60
    assert "Interrupted:" in err and "promptlab experiment run ab --resume" in err
    assert "Traceback" not in err
    assert "variant" in out  # the summary of what was done is still printed

    result = run("experiment", "run", "ab", "--resume", "--no-cache")
    assert result.exit_code == 0, result.output
    assert f"{len(first)} cells were already logged and skipped (--resume)." in result.stdout
    entries = exp_project.entries()
    keys = Counter((e["variant"], e["item_id"], e["repeat"]) for e in entries)
    assert keys == {(v, r["id"], 0): 1 for r in rows for v in ("v1", "v2")}  # once, none missing
    assert {e["run_id"] for e in entries} == {first[0]["run_id"]}  # the run is continued

    again = run("experiment", "run", "ab", "--resume")
    assert "60 cells were already logged" in again.stdout
    assert len(exp_project.entries()) == 60


def test_resume_retries_cells_that_failed(exp_project, toml, rows, fake_llm) -> None:
    fake_llm.then(Reply(400, {"error": {"message": "nope"}}))
    exp_project.write("ab", toml(openai_provider(fake_llm), extra="[run]\nconcurrency = 1\n"),
                      rows[:2])
    run_experiment(load_experiment("ab"), RunOptions(cache=False))
    assert [e["status"] for e in exp_project.entries()] == ["error", "ok", "ok", "ok"]
    result = run_experiment(load_experiment("ab"), RunOptions(resume=True, cache=False))
    assert (result.skipped, result.done, result.errors) == (3, 1, 0)


# -- cache ---------------------------------------------------------------------------------------


COUNTING_MODEL = """
import os
def answer(user, params):
    with open(os.environ["CALLS_FILE"], "a") as fh:
        fh.write("x")
    return "answer to " + user[-30:]
"""


def test_response_cache_hits_misses_and_no_cache(exp_project, toml, rows, tmp_path,
                                                 monkeypatch) -> None:
    calls = tmp_path / "calls"
    calls.write_text("")
    monkeypatch.setenv("CALLS_FILE", str(calls))
    exp_project.experiments.mkdir()
    (exp_project.experiments / "model.py").write_text(COUNTING_MODEL)
    exp_project.write("ab", toml('type = "python"\nfunction = "model.py:answer"'), rows)
    first = run_experiment(load_experiment("ab"))
    assert (first.cache_hits, len(calls.read_text())) == (0, 12)
    assert (exp_project.log_dir / "cache.db").stat().st_mode & 0o777 == 0o600
    second = run("experiment", "run", "ab")
    assert len(calls.read_text()) == 12  # nothing called again
    assert "12 from the cache" in second.stdout
    hits = exp_project.entries()[12:]
    assert all(e["metadata"] == {"cache": "hit"} for e in hits)
    def answers(entries):  # type: ignore[no-untyped-def]
        return {(e["variant"], e["item_id"]): e["assistant_response"] for e in entries}

    assert answers(hits) == answers(exp_project.entries()[:12])
    run("experiment", "run", "ab", "--no-cache")
    assert len(calls.read_text()) == 24
    # a changed parameter is a different request
    exp_project.write("ab", toml('type = "python"\nfunction = "model.py:answer"\n'
                                 "params = {temperature = 0.9}"), rows)
    run_experiment(load_experiment("ab"))
    assert len(calls.read_text()) == 36


def test_errors_are_never_cached(exp_project, toml, rows, fake_llm) -> None:
    fake_llm.then(Reply(400, {"error": {"message": "nope"}}))
    exp_project.write("ab", toml(openai_provider(fake_llm), extra="[run]\nconcurrency = 1\n"),
                      rows[:1])
    run_experiment(load_experiment("ab"))
    assert len(fake_llm.requests) == 2
    result = run_experiment(load_experiment("ab"))
    assert len(fake_llm.requests) == 3  # only the failed request is asked again
    assert (result.cache_hits, result.errors) == (1, 0)


# -- the CLI ------------------------------------------------------------------------------------


def test_run_prints_summary_and_the_next_command(exp_project, toml, rows) -> None:
    exp_project.write("ab", toml(), rows)
    result = run("experiment", "run", "ab")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["variant", "version", "cells", "errors", "mentions",
                                "input_tokens", "output_tokens", "cost_usd", "latency_ms"]
    v1 = lines[2].split()
    assert v1[:5] == ["v1", "v1", "6", "0", "1.000"]
    assert lines[-1] == "Next: promptlab compare v1 v2 --experiment ab"
    assert "progress: 12/12 cells (100%), 0 errors" in result.stderr


def test_run_json(exp_project, toml, rows) -> None:
    exp_project.write("ab", toml(), rows)
    data = json.loads(run("experiment", "run", "ab", "--json").stdout)
    assert data["experiment"] == "ab" and data["done"] == 12 and data["stopped"] is None
    assert data["compare"] == "promptlab compare v1 v2 --experiment ab"
    assert [v["variant"] for v in data["variants"]] == ["v1", "v2"]
    assert data["variants"][0]["primary_mean"] == 1.0


def test_run_without_a_name(exp_project, toml, rows) -> None:
    result = run("experiment", "run")
    assert result.exit_code == 2
    assert result.stderr == ("Error: no experiment files in experiments/; create "
                             "experiments/NAME.toml (see docs/experiments.md)\n")
    exp_project.write("only", toml(), rows)
    result = run("experiment", "run", "-q")
    assert result.exit_code == 0 and "--experiment only" in result.stdout
    exp_project.write("other", toml(), rows)
    result = run("experiment", "run")
    assert result.exit_code == 2
    assert result.stderr == ("Error: 2 experiments in experiments/: only, other; name one: "
                             "promptlab experiment run NAME\n")


def test_missing_provider_table(exp_project, rows) -> None:
    exp_project.write("ab", 'prompt = "code-review"\n[variants]\nv1 = 1\n[dataset]\n'
                            'path = "data.jsonl"\n', rows)
    result = run("experiment", "run", "ab")
    assert result.exit_code == 2
    assert result.stderr.startswith("Error: ab.toml: no [provider] table; add one")


def test_list_and_status(exp_project, toml, rows) -> None:
    exp_project.write("ab", toml(variants="v1 = 30\nv2 = 70").replace(
        'prompt =', 'description = "two versions"\nprompt ='), rows)
    exp_project.write("broken", "prompt = ")
    result = run("experiment", "list")
    assert result.stdout.splitlines()[0].split() == [
        "name", "prompt", "variants", "design", "items", "provider", "primary", "description"]
    assert result.stdout.splitlines()[2].split() == [
        "ab", "code-review", "v1:30", "v2:70", "paired", "6", "echo", "(all)", "two",
        "versions"]  # no [metrics] table: compare judges every metric
    assert "broken" in result.stdout.splitlines()[3]
    assert result.stderr == ("Warning: experiments/broken.toml: invalid TOML: Invalid value "
                             "(at end of document)\n")
    listed = json.loads(run("experiment", "list", "--json").stdout)
    assert listed[0]["variants"] == {"v1": 30.0, "v2": 70.0} and listed[0]["items"] == 6
    assert listed[1]["name"] == "broken" and "invalid TOML" in listed[1]["error"]

    status = run("experiment", "status", "ab")
    # before the first run: the configured variants, and that nothing ran (no "versions –")
    lines = status.stdout.splitlines()
    assert lines[2].split() == ["v1", "v1", "(not", "run)", "30.0%", "–", "0", "0", "0", "–",
                                "0", "0"]
    assert lines[-1] == ("No calls logged for ab yet: nothing has run. Configured: v1 30%, "
                         "v2 70%; run: promptlab experiment run ab")
    run("experiment", "run", "ab", "-q")
    status = run("experiment", "status", "ab")
    lines = status.stdout.splitlines()
    assert lines[0].split() == ["variant", "version", "configured", "observed", "units",
                                "cells", "errors", "error_rate", "scorer_errors", "runs"]
    assert lines[2].split() == ["v1", "v1", "30.0%", "–", "6", "6", "0", "0.0%", "0", "1"]
    assert lines[-1].startswith("Last run ") and "12 cells, 0 errors" in lines[-1]
    data = json.loads(run("experiment", "status", "ab", "--json").stdout)
    assert data["last_run"]["per_variant"] == {"v1": 6, "v2": 6}


def test_status_counts_live_traffic(exp_project, toml, rows) -> None:
    from promptlab.logs.logger import Logger

    exp_project.write("live", toml(variants="v1 = 50\nv2 = 50", scorers=""), rows)
    exp = load_experiment("live")
    logger = Logger(exp_project.log_dir)
    for n in range(200):
        with logger.call(exp.render(f"user-{n}", code="x")) as call:
            call.finish(response="ok")
    assert run("experiment", "status", "live").stdout.splitlines()[-1] == (
        "200 calls logged from live traffic; no experiment runs yet.")
    data = json.loads(run("experiment", "status", "live", "--json").stdout)
    observed = {r["variant"]: r["observed"] for r in data["variants"]}
    assert abs(observed["v1"] - 0.5) < 0.1 and observed["v1"] + observed["v2"] == 1.0
    assert data["cells"] == 200 and data["last_run"] is None


def test_progress_reporters() -> None:
    from promptlab.experiments.progress import LineReporter, TtyReporter
    from promptlab.experiments.runner import Progress

    out: list[str] = []
    tty = TtyReporter(out.append, columns=200)
    tty.update(Progress(total=100, done=25, errors=2, cache_hits=3, in_flight=4, elapsed_s=5))
    assert out[-1] == ("\r[██████░░░░░░░░░░░░░░░░░░] 25/100 cells · 2 errors, 3 cached · "
                       "5.0/s · ETA 0:15")
    tty.note("Stopping")
    assert out[-1].endswith("\rStopping\n")
    lines: list[str] = []
    plain = LineReporter(lines.append, interval_s=0)
    plain.update(Progress(total=10, done=5, errors=1, cache_hits=0, in_flight=1, elapsed_s=2))
    assert lines == ["progress: 5/10 cells (50%), 1 error, 2.5 cells/s, ETA 0:02\n"]
    plain.finish(Progress(total=10, done=10, errors=1, cache_hits=0, in_flight=0, elapsed_s=4))
    assert lines[-1] == "progress: 10/10 cells (100%), 1 error, 2.5 cells/s in 4.0s\n"


def test_console_script_runs_an_experiment(console_script: str, exp_project, toml, rows) -> None:
    exp_project.write("ab", toml(), rows)
    argv = [console_script]
    proc = subprocess.run([*argv, "experiment", "run", "ab"], cwd=exp_project.root,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().endswith("Next: promptlab compare v1 v2 --experiment ab")
    assert len(exp_project.entries()) == 12
    bad = subprocess.run([*argv, "experiment", "run", "nope"], cwd=exp_project.root,
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2
    assert bad.stderr == "Error: no experiment 'nope' in experiments/; known: ab\n"
    assert "Traceback" not in bad.stderr
    # a run where every cell failed is a failed process, not a green one
    (exp_project.experiments / "down.py").write_text(
        "def answer(text):\n    raise ConnectionError('model is down')\n")
    exp_project.write("down", toml('type = "python"\nfunction = "down.py:answer"'), rows[:2])
    down = subprocess.run([*argv, "experiment", "run", "down"], cwd=exp_project.root,
                          capture_output=True, text=True, timeout=60)
    assert down.returncode == 1 and "Next:" not in down.stdout
    assert down.stderr.splitlines()[-1] == (
        "Error: the run failed: 4 of 4 cells failed (100%), more than [run] max_error_rate = "
        "0.5; fix the cause, then continue with: promptlab experiment run down --resume")



def test_dry_run_checks_provider_and_scorers_without_calling(exp_project, toml, rows,
                                                             monkeypatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    exp_project.write("ab", toml('type = "openai"\nmodel = "gpt-4o-mini"'), rows)
    result = run("experiment", "run", "ab", "--dry-run")
    assert result.exit_code == 2
    assert result.stderr == ("Error: experiments/ab.toml [provider]: environment variable "
                             "OPENAI_API_KEY is not set; export OPENAI_API_KEY=… or point "
                             "api_key_env at the variable holding your key\n")
    exp_project.write("ab", toml(scorers='[[scorers]]\nname = "j"\ntype = "llm_judge"\n'
                                         'prompt = "no-such-judge"\n'), rows)
    result = run("experiment", "run", "ab", "--dry-run")
    assert result.exit_code == 2
    assert result.stderr.startswith("Error: experiments/ab.toml: [[scorers]] 'j': judge prompt: "
                                    "unknown prompt 'no-such-judge'")
    assert exp_project.entries() == []
