"""Formatting for the log commands: table cells, one entry in full, a trace tree.

Pure functions from entry dicts (and index results) to text; no I/O, no heavy imports.
"""

from __future__ import annotations

import math
from typing import Any


def fmt_time(timestamp: str | None) -> str:
    """The time column of a listing: UTC, to the second."""
    from promptlab.logs.reader import utc_time

    return utc_time(timestamp)


def fmt_tokens(entry: dict[str, Any]) -> str:
    inp, out = entry.get("input_tokens"), entry.get("output_tokens")
    if inp is None and out is None:
        return ""
    return f"{_num(inp)}→{_num(out)}"


def _num(value: Any) -> str:
    return "?" if value is None else (f"{value:,}" if isinstance(value, int) else str(value))


def fmt_ms(value: Any) -> str:
    if not isinstance(value, int | float):
        return ""
    return f"{value / 1000:.2f} s" if value >= 1000 else f"{value:.0f} ms"


def fmt_cost(value: Any, digits: int = 4) -> str:
    """Dollars in plain decimals, never scientific notation: $0.0123, $0.0000036, $1,234.5000.
    Amounts below 10^-digits keep two significant digits (down to a billionth of a cent)."""
    if not isinstance(value, int | float) or value != value:
        return ""
    if 0 < value < 10 ** -digits:
        if value < 1e-11:
            return "<$0.00000000001"
        places = -math.floor(math.log10(value)) + 1
        return f"${value:.{places}f}"
    return f"${value:,.{digits}f}"


def plural(n: int, word: str, many: str | None = None) -> str:
    """`1 LLM call`, `2 LLM calls`, `1 child`, `3 children`."""
    return f"{n:,} {word if n == 1 else (many or word + 's')}"


def fmt_prompt(entry: dict[str, Any]) -> str:
    prompt = entry.get("prompt_id")
    if not prompt:
        return ""
    version = entry.get("prompt_version")
    return f"{prompt}@{version}" if version else str(prompt)


def one_line(text: Any, width: int) -> str:
    if text is None:
        return ""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def summary(entry: dict[str, Any], width: int = 50) -> str:
    """What a listing shows of an entry's content."""
    kind = entry.get("kind", "llm")
    if entry.get("status") == "error" or (entry.get("error") and kind == "llm"):
        return one_line(f"ERROR: {entry.get('error') or 'failed'}", width)
    if kind == "span":
        return one_line(f"span {entry.get('name') or ''}", width)
    if kind == "feedback":
        scores = entry.get("scores") or {}
        text = " ".join(f"{k}={_score(v)}" for k, v in scores.items())
        return one_line(f"feedback on {entry.get('target')}: {text}", width)
    response = entry.get("assistant_response")
    if response is None:
        from promptlab.index.parse import entry_texts

        response = entry_texts(entry)[2]
    return one_line(response, width)


def _score(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def entry_row(entry: dict[str, Any], width: int = 50) -> dict[str, Any]:
    return {
        "time": fmt_time(entry.get("timestamp")),
        "id": entry.get("id"),
        "model": entry.get("model") or "",
        "prompt": fmt_prompt(entry),
        "tokens": fmt_tokens(entry),
        "latency": fmt_ms(entry.get("latency_ms")),
        "cost": fmt_cost(entry.get("cost_usd")),
        "response": summary(entry, width),
    }


ENTRY_COLUMNS = ["time", "id", "model", "prompt", "tokens", "latency", "cost", "response"]
ENTRY_HEADERS = ["time (UTC)", "id", "model", "prompt", "tokens", "latency", "cost", "response"]


def restyle(snippet: str, mark: tuple[str, str]) -> str:
    if mark == ("**", "**"):
        return snippet
    parts = snippet.split("**")
    return "".join(p if i % 2 == 0 else f"{mark[0]}{p}{mark[1]}" for i, p in enumerate(parts))


def _printable(text: str, lines: bool = False) -> str:
    from promptlab.cli._common import printable

    return printable(text, lines=lines)


def render_entry(details: Any) -> str:
    """One entry in full. Logged text is shown with its control characters escaped (a
    response must not retitle the terminal); messages keep their newlines and tabs."""
    e = details.entry
    lines: list[str] = []

    def field(label: str, value: Any) -> None:
        if value not in (None, "", []):
            lines.append(f"{label:<11}{_printable(str(value))}")

    field("id", e.get("id"))
    field("time", (e.get("timestamp") or "").replace("T", " ").replace("Z", " UTC"))
    status = e.get("status") or ("error" if e.get("error") else "ok")
    field("kind", f"{e.get('kind', 'llm')} · {status}")
    if e.get("name"):
        field("name", e.get("name"))
    if e.get("model"):
        field("model", e["model"] + (f" ({e['provider']})" if e.get("provider") else ""))
    if e.get("prompt_id"):
        extra = [f"label {e['prompt_label']}" if e.get("prompt_label") else "",
                 f"sha {str(e['prompt_sha'])[:12]}" if e.get("prompt_sha") else "",
                 f"commit {str(e['prompt_commit'])[:10]}" if e.get("prompt_commit") else "",
                 "uncommitted changes" if e.get("prompt_dirty") else ""]
        extra_text = ", ".join(x for x in extra if x)
        field("prompt", fmt_prompt(e) + (f" ({extra_text})" if extra_text else ""))
    if e.get("experiment"):
        parts = [str(e["experiment"])] + [f"{k} {e[k]}" for k in
                                          ("variant", "unit_id", "item_id", "repeat", "run_id")
                                          if e.get(k) is not None]
        field("experiment", " · ".join(parts))
    tokens = [f"{_num(e.get(k))} {label}" for k, label in
              (("input_tokens", "in"), ("cached_tokens", "cached"), ("output_tokens", "out"),
               ("reasoning_tokens", "reasoning")) if e.get(k) is not None]
    field("tokens", " · ".join(tokens))
    field("latency", fmt_ms(e.get("latency_ms")))
    field("cost", fmt_cost(e.get("cost_usd"), 6))
    field("tags", ", ".join(str(t) for t in e.get("tags") or []))
    if e.get("kind") == "feedback":
        field("target", e.get("target"))
    if details.trace:
        t = details.trace
        field("trace", f"{t['trace_id']}  {' › '.join(str(p) for p in t['path'])}  "
                       f"(depth {t['depth']}, {plural(t['children'], 'child', 'children')}; "
                       f"trace has {plural(t['trace_spans'], 'span')}, "
                       f"{plural(t['trace_llm_calls'], 'LLM call')})")
    sections: list[tuple[str, Any]] = []
    if e.get("messages") and not (e.get("system_prompt") or e.get("user_message")):
        from promptlab.index.parse import content_text

        for message in e["messages"]:
            if isinstance(message, dict):
                sections.append((str(message.get("role", "?")),
                                 content_text(message.get("content"))))
    else:
        sections += [("system", e.get("system_prompt")), ("user", e.get("user_message"))]
    sections += [("response", e.get("assistant_response")), ("error", e.get("error"))]
    for title, text in sections:
        if text:
            lines += ["", f"── {_printable(title)} ──", _printable(str(text).rstrip(), True)]
    if details.scores:
        lines += ["", "── scores ──"]
        width = max(len(s["name"]) for s in details.scores)
        for s in details.scores:
            origin = f"feedback {s['feedback_id']}" if s["source"] == "feedback" else "logged"
            lines.append(_printable(f"  {s['name']:<{width}}  {_score(s['value']):<8} ({origin})"))
    if details.feedback:
        lines += ["", "── feedback ──"]
        for fb in details.feedback:
            scores = " ".join(f"{k}={_score(v)}" for k, v in (fb.get("scores") or {}).items())
            comment = (fb.get("metadata") or {}).get("comment") or fb.get("comment")
            lines.append(_printable(f"  {fmt_time(fb.get('timestamp'))}  {fb.get('id')}  {scores}"
                                    + (f"  “{comment}”" if comment else "")))
    if e.get("metadata"):
        from promptlab.cli._common import dumps_json

        lines += ["", "── metadata ──", _printable(dumps_json(e["metadata"], indent=True), True)]
    return "\n".join(lines)


def render_trace(trace: Any) -> str:
    s = trace.summary()
    head = [f"trace {s['trace_id']}"]
    if s["name"]:
        head.append(str(s["name"]))
    head.append(fmt_ms(s["duration_ms"]))
    head.append(plural(s["spans"], "span"))
    head.append(plural(s["llm_calls"], "LLM call"))
    if s["llm_calls"]:
        head.append(f"{s['input_tokens']:,}→{s['output_tokens']:,} tokens")
    if s["cost_usd"] is not None:
        head.append(fmt_cost(s["cost_usd"]))
    if s["errors"]:
        head.append(plural(s["errors"], "error"))
    start = trace.start
    rows: list[tuple[str, str, str, str]] = []

    from promptlab.index.trace import MAX_NESTING

    # Depth first without recursion (a recursive agent's trace can be thousands of spans
    # deep); the tree nests MAX_NESTING levels, deeper nodes are listed under their ancestor
    # there, marked with their depth.
    stack = [(root, 0, True) for root in reversed(trace.roots)]
    pipes: list[str] = []  # what each open level draws in front of its descendants
    while stack:
        node, depth, last = stack.pop()
        shown = min(depth, MAX_NESTING)
        del pipes[max(shown - 1, 0):]
        branch = "" if depth == 0 else ("└── " if last else "├── ")
        if node.kind == "llm":
            label = " ".join(x for x in ("llm", node.model or "", node.prompt or "") if x)
            if node.name:
                label = f"{node.name}: {label}"
        else:
            label = node.name or node.kind
        if depth > MAX_NESTING:
            label = f"[depth {depth}] {label}"
        if node.loop:
            label += "  (its parents lead back to it)"
        elif node.orphan:
            label += "  (parent not in the log)"
        details = []
        if node.kind == "llm" and (node.input_tokens is not None or node.output_tokens is not None):
            details.append(f"{_num(node.input_tokens)}→{_num(node.output_tokens)} tokens")
        if node.cost_usd is not None:
            details.append(fmt_cost(node.cost_usd))
        if node.scores:
            details.append(" ".join(f"{k}={_score(v)}" for k, v in node.scores.items()))
        if node.status == "error":
            details.append(f"ERROR: {one_line(node.error or 'failed', 60)}")
        rows.append((_printable("".join(pipes) + branch + label), fmt_ms(node.duration_ms),
                     f"+{fmt_ms((node.start - start) * 1000) or '0 ms'}",
                     _printable("  ".join(details))))
        if depth and depth < MAX_NESTING:
            pipes.append("    " if last else "│   ")
        children = node.children
        stack.extend((child, depth + 1, i == len(children) - 1)
                     for i, child in reversed(list(enumerate(children))))

    width = max(len(r[0]) for r in rows) if rows else 0
    dur = max(len(r[1]) for r in rows) if rows else 0
    off = max(len(r[2]) for r in rows) if rows else 0
    lines = [_printable(" · ".join(head)), ""]
    lines += [f"{r[0]:<{width}}  {r[1]:>{dur}}  {r[2]:>{off}}  {r[3]}".rstrip() for r in rows]
    return "\n".join(lines)
