"""Reading a prompt folder's git log: each commit with the files it changed, directly in
the folder (`git log --raw`, merges seen from their first parent)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from promptlab.history._names import version_of

if TYPE_CHECKING:  # pragma: no cover
    from git import Repo

SYMLINK_MODE = "120000"
_ZERO = re.compile(r"^0+$")


@dataclass(frozen=True)
class Change:
    """One file changed by one commit (first-parent view for merges)."""

    name: str  # file name inside the prompt folder
    status: str  # A, M, D, T
    old_mode: str
    new_mode: str
    old_blob: str | None
    new_blob: str | None


@dataclass
class Commit:
    sha: str
    parents: list[str]
    author: str
    email: str
    date: str
    subject: str
    changes: list[Change] = field(default_factory=list)


def read_log(repo: Repo, folder_rel: str, rev: str, *, reverse: bool) -> list[Commit]:
    """Every commit reachable from `rev` that touched a file directly in `folder_rel`."""
    spec = f":(glob){_glob_escape(folder_rel)}/*"
    args = [rev, "--format=%x1e%H%x1f%P%x1f%an%x1f%ae%x1f%aI%x1f%s", "--raw", "--no-renames",
            "--no-abbrev", "-z", "--diff-merges=combined", "--topo-order"]
    if reverse:
        args.append("--reverse")
    text = repo.git.log(*args, "--", spec)
    commits = []
    for chunk in text.split("\x1e"):
        if not chunk.strip("\n\x00"):
            continue
        header, _, rest = chunk.partition("\x00")
        sha, parents, author, email, date, subject = header.split("\x1f", 5)
        commit = Commit(sha, parents.split(), author, email, date, subject)
        tokens = rest.lstrip("\n").split("\x00")
        i = 0
        while i < len(tokens):
            meta = tokens[i]
            if not meta.startswith(":"):
                i += 1
                continue
            path = tokens[i + 1] if i + 1 < len(tokens) else ""
            i += 2
            change = _parse_raw(meta, path, folder_rel)
            if change is not None:
                commit.changes.append(change)
        commits.append(commit)
    return commits


def _glob_escape(text: str) -> str:
    return re.sub(r"([*?\[\]\\])", r"\\\1", text)


def _parse_raw(meta: str, path: str, folder_rel: str) -> Change | None:
    """One `--raw` line; a merge's combined line (`::…`) is read from the first parent."""
    parents = len(meta) - len(meta.lstrip(":"))
    fields = meta.lstrip(":").split()
    modes, blobs, status = fields[: parents + 1], fields[parents + 1 : 2 * parents + 2], fields[-1]
    name = path[len(folder_rel) + 1 :] if path.startswith(folder_rel + "/") else path
    if "/" in name:
        return None
    old_blob, new_blob = blobs[0], blobs[-1]
    return Change(name=name, status=status[0], old_mode=modes[0], new_mode=modes[-1],
                  old_blob=None if _ZERO.match(old_blob) else old_blob,
                  new_blob=None if _ZERO.match(new_blob) else new_blob)


def version_changes(c: Commit) -> dict[str, list[Change]]:
    """A commit's changes to version files, by version name."""
    out: dict[str, list[Change]] = {}
    for ch in c.changes:
        version = version_of(ch.name)
        if version and SYMLINK_MODE not in (ch.old_mode, ch.new_mode):
            out.setdefault(version, []).append(ch)
    return out
