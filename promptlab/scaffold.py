"""`promptlab init`: lay out a new project without touching anything that exists.

The starter files live in `promptlab/data/init/`: settings (`promptlab.toml`), one
prompt (`sentiment` v1 with a `current` label) and one experiment that runs offline
through a stand-in model.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from promptlab.config import _has_tool_table
from promptlab.errors import UsageError

EXAMPLE_PROMPT = "sentiment"


@dataclass
class InitResult:
    """What `init_project` created and what it left alone (with the reason)."""

    root: Path
    created: list[Path] = field(default_factory=list)
    skipped: list[tuple[Path, str]] = field(default_factory=list)


def _starter_files() -> list[tuple[str, bytes]]:
    base = resources.files("promptlab") / "data" / "init"
    found: list[tuple[str, bytes]] = []

    def walk(node, prefix: str) -> None:  # type: ignore[no-untyped-def]
        for child in sorted(node.iterdir(), key=lambda c: c.name):
            if child.name == "__pycache__":
                continue
            rel = f"{prefix}{child.name}"
            if child.is_dir():
                walk(child, rel + "/")
            else:
                found.append((rel, child.read_bytes()))

    walk(base, "")
    return found


def init_project(directory: str | os.PathLike[str] = ".") -> InitResult:
    """Create the starter project in `directory`; existing files are never overwritten."""
    root = Path(directory).absolute()
    if root.exists() and not root.is_dir():
        raise UsageError(f"{root} exists and is not a folder; pick another folder for init")
    root.mkdir(parents=True, exist_ok=True)
    result = InitResult(root)
    pyproject = root / "pyproject.toml"
    for rel, data in _starter_files():
        path = root / rel
        if rel == "promptlab.toml" and pyproject.is_file() and _has_tool_table(pyproject):
            result.skipped.append((path, "pyproject.toml already has [tool.promptlab]"))
            continue
        if os.path.lexists(path):
            result.skipped.append((path, "already exists"))
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            result.skipped.append((path, "already exists"))
            continue
        try:
            os.write(fd, data)
        finally:
            os.close(fd)
        result.created.append(path)
    _add_current_label(root / "prompts" / EXAMPLE_PROMPT, result)
    return result


def _add_current_label(folder: Path, result: InitResult) -> None:
    label = folder / "current"
    if os.path.lexists(label) or os.path.lexists(folder / "current.txt"):
        result.skipped.append((label, "already exists"))
        return
    if not (folder / "v1.txt").is_file():
        return
    try:
        os.symlink("v1.txt", label)
    except OSError:  # no symlinks on this file system: a plain-file label
        label.write_text("v1\n", encoding="utf-8")
    result.created.append(label)
