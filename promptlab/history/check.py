"""`promptlab check`: every check over a set of prompts, one Finding per problem.

- files only: two files for one version, template syntax and `input.schema` variables,
  labels and version files that are not what they should be;
- git: a committed version's text is what that version means forever, so a later edit
  (in a commit or the working tree) is a finding until it is reverted;
- logs: a `prompt_sha` logged for a version must still be its file's hash.
"""

from __future__ import annotations

import hashlib
import os
import re
import shlex
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from promptlab.errors import GitError, TemplateError
from promptlab.history.repo import (
    NoCommitsError,
    NotARepositoryError,
    VersionTracker,
    has_commits,
    open_repo,
    read_log,
    repo_path,
    resolve_commit,
    shallow_boundaries,
    version_of,
)
from promptlab.registry import Registry, is_version_name

if TYPE_CHECKING:  # pragma: no cover
    from git import Repo

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
    warnings: list[str] = field(default_factory=list)  # risks that do not fail the check
    versions: int = 0
    labels: int = 0
    log_entries: int = 0

    @property
    def ok(self) -> bool:
        return not self.findings


def next_version(registry: Registry, prompt_id: str) -> str:
    """The version a finding tells the user to put changed text in."""
    versions = registry.versions(prompt_id)
    return f"v{versions[-1].number + 1}" if versions else "v1"


_ORDER = {"immutable": 0, "duplicate": 1, "template": 2, "schema": 3, "label": 4, "logs": 5}
_LOCATED = re.compile(r"^:(?:\s*line\s*)?(\d+):\s*")


def check_prompts(registry: Registry, prompt_ids: Sequence[str] | None = None, *,
                  base: str | None = None, log_dir: Path | None = None,
                  entries: Iterable[dict[str, Any]] | None = None,
                  private_dir: Path | None = None) -> CheckReport:
    """Run every check over `prompt_ids` (default: all prompts).

    `base`: only versions present at this revision count as released (a pull request's
    target branch); default: every committed version. Log entries come from `entries`, or
    are read from `log_dir` when it exists. `private_dir` is the log folder whose call
    logs and caches must not be tracked by git (a warning names them).
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
    report.findings.extend(check_git(registry, ids, base, report.notes))
    if private_dir is not None:
        tracked = tracked_log_files(private_dir)
        if tracked:
            shown = ", ".join(tracked[:3]) + (f" and {len(tracked) - 3} more"
                                              if len(tracked) > 3 else "")
            report.warnings.append(
                f"{len(tracked)} log or cache file(s) in {private_dir} are tracked by git "
                f"({shown}); they hold every prompt and response: 'git rm --cached' them and "
                "add the folder to .gitignore")
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
    report.findings.sort(key=lambda f: (f.prompt_id, str(f.path), _ORDER.get(f.check, 9),
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


def check_duplicates(registry: Registry, prompt_id: str) -> list[Finding]:
    return [
        Finding(paths[0], prompt_id, "duplicate",
                f"{' and '.join(p.name for p in paths)} both define {name}; keep one of them",
                version=name)
        for name, paths in sorted(registry.duplicate_versions(prompt_id).items())
    ]


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
    """Labels that do not resolve, and any label or version file that is not what it
    should be (a symlink where a version belongs, a label defined twice, …)."""
    findings = [
        Finding(label.path, prompt_id, "label",
                f"{label.problem}; fix it with 'promptlab promote {prompt_id} vN "
                f"--label {label.name}'")
        for label in registry.labels(prompt_id) if label.problem
    ]
    findings.extend(Finding(path, prompt_id, "label", message)
                    for path, message in registry.problems(prompt_id))
    return findings


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


_PRIVATE_FILES = ("cache.db", "index.db")


def tracked_log_files(log_dir: Path) -> list[str]:
    """Call logs (`*.jsonl`) and caches under `log_dir` that git tracks (or has staged)."""
    try:
        repo = open_repo(log_dir, purpose="check")
    except GitError:
        return []
    with repo:
        try:
            rel = repo_path(repo, log_dir)
        except NotARepositoryError:
            return []  # the logs live outside this repository
        import git

        try:
            listed = repo.git.ls_files("-z", "--", rel or ".")
        except git.GitCommandError:
            return []
    return [p for p in listed.split("\x00") if p and (
        p.endswith(".jsonl") or p.rsplit("/", 1)[-1].split("-")[0] in _PRIVATE_FILES)]


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
        for version, (blob, name) in _versions_at(repo, base, folder_rel).items():
            tracker.see(version, blob, base, None, name)
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
        released_rel = f"{folder_rel}/{tracker.names.get(version.name, version.path.name)}"
        restore = _restore_command(repo, first_commit[:7], released_rel, rel)
        in_head = head_blob.get(rel)
        if in_head is not None and in_head != original and sha == in_head:
            message = (f"{version.name} was edited after it was committed (committed in "
                       f"{first_commit[:7]}, changed in {diverged.get(version.name, 'HEAD')[:7]});"
                       f" restore it ({restore}) and put the new text in {upcoming}")
        else:
            message = (f"{version.name} was edited after it was committed (in "
                       f"{first_commit[:7]}); create {upcoming} "
                       f"('promptlab new {prompt_id} --from {version.name}') and restore "
                       f"{version.name} ({restore})")
        findings.append(Finding(version.path, prompt_id, "immutable", message,
                                version=version.name))
    return findings


def _restore_command(repo: Repo, commit: str, released_rel: str, rel: str) -> str:
    """A git command that puts back, in the file `rel`, the text it had as `released_rel`
    in `commit` (paths relative to the repository root), working as printed from the
    current folder: paths relative to it, or `git -C ROOT` from outside the repository."""
    root = Path(str(repo.working_tree_dir)).resolve()
    here = Path.cwd().resolve()
    inside = here == root or root in here.parents
    git = "git" if inside else f"git -C {shlex.quote(str(root))}"
    if released_rel == rel:  # the same file: git checks it out with its filters
        shown = os.path.relpath(root / rel, here) if inside else rel
        return f"{git} checkout {commit} -- {shlex.quote(shown)}"
    # Renamed since (v2.txt -> v2.md): the released text into the file's present name.
    return (f"{git} show {shlex.quote(f'{commit}:{released_rel}')} > "
            f"{shlex.quote(os.path.relpath(root / rel, here))}")


def _versions_at(repo: Repo, commit: str, folder_rel: str) -> dict[str, tuple[str, str]]:
    """Version name -> (blob id, file name), for the version files `folder_rel` holds at
    `commit`."""
    tree = repo.commit(commit).tree
    try:
        subtree = tree / folder_rel
    except KeyError:
        return {}
    return {v: (blob.hexsha, blob.name) for blob in subtree.blobs
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
            f"{next_version(registry, pid)}", version=version))
    return findings


def _current_sha(registry: Registry, prompt_id: str, version: str) -> tuple[Path, str] | None:
    if not is_version_name(version):
        return None
    files = [v for v in registry.versions(prompt_id) if v.name == version]
    if len(files) != 1:
        return None  # removed (not this check's business) or duplicated (reported apart)
    path = files[0].path
    return path, hashlib.sha256(path.read_bytes()).hexdigest()


def read_log_entries(log_dir: Path, skipped: list[str] | None = None) -> Iterator[dict[str, Any]]:
    """Entries of `<log_dir>/*.jsonl` through the log reader (one parser for every command);
    unreadable lines are named in `skipped` once the entries have been read."""
    from promptlab.logs.reader import ReadStats, read_entries

    stats = ReadStats()
    yield from read_entries(log_dir, stats=stats)
    if skipped is not None:
        skipped.extend(f"{p.path.name}:{p.line}" for p in stats.problems)
