"""The results of a comparison: per-arm summaries, one row per metric, one
`PairComparison` per version against the baseline, and the `Comparison` itself."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class ArmSummary:
    """One version's side of a metric: units (or pairs), mean or rate, and its interval."""

    n: int
    mean: float | None
    ci: tuple[float, float] | None

    def to_dict(self) -> dict[str, Any]:
        return {"n": self.n, "mean": self.mean, "ci": pair_list(self.ci)}


@dataclass
class MetricResult:
    """One metric of one comparison. `diff` is B − A; `lift` is B / A − 1."""

    name: str
    kind: str  # "binary" | "numeric"
    test: str | None
    direction: str  # "higher" | "lower" is better
    a: ArmSummary
    b: ArmSummary
    diff: float | None = None
    diff_ci: tuple[float, float] | None = None
    lift: float | None = None
    lift_ci: tuple[float, float] | None = None
    p_value: float | None = None
    p_adjusted: float | None = None
    significant: bool = False
    verdict: str = "not enough data"
    mde: float | None = None
    n_needed: int | None = None
    warnings: list[str] = field(default_factory=list)
    role: str | None = None  # "primary" | "guardrail" | None
    robust: dict[str, Any] | None = None
    chance_b_better: float | None = None
    se: float | None = None
    n_total: int = 0
    tolerance: float | None = None  # relative margin B may be worse by (non-inferiority)
    worse: bool = False  # B is worse (beyond the tolerance, when one is set): gates fail

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name, "kind": self.kind, "test": self.test,
            "a": self.a.to_dict(), "b": self.b.to_dict(),
            "diff": self.diff, "diff_ci": pair_list(self.diff_ci),
            "lift": self.lift, "lift_ci": pair_list(self.lift_ci),
            "p_value": self.p_value, "p_adjusted": self.p_adjusted,
            "significant": self.significant, "verdict": self.verdict,
            "mde": self.mde, "n_needed": self.n_needed, "warnings": list(self.warnings),
            "direction": self.direction, "role": self.role, "robust": self.robust,
            "chance_b_better": self.chance_b_better, "tolerance": self.tolerance,
        }


@dataclass
class PairComparison:
    """Version B against the baseline A on every metric."""

    a: str
    b: str
    design: str  # "paired" | "unpaired"
    metrics: list[MetricResult]
    srm: dict[str, Any] | None = None
    warnings: list[str] = field(default_factory=list)
    units: tuple[int, int] = (0, 0)

    def worse(self, guarded: Callable[[MetricResult], bool] | None = None) -> list[MetricResult]:
        """Metrics on which B is significantly worse — beyond the tolerance, for a metric
        that has one (only `guarded` ones when given)."""
        return [m for m in self.metrics if m.worse and (guarded is None or guarded(m))]


@dataclass
class Comparison:
    """The verdict of `compare`: one `PairComparison` per version after the first.

    `to_dict()` is the `--json` form (one object for two versions; with more, the same
    header plus `"comparisons"`, one object per version); `table()` the text report.
    """

    prompt: str | None
    experiment: str | None
    versions: list[str]
    alpha: float
    correction: str
    sequential: bool
    pairs: list[PairComparison]
    warnings: list[str] = field(default_factory=list)
    primary: str | None = None
    guardrails: tuple[str, ...] = ()

    @property
    def a(self) -> str:
        return self.versions[0]

    @property
    def design(self) -> str:
        return self.pairs[0].design if self.pairs else "unpaired"

    @property
    def metrics(self) -> list[MetricResult]:
        """The metrics of the first (or only) comparison."""
        return self.pairs[0].metrics if self.pairs else []

    def guarded(self, metric: MetricResult) -> bool:
        """Whether `--fail-if-worse` watches this metric: the primary metric and the
        guardrails when configured, otherwise every metric compared."""
        if self.primary is None and not self.guardrails:
            return True
        return metric.name == self.primary or metric.name in self.guardrails

    def worse(self) -> list[tuple[PairComparison, MetricResult]]:
        """(comparison, metric) where a version is significantly worse on a watched metric."""
        return [(p, m) for p in self.pairs for m in p.worse(self.guarded)]

    def _pair_dict(self, pair: PairComparison) -> dict[str, Any]:
        return {
            "prompt": self.prompt, "a": pair.a, "b": pair.b, "experiment": self.experiment,
            "design": pair.design, "alpha": self.alpha, "srm": pair.srm,
            "metrics": [m.to_dict() for m in pair.metrics],
            "correction": self.correction, "sequential": self.sequential,
            "warnings": [*self.warnings, *pair.warnings],
        }

    def to_dict(self) -> dict[str, Any]:
        if len(self.pairs) == 1:
            return json_safe(self._pair_dict(self.pairs[0]))
        return json_safe({
            "prompt": self.prompt, "a": self.a, "b": self.versions[1:],
            "experiment": self.experiment, "alpha": self.alpha,
            "correction": self.correction, "sequential": self.sequential,
            "warnings": list(self.warnings),
            "comparisons": [self._pair_dict(p) for p in self.pairs],
        })

    def table(self, fmt: str = "simple") -> str:
        """The human report: one table per comparison, then SRM, power and footnotes."""
        from promptlab.comparison._format import format_comparison

        return format_comparison(self, fmt)

    def rows(self) -> list[dict[str, Any]]:
        """Flat rows (one per version × metric) for CSV and newline-JSON output."""
        out = []
        for pair in self.pairs:
            for m in pair.metrics:
                out.append({
                    "prompt": self.prompt, "experiment": self.experiment, "a": pair.a,
                    "b": pair.b, "design": pair.design, "metric": m.name, "kind": m.kind,
                    "role": m.role, "test": m.test, "n_a": m.a.n, "mean_a": m.a.mean,
                    "n_b": m.b.n, "mean_b": m.b.mean, "diff": m.diff,
                    "diff_low": m.diff_ci[0] if m.diff_ci else None,
                    "diff_high": m.diff_ci[1] if m.diff_ci else None, "lift": m.lift,
                    "p_value": m.p_value, "p_adjusted": m.p_adjusted,
                    "significant": m.significant, "verdict": m.verdict,
                    "chance_b_better": m.chance_b_better, "mde": m.mde,
                    "n_needed": m.n_needed, "tolerance": m.tolerance,
                })
        return [json_safe(r) for r in out]


def pair_list(value: tuple[float, float] | None) -> list[float] | None:
    return None if value is None else [value[0], value[1]]


def json_safe(obj: Any) -> Any:
    """JSON-safe: a NaN or infinity that slipped through becomes null."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [json_safe(v) for v in obj]
    return obj
