"""`promptlab costs`: tokens and USD per group, from the roll-up kept at sync time.

Whole days come from the `rollup` tables (a few thousand rows however many calls were
logged); a `--since`/`--until` that cuts a day in two is completed from `entries` for that
day only. Stored `cost_usd` is used as logged; calls logged without one are priced now
from their tokens with the price table (prices are per token, so pricing summed tokens is
exact). Calls to a model the table does not know have an unknown cost — never 0 — and are
reported with the model names.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from promptlab.errors import UsageError
from promptlab.index.schema import ROLLUP_KEYS, ROLLUP_MEASURES, rollup_select_sql

if TYPE_CHECKING:
    from promptlab.index.core import Index
    from promptlab.index.query import Filters

# --by value -> rollup columns it groups on
GROUPS: dict[str, tuple[str, ...]] = {
    "day": ("day",),
    "model": ("model",),
    "provider": ("provider",),
    "tag": ("tag",),
    "prompt": ("prompt_id",),
    "version": ("prompt_id", "prompt_version"),
    "experiment": ("experiment",),
}
NONE_LABEL = {"tag": "(untagged)", "model": "(no model)", "provider": "(none)",
              "prompt": "(no prompt)", "version": "(no prompt)", "experiment": "(none)"}


@dataclass
class CostRow:
    """One group: calls, tokens and cost. `cost_usd` is the known part (None when no call of
    the group has a known cost); `unpriced_calls` counts calls whose cost is unknown."""

    group: dict[str, str]
    calls: int = 0
    errors: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    reasoning_tokens: int = 0
    cost_usd: float | None = None
    unpriced_calls: int = 0

    def add(self, other: CostRow) -> None:
        for name in ("calls", "errors", "input_tokens", "output_tokens", "cached_tokens",
                     "reasoning_tokens", "unpriced_calls"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        if other.cost_usd is not None:
            self.cost_usd = (self.cost_usd or 0.0) + other.cost_usd

    def to_dict(self) -> dict[str, Any]:
        return {**self.group, "calls": self.calls, "errors": self.errors,
                "input_tokens": self.input_tokens, "output_tokens": self.output_tokens,
                "cached_tokens": self.cached_tokens, "reasoning_tokens": self.reasoning_tokens,
                "cost_usd": None if self.cost_usd is None else round(self.cost_usd, 10),
                "unpriced_calls": self.unpriced_calls}


@dataclass
class CostReport:
    by: list[str]
    rows: list[CostRow]
    total: CostRow
    unknown_models: dict[str, int] = field(default_factory=dict)  # model -> unpriced calls

    def to_dict(self) -> dict[str, Any]:
        return {"by": self.by, "groups": [r.to_dict() for r in self.rows],
                "total": self.total.to_dict(), "unknown_models": self.unknown_models}


def cost_report(index: Index, by: list[str], filters: Filters, *, prices: Any = None) -> CostReport:
    """Roll up the llm calls matching `filters` by the dimensions in `by`."""
    for name in by:
        if name not in GROUPS:
            raise UsageError(f"--by {name!r}: expected one of {', '.join(GROUPS)}")
    if filters.variant or filters.status or filters.trace_id:
        raise UsageError("costs can be filtered by --since, --until, --prompt, --version, "
                         "--model, --tag and --experiment only")
    if len(filters.tags) > 1:
        raise UsageError("costs takes one --tag (a call with several tags counts under each)")
    if prices is None:
        from promptlab.costs import load_prices

        prices = load_prices()
    elif not hasattr(prices, "cost"):
        from promptlab.costs import load_prices

        prices = load_prices(prices)
    per_tag = "tag" in by or bool(filters.tags)
    keys = [col for name in by for col in GROUPS[name]]
    keys = list(dict.fromkeys(keys))
    source, params = _source(filters, per_tag)
    where, where_params = _where(filters)
    group_cols = ", ".join([*keys, "model"])
    sums = ", ".join(f"sum({m})" for m in ROLLUP_MEASURES)
    sql = f"SELECT {group_cols}, {sums} FROM ({source}) WHERE {where} GROUP BY {group_cols}"
    rows: dict[tuple[Any, ...], CostRow] = {}
    unknown: dict[str, int] = {}
    for values in index.conn.execute(sql, [*params, *where_params]):
        group_values = values[: len(keys)]
        model = values[len(keys)]
        m = dict(zip(ROLLUP_MEASURES, values[len(keys) + 1:], strict=True))
        row = CostRow(
            group={}, calls=int(m["calls"]), errors=int(m["errors"]),
            input_tokens=int(m["input_tokens"]), output_tokens=int(m["output_tokens"]),
            cached_tokens=int(m["cached_tokens"]), reasoning_tokens=int(m["reasoning_tokens"]),
            cost_usd=m["cost_usd"] if m["cost_calls"] else None,
        )
        if m["unpriced_calls"]:
            priced = prices.cost(model or None, int(m["unpriced_input_tokens"]),
                                 int(m["unpriced_output_tokens"]),
                                 int(m["unpriced_cached_tokens"]))
            if priced is None or (isinstance(priced, float) and math.isnan(priced)):
                row.unpriced_calls = int(m["unpriced_calls"])
                label = model or NONE_LABEL["model"]
                unknown[label] = unknown.get(label, 0) + row.unpriced_calls
            else:
                row.cost_usd = (row.cost_usd or 0.0) + priced
        key = tuple(group_values)
        if key not in rows:
            rows[key] = CostRow(group=_labels(by, keys, group_values))
        rows[key].add(row)
    ordered = sorted(rows.values(), key=_order(by))
    total = CostRow(group=_total_labels(by))
    for row in ordered:
        total.add(row)
    if "tag" in by:  # a call with two tags is in two groups: total and list it once
        once = cost_report(index, ["model"], filters, prices=prices)
        total, unknown = once.total, once.unknown_models
        total.group = _total_labels(by)
    return CostReport(by=by, rows=ordered, total=total, unknown_models=unknown)


def _total_labels(by: list[str]) -> dict[str, str]:
    """The total row's group cells: "total" under the first key, the others blank."""
    return {name: "total" if i == 0 else "" for i, name in enumerate(by)}


def _source(filters: Filters, per_tag: bool) -> tuple[str, list[Any]]:
    """Rollup-shaped rows for the time range: whole days from the roll-up table, partial
    days computed from entries."""
    table = "rollup_tags" if per_tag else "rollup"
    cols = ", ".join((*ROLLUP_KEYS, *(("tag",) if per_tag else ()), *ROLLUP_MEASURES))
    since, until = filters.since, filters.until
    first_day = None if since is None else math.ceil(since / 86400)
    end_day = None if until is None else math.floor(until / 86400)
    if first_day is not None and end_day is not None and first_day > end_day:
        return rollup_select_sql(per_tag=per_tag, where="e.ts >= ? AND e.ts < ?"), [since, until]
    parts, params = [], []
    day_where = []
    if first_day is not None:
        day_where.append(f"day >= {int(first_day)}")
        if since < first_day * 86400:
            parts.append(rollup_select_sql(per_tag=per_tag, where="e.ts >= ? AND e.ts < ?"))
            params += [since, first_day * 86400]
    if end_day is not None:
        day_where.append(f"day < {int(end_day)}")
        if until > end_day * 86400:
            parts.append(rollup_select_sql(per_tag=per_tag, where="e.ts >= ? AND e.ts < ?"))
            params += [end_day * 86400, until]
    whole = f"SELECT {cols} FROM {table}"
    if day_where:
        whole += " WHERE " + " AND ".join(day_where)
    return " UNION ALL ".join([whole, *parts]), params


def _where(filters: Filters) -> tuple[str, list[Any]]:
    clauses, params = [], []
    for column, value in (("prompt_id", filters.prompt), ("prompt_version", filters.version),
                          ("experiment", filters.experiment)):
        if value is not None:
            clauses.append(f"{column} = ?")
            params.append(value)
    if filters.model is not None:
        clauses.append("model GLOB ?" if any(c in filters.model for c in "*?[") else "model = ?")
        params.append(filters.model)
    for tag in filters.tags:
        clauses.append("tag = ?")
        params.append(tag)
    return " AND ".join(clauses) or "1", params


def _labels(by: list[str], keys: list[str], values: tuple[Any, ...]) -> dict[str, str]:
    value_of = dict(zip(keys, values, strict=True))
    labels = {}
    for name in by:
        if name == "day":
            labels[name] = datetime.fromtimestamp(int(value_of["day"]) * 86400, UTC).strftime(
                "%Y-%m-%d")
        elif name == "version":
            prompt, version = value_of["prompt_id"], value_of["prompt_version"]
            labels[name] = (f"{prompt}@{version}" if version else prompt) if prompt \
                else NONE_LABEL[name]
        else:
            value = value_of[GROUPS[name][0]]
            labels[name] = value if value else NONE_LABEL[name]
    return labels


def _order(by: list[str]) -> Any:
    if by and by[0] == "day":
        return lambda r: tuple(r.group[name] for name in by)
    return lambda r: (r.cost_usd is None, -(r.cost_usd or 0.0), -r.calls,
                      tuple(r.group[name] for name in by))
