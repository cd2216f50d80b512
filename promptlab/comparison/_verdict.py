"""From p-values to verdicts: adjust across every metric × comparison, then call each
metric better, worse, no significant difference, or not enough data."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from promptlab.comparison._model import MetricResult, PairComparison


def adjust(pairs: list[PairComparison], alpha: float, correction: str) -> None:
    """Holm / Benjamini–Hochberg (or no) adjustment over all metrics, then the verdicts."""
    from promptlab.stats import adjust_p_values

    flat = [(pair, m) for pair in pairs for m in pair.metrics]
    adjusted = adjust_p_values([m.p_value for _, m in flat], correction)
    for (pair, m), p_adjusted in zip(flat, adjusted, strict=True):
        m.p_adjusted = p_adjusted
        _verdict(m, pair.b, alpha)


def _verdict(m: MetricResult, b: str, alpha: float) -> None:
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
