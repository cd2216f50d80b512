"""Appending lines to the daily log files, safely from many threads and processes.

Each entry is one `os.write` of one complete line on an `O_APPEND` descriptor that stays
open between calls. The kernel appends each such write whole, so lines from concurrent
writers never interleave. A line longer than `PIPE_BUF` is written under an exclusive
`flock` (and written in a loop, should the kernel accept only part of it).

The descriptor is reopened when the UTC day changes (the entry's date picks the file) and,
checked at most every `check_interval` seconds, when the file was renamed or deleted
(log rotation). The folder is created 0700 and files 0600.

Day files are opened with O_NOFOLLOW and O_NONBLOCK and must be regular files: a symlink,
FIFO or device put where a day file belongs is refused (a LogError, which the logger
reports once like any other write failure) — never followed, and never waited on.

The hot path is one lock, one dict look-up, one clock comparison and the `os.write`. The
lock is needed: without it another thread could close the descriptor (new day, rotation)
and the kernel hand its number to an unrelated file between our look-up and our write.
"""

from __future__ import annotations

import contextlib
import errno
import os
import select
import stat
import threading
import time
from pathlib import Path

from promptlab.errors import LogError

PIPE_BUF = getattr(select, "PIPE_BUF", 4096)
_FLAGS = (os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOFOLLOW", 0)
          | getattr(os, "O_NONBLOCK", 0))
_MAX_OPEN = 2  # the current day and, around midnight, the previous one


def day_file(log_dir: Path, day: str) -> Path:
    """`<log_dir>/YYYY-MM-DD.jsonl` for the UTC day `YYYY-MM-DD`."""
    return log_dir / f"{day}.jsonl"


class _Open:
    __slots__ = ("checked", "due", "fd", "ino", "path")

    def __init__(self, fd: int, path: str, ino: tuple[int, int], checked: int, due: int):
        self.fd = fd
        self.path = path
        self.ino = ino
        self.checked = checked  # wall-clock ns of the last rotation check
        self.due = due  # ... and of the next one


class LogWriter:
    """Appends encoded lines to `<log_dir>/<day>.jsonl`. Thread-safe; fork-safe."""

    # Slots: the C fast path of Logger.log reads _files and _lock on every call.
    __slots__ = ("__weakref__", "_dir_ready", "_files", "_interval_ns", "_lock", "check_interval",
                 "fsync", "log_dir")

    def __init__(self, log_dir: str | os.PathLike[str], *, fsync: bool = False,
                 check_interval: float = 1.0):
        self.log_dir = Path(log_dir)
        self.fsync = fsync
        self.check_interval = check_interval
        self._interval_ns = max(int(check_interval * 1e9), 0)
        self._files: dict[str, _Open] = {}
        self._lock = threading.Lock()
        self._dir_ready = False
        if hasattr(os, "register_at_fork"):
            import weakref

            ref = weakref.ref(self)
            os.register_at_fork(after_in_child=lambda: (w := ref()) and w._after_fork())

    def _after_fork(self) -> None:
        # The parent's lock may have been held by another thread at fork time, and an
        # inherited descriptor shares the parent's flock: start afresh in the child.
        self._lock = threading.Lock()
        for handle in self._files.values():
            with contextlib.suppress(OSError):
                os.close(handle.fd)
        self._files = {}

    # -- writing ------------------------------------------------------------------------------

    def write(self, line: bytes, day: str, now_ns: int | None = None) -> None:
        """Append one complete line (ending in a newline) to the file of `day`.

        `now_ns` (time.time_ns(), if the caller has it) times the rotation check.
        """
        lock = self._lock
        lock.acquire()
        try:
            handle = self._files.get(day)
            if handle is None:
                handle = self._open(day)
            elif self.check_interval >= 0:
                if now_ns is None:
                    now_ns = time.time_ns()
                # A clock set back also triggers the check, so it is never postponed for long.
                if now_ns >= handle.due or now_ns < handle.checked:
                    handle = self._recheck(day, handle, now_ns)
            try:
                size = len(line)
                if size <= PIPE_BUF:
                    written = os.write(handle.fd, line)
                    if written != size:
                        self._write_rest(handle.fd, line, written)
                else:
                    self._write_locked(handle.fd, line)
                if self.fsync:
                    os.fsync(handle.fd)
            except OSError as exc:
                self._close(day)
                raise LogError(_describe(exc, handle.path)) from exc
        finally:
            lock.release()

    def write_rest(self, line: bytes, day: str, written: int) -> None:
        """Append the rest of `line`, whose first `written` bytes a short write appended."""
        with self._lock:
            handle = self._files.get(day)
            if handle is None:  # pragma: no cover - the caller just wrote to it
                raise LogError(f"cannot finish a log line: the file of {day} was closed")
            try:
                self._write_rest(handle.fd, line, written)
            except OSError as exc:
                self._close(day)
                raise LogError(_describe(exc, handle.path)) from exc

    def _write_locked(self, fd: int, line: bytes) -> None:
        import fcntl

        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            written = os.write(fd, line)
            if written != len(line):
                self._write_rest(fd, line, written)
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)

    @staticmethod
    def _write_rest(fd: int, line: bytes, written: int) -> None:
        view = memoryview(line)
        while written < len(line):
            n = os.write(fd, view[written:])
            if n <= 0:  # pragma: no cover - the kernel reports errors as OSError
                raise OSError(errno.EIO, "short write")
            written += n

    # -- files ----------------------------------------------------------------------------------

    def _open(self, day: str) -> _Open:
        path = str(day_file(self.log_dir, day))
        if not self._dir_ready:
            self._make_dir()
        try:
            fd = _open_append(path)
        except OSError as exc:
            if exc.errno == errno.ENOENT:  # folder removed since: make it again, once
                self._make_dir()
                try:
                    fd = _open_append(path)
                except OSError as exc2:
                    raise LogError(_describe(exc2, path)) from exc2
            else:
                raise LogError(_describe(exc, path)) from exc
        _terminate_torn_tail(fd)
        st = os.fstat(fd)
        now = time.time_ns()
        handle = _Open(fd, path, (st.st_dev, st.st_ino), now, now + self._interval_ns)
        if len(self._files) >= _MAX_OPEN:
            oldest = min(self._files)  # days sort as strings
            self._close(oldest)
        self._files[day] = handle
        return handle

    def _recheck(self, day: str, handle: _Open, now: int) -> _Open:
        """Reopen when the file at the path is no longer the one we hold (rotated/deleted)."""
        try:
            st = os.lstat(handle.path)  # a symlink put in its place is not our file
            current = (st.st_dev, st.st_ino)
        except OSError:
            current = None
        if current == handle.ino:
            handle.checked = now
            handle.due = now + self._interval_ns
            return handle
        self._close(day)
        return self._open(day)

    def _make_dir(self) -> None:
        path = self.log_dir
        try:
            if not path.is_dir():
                path.mkdir(mode=0o700, parents=True, exist_ok=True)
                os.chmod(path, 0o700)  # mkdir's mode is filtered by the umask
        except OSError as exc:
            raise LogError(f"cannot create log folder {path}: {exc.strerror}; "
                           "set PROMPTLAB_LOG_DIR or log_dir to a writable folder") from exc
        self._dir_ready = True

    def _close(self, day: str) -> None:
        handle = self._files.pop(day, None)
        if handle is not None:
            with contextlib.suppress(OSError):
                os.close(handle.fd)

    def close(self) -> None:
        with self._lock:
            for day in list(self._files):
                self._close(day)

    def __del__(self) -> None:
        try:
            for handle in self._files.values():
                os.close(handle.fd)
        except Exception:
            pass


def _open_append(path: str) -> int:
    """Open (creating) a day file for appending; refuse anything but a regular file.

    O_NOFOLLOW: a symlink fails with ELOOP instead of being followed. O_NONBLOCK: opening a
    FIFO never waits for a reader; it is cleared once the file is known to be regular.
    """
    try:
        fd = os.open(path, os.O_RDWR | _FLAGS, 0o600)
    except PermissionError:  # appendable but not readable: no tail repair
        fd = os.open(path, os.O_WRONLY | _FLAGS, 0o600)
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise OSError(errno.EINVAL, f"it is {_kind(mode)}, not a regular file")
        if _FLAGS & getattr(os, "O_NONBLOCK", 0):
            import fcntl

            flags = fcntl.fcntl(fd, fcntl.F_GETFL)
            fcntl.fcntl(fd, fcntl.F_SETFL, flags & ~os.O_NONBLOCK)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "something else"


def _terminate_torn_tail(fd: int) -> None:
    """End a line left unterminated by a killed writer, so our first line starts clean.

    Runs once per open, under the big-line flock so that it cannot land inside a large line
    another process is writing. Small lines are appended without the lock, and while one is
    being copied the file can already show part of it (the size grows page by page): so an
    unterminated end only counts as torn when it stays the same for a few milliseconds.
    Otherwise a live writer is finishing its line, and a newline from us would make a blank
    line after it.
    """
    try:
        if os.fstat(fd).st_size == 0:
            return
        import fcntl

        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            previous = -1
            for _ in range(_TAIL_LOOKS):
                size = os.fstat(fd).st_size
                if not size or os.pread(fd, 1, size - 1) == b"\n":
                    return
                if size == previous:  # unchanged: nobody is writing it, the tail is torn
                    os.write(fd, b"\n")
                    return
                previous = size
                time.sleep(_TAIL_WAIT)
            # The end kept moving: live writers are appending whole lines after any tail.
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    except OSError:  # not readable, or locking unsupported: the reader copes with torn lines
        pass


_TAIL_LOOKS = 5
_TAIL_WAIT = 0.005  # seconds; a small append takes microseconds


def _describe(exc: OSError, path: str) -> str:
    reason = exc.strerror or str(exc)
    if exc.errno == errno.ELOOP:
        reason = "it is a symbolic link (log files are never followed through links)"
        hint = "remove the link"
    elif exc.errno == errno.ENXIO:  # O_WRONLY|O_NONBLOCK on a FIFO without a reader
        reason = "it is a FIFO or device, not a regular file"
        hint = "remove it; promptlab writes only to regular files"
    elif exc.errno == errno.EINVAL and "regular file" in reason:
        hint = "remove it; promptlab writes only to regular files"
    elif exc.errno == errno.EISDIR:
        reason = "it is a folder"
        hint = "remove or rename it"
    elif exc.errno == errno.ENOSPC:
        hint = "free some disk space"
    elif exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        hint = "check the folder's permissions or set PROMPTLAB_LOG_DIR"
    else:
        hint = "check the log folder"
    return f"cannot write to log file {path}: {reason}; {hint}"
