"""Checks on a SQLite file before it is opened, shared by the index's two SQLite libraries
(sqlite3 in promptlab.index.core, apsw in promptlab.index.vectors) and the export state."""

from __future__ import annotations

import os
from pathlib import Path

from promptlab.errors import LogsUnavailableError


def refuse_unsafe_database(path: Path, what: str, remedy: str) -> None:
    """Refuse a SQLite file (or its -wal/-shm/-journal companion) that is a symbolic link
    or not a regular file: SQLite follows links, so a planted `index.db -> /elsewhere`
    would write the log's contents wherever it points (and a FIFO would block)."""
    import stat

    for name in (f"{path}", f"{path}-wal", f"{path}-shm", f"{path}-journal"):
        try:
            mode = os.lstat(name).st_mode
        except FileNotFoundError:
            continue
        except OSError:
            continue  # unreadable folder: opening says why
        if stat.S_ISLNK(mode):
            raise LogsUnavailableError(f"{what} {name} is a symbolic link; promptlab does not "
                                       f"follow it: {remedy}")
        if stat.S_ISDIR(mode) and name == f"{path}":
            continue  # the caller's own message for a folder
        if not stat.S_ISREG(mode):
            raise LogsUnavailableError(f"{what} {name} is not a regular file; promptlab does "
                                       f"not open it: {remedy}")
