"""The logged-sha check: a `prompt_sha` logged for a version must still be its file's hash,
or the logs describe text that the version no longer holds."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from promptlab.history._findings import Finding, next_version
from promptlab.registry import Registry, is_version_name


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
