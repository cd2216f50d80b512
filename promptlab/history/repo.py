"""Reading the repository that holds the prompts: opening it (GitPython, imported lazily),
a prompt folder's log, what the file names and label blobs in it mean, and following each
version's text through the commits.

Every failure is a GitError whose message starts with what the user was doing.
"""

from __future__ import annotations

import re
from collections.abc import Container, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from promptlab.errors import GitError
from promptlab.history.stamp import shallow_commits
from promptlab.registry import VERSION_EXTS, is_version_name, label_of

if TYPE_CHECKING:  # pragma: no cover
    from git import Repo

SYMLINK_MODE = "120000"
_ZERO = re.compile(r"0+")


# -- opening the repository ---------------------------------------------------------------


class NotARepositoryError(GitError):
    """The prompts are not inside a git working tree."""


class NoCommitsError(GitError):
    """The repository exists but HEAD has no commit yet."""


def open_repo(path: Path, *, purpose: str) -> Repo:
    """The repository holding `path`; `purpose` starts every error message (e.g. "history")."""
    try:
        import git
    except ImportError as exc:  # GitPython refuses to import without a git executable
        raise GitError(f"{purpose}: git is not available ({exc}); install git") from exc
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    try:
        repo = git.Repo(probe, search_parent_directories=True)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError) as exc:
        raise NotARepositoryError(
            f"{purpose}: {path} is not inside a git repository; run 'git init' and commit "
            "your prompts"
        ) from exc
    if repo.bare or repo.working_tree_dir is None:
        raise NotARepositoryError(f"{purpose}: {repo.git_dir} is a bare repository; run this "
                                  "in a clone with a working tree")
    return repo


def repo_path(repo: Repo, path: Path) -> str:
    """`path` relative to the repository root, with '/' separators."""
    root = Path(str(repo.working_tree_dir)).resolve()
    real = path.parent.resolve() / path.name  # a label symlink is a file of its own
    try:
        return real.relative_to(root).as_posix()
    except ValueError:
        raise NotARepositoryError(f"{path} is outside the git repository at {root}") from None


def has_commits(repo: Repo) -> bool:
    return repo.head.is_valid()


def shallow_boundaries(repo: Repo) -> set[str]:
    """Commits whose parents this (shallow) clone does not have."""
    return shallow_commits(repo.common_dir)


def resolve_commit(repo: Repo, rev: str, *, purpose: str) -> str:
    """The full commit id `rev` names, or a GitError saying why there is none."""
    import git

    if not has_commits(repo):
        raise NoCommitsError(f"{purpose}: the repository at {repo.working_tree_dir} has no "
                             "commits yet; commit your prompts first")
    try:
        return repo.git.rev_parse("--verify", "--quiet", "--end-of-options",
                                  f"{rev}^{{commit}}").strip()
    except git.GitCommandError:
        hint = (" (this is a shallow clone: 'git fetch --unshallow' fetches older commits)"
                if shallow_boundaries(repo) else "; try a branch, tag or commit id")
        raise GitError(f"{purpose}: unknown revision {rev!r}{hint}") from None


# -- what a file name in a prompt folder stands for -----------------------------------------


def version_of(filename: str) -> str | None:
    """`v2.txt` -> `v2`; None for anything that is not a version file name."""
    stem, dot, ext = filename.partition(".")
    return stem if dot and f".{ext}" in VERSION_EXTS and is_version_name(stem) else None


def version_named(text: str) -> str | None:
    """The version a label's text names (`v2` or `v2.txt`), or None."""
    return text if is_version_name(text) else version_of(text)


# -- a prompt folder's log --------------------------------------------------------------------


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
    """Every commit reachable from `rev` that touched a file directly in `folder_rel`
    (`git log --raw`, merges seen from their first parent)."""
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
                  old_blob=None if _ZERO.fullmatch(old_blob) else old_blob,
                  new_blob=None if _ZERO.fullmatch(new_blob) else new_blob)


def version_changes(c: Commit) -> dict[str, list[Change]]:
    """A commit's changes to version files, by version name."""
    out: dict[str, list[Change]] = {}
    for ch in c.changes:
        version = version_of(ch.name)
        if version and SYMLINK_MODE not in (ch.old_mode, ch.new_mode):
            out.setdefault(version, []).append(ch)
    return out


# -- what a label file said at a commit --------------------------------------------------------


class Blobs:
    """Reads small blobs (label targets) through GitPython's persistent cat-file."""

    def __init__(self, repo: Repo):
        self.repo = repo
        self.cache: dict[str, bytes] = {}

    def read(self, sha: str | None, limit: int = 4096) -> bytes | None:
        if sha is None:
            return None
        if sha not in self.cache:
            stream = self.repo.odb.stream(bytes.fromhex(sha))
            self.cache[sha] = stream.read() if stream.size <= limit else b""
        return self.cache[sha]


def label_target(blob: str | None, blobs: Blobs) -> str | None:
    """What a label file said at one commit: a version name, or the raw target in quotes."""
    data = blobs.read(blob)
    if data is None:
        return None
    text = data.decode("utf-8", "replace").strip()
    return version_named(text[2:] if text.startswith("./") else text) or repr(text)


def is_label(name: str, mode: str, blob: str | None, blobs: Blobs) -> bool:
    if mode == SYMLINK_MODE:
        return label_of(name) is not None
    if "." in name or label_of(name) is None or blob is None:
        return False
    data = blobs.read(blob, limit=64) or b""
    return version_named(data.decode("utf-8", "replace").strip()) is not None


# -- following each version's text -------------------------------------------------------------


class VersionTracker:
    """Follows each version name's text through history, oldest commit first, so that an
    edit of a committed version (or a revert of one) is recognised as such."""

    def __init__(self) -> None:
        self.first: dict[str, tuple[str, str]] = {}  # version -> (blob, commit it appeared in)
        self.names: dict[str, str] = {}  # version -> its file's name in that commit
        self.current: dict[str, str | None] = {}  # version -> blob at the last commit seen
        self.diverged: dict[str, str] = {}  # version -> commit that moved it off its first text

    def see(self, version: str, blob: str | None, commit: str, parent: str | None,
            name: str | None = None) -> str:
        """Record `version` holding `blob` (None = removed) after `commit`, whose parent held
        `parent`; return how that reads: added, restored, unchanged, edited, re-added
        (removed earlier, back with other text) or parallel (added on another branch with
        other text). `name` is the version's file name (`v2.txt`) at `commit`."""
        linear = self.current.get(version)
        self.current[version] = blob
        if blob is None:
            self.diverged.pop(version, None)
            return "removed"
        if version not in self.first:
            self.first[version] = (blob, commit)
            if name is not None:
                self.names[version] = name
            return "added"
        original = self.first[version][0]
        if blob == original:
            self.diverged.pop(version, None)
            if parent == original:
                return "unchanged"
            return "restored" if parent is not None or linear is None else "added"
        if parent == original or version not in self.diverged:
            self.diverged[version] = commit
        if parent is not None:
            return "edited"
        return "re-added" if linear is None else "parallel"

    def see_changes(self, version: str, changes: list[Change], commit: str) -> str:
        """`see` for one commit's changes to the files of `version`: its blob once the commit
        is applied (None: gone) against its blob in the first parent (None: did not exist)."""
        added = next((ch for ch in changes if ch.new_blob is not None), None)
        before = next((ch.old_blob for ch in changes if ch.old_blob is not None), None)
        return self.see(version, added.new_blob if added else None, commit, before,
                        added.name if added else None)

    def follow(self, commits: Iterable[Commit], only: Container[str] | None = None) -> None:
        """`see` every version change in `commits` (oldest first), or only those in `only`."""
        for c in commits:
            for version, changes in version_changes(c).items():
                if only is None or version in only:
                    self.see_changes(version, changes, c.sha)
