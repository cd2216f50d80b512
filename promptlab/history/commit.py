"""`new --commit` and `promote --commit`: check the repository before any file changes,
then commit exactly the files the command wrote."""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from promptlab.errors import GitError
from promptlab.history.repo import Blobs, has_commits, label_target, open_repo, repo_path, version_of
from promptlab.registry import Registry, is_version_name, validate_id

_PURPOSE = "--commit"
_IN_PROGRESS = {
    "MERGE_HEAD": "a merge", "CHERRY_PICK_HEAD": "a cherry-pick", "REVERT_HEAD": "a revert",
    "rebase-merge": "a rebase", "rebase-apply": "a rebase or 'git am'",
}


class CommitFailedError(GitError):
    """`git commit` itself failed (a hook refused, the disk is full, …)."""

    exit_code = 1


@dataclass(frozen=True)
class CommitPlan:
    """A repository checked, before any file changes, to be ready for `commit_paths`."""

    root: Path


@dataclass(frozen=True)
class Committed:
    """What `--commit` did: the paths it committed, the commit (None: nothing changed)."""

    paths: tuple[Path, ...]
    message: str
    commit: str | None


def prepare_commit(folder: Path, allowed: Iterable[Path] = ()) -> CommitPlan:
    """Refuse `--commit` up front: not a repository, other changes staged, no identity.

    `allowed` are paths that may already be staged (they are the ones being committed).
    """
    import git

    with open_repo(folder, purpose=_PURPOSE) as repo:
        repo_path(repo, folder)
        for marker, what in _IN_PROGRESS.items():
            if os.path.exists(os.path.join(repo.git_dir, marker)):
                raise GitError(f"{_PURPOSE}: {what} is in progress in {repo.working_tree_dir}; "
                               "finish it first, or drop --commit")
        if has_commits(repo) and repo.head.is_detached:
            raise GitError(f"{_PURPOSE}: HEAD is detached in {repo.working_tree_dir}: the commit "
                           "would be on no branch, and lost at the next checkout; switch to a "
                           "branch first (git switch -c NAME), or drop --commit")
        allowed_rel = {repo_path(repo, p) for p in allowed}
        staged = [p for p in repo.git.diff("--cached", "--name-only", "-z").split("\x00")
                  if p and p not in allowed_rel]
        if staged:
            shown = ", ".join(staged[:3]) + (f" and {len(staged) - 3} more"
                                              if len(staged) > 3 else "")
            raise GitError(f"{_PURPOSE}: other changes are already staged ({shown}); commit or "
                           "unstage them first (git restore --staged …), or drop --commit")
        try:
            repo.git.var("GIT_COMMITTER_IDENT")
        except git.GitCommandError:
            raise GitError(f"{_PURPOSE}: git does not know who you are; set git config "
                           "user.name and user.email, or drop --commit") from None
        return CommitPlan(root=Path(str(repo.working_tree_dir)))


def commit_paths(plan: CommitPlan, paths: Sequence[Path], message: str) -> str | None:
    """Stage and commit exactly `paths`; return the new commit's short id, or None when
    they hold no change to commit."""
    import git

    with open_repo(plan.root, purpose=_PURPOSE) as repo:
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
            raise CommitFailedError(f"{_PURPOSE}: git could not commit {', '.join(rel)}: "
                                    f"{reason}; the files are changed but not committed") from None


def _git_reason(exc: Any) -> str:
    """The last meaningful line git printed for a failed command."""
    text = f"{exc.stderr or ''}\n{exc.stdout or ''}"
    text = text.replace("stderr: '", "").replace("stdout: '", "")
    lines = [ln.strip().strip("'").strip() for ln in text.splitlines()]
    lines = [ln for ln in lines if ln]
    return lines[-1] if lines else f"exit status {exc.status}"


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
    with open_repo(plan.root, purpose=_PURPOSE) as repo:
        if not has_commits(repo):
            return None
        try:
            entry = repo.head.commit.tree / repo_path(repo, link)
        except KeyError:
            return None
        target = label_target(entry.hexsha, Blobs(repo))
        return target if target and is_version_name(target) else None
