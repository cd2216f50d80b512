"""The results of a comparison and how they are written: per-arm summaries, one row per
metric, one `PairComparison` per version against the baseline, the `Comparison` itself,
its JSON form, its text report (header, tables, SRM, power and footnotes) and its
de-duplicated warnings."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

POWER = 0.8  # the power the report states (the analysis uses the same)


def fmt_p(p: float | None) -> str:
    if p is None:
        return "–"
    if p < 0.0001:
        return "<0.0001"
    if p < 0.001:
        return f"{p:.1e}"
    return f"{p:.2g}" if p < 0.1 else f"{p:.2f}"


def fmt_num(x: float | None) -> str:
    if x is None:
        return "–"
    if x == 0:
        return "0"
    magnitude = abs(x)
    if magnitude >= 1e15:  # beyond, digits are noise: scientific
        return f"{x:.4g}"
    if magnitude >= 1000:
        return f"{x:,.0f}"
    if magnitude >= 1:
        return f"{x:.4g}"
    return f"{x:.3g}"


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
    diff_ci_method: str | None = None  # how diff_ci was built (see docs/compare.md)
    lift_method: str | None = None  # "log_ratio" | "delta_method"
    informative: bool = True  # False: p = 1 by construction (nothing varies): not adjusted
    untrustworthy: bool = False  # a sample ratio mismatch: no verdict
    # per version ("a", "b"): calls that gave no value, by reason (see docs/compare.md)
    dropped: dict[str, dict[str, int]] | None = None
    power_alpha: float | None = None  # the α the MDE and n_needed are computed at
    # (α at which to compute) -> (mde, n_needed); set by the analysis, used after adjusting
    power: Callable[[float], tuple[float | None, int | None]] | None = field(
        default=None, repr=False, compare=False)

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
            "n_a": self.a.n, "n_b": self.b.n, "diff_ci_method": self.diff_ci_method,
            "lift_method": self.lift_method, "in_family": self.informative,
            "power_alpha": self.power_alpha, "dropped": self.dropped,
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
    unit: str = "unit_id"  # what one observation is: "item_id" (paired) or "unit_id"
    design_reason: str = ""  # why this design was used
    items: int | None = None  # items logged under both versions (paired)
    srm_status: str = "not checked"  # "ok", "mismatch", "skipped: …", "not checked: …"
    shared_units: int | None = None  # unpaired by unit: units with calls under both versions

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
    watch: tuple[str, ...] | None = None  # the metrics asked for with --metric, if any

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
        """Whether `--fail-if-worse` watches this metric: the metrics asked for with
        `--metric`; else the primary metric and the guardrails when configured; otherwise
        every metric compared."""
        if self.watch is not None:
            return metric.name in self.watch
        if self.primary is None and not self.guardrails:
            return True
        return metric.name == self.primary or metric.name in self.guardrails

    def worse(self) -> list[tuple[PairComparison, MetricResult]]:
        """(comparison, metric) where a version is significantly worse on a watched metric."""
        return [(p, m) for p in self.pairs for m in p.worse(self.guarded)]

    def untrustworthy(self) -> list[PairComparison]:
        """Comparisons whose split failed the sample-ratio check: no verdict holds."""
        return [p for p in self.pairs if p.srm and p.srm.get("flag")]

    def undecided(self) -> list[tuple[PairComparison, list[MetricResult]]]:
        """Comparisons a gate cannot judge: the primary metric (when configured) or every
        watched metric has no p-value (not enough data); with the watched metrics that lack
        one."""
        out = []
        for pair in self.pairs:
            watched = [m for m in pair.metrics if self.guarded(m)]
            missing = [m for m in watched if m.p_value is None]
            primary = [m for m in missing if m.name == self.primary]
            if primary or (watched and len(missing) == len(watched)) or not watched:
                out.append((pair, missing))
        return out

    def _pair_dict(self, pair: PairComparison) -> dict[str, Any]:
        return {
            "prompt": self.prompt, "a": pair.a, "b": pair.b, "experiment": self.experiment,
            "design": pair.design, "unit": pair.unit, "design_reason": pair.design_reason,
            "alpha": self.alpha, "srm": pair.srm, "srm_status": pair.srm_status,
            "shared_units": pair.shared_units,
            "power": power_summary(pair),
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


def format_comparison(cmp: Comparison, fmt: str = "simple") -> str:
    """The table report of a Comparison (what `promptlab compare` prints)."""
    from tabulate import tabulate

    blocks: list[str] = []
    n_tests = sum(1 for p in cmp.pairs for m in p.metrics
                  if m.p_value is not None and m.informative)
    adjusted = cmp.correction != "none" and n_tests > 1
    p_head = {"holm": "p (Holm)", "bh": "p (BH)"}.get(cmp.correction, "p") if adjusted else "p"
    level = f"{1 - cmp.alpha:.0%}" if (1 - cmp.alpha) * 100 % 1 == 0 else f"{1 - cmp.alpha:.1%}"
    for pair in cmp.pairs:
        head = [f"{cmp.prompt or '(no prompt)'}: {pair.a} → {pair.b}"]
        if cmp.experiment:
            head.append(f"experiment {cmp.experiment}")
        head.append(_design_text(pair))
        head.append(f"α = {cmp.alpha:g}")
        if adjusted:
            head.append(f"{'Holm' if cmp.correction == 'holm' else 'Benjamini–Hochberg'}-"
                        f"adjusted over {n_tests} tests")
        if cmp.sequential:
            head.append("sequential (always valid)")
        rows = [_table_row(m) for m in pair.metrics]
        headers = ["metric", pair.a, pair.b, f"{pair.b} − {pair.a} [{level} CI]",
                   f"lift [{level} CI]", p_head, "test", f"P({pair.b} better)*", "verdict"]
        table = tabulate(rows, headers=headers, tablefmt=fmt, disable_numparse=True)
        lines = [" · ".join(head), "", table, ""]
        if pair.srm is not None:
            lines.append(_srm_text(pair.srm))
        elif pair.design != "paired":
            lines.append(f"SRM check: {pair.srm_status}.")
        if any(not m.informative and m.p_value is not None for m in pair.metrics):
            lines.append("(excl.) p = 1 by construction (nothing varies in either version): "
                         "left out of the multiple-testing family.")
        power = _power_text(cmp, pair)
        if power:
            lines.append(power)
        tolerance = _tolerance_text(pair)
        if tolerance:
            lines.append(tolerance)
        lines.append("* Bayesian posterior probability that the new version is better "
                     "(flat prior); not a p-value" + ("; not shown with --sequential."
                                                       if cmp.sequential else "."))
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def _design_text(pair: PairComparison) -> str:
    why = f" ({pair.design_reason})" if pair.design_reason else ""
    if pair.design == "paired":
        n = pair.items if pair.items is not None else max(
            (m.a.n for m in pair.metrics), default=0)
        return f"paired on {n:,} items{why}"
    a, b = pair.units
    return f"unpaired, {a:,} vs {b:,} units{why}"


def _table_row(m: MetricResult) -> list[str]:
    name = m.name + (f" ({m.role})" if m.role else "")
    binary = m.kind == "binary"
    return [
        name, _arm_text(m.a, binary), _arm_text(m.b, binary),
        _diff_text(m.diff, m.diff_ci, binary), _lift_text(m.lift, m.lift_ci),
        (fmt_p(m.p_adjusted) + ("" if m.informative else " (excl.)"))
        if m.p_adjusted is not None else "–",
        (m.test or "–").replace("_", " "),
        f"{m.chance_b_better:.0%}" if m.chance_b_better is not None else "–",
        m.verdict,
    ]


def _arm_text(arm: ArmSummary, binary: bool) -> str:
    if arm.mean is None:
        return f"– (n={arm.n})"
    value = f"{arm.mean:.1%}" if binary else fmt_num(arm.mean)
    return f"{value} (n={arm.n:,})"


def _diff_text(diff: float | None, ci: tuple[float, float] | None, binary: bool) -> str:
    if diff is None:
        return "–"
    if binary:
        text = f"{diff * 100:+.1f} pp"
        if ci:
            text += f" [{ci[0] * 100:+.1f}, {ci[1] * 100:+.1f}]"
        return text
    values = [diff, *(ci or ())]
    fmt = _shared_format(values)
    text = fmt(diff)
    if ci:
        text += f" [{fmt(ci[0])}, {fmt(ci[1])}]"
    return text


def _shared_format(values: Sequence[float]) -> Callable[[float], str]:
    """One signed format for a number and its interval: 3 significant digits of the
    largest, the same decimals for all; scientific below 0.001."""
    top = max((abs(v) for v in values if v), default=0.0)
    if top == 0:
        return lambda v: f"{v:+.0f}"
    exponent = math.floor(math.log10(top))
    if exponent < -3 or exponent >= 15:
        return lambda v: f"{v:+.2e}"
    decimals = max(0, 2 - exponent)
    return lambda v: f"{v:+,.{decimals}f}"


def _lift_text(lift: float | None, ci: tuple[float, float] | None) -> str:
    if lift is None:
        return "–"
    text = f"{lift:+.1%}"
    if ci:
        text += f" [{ci[0]:+.1%}, {ci[1]:+.1%}]"
    return text


def p_text(p: float) -> str:
    """`p = 2.1e-05`, or `p < 0.0001` where fmt_p gives a bound (never `p = <0.0001`)."""
    text = fmt_p(p)
    return f"p < {text[1:]}" if text.startswith("<") else f"p = {text}"


def _srm_text(srm: dict[str, Any]) -> str:
    observed = " / ".join(f"{o:,}" for o in srm["observed"])
    expected = " / ".join(f"{e:,.0f}" for e in srm["expected"])
    if srm.get("p_value") is None:
        return f"SRM check: {srm.get('skipped', 'skipped')} (units {observed})."
    if srm["flag"]:
        return (f"SAMPLE RATIO MISMATCH: units {observed} vs {expected} expected, "
                f"{p_text(srm['p_value'])} (below 0.001) — the traffic split is broken, so no "
                "verdict is trustworthy.")
    return (f"SRM check: units {observed} vs {expected} expected, "
            f"{p_text(srm['p_value'])} (ok).")


def power_summary(pair: PairComparison) -> dict[str, Any] | None:
    """The power statement of a comparison: for the primary metric (else the first with
    one), the minimum detectable difference at the current n and the n the observed
    difference needs, both at 80 % power and the family's adjusted α."""
    chosen = next((m for m in pair.metrics if m.role == "primary"), None) or next(
        (m for m in pair.metrics if m.mde is not None), None)
    if chosen is None or chosen.mde is None:
        return None
    return {"metric": chosen.name, "power": POWER, "alpha": chosen.power_alpha,
            "mde": chosen.mde, "n": chosen.a.n if pair.design == "paired"
            else min(chosen.a.n, chosen.b.n),
            "unit": "pairs" if pair.design == "paired" else "units per version",
            "observed": chosen.diff, "n_needed": chosen.n_needed, "kind": chosen.kind}


def _power_text(cmp: Comparison, pair: PairComparison) -> str | None:
    power = power_summary(pair)
    if power is None:
        return None
    binary = power["kind"] == "binary"

    def size(x: float) -> str:
        return f"{x * 100:.1f} pp" if binary else fmt_num(x)

    at = power["alpha"] if power["alpha"] is not None else cmp.alpha
    level = f"α = {at:.2g}" if at == cmp.alpha else f"α = {cmp.alpha:g}/{round(cmp.alpha / at)} = {at:.2g}"
    text = (f"Power ({POWER:.0%}, {level}) on {power['metric']}: detectable "
            f"difference ±{size(power['mde'])} with {power['n']:,} {power['unit']}")
    observed = power["observed"]
    if observed and power["n_needed"] is not None:
        text += (f"; the observed {'+' if observed > 0 else '−'}{size(abs(observed))} "
                 f"needs ≈ {power['n_needed']:,} {power['unit']}")
    return text + "."


def _tolerance_text(pair: PairComparison) -> str | None:
    margins = [f"{m.name} {format_tolerance(m.tolerance, m.direction)}"
               for m in pair.metrics if m.tolerance is not None]
    if not margins:
        return None
    return (f"Tolerance (relative): {', '.join(margins)}; such a metric counts as worse only "
            f"when its whole lift interval lies beyond the margin.")


def format_tolerance(tolerance: float, direction: str) -> str:
    """The margin as the lift it allows: +25% for lower-is-better, -25% for higher."""
    return f"{'+' if direction == 'lower' else '-'}{abs(tolerance) * 100:.3g}%"  # (-0 too)


def all_warnings(cmp: Comparison) -> list[str]:
    """Every warning of a comparison once; a metric's warning is prefixed by its name,
    unless several metrics share it word for word."""
    out = list(cmp.warnings)
    for pair in cmp.pairs:
        prefix = f"{pair.b}: " if len(cmp.pairs) > 1 else ""
        out.extend(prefix + w for w in pair.warnings)
        seen: dict[str, list[str]] = {}
        for m in pair.metrics:
            for w in m.warnings:
                seen.setdefault(w, []).append(m.name)
        for w, names in seen.items():
            out.append(prefix + (w if len(names) > 1 else f"{names[0]}: {w}"))
    return list(dict.fromkeys(out))
