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
