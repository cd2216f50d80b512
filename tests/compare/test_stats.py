"""promptlab.stats against published reference values (R documentation examples, the papers
that define each method, GrowthBook's gbstats test suite) to at least 4 significant figures.

R reports differences as x − y; promptlab's estimates are B − A, so with x = A the signs
flip: R's t = −5.4349 is our +5.4349.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from promptlab import stats as S


def close(actual: float | None, expected: float, sig: int = 4) -> bool:
    """Equal to `sig` significant figures (relative tolerance half a unit in the last)."""
    assert actual is not None
    return math.isclose(actual, expected, rel_tol=0.5 * 10 ** (1 - sig))


# -- the reference values the issue lists ------------------------------------------------


def test_welch_t_matches_r_t_test_1_10_vs_7_20():
    # R: t.test(1:10, y = c(7:20)) -> t = -5.4349, df = 21.982, p-value = 1.855e-05,
    # 95 percent CI -11.052802 -4.947198
    res = S.welch_t_test(S.Moments.of(range(1, 11)), S.Moments.of(range(7, 21)))
    assert res.test == "welch_t"
    assert res.estimate == 8.0
    assert close(res.statistic, 5.4349)
    assert close(res.df, 21.982, 5)
    assert close(res.p_value, 1.855e-05)
    assert close(res.ci[0], 4.947198, 6) and close(res.ci[1], 11.052802, 6)


SLEEP_1 = [0.7, -1.6, -0.2, -1.2, -0.1, 3.4, 3.7, 0.8, 0.0, 2.0]
SLEEP_2 = [1.9, 0.8, 1.1, 0.1, -0.1, 4.4, 5.5, 1.6, 4.6, 3.4]


def test_paired_t_matches_r_sleep():
    # R: with(sleep, t.test(extra[group == 1], extra[group == 2], paired = TRUE))
    # t = -4.0621, df = 9, p-value = 0.002833, CI -2.4598858 -0.7001142
    d = np.array(SLEEP_1) - np.array(SLEEP_2)  # x − y, as R
    res = S.paired_t_test(S.Moments.of(d))
    assert close(res.statistic, -4.0621)
    assert res.df == 9
    assert close(res.p_value, 0.002833)
    assert close(res.ci[0], -2.45989, 6) and close(res.ci[1], -0.70011, 5)


def test_mcnemar_exact_and_corrected_chi_square():
    # [[794, 150], [86, 570]]: rows A pass/fail, columns B pass/fail.
    # Exact (binomial on 150 vs 86 discordant pairs): p = 3.716e-05.
    # R mcnemar.test (continuity correction): McNemar's chi-squared = 16.818, p = 4.115e-05.
    exact = S.mcnemar_test(a_only=150, b_only=86)
    assert exact.test == "mcnemar_exact"
    assert close(exact.p_value, 3.716e-05)
    chi = S.mcnemar_test(a_only=150, b_only=86, exact=False)
    assert close(chi.statistic, 16.818, 5)
    assert close(chi.p_value, 4.115e-05)


def test_binomial_test_matches_r_binom_test():
    # R: binom.test(682, 925, p = 0.75) -> p-value = 0.3825, CI 0.7076683 0.7654066
    res = S.binomial_test(682, 925, 0.75)
    assert close(res.p_value, 0.3825)
    assert close(res.ci[0], 0.7076683, 6) and close(res.ci[1], 0.7654066, 6)


def test_power_prop_test():
    # R: power.prop.test(n = 50, p1 = .50, p2 = .75) -> power = 0.7401659
    assert close(S.power_two_proportions(0.5, 0.75, 50), 0.7401659, 6)
    # R: power.prop.test(p1 = .50, p2 = .75, power = .90) -> n = 76.7 (76.70693)
    assert close(S.n_two_proportions(0.5, 0.75, power=0.9), 76.707, 5)


# -- more reference values ----------------------------------------------------------------


def test_power_t_test():
    # R: power.t.test(n = 20, delta = 1) -> power = 0.8689528
    assert close(S.power_t(20, 1, 1), 0.8689528, 6)
    # R: power.t.test(power = .90, delta = 1) -> n = 22.02110
    assert close(S.n_t(1, 1, power=0.9), 22.02110, 6)
    # MDE inverts power: at n = 22.0211 the detectable delta for 90 % power is 1.
    assert close(S.mde_t(22.02110, 1, power=0.9), 1.0, 5)


def test_mde_two_proportions_inverts_power():
    mde = S.mde_two_proportions(0.5, 76.70693, power=0.9)
    assert close(mde, 0.25, 5)
    assert S.mde_two_proportions(0.5, 1) is None


def test_mcnemar_power_connor():
    # Connor (1987): n = [z_{α/2}√ψ + z_β√(ψ − δ²)]² / δ²; ψ = 0.3, δ = 0.1, 80 % power:
    # (1.959964·0.5477226 + 0.8416212·0.5385165)² / 0.01 = 1.526747² / 0.01 = 233.096
    n = S.n_mcnemar(0.3, 0.1, power=0.8)
    assert close(n, 233.096, 5)
    assert close(S.mde_mcnemar(0.3, n, power=0.8), 0.1, 5)


def test_wilson_interval_newcombe_single_proportion_examples():
    # Newcombe (1998) Stat Med 17:857, Table II, method 3 (score, no correction).
    assert np.allclose(S.wilson_interval(81, 263), (0.2553, 0.3662), atol=5e-5)
    assert np.allclose(S.wilson_interval(15, 148), (0.0624, 0.1605), atol=5e-5)
    assert np.allclose(S.wilson_interval(0, 20), (0.0, 0.1611), atol=5e-5)
    assert np.allclose(S.wilson_interval(1, 29), (0.0061, 0.1718), atol=5e-5)


@pytest.mark.parametrize(
    ("b", "a", "expected"),
    [  # Newcombe (1998) Stat Med 17:873, Table II, method 10; (x1/n1) − (x2/n2)
        ((56, 70), (48, 80), (0.0524, 0.3339)),
        ((9, 10), (3, 10), (0.1705, 0.8090)),
        ((6, 7), (2, 7), (0.0582, 0.8062)),
        ((5, 56), (0, 29), (-0.0381, 0.1926)),
        ((0, 10), (0, 20), (-0.1611, 0.2775)),
        ((0, 10), (0, 10), (-0.2775, 0.2775)),
    ],
)
def test_newcombe_difference_interval(b, a, expected):
    assert np.allclose(S.newcombe_interval(a[0], a[1], b[0], b[1]), expected, atol=5e-5)


def test_two_proportion_z_is_chi_square_without_correction():
    # Physicians' Health Study (Agresti 2013, Table 2.3): MI 189/11034 placebo vs
    # 104/11037 aspirin. Pearson X² = 25.01 (no continuity correction), z = X.
    res = S.two_proportion_z_test(189, 11034, 104, 11037)
    assert close(res.extra["chi2"], 25.01)
    assert close(res.statistic, -5.001)
    # p = P(χ²₁ > X²) = 2·P(Z > |z|): the χ² and normal forms agree.
    assert close(res.p_value, math.erfc(abs(res.statistic) / math.sqrt(2)), 8)
    assert res.estimate == pytest.approx(104 / 11037 - 189 / 11034)


def test_fisher_exact_tea_tasting():
    # R: fisher.test(TeaTasting) -> p-value = 0.4857, odds ratio 6.408309;
    # alternative = "greater" -> CI lower 0.3135693 (one-sided 95 % = two-sided 90 %).
    res = S.fisher_exact_test(1, 4, 3, 4)  # A: 1 of 4 right, B: 3 of 4
    assert res.test == "fisher_exact"
    assert close(res.p_value, 0.4857)
    assert close(res.extra["odds_ratio"], 6.408309, 5)
    _, low, _ = S.conditional_odds_ratio(3, 1, 1, 3, alpha=0.10)
    assert close(low, 0.3135693)


def test_conditional_odds_ratio_convictions():
    # R: fisher.test(Convictions, alternative = "less") -> odds ratio 0.04693661,
    # CI 0 0.2849601
    est, _, high = S.conditional_odds_ratio(2, 10, 15, 3, alpha=0.10)
    assert close(est, 0.04693661, 6)
    assert close(high, 0.2849601)  # the one-sided limit is the two-sided 90 % limit


def test_compare_proportions_uses_fisher_for_small_expected_cells():
    assert S.compare_proportions(1, 4, 3, 4).test == "fisher_exact"
    assert S.compare_proportions(40, 100, 55, 100).test == "two_proportion_z"


def test_mann_whitney_exact_and_normal_approximation():
    # R: wilcox.test(x, y, alternative = "g") -> W = 35, p-value = 0.1272 (exact)
    x = [0.80, 0.83, 1.89, 1.04, 1.45, 1.38, 1.91, 1.64, 0.73, 1.46]
    y = [1.15, 0.88, 0.90, 0.74, 1.21]
    res = S.mann_whitney_test(y, x, alternative="greater")  # B = x
    assert res.statistic == 35
    assert close(res.p_value, 0.1272)
    assert close(S.mann_whitney_test(y, x).p_value, 0.2544)
    # R: wilcox.test(Ozone ~ Month, data = airquality, subset = Month %in% c(5, 8))
    # -> W = 127.5, p-value = 0.0001208 (normal approximation, ties, continuity correction)
    may = [41, 36, 12, 18, 28, 23, 19, 8, 7, 16, 11, 14, 18, 14, 34, 6, 30, 11, 1, 11, 4, 32,
           23, 45, 115, 37]
    aug = [39, 9, 16, 78, 35, 66, 122, 89, 110, 44, 28, 65, 22, 59, 23, 31, 44, 21, 9, 45, 168,
           73, 76, 118, 84, 85]
    res = S.mann_whitney_test(aug, may)
    assert res.statistic == 127.5
    assert close(res.p_value, 0.0001208)


def test_wilcoxon_signed_rank_exact():
    # R: wilcox.test(x, y, paired = TRUE, alternative = "greater") -> V = 40, p = 0.01953
    x = [1.83, 0.50, 1.62, 2.48, 1.68, 1.88, 1.55, 3.06, 1.30]
    y = [0.878, 0.647, 0.598, 2.05, 1.06, 1.29, 1.06, 3.14, 1.29]
    d = np.array(x) - np.array(y)
    res = S.wilcoxon_signed_rank_test(d, alternative="greater")
    assert res.statistic == 40
    assert close(res.p_value, 0.01953)
    assert close(S.wilcoxon_signed_rank_test(d).p_value, 0.03906)


def test_wilcoxon_pratt_keeps_zeros_in_the_ranking():
    # 20 differences, 4 of them zero. Pratt: rank |d| with the zeros (ranks 1..4 -> 2.5 each),
    # drop the zeros' ranks; E[V] = n(n+1)/4 − z(z+1)/4, Var = [n(n+1)(2n+1) −
    # z(z+1)(2z+1)]/24 (Cureton 1967), continuity correction ½.
    d = [0, 0, 0, 0, 1, 2, -3, 4, 5, 6, -7, 8, 9, 10, 11, -12, 13, 14, 15, 16]
    n, z = 20, 4
    v = sum(r for r, x in zip(range(1, 21), d, strict=True) if x > 0)  # |d| already sorted
    mean = n * (n + 1) / 4 - z * (z + 1) / 4
    sd = math.sqrt((n * (n + 1) * (2 * n + 1) - z * (z + 1) * (2 * z + 1)) / 24)
    expected = math.erfc(((v - mean) - 0.5) / sd / math.sqrt(2))
    res = S.wilcoxon_signed_rank_test(d)
    assert res.statistic == v
    assert close(res.p_value, expected, 6)


def test_srm_chi_square_matches_r_chisq_test():
    # R: chisq.test(c(A = 20, B = 15, C = 25)) -> X-squared = 2.5, df = 2, p-value = 0.2865
    res = S.srm_test([20, 15, 25], [1, 1, 1])
    assert close(res.p_value, 0.2865)
    assert res.flag is False
    # R: chisq.test(c(89,37,30,28,2), p = c(0.40,0.20,0.20,0.19,0.01)) -> p-value = 0.215
    res = S.srm_test([89, 37, 30, 28, 2], [0.40, 0.20, 0.20, 0.19, 0.01], min_units=0)
    assert close(res.p_value, 0.2150)
    assert res.expected == pytest.approx([74.4, 37.2, 37.2, 35.34, 1.86])


def test_srm_flags_below_one_in_a_thousand_and_skips_tiny_arms():
    res = S.srm_test([500, 400], [50, 50])  # chi2 = 11.1, p = 0.00086
    assert res.flag is True and res.p_value < 0.001
    skipped = S.srm_test([7, 30], [1, 1])
    assert skipped.p_value is None and skipped.flag is False
    assert "fewer than 8 units" in skipped.reason


BH_1995 = [0.0001, 0.0004, 0.0019, 0.0095, 0.0201, 0.0278, 0.0298, 0.0344, 0.0459, 0.3240,
           0.4262, 0.5719, 0.6528, 0.7590, 1.000]


def test_benjamini_hochberg_1995_example():
    # Benjamini & Hochberg (1995) §4: of these 15 p-values the FDR procedure at q = 0.05
    # rejects four; Holm's procedure (like Bonferroni) rejects three.
    bh = S.bh_adjust(BH_1995)
    assert sum(p <= 0.05 for p in bh) == 4
    assert close(bh[3], 0.0095 * 15 / 4)
    assert close(bh[4], 0.0201 * 15 / 5)  # min over j >= 5 of p_j·m/j
    holm = S.holm_adjust(BH_1995)
    assert sum(p <= 0.05 for p in holm) == 3
    assert holm[:4] == pytest.approx([0.0015, 0.0056, 0.0247, 0.114])


def test_holm_and_bh_match_r_p_adjust():
    p = [0.01, 0.02, 0.03, 0.04, 0.05]
    # R: p.adjust(p, "holm") -> 0.05 0.08 0.09 0.09 0.09; "BH" -> 0.05 (all)
    assert S.holm_adjust(p) == pytest.approx([0.05, 0.08, 0.09, 0.09, 0.09])
    assert S.bh_adjust(p) == pytest.approx([0.05] * 5)
    assert S.adjust_p_values([0.04, None, 0.01], "holm") == pytest.approx([0.04, None, 0.02])
    with pytest.raises(ValueError, match="unknown correction"):
        S.adjust_p_values([0.1], "bonferroni-ish")


GB_A = S.Moments.from_sums(3407, 1396.87, 52377.9767)
GB_B = S.Moments.from_sums(3461, 2422.7, 134698.29)


def test_relative_lift_delta_method_matches_gbstats():
    # gbstats tests/frequentist/test_tests.py::test_two_sided_ttest (relative):
    # expected 0.70732, ci [-0.03526, 1.44989], stddev 0.37879, p 0.06191
    res = S.delta_lift(GB_A, GB_B)
    assert close(res.estimate, 0.70732)
    assert close(res.se, 0.37879)
    assert close(res.ci[0], -0.03526) and close(res.ci[1], 1.44989)
    assert close(res.p_value, 0.06191)
    # ...and absolute: 0.29, ci [0.04538, 0.53462], stddev 0.12478, p 0.02016
    welch = S.welch_t_test(GB_A, GB_B)
    assert close(welch.estimate, 0.29)
    assert close(welch.ci[0], 0.04538) and close(welch.ci[1], 0.53462)
    assert close(welch.se, 0.12478) and close(welch.p_value, 0.02016)


def test_relative_lift_for_proportions_matches_gbstats():
    # gbstats test_two_sided_ttest_binom: 14/28 vs 16/30 -> expected 0.06667,
    # ci [-0.47767, 0.61101], stddev 0.2717, p 0.80707
    res = S.delta_lift(S.proportion_moments(14, 28), S.proportion_moments(16, 30))
    assert close(res.estimate, 0.06667)
    assert close(res.ci[0], -0.47767) and close(res.ci[1], 0.61101)
    assert close(res.se, 0.2717)
    assert close(res.p_value, 0.80707)


def test_sequential_confidence_sequence_matches_gbstats():
    # gbstats TestSequentialTTest::test_sequential_test_runs (tuning 1000):
    # expected 0.50336, ci [-0.55844, 1.56516], p 1
    a = S.Moments.from_sums(3000, 1396.87, 52377.9767)
    lift = S.delta_lift(a, GB_B)
    ci, p = S.sequential_test(lift.estimate, lift.se, 3000 + 3461, alpha=0.05, tuning=1000)
    assert close(lift.estimate, 0.50336) and close(lift.se, 0.33341)
    assert close(ci[0], -0.55844) and close(ci[1], 1.56516)
    assert p == 1.0
    # test_sequential_test_runs_prop (tuning 5000): 1396/3000 vs 2422/3461 ->
    # expected 0.50386, ci [0.40098, 0.60675], stddev 0.03386, p 0.0
    lift = S.delta_lift(S.proportion_moments(1396, 3000), S.proportion_moments(2422, 3461))
    ci, p = S.sequential_test(lift.estimate, lift.se, 6461)
    assert close(ci[0], 0.40098) and close(ci[1], 0.60675)
    assert p < 1e-10


@given(
    est=st.floats(-5, 5), se=st.floats(0.001, 3), n=st.integers(2, 10**6),
    alpha=st.sampled_from([0.01, 0.05, 0.1]),
)
def test_sequential_p_value_and_interval_agree(est, se, n, alpha):
    ci, p = S.sequential_test(est, se, n, alpha)
    excludes_zero = ci[0] > 0 or ci[1] < 0
    if abs(p - alpha) > 1e-9:
        assert (p < alpha) == excludes_zero
    # An always-valid interval is never narrower than the fixed-horizon z interval.
    assert ci[1] - est >= 1.959 * se if alpha == 0.05 else True


def test_chance_b_beats_a_binary_matches_numerical_integration():
    from scipy import integrate
    from scipy.stats import beta

    for xa, na, xb, nb in [(10, 100, 15, 100), (3, 10, 1, 12), (200, 1000, 230, 1000)]:
        fa, fb = beta(xa + 1, na - xa + 1), beta(xb + 1, nb - xb + 1)
        expected, _ = integrate.quad(lambda x, fa=fa, fb=fb: fb.pdf(x) * fa.cdf(x), 0, 1,
                                     epsabs=1e-12, limit=200)
        assert close(S.chance_b_beats_a_binary(xa, na, xb, nb), expected, 6)
    # Far beyond the exact series' range: the normal approximation. Difference 0.0015 with
    # sd √(2·0.3·0.7/10⁶) = 0.000648: Φ(2.3146) = 0.98968.
    big = S.chance_b_beats_a_binary(300_000, 10**6, 301_500, 10**6)
    assert abs(big - 0.98968) < 5e-5


def test_chance_b_beats_a_normal():
    assert S.chance_b_beats_a_normal(0.0, 1.0) == 0.5
    assert close(S.chance_b_beats_a_normal(1.959964, 1.0), 0.975)
    assert S.chance_b_beats_a_normal(1.0, 0.0) == 1.0


def test_bootstrap_interval_is_seeded_and_close_to_t_for_normal_data():
    rng = np.random.default_rng(1)
    a, b = rng.normal(10, 2, 400), rng.normal(10.5, 2, 400)
    ci1 = S.bootstrap_interval(a, b, seed=7)
    assert ci1 == S.bootstrap_interval(a, b, seed=7)
    welch = S.welch_t_test(S.Moments.of(a), S.Moments.of(b))
    assert abs(ci1[0] - welch.ci[0]) < 0.05 and abs(ci1[1] - welch.ci[1]) < 0.05
    # Chunking (tiny max_cells) changes nothing but memory use.
    assert S.bootstrap_interval(a, b, seed=7, max_cells=1000) == ci1
    med = S.bootstrap_interval(b - a, statistic="median", seed=3)
    assert med[0] < np.median(b - a) < med[1]
    assert S.bootstrap_interval([1.0], [2.0, 3.0]) is None


def test_paired_proportions_interval_newcombe_method_10():
    # Hand calculation for the table both=794, a_only=150, b_only=86, neither=570 (n = 1600):
    # p_A = 944/1600, p_B = 880/1600, Wilson limits of each margin, phi from the table.
    ci = S.paired_proportions_interval(794, 150, 86, 570)
    n = 1600
    wa, wb = S.wilson_interval(944, n), S.wilson_interval(880, n)
    pa, pb = 944 / n, 880 / n
    phi = (794 * 570 - 150 * 86) / math.sqrt(944 * 656 * 880 * 720)
    dl = math.sqrt((pb - wb[0]) ** 2 - 2 * phi * (pb - wb[0]) * (wa[1] - pa) + (wa[1] - pa) ** 2)
    du = math.sqrt((wb[1] - pb) ** 2 - 2 * phi * (wb[1] - pb) * (pa - wa[0]) + (pa - wa[0]) ** 2)
    assert ci == pytest.approx((pb - pa - dl, pb - pa + du))
    assert ci[0] < -0.04 < ci[1] < 0  # 4 points worse, clearly excluded from 0


# -- degenerate inputs: never NaN ---------------------------------------------------------


def test_identical_values_give_p_one_and_no_nan():
    same = S.Moments.of([3.0] * 10)
    res = S.welch_t_test(same, same)
    assert res.p_value == 1.0 and res.ci is None  # no variance: no interval
    assert S.paired_t_test(S.Moments.of([0.0] * 5)).p_value == 1.0
    assert S.two_proportion_z_test(10, 10, 20, 20).p_value == 1.0
    assert S.mann_whitney_test([1, 1, 1], [1, 1]).p_value == 1.0
    assert S.wilcoxon_signed_rank_test([0, 0, 0]).p_value == 1.0
    assert S.mcnemar_test(0, 0).p_value == 1.0
    assert S.relative_lift(same, same).ci is None


def test_too_little_data_gives_none_not_nan():
    one = S.Moments.of([1.0])
    assert S.welch_t_test(one, S.Moments.of([1.0, 2.0])).p_value is None
    assert S.paired_t_test(one).ci is None
    assert S.mean_interval(one) is None
    assert S.wilson_interval(0, 0) is None
    assert S.relative_lift(S.Moments.of([0.0, 0.0]), S.Moments.of([1.0, 2.0])).estimate == 0.0
    assert S.mde_t(1, 1.0) is None and S.n_t(0.0, 1.0) is None
    assert S.sequential_test(0.1, 0.1, 1) == (None, None)
    assert S.chance_b_beats_a_binary(0, 0, 1, 2) is None


def _all_finite(obj) -> bool:
    if isinstance(obj, float):
        return math.isfinite(obj)
    if isinstance(obj, tuple | list):
        return all(_all_finite(x) for x in obj)
    if isinstance(obj, dict):
        return all(_all_finite(x) for x in obj.values())
    if isinstance(obj, S.TestResult):
        return _all_finite([obj.estimate, obj.ci, obj.p_value, obj.statistic, obj.df, obj.se,
                            obj.extra])
    return True


small_samples = st.lists(st.sampled_from([0.0, 1.0, 2.5, 2.5, 100.0]), min_size=0, max_size=8)


@settings(max_examples=150, deadline=None)
@given(a=small_samples, b=small_samples)
def test_no_nan_or_infinity_for_any_small_sample(a, b):
    ma, mb = S.Moments.of(a), S.Moments.of(b)
    for res in (S.welch_t_test(ma, mb), S.relative_lift(ma, mb), S.mann_whitney_test(a, b)):
        assert _all_finite(res)
        assert res.p_value is None or 0.0 <= res.p_value <= 1.0
    if len(a) == len(b):
        d = np.array(b) - np.array(a)
        assert _all_finite(S.paired_t_test(S.Moments.of(d)))
        assert _all_finite(S.wilcoxon_signed_rank_test(d))


@settings(max_examples=150, deadline=None)
@given(na=st.integers(0, 40), nb=st.integers(0, 40), data=st.data())
def test_no_nan_for_any_proportions(na, nb, data):
    xa = data.draw(st.integers(0, na))
    xb = data.draw(st.integers(0, nb))
    for res in (S.compare_proportions(xa, na, xb, nb),
                S.relative_lift(S.proportion_moments(xa, na), S.proportion_moments(xb, nb))):
        assert _all_finite(res)
    ci = S.newcombe_interval(xa, na, xb, nb)
    if ci is not None:
        assert -1 <= ci[0] <= xb / nb - xa / na <= ci[1] <= 1
    chance = S.chance_b_beats_a_binary(xa, na, xb, nb)
    assert chance is None or 0.0 <= chance <= 1.0


@given(st.lists(st.one_of(st.none(), st.floats(0, 1)), max_size=12))
def test_adjusted_p_values_are_bounded_and_never_below_raw(ps):
    for method in ("holm", "bh"):
        adj = S.adjust_p_values(ps, method)
        for raw, new in zip(ps, adj, strict=True):
            assert (raw is None) == (new is None)
            if raw is not None:
                assert raw - 1e-12 <= new <= 1.0
    holm, bh = S.holm_adjust(ps), S.bh_adjust(ps)
    for h, b in zip(holm, bh, strict=True):
        if h is not None:
            assert b <= h + 1e-12  # FDR control is never more conservative than FWER


@given(st.lists(st.floats(-1e3, 1e3), min_size=2, max_size=30))
def test_moments_from_sums_equal_moments_of_values(values):
    direct = S.Moments.of(values)
    arr = np.array(values)
    pushed = S.Moments.from_sums(len(values), float(arr.sum()), float((arr * arr).sum()))
    assert pushed.n == direct.n
    assert pushed.mean == pytest.approx(direct.mean, abs=1e-9)
    assert pushed.var == pytest.approx(direct.var, rel=1e-6, abs=1e-6)


# -- cross-checks against scipy.stats (an independent implementation) ---------------------


@settings(max_examples=60, deadline=None)
@given(
    a=st.lists(st.integers(0, 6), min_size=2, max_size=40),
    b=st.lists(st.integers(0, 6), min_size=2, max_size=40),
)
def test_mann_whitney_matches_scipy_normal_approximation_with_ties(a, b):
    from scipy.stats import mannwhitneyu

    ours = S.mann_whitney_test(a, b)
    if len(set(a + b)) == 1:
        assert ours.p_value == 1.0
        return
    theirs = mannwhitneyu(b, a, method="asymptotic", use_continuity=True)
    assert ours.statistic == pytest.approx(float(theirs.statistic))
    if len(set(a + b)) < len(a + b) or max(len(a), len(b)) >= 50:  # our normal branch
        assert ours.p_value == pytest.approx(float(theirs.pvalue), rel=1e-9, abs=1e-12)


@settings(max_examples=40, deadline=None)
@given(st.data())
def test_mann_whitney_exact_matches_scipy_exact(data):
    from scipy.stats import mannwhitneyu

    values = data.draw(st.lists(st.floats(-100, 100, allow_nan=False), min_size=4,
                                max_size=30, unique=True))
    cut = data.draw(st.integers(1, len(values) - 1))
    a, b = values[:cut], values[cut:]
    theirs = mannwhitneyu(b, a, method="exact")
    assert S.mann_whitney_test(a, b).p_value == pytest.approx(float(theirs.pvalue), rel=1e-9)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(-4, 4), min_size=14, max_size=60))
def test_wilcoxon_pratt_matches_scipy_normal_approximation(d):
    from scipy.stats import wilcoxon

    if not any(d):
        assert S.wilcoxon_signed_rank_test(d).p_value == 1.0
        return
    theirs = wilcoxon(d, zero_method="pratt", correction=True, method="asymptotic")
    assert S.wilcoxon_signed_rank_test(d).p_value == pytest.approx(float(theirs.pvalue),
                                                                   rel=1e-9, abs=1e-12)


@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 300), data=st.data(), p=st.sampled_from([0.5, 0.3, 0.75, 0.01]))
def test_binomial_test_matches_scipy(n, data, p):
    from scipy.stats import binomtest

    x = data.draw(st.integers(0, n))
    ours, theirs = S.binomial_test(x, n, p), binomtest(x, n, p)
    assert ours.p_value == pytest.approx(theirs.pvalue, rel=1e-9, abs=1e-15)
    ci = theirs.proportion_ci(method="exact")
    # scipy finds the limits by root search (tolerance ~1e-9); ours invert the beta exactly.
    assert ours.ci == pytest.approx((ci.low, ci.high), rel=1e-6, abs=1e-12)


@settings(max_examples=60, deadline=None)
@given(na=st.integers(1, 30), nb=st.integers(1, 30), data=st.data())
def test_fisher_exact_matches_scipy(na, nb, data):
    from scipy.stats import fisher_exact

    xa, xb = data.draw(st.integers(0, na)), data.draw(st.integers(0, nb))
    _, p = fisher_exact([[xb, nb - xb], [xa, na - xa]])
    assert S.fisher_exact_test(xa, na, xb, nb).p_value == pytest.approx(p, rel=1e-9,
                                                                         abs=1e-15)


# -- the audit's edge cases (issue 15) ------------------------------------------------------


def test_log_ratio_lift_for_proportions_is_scipys_katz_interval():
    from scipy.stats.contingency import relative_risk

    for xa, na, xb, nb in ((14, 28, 16, 30), (40, 100, 60, 100), (3, 30, 9, 30)):
        res = S.relative_lift(S.proportion_moments(xa, na), S.proportion_moments(xb, nb),
                              normal=True)
        ref = relative_risk(xb, nb, xa, na).confidence_interval(0.95)
        assert res.test == "log_ratio"
        assert close(res.ci[0] + 1, ref.low) and close(res.ci[1] + 1, ref.high)


@settings(max_examples=200, deadline=None)
@given(na=st.integers(2, 40), nb=st.integers(2, 40), data=st.data())
def test_lift_interval_of_rates_never_leaves_its_range(na, nb, data):
    xa = data.draw(st.integers(1, na))
    xb = data.draw(st.integers(0, nb))
    res = S.relative_lift(S.proportion_moments(xa, na, corrected=True),
                          S.proportion_moments(xb, nb, corrected=True), normal=True)
    if res.ci is not None:
        assert res.ci[0] >= -1 and res.ci[1] > res.ci[0]


def test_negative_baseline_lift_has_the_sign_of_the_difference():
    a = S.Moments.of([-0.9, -1.0, -1.05, -0.97, -1.0])
    b = S.Moments.of([-2.0, -1.95, -2.02, -1.99, -2.0])
    res = S.relative_lift(a, b)
    assert res.estimate < 0 and res.ci[1] < 0  # B is lower: a negative lift
    assert math.isclose(res.estimate, (b.mean - a.mean) / abs(a.mean))
    up = S.relative_lift(b, a)
    assert up.estimate > 0 and up.ci[0] > 0


def test_zero_variance_falls_back_to_an_exact_permutation_test():
    from scipy.stats import permutation_test

    assert S.welch_t_test(S.Moments.of([5, 5]), S.Moments.of([6, 6])).p_value is None
    assert S.permutation_test_constant(5.0, 2, 6.0, 2) == pytest.approx(1 / 3)
    for na, nb in ((2, 2), (3, 4), (5, 2)):
        ref = permutation_test(([5.0] * na, [6.0] * nb),
                               lambda x, y, axis: np.mean(y, axis=axis) - np.mean(x, axis=axis),
                               n_resamples=np.inf, alternative="two-sided", vectorized=True)
        assert S.permutation_test_constant(5.0, na, 6.0, nb) == pytest.approx(ref.pvalue)
    ref = permutation_test(([0.7] * 6,), lambda d, axis: np.mean(d, axis=axis),
                           permutation_type="samples", n_resamples=np.inf, vectorized=True)
    assert S.sign_flip_test_constant(6, 0.7) == pytest.approx(ref.pvalue)


def test_variance_is_exact_far_from_zero():
    rng = np.random.default_rng(3)
    a, b = 1e7 + rng.uniform(-1e-3, 1e-3, 30), 1e7 + rng.uniform(-1e-3, 1e-3, 30) + 2e-4
    from scipy.stats import ttest_ind

    shift = float(a[0])
    ma = S.Moments.from_sums(30, float((a - shift).sum()), float(((a - shift) ** 2).sum()), shift)
    mb = S.Moments.from_sums(30, float((b - shift).sum()), float(((b - shift) ** 2).sum()), shift)
    assert ma.var > 0
    assert close(S.welch_t_test(ma, mb).p_value, ttest_ind(b, a, equal_var=False).pvalue, 3)


def test_rank_tests_choose_rs_method_not_scipys_auto():
    # 12 vs 15 values without ties: R's wilcox.test is exact (both < 50); scipy's "auto"
    # would go asymptotic (neither sample < 8). The method is named in each call.
    from scipy.stats import mannwhitneyu, wilcoxon

    rng = np.random.default_rng(5)
    a, b = rng.normal(size=12), rng.normal(0.8, 1, size=15)
    res = S.mann_whitney_test(a, b)
    assert res.extra["method"] == "exact"
    assert res.p_value == pytest.approx(mannwhitneyu(b, a, method="exact").pvalue, rel=1e-12)
    assert res.p_value != pytest.approx(mannwhitneyu(b, a, method="asymptotic").pvalue,
                                        rel=1e-6)
    assert S.mann_whitney_test([*a, a[0]], b).extra["method"] == "asymptotic"  # a tie
    d = rng.normal(0.3, 1, size=30)
    w = S.wilcoxon_signed_rank_test(d)
    assert w.extra["method"] == "exact"
    assert w.p_value == pytest.approx(wilcoxon(d, method="exact").pvalue, rel=1e-12)
    assert w.statistic == float(sum(r for r, x in zip(np.argsort(np.argsort(np.abs(d))) + 1,
                                                      d, strict=True) if x > 0))  # V, not min
    assert S.wilcoxon_signed_rank_test([0.0, *d]).extra["method"] == "asymptotic"  # a zero


def test_mde_t_ends_when_nothing_is_detectable():
    """With 1 − α/2 rounding to 1 the critical value is infinite: no difference reaches the
    power, and the search for an upper bound gives up instead of looping for ever."""
    assert S.mde_t(10, 1.0, alpha=1e-17) is None
    assert S.mde_t(10, 1.0, alpha=0.05) == pytest.approx(1.3249, abs=1e-3)


def test_welch_is_exact_for_values_near_the_top_of_the_range():
    """Values of 1e80: the Welch–Satterthwaite df squares variances of 1e160, which overflow;
    the test runs on a copy scaled by a power of two (t, df and p do not change with scale)."""
    import scipy.stats

    a = [1e80, -1e80, 1e80, -1e80]
    b = [1e80, 1e80, 1e80, 1.5e80]
    got = S.welch_t_test(S.Moments.of(a), S.Moments.of(b))
    ref = scipy.stats.ttest_ind([x / 1e80 for x in b], [x / 1e80 for x in a], equal_var=False)
    assert got.p_value == pytest.approx(ref.pvalue, rel=1e-9)
    assert got.statistic == pytest.approx(ref.statistic, rel=1e-9)
    small = S.welch_t_test(S.Moments.of([x / 1e80 for x in a]), S.Moments.of([x / 1e80 for x in b]))
    assert got.ci[0] == pytest.approx(small.ci[0] * 1e80, rel=1e-9)
    assert got.ci[1] == pytest.approx(small.ci[1] * 1e80, rel=1e-9)
    assert got.se == pytest.approx(small.se * 1e80, rel=1e-9)


def test_p_text_never_writes_p_equals_a_bound():
    from promptlab.comparison._model import format_tolerance, p_text

    assert p_text(0.03) == "p = 0.03" and p_text(1e-7) == "p < 0.0001"
    assert format_tolerance(-0.0, "lower") == "+0%"
