"""The pieces pages are made of: SVG charts, the report's JSON block, the verdict in words."""

from __future__ import annotations

import json

from promptlab.dashboard import svg
from promptlab.dashboard.report import script_json
from promptlab.dashboard.views import verdict_words


def metric(name: str, **kw: object) -> dict:
    base = {"name": name, "kind": "numeric", "role": "guardrail", "direction": "lower",
            "diff": 1.0, "diff_ci": [0.5, 1.5], "lift": 0.1, "lift_ci": [0.05, 0.15],
            "significant": True, "verdict": "v2 worse", "tolerance": None, "mde": None,
            "n_needed": None, "warnings": []}
    return {**base, **kw}


def test_forest_plot_draws_intervals_zero_and_tolerance() -> None:
    plot = str(svg.forest_plot([
        metric("finds_bug", role="primary", kind="binary", direction="higher", lift=1.4,
               lift_ci=[0.4, 3.1], verdict="v2 better"),
        metric("latency_ms", tolerance=0.5, verdict="v2 worse, within tolerance (≤ +50%)"),
        metric("errors</text><script>x</script>", lift=None, lift_ci=None, diff=0.02,
               diff_ci=[-0.01, 0.05], significant=False, verdict="no significant difference"),
    ], "v2", "v1"))
    assert "+140.0% [+40.0%, +310.0%]" in plot
    assert 'stroke-dasharray="4 3"' in plot  # the zero line
    assert "tolerance: +50%" in plot  # the margin, on the worse side of a lower-is-better metric
    assert "(difference)" in plot  # no lift: its difference on its own scale
    assert "<script>" not in plot and "&lt;script&gt;" in plot
    assert plot.count('fill="#2e7d32"') == 1  # significantly better: green; within tolerance: not red
    assert 'fill="#c62828"' not in plot


def test_charts_escape_labels_and_handle_empty_periods() -> None:
    bars = str(svg.stacked_bars(["2026-01-01", "2026-01-02"], ['<img src=x onerror=alert(1)>'],
                                lambda g, d: 3.0, "Calls"))
    assert "<img" not in bars and "&lt;img" in bars
    empty = str(svg.stacked_bars([], [], lambda g, d: 0.0, "Calls"))
    assert "no calls in this period" in empty
    line = str(svg.lines(["2026-01-01"], {"p50": {"2026-01-01": 12.5}}, "Latency", unit="ms"))
    assert "p50: 12 ms" in line
    rows = [{"id": "a", "depth": 0, "kind": "span", "name": "root", "offset_ms": 0,
             "duration_ms": 100.0, "status": "ok"},
            {"id": 'b"><script>', "depth": 1, "kind": "llm", "name": "call", "model": "m",
             "offset_ms": 10, "duration_ms": 50.0, "status": "error", "error": "<b>boom</b>",
             "input_tokens": 5, "output_tokens": 7, "cost_usd": 0.001}]
    fall = str(svg.waterfall(rows, 100.0, lambda i: "/logs/" + i))
    assert "5→7 tok" in fall and "&lt;b&gt;boom" in fall and '"><script>' not in fall


def test_script_json_cannot_end_its_element() -> None:
    value = {"text": "</script><script>alert(1)</script><!-- & \u2028"}
    text = str(script_json(value))
    assert "<" not in text and ">" not in text and "&" not in text
    assert json.loads(text) == value


def test_verdict_in_words() -> None:
    pair = {"a": "v1", "b": "v2", "design": "unpaired",
            "srm": {"p_value": 0.2, "flag": False},
            "metrics": [metric("finds_bug", role="primary", lift=0.25, lift_ci=[0.1, 0.4],
                               verdict="v2 better", mde=0.05, n_needed=400, kind="binary"),
                        metric("latency_ms", tolerance=0.25)],
            "warnings": ["12 units seen under both versions were dropped"]}
    words = verdict_words(pair)
    assert words[0].startswith("finds_bug: v2 better — v2 changes it by +25.0%")
    assert any(w.startswith("Guardrails: latency_ms v2 worse") for w in words)
    assert any("Sample ratio: matches" in w for w in words)
    assert any("5.0 pp" in w and "400" in w for w in words)
    assert any("latency_ms +25%" in w for w in words)
    assert words[-1].startswith("Warning:")
    broken = verdict_words({**pair, "srm": {"p_value": 1e-6, "flag": True}})
    assert broken[0].startswith("Not trustworthy")
    assert not any("v2 better" in w for w in broken[:1])
