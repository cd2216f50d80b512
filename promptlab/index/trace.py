"""Traces from the index: spans nested with their durations, LLM calls with their tokens.

A span entry has `span_id` and `parent_id` (None at the root); an LLM call inside a span
carries `span_id` (its own id) and `parent_id` (the enclosing span). Nodes whose parent is
not in the log (not written yet, or lost) are shown at the top level, marked `orphan`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from promptlab.index.ids import EntryNotFoundError, resolve_id

if TYPE_CHECKING:
    from promptlab.index.core import Index
    from promptlab.index.query import Filters

_COLUMNS = ("rowid", "id", "kind", "name", "model", "prompt_id", "prompt_version", "timestamp",
            "ts", "latency_ms", "status", "error", "input_tokens", "output_tokens",
            "cached_tokens", "cost_usd", "span_id", "parent_id")


@dataclass
class TraceNode:
    """One span or call of a trace, with its children in start order."""

    id: str
    kind: str
    name: str | None
    start: float  # epoch seconds
    timestamp: str
    duration_ms: float | None
    status: str
    error: str | None = None
    model: str | None = None
    prompt: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    cost_usd: float | None = None
    scores: dict[str, Any] = field(default_factory=dict)
    orphan: bool = False
    children: list[TraceNode] = field(default_factory=list)

    def walk(self, depth: int = 0) -> list[tuple[int, TraceNode]]:
        out = [(depth, self)]
        for child in self.children:
            out.extend(child.walk(depth + 1))
        return out

    def to_dict(self, trace_start: float) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": self.id, "kind": self.kind, "name": self.name, "timestamp": self.timestamp,
            "offset_ms": round((self.start - trace_start) * 1000, 3),
            "duration_ms": self.duration_ms, "status": self.status, "error": self.error,
            "model": self.model, "prompt": self.prompt, "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens, "cost_usd": self.cost_usd,
            "scores": self.scores or None, "orphan": self.orphan or None,
        }
        data = {k: v for k, v in data.items() if v is not None}
        data["children"] = [c.to_dict(trace_start) for c in self.children]
        return data


@dataclass
class Trace:
    trace_id: str
    roots: list[TraceNode]

    @property
    def nodes(self) -> list[TraceNode]:
        return [node for root in self.roots for _, node in root.walk()]

    @property
    def start(self) -> float:
        return min(node.start for node in self.nodes)

    @property
    def duration_ms(self) -> float:
        end = max(node.start + (node.duration_ms or 0) / 1000 for node in self.nodes)
        return (end - self.start) * 1000

    def summary(self) -> dict[str, Any]:
        nodes = self.nodes
        calls = [n for n in nodes if n.kind == "llm"]
        costs = [n.cost_usd for n in calls if n.cost_usd is not None]
        return {
            "trace_id": self.trace_id,
            "name": self.roots[0].name if self.roots else None,
            "timestamp": min(nodes, key=lambda n: n.start).timestamp,
            "duration_ms": round(self.duration_ms, 3),
            "spans": sum(1 for n in nodes if n.kind == "span"),
            "llm_calls": len(calls),
            "input_tokens": sum(n.input_tokens or 0 for n in calls),
            "output_tokens": sum(n.output_tokens or 0 for n in calls),
            "cost_usd": round(sum(costs), 10) if costs else None,
            "errors": sum(1 for n in nodes if n.status == "error"),
        }

    def to_dict(self) -> dict[str, Any]:
        start = self.start
        return {**self.summary(), "tree": [r.to_dict(start) for r in self.roots]}


def resolve_trace_id(index: Index, ref: str) -> str:
    """The trace id for `ref`: a trace id, a unique prefix of one (ids.MIN_PREFIX characters
    or more), or the id (or unique prefix) of any span or call in the trace."""
    hint = "list recent traces with `promptlab trace`"
    try:
        return resolve_id(index.conn, ref, column="trace_id", what="trace",
                          where="trace_id IS NOT NULL", hint=hint,
                          place=f"the log index of {index.log_dir}")
    except EntryNotFoundError as exc:
        if "ambiguous" in str(exc):
            raise
        not_a_trace = exc
    try:
        entry_id = resolve_id(index.conn, ref, what="entry")
    except EntryNotFoundError as exc:
        raise (exc if "ambiguous" in str(exc) else not_a_trace) from None
    trace_id = index.conn.execute("SELECT trace_id FROM entries WHERE id = ?",
                                  (entry_id,)).fetchone()[0]
    if not trace_id:
        raise EntryNotFoundError(f"entry {entry_id} is not part of a trace")
    return str(trace_id)


def build_trace(index: Index, ref: str) -> Trace:
    """The trace `ref` (see resolve_trace_id) as a forest of TraceNode."""
    trace_id = resolve_trace_id(index, ref)
    rows = index.conn.execute(
        f"SELECT {', '.join(_COLUMNS)} FROM entries WHERE trace_id = ? AND kind != 'feedback' "
        "ORDER BY ts, rowid", (trace_id,)).fetchall()
    scores: dict[int, dict[str, Any]] = {}
    for rowid, name, value, is_bool in index.conn.execute(
        "SELECT s.entry_rowid, s.name, s.value, s.is_bool FROM scores s JOIN entries e "
        "ON e.rowid = s.entry_rowid WHERE e.trace_id = ?", (trace_id,)):
        scores.setdefault(rowid, {})[name] = bool(value) if is_bool else value
    nodes: dict[str, TraceNode] = {}
    parents: list[tuple[TraceNode, str | None]] = []
    for row in rows:
        r = dict(zip(_COLUMNS, row, strict=True))
        prompt = None
        if r["prompt_id"]:
            prompt = r["prompt_id"] + (f"@{r['prompt_version']}" if r["prompt_version"] else "")
        node = TraceNode(
            id=r["id"], kind=r["kind"], name=r["name"], start=r["ts"], timestamp=r["timestamp"],
            duration_ms=r["latency_ms"], status=r["status"], error=r["error"], model=r["model"],
            prompt=prompt, input_tokens=r["input_tokens"], output_tokens=r["output_tokens"],
            cost_usd=r["cost_usd"], scores=scores.get(r["rowid"], {}),
        )
        nodes.setdefault(r["span_id"] or r["id"], node)
        parents.append((node, r["parent_id"]))
    roots = []
    for node, parent_id in parents:
        parent = nodes.get(parent_id) if parent_id else None
        if parent is None or parent is node:
            node.orphan = bool(parent_id)
            roots.append(node)
        else:
            parent.children.append(node)
    return Trace(trace_id=trace_id, roots=roots)


def position_in(trace: Trace, entry: dict[str, Any]) -> dict[str, Any]:
    """Where an entry sits in its trace: the path from the root, and its children."""
    entry_id = entry.get("id")

    def find(node: TraceNode, path: list[TraceNode]) -> list[TraceNode] | None:
        if node.id == entry_id:
            return [*path, node]
        for child in node.children:
            found = find(child, [*path, node])
            if found:
                return found
        return None

    path: list[TraceNode] = []
    for root in trace.roots:
        path = find(root, []) or []
        if path:
            break
    summary = trace.summary()
    return {
        "trace_id": trace.trace_id,
        "root": summary["name"],
        "path": [n.name or n.model or n.kind for n in path],
        "depth": max(len(path) - 1, 0),
        "children": len(path[-1].children) if path else 0,
        "trace_spans": summary["spans"],
        "trace_llm_calls": summary["llm_calls"],
    }


def list_traces(index: Index, filters: Filters, limit: int | None = 20) -> list[dict[str, Any]]:
    """Recent traces, newest first (by their root span's start): id, root name, start,
    duration, spans, calls, tokens, cost, errors."""
    clauses, params = ["1"], []
    for op, bound in ((">=", filters.since), ("<", filters.until)):
        if bound is not None:
            clauses.append(f"r.ts {op} ?")
            params.append(bound)
    where = " AND ".join(clauses)
    roots = (f"SELECT r.trace_id, r.name, r.timestamp, r.ts FROM entries r WHERE r.kind = 'span'"
             f" AND r.parent_id IS NULL AND r.trace_id IS NOT NULL AND {where} ORDER BY r.ts DESC")
    if limit is not None and limit <= 2**62:  # more than SQLite counts: no limit
        roots += f" LIMIT {int(limit)}"
    sql = (
        f"WITH roots AS ({roots}) "
        "SELECT roots.trace_id, roots.name, roots.timestamp, min(e.ts),"
        " max(e.ts + COALESCE(e.latency_ms, 0) / 1000.0), sum(e.kind = 'span'),"
        " sum(e.kind = 'llm'), COALESCE(sum(e.input_tokens), 0),"
        " COALESCE(sum(e.output_tokens), 0), sum(e.cost_usd), sum(e.status = 'error')"
        " FROM roots JOIN entries e ON e.trace_id = roots.trace_id AND e.kind != 'feedback'"
        " GROUP BY roots.trace_id ORDER BY roots.ts DESC"
    )
    return [
        {"trace_id": t, "name": name, "timestamp": stamp,
         "duration_ms": round((end - start) * 1000, 3), "spans": spans, "llm_calls": calls,
         "input_tokens": inp, "output_tokens": out, "cost_usd": cost, "errors": errors}
        for t, name, stamp, start, end, spans, calls, inp, out, cost, errors
        in index.conn.execute(sql, params)
    ]
