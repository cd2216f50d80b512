"""What each dashboard view shows, as plain data (also the JSON API).

Every function here answers from bounded queries: roll-ups for totals and per-day series,
keyset paging for lists, a fixed-size sample for latency percentiles, so a view costs the
same at a thousand entries as at a million. Nothing here renders HTML.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import orjson

from promptlab.errors import OptionError, PromptlabError, UsageError

if TYPE_CHECKING:
    from promptlab.config import Settings
    from promptlab.index import Index

GROUP_BY = ("model", "prompt", "version", "tag", "provider")
PERIODS = {"24h": "24h", "7d": "7d", "30d": "30d", "90d": "90d", "all": None}
DEFAULT_PERIOD = "30d"
MAX_SERIES = 8  # stacked groups shown; the rest are summed as "other"
LATENCY_SAMPLE = 10_000  # calls read for the percentiles (all of them when fewer)
PAGE_SIZE = 50
MAX_PAGE = 1_000_000  # a page number past it (a hand-edited link) reads as the last one allowed
SEARCH_WINDOW = 1000
LIST_FILTERS = ("prompt", "version", "model", "tag", "experiment", "variant", "status", "kind")


def json_bytes(value: Any, option: int = 0) -> bytes:
    """`orjson.dumps(value, default=str, option=option)`; a value holding an integer beyond
    64 bits (entries keep them exact: logs show them as logged) goes through the standard
    library, which writes it exactly, where orjson refuses it."""
    try:
        return orjson.dumps(value, default=str, option=option)
    except TypeError as exc:
        if "64-bit" not in str(exc):
            raise
    import json

    indent = 2 if option & orjson.OPT_INDENT_2 else None
    return json.dumps(value, default=str, ensure_ascii=False, indent=indent,
                      separators=None if indent else (",", ":"),
                      sort_keys=bool(option & orjson.OPT_SORT_KEYS)).encode()


@dataclass(frozen=True)
class Period:
    """The time range a view covers: epoch seconds (None = open) and how it was asked."""

    since: float | None
    until: float | None
    label: str
    since_text: str = ""
    until_text: str = ""


def parse_period(params: dict[str, str], default: str | None = DEFAULT_PERIOD) -> Period:
    """`period=7d` (a preset) or `since=…&until=…` (dates, times, ages) from a query (or
    the report's --since and --until: an OptionError names either as its user typed it)."""
    from promptlab.index.query import parse_when

    since_text = params.get("since", "").strip()
    until_text = params.get("until", "").strip()
    if since_text or until_text:
        since = parse_when(since_text or None, option="since")
        until = parse_when(until_text or None, option="until", end=True)
        if since is not None and until is not None and since >= until:
            raise OptionError(lambda p: f"{p}since ({since_text}) is not before {p}until "
                              f"({until_text})")
        label = f"{since_text or '…'} – {until_text or 'now'}"
        return Period(since, until, label, since_text, until_text)
    name = params.get("period", default or "all") or "all"
    if name not in PERIODS:
        raise UsageError(f"period {name!r}: expected one of {', '.join(PERIODS)}")
    age = PERIODS[name]
    return Period(parse_when(age) if age else None, None, name)


def _iso(ts: float | None) -> str | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC).isoformat()


def _day(day: int) -> str:
    d = datetime.fromtimestamp(day * 86400, UTC)
    return f"{d.year:04d}-{d.month:02d}-{d.day:02d}"  # strftime drops the zeros of year 1-999


def _iso_day(text: str) -> int:
    return int(datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=UTC).timestamp() // 86400)


# -- overview ---------------------------------------------------------------------------


def overview(index: Index, period: Period, group: str = "model",
             prices: Any = None) -> dict[str, Any]:
    """Calls, cost and tokens per day (per week, month or year over a long period) stacked
    by `group`, latency p50/p95 and the error rate per bar, and the totals `promptlab
    costs` prints for the same period."""
    if group not in GROUP_BY:
        raise UsageError(f"group {group!r}: expected one of {', '.join(GROUP_BY)}")
    index.ensure_synced()
    # The totals are exactly what `promptlab costs` prints (partial days included).
    by_day = index.costs(["day"], since=period.since, until=period.until, prices=prices)
    axis = chart_axis([_iso_day(row.group["day"]) for row in by_day.rows], period)
    later = [row.calls for row in by_day.rows if _iso_day(row.group["day"]) > axis.end]
    series_rows = _stacked(index, period, group, prices)
    by_group = _by_group(series_rows, group)
    shown = [g[group] for g in by_group[:MAX_SERIES]]
    other = "other" if len(by_group) > MAX_SERIES else None
    series: dict[str, dict[str, dict[str, float]]] = {}
    label = axis.labeller()
    for day, name, m in series_rows:
        name = name if name in shown else str(other)
        cell = series.setdefault(name, {}).setdefault(label(day), {
            "calls": 0, "cost_usd": 0.0, "tokens": 0})
        cell["calls"] += m["calls"]
        cell["cost_usd"] += m["cost_usd"] or 0.0
        cell["tokens"] += m["input_tokens"] + m["output_tokens"]
    errors: dict[str, list[int]] = {}
    for row in by_day.rows:
        counts = errors.setdefault(label(row.group["day"]), [0, 0])
        counts[0] += row.errors
        counts[1] += row.calls
    return {
        "period": {"label": period.label, "since": period.since, "until": period.until},
        "group": group,
        "bucket": axis.bucket,
        "days": axis.labels,
        "not_charted": {"calls": sum(later), "after": _day(axis.end),
                        "since": _day(axis.end + 1)} if later else None,
        "groups": shown + ([other] if other else []),
        "series": series,
        "error_rate": [
            {"day": d, "errors": errors[d][0], "calls": errors[d][1],
             "rate": errors[d][0] / errors[d][1] if errors[d][1] else None}
            for d in axis.labels if d in errors],
        "latency": latency_by_day(index, period, bucket=label),
        "totals": by_day.to_dict(),
        "by_group": by_group,
    }


MAX_BARS = 400  # bars a chart draws; a longer period gets wider bars (week, month, year)


@dataclass(frozen=True)
class Axis:
    """The x axis of the overview's charts: one bar per `bucket` (day, week, month or
    year) from day `first` to day `end` (days since 1970-01-01 UTC), and their labels."""

    bucket: str
    first: int
    end: int
    labels: list[str]

    def labeller(self) -> Callable[[str], str]:
        """`YYYY-MM-DD` day → the label of its bar."""
        if self.bucket == "day":
            return str
        cache: dict[str, str] = {}

        def label(day: str) -> str:
            text = cache.get(day)
            if text is None:
                text = cache[day] = _bucket_label(self.bucket, _iso_day(day))
            return text

        return label


def chart_axis(data_days: list[int], period: Period, now: float | None = None) -> Axis:
    """Every bar from the period's start (or the oldest call) to its end (or today), empty
    ones too, so the axis is honest; nothing older is ever cut off, the bars widen instead.

    Calls dated after tomorrow in a period that does not reach them explicitly (a wrong
    clock; a test entry in 2099) would squeeze every real call into one bar: they are
    left off the charts, and the page says how many (the totals count them)."""
    today = int((time.time() if now is None else now) // 86400)
    if period.until is not None:
        end = int((period.until - 1e-6) // 86400)
        horizon = end
    else:
        end, horizon = today, today + 1
    charted = [d for d in data_days if d <= horizon]
    if not charted:
        return Axis("day", end, end, [])
    first = charted[0] if period.since is None else min(charted[0], int(period.since // 86400))
    end = max(end, charted[-1])
    for bucket in ("day", "week", "month", "year"):
        starts = _bucket_starts(bucket, first, end)
        if len(starts) <= MAX_BARS:
            break
    return Axis(bucket, first, end, [_bucket_label(bucket, d) for d in starts])


def _bucket_starts(bucket: str, first: int, last: int) -> range | list[int]:
    """A day inside each bar from `first` to `last`, in order."""
    if bucket == "day":
        return range(first, last + 1)
    if bucket == "week":
        return range(_monday(first), last + 1, 7)
    a, b = datetime.fromtimestamp(first * 86400, UTC), datetime.fromtimestamp(last * 86400, UTC)
    if bucket == "month":
        months = range(a.year * 12 + a.month - 1, b.year * 12 + b.month)
        return [int(datetime(m // 12, m % 12 + 1, 1, tzinfo=UTC).timestamp() // 86400)
                for m in months]
    return [int(datetime(y, 1, 1, tzinfo=UTC).timestamp() // 86400)
            for y in range(a.year, b.year + 1)]


def _monday(day: int) -> int:
    return day - (day + 3) % 7  # 1970-01-01 was a Thursday


def _bucket_label(bucket: str, day: int) -> str:
    """`2026-11-30` (a day; a week, by its Monday), `2026-11` (a month), `2026` (a year)."""
    if bucket == "week":
        day = _monday(day)
    text = _day(day)
    return text if bucket in ("day", "week") else text[:7] if bucket == "month" else text[:4]


_GROUP_SQL = {"model": "model", "provider": "provider", "prompt": "prompt_id",
              "version": "prompt_id || CASE WHEN prompt_version != '' THEN '@' || prompt_version "
                         "ELSE '' END",
              "tag": "tag"}
_GROUP_NONE = {"model": "(no model)", "provider": "(none)", "prompt": "(no prompt)",
               "version": "(no prompt)", "tag": "(untagged)"}


def _stacked(index: Index, period: Period, group: str,
             prices: Any) -> list[tuple[str, str, dict[str, Any]]]:
    """(day, group, measures) for each day and group of the period, from the roll-up in one
    GROUP BY over whole days (the chart's bars are days). Measures: calls, errors,
    input/output tokens, cost (None when no call of the cell has a known cost) and the calls
    of unknown cost; calls logged without a cost are priced from their tokens, as `costs`
    does."""
    from promptlab.costs import load_prices

    if prices is None or not hasattr(prices, "cost"):
        prices = load_prices(prices) if prices is not None else load_prices()
    table = "rollup_tags" if group == "tag" else "rollup"
    where, params = _day_bounds(period)
    sql = (f"SELECT day, {_GROUP_SQL[group]} AS g, model, sum(calls), sum(errors), "
           "sum(input_tokens), sum(output_tokens), sum(cost_usd), sum(cost_calls), "
           "sum(unpriced_calls), sum(unpriced_input_tokens), sum(unpriced_output_tokens), "
           f"sum(unpriced_cached_tokens) FROM {table}"
           + (" WHERE " + " AND ".join(where) if where else "") + " GROUP BY day, g, model")
    out: dict[tuple[int, str], dict[str, Any]] = {}
    for (day, name, model, calls, errors, inp, outp, cost, cost_calls, unpriced, u_in, u_out,
         u_cached) in index.conn.execute(sql, params):
        known = cost if cost_calls else None
        unknown = 0
        if unpriced:
            priced = prices.cost(model or None, u_in, u_out, u_cached)
            if priced is not None and math.isfinite(priced):
                known = (known or 0.0) + priced
            else:
                unknown = unpriced
        cell = out.setdefault((day, name or _GROUP_NONE[group]), {
            "calls": 0, "errors": 0, "input_tokens": 0, "output_tokens": 0, "cost_usd": None,
            "unpriced_calls": 0})
        cell["calls"] += calls
        cell["errors"] += errors
        cell["input_tokens"] += inp
        cell["output_tokens"] += outp
        cell["unpriced_calls"] += unknown
        if known is not None:
            cell["cost_usd"] = (cell["cost_usd"] or 0.0) + known
    return [(_day(day), name, m) for (day, name), m in sorted(out.items())]


def _by_group(rows: list[tuple[str, str, dict[str, Any]]], group: str) -> list[dict[str, Any]]:
    """The stacked cells summed over the days: one row per group, costliest first."""
    totals: dict[str, dict[str, Any]] = {}
    for _, name, m in rows:
        t = totals.setdefault(name, {group: name, "calls": 0, "errors": 0, "input_tokens": 0,
                                     "output_tokens": 0, "cost_usd": None, "unpriced_calls": 0})
        for key in ("calls", "errors", "input_tokens", "output_tokens", "unpriced_calls"):
            t[key] += m[key]
        if m["cost_usd"] is not None:
            t["cost_usd"] = (t["cost_usd"] or 0.0) + m["cost_usd"]
    return sorted(totals.values(), key=lambda t: (t["cost_usd"] is None, -(t["cost_usd"] or 0),
                                                  -t["calls"], t[group]))


def latency_by_day(index: Index, period: Period, cap: int = LATENCY_SAMPLE,
                   bucket: Callable[[str], str] = str) -> dict[str, Any]:
    """p50 and p95 of LLM call latency per day (or per bar: `bucket` maps a day to its
    label). When the period holds more than `cap` calls, an evenly spaced sample of `cap`
    of them (by ingest order) is read instead, so the cost is bounded; `sampled` says so."""
    conn = index.conn
    since = period.since if period.since is not None else float("-inf")
    until = period.until if period.until is not None else float("inf")
    calls = _calls_in(index, period)
    if calls <= cap:
        rows = conn.execute(
            "SELECT day, latency_ms FROM entries WHERE ts >= ? AND ts < ? AND kind = 'llm' "
            "AND latency_ms IS NOT NULL", (since, until)).fetchall()
        sampled = False
    else:
        lo = conn.execute("SELECT rowid FROM entries WHERE ts >= ? ORDER BY ts LIMIT 1",
                          (since,)).fetchone()
        hi = conn.execute("SELECT rowid FROM entries WHERE ts < ? ORDER BY ts DESC LIMIT 1",
                          (until,)).fetchone()
        if lo is None or hi is None:
            rows = []
        else:
            lo_id, hi_id = min(lo[0], hi[0]), max(lo[0], hi[0])
            step = max(1, (hi_id - lo_id + 1) // cap)
            # Rowids (ingest order) at an even step; looked up by primary key, so the cost
            # is `cap` lookups whatever the size of the log.
            rowids = orjson.dumps(list(range(lo_id, hi_id + 1, step))).decode()
            rows = conn.execute(
                "SELECT e.day, e.latency_ms FROM json_each(?) j JOIN entries e ON e.rowid = j.value"
                " WHERE e.ts >= ? AND e.ts < ? AND e.kind = 'llm' AND e.latency_ms IS NOT NULL",
                (rowids, since, until)).fetchall()
        sampled = True
    per_day: dict[int, list[float]] = {}
    for day, value in rows:
        per_day.setdefault(day, []).append(value)
    per_bar: dict[str, list[float]] = {}
    for day in sorted(per_day):
        per_bar.setdefault(bucket(_day(day)), []).extend(per_day[day])
    points = []
    for label, values in per_bar.items():
        values.sort()
        points.append({"day": label, "n": len(values), "p50": _quantile(values, 0.5),
                       "p95": _quantile(values, 0.95)})
    return {"points": points, "sampled": sampled, "read": len(rows), "calls": calls}


def _day_bounds(period: Period) -> tuple[list[str], list[int]]:
    """WHERE clauses and parameters picking the roll-up's whole UTC days of `period`
    (`until` is exclusive, so a period ending at midnight stops the day before)."""
    where, params = [], []
    if period.since is not None:
        where.append("day >= ?")
        params.append(int(period.since // 86400))
    if period.until is not None:
        where.append("day <= ?")
        params.append(int((period.until - 1e-6) // 86400))
    return where, params


def _calls_in(index: Index, period: Period) -> int:
    """LLM calls in the period, from the roll-up (whole days; close enough to pick a plan)."""
    where, params = _day_bounds(period)
    sql = "SELECT COALESCE(sum(calls), 0) FROM rollup" + (
        " WHERE " + " AND ".join(where) if where else "")
    return int(index.conn.execute(sql, params).fetchone()[0])


def _quantile(values: list[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default), on sorted values."""
    if len(values) == 1:
        return values[0]
    pos = (len(values) - 1) * q
    low = math.floor(pos)
    high = min(low + 1, len(values) - 1)
    return values[low] + (values[high] - values[low]) * (pos - low)


# -- logs -------------------------------------------------------------------------------


def list_filters(params: dict[str, str]) -> dict[str, str]:
    """The filters a logs query asks for (empty ones dropped)."""
    return {name: params[name].strip() for name in LIST_FILTERS if params.get(name, "").strip()}


def logs_page(index: Index, params: dict[str, str], *, semantic: Any = None,
              page_size: int = PAGE_SIZE) -> dict[str, Any]:
    """One page of entries, newest first (or best matches first for a search).

    Listing pages by keyset (`before=<ts>:<rowid>`), so page 1000 costs what page 1 does;
    a search ranks the newest SEARCH_WINDOW matches and pages through them."""
    from promptlab.index.query import (
        load_entries,
        make_filters,
        search_entries,
    )

    index.ensure_synced()
    filters_given = list_filters(params)
    period = parse_period(params, default="all")
    values: dict[str, Any] = dict(filters_given)
    if values.get("kind") == "all":
        values["kind"] = None
        values.pop("kind")
        kind_all = True
    else:
        kind_all = False
    filters = make_filters(None, {**values, "since": period.since, "until": period.until})
    if kind_all:
        from dataclasses import replace

        filters = replace(filters, kind=None)
    text = params.get("q", "").strip()
    mode = params.get("mode", "text") or "text"
    if mode not in ("text", "semantic", "hybrid"):
        raise UsageError(f"mode {mode!r}: expected text, semantic or hybrid")
    out: dict[str, Any] = {"q": text, "mode": mode, "filters": filters_given,
                           "sort": params.get("sort", ""), "in": params.get("in", ""),
                           "period": {"since": period.since_text, "until": period.until_text},
                           "next": None, "prev_page": None}
    if text:
        page = min(max(1, _int(params.get("page"), 1)), MAX_PAGE)
        start = (page - 1) * page_size
        if mode != "text":
            if semantic is None:
                raise UsageError(f"{mode} search needs the semantic index "
                                 "(pip install 'promptlab[semantic]')")
            hits = semantic(index, text, {**values, "since": period.since,
                                          "until": period.until}, mode,
                            start + page_size + 1)
        else:
            sort = params.get("sort", "rank") or "rank"
            field_name = params.get("in") or None
            if field_name not in (None, "system", "user", "response"):
                raise UsageError(f"in {field_name!r}: expected system, user or response")
            hits = search_entries(index, text, filters, limit=start + page_size + 1, sort=sort,
                                  window=SEARCH_WINDOW, field_name=field_name)
        more = len(hits) > start + page_size
        hits = hits[start:start + page_size]
        out["rows"] = [_row(h.entry, getattr(h, "snippet", None)) for h in hits]
        out["page"] = page
        if more:
            out["next"] = {"page": str(page + 1)}
        if page > 1:
            out["prev_page"] = {"page": str(page - 1)}
        return out
    where, sql_params = filters.where(conn=index.conn)
    before = params.get("before", "")
    if before:
        ts_text, _, rowid_text = before.partition(":")
        try:
            ts_value, rowid = float(ts_text), int(rowid_text)
            if not (math.isfinite(ts_value) and 0 <= rowid < 1 << 63):
                raise ValueError(before)
        except ValueError:
            raise UsageError(f"before {before!r}: expected <ts>:<rowid> from a 'older' link") \
                from None
        where += " AND (e.ts < ? OR (e.ts = ? AND e.rowid < ?))"
        sql_params += [ts_value, ts_value, rowid]
    from promptlab.index.query import _select_hits

    rows = index.conn.execute(
        f"SELECT {_select_hits()}, e.ts FROM entries e WHERE {where} "
        "ORDER BY e.ts DESC, e.rowid DESC LIMIT ?", [*sql_params, page_size + 1]).fetchall()
    more = len(rows) > page_size
    rows = rows[:page_size]
    hits = load_entries(index, [r[:-1] for r in rows])
    out["rows"] = [_row(h.entry) for h in hits]
    if more and rows:
        last = rows[-1]
        out["next"] = {"before": f"{last[-1]!r}:{last[0]}"}
    return out


def _int(text: str | None, default: int) -> int:
    try:
        return int(text) if text else default
    except ValueError:
        return default


def _row(entry: dict[str, Any], snippet: str | None = None) -> dict[str, Any]:
    """What a list row shows of an entry."""
    prompt = entry.get("prompt_id")
    if prompt and entry.get("prompt_version"):
        prompt = f"{prompt}@{entry['prompt_version']}"
    text = snippet or entry.get("assistant_response") or entry.get("user_message") or \
        entry.get("name") or ""
    if not text and isinstance(entry.get("messages"), list) and entry["messages"]:
        last = entry["messages"][-1]
        text = last.get("content", "") if isinstance(last, dict) else ""
    if not isinstance(text, str):
        text = str(text)
    return {
        "id": entry.get("id"), "timestamp": entry.get("timestamp"),
        "kind": entry.get("kind", "llm"), "model": entry.get("model"), "prompt": prompt,
        "prompt_id": entry.get("prompt_id"), "prompt_version": entry.get("prompt_version"),
        "status": entry.get("status") or ("error" if entry.get("error") else "ok"),
        "input_tokens": entry.get("input_tokens"), "output_tokens": entry.get("output_tokens"),
        "latency_ms": entry.get("latency_ms"), "cost_usd": entry.get("cost_usd"),
        "tags": entry.get("tags") or [], "trace_id": entry.get("trace_id"),
        "text": text[:160], "snippet": bool(snippet),
    }


def entry_page(index: Index, entry_id: str) -> dict[str, Any]:
    """One entry whole: chat, numbers, scores and feedback, prompt version, trace."""
    from promptlab.index.query import entry_details

    index.ensure_synced()
    details = entry_details(index, entry_id)
    entry = details.entry
    return {"entry": entry, "messages": chat_messages(entry), "scores": details.scores,
            "feedback": details.feedback, "trace": details.trace}


def chat_messages(entry: dict[str, Any]) -> list[dict[str, str]]:
    """The conversation of an entry as [{role, content}] — from `messages` when logged,
    else from the system prompt, user message and response."""
    out: list[dict[str, str]] = []
    messages = entry.get("messages")
    if isinstance(messages, list) and messages:
        for m in messages:
            if isinstance(m, dict):
                out.append({"role": str(m.get("role", "?")), "content": _text(m.get("content"))})
            else:
                out.append({"role": "?", "content": _text(m)})
        response = entry.get("assistant_response")
        if response and not (out and out[-1]["role"] == "assistant"
                             and out[-1]["content"] == response):
            out.append({"role": "assistant", "content": _text(response)})
        return out
    for role, key in (("system", "system_prompt"), ("user", "user_message"),
                      ("assistant", "assistant_response")):
        if entry.get(key) not in (None, ""):
            out.append({"role": role, "content": _text(entry[key])})
    return out


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list):  # content parts
        return "\n".join(p.get("text", "") if isinstance(p, dict) else str(p) for p in value)
    return json_bytes(value, orjson.OPT_INDENT_2).decode() if value is not None else ""


# -- traces -----------------------------------------------------------------------------


def traces_page(index: Index, params: dict[str, str], page_size: int = PAGE_SIZE) -> dict[str, Any]:
    """Recent traces (by root span start), newest first, paged by time."""
    from promptlab.index.query import Filters
    from promptlab.index.trace import list_traces

    index.ensure_synced()
    period = parse_period(params, default="all")
    until = period.until
    before = params.get("before", "")
    if before:
        try:
            value = float(before)
            if not math.isfinite(value):
                raise ValueError(before)
            until = value if until is None else min(until, value)
        except ValueError:
            raise UsageError(f"before {before!r}: expected a time from an 'older' link") from None
    rows = list_traces(index, Filters(since=period.since, until=until), limit=page_size + 1)
    more = len(rows) > page_size
    rows = rows[:page_size]
    out: dict[str, Any] = {"rows": rows, "next": None,
                           "period": {"since": period.since_text, "until": period.until_text}}
    if more and rows:
        from promptlab.index.query import parse_when

        out["next"] = {"before": repr(parse_when(rows[-1]["timestamp"]))}
    return out


def trace_page(index: Index, trace_id: str) -> dict[str, Any]:
    """A trace as rows for a waterfall: depth, offset and duration, LLM calls marked."""
    from promptlab.index.trace import build_trace

    index.ensure_synced()
    trace = build_trace(index, trace_id)
    nodes = [n for root in trace.roots for n in root.walk()]
    start = min((n.start for _, n in nodes), default=0.0)
    rows = []
    end = 0.0
    for depth, node in nodes:
        offset = (node.start - start) * 1000
        duration = node.duration_ms or 0.0
        end = max(end, offset + duration)
        rows.append({"id": node.id, "depth": depth, "kind": node.kind, "name": node.name,
                     "model": node.model, "prompt": node.prompt, "status": node.status,
                     "error": node.error, "offset_ms": round(offset, 3),
                     "duration_ms": node.duration_ms, "input_tokens": node.input_tokens,
                     "output_tokens": node.output_tokens, "cost_usd": node.cost_usd,
                     "scores": node.scores, "orphan": node.orphan})
    llm = [r for r in rows if r["kind"] == "llm"]
    return {"trace_id": trace.trace_id, "rows": rows, "duration_ms": round(end, 3),
            "llm_calls": len(llm), "spans": len(rows) - len(llm),
            "input_tokens": sum(r["input_tokens"] or 0 for r in llm),
            "output_tokens": sum(r["output_tokens"] or 0 for r in llm),
            "cost_usd": _sum_known(r["cost_usd"] for r in llm),
            "errors": sum(r["status"] == "error" for r in rows)}


def _sum_known(values: Any) -> float | None:
    known = [v for v in values if v is not None]
    return sum(known) if known else None


# -- prompts ----------------------------------------------------------------------------


def version_usage(index: Index, prompt_id: str | None = None, prices: Any = None,
                  scores: bool = True) -> dict[str, dict[str, dict[str, Any]]]:
    """Per prompt and version: calls, errors, tokens, cost (roll-up), mean latency, and
    (with `scores`) the mean of every score, from the covering scores index — one prompt's
    scores at a time is what keeps this bounded."""
    index.ensure_synced()
    conn = index.conn
    where, params = ("WHERE prompt_id = ?", [prompt_id]) if prompt_id else ("WHERE prompt_id != ''", [])
    usage: dict[str, dict[str, dict[str, Any]]] = {}
    for pid, version, calls, latency_sum in conn.execute(
            f"SELECT prompt_id, prompt_version, sum(calls), sum(latency_ms_sum) FROM rollup "
            f"{where} GROUP BY prompt_id, prompt_version", params):
        usage.setdefault(pid, {})[version or "?"] = {
            "calls": calls, "mean_latency_ms": latency_sum / calls if calls else None,
            "scores": {}}
    report = index.costs(["version"], prompt=prompt_id, prices=prices) if prompt_id else \
        index.costs(["version"], prices=prices)
    for row in report.rows:
        label = row.group["version"]
        pid, _, version = label.partition("@")
        cell = usage.get(pid, {}).get(version or "?")
        if cell is not None:
            cell.update(errors=row.errors, input_tokens=row.input_tokens,
                        output_tokens=row.output_tokens, cost_usd=row.cost_usd,
                        unpriced_calls=row.unpriced_calls)
    if not scores:
        return usage
    score_where = "WHERE prompt_id = ?" if prompt_id else "WHERE prompt_id IS NOT NULL"
    for pid, version, name, n, mean in conn.execute(
            f"SELECT prompt_id, prompt_version, name, count(value), avg(value) FROM scores "
            f"{score_where} GROUP BY prompt_id, prompt_version, name",
            [prompt_id] if prompt_id else []):
        cell = usage.get(pid, {}).get(version or "?")
        if cell is not None:
            cell["scores"][name] = {"n": n, "mean": mean}
    return usage


def prompts_list(settings: Settings, index: Index) -> dict[str, Any]:
    """Every prompt: versions, labels, description, and per-version usage."""
    from promptlab.registry import Registry

    registry = Registry(settings.prompts_dir)
    usage = version_usage(index, prices=settings.prices, scores=False)
    prompts = []
    try:
        ids = registry.ids()
    except PromptlabError:
        ids = []
    for pid in ids:
        try:
            versions = [v.name for v in registry.versions(pid)]
            labels = {label.name: label.version for label in registry.labels(pid)}
            description = registry.get(pid).description if versions else None
        except PromptlabError as exc:
            prompts.append({"id": pid, "error": str(exc), "versions": [], "labels": {},
                            "usage": usage.get(pid, {})})
            continue
        prompts.append({"id": pid, "versions": versions, "labels": labels,
                        "description": description, "usage": usage.get(pid, {})})
    known = {p["id"] for p in prompts}
    logged_only = sorted(pid for pid in usage if pid not in known)
    return {"prompts": prompts, "logged_only": [{"id": p, "usage": usage[p]}
                                                for p in logged_only]}


def prompt_page(settings: Settings, index: Index, prompt_id: str,
                params: dict[str, str]) -> dict[str, Any]:
    """One prompt: its versions with the text of one, labels, git history, a diff between
    two versions, and per-version usage."""
    from promptlab.registry import Registry

    registry = Registry(settings.prompts_dir)
    versions = registry.versions(prompt_id)  # raises a clear error for an unknown id
    names = [v.name for v in versions]
    labels = {label.name: label.version for label in registry.labels(prompt_id)}
    shown = params.get("version") or labels.get("current") or (names[-1] if names else None)
    if shown is not None and shown not in names:
        raise UsageError(f"{prompt_id} has no version {shown!r} (versions: {', '.join(names)})")
    text = registry.version(prompt_id, shown).path.read_text(encoding="utf-8", errors="replace") \
        if shown else ""
    out: dict[str, Any] = {"id": prompt_id, "versions": names, "labels": labels,
                           "version": shown, "text": text,
                           "usage": version_usage(index, prompt_id, settings.prices).get(
                               prompt_id, {}),
                           "history": None, "history_error": None, "diff": None}
    try:
        from promptlab.history import prompt_history

        history = prompt_history(registry, prompt_id)
        out["history"] = [r.to_dict() for r in history.rows[:100]]
    except PromptlabError as exc:
        out["history_error"] = str(exc)
    a, b = params.get("a", ""), params.get("b", "")
    if not (a and b) and len(names) >= 2:
        a, b = names[-2], names[-1]
    if a and b:
        for side in (a, b):
            if side not in names and side not in labels:
                raise UsageError(f"diff: {prompt_id} has no version or label {side!r}")
        from promptlab.history import unified_diff

        def read(name: str) -> str:
            version = labels.get(name) or name
            return registry.version(prompt_id, version).path.read_text(
                encoding="utf-8", errors="replace")

        out["diff"] = {"a": a, "b": b, "lines": unified_diff(
            read(a), read(b), f"{prompt_id}/{a}", f"{prompt_id}/{b}", context=3)}
    return out


# -- experiments ------------------------------------------------------------------------


def experiments_list(settings: Settings, index: Index) -> dict[str, Any]:
    """Every experiment file with what the roll-up says of it: calls, errors and the last
    day per prompt version (a few rows, however many calls). The full status — units,
    observed split, runs — is on the experiment's own page."""
    from promptlab.experiments import list_experiments, load_experiment

    index.ensure_synced()
    rows = []
    for name in list_experiments(settings):
        try:
            exp = load_experiment(name, settings)
        except PromptlabError as exc:
            rows.append({"name": name, "error": str(exc)})
            continue
        versions = [
            {"version": version or "?", "calls": calls, "errors": errors,
             "last_day": _day(last)}
            for version, calls, errors, last in index.conn.execute(
                "SELECT prompt_version, sum(calls), sum(errors), max(day) FROM rollup "
                "WHERE experiment = ? GROUP BY prompt_version ORDER BY prompt_version",
                (name,))]
        rows.append({"name": name, "prompt": exp.prompt, "description": exp.description,
                     "design": exp.dataset.design, "variants": list(exp.variants),
                     "calls": sum(v["calls"] for v in versions), "versions": versions,
                     "last_day": max((v["last_day"] for v in versions), default=None)})
    return {"experiments": rows}


def experiment_page(settings: Settings, index: Index, name: str,
                    period: Period | None = None) -> dict[str, Any]:
    """An experiment's status and its comparison (the `compare --json` form)."""
    from promptlab.comparison import compare
    from promptlab.experiments import load_experiment
    from promptlab.experiments.status import experiment_status

    out: dict[str, Any] = {"name": name, "status": None, "comparison": None, "error": None,
                           "description": None, "prompt": None}
    missing: PromptlabError | None = None
    try:
        exp = load_experiment(name, settings)
        out.update(description=exp.description, prompt=exp.prompt,
                   status=experiment_status(exp, settings.log_dir))
    except PromptlabError as exc:  # no file: the log may still hold its entries
        out["error"] = str(exc)
        missing = exc
    try:
        kwargs = {}
        if period is not None:
            kwargs = {"since": _iso(period.since), "until": _iso(period.until)}
        result = compare(experiment=name, settings=settings, **kwargs)
        out["comparison"] = result.to_dict()
    except PromptlabError as exc:
        if missing is not None:  # no file and nothing logged: there is no such experiment
            raise missing from None
        out["compare_error"] = str(exc)
    return out


def pairs_of(comparison: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The per-version comparisons of a `compare --json` object (one or several)."""
    if not comparison:
        return []
    return list(comparison.get("comparisons") or [comparison])


def data_version(index: Index) -> tuple[int, int]:
    """Changes whenever a sync ingests something: used to key the view cache."""
    row = index.conn.execute(
        "SELECT COALESCE(max(rowid), 0), (SELECT COALESCE(sum(offset), 0) FROM files) "
        "FROM entries").fetchone()
    return int(row[0]), int(row[1])


def project_mtime(settings: Settings) -> float:
    """Newest change to prompts or experiment files (they change the Prompts and
    Experiments views without touching the log)."""
    newest = 0.0
    for folder in (settings.prompts_dir, settings.experiments_dir):
        try:
            newest = max(newest, os.stat(folder).st_mtime)
            for entry in os.scandir(folder):
                newest = max(newest, entry.stat(follow_symlinks=False).st_mtime)
        except OSError:
            continue
    return newest
