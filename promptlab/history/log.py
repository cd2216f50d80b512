"""A prompt's past: `promptlab history` (every commit that touched a prompt, in prompt terms:
"added v3", "edited v2 (!)", "current: v1 -> v2"), a version file's bytes at a revision, and
git-style unified diffs of prompt texts (`promptlab diff`)."""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from promptlab.errors import GitError
from promptlab.history.repo import (
    Blobs,
    Change,
    Commit,
    NotARepositoryError,
    VersionTracker,
    has_commits,
    is_label,
    label_of,
    label_target,
    open_repo,
    read_log,
    repo_path,
    resolve_commit,
    shallow_boundaries,
    version_changes,
)
from promptlab.registry import Registry, validate_id


@dataclass(frozen=True)
class HistoryRow:
    """One commit that touched a prompt, described in prompt terms."""

    commit: str
    short: str
    date: str  # author date, ISO 8601 with offset
    author: str
    email: str
    subject: str
    changes: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"commit": self.commit, "short": self.short, "date": self.date,
                "author": self.author, "email": self.email, "subject": self.subject,
                "changes": list(self.changes)}


@dataclass(frozen=True)
class History:
    prompt_id: str
    folder: str  # repository-relative folder
    rows: list[HistoryRow]
    shallow_boundary: str | None = None  # set when older history was not fetched


def prompt_history(registry: Registry, prompt_id: str, rev: str = "HEAD") -> History:
    """Every commit reachable from `rev` that touched `prompts/<id>/`, newest first."""
    validate_id(prompt_id)
    folder = registry.prompt_dir(prompt_id)
    try:
        repo = open_repo(folder, purpose="history")
    except NotARepositoryError:
        if not folder.is_dir():  # nothing to show either way: name the typo, not git
            registry.versions(prompt_id)  # raises "unknown prompt … known prompts: …"
        raise
    with repo:
        folder_rel = repo_path(repo, folder)
        if not folder.is_dir() and not has_commits(repo):
            registry.versions(prompt_id)
        commit = resolve_commit(repo, rev, purpose="history")
        commits = read_log(repo, folder_rel, commit, reverse=True)
        if not commits and not folder.is_dir():
            registry.versions(prompt_id)  # raises "unknown prompt … did you mean …"
        boundaries = shallow_boundaries(repo)
        blobs = Blobs(repo)
        tracker = VersionTracker()
        rows: list[HistoryRow] = []
        shallow_at = None
        for c in commits:
            changes = _describe(c, tracker, blobs)
            if c.sha in boundaries:
                shallow_at = c.sha
                changes = ["history before this commit not fetched (shallow clone)"]
            elif len(c.parents) > 1 and not changes:
                changes = ["merge (no changes of its own)"]
            rows.append(HistoryRow(commit=c.sha, short=c.sha[:7], date=c.date, author=c.author,
                                   email=c.email, subject=c.subject, changes=tuple(changes)))
    rows.reverse()
    return History(prompt_id, folder_rel, rows, shallow_at)


def _describe(c: Commit, tracker: VersionTracker, blobs: Blobs) -> list[str]:
    """A commit's changes to one prompt folder, as "added v3", "current: v1 -> v2", …."""
    versions = version_changes(c)
    labels: list[tuple[str, str]] = []
    others: list[tuple[str, str]] = []
    in_versions = {id(ch) for changes in versions.values() for ch in changes}
    for ch in c.changes:
        if id(ch) in in_versions:
            continue
        old_label = ch.old_blob is not None and is_label(ch.name, ch.old_mode, ch.old_blob, blobs)
        new_label = ch.new_blob is not None and is_label(ch.name, ch.new_mode, ch.new_blob, blobs)
        if old_label or new_label:
            label = label_of(ch.name) or ch.name
            old = label_target(ch.old_blob, blobs) if old_label else None
            new = label_target(ch.new_blob, blobs) if new_label else None
            labels.append((label, f"{label}: {old or '(none)'} -> {new or '(removed)'}"))
        else:
            verb = {"A": "added", "D": "removed"}.get(ch.status, "edited")
            others.append((ch.name, f"{verb} {ch.name}"))
    lines = []
    for version in sorted(versions, key=lambda v: int(v[1:])):
        lines.extend(_describe_version(version, versions[version], tracker, c.sha))
    lines.extend(text for _, text in sorted(labels))
    lines.extend(text for _, text in sorted(others))
    return lines


def _describe_version(version: str, changes: list[Change], tracker: VersionTracker,
                      commit: str) -> list[str]:
    added = [ch for ch in changes if ch.new_blob is not None]
    removed = [ch for ch in changes if ch.new_blob is None]
    how = tracker.see_changes(version, changes, commit)
    if len(added) > 1:  # two files for one version (v2.txt and v2.j2): a problem in itself
        names = " and ".join(ch.name for ch in added)
        return [f"added {names} (!) (two files for {version})"]
    if len(added) == 1 and len(removed) == 1 and added[0].status == "A":
        old, new = removed[0], added[0]  # v2.txt -> v2.j2 in one commit
        mark = " (!)" if how != "unchanged" else ""
        return [f"renamed {old.name} -> {new.name}{mark}"]
    if how == "parallel":
        first = tracker.first[version][1][:7]
        return [f"added {version} (!) (another {version} text was committed in {first})"]
    return [{
        "removed": f"removed {version}",
        "added": f"added {version}",
        "restored": f"restored {version}",
        "unchanged": f"touched {version}",
        "edited": f"edited {version} (!)",
        "re-added": f"re-added {version} with new text (!)",
    }[how]]


# -- diffs -------------------------------------------------------------------------------------


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
