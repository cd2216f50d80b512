"""Which entries a comparison reads: the arms (versions, labels, variants), the prompt,
the experiment and the time window, as SQL conditions on `entries e`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from promptlab.errors import CompareError


@dataclass(frozen=True)
class Arm:
    """One side of a comparison: the name the user gave and the column it matched."""

    name: str
    column: str  # "prompt_version" | "variant" | "prompt_label"

    @property
    def cond(self) -> str:
        return f"e.{self.column} = ?"


@dataclass(frozen=True)
class Scope:
    """Which entries count: prompt, experiment and a time window."""

    prompt: str | None = None
    experiment: str | None = None
    since: float | None = None
    until: float | None = None

    @property
    def windowed(self) -> bool:
        return self.since is not None or self.until is not None

    def where(self, *arms: Arm) -> tuple[str, list[Any]]:
        parts, params = ["e.kind = 'llm'"], []
        for column, value in (("prompt_id", self.prompt), ("experiment", self.experiment)):
            if value is not None:
                parts.append(f"e.{column} = ?")
                params.append(value)
        if self.since is not None:
            parts.append("e.ts >= ?")
            params.append(self.since)
        if self.until is not None:
            parts.append("e.ts < ?")
            params.append(self.until)
        if arms:
            parts.append("(" + " OR ".join(a.cond for a in arms) + ")")
            params.extend(a.name for a in arms)
        return " AND ".join(parts), params


def time_bounds(since: Any, until: Any) -> tuple[float | None, float | None]:
    """`--since`/`--until` (a date, an ISO time or an age like `7d`) as epoch seconds."""
    from promptlab.logs.reader import parse_bound

    def epoch(value: Any, end: bool) -> float | None:
        text = parse_bound(value, end=end)
        if text is None:
            return None
        from datetime import datetime

        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()

    lo, hi = epoch(since, False), epoch(until, True)
    if lo is not None and hi is not None and hi <= lo:
        raise CompareError(f"--until ({until}) is not after --since ({since})")
    return lo, hi
