"""What `check` reports: one Finding per problem (a file, a line, why and what to do), and
the CheckReport that gathers them with the notes on what could not be checked."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from promptlab.registry import Registry


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
    versions: int = 0
    labels: int = 0
    log_entries: int = 0

    @property
    def ok(self) -> bool:
        return not self.findings


def next_version(registry: Registry, prompt_id: str) -> str:
    """The version a finding tells the user to put changed text in."""
    return f"v{registry.versions(prompt_id)[-1].number + 1}"
