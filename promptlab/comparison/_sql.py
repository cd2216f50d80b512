"""SQL fragments shared by the per-arm and the paired queries."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from promptlab.comparison._metrics import BUILTINS
from promptlab.comparison._samples import Agg

# Unit key for unpaired designs: a unit's entries are averaged into one value.
UNIT_KEY = "COALESCE(e.unit_id, e.item_id, e.id)"
# A score's rows joined to their entries (filter with the scope's WHERE, then the name).
SCORES_JOIN = "FROM scores s JOIN entries e ON e.rowid = s.entry_rowid"


def agg_columns(expr: str) -> str:
    """count, Σx, Σx² and the number of 0/1 values of an expression (see `agg_from`)."""
    return f"count({expr}), total({expr}), total(({expr}) * ({expr})), total(({expr}) IN (0, 1))"


def agg_from(row: Sequence[Any], offset: int = 0) -> Agg:
    n, s, ss, n01 = row[offset:offset + 4]
    return Agg(int(n or 0), float(s or 0), float(ss or 0), int(n01 or 0))


def metric_source(name: str, where: str) -> tuple[str, str, list[Any]]:
    """(value expression, FROM … WHERE clause, extra parameters) of one metric: a
    built-in reads `entries`, a score joins `scores` on its name."""
    if name in BUILTINS:
        return BUILTINS[name].expr, f"FROM entries e WHERE {where}", []
    return "s.value", f"{SCORES_JOIN} WHERE {where} AND s.name = ?", [name]
