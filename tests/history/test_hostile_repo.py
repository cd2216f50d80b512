"""Repositories in odd states: --commit refuses before any file changes."""

from __future__ import annotations

import os

from click.testing import CliRunner

from promptlab.cli import main


def run(*args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(main, list(args))


def test_commit_refused_on_a_detached_head(gitproject) -> None:
    g = gitproject
    g.write("code-review/v1.txt", g.V1)
    g.link("code-review/current", "v1.txt")
    g.commit("Add code-review")
    g.git("checkout", "-q", "--detach", "HEAD")
    head = g.short("HEAD")
    for args in (["new", "code-review", "--commit"], ["new", "other", "--commit"],
                 ["promote", "code-review", "v1", "--label", "prod", "--commit"]):
        result = run(*args)
        assert result.exit_code == 2 and "Traceback" not in result.output
        assert "HEAD is detached" in result.stderr and "git switch -c NAME" in result.stderr
    assert g.short("HEAD") == head  # no commit on no branch
    assert not (g.prompts / "code-review" / "v2.txt").exists()  # nothing written
    assert not (g.prompts / "other").exists()
    assert not os.path.lexists(g.prompts / "code-review" / "prod")


def test_names_from_a_commit_cannot_drive_the_terminal(gitproject) -> None:
    g = gitproject
    g.write("code-review/v1.txt", g.V1)
    g.link("code-review/current", "v1.txt")
    g.commit("Add code-review")
    g.write("code-review/esc\x1b]0;pwned\x07.txt", "x")
    g.link("code-review/lab\nel", "v1.txt")
    g.commit("title \x1b[31mred")
    result = run("history", "code-review")
    assert result.exit_code == 0, result.output
    assert "\x1b" not in result.output and "\x07" not in result.output
    assert "title \\x1b[31mred" in result.output
    assert "added esc\\x1b]0;pwned\\x07.txt" in result.output
    assert "lab\\nel" in result.output  # one table row, not split over two lines
    check = run("check", "--no-logs")
    assert check.exit_code == 1 and "\x1b" not in check.output
    assert "prompts/code-review/lab\\nel: lab\\nel is a link but cannot be a label" in check.output
    data = run("history", "code-review", "--json").output
    assert "\\u001b" in data  # JSON keeps the exact text, escaped by JSON itself
