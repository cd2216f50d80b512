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
    """What `init_project` created, added to, and left alone (with the reason)."""

    root: Path
    created: list[Path] = field(default_factory=list)
    skipped: list[tuple[Path, str]] = field(default_factory=list)
    updated: list[tuple[Path, str]] = field(default_factory=list)


GITIGNORE_HEADER = ("# promptlab: the call logs, their index and the response cache hold every "
                    "prompt and response; never commit them")


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
    try:
        return _init_project(directory)
    except OSError as exc:
        where = exc.filename or directory
        raise UsageError(f"init: cannot write {where}: {exc.strerror or exc}; pick a folder "
                         "you can write to") from exc


def _init_project(directory: str | os.PathLike[str]) -> InitResult:
    if not os.fspath(directory).strip():  # `promptlab init "$DIR"` with DIR unset
        raise UsageError("init: the folder name is empty; give a folder, or '.' for this one")
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
            regular = path.is_file() and not path.is_symlink()
            result.skipped.append((path, "already exists" if regular else
                                   "exists and is not a regular file; move it away and run "
                                   "init again"))
            continue
        outside = _leaves(root, path.parent)
        if outside:
            result.skipped.append((path, f"{outside} is a link out of the project"))
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
    _ignore_logs(root, result)
    return result


def _leaves(root: Path, folder: Path) -> Path | None:
    """The first folder on the way from `root` to `folder` that resolves outside `root`
    (a symlink out of the project), else None: init writes only inside the project."""
    real_root = os.path.realpath(root)
    here = root
    for part in folder.relative_to(root).parts:
        here = here / part
        real = os.path.realpath(here)
        if os.path.commonpath([real_root, real]) != real_root:
            return here
    return None


def ignore_lines(root: Path) -> list[str]:
    """`.gitignore` lines keeping the project's log folder and caches out of git."""
    from promptlab.config import load_settings

    log_dir = load_settings(root, env={}).log_dir
    lines = []
    try:
        rel = log_dir.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        rel = None  # the logs live outside the project
    if rel and rel != ".":
        lines.append(f"/{rel}/")
    lines.extend(["cache.db", "index.db"])
    return lines


def _ignore_logs(root: Path, result: InitResult) -> None:
    """Write `.gitignore`, or append the lines it lacks; never rewrite what is there."""
    path = root / ".gitignore"
    wanted = ignore_lines(root)
    if not os.path.lexists(path):
        path.write_text("\n".join([GITIGNORE_HEADER, *wanted]) + "\n", encoding="utf-8")
        result.created.append(path)
        return
    if not path.is_file() or path.is_symlink():
        result.skipped.append((path, f"not a regular file; add {', '.join(wanted)} to it"))
        return
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        result.skipped.append((path, f"cannot read it ({exc}); add {', '.join(wanted)} to it"))
        return
    present = {line.strip() for line in text.splitlines()}
    missing = [line for line in wanted
               if line not in present and line.rstrip("/") not in present
               and line.lstrip("/") not in present]
    if not missing:
        result.skipped.append((path, "already ignores the logs"))
        return
    prefix = "" if not text or text.endswith("\n") else "\n"
    with path.open("a", encoding="utf-8") as fh:
        fh.write(prefix + "\n".join([GITIGNORE_HEADER, *missing]) + "\n")
    result.updated.append((path, f"added {', '.join(missing)}"))


def _add_current_label(folder: Path, result: InitResult) -> None:
    label = folder / "current"
    if _leaves(result.root, folder):
        return  # v1.txt was skipped for the same reason
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
