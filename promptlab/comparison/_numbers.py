"""How p-values and plain numbers are written in the report and in warnings."""

from __future__ import annotations


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
    if magnitude >= 1000:
        return f"{x:,.0f}"
    if magnitude >= 1:
        return f"{x:.4g}"
    return f"{x:.3g}"
