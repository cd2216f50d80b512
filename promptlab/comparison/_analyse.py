"""The statistics of one metric, pure: sufficient statistics (and values for the rank
tests) in, a `MetricResult` out — the test, interval, lift, power, the Bayesian column,
the rank tests run alongside a t-test, and the warnings about the data behind it. The
bootstrap intervals of heavy-tailed values are drawn afterwards for all metrics at once
(`add_bootstrap_intervals`)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from promptlab.comparison._model import ArmSummary, MetricResult, fmt_num, fmt_p, p_text, pair_list

if TYPE_CHECKING:
    from promptlab.stats import Moments, TestResult

SMALL_SAMPLE = 20
POWER = 0.8
EXACT_MCNEMAR_MAX = 100


@dataclass
class Agg:
    """Sufficient statistics of one arm's values: n, Σx, Σx², how many are 0 or 1."""

    n: int = 0
    total: float = 0.0
    total_sq: float = 0.0
    n01: int = 0
    n_bool: int | None = None  # booleans among the raw values, when counted
    raw_n: int | None = None  # raw values (entries) behind the n units, when they differ
    has_bool: bool = False  # a boolean was seen (when n_bool was not counted)
    shift: float = 0.0  # total and total_sq are sums of (x − shift), see Moments.from_sums
    out_of_range: int = 0  # values dropped for |x| > MAX_ABS
    non_numeric: int = 0  # values dropped for not being numbers (built-in fields)
    on_errors: int = 0  # values on failed calls (scores, when counted per unit)

    @property
    def value_total(self) -> float:
        """Σx itself."""
        return self.total + self.n * self.shift

    @property
    def raw(self) -> int:
        return self.n if self.raw_n is None else self.raw_n

    @property
    def binary(self) -> bool:
        return self.n > 0 and self.n01 == self.n

    @property
    def moments(self) -> Moments:
        from promptlab.stats import Moments

        return Moments.from_sums(self.n, self.total, self.total_sq, self.shift)


@dataclass
class PairAgg:
    """Sufficient statistics of matched items (per-item means va, vb)."""

    n: int = 0
    sa: float = 0.0
    sb: float = 0.0
    saa: float = 0.0
    sbb: float = 0.0
    sab: float = 0.0
    n01: int = 0  # items whose va and vb are both 0 or 1
    a_only: int = 0  # va = 1, vb = 0
    b_only: int = 0  # va = 0, vb = 1
    both: int = 0  # va = 1, vb = 1
    shift: float = 0.0  # sa, sb, saa, sbb, sab are sums of (v − shift)


def unpaired_result(name: str, direction: str, agg_a: Agg, agg_b: Agg,
                    values: tuple[list[float], list[float]] | None, a: str, b: str,
                    alpha: float, sequential: bool, skipped_values: int | None = None
                    ) -> MetricResult:
    """Two independent samples: two-proportion z / Fisher, or Welch t with Mann–Whitney;
    an exact permutation test when neither side varies (the t statistic is undefined). A
    skewed metric's bootstrap interval is left to `add_bootstrap_intervals`."""
    from promptlab import stats as S

    binary = (agg_a.n + agg_b.n > 0 and (agg_a.binary or agg_a.n == 0)
              and (agg_b.binary or agg_b.n == 0))
    kind = "binary" if binary else "numeric"
    na, nb = agg_a.n, agg_b.n
    ma, mb = agg_a.moments, agg_b.moments
    arm_a = _arm_summary(na, agg_a.value_total, ma, binary, alpha)
    arm_b = _arm_summary(nb, agg_b.value_total, mb, binary, alpha)
    result = MetricResult(name, kind, None, direction, arm_a, arm_b, n_total=na + nb)
    result.warnings.extend(sample_warnings(name, agg_a, agg_b, a, b))
    if min(na, nb) < 2:
        return result
    n_eff = 2 / (1 / na + 1 / nb)
    if binary:
        xa, xb = round(agg_a.value_total), round(agg_b.value_total)
        test = S.compare_proportions(xa, na, xb, nb, alpha)
        pa, pb = xa / na, xb / nb
        se = math.sqrt(pa * (1 - pa) / na + pb * (1 - pb) / nb)
        lift = S.relative_lift(S.proportion_moments(xa, na, corrected=True),
                               S.proportion_moments(xb, nb, corrected=True), alpha,
                               normal=True)
        chance = S.chance_b_beats_a_binary(xa, na, xb, nb)
        result.diff_ci_method = "newcombe"
        result.power = lambda at: (S.mde_two_proportions(pa, n_eff, POWER, at),
                                   _ceil(S.n_two_proportions(pa, pb, POWER, at)))
    else:
        test = S.welch_t_test(ma, mb, alpha)
        se = test.se if test.se is not None else 0.0
        lift = S.relative_lift(ma, mb, alpha)
        chance = S.chance_b_beats_a_normal(test.estimate, se)
        sd = math.sqrt((ma.var + mb.var) / 2)
        result.diff_ci_method = "welch_t"
        result.power = lambda at: (S.mde_t(n_eff, sd, POWER, at),
                                   _ceil(S.n_t(test.estimate, sd, POWER, at)))
        if test.extra.get("zero_variance") and test.p_value is None:
            p = S.permutation_test_constant(ma.mean, na, mb.mean, nb)
            test = S.TestResult("permutation_exact", test.estimate, None, p, se=0.0)
            chance = None
            result.warnings.append(
                f"no `{name}` value varies within either version, so the t-test is "
                f"undefined; an exact permutation test is used instead (with {na} vs {nb} "
                f"units its p cannot go below {fmt_p(S.permutation_test_constant(0, na, 1, nb))}"
                "), and there is no interval")
        else:
            result.robust = robust_unpaired(values, alpha, test, skipped_values, result)
    result.informative = not (ma.var == 0 and mb.var == 0 and ma.mean == mb.mean)
    _fill(result, test, lift, chance, se, alpha, sequential, na + nb)
    return result


def paired_result(name: str, direction: str, agg: PairAgg, diffs: list[float] | None,
                  a: str, b: str, alpha: float, sequential: bool,
                  skipped_values: int | None = None) -> MetricResult:
    """Matched items: exact McNemar with Newcombe's interval, or paired t with Wilcoxon;
    an exact sign-flip test when every difference is the same. A skewed metric's bootstrap
    interval is left to `add_bootstrap_intervals`."""
    from promptlab import stats as S

    n = agg.n
    ma = S.Moments.from_sums(n, agg.sa, agg.saa, agg.shift)
    mb = S.Moments.from_sums(n, agg.sb, agg.sbb, agg.shift)
    md = S.Moments.from_sums(n, agg.sb - agg.sa, agg.sbb - 2 * agg.sab + agg.saa)
    binary = n > 0 and agg.n01 == n
    arm_a = _arm_summary(n, ma.mean * n, ma, binary, alpha)
    arm_b = _arm_summary(n, mb.mean * n, mb, binary, alpha)
    result = MetricResult(name, "binary" if binary else "numeric", None, direction, arm_a,
                          arm_b, n_total=n)
    a_agg = Agg(n, agg.sa, agg.saa, n if binary else 0, shift=agg.shift)
    b_agg = Agg(n, agg.sb, agg.sbb, n if binary else 0, shift=agg.shift)
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
        mc = S.mcnemar_test(agg.a_only, agg.b_only, exact=disc <= EXACT_MCNEMAR_MAX)
        ci = S.paired_proportions_interval(agg.both, agg.a_only, agg.b_only, neither, alpha)
        test = S.TestResult(mc.test, md.mean, ci, mc.p_value, mc.statistic, mc.df, se)
        psi = disc / n
        result.diff_ci_method = "newcombe_paired"
        result.power = lambda at: (S.mde_mcnemar(psi, n, POWER, at),
                                   _ceil(S.n_mcnemar(psi, md.mean, POWER, at)))
    else:
        test = S.paired_t_test(md, alpha)
        result.diff_ci_method = "paired_t"
        result.power = lambda at: (S.mde_t(n, md.sd, POWER, at, paired=True),
                                   _ceil(S.n_t(md.mean, md.sd, POWER, at, paired=True)))
        if test.extra.get("zero_variance") and test.p_value is None:
            test = S.TestResult("sign_flip_exact", md.mean, None,
                                S.sign_flip_test_constant(n, md.mean), se=0.0)
            chance = None
            result.warnings.append(
                f"every item's `{name}` difference is the same, so the paired t-test is "
                f"undefined; an exact sign-flip test is used instead (with {n} pairs its p "
                f"cannot go below {fmt_p(S.sign_flip_test_constant(n, 1.0))}), and there is "
                "no interval")
        else:
            result.robust = robust_paired(diffs, alpha, test, skipped_values, result)
    result.informative = not (md.var == 0 and md.mean == 0)
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


CI_NAMES = {"newcombe": "Newcombe hybrid score", "newcombe_paired": "Newcombe paired",
            "welch_t": "Welch t", "paired_t": "paired t"}


def _fill(result: MetricResult, test: TestResult, lift: TestResult, chance: float | None,
          se: float, alpha: float, sequential: bool, n: int) -> None:
    from promptlab.stats import sequential_lift_interval, sequential_test

    result.test = test.test
    result.diff = test.estimate
    result.diff_ci = test.ci
    result.p_value = test.p_value
    result.se = se
    if result.a.mean:  # a relative lift over a zero baseline is undefined
        result.lift, result.lift_ci = _lift_of(result), lift.ci
        result.lift_method = lift.test if lift.ci is not None else None
        if result.lift_ci is not None and result.lift is not None:  # corrected ratio at 0/100 %
            low, high = result.lift_ci
            result.lift_ci = (min(low, result.lift), max(high, result.lift))
    if test.ci is None:
        result.diff_ci_method = None
    if sequential and test.ci is not None and se > 0:
        ci, p = sequential_test(test.estimate, se, n, alpha)
        if ci is not None and result.kind == "binary":  # a rate difference lies in [-1, 1]
            ci = (max(-1.0, ci[0]), min(1.0, ci[1]))
        result.diff_ci, result.p_value = ci, p
        result.test = f"{test.test} (sequential)"
        result.diff_ci_method = "confidence_sequence"
        if result.lift is not None:
            result.lift_ci = sequential_lift_interval(lift, n, alpha)
        chance = None  # a fixed-horizon posterior would contradict the always-valid p
    if chance is not None and result.direction == "lower":
        chance = 1 - chance
    result.chance_b_better = chance
    _check_interval_agrees(result, alpha)


def _lift_of(result: MetricResult) -> float | None:
    """(B − A) / |A| from the arms' means: same sign as the difference."""
    ma, mb = result.a.mean, result.b.mean
    if not ma or mb is None:
        return None
    return (mb - ma) / abs(ma)


def _check_interval_agrees(result: MetricResult, alpha: float) -> None:
    """Say so when the difference's interval and the test disagree on significance (they
    are different methods: e.g. Newcombe's interval beside Fisher's exact test)."""
    ci, p = result.diff_ci, result.p_value
    if ci is None or p is None or result.diff_ci_method == "confidence_sequence":
        return
    excludes = ci[0] > 0 or ci[1] < 0
    if excludes != (p < alpha):
        method = CI_NAMES.get(result.diff_ci_method or "", "the")
        test = (result.test or "").replace("_", " ")
        result.warnings.append(
            f"the {method} interval {'excludes' if excludes else 'includes'} 0 while the "
            f"{test} test gives {p_text(p)}: two methods that disagree at the margin; "
            "the verdict follows the test")


def _ceil(value: float | None) -> int | None:
    if value is None or not math.isfinite(value):
        return None
    return math.ceil(value - 1e-9)


def robust_unpaired(values: tuple[list[float], list[float]] | None, alpha: float,
                    test: TestResult, skipped: int | None, result: MetricResult) -> dict[str, Any]:
    from promptlab import stats as S

    if values is None:
        return _not_run("mann_whitney", "units", skipped)
    va, vb = values
    mw = S.mann_whitney_test(va, vb)
    out: dict[str, Any] = {"test": "mann_whitney", "p_value": mw.p_value,
                           "u": mw.statistic, "prob_superiority": mw.estimate}
    if _heavy_tailed(va) or _heavy_tailed(vb):
        out["bootstrap_ci"] = None  # to be filled in by add_bootstrap_intervals
    _disagree(result, test, mw.p_value, alpha, "Welch t", "Mann–Whitney")
    return out


def robust_paired(diffs: list[float] | None, alpha: float, test: TestResult, skipped: int | None,
                  result: MetricResult) -> dict[str, Any]:
    from promptlab import stats as S

    if diffs is None:
        return _not_run("wilcoxon_pratt", "pairs", skipped)
    w = S.wilcoxon_signed_rank_test(diffs)
    out: dict[str, Any] = {"test": "wilcoxon_pratt", "p_value": w.p_value, "v": w.statistic,
                           "median_diff": w.estimate}
    if _heavy_tailed(diffs):
        out["bootstrap_ci"] = None  # to be filled in by add_bootstrap_intervals
    _disagree(result, test, w.p_value, alpha, "the paired t-test", "Wilcoxon signed-rank")
    return out


def add_bootstrap_intervals(results: Sequence[MetricResult],
                            samples: Mapping[str, tuple[list[float], list[float] | None]],
                            alpha: float) -> None:
    """Fill in the percentile bootstrap interval that the rank tests asked for (heavy-tailed
    values: `samples` maps the metric to its values under A and B, or to its paired
    differences and None), for all metrics in one call: metrics of the same units, such as
    latency and cost, then share their resamples (`stats.bootstrap_intervals`)."""
    from promptlab import stats as S

    todo = [(m.name, m.robust) for m in results
            if m.robust is not None and "bootstrap_ci" in m.robust]
    intervals = S.bootstrap_intervals([samples[name] for name, _ in todo], alpha=alpha)
    for (_, robust), interval in zip(todo, intervals, strict=True):
        robust["bootstrap_ci"] = pair_list(interval)


def _not_run(test: str, unit: str, skipped: int | None) -> dict[str, Any]:
    why = f"more than {skipped} {unit}" if skipped is not None else "not enough data"
    return {"test": test, "p_value": None, "skipped": why}


def _disagree(result: MetricResult, test: TestResult, p_robust: float | None, alpha: float,
              main: str, robust: str) -> None:
    if test.p_value is None or p_robust is None:
        return
    if (test.p_value < alpha) != (p_robust < alpha):
        result.warnings.append(
            f"{main} ({p_text(test.p_value)}) and {robust} ({p_text(p_robust)}) "
            "disagree: outliers or skew drive the difference; look at the distributions")


def _heavy_tailed(values: Sequence[float]) -> bool:
    """Sample skewness beyond ±1 (latency, cost): the bootstrap interval is reported too."""
    import numpy as np

    x = np.asarray(values, dtype=float)
    if x.size < 10:
        return False
    sd = x.std()
    if sd == 0:
        return False
    return abs(float(((x - x.mean()) ** 3).mean() / sd ** 3)) > 1


def sample_warnings(name: str, agg_a: Agg, agg_b: Agg, a: str, b: str,
                    unit: str = "units") -> list[str]:
    out: list[str] = []
    na, nb = agg_a.n, agg_b.n
    if na == 0 and nb == 0:
        out.append(f"no values for `{name}` in either version")
        return out
    if na == 0 or nb == 0:
        has, lacks = (b, a) if na == 0 else (a, b)
        out.append(f"`{name}` was logged only for {has}, not for {lacks}")
        return out
    if min(na, nb) < 2:
        out.append(f"not enough data: {a} has {na} and {b} has {nb} {unit} with `{name}` "
                   "(a test needs 2 or more on each side)")
    elif min(na, nb) < SMALL_SAMPLE:
        out.append(f"small sample ({a} n={na}, {b} n={nb}): the verdict is fragile")
    ma, mb = agg_a.moments, agg_b.moments
    if (na >= 2 and nb >= 2 and ma.var == 0 and mb.var == 0 and ma.mean == mb.mean
            and not (name == "error_rate" and ma.mean == 0)):  # no errors: nothing to say
        out.append(f"every `{name}` value is {fmt_num(ma.mean)} in both versions")
    if all(agg.n_bool is not None for agg in (agg_a, agg_b)):
        bools = (agg_a.n_bool or 0) + (agg_b.n_bool or 0)
        raw = agg_a.raw + agg_b.raw
        if 0 < bools < raw:
            out.append(f"`{name}` mixes booleans and numbers ({bools} booleans, {raw - bools} "
                       "numbers); booleans count as 0 and 1")
    elif agg_a.has_bool or agg_b.has_bool:
        out.append(f"`{name}` mixes booleans and numbers; booleans count as 0 and 1")
    return out
