"""Which metrics a comparison shows: the built-in ones every call has, the experiment's
primary metric and guardrails, `--metric`, and each metric's good direction."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from promptlab.errors import CompareError


@dataclass(frozen=True)
class Builtin:
    """A metric every call has. Numeric ones read an `entries` column over the calls that
    did not fail; `error_rate` is the share of calls with status 'error'."""

    column: str | None  # None: error_rate
    direction: str = "lower"

    @property
    def expr(self) -> str:
        if self.column is None:
            return "(e.status = 'error')"
        return f"CASE WHEN e.status != 'error' THEN e.{self.column} END"


BUILTINS: dict[str, Builtin] = {
    "latency_ms": Builtin("latency_ms"),
    "output_tokens": Builtin("output_tokens"),
    "input_tokens": Builtin("input_tokens"),
    "cost_usd": Builtin("cost_usd"),
    "error_rate": Builtin(None),
}
DEFAULT_BUILTINS = ("latency_ms", "output_tokens", "cost_usd", "error_rate")


@dataclass(frozen=True)
class MetricConfig:
    """The experiment's `[metrics]` table (empty without one), each metric's direction, and
    the tolerances (relative margins) from the file and from `--tolerance`."""

    primary: str | None
    guardrails: tuple[str, ...]
    directions: dict[str, str]
    tolerance: dict[str, float] = field(default_factory=dict)

    @property
    def configured(self) -> bool:
        return bool(self.primary or self.guardrails)

    def roles(self) -> dict[str, str]:
        roles: dict[str, str] = {}
        if self.primary:
            roles[self.primary] = "primary"
        for g in self.guardrails:
            roles.setdefault(g, "guardrail")
        return roles


def metric_config(spec: Any, tolerance: Mapping[str, float] | None = None) -> MetricConfig:
    """Primary metric, guardrails, directions and tolerances from an experiment (None:
    defaults); `tolerance` (from `--tolerance`) overrides the file's, metric by metric."""
    directions = {name: b.direction for name, b in BUILTINS.items()}
    if spec is None:
        return MetricConfig(None, (), directions, dict(tolerance or {}))
    for scorer in spec.scorers:
        directions[scorer.name] = scorer.direction
    margins = {**spec.metrics.tolerance, **(tolerance or {})}
    return MetricConfig(spec.metrics.primary, tuple(spec.metrics.guardrails), directions,
                        margins)


def requested(wanted: list[str] | None, config: MetricConfig,
              score_names: list[str]) -> list[str]:
    """The metrics asked for: `--metric`, else primary + guardrails, else every score."""
    if wanted:
        return list(dict.fromkeys(wanted))
    if config.configured:
        primary = [config.primary] if config.primary else []
        return list(dict.fromkeys([*primary, *config.guardrails]))
    return sorted(score_names)


def choose_metrics(wanted: list[str] | None, config: MetricConfig, score_names: list[str],
                   available: set[str]) -> list[str]:
    """The metrics to compare, in order; an unknown `--metric` is a CompareError."""
    if wanted:
        unknown = [m for m in wanted if m not in available and m not in BUILTINS]
        if unknown:
            raise CompareError(f"no metric {unknown[0]!r} in these entries; metrics "
                               f"logged: {', '.join(sorted(available)) or 'none'}")
    names = requested(wanted, config, score_names)
    if not wanted and not config.configured:
        names += [b for b in DEFAULT_BUILTINS if b in available]
    return names


def builtins_needed(wanted: list[str] | None, config: MetricConfig) -> list[str]:
    """Built-in metrics to sum for every arm: the defaults plus any asked for."""
    asked = [*(wanted or ()), config.primary, *config.guardrails]
    return list(dict.fromkeys([*DEFAULT_BUILTINS, *(n for n in asked if n in BUILTINS)]))


def check_tolerance(tolerance: Mapping[str, float], names: list[str]) -> None:
    """Each `--tolerance` must name a metric this comparison shows."""
    shown = list(dict.fromkeys(names))
    for name in tolerance:
        if name not in shown:
            raise CompareError(f"--tolerance {name}: no metric {name!r} in this comparison; "
                               f"compared: {', '.join(shown) or 'none'}")
