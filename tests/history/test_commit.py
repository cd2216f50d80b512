"""`promptlab new --commit` and `promptlab promote --commit`: commit only the prompt's files."""

from __future__ import annotations

import os
import subprocess

import pytest
from click.testing import CliRunner

from promptlab.cli import main


def run(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


@pytest.fixture
def released(gitproject):
    """code-review with v1 and v2 committed, current -> v1."""
    g = gitproject
    g.write("code-review/v1.txt", g.V1)
    g.write("code-review/v2.txt", g.V2)
    g.link("code-review/current", "v1.txt")
    g.commit("Add code-review")
    return g


def last_commit(g) -> tuple[str, list[str]]:
    subject = g.git("log", "-1", "--format=%s")
    files = g.git("show", "--name-only", "--format=", "HEAD").splitlines()
    return subject, files


def test_promote_commit_commits_only_the_label(released):
    g = released
    (g.root / "notes.txt").write_text("unrelated, unstaged\n")
    g.write("code-review/v2.txt", g.V2)  # untouched
    result = run("promote", "code-review", "v2", "--commit")
    assert result.exit_code == 0, result.output
    assert result.stdout == "code-review: current v1 -> v2\n"
    assert result.stderr == f"Committed {g.short('HEAD')}: promote code-review: current v1 -> v2\n"
    assert last_commit(g) == ("promote code-review: current v1 -> v2",
                              ["prompts/code-review/current"])
    assert g.git("status", "--porcelain") == "?? notes.txt"
    assert os.readlink(g.prompts / "code-review" / "current") == "v2.txt"


def test_promote_commit_with_message_and_other_label(released):
    result = run("promote", "code-review", "v2", "-l", "production", "--commit", "-m",
                 "Ship v2 (experiment 12)")
    assert result.exit_code == 0, result.output
    assert result.stdout == "code-review: production (none) -> v2\n"
    assert last_commit(released) == ("Ship v2 (experiment 12)", ["prompts/code-review/production"])


def test_promote_message_describes_the_committed_label(released):
    g = released
    g.link("code-review/current", "v2.txt")  # moved on disk, not committed
    result = run("promote", "code-review", "v2", "--commit")
    assert result.stdout == "code-review: current v2 -> v2\n"
    assert last_commit(g)[0] == "promote code-review: current v1 -> v2"


def test_promote_nothing_to_commit(released):
    head = released.short("HEAD")
    result = run("promote", "code-review", "v1", "--commit")
    assert result.exit_code == 0
    assert result.stderr == "Nothing to commit: current already committed as is.\n"
    assert released.short("HEAD") == head


def test_new_commit_commits_only_the_new_version(released):
    g = released
    g.write("code-review/v1.txt", g.V1 + "edited but not staged\n")
    result = run("new", "code-review", "--commit")
    assert result.exit_code == 0, result.output
    assert result.stdout == f"{g.prompts / 'code-review' / 'v3.txt'}\n"
    assert result.stderr == f"Committed {g.short('HEAD')}: new code-review: add v3\n"
    assert last_commit(g) == ("new code-review: add v3", ["prompts/code-review/v3.txt"])
    assert g.git("status", "--porcelain") == "M prompts/code-review/v1.txt"


def test_new_commit_from_a_version(released):
    run("new", "code-review", "--from", "v2", "--commit")
    assert last_commit(released)[0] == "new code-review: add v3 (copy of v2)"


def test_new_prompt_commits_v1_and_its_label(released):
    result = run("new", "support/triage", "-d", "Route tickets", "--commit")
    assert result.exit_code == 0, result.output
    assert last_commit(released) == ("new support/triage: add v1, current -> v1",
                                     ["prompts/support/triage/current",
                                      "prompts/support/triage/v1.txt"])


def test_first_commit_of_a_repository(gitproject):
    result = run("new", "hello", "--commit", "-m", "Start")
    assert result.exit_code == 0, result.output
    assert last_commit(gitproject) == ("Start", ["prompts/hello/current", "prompts/hello/v1.txt"])


def test_refuses_when_other_changes_are_staged(released):
    g = released
    (g.root / "app.py").write_text("print('hi')\n")
    g.git("add", "app.py")
    head = g.short("HEAD")
    message = ("Error: --commit: other changes are already staged (app.py); commit or unstage "
               "them first (git restore --staged …), or drop --commit\n")
    result = run("promote", "code-review", "v2", "--commit")
    assert (result.exit_code, result.stderr) == (2, message)
    assert os.readlink(g.prompts / "code-review" / "current") == "v1.txt"  # nothing changed
    result = run("new", "code-review", "--commit")
    assert (result.exit_code, result.stderr) == (2, message)
    assert not (g.prompts / "code-review" / "v3.txt").exists()
    assert g.short("HEAD") == head


def test_many_staged_files_are_summarised(released):
    g = released
    for name in "abcde":
        (g.root / f"{name}.txt").write_text(name)
    g.git("add", ".")
    result = run("promote", "code-review", "v2", "--commit")
    assert "(a.txt, b.txt, c.txt and 2 more)" in result.stderr


def test_the_label_itself_may_already_be_staged(released):
    g = released
    g.link("code-review/current", "v2.txt")
    g.git("add", "prompts/code-review/current")
    result = run("promote", "code-review", "v2", "--commit")
    assert result.exit_code == 0, result.output
    assert last_commit(g)[1] == ["prompts/code-review/current"]


def test_not_a_repository(project):
    result = run("promote", "code-review", "v1", "--commit")
    assert result.exit_code == 2
    assert result.stderr == (f"Error: --commit: {project / 'prompts' / 'code-review'} is not "
                             "inside a git repository; run 'git init' and commit your prompts\n")
    assert os.readlink(project / "prompts" / "code-review" / "current") == "v2.txt"
    result = run("new", "code-review", "--commit")
    assert result.exit_code == 2
    assert not (project / "prompts" / "code-review" / "v3.txt").exists()


def test_message_without_commit(project):
    for args in (["promote", "code-review", "v1", "-m", "x"], ["new", "code-review", "-m", "x"]):
        result = run(*args)
        assert (result.exit_code, result.stderr) == (
            2, "Error: -m/--message is the commit message: add --commit\n")
    assert os.readlink(project / "prompts" / "code-review" / "current") == "v2.txt"


def test_bad_version_writes_nothing(released):
    head = released.short("HEAD")
    result = run("promote", "code-review", "v7", "--commit")
    assert result.exit_code == 2
    assert "has no version v7" in result.stderr
    assert released.short("HEAD") == head


def test_merge_in_progress(released):
    (released.root / ".git" / "MERGE_HEAD").write_text(released.sha("HEAD") + "\n")
    result = run("promote", "code-review", "v2", "--commit")
    assert result.exit_code == 2
    assert result.stderr == (f"Error: --commit: a merge is in progress in {released.root}; "
                             "finish it first, or drop --commit\n")


def test_no_identity(released, monkeypatch):
    for key in ("GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL", "GIT_COMMITTER_NAME",
                "GIT_COMMITTER_EMAIL", "EMAIL"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("GIT_CONFIG_COUNT", "1")
    monkeypatch.setenv("GIT_CONFIG_KEY_0", "user.useConfigOnly")
    monkeypatch.setenv("GIT_CONFIG_VALUE_0", "true")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", "/dev/null")
    result = run("promote", "code-review", "v2", "--commit")
    assert result.exit_code == 2
    assert result.stderr == ("Error: --commit: git does not know who you are; set git config "
                             "user.name and user.email, or drop --commit\n")
    assert os.readlink(released.prompts / "code-review" / "current") == "v1.txt"


def test_hook_failure_exits_1_and_says_what_is_left(released):
    hook = released.root / ".git" / "hooks" / "pre-commit"
    hook.write_text("#!/bin/sh\necho 'prompt review required' >&2\nexit 1\n")
    hook.chmod(0o755)
    result = run("promote", "code-review", "v2", "--commit")
    assert result.exit_code == 1
    assert result.stderr == ("Error: --commit: git could not commit prompts/code-review/current: "
                             "prompt review required; the files are changed but not committed\n")


def test_console_script(console_script: str, released):
    done = subprocess.run([console_script, "promote", "code-review", "v2", "--commit"],
                          cwd=released.root, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "code-review: current v1 -> v2\n"
    assert last_commit(released)[0] == "promote code-review: current v1 -> v2"
