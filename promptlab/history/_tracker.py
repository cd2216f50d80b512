"""Following each version name's text through a prompt folder's commits, so that an edit of
a committed version (or a revert of one) is recognised as such."""

from __future__ import annotations

from collections.abc import Container, Iterable

from promptlab.history._gitlog import Change, Commit, version_changes


class VersionTracker:
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

    def see_changes(self, version: str, changes: list[Change], commit: str) -> str:
        """`see` for one commit's changes to the files of `version`: its blob once the commit
        is applied (None: gone) against its blob in the first parent (None: did not exist)."""
        after = next((ch.new_blob for ch in changes if ch.new_blob is not None), None)
        before = next((ch.old_blob for ch in changes if ch.old_blob is not None), None)
        return self.see(version, after, commit, before)

    def follow(self, commits: Iterable[Commit], only: Container[str] | None = None) -> None:
        """`see` every version change in `commits` (oldest first), or only those in `only`."""
        for c in commits:
            for version, changes in version_changes(c).items():
                if only is None or version in only:
                    self.see_changes(version, changes, c.sha)
