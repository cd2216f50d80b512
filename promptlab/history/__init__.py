"""Prompts in git: provenance for the render stamp, history, diffs against revisions, the
immutability check, and committing a prompt's files.

`provenance(path)` runs on every render, so importing this package loads only
`_provenance` (which never imports GitPython); every other name is imported on first use,
and opens the repository with GitPython, itself imported inside the functions.

A version is immutable once committed: the text first committed as `code-review/v2` is what
`v2` means forever. `history` marks edits with "(!)", `check` fails while a version's text
differs from it, and both accept a revert ("restored v2") as the fix.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from promptlab._lazy import lazy_exports
from promptlab.history._provenance import clear_provenance_cache, head_state, provenance

# Public name -> private module that defines it, imported on first use.
_EXPORTS: dict[str, str] = {
    # opening the repository
    "NotARepositoryError": "promptlab.history._repo",
    "NoCommitsError": "promptlab.history._repo",
    "open_repo": "promptlab.history._repo",
    "repo_path": "promptlab.history._repo",
    "has_commits": "promptlab.history._repo",
    "shallow_boundaries": "promptlab.history._repo",
    "resolve_commit": "promptlab.history._repo",
    "version_of": "promptlab.history._names",
    # promptlab history
    "History": "promptlab.history._log",
    "HistoryRow": "promptlab.history._log",
    "prompt_history": "promptlab.history._log",
    # promptlab diff
    "Revision": "promptlab.history._diff",
    "file_at_revision": "promptlab.history._diff",
    "unified_diff": "promptlab.history._diff",
    # promptlab check
    "CheckReport": "promptlab.history._findings",
    "Finding": "promptlab.history._findings",
    "check_prompts": "promptlab.history._check",
    "check_duplicates": "promptlab.history._check",
    "check_templates": "promptlab.history._check",
    "check_labels": "promptlab.history._check",
    "check_immutable": "promptlab.history._immutable",
    "check_logged_shas": "promptlab.history._logged",
    "read_log_entries": "promptlab.history._logscan",
    # new/promote --commit
    "CommitFailedError": "promptlab.history._commit",
    "CommitPlan": "promptlab.history._commit",
    "Committed": "promptlab.history._commit",
    "prepare_commit": "promptlab.history._commit",
    "commit_paths": "promptlab.history._commit",
    "new_version_committed": "promptlab.history._commit",
    "promote_committed": "promptlab.history._commit",
}

__all__ = [
    "CheckReport",
    "CommitFailedError",
    "CommitPlan",
    "Committed",
    "Finding",
    "History",
    "HistoryRow",
    "NoCommitsError",
    "NotARepositoryError",
    "Revision",
    "check_duplicates",
    "check_immutable",
    "check_labels",
    "check_logged_shas",
    "check_prompts",
    "check_templates",
    "clear_provenance_cache",
    "commit_paths",
    "file_at_revision",
    "has_commits",
    "head_state",
    "new_version_committed",
    "open_repo",
    "prepare_commit",
    "promote_committed",
    "prompt_history",
    "provenance",
    "read_log_entries",
    "repo_path",
    "resolve_commit",
    "shallow_boundaries",
    "unified_diff",
    "version_of",
]


__getattr__, __dir__ = lazy_exports("promptlab.history", _EXPORTS, globals())


if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from promptlab.history._check import (
        check_duplicates,
        check_labels,
        check_prompts,
        check_templates,
    )
    from promptlab.history._commit import (
        CommitFailedError,
        CommitPlan,
        Committed,
        commit_paths,
        new_version_committed,
        prepare_commit,
        promote_committed,
    )
    from promptlab.history._diff import Revision, file_at_revision, unified_diff
    from promptlab.history._findings import CheckReport, Finding
    from promptlab.history._immutable import check_immutable
    from promptlab.history._log import History, HistoryRow, prompt_history
    from promptlab.history._logged import check_logged_shas
    from promptlab.history._logscan import read_log_entries
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
