"""Per-metric statistics, pure: sufficient statistics (and values for the rank tests)
in, a `MetricResult` out — the test, interval, lift, power and Bayesian column."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from promptlab.comparison import _limits
from promptlab.comparison._model import ArmSummary, MetricResult
from promptlab.comparison._robust import robust_paired, robust_unpaired
from promptlab.comparison._samples import Agg, PairAgg
from promptlab.comparison._warnings import sample_warnings

if TYPE_CHECKING:
    from promptlab.stats import Moments, TestResult


def unpaired_result(name: str, direction: str, agg_a: Agg, agg_b: Agg,
                    values: tuple[list[float], list[float]] | None, a: str, b: str,
                    alpha: float, sequential: bool, skipped_values: bool = False
                    ) -> MetricResult:
    """Two independent samples: two-proportion z / Fisher, or Welch t with Mann–Whitney."""
    from promptlab import stats as S

    binary = (agg_a.n + agg_b.n > 0 and (agg_a.binary or agg_a.n == 0)
              and (agg_b.binary or agg_b.n == 0))
    kind = "binary" if binary else "numeric"
    na, nb = agg_a.n, agg_b.n
    ma, mb = agg_a.moments, agg_b.moments
    arm_a = _arm_summary(na, agg_a.total, ma, binary, alpha)
    arm_b = _arm_summary(nb, agg_b.total, mb, binary, alpha)
    result = MetricResult(name, kind, None, direction, arm_a, arm_b, n_total=na + nb)
    result.warnings.extend(sample_warnings(name, agg_a, agg_b, a, b))
    if min(na, nb) < 2:
        return result
    n_eff = 2 / (1 / na + 1 / nb)
    if binary:
        xa, xb = round(agg_a.total), round(agg_b.total)
        test = S.compare_proportions(xa, na, xb, nb, alpha)
        pa, pb = xa / na, xb / nb
        se = math.sqrt(pa * (1 - pa) / na + pb * (1 - pb) / nb)
        lift = S.relative_lift(S.proportion_moments(xa, na), S.proportion_moments(xb, nb), alpha)
        chance = S.chance_b_beats_a_binary(xa, na, xb, nb)
        result.mde = S.mde_two_proportions(pa, n_eff, _limits.POWER, alpha)
        result.n_needed = _ceil(S.n_two_proportions(pa, pb, _limits.POWER, alpha))
    else:
        test = S.welch_t_test(ma, mb, alpha)
        se = test.se if test.se is not None else 0.0
        lift = S.relative_lift(ma, mb, alpha)
        chance = S.chance_b_beats_a_normal(test.estimate, se)
        sd = math.sqrt((ma.var + mb.var) / 2)
        result.mde = S.mde_t(n_eff, sd, _limits.POWER, alpha)
        result.n_needed = _ceil(S.n_t(test.estimate, sd, _limits.POWER, alpha))
        result.robust = robust_unpaired(values, alpha, test, skipped_values, result)
    _fill(result, test, lift, chance, se, alpha, sequential, na + nb)
    return result


def paired_result(name: str, direction: str, agg: PairAgg, diffs: list[float] | None,
                  a: str, b: str, alpha: float, sequential: bool,
                  skipped_values: bool = False) -> MetricResult:
    """Matched items: exact McNemar with Newcombe's interval, or paired t with Wilcoxon."""
    from promptlab import stats as S

    n = agg.n
    ma = S.Moments.from_sums(n, agg.sa, agg.saa)
    mb = S.Moments.from_sums(n, agg.sb, agg.sbb)
    md = S.Moments.from_sums(n, agg.sb - agg.sa, agg.sbb - 2 * agg.sab + agg.saa)
    binary = n > 0 and agg.n01 == n
    arm_a = _arm_summary(n, agg.sa, ma, binary, alpha)
    arm_b = _arm_summary(n, agg.sb, mb, binary, alpha)
    result = MetricResult(name, "binary" if binary else "numeric", None, direction, arm_a,
                          arm_b, n_total=n)
    a_agg = Agg(n, agg.sa, agg.saa, n if binary else 0)
    b_agg = Agg(n, agg.sb, agg.sbb, n if binary else 0)
    if n == 0:
        result.warnings.append(f"no item has a `{name}` value under both {a} and {b}")
        return result
    result.warnings.extend(sample_warnings(name, a_agg, b_agg, a, b, unit="pairs"))
    if n < 2:
        return result
    cov = (agg.sab - agg.sa * agg.sb / n) / (n - 1)
    lift = S.relative_lift(ma, mb, alpha, cov=cov, paired=True)
    se = md.se
    chance = S.chance_b_beats_a_normal(md.mean, se)
    if binary:
        neither = n - agg.a_only - agg.b_only - agg.both
        disc = agg.a_only + agg.b_only
        mc = S.mcnemar_test(agg.a_only, agg.b_only, exact=disc <= _limits.EXACT_MCNEMAR_MAX)
        ci = S.paired_proportions_interval(agg.both, agg.a_only, agg.b_only, neither, alpha)
        test = S.TestResult(mc.test, md.mean, ci, mc.p_value, mc.statistic, mc.df, se)
        psi = disc / n
        result.mde = S.mde_mcnemar(psi, n, _limits.POWER, alpha)
        result.n_needed = _ceil(S.n_mcnemar(psi, md.mean, _limits.POWER, alpha))
    else:
        test = S.paired_t_test(md, alpha)
        result.mde = S.mde_t(n, md.sd, _limits.POWER, alpha, paired=True)
        result.n_needed = _ceil(S.n_t(md.mean, md.sd, _limits.POWER, alpha, paired=True))
        result.robust = robust_paired(diffs, alpha, test, skipped_values, result)
    _fill(result, test, lift, chance, se, alpha, sequential, n)
    return result


def _arm_summary(n: int, total: float, moments: Moments, binary: bool,
                 alpha: float) -> ArmSummary:
    """A rate with its Wilson interval, or a mean with its Student t interval."""
    from promptlab import stats as S

    if binary:
        successes = round(total)
        return ArmSummary(n, successes / n if n else None,
                          S.wilson_interval(successes, n, alpha))
    return ArmSummary(n, moments.mean if n else None, S.mean_interval(moments, alpha))


def _fill(result: MetricResult, test: TestResult, lift: TestResult, chance: float | None,
          se: float, alpha: float, sequential: bool, n: int) -> None:
    from promptlab.stats import sequential_test

    result.test = test.test
    result.diff = test.estimate
    result.diff_ci = test.ci
    result.p_value = test.p_value
    result.se = se
    if result.a.mean:  # a relative lift over a zero baseline is undefined
        result.lift, result.lift_ci = lift.estimate, lift.ci
    if sequential:
        ci, p = sequential_test(test.estimate, se, n, alpha)
        result.diff_ci, result.p_value = ci, p
        result.test = f"{test.test} (sequential)"
        if lift.se is not None and result.lift is not None:
            result.lift_ci, _ = sequential_test(lift.estimate, lift.se, n, alpha)
    if chance is not None and result.direction == "lower":
        chance = 1 - chance
    result.chance_b_better = chance


def _ceil(value: float | None) -> int | None:
    if value is None or not math.isfinite(value):
        return None
    return math.ceil(value - 1e-9)
