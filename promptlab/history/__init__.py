"""Prompts in git: provenance for the render stamp, history, diffs against revisions, the
immutability check, and committing a prompt's files.

- `stamp`: `provenance`, the last commit touching a file and whether it is dirty (on
  every render), and `Registry`, the public registry with that look-up passed in;
- `repo`: opening the repository, a prompt folder's log, following each version's text;
- `log`: `promptlab history` rows, a file at a revision, unified diffs;
- `check`: every check `promptlab check` runs, and its findings;
- `commit`: `new --commit` and `promote --commit`.

`provenance` runs on every render, so importing this package loads only `stamp` (which
never imports GitPython); every other name is imported on first use.

A version is immutable once committed: the text first committed as `code-review/v2` is what
`v2` means forever. `history` marks edits with "(!)", `check` fails while a version's text
differs from it, and both accept a revert ("restored v2") as the fix.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from promptlab._lazy import lazy_exports
from promptlab.history.stamp import Registry, clear_provenance_cache, head_state, provenance

# Public name -> module that defines it, imported on first use.
_EXPORTS: dict[str, str] = {
    **dict.fromkeys(["NotARepositoryError", "NoCommitsError", "open_repo", "repo_path",
                     "has_commits", "shallow_boundaries", "resolve_commit", "version_of"],
                    "promptlab.history.repo"),
    **dict.fromkeys(["History", "HistoryRow", "prompt_history", "Revision", "file_at_revision",
                     "unified_diff"], "promptlab.history.log"),
    **dict.fromkeys(["CheckReport", "Finding", "check_prompts", "check_duplicates",
                     "check_templates", "check_labels", "check_immutable", "check_logged_shas",
                     "read_log_entries"], "promptlab.history.check"),
    **dict.fromkeys(["CommitFailedError", "CommitPlan", "Committed", "prepare_commit",
                     "commit_paths", "new_version_committed", "promote_committed"],
                    "promptlab.history.commit"),
}

__all__ = [
    "CheckReport", "CommitFailedError", "CommitPlan", "Committed", "Finding", "History",
    "HistoryRow", "NoCommitsError", "NotARepositoryError", "Registry", "Revision",
    "check_duplicates", "check_immutable", "check_labels", "check_logged_shas",
    "check_prompts", "check_templates", "clear_provenance_cache", "commit_paths",
    "file_at_revision", "has_commits", "head_state", "new_version_committed", "open_repo",
    "prepare_commit", "promote_committed", "prompt_history", "provenance", "read_log_entries",
    "repo_path", "resolve_commit", "shallow_boundaries", "unified_diff", "version_of",
]


__getattr__, __dir__ = lazy_exports("promptlab.history", _EXPORTS, globals())


if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from promptlab.history.check import (
        CheckReport,
        Finding,
        check_duplicates,
        check_immutable,
        check_labels,
        check_logged_shas,
        check_prompts,
        check_templates,
        read_log_entries,
    )
    from promptlab.history.commit import (
        CommitFailedError,
        CommitPlan,
        Committed,
        commit_paths,
        new_version_committed,
        prepare_commit,
        promote_committed,
    )
    from promptlab.history.log import (
        History,
        HistoryRow,
        Revision,
        file_at_revision,
        prompt_history,
        unified_diff,
    )
    from promptlab.history.repo import (
        NoCommitsError,
        NotARepositoryError,
        has_commits,
        open_repo,
        repo_path,
        resolve_commit,
        shallow_boundaries,
        version_of,
    )
