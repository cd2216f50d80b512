"""Diffs of prompt texts: git-style unified diff lines, and a version file's bytes at a
revision (`promptlab diff --rev`)."""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from pathlib import Path

from promptlab.errors import GitError
from promptlab.history._repo import open_repo, repo_path, resolve_commit


def unified_diff(a: str, b: str, a_name: str, b_name: str, context: int = 3) -> list[str]:
    """Unified diff lines (no line ends); empty when the texts are equal.

    Like git, a last line without a newline is followed by "\\ No newline at end of file".
    """
    lines = []
    for line in difflib.unified_diff(_lines(a), _lines(b), a_name, b_name, n=context):
        if line.endswith("\n"):
            lines.append(line[:-1])
        else:
            lines.extend((line, "\\ No newline at end of file"))
    return lines


def _lines(text: str) -> list[str]:
    """Lines with their ends, split on "\\n" only (not on form feeds or U+2028)."""
    return re.findall(r"[^\n]*\n|[^\n]+$", text)


@dataclass(frozen=True)
class Revision:
    """A version file's bytes at a git revision."""

    data: bytes
    commit: str
    short: str
    rev: str


def file_at_revision(path: Path, rev: str, *, purpose: str = "diff --rev") -> Revision:
    """The content `path` had at `rev`, or a GitError naming what is missing."""
    import git

    with open_repo(path, purpose=purpose) as repo:
        rel = repo_path(repo, path)
        sha = resolve_commit(repo, rev, purpose=purpose)
        commit = repo.commit(sha)
        try:
            data = (commit.tree / rel).data_stream.read()
        except KeyError:
            try:
                ever = repo.git.log("--all", "-1", "--format=%h", "--", rel).strip()
            except git.GitCommandError:
                ever = ""
            if not ever:
                raise GitError(f"{purpose}: {rel} was never committed; commit it before "
                               "comparing it with a revision") from None
            raise GitError(f"{purpose}: {rel} does not exist at {rev} ({sha[:7]}); pick a "
                           f"revision that has it (see 'git log -- {rel}')") from None
        return Revision(data=data, commit=sha, short=sha[:7], rev=rev)
