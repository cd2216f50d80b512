"""Provenance for the render stamp: the last commit touching a file, and whether it is dirty.

Runs on every render, so it never imports GitPython (nor anything that does): it answers
from a per-process cache keyed by the file's stat, HEAD and the index, and on a miss shells
out to git twice. `Registry` here is the public `promptlab.Registry`: the registry (which
knows nothing of git) with this look-up passed in.
"""

from __future__ import annotations

import os
import subprocess
from functools import lru_cache
from pathlib import Path
from typing import Any

from promptlab.registry import Provenance
from promptlab.registry import Registry as _PlainRegistry
from promptlab.template import RenderLimits


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
    if commit in shallow_commits(_common_dir(git_dir)):
        commit = ""  # the file may have changed in history the clone does not have
    dirty = False
    if line:  # staged or unstaged changes: compare the file with HEAD itself
        if line[0] in "RC":
            return None, True  # staged as renamed/copied here: HEAD does not hold this path
        diff = _git(["diff", "--quiet", "HEAD", "--", name], folder)
        dirty = diff is None or diff.returncode != 0
    return commit or None, dirty


def shallow_commits(common_dir: str) -> set[str]:
    """Commits whose parents a shallow clone does not have (empty for a full clone)."""
    text = _read(os.path.join(common_dir, "shallow"))
    return set(text.split()) if text else set()



class Registry(_PlainRegistry):
    """The prompts folder, with git provenance in every stamp (`prompt_commit`,
    `prompt_dirty`). `Registry("prompts").get("code-review").render(code=...)`."""

    def __init__(self, path: str | os.PathLike[str] | None = None, *,
                 provenance: Provenance | None = provenance,
                 limits: RenderLimits | None = None):
        super().__init__(path, provenance=provenance, limits=limits)
