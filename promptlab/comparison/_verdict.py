"""From p-values to verdicts: the sample-ratio check, the adjustment across every metric ×
comparison, then each metric's verdict — better, worse, no significant difference, or not
enough data — and, for a metric with a tolerance, whether a worsening goes beyond it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from promptlab.comparison._model import fmt_p, format_tolerance

if TYPE_CHECKING:
    from promptlab.comparison._model import MetricResult, PairComparison
    from promptlab.comparison._target import Target


def check_srm(target: Target, pairs: list[PairComparison]) -> None:
    """χ² of units per variant against the experiment's weights (split traffic only);
    sets `pair.srm` and warns on the target when the split is broken."""
    spec = target.spec
    if spec is None or any(p.design == "paired" for p in pairs):
        return
    if not all(arm.column == "variant" and spec.variants.get(arm.name, 0) > 0
               for arm in target.arms):
        return
    from promptlab.stats import srm_test

    units = [pairs[0].units[0], *(p.units[1] for p in pairs)]
    weights = [spec.variants[arm.name] for arm in target.arms]
    res = srm_test(units, weights)
    srm = {"p_value": res.p_value, "flag": res.flag, "observed": res.observed,
           "expected": [round(e, 3) for e in res.expected]}
    if res.reason:
        srm["skipped"] = res.reason
    for pair in pairs:
        pair.srm = srm
    if res.flag:
        target.warnings.append(
            f"sample ratio mismatch: {' / '.join(map(str, res.observed))} units against "
            f"{' / '.join(f'{e:.0f}' for e in res.expected)} expected from the weights "
            f"(p = {fmt_p(res.p_value)}); the split is broken, do not trust these results "
            "until you find why")


def adjust(pairs: list[PairComparison], alpha: float, correction: str) -> None:
    """Holm / Benjamini–Hochberg (or no) adjustment over all metrics, then the verdicts."""
    from promptlab.stats import adjust_p_values

    flat = [(pair, m) for pair in pairs for m in pair.metrics]
    adjusted = adjust_p_values([m.p_value for _, m in flat], correction)
    for (pair, m), p_adjusted in zip(flat, adjusted, strict=True):
        m.p_adjusted = p_adjusted
        _verdict(m, pair.b, alpha)


def _verdict(m: MetricResult, b: str, alpha: float) -> None:
    m.worse = False
    if m.p_adjusted is None or m.diff is None:
        m.significant = False
        m.verdict = "not enough data"
        return
    m.significant = m.p_adjusted < alpha
    if not m.significant or m.diff == 0:
        m.significant = m.significant and m.diff != 0
        m.verdict = "no significant difference"
        return
    better = (m.diff > 0) == (m.direction == "higher")
    m.verdict = f"{b} better" if better else f"{b} worse"
    m.worse = not better
    if m.worse and m.tolerance is not None:
        _judge_tolerance(m, b, m.tolerance)


def _judge_tolerance(m: MetricResult, b: str, tolerance: float) -> None:
    """A significantly worse metric with a tolerance (a relative non-inferiority margin)
    counts as worse only when its whole lift interval lies beyond the margin in the bad
    direction. So a tolerance only ever softens a verdict, and Holm/BH still apply."""
    if m.lift_ci is None:
        m.warnings.append(f"the {format_tolerance(tolerance, m.direction)} tolerance cannot "
                          "be applied (no relative lift over a zero baseline): any "
                          "significant worsening counts as worse")
        return
    sign = 1 if m.direction == "lower" else -1  # bad lifts are positive for lower-is-better
    low, high = sorted(sign * x for x in m.lift_ci)
    limit = format_tolerance(tolerance, m.direction)
    if low > tolerance:
        m.verdict = f"{b} worse beyond tolerance ({limit})"
    elif high <= tolerance:
        m.worse = False
        m.verdict = f"{b} worse, within tolerance ({'≤' if sign > 0 else '≥'} {limit})"
    else:
        m.worse = False
        m.verdict = f"{b} worse, not clearly beyond tolerance ({limit})"
