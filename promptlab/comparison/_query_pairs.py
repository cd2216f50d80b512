"""Paired queries: items run under both versions, their per-item means (repeats
averaged) and the sums of those means, computed inside SQLite."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from promptlab.comparison._samples import PairAgg
from promptlab.comparison._scope import Arm, Scope
from promptlab.comparison._sql import metric_source

if TYPE_CHECKING:
    from promptlab.comparison._reader import Reader


def item_overlap(reader: Reader, scope: Scope, a: Arm, b: Arm) -> tuple[int, int, int]:
    """Items logged under both arms, under A only, under B only."""
    where, params = scope.where(a, b)
    row = reader.one(
        f"SELECT total(ha AND hb), total(ha AND NOT hb), total(hb AND NOT ha) FROM "
        f"(SELECT max({a.cond}) AS ha, max({b.cond}) AS hb FROM entries e WHERE {where} "
        f"AND e.item_id IS NOT NULL GROUP BY e.item_id)", [a.name, b.name, *params])
    return int(row[0]), int(row[1]), int(row[2])


def _per_item(scope: Scope, a: Arm, b: Arm, name: str) -> tuple[str, list[Any]]:
    where, params = scope.where(a, b)
    expr, source, extra = metric_source(name, where)
    inner = (f"SELECT avg(CASE WHEN {a.cond} THEN {expr} END) AS va, "
             f"avg(CASE WHEN {b.cond} THEN {expr} END) AS vb {source} "
             f"AND e.item_id IS NOT NULL GROUP BY e.item_id")
    return inner, [a.name, b.name, *params, *extra]


def paired_sums(reader: Reader, scope: Scope, a: Arm, b: Arm, name: str) -> PairAgg:
    """Sums, cross-products and 0/1 cell counts of the items with a value under both."""
    inner, params = _per_item(scope, a, b, name)
    row = reader.one(
        f"SELECT count(*), total(va), total(vb), total(va * va), total(vb * vb), "
        f"total(va * vb), total(va IN (0, 1) AND vb IN (0, 1)), "
        f"total(va = 1 AND vb = 0), total(va = 0 AND vb = 1), total(va = 1 AND vb = 1) "
        f"FROM ({inner}) WHERE va IS NOT NULL AND vb IS NOT NULL", params)
    return PairAgg(int(row[0]), *(float(x) for x in row[1:6]), *(int(x) for x in row[6:10]))


def paired_diffs(reader: Reader, scope: Scope, a: Arm, b: Arm, name: str) -> list[float]:
    """Per-item differences B − A, for the robustness tests."""
    inner, params = _per_item(scope, a, b, name)
    return [r[0] for r in reader.all(
        f"SELECT vb - va FROM ({inner}) WHERE va IS NOT NULL AND vb IS NOT NULL", params)]
