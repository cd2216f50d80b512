"""Significance tests, intervals, SRM, multiple-testing corrections and power — pure numbers.

Every function takes counts, sufficient statistics (`Moments`) or arrays and returns plain
floats or small frozen dataclasses. No I/O, no SQL, nothing from promptlab. Differences are
always B − A (R reports x − y, so signs flip against R when x is A).

No NaN or infinity ever leaves this module: degenerate inputs (n < 2, zero variance,
all-identical values) give `None` where a number cannot be defined, and a finite number
where the limit is clear (identical arms: difference 0, p = 1).

Every test scipy implements is scipy's: `scipy.stats` computes the exact binomial test
(`binomtest`, Clopper–Pearson limits), Fisher's exact test (`fisher_exact`; the conditional
odds ratio and its interval from `contingency.odds_ratio`), Mann–Whitney U (`mannwhitneyu`),
Wilcoxon's signed-rank test (`wilcoxon`, Pratt's zeros), Welch's t (`ttest_ind_from_stats`),
the paired t and McNemar's χ² (their distributions, `t` and `chi2`), the two-proportion
χ² (`chi2_contingency`), the SRM goodness-of-fit (`chisquare`) and Benjamini–Hochberg
(`false_discovery_control`). Each call names its method, continuity correction and zero
handling, so results do not move with scipy's defaults. What stays here is what scipy does
not have: Newcombe's score intervals for differences (built from scipy's Wilson limits),
Holm's adjustment, power and sample size,
relative lift, confidence sequences, the Bayesian chance to win, the bootstrap.

`scipy.stats` is imported on first use (`_scipy_stats`), never at import of this module;
the small helpers use `scipy.special` alone, which loads in a fraction of the time.
"""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

Interval = tuple[float, float]
Sample = Sequence[float] | np.ndarray


# -- plumbing ---------------------------------------------------------------------------


@functools.cache
def _scipy_stats() -> Any:
    """`scipy.stats` (with `scipy.stats.contingency`), imported on first use: it costs
    several times `scipy.special`'s import, which `promptlab --help` must not pay."""
    import scipy.stats
    import scipy.stats.contingency

    return scipy.stats


def _finite(value: float | None) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _clip_p(p: float) -> float:
    return min(1.0, max(0.0, float(p)))


def _z(q: float) -> float:
    """Standard normal quantile."""
    from scipy.special import ndtri

    return float(ndtri(q))


def _norm_cdf(x: float) -> float:
    return 0.5 * math.erfc(-x / math.sqrt(2.0))


def _t_sf(t: float, df: float) -> float:
    from scipy.special import stdtr

    return float(stdtr(df, -t))


def _t_quantile(q: float, df: float) -> float:
    from scipy.special import stdtrit

    return float(stdtrit(df, q))


def _solve(f: Any, lo: float, hi: float, tol: float = 1e-12) -> float:
    """Root of a monotone `f` on [lo, hi] (f(lo), f(hi) of opposite signs) by bisection on
    the relative scale; plenty fast for the scalar problems here."""
    f_lo = f(lo)
    for _ in range(400):
        mid = 0.5 * (lo + hi)
        if hi - lo <= tol * max(1.0, abs(mid)):
            break
        f_mid = f(mid)
        if f_mid == 0:
            return mid
        if (f_mid < 0) == (f_lo < 0):
            lo, f_lo = mid, f_mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def rank_data(values: Sequence[float] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Average ranks (1-based, ties share their mean rank; `scipy.stats.rankdata`) and the
    size of each tie group."""
    x = np.asarray(values, dtype=float)
    ranks = np.asarray(_scipy_stats().rankdata(x, method="average"), dtype=float)
    _, sizes = np.unique(x, return_counts=True)
    return ranks, sizes


# -- sufficient statistics --------------------------------------------------------------


@dataclass(frozen=True)
class Moments:
    """n, mean and sample variance (ddof = 1) of one sample.

    Built from values (`Moments.of`) or from sums pushed down to SQL
    (`Moments.from_sums(n, sum, sum_of_squares)`), so a Welch or paired t-test never needs
    the raw values.
    """

    n: int
    mean: float
    var: float

    @classmethod
    def of(cls, values: Sequence[float] | np.ndarray) -> Moments:
        arr = np.asarray(values, dtype=float)
        n = int(arr.size)
        if n == 0:
            return cls(0, 0.0, 0.0)
        mean = float(arr.mean())
        var = float(arr.var(ddof=1)) if n > 1 else 0.0
        return cls(n, mean, max(var, 0.0))

    @classmethod
    def from_sums(cls, n: int, total: float, total_sq: float, shift: float = 0.0) -> Moments:
        """From n, Σ(x − shift) and Σ(x − shift)²; a shift near the data (any one value)
        keeps the variance exact where Σx² − (Σx)²/n would cancel (values ≈ 1e7 ± 0.001)."""
        n = int(n)
        if n <= 0:
            return cls(0, 0.0, 0.0)
        centred = total / n
        mean = shift + centred
        if n < 2:
            return cls(n, mean, 0.0)
        ss = total_sq - total * centred
        return cls(n, mean, max(ss / (n - 1), 0.0))

    @property
    def sd(self) -> float:
        return math.sqrt(self.var)

    @property
    def se(self) -> float:
        return math.sqrt(self.var / self.n) if self.n > 0 else 0.0


@dataclass(frozen=True)
class TestResult:
    """One test's outcome. `estimate` is B − A (a paired mean difference for paired tests).

    `ci` is the (1 − alpha) interval of `estimate`; `p_value` is two-sided. A field that
    cannot be defined from the data is None, never NaN.
    """

    test: str
    estimate: float
    ci: Interval | None
    p_value: float | None
    statistic: float | None = None
    df: float | None = None
    se: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)


# -- one-sample intervals ---------------------------------------------------------------


def wilson_interval(successes: int, n: int, alpha: float = 0.05) -> Interval | None:
    """Wilson score interval for a binomial proportion (no continuity correction).

    Reference: Wilson (1927) JASA 22:209–212; Newcombe (1998) Stat Med 17:857–872, method 3.
    Equals R's `prop.test(x, n, correct = FALSE)$conf.int`; computed by
    `scipy.stats.binomtest(x, n).proportion_ci(method="wilson")`.
    """
    if n <= 0:
        return None
    ci = _scipy_stats().binomtest(int(successes), int(n)).proportion_ci(
        confidence_level=1 - alpha, method="wilson")
    return (max(0.0, float(ci.low)), min(1.0, float(ci.high)))


def mean_interval(m: Moments, alpha: float = 0.05) -> Interval | None:
    """Student-t interval for a mean: mean ± t(1 − α/2, n − 1)·s/√n (R `t.test(x)`)."""
    if m.n < 2:
        return None
    half = _t_quantile(1 - alpha / 2, m.n - 1) * m.se
    return (m.mean - half, m.mean + half)


def binomial_test(successes: int, n: int, p: float = 0.5, alpha: float = 0.05) -> TestResult:
    """Exact binomial test with the Clopper–Pearson interval.

    Two-sided p sums the probabilities of outcomes no more likely than the one observed
    (R's `binom.test`). `scipy.stats.binomtest`, interval by its `proportion_ci(method=
    "exact")`. Reference: Clopper & Pearson (1934) Biometrika 26:404–413.
    """
    if n <= 0:
        return TestResult("binomial_exact", p, None, None)
    x, n = int(successes), int(n)
    res = _scipy_stats().binomtest(x, n, p, alternative="two-sided")
    ci = res.proportion_ci(confidence_level=1 - alpha, method="exact")
    return TestResult("binomial_exact", x / n, (float(ci.low), float(ci.high)),
                      _clip_p(res.pvalue), statistic=float(x))


# -- unpaired, binary -------------------------------------------------------------------


def newcombe_interval(
    x_a: int, n_a: int, x_b: int, n_b: int, alpha: float = 0.05
) -> Interval | None:
    """Newcombe's hybrid score interval for p_B − p_A (method 10), built from Wilson limits.

    Keeps sensible width at 0 % and 100 %, where the Wald interval collapses to a point.
    Reference: Newcombe (1998) Stat Med 17:873–890, method 10.
    """
    wa, wb = wilson_interval(x_a, n_a, alpha), wilson_interval(x_b, n_b, alpha)
    if wa is None or wb is None:
        return None
    pa, pb = x_a / n_a, x_b / n_b
    d = pb - pa
    lower = d - math.sqrt((pb - wb[0]) ** 2 + (wa[1] - pa) ** 2)
    upper = d + math.sqrt((wb[1] - pb) ** 2 + (pa - wa[0]) ** 2)
    return (max(-1.0, lower), min(1.0, upper))


def two_proportion_z_test(
    x_a: int, n_a: int, x_b: int, n_b: int, alpha: float = 0.05
) -> TestResult:
    """Two-proportion z-test with pooled variance = Pearson χ² on the 2×2 table without
    continuity correction (z² = χ²); interval for p_B − p_A by Newcombe's method 10.

    The χ² and p-value are `scipy.stats.chi2_contingency(correction=False)`.
    Reference: Agresti (2013) Categorical Data Analysis, 3rd ed., §3.2; R's
    `prop.test(x, n, correct = FALSE)` (same p-value).
    """
    if n_a <= 0 or n_b <= 0:
        return TestResult("two_proportion_z", 0.0, None, None)
    pa, pb = x_a / n_a, x_b / n_b
    d = pb - pa
    pooled = (x_a + x_b) / (n_a + n_b)
    var = pooled * (1 - pooled) * (1 / n_a + 1 / n_b)
    ci = newcombe_interval(x_a, n_a, x_b, n_b, alpha)
    if var <= 0:  # every value identical in both arms
        return TestResult("two_proportion_z", d, ci, 1.0, statistic=0.0, se=0.0,
                          extra={"chi2": 0.0})
    chi2, p, _, _ = _scipy_stats().chi2_contingency(
        [[x_b, n_b - x_b], [x_a, n_a - x_a]], correction=False)
    z = math.copysign(math.sqrt(chi2), d)  # z² = χ²; the sign is that of p_B − p_A
    se = math.sqrt(pa * (1 - pa) / n_a + pb * (1 - pb) / n_b)
    return TestResult("two_proportion_z", d, ci, _clip_p(p), statistic=z, se=se,
                      extra={"chi2": float(chi2)})


def expected_cells(x_a: int, n_a: int, x_b: int, n_b: int) -> list[float]:
    """Expected counts of the 2×2 table (arm × outcome) under independence."""
    total = n_a + n_b
    if total == 0:
        return [0.0, 0.0, 0.0, 0.0]
    succ = x_a + x_b
    fail = total - succ
    return [n_a * succ / total, n_a * fail / total, n_b * succ / total, n_b * fail / total]


def fisher_exact_test(x_a: int, n_a: int, x_b: int, n_b: int, alpha: float = 0.05) -> TestResult:
    """Fisher's exact test on the 2×2 table, two-sided (R's `fisher.test`: sum of tables no
    more likely than the observed); reports the conditional MLE odds ratio (B vs A) with its
    exact interval (R's construction: each tail at α/2), and Newcombe's interval for
    p_B − p_A. `scipy.stats.fisher_exact` and `scipy.stats.contingency.odds_ratio`.

    Reference: Fisher (1935) J R Stat Soc 98:39–82; Agresti (2013) §3.5 and §16.6.
    """
    if n_a <= 0 or n_b <= 0:
        return TestResult("fisher_exact", 0.0, None, None)
    a, b, c, d = x_b, n_b - x_b, x_a, n_a - x_a
    _, p = _scipy_stats().fisher_exact([[a, b], [c, d]], alternative="two-sided")
    p = _clip_p(p)
    estimate, low, high = conditional_odds_ratio(a, b, c, d, alpha)
    return TestResult(
        "fisher_exact", x_b / n_b - x_a / n_a, newcombe_interval(x_a, n_a, x_b, n_b, alpha),
        p, extra={"odds_ratio": estimate, "odds_ratio_ci": (low, high)},
    )


def conditional_odds_ratio(a: int, b: int, c: int, d: int, alpha: float = 0.05
                           ) -> tuple[float | None, float | None, float | None]:
    """Conditional maximum-likelihood odds ratio of the table [[a, b], [c, d]] and its exact
    interval (each tail at α/2), from the noncentral hypergeometric distribution of `a`
    given the margins: `scipy.stats.contingency.odds_ratio(kind="conditional")`, which
    matches R's `fisher.test` estimate and conf.int. An infinite limit or estimate, or a
    table with an empty margin, is None.
    Reference: Agresti (2013) §16.6.4; R's `fisher.test` source.
    """
    m, n, k = a + b, c + d, a + c
    if m == 0 or n == 0 or k == 0 or k == m + n:
        return None, None, None
    res = _scipy_stats().contingency.odds_ratio([[a, b], [c, d]], kind="conditional")
    ci = res.confidence_interval(confidence_level=1 - alpha, alternative="two-sided")
    return _finite(res.statistic), _finite(ci.low), _finite(ci.high)


def compare_proportions(
    x_a: int, n_a: int, x_b: int, n_b: int, alpha: float = 0.05
) -> TestResult:
    """Unpaired binary outcome: the z/χ² test, or Fisher's exact test when any expected cell
    of the 2×2 table is below 5 (Cochran's rule; Agresti 2013 §3.5)."""
    if min(expected_cells(x_a, n_a, x_b, n_b)) < 5 and 0 < x_a + x_b < n_a + n_b:
        return fisher_exact_test(x_a, n_a, x_b, n_b, alpha)
    return two_proportion_z_test(x_a, n_a, x_b, n_b, alpha)


# -- unpaired, numeric ------------------------------------------------------------------


def welch_t_test(a: Moments, b: Moments, alpha: float = 0.05) -> TestResult:
    """Welch's unequal-variance t-test and interval for mean_B − mean_A, from sufficient
    statistics (`scipy.stats.ttest_ind_from_stats(equal_var=False)`); Welch–Satterthwaite
    degrees of freedom.

    Reference: Welch (1947) Biometrika 34:28–35; R's `t.test(x, y)` (var.equal = FALSE).
    """
    d = b.mean - a.mean
    if a.n < 2 or b.n < 2:
        return TestResult("welch_t", d, None, None)
    big = max(abs(a.mean), abs(b.mean), a.sd, b.sd)
    if big > 2.0**100:  # the df squares the variances (1e80² overflows): test a scaled copy
        scale = 2.0 ** math.frexp(big)[1]  # a power of two: exact
        small = welch_t_test(Moments(a.n, a.mean / scale, a.var / scale / scale),
                             Moments(b.n, b.mean / scale, b.var / scale / scale), alpha)
        ci = (small.ci[0] * scale, small.ci[1] * scale) if small.ci else None
        return TestResult("welch_t", d, ci, small.p_value, statistic=small.statistic,
                          df=small.df, se=None if small.se is None else small.se * scale,
                          extra=small.extra)
    va, vb = a.var / a.n, b.var / b.n
    se2 = va + vb
    if se2 <= 0:
        return _degenerate("welch_t", d)
    res = _scipy_stats().ttest_ind_from_stats(b.mean, b.sd, b.n, a.mean, a.sd, a.n,
                                              equal_var=False, alternative="two-sided")
    # The interval needs the Welch–Satterthwaite df, which the scipy result does not carry.
    df_den = (va * va / (a.n - 1) if va > 0 else 0.0) + (vb * vb / (b.n - 1) if vb > 0 else 0.0)
    df = se2 * se2 / df_den
    se = math.sqrt(se2)
    half = _t_quantile(1 - alpha / 2, df) * se
    return TestResult("welch_t", d, (d - half, d + half), _clip_p(res.pvalue),
                      statistic=float(res.statistic), df=df, se=se)


def _degenerate(test: str, d: float) -> TestResult:
    """No variance on either side: the t statistic is undefined (0/0 or d/0), so there is
    no p-value and no interval here; `permutation_test_constant` or
    `sign_flip_test_constant` give the exact answer the data allow."""
    if d == 0:
        return TestResult(test, 0.0, None, 1.0, statistic=0.0, se=0.0,
                          extra={"zero_variance": True})
    return TestResult(test, d, None, None, se=0.0, extra={"zero_variance": True})


def permutation_test_constant(value_a: float, n_a: int, value_b: float, n_b: int) -> float:
    """Exact two-sided permutation p-value of mean_B − mean_A when every A value is
    `value_a` and every B value `value_b` (no variance within either arm).

    A relabelling that moves k of B's values into A gives (value_b − value_a)·(1 − k/n_B −
    k/n_A), so only the observed labelling is as extreme in its direction: the one-sided p
    is 1/C(n_A + n_B, n_A), and the two-sided p twice that (scipy's convention) — 1/3 at
    2 vs 2, never 0. Equals `scipy.stats.permutation_test` with every permutation.
    Reference: Good (2005) Permutation, Parametric and Bootstrap Tests, ch. 3.
    """
    if value_a == value_b:
        return 1.0
    return _clip_p(2.0 / math.comb(n_a + n_b, n_a))


def sign_flip_test_constant(n: int, d: float) -> float:
    """Exact two-sided sign-flip (paired permutation) p-value when all n paired
    differences equal d: only the all-same-sign patterns are as extreme, p = 2/2ⁿ.
    Equals `scipy.stats.permutation_test(..., permutation_type="samples")`."""
    if d == 0 or n < 1:
        return 1.0
    return _clip_p(2.0 * 0.5 ** n)


def mann_whitney_test(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray,
                      alternative: str = "two-sided") -> TestResult:
    """Mann–Whitney U (Wilcoxon rank-sum) test of B against A, as R's `wilcox.test(x, y)`.

    `scipy.stats.mannwhitneyu`, with R's choice of method made here (scipy's "auto" goes
    exact only below 8): `method="exact"` when both samples are under 50 and there are no
    ties; otherwise `"asymptotic"` with tie and continuity correction. `statistic`
    is U for B (R's W when x is B); `estimate` is the probability of superiority
    P(B > A) + ½·P(B = A) = U / (n_A·n_B). `alternative`: "two-sided", "greater" (B > A)
    or "less".
    Reference: Mann & Whitney (1947) Ann Math Stat 18:50–60; Hollander & Wolfe (1999) §4.1.
    """
    xa, xb = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    m, n = xb.size, xa.size
    if m < 1 or n < 1 or m + n < 3:
        return TestResult("mann_whitney", 0.5, None, None)
    if np.ptp(np.concatenate([xa, xb])) == 0:
        return TestResult("mann_whitney", 0.5, None, 1.0, statistic=m * n / 2,
                          extra={"all_identical": True})
    _check_alternative(alternative)
    no_ties = np.unique(np.concatenate([xa, xb])).size == m + n
    method = "exact" if m < 50 and n < 50 and no_ties else "asymptotic"
    res = _scipy_stats().mannwhitneyu(xb, xa, use_continuity=True, alternative=alternative,
                                      method=method)
    u = float(res.statistic)
    return TestResult("mann_whitney", u / (m * n), None, _clip_p(res.pvalue), statistic=u,
                      extra={"method": method})


def _check_alternative(alternative: str) -> None:
    if alternative not in ("two-sided", "greater", "less"):
        raise ValueError(f"unknown alternative {alternative!r}; use two-sided, greater or less")


# -- paired -----------------------------------------------------------------------------


def paired_t_test(diff: Moments, alpha: float = 0.05) -> TestResult:
    """Paired t-test and interval for the mean of the differences d = B − A per item.

    From the moments of the differences (`scipy.stats.ttest_1samp` would need the values):
    t = mean/se against `scipy.stats.t` with n − 1 df.
    Reference: Student (1908); R's `t.test(x, y, paired = TRUE)`.
    """
    if diff.n < 2:
        return TestResult("paired_t", diff.mean, None, None)
    if diff.var <= 0:
        return _degenerate("paired_t", diff.mean)
    df = diff.n - 1
    se = diff.se
    t = diff.mean / se
    dist = _scipy_stats().t(df)
    half = float(dist.ppf(1 - alpha / 2)) * se
    return TestResult("paired_t", diff.mean, (diff.mean - half, diff.mean + half),
                      _clip_p(2 * dist.sf(abs(t))), statistic=t, df=float(df), se=se)


def wilcoxon_signed_rank_test(diff: Sequence[float] | np.ndarray,
                              alternative: str = "two-sided") -> TestResult:
    """Wilcoxon signed-rank test on paired differences, zero differences handled by Pratt's
    method (zeros are ranked, then dropped), so ties at zero still count toward n.

    `scipy.stats.wilcoxon(zero_method="pratt", correction=True)`, with R's choice of
    method made here: `method="exact"` when n < 50 without zeros or ties (R's
    `wilcox.test(x, y, paired = TRUE)`); otherwise `"asymptotic"`, with Pratt's adjusted
    mean and variance (Cureton 1967), tie correction and continuity correction. `statistic` is V,
    the sum of the positive differences' ranks; `estimate` the median difference.
    Reference: Wilcoxon (1945) Biometrics Bull 1:80–83; Pratt (1959) JASA 54:655–667.
    """
    d = np.asarray(diff, dtype=float)
    if d.size < 2:
        return TestResult("wilcoxon_pratt", 0.0, None, None)
    if not np.any(d):
        return TestResult("wilcoxon_pratt", 0.0, None, 1.0, statistic=0.0,
                          extra={"all_zero": True})
    _check_alternative(alternative)
    ranks, ties = rank_data(np.abs(d))
    # V (R's statistic) for every alternative; scipy reports min(V+, V−) when two-sided.
    v = float(ranks[d > 0].sum())
    exact = d.size < 50 and np.all(d != 0) and np.all(ties == 1)
    method = "exact" if exact else "asymptotic"
    res = _scipy_stats().wilcoxon(d, zero_method="pratt", correction=True,
                                  alternative=alternative, method=method)
    return TestResult("wilcoxon_pratt", float(np.median(d)), None, _clip_p(res.pvalue),
                      statistic=v, extra={"method": method})


def mcnemar_test(a_only: int, b_only: int, exact: bool = True,
                 correction: bool = True) -> TestResult:
    """McNemar's test on the discordant pairs of a paired binary outcome.

    `a_only` = pairs where A passed and B failed, `b_only` = B passed and A failed.
    Exact: two-sided binomial test of b_only out of a_only + b_only against ½. Otherwise
    χ² = (|b − c| − 1)² / (b + c) with continuity correction (R's `mcnemar.test`; scipy
    has no McNemar test, so the statistic is formed here and referred to `scipy.stats.chi2`).
    Reference: McNemar (1947) Psychometrika 12:153–157; Fagerland, Lydersen & Laake (2013)
    BMC Med Res Methodol 13:91.
    """
    disc = a_only + b_only
    name = "mcnemar_exact" if exact else "mcnemar_chi2"
    if disc == 0:
        return TestResult(name, 0.0, None, 1.0, statistic=0.0)
    if exact:
        return TestResult(name, 0.0, None, binomial_test(b_only, disc, 0.5).p_value,
                          statistic=float(b_only))
    num = abs(b_only - a_only) - (1 if correction else 0)
    chi2 = max(num, 0) ** 2 / disc
    return TestResult(name, 0.0, None, _clip_p(_scipy_stats().chi2.sf(chi2, 1)),
                      statistic=chi2, df=1.0)


def paired_proportions_interval(both: int, a_only: int, b_only: int, neither: int,
                                alpha: float = 0.05) -> Interval | None:
    """Interval for p_B − p_A from paired binary data, Newcombe's method 10 (Wilson limits
    of each margin combined with the φ correlation of the 2×2 table).

    Reference: Newcombe (1998) Stat Med 17:2635–2650, method 10.
    """
    n = both + a_only + b_only + neither
    if n <= 0:
        return None
    x_a, x_b = both + a_only, both + b_only
    pa, pb = x_a / n, x_b / n
    wa, wb = wilson_interval(x_a, n, alpha), wilson_interval(x_b, n, alpha)
    assert wa is not None and wb is not None
    denom = (both + a_only) * (b_only + neither) * (both + b_only) * (a_only + neither)
    phi = (both * neither - a_only * b_only) / math.sqrt(denom) if denom > 0 else 0.0
    d = pb - pa
    dl = (pb - wb[0]) ** 2 - 2 * phi * (pb - wb[0]) * (wa[1] - pa) + (wa[1] - pa) ** 2
    du = (wb[1] - pb) ** 2 - 2 * phi * (wb[1] - pb) * (pa - wa[0]) + (pa - wa[0]) ** 2
    return (max(-1.0, d - math.sqrt(max(dl, 0.0))), min(1.0, d + math.sqrt(max(du, 0.0))))


# -- relative lift ----------------------------------------------------------------------


def relative_lift(a: Moments, b: Moments, alpha: float = 0.05, *, cov: float = 0.0,
                  paired: bool = False, normal: bool = False) -> TestResult:
    """Relative lift (mean_B − mean_A) / |mean_A| — its sign is the sign of the
    difference, for negative baselines too — with an interval that respects its range.

    Means of the same sign: a log-ratio interval, log(μ_B/μ_A) ± q·se with
    se² = cv_A²/n_A + cv_B²/n_B (− 2·cov/(n·μ_A·μ_B) when paired), back-transformed, so a
    lift of positive data never goes below −100 % (`test` "log_ratio"; for proportions
    this is Katz's interval, scipy's `relative_risk(...).confidence_interval()`). Means of
    opposite signs: the delta-method interval of the lift (`delta_lift`). No interval
    when A's mean is within q standard errors of 0 (the ratio is then unbounded, as
    Fieller's interval says) or when neither side varies. q is the t quantile at Welch's df
    (n − 1 when paired); `normal` (proportions, which are never negative): the normal one,
    and no such check. Undefined (None) when μ_A = 0.
    Reference: Katz et al. (1978) Biometrics 34:469–474; Fieller (1954) JRSS B 16:175–185.
    """
    if a.n < 1 or b.n < 1 or a.mean == 0:
        return TestResult("log_ratio", 0.0, None, None)
    ratio = b.mean / a.mean
    sign = 1.0 if a.mean > 0 else -1.0
    lift = sign * (ratio - 1.0)
    if a.n < 2 or b.n < 2:
        return TestResult("log_ratio", lift, None, None)
    df = _lift_df(a, b, paired)
    q = _z(1 - alpha / 2) if normal else _t_quantile(1 - alpha / 2, df)
    cv_a2 = a.var / a.mean / a.mean if a.var else 0.0
    if not normal and cv_a2 / a.n * q * q >= 1:
        return TestResult("log_ratio", lift, None, None,
                          extra={"unbounded": "the baseline mean is not clearly away from 0"})
    if b.mean == 0 or ratio < 0:
        return delta_lift(a, b, alpha, cov=cov, paired=paired)
    cv_b2 = b.var / b.mean / b.mean if b.var else 0.0
    var_log = cv_a2 / a.n + cv_b2 / b.n
    if paired and cov:
        var_log -= 2 * (cov / a.mean) / b.mean / a.n
    if not var_log > 0 or not math.isfinite(var_log):
        return TestResult("log_ratio", lift, None, None, se=0.0)
    se = math.sqrt(var_log)
    log_ratio = math.log(ratio)
    low, high = math.exp(max(-700.0, log_ratio - q * se)), math.exp(min(700.0, log_ratio + q * se))
    ci = (low - 1, high - 1) if sign > 0 else (1 - high, 1 - low)
    return TestResult("log_ratio", lift, ci, None, df=df, se=se,
                      extra={"log_ratio": log_ratio, "sign": sign})


def _lift_df(a: Moments, b: Moments, paired: bool) -> float:
    if paired:
        return float(a.n - 1)
    va, vb = a.var / a.n, b.var / b.n
    den = (va * va / (a.n - 1)) + (vb * vb / (b.n - 1))
    return (va + vb) ** 2 / den if den > 0 else float(a.n + b.n - 2)


def delta_lift(a: Moments, b: Moments, alpha: float = 0.05, *, cov: float = 0.0,
               paired: bool = False) -> TestResult:
    """Lift (μ_B − μ_A)/|μ_A| with a delta-method interval (GrowthBook's): Var ≈
    var_B/(n_B·μ_A²) + var_A·μ_B²/(n_A·μ_A⁴) (− 2·cov·μ_B/(n·μ_A³) when paired), t quantile
    at Welch's df. It can leave the possible range: `relative_lift` uses it only for means
    of opposite signs. Reference: GrowthBook gbstats `TwoSidedTTest` (relative)."""
    if a.n < 1 or b.n < 1 or a.mean == 0:
        return TestResult("delta_method", 0.0, None, None)
    ratio = b.mean / a.mean
    lift = (1.0 if a.mean > 0 else -1.0) * (ratio - 1.0)
    if a.n < 2 or b.n < 2:
        return TestResult("delta_method", lift, None, None)
    df = _lift_df(a, b, paired)
    cv_a2 = a.var / a.mean / a.mean if a.var else 0.0
    var = b.var / a.mean / a.mean / b.n + cv_a2 * ratio * ratio / a.n
    if paired and cov:
        var -= 2 * (cov / a.mean) / a.mean * ratio / a.n
    if not var > 0 or not math.isfinite(var):
        return TestResult("delta_method", lift, None, None, se=0.0)
    se = math.sqrt(var)
    half = _t_quantile(1 - alpha / 2, df) * se
    return TestResult("delta_method", lift, (lift - half, lift + half),
                      _clip_p(2 * _t_sf(abs(lift) / se, df)), statistic=lift / se, df=df, se=se)


def sequential_lift_interval(lift: TestResult, n: int, alpha: float = 0.05
                             ) -> Interval | None:
    """The always-valid counterpart of `relative_lift`'s interval (on the log-ratio scale
    when that is how the interval was built, so it stays in range)."""
    if lift.se is None or lift.se <= 0 or lift.ci is None:
        return None
    if lift.test == "log_ratio":
        ci, _ = sequential_test(lift.extra["log_ratio"], lift.se, n, alpha)
        if ci is None:
            return None
        low, high = math.exp(ci[0]), math.exp(ci[1])
        return (low - 1, high - 1) if lift.extra["sign"] > 0 else (1 - high, 1 - low)
    ci, _ = sequential_test(lift.estimate, lift.se, n, alpha)
    return ci


def proportion_moments(successes: int, n: int, corrected: bool = False) -> Moments:
    """A proportion as Moments with the binomial variance p(1 − p) (GrowthBook's
    convention for relative lift and sequential tests). `corrected`: at 0 % or 100 %, the
    Haldane–Anscombe ½ correction ((x + ½)/(n + 1)), so a ratio interval keeps its width."""
    if n <= 0:
        return Moments(0, 0.0, 0.0)
    zero_cell = corrected and successes in (0, n)
    p = (successes + 0.5) / (n + 1) if zero_cell else successes / n
    return Moments(n, p, p * (1 - p))


# -- bootstrap --------------------------------------------------------------------------


def bootstrap_interval(a: Sample, b: Sample | None = None, *, statistic: str = "mean",
                       alpha: float = 0.05, n_boot: int = 2000, seed: int = 0,
                       max_cells: int = 4_000_000) -> Interval | None:
    """Percentile bootstrap interval of stat(B) − stat(A), or of stat(A) alone when `b` is
    None (paired differences). Vectorised resampling in chunks of at most `max_cells`
    draws, seeded so the same data always gives the same interval.

    `statistic` is "mean" or "median". Useful for heavy-tailed metrics (latency, cost).
    Reference: Efron & Tibshirani (1993) An Introduction to the Bootstrap, ch. 13.
    """
    return bootstrap_intervals([(a, b)], statistic=statistic, alpha=alpha, n_boot=n_boot,
                               seed=seed, max_cells=max_cells)[0]


def bootstrap_intervals(samples: Sequence[tuple[Sample, Sample | None]], *,
                        statistic: str = "mean", alpha: float = 0.05, n_boot: int = 2000,
                        seed: int = 0, max_cells: int = 4_000_000) -> list[Interval | None]:
    """`bootstrap_interval` of each (a, b), every one the interval it gets alone. The seeded
    resamples depend only on the sizes, so samples of the same sizes (latency and cost of
    the same units) share one draw of the indices, which is most of the work; samples of
    other sizes are resampled on threads of their own (numpy releases the GIL while it
    draws, gathers and averages), each from its own generator as before."""
    stat = {"mean": np.mean, "median": np.median}[statistic]
    arrays = [(np.asarray(a, dtype=float), None if b is None else np.asarray(b, dtype=float))
              for a, b in samples]
    groups: dict[tuple[int, int | None], list[int]] = {}
    for i, (xa, xb) in enumerate(arrays):
        if xa.size >= 2 and (xb is None or xb.size >= 2):
            groups.setdefault((xa.size, None if xb is None else xb.size), []).append(i)

    def resample(members: list[int]) -> list[np.ndarray]:
        rng = np.random.default_rng(seed)
        boots = _resampled(rng, [arrays[i][0] for i in members], stat, n_boot, max_cells)
        if arrays[members[0]][1] is None:
            return boots
        boots_b = _resampled(rng, [arrays[i][1] for i in members], stat, n_boot, max_cells)
        return [bb - ba for ba, bb in zip(boots, boots_b, strict=True)]

    if len(groups) > 1:
        with ThreadPoolExecutor(max_workers=min(len(groups), os.cpu_count() or 1)) as pool:
            resampled = list(pool.map(resample, groups.values()))
    else:
        resampled = [resample(members) for members in groups.values()]
    out: list[Interval | None] = [None] * len(arrays)
    for members, boots in zip(groups.values(), resampled, strict=True):
        for i, boot in zip(members, boots, strict=True):
            lo, hi = np.quantile(boot, [alpha / 2, 1 - alpha / 2])
            out[i] = (float(lo), float(hi))
    return out


def _resampled(rng: np.random.Generator, xs: Sequence[np.ndarray],
               stat: Callable[..., Any], n_boot: int, max_cells: int) -> list[np.ndarray]:
    """stat of `n_boot` resamples (with replacement) of each array in `xs` — all of one
    size, every array resampled at the same indices — drawn in chunks of at most
    `max_cells` indices (the chunk size changes nothing but memory use)."""
    size = xs[0].size
    out = [np.empty(n_boot) for _ in xs]
    chunk = max(1, max_cells // size)
    for start in range(0, n_boot, chunk):
        idx = rng.integers(0, size, size=(min(chunk, n_boot - start), size))
        for x, boot in zip(xs, out, strict=True):
            boot[start:start + len(idx)] = stat(x[idx], axis=1)
    return out


# -- sample ratio mismatch --------------------------------------------------------------


@dataclass(frozen=True)
class SRMResult:
    """Sample-ratio-mismatch check. `p_value` is None when skipped (`reason` says why)."""

    p_value: float | None
    flag: bool
    observed: list[int]
    expected: list[float]
    reason: str | None = None


def srm_test(observed: Sequence[int], weights: Sequence[float], threshold: float = 0.001,
             min_units: int = 8) -> SRMResult:
    """χ² goodness-of-fit of units per arm against the configured traffic weights; flags a
    sample ratio mismatch at p < `threshold` (0.001, as GrowthBook and Optimizely do).
    Skipped when any arm has fewer than `min_units` units (the χ² approximation is poor).
    The test is `scipy.stats.chisquare`.

    Reference: Fabijan et al. (2019) "Diagnosing Sample Ratio Mismatch in Online Controlled
    Experiments", KDD; R's `chisq.test(x, p = weights)`.
    """
    obs = [int(o) for o in observed]
    total_w = float(sum(weights))
    total = sum(obs)
    expected = [total * w / total_w for w in weights] if total_w > 0 else [0.0] * len(obs)
    if len(obs) < 2 or len(obs) != len(weights) or total_w <= 0:
        return SRMResult(None, False, obs, expected, "needs two or more weighted arms")
    if min(obs) < min_units:
        return SRMResult(None, False, obs, expected,
                         f"skipped: fewer than {min_units} units in an arm")
    if any(e <= 0 for e in expected):
        flagged = any(o > 0 for o, e in zip(obs, expected, strict=True) if e <= 0)
        return SRMResult(0.0 if flagged else 1.0, flagged, obs, expected)
    res = _scipy_stats().chisquare(obs, f_exp=expected, ddof=0)
    p = _clip_p(res.pvalue)
    return SRMResult(p, p < threshold, obs, expected)


# -- multiple comparisons ---------------------------------------------------------------


def holm_adjust(p_values: Sequence[float | None]) -> list[float | None]:
    """Holm's step-down adjusted p-values (family-wise error rate); None entries are kept
    and not counted. scipy has no Holm adjustment (only `false_discovery_control`).
    Reference: Holm (1979) Scand J Stat 6:65–70; R `p.adjust(, "holm")`."""
    idx = [i for i, p in enumerate(p_values) if p is not None]
    m = len(idx)
    out: list[float | None] = [None] * len(p_values)
    running = 0.0
    for rank, i in enumerate(sorted(idx, key=lambda j: p_values[j])):  # type: ignore[arg-type,return-value]
        running = max(running, min(1.0, (m - rank) * float(p_values[i])))  # type: ignore[arg-type]
        out[i] = running
    return out


def bh_adjust(p_values: Sequence[float | None]) -> list[float | None]:
    """Benjamini–Hochberg adjusted p-values (false discovery rate); None entries kept.
    `scipy.stats.false_discovery_control(method="bh")`.
    Reference: Benjamini & Hochberg (1995) J R Stat Soc B 57:289–300; R `p.adjust(, "BH")`."""
    idx = [i for i, p in enumerate(p_values) if p is not None]
    out: list[float | None] = [None] * len(p_values)
    if not idx:
        return out
    raw = np.array([float(p_values[i]) for i in idx])  # type: ignore[arg-type]
    adjusted = _scipy_stats().false_discovery_control(raw, method="bh")
    for i, q in zip(idx, np.atleast_1d(adjusted), strict=True):
        out[i] = _clip_p(q)
    return out


def adjust_p_values(p_values: Sequence[float | None], method: str = "holm") -> list[float | None]:
    """Dispatch to `holm_adjust` or `bh_adjust`; "none" returns the p-values unchanged."""
    if method == "holm":
        return holm_adjust(p_values)
    if method == "bh":
        return bh_adjust(p_values)
    if method == "none":
        return list(p_values)
    raise ValueError(f"unknown correction {method!r}; use holm, bh or none")


# -- power ------------------------------------------------------------------------------


def power_two_proportions(p1: float, p2: float, n: float, alpha: float = 0.05) -> float:
    """Power of the two-sided two-proportion test with n per arm (R's `power.prop.test`,
    strict = FALSE). Reference: Fleiss, Levin & Paik (2003) Statistical Methods for Rates
    and Proportions, §4.2."""
    qa = _z(1 - alpha / 2)
    q1, q2 = 1 - p1, 1 - p2
    denom = math.sqrt(p1 * q1 + p2 * q2)
    if denom == 0:
        return 1.0 if p1 != p2 else alpha
    return _norm_cdf((math.sqrt(n) * abs(p1 - p2) - qa * math.sqrt((p1 + p2) * (q1 + q2) / 2))
                     / denom)


def n_two_proportions(p1: float, p2: float, power: float = 0.8,
                      alpha: float = 0.05) -> float | None:
    """n per arm for the two-proportion test to reach `power` (R's `power.prop.test`)."""
    if p1 == p2:
        return None
    qa, qb = _z(1 - alpha / 2), _z(power)
    pbar = (p1 + p2) / 2
    num = qa * math.sqrt(2 * pbar * (1 - pbar)) + qb * math.sqrt(p1 * (1 - p1) + p2 * (1 - p2))
    return num * num / (p1 - p2) ** 2


def mde_two_proportions(p1: float, n: float, power: float = 0.8,
                        alpha: float = 0.05) -> float | None:
    """Minimum detectable |p2 − p1| at n per arm: the smallest shift (toward ½, the
    conservative side) that `power_two_proportions` detects with the given power."""
    if n < 2:
        return None
    up = p1 <= 0.5
    limit = 1.0 - p1 if up else p1
    if limit <= 0:
        return None

    def gap(delta: float) -> float:
        return power_two_proportions(p1, p1 + delta if up else p1 - delta, n, alpha) - power

    if gap(limit) < 0:
        return None
    return _solve(gap, 1e-12, limit, tol=1e-11)


def power_t(n: float, delta: float, sd: float, alpha: float = 0.05,
            paired: bool = False) -> float:
    """Power of the two-sided t-test (noncentral t; R's `power.t.test`, strict = FALSE).

    Two-sample: n per arm, df = 2(n − 1), ncp = √(n/2)·δ/σ. Paired/one-sample: n pairs,
    df = n − 1, ncp = √n·δ/σ (σ = sd of the differences).
    Reference: Cohen (1988) Statistical Power Analysis, ch. 2; R `power.t.test`.
    """
    from scipy.special import nctdtr

    if sd <= 0:
        return 1.0 if delta != 0 else alpha
    df = (n - 1) if paired else 2 * (n - 1)
    ncp = (math.sqrt(n) if paired else math.sqrt(n / 2)) * abs(delta) / sd
    crit = _t_quantile(1 - alpha / 2, df)
    return float(1 - nctdtr(df, ncp, crit))


def n_t(delta: float, sd: float, power: float = 0.8, alpha: float = 0.05,
        paired: bool = False) -> float | None:
    """n per arm (or pairs) for the t-test to reach `power` (R's `power.t.test`)."""
    if delta == 0 or sd <= 0:
        return None

    def gap(n: float) -> float:
        return power_t(n, delta, sd, alpha, paired) - power

    hi = 4.0
    while gap(hi) < 0:
        hi *= 4
        if hi > 1e15:
            return None
    if gap(2.0) >= 0:
        return 2.0
    return _solve(gap, 2.0, hi, tol=1e-12)


def mde_t(n: float, sd: float, power: float = 0.8, alpha: float = 0.05,
          paired: bool = False) -> float | None:
    """Minimum detectable difference of means at n per arm (or pairs) for the t-test."""
    if n < 2 or sd <= 0:
        return None

    def gap(delta: float) -> float:
        return power_t(n, delta, sd, alpha, paired) - power

    hi = sd
    for _ in range(64):  # 4**64 standard deviations: beyond, nothing is detectable
        if gap(hi) >= 0:
            return _solve(gap, 0.0, hi, tol=1e-13) if gap(0.0) < 0 else 0.0
        hi *= 4
    return None


def n_mcnemar(p_discordant: float, delta: float, power: float = 0.8,
              alpha: float = 0.05) -> float | None:
    """Pairs needed by McNemar's test to detect a paired difference `delta` = p_B − p_A
    when a share `p_discordant` of pairs disagree.
    Reference: Connor (1987) Biometrics 43:207–211."""
    if delta == 0 or p_discordant <= 0 or delta * delta >= p_discordant:
        return None
    qa, qb = _z(1 - alpha / 2), _z(power)
    num = qa * math.sqrt(p_discordant) + qb * math.sqrt(p_discordant - delta * delta)
    return num * num / (delta * delta)


def mde_mcnemar(p_discordant: float, n: float, power: float = 0.8,
                alpha: float = 0.05) -> float | None:
    """Minimum detectable p_B − p_A for McNemar's test with n pairs at the observed
    discordant share (Connor 1987, solved for the difference)."""
    if n < 2 or p_discordant <= 0:
        return None
    qa = _z(1 - alpha / 2)

    def power_at(delta: float) -> float:
        return _norm_cdf((math.sqrt(n) * delta - qa * math.sqrt(p_discordant))
                         / math.sqrt(max(p_discordant - delta * delta, 1e-300)))

    hi = math.sqrt(p_discordant) * (1 - 1e-12)
    if power_at(hi) < power:
        return None
    return _solve(lambda d: power_at(d) - power, 0.0, hi, tol=1e-13)


# -- sequential testing -----------------------------------------------------------------


def sequential_rho(alpha: float, tuning: float = 5000.0) -> float:
    """Mixing parameter ρ of the asymptotic confidence sequence, optimised for width at
    n ≈ `tuning` (Waudby-Smith et al. 2023, eq. 161; GrowthBook's `sequential_rho`)."""
    la = -2 * math.log(alpha)
    return math.sqrt((la + math.log(la + 1)) / tuning)


def sequential_test(estimate: float, se: float, n: int, alpha: float = 0.05,
                    tuning: float = 5000.0) -> tuple[Interval | None, float | None]:
    """Always-valid (interval, p-value) for an estimate with standard error `se` from n
    units in total: asymptotic confidence sequences, valid however often you peek.

    Half-width = σ̂·√(2(nρ² + 1)·log(√(nρ² + 1)/α) / (nρ)²) with σ̂² = n·se²; the p-value
    is 1/e-value (eq. 155), capped at 1, and is below α exactly when the interval excludes 0.
    Reference: Waudby-Smith, Arbour, Sinha, Kennedy & Ramdas (2023) "Time-uniform central
    limit theory and asymptotic confidence sequences", arXiv:2103.06476; GrowthBook gbstats
    `SequentialTwoSidedTTest`.
    """
    if n < 2 or se is None:
        return None, None
    if se <= 0:
        return (estimate, estimate), (1.0 if estimate == 0 else 0.0)
    rho = sequential_rho(alpha, tuning)
    s2 = se * se * n
    nr2 = n * rho * rho
    half = math.sqrt(s2) * math.sqrt(2 * (nr2 + 1) * math.log(math.sqrt(nr2 + 1) / alpha)
                                     / (n * rho) ** 2)
    st2 = estimate * estimate * n / (se * se)
    log_e = rho * rho * st2 / (2 * (nr2 + 1)) - 0.5 * math.log(nr2 + 1)
    p = 1.0 if log_e <= 0 else math.exp(-log_e)
    return (estimate - half, estimate + half), _clip_p(p)


# -- Bayesian ---------------------------------------------------------------------------


def chance_b_beats_a_binary(x_a: int, n_a: int, x_b: int, n_b: int) -> float | None:
    """Bayesian P(p_B > p_A) with independent uniform Beta(1, 1) priors.

    Exact closed form (sum over the Beta posteriors) up to 100,000 terms; beyond that the
    normal approximation of the two posteriors (indistinguishable at such n).
    Reference: Evan Miller, "Formulas for Bayesian A/B Testing" (2015).
    """
    if n_a <= 0 or n_b <= 0:
        return None
    from scipy.special import betaln

    a1, b1 = x_b + 1, n_b - x_b + 1  # B's posterior
    a2, b2 = x_a + 1, n_a - x_a + 1  # A's posterior
    if a1 <= 100_000:
        i = np.arange(a1, dtype=float)
        terms = betaln(a2 + i, b1 + b2) - np.log(b1 + i) - betaln(1 + i, b1) - betaln(a2, b2)
        top = terms.max()
        return _clip_p(float(np.exp(top) * np.exp(terms - top).sum()))
    ma, mb = a2 / (a2 + b2), a1 / (a1 + b1)
    va = a2 * b2 / ((a2 + b2) ** 2 * (a2 + b2 + 1))
    vb = a1 * b1 / ((a1 + b1) ** 2 * (a1 + b1 + 1))
    return _clip_p(_norm_cdf((mb - ma) / math.sqrt(va + vb)))


def chance_b_beats_a_normal(diff: float, se: float) -> float | None:
    """Bayesian P(B − A > 0) under a flat prior and a normal likelihood for the difference:
    Φ(diff / se) (GrowthBook's "chance to win" with an uninformative prior)."""
    if se is None:
        return None
    if se <= 0:
        return 1.0 if diff > 0 else 0.0 if diff < 0 else 0.5
    return _clip_p(_norm_cdf(diff / se))
