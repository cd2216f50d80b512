"""Git provenance of prompt files.

`provenance(path)` answers "which commit last touched this version file, and does the
file differ from it?" for the render stamp. It runs git once per (file, HEAD, file
state) per process; a warm render only re-reads HEAD (two tiny file reads).
"""

from __future__ import annotations

import os
import subprocess
from functools import lru_cache
from pathlib import Path


@lru_cache(maxsize=256)
def _git_dir_for(folder: str) -> str | None:
    """The .git directory governing `folder`, or None outside a repository."""
    current = Path(folder)
    for candidate in (current, *current.parents):
        dot_git = candidate / ".git"
        if dot_git.is_dir():
            return str(dot_git)
        if dot_git.is_file():  # worktree or submodule: "gitdir: <path>"
            try:
                text = dot_git.read_text(encoding="utf-8").strip()
            except OSError:
                return None
            if text.startswith("gitdir:"):
                gitdir = Path(text[7:].strip())
                return str(gitdir if gitdir.is_absolute() else (candidate / gitdir).resolve())
    return None


def _common_dir(git_dir: str) -> str:
    common = Path(git_dir) / "commondir"
    if common.is_file():
        try:
            rel = common.read_text(encoding="utf-8").strip()
            return str((Path(git_dir) / rel).resolve())
        except OSError:
            pass
    return git_dir


def head_state(git_dir: str) -> str:
    """A cheap fingerprint of HEAD: the commit id it resolves to, read from files."""
    try:
        with open(os.path.join(git_dir, "HEAD"), encoding="utf-8") as fh:
            head = fh.read().strip()
    except OSError:
        return ""
    if not head.startswith("ref:"):
        return head  # detached
    ref = head[4:].strip()
    common = _common_dir(git_dir)
    try:
        with open(os.path.join(common, ref), encoding="utf-8") as fh:
            return fh.read().strip()
    except OSError:
        pass
    try:
        with open(os.path.join(common, "packed-refs"), encoding="utf-8") as fh:
            for line in fh:
                if line.endswith(" " + ref + "\n") or line.endswith(" " + ref):
                    return line.split(" ", 1)[0]
    except OSError:
        pass
    return "unborn:" + ref


_cache: dict[tuple[str, str, int, int], tuple[str | None, bool | None]] = {}


def provenance(path: str | os.PathLike[str]) -> tuple[str | None, bool | None]:
    """(last commit touching `path`, whether the file differs from HEAD or is untracked).

    Outside a git repository, or when git is unavailable, both are None.
    """
    path = os.path.abspath(path)
    git_dir = _git_dir_for(os.path.dirname(path))
    if git_dir is None:
        return None, None
    try:
        st = os.stat(path)
    except OSError:
        return None, None
    key = (path, head_state(git_dir), st.st_mtime_ns, st.st_size)
    hit = _cache.get(key)
    if hit is not None:
        return hit
    result = _lookup(path)
    _cache[key] = result
    return result


def _git(args: list[str], cwd: str) -> str | None:
    try:
        done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True,
                              timeout=30, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout if done.returncode == 0 else None


def _lookup(path: str) -> tuple[str | None, bool | None]:
    folder, name = os.path.split(path)
    commit = _git(["log", "-1", "--format=%H", "--", name], folder)
    if commit is None:  # no commits yet, or git missing
        status = _git(["status", "--porcelain", "--", name], folder)
        return None, (True if status is not None else None)
    commit = commit.strip() or None
    if commit is None:
        return None, True  # never committed
    status = _git(["status", "--porcelain", "--", name], folder)
    return commit, bool(status and status.strip())
