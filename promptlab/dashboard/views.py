"""Turning view data (data.py) into HTML: the Jinja environment (autoescape on), the links
of the live UI and of the report, the charts of each view, and the verdict in words."""

from __future__ import annotations

import functools
import math
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from markupsafe import Markup

from promptlab.dashboard import svg
from promptlab.dashboard.data import GROUP_BY, PERIODS, json_bytes, pairs_of
from promptlab.logs.reader import utc_time

TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"
NAV = (("overview", "Overview"), ("logs", "Logs"), ("traces", "Traces"),
       ("prompts", "Prompts"), ("experiments", "Experiments"))


@functools.cache
def environment() -> Any:
    """Jinja with autoescape for every template: a logged string is always text."""
    from jinja2 import ChainableUndefined, Environment, FileSystemLoader

    # Entries omit empty fields: a missing one renders as nothing, never an error.
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=True,
                      undefined=ChainableUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["json"] = _json_text
    env.filters["utc_time"] = utc_time
    env.globals.update(fmt=svg.fmt_number, arm=_arm, ci=_ci, pval=_pval, dict=dict,
                       periods=list(PERIODS), group_by=list(GROUP_BY), nav=NAV)
    return env


def _json_text(value: Any) -> str:
    """JSON for reading on the page (escaped by autoescape like any other text)."""
    import orjson

    return json_bytes(value, orjson.OPT_SORT_KEYS).decode()


# -- links ---------------------------------------------------------------------------------


def _q(value: Any) -> str:
    return quote(str(value), safe="")


class Links:
    """URLs of the live UI. Every path segment from the log is percent-encoded, so a
    logged `javascript:…` or `../..` is only ever part of a relative path."""

    def __init__(self, token_query: str = ""):
        self.token_query = token_query

    def _url(self, path: str, params: dict[str, Any] | None = None) -> str:
        query = urlencode({k: v for k, v in (params or {}).items() if v not in (None, "")})
        return path + ("?" + query if query else "")

    def view(self, key: str) -> str:
        return "/" if key == "overview" else f"/{key}"

    def overview(self, params: dict[str, Any]) -> str:
        return self._url("/", params)

    def logs(self, params: dict[str, Any]) -> str:
        return self._url("/logs", params)

    def entry(self, entry_id: str) -> str:
        return f"/logs/{_q(entry_id)}"

    def traces(self, params: dict[str, Any]) -> str:
        return self._url("/traces", params)

    def trace(self, trace_id: str, entry_id: str | None = None) -> str:
        return f"/traces/{_q(trace_id)}" + (f"#{_q(entry_id)}" if entry_id else "")

    def prompt(self, prompt_id: str, version: str | None = None) -> str:
        return self._url(f"/prompts/{_q(prompt_id)}", {"version": version})

    def experiment(self, name: str) -> str:
        return f"/experiments/{_q(name)}"

    def static(self, name: str) -> str:
        return f"/static/{_q(name)}"


class ReportLinks(Links):
    """Links inside the one-file report: anchors to the sections it holds."""

    def __init__(self, entries: set[str], traces: set[str], prompts: set[str],
                 experiments: set[str]):
        super().__init__()
        self.entries, self.traces = entries, traces
        self.prompts, self.experiments = prompts, experiments

    def view(self, key: str) -> str:
        return f"#{key}"

    def overview(self, params: dict[str, Any]) -> str:
        return "#overview"

    def logs(self, params: dict[str, Any]) -> str:
        return "#logs"

    def entry(self, entry_id: str) -> str:
        return f"#entry-{_q(entry_id)}" if entry_id in self.entries else "#logs"

    def traces(self, params: dict[str, Any]) -> str:
        return "#traces"

    def trace(self, trace_id: str, entry_id: str | None = None) -> str:
        return f"#trace-{_q(trace_id)}" if trace_id in self.traces else "#traces"

    def prompt(self, prompt_id: str, version: str | None = None) -> str:
        return f"#prompt-{_q(prompt_id)}" if prompt_id in self.prompts else "#prompts"

    def experiment(self, name: str) -> str:
        return f"#experiment-{_q(name)}" if name in self.experiments else "#experiments"


# -- charts -------------------------------------------------------------------------------


def overview_charts(d: dict[str, Any]) -> dict[str, Markup]:
    days, groups, series = d["days"], d["groups"], d["series"]

    def measure(name: str) -> Any:
        return lambda g, day: series.get(g, {}).get(day, {}).get(name, 0)

    by = d["group"]
    per = d["bucket"]  # day, week (labelled by its Monday), month or year
    latency = d["latency"]
    lat_series = {
        "p50": {p["day"]: p["p50"] for p in latency["points"]},
        "p95": {p["day"]: p["p95"] for p in latency["points"]},
    }
    note = (f"estimated from {latency['read']:,} of {latency['calls']:,} calls"
            if latency["sampled"] else "")
    unknown = d["totals"]["total"].get("unpriced_calls") or 0
    unpriced = (f"not shown: {unknown:,} calls of unknown cost (no price for their model)"
                if unknown else "")
    return {
        "calls": svg.stacked_bars(days, groups, measure("calls"), f"Calls per {per} by {by}"),
        "cost": svg.stacked_bars(days, groups, measure("cost_usd"), f"Cost per {per} by {by}",
                                 unit="$", note=unpriced),
        "tokens": svg.stacked_bars(days, groups, measure("tokens"),
                                   f"Tokens (input + output) per {per} by {by}"),
        "latency": svg.lines(days, lat_series, f"Latency per {per} (p50, p95)", unit="ms",
                             note=note),
        "errors": svg.lines(days, {"error rate": {e["day"]: e["rate"]
                                                  for e in d["error_rate"]}},
                            f"Error rate per {per}", unit="%"),
    }


def experiment_parts(d: dict[str, Any]) -> tuple[list[dict[str, Any]], list[Markup],
                                                   list[list[str]]]:
    pairs = pairs_of(d.get("comparison"))
    plots = [svg.forest_plot(p.get("metrics") or [], str(p.get("b")), str(p.get("a")))
             for p in pairs]
    return pairs, plots, [verdict_words(p) for p in pairs]


def headline(d: dict[str, Any]) -> str:
    """An experiment page's verdict in one line (its first comparison's first sentence)."""
    pairs = pairs_of(d.get("comparison"))
    if not pairs:
        return d.get("compare_error") or d.get("error") or "nothing to compare yet"
    return " · ".join(f"{p.get('b')} vs {p.get('a')}: {verdict_words(p)[0]}" for p in pairs)


def verdict_words(p: dict[str, Any]) -> list[str]:
    """The comparison in sentences: the headline, the guardrails, SRM, power, warnings."""
    metrics = p.get("metrics") or []
    a, b = p.get("a"), p.get("b")
    lines: list[str] = []
    primary = next((m for m in metrics if m.get("role") == "primary"), None)
    srm = p.get("srm") or {}
    untrustworthy = bool(srm) and bool(
        srm.get("flag") or srm.get("flagged") or srm.get("mismatch")
        or (srm.get("p_value") is not None and srm["p_value"] < 0.001))
    if untrustworthy:
        lines.append(f"Not trustworthy: the traffic split does not match the configured "
                     f"weights (sample-ratio mismatch, p = {_pval(srm.get('p_value'))}).")
    elif primary is not None:
        head = f"{primary['name']}: {primary.get('verdict') or 'no verdict'}"
        if primary.get("lift") is not None and primary.get("lift_ci"):
            lo, hi = primary["lift_ci"]
            if lo is not None and hi is not None:
                head += (f" — {b} changes it by {primary['lift'] * 100:+.1f}% "
                         f"(95% CI {lo * 100:+.1f}% to {hi * 100:+.1f}%) against {a}")
        lines.append(head + ".")
    elif metrics:
        better = [m["name"] for m in metrics if m.get("significant")
                  and "better" in str(m.get("verdict"))]
        worse = [m["name"] for m in metrics if m.get("significant")
                 and "worse" in str(m.get("verdict"))]
        text = f"{b} against {a}: "
        text += (f"better on {', '.join(better)}" if better else "better on no metric")
        text += (f"; worse on {', '.join(worse)}" if worse else "; worse on none")
        lines.append(text + ".")
    else:
        lines.append("No metric could be compared yet.")
    guards = [m for m in metrics if m.get("role") == "guardrail"]
    if guards:
        lines.append("Guardrails: " + "; ".join(
            f"{m['name']} {m.get('verdict') or 'not tested'}" for m in guards) + ".")
    if srm:
        if not untrustworthy:
            lines.append(f"Sample ratio: matches the configured weights "
                         f"(p = {_pval(srm.get('p_value'))}).")
    elif p.get("design") == "paired":
        lines.append("Sample ratio: not applicable (paired design: every item ran through "
                     "every variant).")
    powered = primary or next((m for m in metrics if m.get("mde") is not None), None)
    if powered is not None and powered.get("mde") is not None:
        text = (f"Power: at this n, the smallest {powered['name']} difference detectable "
                f"with 80% power is {_num(powered['mde'], powered.get('kind') == 'binary')}")
        if powered.get("n_needed"):
            text += (f"; the observed effect needs about {powered['n_needed']:,} per arm")
        lines.append(text + ".")
    elif powered is not None:
        lines.append(f"Power: not reported by compare for {powered['name']}.")
    margins = [f"{m['name']} {'-' if m.get('direction') == 'higher' else '+'}"
               f"{float(m['tolerance']) * 100:.3g}%" for m in metrics
               if m.get("tolerance") is not None]
    if margins:
        lines.append(f"Tolerance: {', '.join(margins)} — worse only when the whole interval "
                     "lies beyond the margin.")
    for w in p.get("warnings") or []:
        lines.append(f"Warning: {w}")
    for m in metrics:
        for w in m.get("warnings") or []:
            lines.append(f"Warning ({m.get('name')}): {w}")
    return lines


def _num(value: float | None, pct: bool = False) -> str:
    if value is None or not math.isfinite(value):
        return "–"
    return f"{value * 100:.1f} pp" if pct else f"{value:.4g}"


def _arm(m: dict[str, Any], arm: dict[str, Any] | None) -> str:
    if not arm or arm.get("mean") is None:
        return "–"
    mean = arm["mean"]
    text = f"{mean * 100:.1f}%" if m.get("kind") == "binary" else f"{mean:.4g}"
    return f"{text} (n={arm.get('n')})"


def _ci(est: float | None, ci: list[float | None] | None, pct: bool) -> str:
    if est is None:
        return "–"

    def one(v: float | None) -> str:
        if v is None:
            return "?"
        return f"{v * 100:+.1f}%" if pct else f"{v:+.4g}"

    text = one(est)
    if ci:
        text += f" [{one(ci[0])}, {one(ci[1])}]"
    return text


def _pval(p: float | None) -> str:
    if p is None:
        return "–"
    return "<0.0001" if p < 0.0001 else f"{p:.2g}"


# -- pages --------------------------------------------------------------------------------


def render_page(view: str, title: str, data: dict[str, Any] | None, links: Links,
                context: dict[str, Any]) -> str:
    """A full live-UI page for `view` (see page.html)."""
    extra: dict[str, Any] = {}
    if data is not None:
        if view == "overview":
            extra["charts"] = overview_charts(data)
        elif view == "trace":
            extra["chart"] = svg.waterfall(data["rows"], data["duration_ms"], links.entry)
        elif view == "experiment":
            extra["pairs"], extra["plots"], extra["words"] = experiment_parts(data)
    base = {"view": view, "title": title, "data": data, "links": links, "error": None,
            "semantic_modes": [], "query": {}, "since_text": "", "until_text": "",
            "period_params": {}, "charts": {}, "chart": "", "pairs": [], "plots": [],
            "words": [], "api_url": "", "project": "", "log_dir": "", "version": "",
            "refresh": 0}
    return environment().get_template("page.html").render({**base, **context, **extra})
