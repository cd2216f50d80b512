"""The rank tests run alongside a t-test (Mann–Whitney, Wilcoxon signed-rank with
Pratt's zeros), a bootstrap interval for skewed metrics, and a warning when they
disagree with the t-test on significance."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from promptlab.comparison import _limits
from promptlab.comparison._model import pair_list
from promptlab.comparison._numbers import fmt_p

if TYPE_CHECKING:
    from promptlab.comparison._model import MetricResult
    from promptlab.stats import TestResult


def robust_unpaired(values: tuple[list[float], list[float]] | None, alpha: float,
                    test: TestResult, skipped: bool, result: MetricResult) -> dict[str, Any]:
    from promptlab import stats as S

    if values is None:
        return _not_run("mann_whitney", "units", skipped)
    va, vb = values
    mw = S.mann_whitney_test(va, vb)
    out: dict[str, Any] = {"test": "mann_whitney", "p_value": mw.p_value,
                           "u": mw.statistic, "prob_superiority": mw.estimate}
    if _heavy_tailed(va) or _heavy_tailed(vb):
        out["bootstrap_ci"] = pair_list(S.bootstrap_interval(va, vb, alpha=alpha))
    _disagree(result, test, mw.p_value, alpha, "Welch t", "Mann–Whitney")
    return out


def robust_paired(diffs: list[float] | None, alpha: float, test: TestResult, skipped: bool,
                  result: MetricResult) -> dict[str, Any]:
    from promptlab import stats as S

    if diffs is None:
        return _not_run("wilcoxon_pratt", "pairs", skipped)
    w = S.wilcoxon_signed_rank_test(diffs)
    out: dict[str, Any] = {"test": "wilcoxon_pratt", "p_value": w.p_value, "v": w.statistic,
                           "median_diff": w.estimate}
    if _heavy_tailed(diffs):
        out["bootstrap_ci"] = pair_list(S.bootstrap_interval(diffs, alpha=alpha))
    _disagree(result, test, w.p_value, alpha, "the paired t-test", "Wilcoxon signed-rank")
    return out


def _not_run(test: str, unit: str, skipped: bool) -> dict[str, Any]:
    why = f"more than {_limits.VALUES_LIMIT} {unit}" if skipped else "not enough data"
    return {"test": test, "p_value": None, "skipped": why}


def _disagree(result: MetricResult, test: TestResult, p_robust: float | None, alpha: float,
              main: str, robust: str) -> None:
    if test.p_value is None or p_robust is None:
        return
    if (test.p_value < alpha) != (p_robust < alpha):
        result.warnings.append(
            f"{main} (p = {fmt_p(test.p_value)}) and {robust} (p = {fmt_p(p_robust)}) "
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
