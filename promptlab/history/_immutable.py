"""The immutability check: a committed version's text is what that version means forever,
so a later edit (in a commit or the working tree) is a finding until it is reverted."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from promptlab.errors import GitError
from promptlab.history._findings import Finding, next_version
from promptlab.history._gitlog import read_log
from promptlab.history._names import version_of
from promptlab.history._repo import (
    NoCommitsError,
    NotARepositoryError,
    has_commits,
    open_repo,
    repo_path,
    resolve_commit,
    shallow_boundaries,
)
from promptlab.history._tracker import VersionTracker
from promptlab.registry import Registry

if TYPE_CHECKING:  # pragma: no cover
    from git import Repo


def check_git(registry: Registry, ids: Sequence[str], base: str | None,
              notes: list[str]) -> list[Finding]:
    """`check_immutable` for each of `ids`; what could not be checked goes to `notes`."""
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
        if shallow_boundaries(repo):
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
    folder_rel = repo_path(repo, registry.prompt_dir(prompt_id))
    tracker = VersionTracker()
    if base is None:
        tracker.follow(read_log(repo, folder_rel, "HEAD", reverse=True))
    else:
        for version, blob in _versions_at(repo, base, folder_rel).items():
            tracker.see(version, blob, base, None)
        tracker.follow(read_log(repo, folder_rel, f"{base}..HEAD", reverse=True),
                       only=set(tracker.first))
    released = tracker.first  # version -> (blob, commit it was released in)
    diverged = tracker.diverged  # version -> commit that moved it off that text
    if not released:
        return []
    files = [v for v in registry.versions(prompt_id) if v.name in released]
    rels = [repo_path(repo, v.path) for v in files]
    worktree = _hash_objects(repo, rels)
    head_blob = _blobs_at_head(repo, rels)
    findings = []
    upcoming = next_version(registry, prompt_id)
    for version, sha, rel in zip(files, worktree, rels, strict=True):
        original, first_commit = released[version.name]
        if sha == original:
            continue
        in_head = head_blob.get(rel)
        if in_head is not None and in_head != original and sha == in_head:
            message = (f"{version.name} was edited after it was committed (committed in "
                       f"{first_commit[:7]}, changed in {diverged.get(version.name, 'HEAD')[:7]});"
                       f" restore it (git checkout {first_commit[:7]} -- {rel}) and put the new "
                       f"text in {upcoming}")
        else:
            message = (f"{version.name} was edited after it was committed (in "
                       f"{first_commit[:7]}); create {upcoming} "
                       f"('promptlab new {prompt_id} --from {version.name}') and restore "
                       f"{version.name} (git checkout {first_commit[:7]} -- {rel})")
        findings.append(Finding(version.path, prompt_id, "immutable", message,
                                version=version.name))
    return findings


def _versions_at(repo: Repo, commit: str, folder_rel: str) -> dict[str, str]:
    """Version name -> blob id, for the version files `folder_rel` holds at `commit`."""
    tree = repo.commit(commit).tree
    try:
        subtree = tree / folder_rel
    except KeyError:
        return {}
    return {v: blob.hexsha for blob in subtree.blobs
            if (v := version_of(blob.name)) and blob.mode != 0o120000}


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
