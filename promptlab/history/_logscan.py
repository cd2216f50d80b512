"""Log entries for `check`: through promptlab.logs.reader when this install has it, else a
tolerant scan of our own that names every line it could not read."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any


def read_log_entries(log_dir: Path, skipped: list[str] | None = None) -> Iterator[dict[str, Any]]:
    """Entries of `<log_dir>/*.jsonl`: through the log reader when this install has it,
    else with a tolerant parser of our own (unreadable lines are named in `skipped`)."""
    skipped = skipped if skipped is not None else []
    try:
        from promptlab.logs.reader import ReadStats, read_entries
    except ImportError:
        return _read_jsonl(log_dir, skipped)
    return _through_reader(read_entries, ReadStats(), log_dir, skipped)


def _through_reader(read_entries: Any, stats: Any, log_dir: Path,
                    skipped: list[str]) -> Iterator[dict[str, Any]]:
    yield from read_entries(log_dir, stats=stats)
    skipped.extend(f"{p.path.name}:{p.line}" for p in stats.problems)


def _read_jsonl(log_dir: Path, skipped: list[str]) -> Iterator[dict[str, Any]]:
    import json

    for path in sorted(log_dir.glob("*.jsonl")):
        try:
            fh = path.open("rb")
        except OSError as exc:
            skipped.append(f"{path.name}: {exc.strerror}")
            continue
        with fh:
            for lineno, raw in enumerate(fh, 1):
                raw = raw.strip()
                if not raw:
                    continue
                # A torn fragment and the next writer's entry may share one physical line.
                for candidate in (raw, raw[raw.rfind(b'{"v":'):] if b'{"v":' in raw[1:] else b""):
                    try:
                        entry = json.loads(candidate)
                    except ValueError:
                        continue
                    if isinstance(entry, dict):
                        yield entry
                        break
                else:
                    skipped.append(f"{path.name}:{lineno}")
