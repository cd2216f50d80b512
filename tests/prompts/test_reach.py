"""What a user reaches for (issue 12, item 7): a .gitignore from `init`, a warning when the
call logs are tracked by git, "did you mean" for a mistyped command, and --log-dir only
where logs are read or written."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from promptlab.cli import main


def run(*args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(main, list(args))


def git(root: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True,
                          check=True).stdout


# -- init writes a .gitignore ----------------------------------------------------------------


def test_init_writes_a_gitignore_that_keeps_logs_out_of_git(tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PROMPTLAB_LOG_DIR")
    result = run("init")
    assert "created  .gitignore" in result.output
    assert (tmp_path / ".gitignore").read_text().splitlines()[1:] == [
        "/.promptlab/logs/", "cache.db", "index.db"]
    assert run("experiment", "run", "sentiment").exit_code == 0
    logs = list((tmp_path / ".promptlab/logs").glob("*.jsonl"))
    assert logs and (tmp_path / ".promptlab/logs/cache.db").exists()
    git(tmp_path, "init", "-q")
    git(tmp_path, "add", "-A")
    staged = git(tmp_path, "diff", "--cached", "--name-only").split()
    assert "prompts/sentiment/v1.txt" in staged
    assert not [p for p in staged if p.startswith(".promptlab/") or p.endswith(".db")]


def test_init_appends_only_missing_lines_and_never_rewrites(tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".gitignore").write_text("node_modules/\ncache.db")  # no final newline
    result = run("init")
    assert "updated  .gitignore (added /.promptlab/logs/, index.db)" in result.output
    lines = (tmp_path / ".gitignore").read_text().splitlines()
    assert lines[:2] == ["node_modules/", "cache.db"]
    assert lines[3:] == ["/.promptlab/logs/", "index.db"]
    again = run("init")
    assert "skipped  .gitignore (already ignores the logs)" in again.output
    assert (tmp_path / ".gitignore").read_text().splitlines() == lines


def test_init_gitignore_follows_the_configured_log_dir(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "pyproject.toml").write_text('[tool.promptlab]\nlog_dir = "var/calls"\n')
    run("init")
    assert "/var/calls/" in (tmp_path / ".gitignore").read_text().splitlines()


# -- check warns when logs are tracked -------------------------------------------------------


def test_check_warns_when_call_logs_are_tracked(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    logs = project / "logs"
    logs.mkdir()
    (logs / "2026-01-02.jsonl").write_text(json.dumps({"v": 1, "id": "a"}) + "\n")
    (logs / "cache.db").write_bytes(b"")
    monkeypatch.setenv("PROMPTLAB_LOG_DIR", str(logs))
    git(project, "init", "-q")
    git(project, "add", "-A")
    result = run("check")
    assert result.exit_code == 0, result.output
    assert ("Warning: 2 log or cache file(s) in " + str(logs) + " are tracked by git "
            "(logs/2026-01-02.jsonl, logs/cache.db); they hold every prompt and response: "
            "'git rm --cached' them and add the folder to .gitignore") in result.stderr
    assert json.loads(run("check", "--json").stdout)["warnings"] == [
        result.stderr.split("Warning: ")[1].splitlines()[0]]
    git(project, "rm", "-q", "--cached", "-r", "logs")
    assert "tracked by git" not in run("check").stderr


# -- did you mean -----------------------------------------------------------------------------


@pytest.mark.parametrize(("typed", "meant"), [("rendr", "'render'"), ("histroy", "'history'"),
                                              ("promot", "'promote' or 'prompts'"), ("chek", "'check'")])
def test_mistyped_command_suggests_the_right_one(typed: str, meant: str) -> None:
    result = run(typed)
    assert result.exit_code == 2
    assert f"Error: No such command '{typed}'. Did you mean {meant}?" in result.stderr


def test_unrelated_command_gets_no_suggestion() -> None:
    result = run("xyzzy")
    assert result.exit_code == 2
    assert "Did you mean" not in result.stderr


# -- --log-dir only where logs are read or written --------------------------------------------


@pytest.mark.parametrize("command", ["prompts", "render", "new", "promote", "history", "diff",
                                     "init"])
def test_commands_that_never_touch_logs_offer_no_log_dir(command: str) -> None:
    result = run(command, "--help")
    assert result.exit_code == 0
    assert "--log-dir" not in result.output


def test_check_reads_logs_and_offers_log_dir(project: Path, tmp_path: Path) -> None:
    assert "--log-dir" in run("check", "--help").output
    assert run("check", "--log-dir", str(tmp_path / "nowhere")).exit_code == 0
    assert "--prompts-dir" in run("render", "--help").output
