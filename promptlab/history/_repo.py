"""Opening the repository that holds the prompts (GitPython, imported lazily), with every
failure mapped to a GitError whose message starts with what the user was doing."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from promptlab.errors import GitError
from promptlab.history._provenance import shallow_commits

if TYPE_CHECKING:  # pragma: no cover
    from git import Repo


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
