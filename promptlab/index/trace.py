"""Traces from the index: spans nested with their durations, LLM calls with their tokens.

A span entry has `span_id` and `parent_id` (None at the root); an LLM call inside a span
carries `span_id` (its own id) and `parent_id` (the enclosing span). Nodes whose parent is
not in the log (not written yet, or lost) are shown at the top level, marked `orphan`; so
is the earliest node of a loop of parents (spans taken in from elsewhere can name any
parent), marked `loop`. Nothing here recurses: a recursive agent's trace can be thousands
of spans deep. The nested views (`to_dict`, the text tree) nest MAX_NESTING levels and list
deeper nodes under their ancestor at that level, each with its true depth.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from promptlab.index.ids import EntryNotFoundError, resolve_id

if TYPE_CHECKING:
    from promptlab.index.core import Index
    from promptlab.index.query import Filters

MAX_NESTING = 100  # levels the nested views nest; deeper nodes are listed flat, with depth

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
    loop: bool = False  # its parents led back to it: shown at the top level, like an orphan
    children: list[TraceNode] = field(default_factory=list)

    def walk(self, depth: int = 0) -> list[tuple[int, TraceNode]]:
        """(depth, node) for this node and every node under it, in tree order."""
        out: list[tuple[int, TraceNode]] = []
        stack = [(depth, self)]
        while stack:
            d, node = stack.pop()
            out.append((d, node))
            stack.extend((d + 1, child) for child in reversed(node.children))
        return out

    def fields(self, trace_start: float) -> dict[str, Any]:
        """This node's own part of `to_dict` (no children)."""
        data: dict[str, Any] = {
            "id": self.id, "kind": self.kind, "name": self.name, "timestamp": self.timestamp,
            "offset_ms": round((self.start - trace_start) * 1000, 3),
            "duration_ms": self.duration_ms, "status": self.status, "error": self.error,
            "model": self.model, "prompt": self.prompt, "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens, "cost_usd": self.cost_usd,
            "scores": self.scores or None, "orphan": (self.orphan or self.loop) or None,
            "loop": self.loop or None,
        }
        return {k: v for k, v in data.items() if v is not None}

    def to_dict(self, trace_start: float) -> dict[str, Any]:
        """This node and its children, nested (MAX_NESTING levels; below that, the rest of a
        branch is listed in tree order under its ancestor there, each with `depth` and
        `parent_id`)."""
        top = {**self.fields(trace_start), "children": []}
        # (node, its parent, its depth below self, the dict its own dict is appended to)
        stack: list[tuple[TraceNode, TraceNode, int, list[dict[str, Any]]]] = [
            (child, self, 1, top["children"]) for child in reversed(self.children)]
        while stack:
            node, parent, depth, siblings = stack.pop()
            data = {**node.fields(trace_start), "children": []}
            if depth > MAX_NESTING:
                data.update(depth=depth, parent_id=parent.id)
            siblings.append(data)
            into = data["children"] if depth <= MAX_NESTING else siblings
            stack.extend((child, node, depth + 1, into) for child in reversed(node.children))
        return top


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

    def parents(self) -> dict[int, TraceNode]:
        """Each node's parent in the tree, by `id(node)` (roots have none)."""
        return {id(child): node for _, node in self._walk() for child in node.children}

    def _walk(self) -> list[tuple[int, TraceNode]]:
        return [pair for root in self.roots for pair in root.walk()]


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
    if not rows:
        raise EntryNotFoundError(f"trace {trace_id} has no spans or calls in the log")
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
    parent_of: dict[int, TraceNode] = {}
    for node, parent_id in parents:
        parent = nodes.get(parent_id) if parent_id else None
        if parent is None:
            node.orphan = bool(parent_id)
            roots.append(node)
        elif parent is node:
            node.loop = True
            roots.append(node)
        else:
            parent.children.append(node)
            parent_of[id(node)] = parent
    _break_loops(parents, roots, parent_of)
    return Trace(trace_id=trace_id, roots=roots)


def _break_loops(parents: list[tuple[TraceNode, str | None]], roots: list[TraceNode],
                 parent_of: dict[int, TraceNode]) -> None:
    """Put the earliest node of every loop of parents among the roots (marked `loop`), so
    that every node of the trace is shown once."""
    reached = {id(node) for root in roots for _, node in root.walk()}
    for node, _ in parents:  # in start order
        if id(node) in reached:
            continue
        chain: list[TraceNode] = []  # up the parents until one repeats: that one loops
        on_chain: set[int] = set()
        while id(node) not in on_chain:
            on_chain.add(id(node))
            chain.append(node)
            node = parent_of[id(node)]
        loop = chain[chain.index(node):]
        head = min(loop, key=lambda n: n.start)
        parent_of[id(head)].children.remove(head)
        head.loop = True
        roots.append(head)
        reached.update(id(n) for _, n in head.walk())
    roots.sort(key=lambda n: n.start)


def position_in(trace: Trace, entry: dict[str, Any]) -> dict[str, Any]:
    """Where an entry sits in its trace: the path from the root, and its children."""
    entry_id = entry.get("id")
    path: list[TraceNode] = []
    node = next((n for n in trace.nodes if n.id == entry_id), None)
    if node is not None:
        parents = trace.parents()
        while node is not None:
            path.append(node)
            node = parents.get(id(node))
        path.reverse()
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
    """Recent traces, newest first by their start (their first span or call, whether or not
    the root span was ever written: a request that crashed has its inner spans in the log
    but never its root): id, name (the root span's; None without one), `root` (whether a
    root span is in the log), start, duration, spans, calls, tokens, cost, errors.
    `filters.since`/`until` bound the start."""
    since = filters.since if filters.since is not None else float("-inf")
    until = filters.until if filters.until is not None else float("inf")
    conn = index.conn
    if limit is None or limit > 2**62:  # every trace: one pass over the index
        starts = conn.execute(
            "SELECT trace_id, min(ts) AS start FROM entries INDEXED BY entries_traced"
            " WHERE trace_id IS NOT NULL AND kind != 'feedback' GROUP BY trace_id"
            " HAVING start >= ? AND start < ? ORDER BY start DESC", (since, until)).fetchall()
    else:
        starts = _newest_starts(conn, since, until, limit)
    out = []
    for trace_id, start in starts:
        (end, spans, calls, inp, outp, cost, errors, stamp) = conn.execute(
            "SELECT max(ts + COALESCE(latency_ms, 0) / 1000.0), sum(kind = 'span'),"
            " sum(kind = 'llm'), COALESCE(sum(input_tokens), 0), COALESCE(sum(output_tokens), 0),"
            " sum(cost_usd), sum(status = 'error'),"
            " (SELECT timestamp FROM entries WHERE trace_id = ?1 AND kind != 'feedback'"
            "  ORDER BY ts, rowid LIMIT 1)"
            " FROM entries WHERE trace_id = ?1 AND kind != 'feedback'", (trace_id,)).fetchone()
        root = conn.execute(
            "SELECT name FROM entries WHERE trace_id = ? AND kind = 'span' AND parent_id IS NULL"
            " ORDER BY ts, rowid LIMIT 1", (trace_id,)).fetchone()
        out.append({"trace_id": trace_id, "name": root[0] if root else None,
                    "root": root is not None, "timestamp": stamp,
                    "duration_ms": round((end - start) * 1000, 3), "spans": spans,
                    "llm_calls": calls, "input_tokens": inp, "output_tokens": outp,
                    "cost_usd": cost, "errors": errors})
    return out


def _newest_starts(conn: Any, since: float, until: float, limit: int) -> list[tuple[str, float]]:
    """The `limit` traces that started last within [since, until), with their starts.

    Walks the traced entries from `until` back in time. A trace met for the first time
    gets its start (its earliest entry, from entries_by_trace). Every trace not met yet has
    all its entries, so its start, before the walk's position: the walk stops once `limit`
    traces start at or after it (or it passes `since`), having read the entries of about
    those traces' time span, not the whole log."""
    import heapq

    best: list[tuple[float, str]] = []  # a min-heap of the `limit` latest starts so far
    seen: set[str] = set()
    if limit <= 0:
        return []
    rows = conn.execute(
        "SELECT ts, trace_id FROM entries INDEXED BY entries_traced WHERE trace_id IS NOT NULL"
        " AND kind != 'feedback' AND ts < ? ORDER BY ts DESC", (until,))
    for ts, trace_id in rows:
        if ts < since or (len(best) == limit and ts < best[0][0]):
            break
        if trace_id in seen:
            continue
        seen.add(trace_id)
        (start,) = conn.execute("SELECT min(ts) FROM entries WHERE trace_id = ?"
                                " AND kind != 'feedback'", (trace_id,)).fetchone()
        if start < since:
            continue
        if len(best) < limit:
            heapq.heappush(best, (start, trace_id))
        elif start > best[0][0]:
            heapq.heapreplace(best, (start, trace_id))
    return [(trace_id, start) for start, trace_id in sorted(best, reverse=True)]
