"""Charts drawn on the server as SVG: stacked bars, lines, a forest plot, a trace waterfall.

Server-side SVG needs no JavaScript and no chart library, looks the same in the live UI
and in the one-file report, and every label goes through one escape (`markupsafe.escape`).
Colours and sizes are SVG presentation attributes, not `style=`, so a strict
Content-Security-Policy (no inline styles or scripts) still renders them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

from markupsafe import Markup, escape

PALETTE = ("#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1",
           "#ff9da7", "#9c755f", "#bab0ac")
FONT = 'font-family="system-ui, sans-serif" font-size="11"'


def colour(i: int) -> str:
    return PALETTE[i % len(PALETTE)]


def _attr(value: Any) -> str:
    return str(escape(str(value)))


def nice_max(value: float) -> float:
    """A round axis maximum ≥ value (1, 2, 2.5, 5 × 10^k)."""
    if value <= 0 or not math.isfinite(value):
        return 1.0
    exp = math.floor(math.log10(value))
    for m in (1, 2, 2.5, 5, 10):
        if m * 10 ** exp >= value:
            return m * 10 ** exp
    return 10 ** (exp + 1)


def fmt_number(value: float | None, unit: str = "") -> str:
    if value is None:
        return "–"
    if unit == "$":
        if value == 0:
            return "$0"
        if abs(value) >= 1:
            return f"${value:,.2f}"
        return "$" + f"{value:.6f}".rstrip("0").rstrip(".") if abs(value) >= 1e-6 else "<$0.000001"
    if unit == "%":
        return f"{value * 100:.1f}%"
    if unit == "ms":
        return f"{value:,.0f} ms" if abs(value) >= 10 or value == 0 else f"{value:.2f} ms"
    if abs(value) >= 1e6:
        return f"{value / 1e6:.1f}M"
    if abs(value) >= 1e4:
        return f"{value / 1e3:.0f}k"
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.2f}"


def _svg(width: int, height: int, body: list[str], label: str) -> Markup:
    return Markup(
        f'<svg class="chart" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'role="img" aria-label="{_attr(label)}" xmlns="http://www.w3.org/2000/svg" {FONT}>'
        f'<title>{escape(label)}</title>' + "".join(body) + "</svg>")


def _legend(names: Sequence[str], x: int, y: int, width: int) -> list[str]:
    out, cx, cy = [], x, y
    for i, name in enumerate(names):
        text = name if len(name) <= 28 else name[:27] + "…"
        w = 18 + 6.5 * len(text)
        if cx + w > x + width and cx > x:
            cx, cy = x, cy + 16
        out.append(f'<rect x="{cx}" y="{cy - 9}" width="10" height="10" fill="{colour(i)}"/>'
                   f'<text x="{cx + 14}" y="{cy}">{escape(text)}</text>')
        cx += int(w) + 10
    return out


def _legend_height(names: Sequence[str], width: int) -> int:
    rows, cx = 1, 0
    for name in names:
        w = 28 + 6.5 * min(len(name), 28)
        if cx + w > width and cx > 0:
            rows, cx = rows + 1, 0
        cx += w
    return rows * 16


def _x_labels(days: Sequence[str], x0: float, step: float, y: float) -> list[str]:
    """About ten labels under the bars: `11-27` for days (or weeks) of one year; the whole
    date across years; months (`2026-03`) and years as they are."""
    every = max(1, math.ceil(len(days) / 10))
    one_year = len({day[:4] for day in days}) <= 1
    out = []
    for i, day in enumerate(days):
        if i % every == 0 or (i == len(days) - 1 and len(days) < 10):
            text = day[5:] if len(day) == 10 and one_year else day
            out.append(f'<text x="{x0 + step * (i + 0.5):.1f}" y="{y}" text-anchor="middle">'
                       f'{escape(text)}</text>')
    return out


def _y_axis(x0: float, top: float, bottom: float, width: float, vmax: float,
            unit: str) -> list[str]:
    out = []
    for k in range(5):
        v = vmax * k / 4
        y = bottom - (bottom - top) * k / 4
        out.append(f'<line x1="{x0}" x2="{x0 + width}" y1="{y:.1f}" y2="{y:.1f}" '
                   f'stroke="#e3e3e3"/><text x="{x0 - 4}" y="{y + 4:.1f}" text-anchor="end">'
                   f'{escape(fmt_number(v, unit))}</text>')
    return out


def stacked_bars(days: Sequence[str], groups: Sequence[str],
                 values: Callable[[str, str], float], title: str, unit: str = "",
                 width: int = 860, height: int = 220, note: str = "") -> Markup:
    """One bar per day, stacked by group; `values(group, day)` gives each segment."""
    legend_h = _legend_height(groups, width - 70)
    top, left, bottom = 24 + legend_h, 64, height - 22
    totals = [sum(values(g, d) for g in groups) for d in days]
    vmax = nice_max(max(totals, default=0))
    body = [f'<text x="{left}" y="14" font-weight="bold">{escape(title)}</text>']
    if note:
        body.append(f'<text x="{width - 10}" y="14" text-anchor="end" fill="#777">'
                    f'{escape(note)}</text>')
    body += _legend(groups, left, 30, width - left - 10)
    plot_w = width - left - 10
    body += _y_axis(left, top, bottom, plot_w, vmax, unit)
    if not days:
        body.append(f'<text x="{left + plot_w / 2}" y="{(top + bottom) / 2}" '
                    'text-anchor="middle" fill="#777">no calls in this period</text>')
        return _svg(width, height, body, title)
    step = plot_w / len(days)
    bar_w = max(1.0, step * 0.8)
    for i, day in enumerate(days):
        y = bottom
        x = left + step * i + (step - bar_w) / 2
        for g_i, group in enumerate(groups):
            v = values(group, day)
            if v <= 0:
                continue
            h = (bottom - top) * v / vmax
            y -= h
            body.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar_w:.1f}" height="{h:.1f}" '
                        f'fill="{colour(g_i)}"><title>{escape(day)} · {escape(group)}: '
                        f'{escape(fmt_number(v, unit))}</title></rect>')
    body += _x_labels(days, left, step, height - 6)
    return _svg(width, height, body, title)


def lines(days: Sequence[str], series: dict[str, dict[str, float]], title: str,
          unit: str = "", width: int = 860, height: int = 200, note: str = "") -> Markup:
    """One line per series over the days (`series[name][day]`), points where known."""
    names = list(series)
    top, left, bottom = 40, 64, height - 22
    vmax = nice_max(max((v for s in series.values() for v in s.values() if v is not None),
                        default=0))
    plot_w = width - left - 10
    body = [f'<text x="{left}" y="14" font-weight="bold">{escape(title)}</text>']
    if note:
        body.append(f'<text x="{width - 10}" y="14" text-anchor="end" fill="#777">'
                    f'{escape(note)}</text>')
    body += _legend(names, left, 30, plot_w)
    body += _y_axis(left, top, bottom, plot_w, vmax, unit)
    if not days:
        return _svg(width, height, body, title)
    step = plot_w / len(days)
    for s_i, name in enumerate(names):
        points = [(left + step * (i + 0.5), bottom - (bottom - top) * v / vmax, day, v)
                  for i, day in enumerate(days)
                  if (v := series[name].get(day)) is not None]
        if len(points) > 1:
            path = " ".join(f"{x:.1f},{y:.1f}" for x, y, _, _ in points)
            body.append(f'<polyline points="{path}" fill="none" stroke="{colour(s_i)}" '
                        'stroke-width="2"/>')
        for x, y, day, v in points:
            body.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{colour(s_i)}">'
                        f'<title>{escape(day)} · {escape(name)}: {escape(fmt_number(v, unit))}'
                        '</title></circle>')
    body += _x_labels(days, left, step, height - 6)
    return _svg(width, height, body, title)


# -- forest plot ----------------------------------------------------------------------------


def forest_plot(metrics: Sequence[dict[str, Any]], b: str, a: str, width: int = 860) -> Markup:
    """Each metric's relative lift (B vs A) with its interval, the zero line, and each
    tolerance margin; metrics without a lift show their difference on their own scale."""
    rows = []
    for m in metrics:
        ci = m.get("lift_ci")
        est = m.get("lift")
        scale = "lift"
        if ci is None or est is None:
            ci, est, scale = m.get("diff_ci"), m.get("diff"), "diff"
        if est is None:
            continue
        rows.append((m, est, ci, scale))
    label_w, right_w = 210, 250
    plot_x, plot_w = label_w, width - label_w - right_w
    row_h = 34
    height = 46 + row_h * max(1, len(rows)) + 20
    title = f"{b} vs {a}: change with its confidence interval"
    body = [f'<text x="8" y="16" font-weight="bold">{escape(title)}</text>']
    lifts = [r for r in rows if r[3] == "lift"]
    lo_b, hi_b = -0.05, 0.05
    for m, est, ci, _ in lifts:
        for v in (est, *(c for c in (ci or ()) if c is not None)):
            lo_b, hi_b = min(lo_b, v), max(hi_b, v)
        if m.get("tolerance") is not None:
            edge = float(m["tolerance"]) * (-1 if m.get("direction") == "higher" else 1)
            lo_b, hi_b = min(lo_b, edge), max(hi_b, edge)
    pad = (hi_b - lo_b) * 0.08
    lo_b, hi_b = max(lo_b - pad, -10.0), min(hi_b + pad, 10.0)

    def x_of(v: float, lo: float = lo_b, hi: float = hi_b) -> float:
        v = min(max(v, lo), hi)
        return plot_x + plot_w * (v - lo) / (hi - lo)

    zero = x_of(0.0)
    axis_y = 46 + row_h * max(1, len(rows))
    body.append(f'<line x1="{zero:.1f}" x2="{zero:.1f}" y1="30" y2="{axis_y}" stroke="#333" '
                'stroke-dasharray="4 3"/>')
    tick = nice_max((hi_b - lo_b) / 5)
    k = math.ceil(lo_b / tick)
    while k * tick <= hi_b:
        v = k * tick
        body.append(f'<text x="{x_of(v):.1f}" y="{axis_y + 14}" text-anchor="middle" '
                    f'fill="#555">{escape("0" if k == 0 else f"{v * 100:+.0f}%")}</text>')
        k += 1
    body.append(f'<text x="{plot_x + plot_w}" y="30" text-anchor="end" fill="#555">'
                f'lift of {escape(b)} over {escape(a)} (%)</text>')
    if not rows:
        body.append(f'<text x="{zero}" y="60" text-anchor="middle" fill="#777">'
                    'no metric could be compared</text>')
    for i, (m, est, ci, scale) in enumerate(rows):
        y = 46 + row_h * i + row_h / 2
        lo_v, hi_v = lo_b, hi_b
        if scale == "diff":  # its own symmetric scale around zero
            span = nice_max(max([abs(est), *(abs(c) for c in (ci or ()) if c is not None)]) * 1.05)
            f = span / max(abs(lo_b), abs(hi_b))  # the same zero as the lift rows
            lo_v, hi_v = lo_b * f, hi_b * f
        better = _better(m)
        fill = {"better": "#2e7d32", "worse": "#c62828"}.get(better, "#555")
        name = str(m.get("name", "?")) + (f" ({m['role']})" if m.get("role") else "")
        body.append(f'<text x="8" y="{y + 4:.1f}">{escape(name)}</text>')
        if i % 2 == 0:
            body.append(f'<rect x="{plot_x}" y="{y - row_h / 2:.1f}" width="{plot_w}" '
                        f'height="{row_h}" fill="#f6f6f6"/>')
        tol = m.get("tolerance")
        if tol is not None and scale == "lift":
            worse_sign = -1 if m.get("direction") == "higher" else 1
            edge = x_of(worse_sign * float(tol))
            body.append(f'<line x1="{edge:.1f}" x2="{edge:.1f}" y1="{y - row_h / 2 + 2:.1f}" '
                        f'y2="{y + row_h / 2 - 2:.1f}" stroke="#e69f00" stroke-width="2" '
                        f'stroke-dasharray="3 2"><title>tolerance: '
                        f'{escape(f"{worse_sign * float(tol) * 100:+.0f}%")}</title></line>')
        if ci and ci[0] is not None and ci[1] is not None:
            x1, x2 = x_of(ci[0], lo_v, hi_v), x_of(ci[1], lo_v, hi_v)
            body.append(f'<line x1="{x1:.1f}" x2="{x2:.1f}" y1="{y:.1f}" y2="{y:.1f}" '
                        f'stroke="{fill}" stroke-width="2.5"/>')
            for xe in (x1, x2):
                body.append(f'<line x1="{xe:.1f}" x2="{xe:.1f}" y1="{y - 6:.1f}" '
                            f'y2="{y + 6:.1f}" stroke="{fill}" stroke-width="2"/>')
        cx = x_of(est, lo_v, hi_v)
        body.append(f'<rect x="{cx - 5:.1f}" y="{y - 5:.1f}" width="10" height="10" '
                    f'fill="{fill}"><title>{escape(name)}: {escape(_describe(est, ci, scale))}'
                    '</title></rect>')
        body.append(f'<text x="{plot_x + plot_w + 10}" y="{y + 4:.1f}">'
                    f'{escape(_describe(est, ci, scale))}</text>')
    legend_y = height + 4
    body.append(f'<text x="8" y="{legend_y}" fill="#555">square: estimate · bar: '
                f'{escape("95%")} interval · dashed black: no change · dashed orange: '
                'tolerance margin · green/red: significantly better/worse</text>')
    return _svg(width, height + 8, body, title)


def _better(m: dict[str, Any]) -> str | None:
    verdict = str(m.get("verdict") or "")
    if not m.get("significant") or "within tolerance" in verdict:
        return None
    if "better" in verdict:
        return "better"
    if "worse" in verdict:
        return "worse"
    return None


def _describe(est: float, ci: Sequence[float | None] | None, scale: str) -> str:
    if scale == "lift":
        text = f"{est * 100:+.1f}%"
        if ci and ci[0] is not None and ci[1] is not None:
            text += f" [{ci[0] * 100:+.1f}%, {ci[1] * 100:+.1f}%]"
        return text
    text = f"{est:+.4g}"
    if ci and ci[0] is not None and ci[1] is not None:
        text += f" [{ci[0]:+.4g}, {ci[1]:+.4g}] (difference)"
    return text


# -- waterfall ------------------------------------------------------------------------------


def waterfall(rows: Sequence[dict[str, Any]], total_ms: float,
              link: Callable[[str], str], width: int = 960) -> Markup:
    """Nested spans as bars on a shared time axis; LLM calls highlighted with their tokens
    and cost. Each bar links to its entry."""
    label_w, info_w = 300, 230
    plot_x, plot_w = label_w, width - label_w - info_w
    row_h = 24
    height = 30 + row_h * len(rows) + 10
    total = total_ms if total_ms > 0 else 1.0
    body = [f'<text x="{plot_x}" y="14" fill="#555">0 ms</text>',
            f'<text x="{plot_x + plot_w}" y="14" text-anchor="end" fill="#555">'
            f'{escape(fmt_number(total_ms, "ms"))}</text>']
    for k in range(1, 4):
        x = plot_x + plot_w * k / 4
        body.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="20" y2="{height - 8}" stroke="#eee"/>')
    for i, r in enumerate(rows):
        y = 24 + row_h * i
        llm = r["kind"] == "llm"
        error = r["status"] == "error"
        name = r.get("name") or r.get("model") or r["kind"]
        if llm and r.get("name") and r.get("model"):
            name = f"{r['name']} · {r['model']}"
        name = name if len(name) <= 38 else name[:37] + "…"
        indent = 8 + 14 * min(r["depth"], 12)
        x = plot_x + plot_w * (r["offset_ms"] or 0) / total
        w = max(2.0, plot_w * (r.get("duration_ms") or 0) / total)
        fill = "#c62828" if error else ("#f28e2b" if llm else "#4e79a7")
        info = fmt_number(r.get("duration_ms"), "ms")
        if llm:
            info += f" · {r.get('input_tokens') or 0}→{r.get('output_tokens') or 0} tok"
            if r.get("cost_usd") is not None:
                info += f" · {fmt_number(r['cost_usd'], '$')}"
        tip = f"{r['kind']} {name}: starts at {fmt_number(r['offset_ms'], 'ms')}, {info}"
        if error and r.get("error"):
            tip += f" — error: {r['error']}"
        href = _attr(link(r["id"]))
        weight = ' font-weight="bold"' if llm else ""
        if llm:
            body.append(f'<rect x="0" y="{y - 2}" width="{width}" height="{row_h - 2}" '
                        'fill="#fff4e8" pointer-events="none"/>')
        body.append(
            f'<a href="{href}"><text x="{indent}" y="{y + 13}"{weight}>{escape(name)}</text>'
            f'<rect x="{x:.1f}" y="{y + 2}" width="{w:.1f}" height="{row_h - 8}" rx="2" '
            f'fill="{fill}"><title>{escape(tip)}</title></rect></a>'
            f'<text x="{plot_x + plot_w + 8}" y="{y + 13}" fill="#333">{escape(info)}</text>')
    return _svg(width, height, body, "trace waterfall")
