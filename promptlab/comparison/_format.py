"""The text report of a Comparison (what `promptlab compare` prints): a header, one
table per comparison, then the SRM and power lines and the footnote."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from promptlab.comparison import _limits
from promptlab.comparison._numbers import fmt_num, fmt_p
from promptlab.comparison._verdict import format_tolerance

if TYPE_CHECKING:
    from promptlab.comparison._model import (
        ArmSummary,
        Comparison,
        MetricResult,
        PairComparison,
    )


def format_comparison(cmp: Comparison, fmt: str = "simple") -> str:
    """The table report of a Comparison (what `promptlab compare` prints)."""
    from tabulate import tabulate

    blocks: list[str] = []
    n_tests = sum(1 for p in cmp.pairs for m in p.metrics if m.p_value is not None)
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
        power = _power_text(cmp, pair)
        if power:
            lines.append(power)
        tolerance = _tolerance_text(pair)
        if tolerance:
            lines.append(tolerance)
        lines.append("* Bayesian posterior probability that the new version is better "
                     "(flat prior); not a p-value.")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def _design_text(pair: PairComparison) -> str:
    if pair.design == "paired":
        n = max((m.a.n for m in pair.metrics), default=0)
        return f"paired on {n} items"
    a, b = pair.units
    return f"unpaired, {a:,} vs {b:,} units"


def _table_row(m: MetricResult) -> list[str]:
    name = m.name + (f" ({m.role})" if m.role else "")
    binary = m.kind == "binary"
    return [
        name, _arm_text(m.a, binary), _arm_text(m.b, binary),
        _diff_text(m.diff, m.diff_ci, binary), _lift_text(m.lift, m.lift_ci),
        fmt_p(m.p_adjusted) if m.p_adjusted is not None else "–",
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
    if exponent < -3:
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


def _srm_text(srm: dict[str, Any]) -> str:
    observed = " / ".join(f"{o:,}" for o in srm["observed"])
    expected = " / ".join(f"{e:,.0f}" for e in srm["expected"])
    if srm.get("p_value") is None:
        return f"SRM check: {srm.get('skipped', 'skipped')} (units {observed})."
    if srm["flag"]:
        return (f"SAMPLE RATIO MISMATCH: units {observed} vs {expected} expected, "
                f"p = {fmt_p(srm['p_value'])} < 0.001 — the traffic split is broken.")
    return (f"SRM check: units {observed} vs {expected} expected, "
            f"p = {fmt_p(srm['p_value'])} (ok).")


def _power_text(cmp: Comparison, pair: PairComparison) -> str | None:
    chosen = next((m for m in pair.metrics if m.role == "primary"), None) or next(
        (m for m in pair.metrics if m.mde is not None), None)
    if chosen is None or chosen.mde is None:
        return None
    binary = chosen.kind == "binary"
    unit = "pairs" if pair.design == "paired" else "units per version"
    n = chosen.a.n if pair.design == "paired" else min(chosen.a.n, chosen.b.n)

    def size(x: float) -> str:
        return f"{x * 100:.1f} pp" if binary else fmt_num(x)

    text = (f"Power ({_limits.POWER:.0%}, α = {cmp.alpha:g}) on {chosen.name}: detectable "
            f"difference ±{size(chosen.mde)} with {n:,} {unit}")
    if chosen.diff and chosen.n_needed is not None:
        text += (f"; the observed {'+' if chosen.diff > 0 else '−'}{size(abs(chosen.diff))} "
                 f"needs ≈ {chosen.n_needed:,} {unit}")
    return text + "."


def _tolerance_text(pair: PairComparison) -> str | None:
    margins = [f"{m.name} {format_tolerance(m.tolerance, m.direction)}"
               for m in pair.metrics if m.tolerance is not None]
    if not margins:
        return None
    return (f"Tolerance (relative): {', '.join(margins)}; such a metric counts as worse only "
            f"when its whole lift interval lies beyond the margin.")
