"""From p-values to verdicts: the sample-ratio check, the adjustment across every metric ×
comparison, then each metric's verdict — better, worse, no significant difference, or not
enough data — and, for a metric with a tolerance, whether a worsening goes beyond it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from promptlab.comparison._model import format_tolerance, p_text

if TYPE_CHECKING:
    from promptlab.comparison._model import MetricResult, PairComparison
    from promptlab.comparison._target import Target


def check_srm(target: Target, pairs: list[PairComparison]) -> None:
    """χ² of units per variant against the experiment's weights (split traffic only);
    sets `pair.srm` (None when there is no check) and `pair.srm_status`, which says why
    there is none, and warns on the target when the split is broken."""
    spec = target.spec
    status = None
    if target.experiment is None:
        status = "not checked: no experiment, so no traffic weights to check against"
    elif spec is None:
        status = (f"not checked: no experiment file for {target.experiment!r}, so no "
                  "traffic weights to check against")
    elif any(p.design == "paired" for p in pairs):
        status = "not applicable: paired design, every item ran under every version"
    elif not all(arm.column == "variant" and spec.variants.get(arm.name, 0) > 0
                 for arm in target.arms):
        status = "not checked: the versions compared are not the experiment's weighted variants"
    if status is not None:
        for pair in pairs:
            pair.srm_status = status
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
        pair.srm_status = ("mismatch" if res.flag else f"skipped: {res.reason}" if res.reason
                           else "ok")
    if res.flag:
        moved = any(p.shared_units for p in pairs)
        why = ("; units with calls under two versions suggest the weights changed during the "
               "experiment: the check takes today's weights for all of the traffic, so "
               "compare the traffic since the change (--since WHEN)" if moved else "")
        target.warnings.append(
            f"sample ratio mismatch: {' / '.join(map(str, res.observed))} units against "
            f"{' / '.join(f'{e:.0f}' for e in res.expected)} expected from the weights "
            f"({p_text(res.p_value)}); the split is broken, do not trust these results "
            f"until you find why{why}")


NOT_TRUSTWORTHY = "not trustworthy: sample ratio mismatch"


def adjust(pairs: list[PairComparison], alpha: float, correction: str) -> None:
    """Holm / Benjamini–Hochberg (or no) adjustment over the metrics that can inform, then
    power at the family's adjusted α, then the verdicts (none under a sample ratio
    mismatch).

    A test whose p is 1 by construction (nothing varies in either version: no errors on
    either side, a constant token count) stays out of the family — it cannot be
    significant, and counting it would only weaken the real tests — and is shown with
    p_adjusted = p. The MDE and n_needed use α / m (the strictest threshold of Holm's and
    BH's family of m tests), so the stated power is the power the adjusted test has.
    """
    from promptlab.stats import adjust_p_values

    flat = [(pair, m) for pair in pairs for m in pair.metrics]
    family = [(pair, m) for pair, m in flat if m.informative and m.p_value is not None]
    adjusted = adjust_p_values([m.p_value for _, m in family], correction)
    for (_, m), p_adjusted in zip(family, adjusted, strict=True):
        m.p_adjusted = p_adjusted
    size = len(family)
    at = alpha / size if correction != "none" and size > 1 else alpha
    for pair, m in flat:
        if not (m.informative and m.p_value is not None):
            m.p_adjusted = m.p_value
        if m.power is not None:
            m.mde, m.n_needed = m.power(at)
            m.power_alpha = at
        _verdict(m, pair.b, alpha)
        if pair.srm and pair.srm.get("flag"):
            m.verdict = NOT_TRUSTWORTHY
            m.worse = False
            m.untrustworthy = True


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
