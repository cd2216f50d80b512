"""What a run reports: options in, per-variant totals and progress snapshots out.

`RunResult` is what `run_experiment` returns; `Reporter` is the interface the CLI
implements to show progress (the runner itself never prints).
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from typing import Any

BUILTIN_VALUES = ("latency_ms", "cost_usd", "input_tokens", "output_tokens")


@dataclass(frozen=True)
class RunOptions:
    """Per-run choices; None means "as the experiment file says"."""

    concurrency: int | None = None
    limit: int | None = None
    dry_run: bool = False
    resume: bool = False
    cache: bool = True
    timeout_s: float | None = None
    max_retries: int | None = None
    run_id: str | None = None


@dataclass
class VariantSummary:
    """Totals of one variant in one run (finished cells only)."""

    variant: str
    prompt_version: str | None = None
    planned: int = 0
    skipped: int = 0
    cells: int = 0
    errors: int = 0
    cache_hits: int = 0
    primary_sum: float = 0.0
    primary_n: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float | None = None
    latency_sum: float = 0.0
    latency_n: int = 0
    scorer_errors: int = 0  # cells where at least one scorer failed

    @property
    def primary_mean(self) -> float | None:
        return self.primary_sum / self.primary_n if self.primary_n else None

    @property
    def latency_mean(self) -> float | None:
        return self.latency_sum / self.latency_n if self.latency_n else None

    def add(self, entry: dict[str, Any], primary: str | None, failed: bool) -> None:
        """Count one logged entry: the primary metric, tokens, cost and latency."""
        if primary is not None:
            scores = entry.get("scores") or {}
            value = scores.get(primary, entry.get(primary) if primary in BUILTIN_VALUES
                               else None)
            if primary == "error_rate":
                value = failed
            if isinstance(value, bool | int | float):
                self.primary_sum += float(value)
                self.primary_n += 1
        self.input_tokens += entry.get("input_tokens") or 0
        self.output_tokens += entry.get("output_tokens") or 0
        if isinstance(entry.get("cost_usd"), int | float):
            self.cost_usd = (self.cost_usd or 0.0) + entry["cost_usd"]
        if not failed and isinstance(entry.get("latency_ms"), int | float):
            self.latency_sum += entry["latency_ms"]
            self.latency_n += 1

    def to_dict(self) -> dict[str, Any]:
        return {"variant": self.variant, "prompt_version": self.prompt_version,
                "planned": self.planned, "skipped": self.skipped, "cells": self.cells,
                "errors": self.errors, "cache_hits": self.cache_hits,
                "primary_mean": self.primary_mean, "input_tokens": self.input_tokens,
                "output_tokens": self.output_tokens, "cost_usd": self.cost_usd,
                "latency_ms_mean": self.latency_mean, "scorer_errors": self.scorer_errors}


@dataclass
class RunResult:
    """What a run did. `stopped` is None, "interrupted", "error_rate" or "log" (the
    calls could not be logged). `failed` says why the run as a whole failed (too many
    errors, nothing logged, a scorer that failed on every cell), or is None: a run that
    failed never suggests comparing its results.
    """

    experiment: str
    run_id: str
    design: str
    primary: str | None
    planned: int = 0
    skipped: int = 0
    done: int = 0
    errors: int = 0
    cache_hits: int = 0
    dry_run: bool = False
    stopped: str | None = None
    stop_reason: str | None = None
    elapsed_s: float = 0.0
    variants: dict[str, VariantSummary] = field(default_factory=dict)
    first_errors: list[str] = field(default_factory=list)
    failed: str | None = None
    scored: int = 0  # cells whose output went through the scorers
    scorer_errors: dict[str, int] = field(default_factory=dict)  # scorer -> failed cells
    first_scorer_errors: dict[str, str] = field(default_factory=dict)
    unlogged: int = 0  # cells whose entry could not be written

    def record(self, variant: str, entry: dict[str, Any] | None, error: str | None,
               cache_hit: bool, scorer_errors: dict[str, str] | None = None,
               scored: bool = False) -> None:
        """Count one finished cell (and the scorers that failed on it)."""
        summary = self.variants[variant]
        self.done += 1
        summary.cells += 1
        if scored:
            self.scored += 1
        if scorer_errors:
            summary.scorer_errors += 1
            for name, message in scorer_errors.items():
                self.scorer_errors[name] = self.scorer_errors.get(name, 0) + 1
                self.first_scorer_errors.setdefault(name, message)
        if error:
            self.errors += 1
            summary.errors += 1
            if len(self.first_errors) < 3:
                self.first_errors.append(error)
        if cache_hit:
            self.cache_hits += 1
            summary.cache_hits += 1
        summary.add(entry or {}, self.primary, bool(error))

    @property
    def remaining(self) -> int:
        return self.planned - self.skipped - self.done

    @property
    def compare_command(self) -> str:
        """What to run next to judge the variants."""
        names = " ".join(self.variants)
        return f"promptlab compare {names} --experiment {self.experiment}"

    def to_dict(self) -> dict[str, Any]:
        return {"experiment": self.experiment, "run_id": self.run_id, "design": self.design,
                "primary": self.primary, "planned": self.planned, "skipped": self.skipped,
                "done": self.done, "errors": self.errors, "cache_hits": self.cache_hits,
                "dry_run": self.dry_run, "stopped": self.stopped,
                "stop_reason": self.stop_reason, "failed": self.failed,
                "scored": self.scored, "scorer_errors": dict(self.scorer_errors),
                "unlogged": self.unlogged, "elapsed_s": round(self.elapsed_s, 3),
                "variants": [v.to_dict() for v in self.variants.values()],
                "compare": self.compare_command}


@dataclass(frozen=True)
class Progress:
    """A snapshot handed to the progress reporter."""

    total: int
    done: int
    errors: int
    cache_hits: int
    in_flight: int
    elapsed_s: float


class Reporter:
    """Receives progress. The CLI draws a bar on a TTY, plain lines otherwise."""

    def start(self, result: RunResult, todo: int, concurrency: int, provider: str) -> None:
        """The run is about to start."""

    def update(self, progress: Progress) -> None:
        """Called about ten times a second while the run goes."""

    def note(self, message: str) -> None:
        """Something the user should know now (stopping, waiting for calls in flight)."""

    def finish(self, progress: Progress) -> None:
        """The run is over (finished, stopped or interrupted)."""


def new_run_id() -> str:
    """A readable, time-sortable run id: `20261126T233313Z-3f9a1c`."""
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-" + f"{random.getrandbits(24):06x}"
