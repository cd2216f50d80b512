"""Progress reporters for the runner: a bar on a terminal, plain periodic lines otherwise.

Both write through the `write` function they are given (the CLI passes one that writes to
stderr), so results on stdout stay clean for pipes.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from promptlab.experiments.results import Progress, Reporter, RunResult

Write = Callable[[str], None]


def _rate_eta(progress: Progress) -> tuple[float, float | None]:
    rate = progress.done / progress.elapsed_s if progress.elapsed_s > 0 else 0.0
    left = progress.total - progress.done
    eta = left / rate if rate > 0 else None
    return rate, eta


def _clock(seconds: float | None) -> str:
    if seconds is None:
        return "--:--"
    seconds = int(seconds + 0.5)
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


def _counts(progress: Progress) -> str:
    parts = [f"{progress.errors} error{'s' if progress.errors != 1 else ''}"]
    if progress.cache_hits:
        parts.append(f"{progress.cache_hits} cached")
    return ", ".join(parts)


class TtyReporter(Reporter):
    """One line redrawn in place: bar, counts, errors, rate and ETA."""

    width = 24

    def __init__(self, write: Write, columns: int = 100):
        self.write = write
        self.columns = columns
        self.last = ""

    def start(self, result: RunResult, todo: int, concurrency: int, provider: str) -> None:
        self._line(f"Starting {todo} cells …")

    def _line(self, text: str) -> None:
        text = text[: self.columns - 1]
        self.write("\r" + text + " " * max(0, len(self.last) - len(text)))
        self.last = text

    def _render(self, progress: Progress) -> str:
        total = max(progress.total, 1)
        filled = int(self.width * progress.done / total)
        bar = "█" * filled + "░" * (self.width - filled)
        rate, eta = _rate_eta(progress)
        return (f"[{bar}] {progress.done}/{progress.total} cells · {_counts(progress)} · "
                f"{rate:.1f}/s · ETA {_clock(eta)}")

    def update(self, progress: Progress) -> None:
        self._line(self._render(progress))

    def note(self, message: str) -> None:
        self.write("\r" + " " * len(self.last) + "\r" + message + "\n")
        self.last = ""

    def finish(self, progress: Progress) -> None:
        done = self._render(progress).split(" · ETA")[0]
        self._line(f"{done} · took {_clock(progress.elapsed_s)}")
        self.write("\n")
        self.last = ""


class LineReporter(Reporter):
    """A plain line every `interval_s` seconds (logs, CI, pipes), and one at the end."""

    def __init__(self, write: Write, interval_s: float = 5.0):
        self.write = write
        self.interval_s = interval_s
        self.next_at = 0.0

    def start(self, result: RunResult, todo: int, concurrency: int, provider: str) -> None:
        self.next_at = time.monotonic() + self.interval_s

    def _text(self, progress: Progress) -> str:
        share = progress.done / progress.total if progress.total else 1.0
        rate, eta = _rate_eta(progress)
        eta_text = f", ETA {_clock(eta)}" if progress.done < progress.total else ""
        return (f"progress: {progress.done}/{progress.total} cells ({share:.0%}), "
                f"{_counts(progress)}, {rate:.1f} cells/s{eta_text}")

    def update(self, progress: Progress) -> None:
        now = time.monotonic()
        if now >= self.next_at:
            self.next_at = now + self.interval_s
            self.write(self._text(progress) + "\n")

    def note(self, message: str) -> None:
        self.write(message + "\n")

    def finish(self, progress: Progress) -> None:
        self.write(self._text(progress) + f" in {progress.elapsed_s:.1f}s\n")


class Announcer(Reporter):
    """Writes a header line once the run is planned, then forwards to `inner` (if any).

    Notes (stopping, waiting for calls in flight) are shown even without progress.
    """

    def __init__(self, write: Write, header: Callable[[RunResult, int], str] | None,
                 inner: Reporter | None):
        self.write = write
        self.header = header
        self.inner = inner

    def start(self, result: RunResult, todo: int, concurrency: int, provider: str) -> None:
        if self.header is not None:
            self.write(self.header(result, concurrency) + "\n")
        if self.inner is not None:
            self.inner.start(result, todo, concurrency, provider)

    def update(self, progress: Progress) -> None:
        if self.inner is not None:
            self.inner.update(progress)

    def note(self, message: str) -> None:
        if self.inner is not None:
            self.inner.note(message)
        else:
            self.write(message + "\n")

    def finish(self, progress: Progress) -> None:
        if self.inner is not None:
            self.inner.finish(progress)
