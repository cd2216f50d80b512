"""Prompts in git: provenance for the render stamp, history, diffs against revisions, the
immutability check, and committing a prompt's files.

`provenance(path)` runs on every render. It never imports GitPython: it answers from a
per-process cache keyed by the file's stat, HEAD and the index, and on a miss shells out to
git twice. Everything else opens the repository with GitPython, imported lazily.

A version is immutable once committed: the text first committed as `code-review/v2` is what
`v2` means forever. `history` marks edits with "(!)", `check` fails while a version's text
differs from it, and both accept a revert ("restored v2") as the fix.
"""

from __future__ import annotations

import difflib
import hashlib
import os
import re
import subprocess
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from promptlab.errors import GitError, TemplateError
from promptlab.registry import VERSION_EXTS, Registry, is_version_name, validate_id

if TYPE_CHECKING:  # pragma: no cover
    from git import Repo


class NotARepositoryError(GitError):
    """The prompts are not inside a git working tree."""


class NoCommitsError(GitError):
    """The repository exists but HEAD has no commit yet."""


class CommitFailedError(GitError):
    """`git commit` itself failed (a hook refused, the disk is full, …)."""

    exit_code = 1


# -- provenance: on the render path, no GitPython ------------------------------------------


@lru_cache(maxsize=256)
def _git_dir_for(folder: str) -> str | None:
    """The git directory governing `folder` (worktrees and submodules included), or None."""
    current = Path(folder)
    for candidate in (current, *current.parents):
        dot_git = candidate / ".git"
        if dot_git.is_dir():
            return str(dot_git)
        if dot_git.is_file():  # linked worktree or submodule: "gitdir: <path>"
            try:
                text = dot_git.read_text(encoding="utf-8").strip()
            except OSError:
                return None
            if text.startswith("gitdir:"):
                gitdir = Path(text[7:].strip())
                return str(gitdir if gitdir.is_absolute() else (candidate / gitdir).resolve())
    return None


@lru_cache(maxsize=256)
def _common_dir(git_dir: str) -> str:
    """Where refs live: a linked worktree shares the main repository's."""
    common = Path(git_dir) / "commondir"
    if common.is_file():
        try:
            rel = common.read_text(encoding="utf-8").strip()
            return str((Path(git_dir) / rel).resolve())
        except OSError:
            pass
    return git_dir


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8") as fh:
            return fh.read()
    except OSError:
        return None


_StatKey = tuple[int, int, int] | None


def _stat(path: str) -> _StatKey:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino)


@lru_cache(maxsize=256)
def _is_reftable(common: str) -> bool:
    return os.path.isdir(os.path.join(common, "reftable"))


# git dir -> (stat of HEAD, the files whose stats say where HEAD is)
_heads: dict[str, tuple[_StatKey, tuple[str, ...] | str]] = {}


def head_state(git_dir: str) -> tuple[Any, ...]:
    """A fingerprint that changes whenever HEAD moves, from stats rather than reads.

    git replaces HEAD, refs, packed-refs and the reftable list by renaming a new file into
    place, so a new commit, checkout or reset always changes a stat seen here. Covers
    detached HEAD, loose and packed refs, unborn branches, linked worktrees and reftable.
    """
    head_path = os.path.join(git_dir, "HEAD")
    st = _stat(head_path)
    seen = _heads.get(git_dir)
    if seen is None or seen[0] != st:
        seen = (st, _ref_files(git_dir, (_read(head_path) or "").strip()))
        _heads[git_dir] = seen
    files = seen[1]
    if isinstance(files, str):
        return (st, files)  # detached: the commit id itself
    loose = _stat(files[0])
    if loose is not None or len(files) == 1:
        return (st, loose)
    return (st, None, _stat(files[1]))  # packed ref, or an unborn branch


def _ref_files(git_dir: str, head: str) -> tuple[str, ...] | str:
    """The files to stat for HEAD's commit: loose ref then packed-refs, or the reftable
    list; a detached HEAD's commit id as a string."""
    if not head.startswith("ref:"):
        return head
    ref = head[4:].strip()
    common = _common_dir(git_dir)
    if _is_reftable(common):
        return (os.path.join(common, "reftable", "tables.list"),)
    return (os.path.join(common, ref), os.path.join(common, "packed-refs"))


_cache: dict[str, tuple[tuple[Any, ...], tuple[str | None, bool | None]]] = {}


def provenance(path: str | os.PathLike[str]) -> tuple[str | None, bool | None]:
    """(last commit touching `path`, whether the file differs from HEAD or is untracked).

    Outside a git repository, or when git is unavailable, both are None. The commit is None
    for a file that is not in HEAD (never committed, or removed and re-created) and in a
    shallow clone when the file was last changed before the clone's depth. Answers are
    cached per process, keyed by the file's stat, HEAD and the index.
    """
    path = os.path.abspath(path)
    git_dir = _git_dir_for(os.path.dirname(path))
    if git_dir is None:
        return None, None
    try:
        st = os.stat(path)
    except OSError:
        return None, None
    key = (head_state(git_dir), st.st_mtime_ns, st.st_size, st.st_ino,
           _stat(os.path.join(git_dir, "index")))
    hit = _cache.get(path)
    if hit is not None and hit[0] == key:
        return hit[1]
    result = _lookup(path, git_dir)
    _cache[path] = (key, result)
    return result


def clear_provenance_cache() -> None:
    """Forget every cached answer (for long-running processes that create repositories)."""
    _cache.clear()
    _heads.clear()
    _git_dir_for.cache_clear()
    _common_dir.cache_clear()
    _is_reftable.cache_clear()


def _git(args: list[str], cwd: str) -> subprocess.CompletedProcess[str] | None:
    try:
        return subprocess.run(["git", "--no-optional-locks", *args], cwd=cwd,
                              capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.SubprocessError):
        return None


def _lookup(path: str, git_dir: str) -> tuple[str | None, bool | None]:
    folder, name = os.path.split(path)
    status = _git(["status", "--porcelain", "--ignored", "--untracked-files=all", "--", name],
                  folder)
    if status is None or status.returncode != 0:
        return None, None  # git missing, or a repository git refuses (safe.directory, …)
    line = status.stdout.splitlines()[0] if status.stdout.strip() else ""
    if line.startswith(("??", "!!", "A")):
        return None, True  # untracked, ignored, or added but not committed
    log = _git(["log", "-1", "--format=%H", "--", name], folder)
    commit = log.stdout.strip() if log is not None and log.returncode == 0 else ""
    if not commit:
        return None, True
    if commit in _shallow_boundaries(git_dir):
        commit = ""  # the file may have changed in history the clone does not have
    dirty = False
    if line:  # staged or unstaged changes: compare the file with HEAD itself
        if line[0] in "RC":
            return None, True  # staged as renamed/copied here: HEAD does not hold this path
        diff = _git(["diff", "--quiet", "HEAD", "--", name], folder)
        dirty = diff is None or diff.returncode != 0
    return commit or None, dirty


def _shallow_boundaries(git_dir: str) -> set[str]:
    text = _read(os.path.join(_common_dir(git_dir), "shallow"))
    return set(text.split()) if text else set()


# -- opening the repository (GitPython) ----------------------------------------------------


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
    text = _read(os.path.join(repo.common_dir, "shallow"))
    return set(text.split()) if text else set()


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


# -- reading a prompt folder's git log ------------------------------------------------------

_ZERO = re.compile(r"^0+$")
_LABEL = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
_SYMLINK_MODE = "120000"


@dataclass(frozen=True)
class _Change:
    """One file changed by one commit (first-parent view for merges)."""

    name: str  # file name inside the prompt folder
    status: str  # A, M, D, T
    old_mode: str
    new_mode: str
    old_blob: str | None
    new_blob: str | None


@dataclass
class _Commit:
    sha: str
    parents: list[str]
    author: str
    email: str
    date: str
    subject: str
    changes: list[_Change] = field(default_factory=list)


def _glob_escape(text: str) -> str:
    return re.sub(r"([*?\[\]\\])", r"\\\1", text)


def _read_log(repo: Repo, folder_rel: str, rev: str, *, reverse: bool) -> list[_Commit]:
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
        commit = _Commit(sha, parents.split(), author, email, date, subject)
        tokens = [t for t in rest.lstrip("\n").split("\x00")]
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


def _parse_raw(meta: str, path: str, folder_rel: str) -> _Change | None:
    """One `--raw` line; a merge's combined line (`::…`) is read from the first parent."""
    parents = len(meta) - len(meta.lstrip(":"))
    fields = meta.lstrip(":").split()
    modes, blobs, status = fields[: parents + 1], fields[parents + 1 : 2 * parents + 2], fields[-1]
    name = path[len(folder_rel) + 1 :] if path.startswith(folder_rel + "/") else path
    if "/" in name:
        return None
    old_blob, new_blob = blobs[0], blobs[-1]
    return _Change(name=name, status=status[0], old_mode=modes[0], new_mode=modes[-1],
                   old_blob=None if _ZERO.match(old_blob) else old_blob,
                   new_blob=None if _ZERO.match(new_blob) else new_blob)


def version_of(filename: str) -> str | None:
    """`v2.txt` -> `v2`; None for anything that is not a version file name."""
    stem, dot, ext = filename.partition(".")
    return stem if dot and f".{ext}" in VERSION_EXTS and is_version_name(stem) else None


def _label_of(filename: str) -> str | None:
    for ext in VERSION_EXTS:
        if filename.endswith(ext):
            filename = filename[: -len(ext)]
            break
    if not _LABEL.match(filename) or is_version_name(filename):
        return None
    return filename


class _Blobs:
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


def _label_target(blob: str | None, blobs: _Blobs) -> str | None:
    """What a label file said at one commit: a version name, or the raw target in quotes."""
    data = blobs.read(blob)
    if data is None:
        return None
    text = data.decode("utf-8", "replace").strip()
    base = text[2:] if text.startswith("./") else text
    version = version_of(base) or (base if is_version_name(base) else None)
    return version or repr(text)


def _is_label(name: str, mode: str, blob: str | None, blobs: _Blobs) -> bool:
    if mode == _SYMLINK_MODE:
        return _label_of(name) is not None
    if "." in name or _label_of(name) is None or blob is None:
        return False
    data = blobs.read(blob, limit=64) or b""
    text = data.decode("utf-8", "replace").strip()
    return is_version_name(text) or version_of(text) is not None


class _VersionTracker:
    """Follows each version name's text through history, oldest commit first."""

    def __init__(self) -> None:
        self.first: dict[str, tuple[str, str]] = {}  # version -> (blob, commit it appeared in)
        self.current: dict[str, str | None] = {}  # version -> blob at the last commit seen
        self.diverged: dict[str, str] = {}  # version -> commit that moved it off its first text

    def see(self, version: str, blob: str | None, commit: str, parent: str | None) -> str:
        """Record `version` holding `blob` (None = removed) after `commit`, whose parent held
        `parent`; return how that reads: added, restored, unchanged, edited, re-added
        (removed earlier, back with other text) or parallel (added on another branch with
        other text)."""
        linear = self.current.get(version)
        self.current[version] = blob
        if blob is None:
            self.diverged.pop(version, None)
            return "removed"
        if version not in self.first:
            self.first[version] = (blob, commit)
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


# -- history ----------------------------------------------------------------------------------


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
    with open_repo(folder, purpose="history") as repo:
        folder_rel = repo_path(repo, folder)
        commit = resolve_commit(repo, rev, purpose="history")
        commits = _read_log(repo, folder_rel, commit, reverse=True)
        if not commits and not folder.is_dir():
            registry.versions(prompt_id)  # raises "unknown prompt … did you mean …"
        boundaries = shallow_boundaries(repo)
        blobs = _Blobs(repo)
        tracker = _VersionTracker()
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


def _version_changes(c: _Commit) -> dict[str, list[_Change]]:
    """A commit's changes to version files, by version name."""
    out: dict[str, list[_Change]] = {}
    for ch in c.changes:
        version = version_of(ch.name)
        if version and _SYMLINK_MODE not in (ch.old_mode, ch.new_mode):
            out.setdefault(version, []).append(ch)
    return out


def _text_after(changes: list[_Change]) -> str | None:
    """The version's blob once the commit is applied (None when it no longer exists)."""
    return next((ch.new_blob for ch in changes if ch.new_blob is not None), None)


def _text_before(changes: list[_Change]) -> str | None:
    """The version's blob in the commit's (first) parent (None when it did not exist)."""
    return next((ch.old_blob for ch in changes if ch.old_blob is not None), None)


def _describe(c: _Commit, tracker: _VersionTracker, blobs: _Blobs) -> list[str]:
    """A commit's changes to one prompt folder, as "added v3", "current: v1 -> v2", …."""
    versions = _version_changes(c)
    labels: list[tuple[str, str]] = []
    others: list[tuple[str, str]] = []
    in_versions = {id(ch) for changes in versions.values() for ch in changes}
    for ch in c.changes:
        if id(ch) in in_versions:
            continue
        old_label = ch.old_blob is not None and _is_label(ch.name, ch.old_mode, ch.old_blob, blobs)
        new_label = ch.new_blob is not None and _is_label(ch.name, ch.new_mode, ch.new_blob, blobs)
        if old_label or new_label:
            label = _label_of(ch.name) or ch.name
            old = _label_target(ch.old_blob, blobs) if old_label else None
            new = _label_target(ch.new_blob, blobs) if new_label else None
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


def _describe_version(version: str, changes: list[_Change], tracker: _VersionTracker,
                      commit: str) -> list[str]:
    added = [ch for ch in changes if ch.new_blob is not None]
    removed = [ch for ch in changes if ch.new_blob is None]
    how = tracker.see(version, _text_after(changes), commit, _text_before(changes))
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


# -- diff -------------------------------------------------------------------------------------


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


# -- check ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Finding:
    """One failed check: the file it is about and why, in one line."""

    path: Path
    prompt_id: str
    check: str  # immutable | template | schema | label | duplicate | logs
    message: str
    line: int | None = None
    version: str | None = None

    def location(self, base: Path | None = None) -> str:
        where = _display(self.path, base)
        return f"{where}:{self.line}" if self.line else where

    def format(self, base: Path | None = None) -> str:
        return f"{self.location(base)}: {self.message}"

    def to_dict(self, base: Path | None = None) -> dict[str, Any]:
        return {"file": _display(self.path, base), "line": self.line,
                "prompt_id": self.prompt_id, "version": self.version, "check": self.check,
                "message": self.message}


def _display(path: Path, base: Path | None) -> str:
    base = base or Path.cwd()
    try:
        return os.path.relpath(path, base) if path.is_absolute() else str(path)
    except ValueError:
        return str(path)


@dataclass
class CheckReport:
    """What `check` found and what it could not check (and why)."""

    prompt_ids: list[str]
    findings: list[Finding] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # checks skipped, with the reason
    versions: int = 0
    labels: int = 0
    log_entries: int = 0

    @property
    def ok(self) -> bool:
        return not self.findings


def check_prompts(registry: Registry, prompt_ids: Sequence[str] | None = None, *,
                  base: str | None = None, log_dir: Path | None = None,
                  entries: Iterable[dict[str, Any]] | None = None) -> CheckReport:
    """Run every check over `prompt_ids` (default: all prompts).

    `base`: only versions present at this revision count as released (a pull request's
    target branch); default: every committed version. Log entries come from `entries`, or
    are read from `log_dir` when it exists.
    """
    ids = list(prompt_ids) if prompt_ids else registry.ids()
    for prompt_id in ids:
        registry.versions(prompt_id)  # unknown ids fail here, before any output
    report = CheckReport(prompt_ids=ids)
    for prompt_id in ids:
        report.versions += len(registry.versions(prompt_id))
        report.labels += len(registry.labels(prompt_id))
        report.findings.extend(check_duplicates(registry, prompt_id))
        report.findings.extend(check_templates(registry, prompt_id))
        report.findings.extend(check_labels(registry, prompt_id))
    report.findings.extend(_check_git(registry, ids, base, report.notes))
    skipped: list[str] = []
    if entries is None and log_dir is not None:
        if log_dir.is_dir():
            entries = read_log_entries(log_dir, skipped)
        else:
            report.notes.append(f"no log folder at {log_dir}: skipped the logged-sha check")
    if entries is not None:
        counted = _Counted(entries)
        report.findings.extend(check_logged_shas(registry, ids, counted))
        report.log_entries = counted.n
    if skipped:
        more = f" and {len(skipped) - 5} more" if len(skipped) > 5 else ""
        report.notes.append(f"skipped {len(skipped)} unreadable log line(s) in {log_dir} "
                            f"({', '.join(skipped[:5])}{more})")
    order = {"immutable": 0, "duplicate": 1, "template": 2, "schema": 3, "label": 4, "logs": 5}
    report.findings.sort(key=lambda f: (f.prompt_id, str(f.path), order.get(f.check, 9),
                                        f.line or 0))
    return report


class _Counted:
    def __init__(self, entries: Iterable[dict[str, Any]]):
        self.entries = entries
        self.n = 0

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for entry in self.entries:
            self.n += 1
            yield entry


def _next_version(registry: Registry, prompt_id: str) -> str:
    return f"v{registry.versions(prompt_id)[-1].number + 1}"


def check_duplicates(registry: Registry, prompt_id: str) -> list[Finding]:
    return [
        Finding(paths[0], prompt_id, "duplicate",
                f"{' and '.join(p.name for p in paths)} both define {name}; keep one of them",
                version=name)
        for name, paths in sorted(registry.duplicate_versions(prompt_id).items())
    ]


_LOCATED = re.compile(r"^:(?:\s*line\s*)?(\d+):\s*")


def check_templates(registry: Registry, prompt_id: str) -> list[Finding]:
    """Syntax (front matter, Jinja) and variables against `input.schema`."""
    from promptlab.template import Template

    findings = []
    for version in registry.versions(prompt_id):
        try:
            template = Template.load(version.path)
        except TemplateError as exc:
            message, line = str(exc), None
            if message.startswith(str(version.path)):
                message = message[len(str(version.path)):]
                m = _LOCATED.match(message)
                if m:
                    line, message = int(m.group(1)), message[m.end():]
                else:
                    message = message.lstrip(": ")
            findings.append(Finding(version.path, prompt_id, "template", message, line,
                                    version.name))
            continue
        schema = template.front.schema
        if schema is None:
            continue
        used = template.variables()
        for name in sorted(used - set(schema)):
            findings.append(Finding(version.path, prompt_id, "schema",
                                    f"variable {name!r} is used but not declared in "
                                    f"input.schema; add '{name}: string' (or '{name}?: …')",
                                    version=version.name))
        for name in sorted(set(schema) - used):
            findings.append(Finding(version.path, prompt_id, "schema",
                                    f"variable {name!r} is declared in input.schema but never "
                                    "used; use it or remove it", version=version.name))
    return findings


def check_labels(registry: Registry, prompt_id: str) -> list[Finding]:
    return [
        Finding(label.path, prompt_id, "label",
                f"{label.problem}; fix it with 'promptlab promote {prompt_id} vN "
                f"--label {label.name}'")
        for label in registry.labels(prompt_id) if label.problem
    ]


def _check_git(registry: Registry, ids: Sequence[str], base: str | None,
               notes: list[str]) -> list[Finding]:
    purpose = "check"
    try:
        repo = open_repo(registry.path, purpose=purpose)
    except NotARepositoryError:
        if base:
            raise
        notes.append(f"{registry.path} is not inside a git repository: skipped the "
                     "immutability check")
        return []
    with repo:
        if not has_commits(repo):
            if base:
                raise NoCommitsError(f"check --base: the repository at {repo.working_tree_dir}"
                                     " has no commits yet")
            notes.append("the repository has no commits yet: no version is released, skipped "
                         "the immutability check")
            return []
        base_sha = _fork_point(repo, base) if base else None
        boundaries = shallow_boundaries(repo)
        if boundaries:
            notes.append("shallow clone: edits made before the oldest fetched commit cannot be "
                         "seen; run 'git fetch --unshallow' for a complete check")
        findings = []
        for prompt_id in ids:
            findings.extend(check_immutable(repo, registry, prompt_id, base_sha))
        return findings


def _fork_point(repo: Repo, base: str) -> str:
    """Where HEAD's branch forked from `base`: versions there count as released."""
    import git

    sha = resolve_commit(repo, base, purpose="check --base")
    try:
        return repo.git.merge_base(sha, "HEAD").strip()
    except git.GitCommandError:
        raise GitError(f"check --base: {base!r} shares no history with HEAD; pass the branch "
                       "this one was created from") from None


def check_immutable(repo: Repo, registry: Registry, prompt_id: str,
                    base: str | None = None) -> list[Finding]:
    """Versions whose text (in HEAD or the working tree) differs from their released text.

    Released text = the first text committed under that version name, or with `base` the
    text at that commit (versions absent there are not released yet).
    """
    folder = registry.prompt_dir(prompt_id)
    folder_rel = repo_path(repo, folder)
    released: dict[str, tuple[str, str]] = {}  # version -> (blob, commit)
    head_blob: dict[str, str | None] = {}
    diverged: dict[str, str] = {}
    if base is None:
        tracker = _VersionTracker()
        for c in _read_log(repo, folder_rel, "HEAD", reverse=True):
            for v, changes in _version_changes(c).items():
                tracker.see(v, _text_after(changes), c.sha, _text_before(changes))
        released, diverged = tracker.first, tracker.diverged
    else:
        tree = repo.commit(base).tree
        try:
            subtree = tree / folder_rel
        except KeyError:
            subtree = None
        for blob in subtree.blobs if subtree is not None else []:
            v = version_of(blob.name)
            if v and blob.mode != 0o120000:
                released[v] = (blob.hexsha, base)
        tracker = _VersionTracker()
        for v, (blob, commit) in released.items():
            tracker.see(v, blob, commit, None)
        for c in _read_log(repo, folder_rel, f"{base}..HEAD", reverse=True):
            for v, changes in _version_changes(c).items():
                if v in released:
                    tracker.see(v, _text_after(changes), c.sha, _text_before(changes))
        diverged = tracker.diverged
    if not released:
        return []
    files = [v for v in registry.versions(prompt_id) if v.name in released]
    worktree = _hash_objects(repo, [repo_path(repo, v.path) for v in files])
    head_blob = _blobs_at_head(repo, [repo_path(repo, v.path) for v in files])
    findings = []
    next_version = _next_version(registry, prompt_id)
    for version, sha in zip(files, worktree, strict=True):
        original, first_commit = released[version.name]
        if sha == original:
            continue
        rel = repo_path(repo, version.path)
        in_head = head_blob.get(rel)
        if in_head is not None and in_head != original and sha == in_head:
            message = (f"{version.name} was edited after it was committed (committed in "
                       f"{first_commit[:7]}, changed in {diverged.get(version.name, 'HEAD')[:7]});"
                       f" restore it (git checkout {first_commit[:7]} -- {rel}) and put the new "
                       f"text in {next_version}")
        else:
            message = (f"{version.name} was edited after it was committed (in "
                       f"{first_commit[:7]}); create {next_version} "
                       f"('promptlab new {prompt_id} --from {version.name}') and restore "
                       f"{version.name} (git checkout {first_commit[:7]} -- {rel})")
        findings.append(Finding(version.path, prompt_id, "immutable", message,
                                version=version.name))
    return findings


def _blobs_at_head(repo: Repo, rel_paths: list[str]) -> dict[str, str]:
    """Blob ids HEAD holds for these paths (paths absent from HEAD are left out)."""
    tree = repo.head.commit.tree
    found = {}
    for rel in rel_paths:
        try:
            found[rel] = (tree / rel).hexsha
        except KeyError:
            continue
    return found


def _hash_objects(repo: Repo, rel_paths: list[str]) -> list[str]:
    """Blob ids of working-tree files, as git would store them (filters applied)."""
    if not rel_paths:
        return []
    out = repo.git.hash_object("--", *rel_paths)
    return out.split()


def read_log_entries(log_dir: Path, skipped: list[str] | None = None) -> Iterator[dict[str, Any]]:
    """Entries of `<log_dir>/*.jsonl`: through the log reader when this install has it,
    else with a tolerant parser of our own (unreadable lines are named in `skipped`)."""
    skipped = skipped if skipped is not None else []
    try:
        from promptlab.logs.reader import ReadStats, read_entries
    except ImportError:
        return _read_jsonl(log_dir, skipped)
    return _through_reader(read_entries, ReadStats(), log_dir, skipped)


def _through_reader(read_entries: Any, stats: Any, log_dir: Path,
                    skipped: list[str]) -> Iterator[dict[str, Any]]:
    yield from read_entries(log_dir, stats=stats)
    skipped.extend(f"{p.path.name}:{p.line}" for p in stats.problems)


def _read_jsonl(log_dir: Path, skipped: list[str]) -> Iterator[dict[str, Any]]:
    import json

    for path in sorted(log_dir.glob("*.jsonl")):
        try:
            fh = path.open("rb")
        except OSError as exc:
            skipped.append(f"{path.name}: {exc.strerror}")
            continue
        with fh:
            for lineno, raw in enumerate(fh, 1):
                raw = raw.strip()
                if not raw:
                    continue
                # A torn fragment and the next writer's entry may share one physical line.
                for candidate in (raw, raw[raw.rfind(b'{"v":'):] if b'{"v":' in raw[1:] else b""):
                    try:
                        entry = json.loads(candidate)
                    except ValueError:
                        continue
                    if isinstance(entry, dict):
                        yield entry
                        break
                else:
                    skipped.append(f"{path.name}:{lineno}")


def check_logged_shas(registry: Registry, ids: Sequence[str],
                      entries: Iterable[dict[str, Any]]) -> list[Finding]:
    """Versions whose file no longer hashes to a `prompt_sha` logged for them.

    Entries stamped `prompt_dirty: true` were drafts (uncommitted text) and are skipped:
    their sha never was the version's released text.
    """
    wanted = set(ids)
    seen: dict[tuple[str, str, str], tuple[int, str]] = {}
    for entry in entries:
        pid, version, sha = (entry.get("prompt_id"), entry.get("prompt_version"),
                             entry.get("prompt_sha"))
        if pid not in wanted or not isinstance(version, str) or not isinstance(sha, str):
            continue
        if entry.get("prompt_dirty") is True:
            continue
        count, last = seen.get((pid, version, sha), (0, ""))
        stamp = str(entry.get("timestamp") or "")
        seen[(pid, version, sha)] = (count + 1, max(last, stamp))
    findings = []
    current: dict[tuple[str, str], tuple[Path, str] | None] = {}
    for (pid, version, sha), (count, last) in sorted(seen.items()):
        key = (pid, version)
        if key not in current:
            current[key] = _current_sha(registry, pid, version)
        now = current[key]
        if now is None or now[1] == sha:
            continue
        calls = "call" if count == 1 else "calls"
        when = f", last {last[:10]}" if last else ""
        findings.append(Finding(
            now[0], pid, "logs",
            f"{count} logged {calls} used {version} with sha256 {sha[:12]}{when}, but the file "
            f"now hashes to {now[1][:12]}; restore {version}'s text and put the change in "
            f"{_next_version(registry, pid)}", version=version))
    return findings


def _current_sha(registry: Registry, prompt_id: str, version: str) -> tuple[Path, str] | None:
    if not is_version_name(version):
        return None
    files = [v for v in registry.versions(prompt_id) if v.name == version]
    if len(files) != 1:
        return None  # removed (not this check's business) or duplicated (reported apart)
    path = files[0].path
    return path, hashlib.sha256(path.read_bytes()).hexdigest()


def _git_reason(exc: Any) -> str:
    """The last meaningful line git printed for a failed command."""
    text = f"{exc.stderr or ''}\n{exc.stdout or ''}"
    text = text.replace("stderr: '", "").replace("stdout: '", "")
    lines = [ln.strip().strip("'").strip() for ln in text.splitlines()]
    lines = [ln for ln in lines if ln]
    return lines[-1] if lines else f"exit status {exc.status}"


# -- committing a prompt's files ------------------------------------------------------------

_IN_PROGRESS = {
    "MERGE_HEAD": "a merge", "CHERRY_PICK_HEAD": "a cherry-pick", "REVERT_HEAD": "a revert",
    "rebase-merge": "a rebase", "rebase-apply": "a rebase or 'git am'",
}


@dataclass(frozen=True)
class CommitPlan:
    """A repository checked, before any file changes, to be ready for `commit_paths`."""

    root: Path


def prepare_commit(folder: Path, allowed: Iterable[Path] = ()) -> CommitPlan:
    """Refuse `--commit` up front: not a repository, other changes staged, no identity.

    `allowed` are paths that may already be staged (they are the ones being committed).
    """
    import git

    purpose = "--commit"
    with open_repo(folder, purpose=purpose) as repo:
        repo_path(repo, folder)
        for marker, what in _IN_PROGRESS.items():
            if os.path.exists(os.path.join(repo.git_dir, marker)):
                raise GitError(f"{purpose}: {what} is in progress in {repo.working_tree_dir}; "
                               "finish it first, or drop --commit")
        allowed_rel = {repo_path(repo, p) for p in allowed}
        staged = [p for p in repo.git.diff("--cached", "--name-only", "-z").split("\x00")
                  if p and p not in allowed_rel]
        if staged:
            shown = ", ".join(staged[:3]) + (f" and {len(staged) - 3} more"
                                              if len(staged) > 3 else "")
            raise GitError(f"{purpose}: other changes are already staged ({shown}); commit or "
                           "unstage them first (git restore --staged …), or drop --commit")
        try:
            repo.git.var("GIT_COMMITTER_IDENT")
        except git.GitCommandError:
            raise GitError(f"{purpose}: git does not know who you are; set git config "
                           "user.name and user.email, or drop --commit") from None
        return CommitPlan(root=Path(str(repo.working_tree_dir)))


def commit_paths(plan: CommitPlan, paths: Sequence[Path], message: str) -> str | None:
    """Stage and commit exactly `paths`; return the new commit's short id, or None when
    they hold no change to commit."""
    import git

    with open_repo(plan.root, purpose="--commit") as repo:
        rel = [repo_path(repo, Path(os.path.abspath(p))) for p in paths]
        try:
            repo.git.add("--", *rel)
            try:
                repo.git.diff("--cached", "--quiet", "--", *rel)
                return None
            except git.GitCommandError as exc:
                if exc.status != 1:
                    raise
            repo.git.commit("-q", "-m", message, "--", *rel)
            return repo.git.rev_parse("--short", "HEAD").strip()
        except git.GitCommandError as exc:
            reason = _git_reason(exc)
            raise CommitFailedError(f"--commit: git could not commit {', '.join(rel)}: {reason};"
                                    " the files are changed but not committed") from None


@dataclass(frozen=True)
class Committed:
    """What `--commit` did: the paths it committed, the commit (None: nothing changed)."""

    paths: tuple[Path, ...]
    message: str
    commit: str | None


def new_version_committed(registry: Registry, prompt_id: str, *, from_version: str | None = None,
                          description: str | None = None,
                          message: str | None = None) -> tuple[Path, Committed]:
    """`Registry.new`, then commit only the files it created.

    Everything that could refuse the commit is checked before a file is written.
    """
    validate_id(prompt_id)
    brand_new = not registry.exists(prompt_id)
    plan = prepare_commit(registry.prompt_dir(prompt_id))
    path = registry.new(prompt_id, from_version=from_version, description=description)
    paths = [path]
    version = version_of(path.name) or path.name
    default = f"new {prompt_id}: add {version}"
    if brand_new:
        label = registry.label(prompt_id, "current")
        if label is not None:
            paths.append(label.path)
            default += f", current -> {version}"
    elif from_version:
        default += f" (copy of {version_of(from_version) or from_version})"
    message = message or default
    return path, Committed(tuple(paths), message, commit_paths(plan, paths, message))


def promote_committed(registry: Registry, prompt_id: str, version: str, label: str,
                      message: str | None = None) -> tuple[str | None, str, Committed]:
    """`Registry.promote`, then commit only the label file."""
    existing = registry.label(prompt_id, label)
    link = existing.path if existing else registry.prompt_dir(prompt_id) / label
    plan = prepare_commit(registry.prompt_dir(prompt_id), allowed=[link])
    committed = _committed_label(plan, link)
    previous, new = registry.promote(prompt_id, version, label)
    moved = registry.label(prompt_id, label)
    path = moved.path if moved is not None else link
    # The message describes the commit: from the label as committed, not as on disk.
    was = committed if committed is not None else previous
    message = message or f"promote {prompt_id}: {label} {was or '(none)'} -> {new}"
    return previous, new, Committed((path,), message, commit_paths(plan, [path], message))


def _committed_label(plan: CommitPlan, link: Path) -> str | None:
    """The version a label file points at in HEAD, or None (no HEAD, no such file)."""
    with open_repo(plan.root, purpose="--commit") as repo:
        if not has_commits(repo):
            return None
        try:
            entry = repo.head.commit.tree / repo_path(repo, link)
        except KeyError:
            return None
        target = _label_target(entry.hexsha, _Blobs(repo))
        return target if target and is_version_name(target) else None
