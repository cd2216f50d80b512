"""Per-arm queries: calls, errors, units and sums of the built-in metrics and of each
score, computed inside SQLite; per-unit values only for the robustness tests."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from promptlab.comparison import _limits
from promptlab.comparison._metrics import BUILTINS
from promptlab.comparison._samples import Agg
from promptlab.comparison._scope import Arm, Scope
from promptlab.comparison._sql import SCORES_JOIN, UNIT_KEY, agg_columns, agg_from, metric_source

if TYPE_CHECKING:
    from promptlab.comparison._reader import Reader
    from promptlab.index.core import Index


def fast_path(reader: Reader, scope: Scope, a: Arm, b: Arm) -> str | None:
    """Which covering index of `scores` answers per-arm aggregates without a join."""
    if scope.windowed:
        return None
    if scope.experiment is None and a.column == b.column == "prompt_version":
        return "prompt"
    if scope.experiment is not None and a.column == b.column == "variant":
        prompts = reader.all(
            "SELECT DISTINCT prompt_id FROM rollup WHERE experiment = ?", (scope.experiment,))
        if len(prompts) <= 1:
            return "experiment"
    return None


def _fast_where(scope: Scope, arm: Arm, fast: str) -> tuple[str, list[Any]]:
    if fast == "prompt":
        return "prompt_id = ? AND prompt_version = ?", [scope.prompt, arm.name]
    return "experiment = ? AND variant = ?", [scope.experiment, arm.name]


def score_names(reader: Reader, scope: Scope, a: Arm, b: Arm, fast: str | None) -> list[str]:
    """Every score name logged for either arm."""
    names: set[str] = set()
    if fast:
        for arm in (a, b):
            where, params = _fast_where(scope, arm, fast)
            # A loose index scan: one seek per distinct name.
            rows = reader.all(
                f"WITH RECURSIVE n(name) AS (SELECT min(name) FROM scores WHERE {where} "
                f"UNION ALL SELECT (SELECT min(name) FROM scores WHERE {where} AND "
                f"name > n.name) FROM n WHERE n.name IS NOT NULL) "
                f"SELECT name FROM n WHERE name IS NOT NULL", [*params, *params])
            names.update(r[0] for r in rows)
    else:
        where, params = scope.where(a, b)
        rows = reader.all(f"SELECT DISTINCT s.name {SCORES_JOIN} WHERE {where}", params)
        names.update(r[0] for r in rows)
    return sorted(names)


def entry_sums(reader: Reader, scope: Scope, arm: Arm, builtins: Sequence[str],
               unit_mode: bool | None = None) -> dict[str, Any]:
    """Entries, errors, units and the built-in metrics' sums for one arm.

    Calls and errors per prompt version come from the cost roll-up when no time window
    applies; otherwise from a pass grouped by status (cheaper than a CASE per
    aggregate). When entries carry unit or item ids (or `unit_mode` is forced), a
    second pass averages per unit.
    """
    where, params = scope.where(arm)
    numeric = [(n, BUILTINS[n]) for n in builtins if BUILTINS[n].column is not None]
    cols = "".join(f", count(e.{b.column}), total(e.{b.column}), "
                   f"total(e.{b.column} * e.{b.column})" for _, b in numeric)
    rollup = (not scope.windowed and scope.experiment is None
              and arm.column == "prompt_version" and scope.prompt is not None)
    if rollup:
        calls, errors = reader.one(
            "SELECT total(calls), total(errors) FROM rollup WHERE prompt_id = ? AND "
            "prompt_version = ?", (scope.prompt, arm.name))
        row = reader.one(
            f"SELECT 'ok', count(*), count(COALESCE(e.unit_id, e.item_id)){cols} "
            f"FROM entries e WHERE {where} AND e.status != 'error'", params)
        rows = [row, ("error", int(errors), 0)] if row[1] or not errors else [
            ("error", int(errors), 0)]
        if int(calls) != sum(int(r[1]) for r in rows):  # roll-up out of step: count
            rollup = False
    if not rollup:
        rows = reader.all(
            f"SELECT e.status, count(*), count(COALESCE(e.unit_id, e.item_id)){cols} "
            f"FROM entries e WHERE {where} GROUP BY e.status", params)
    entries = sum(int(r[1]) for r in rows)
    errors = sum(int(r[1]) for r in rows if r[0] == "error")
    keyed = sum(int(r[2]) for r in rows)
    aggs: dict[str, Agg] = {}
    for i, (name, _) in enumerate(numeric):
        agg = Agg()
        for r in rows:
            if r[0] != "error":
                agg.n += int(r[3 + 3 * i])
                agg.total += float(r[4 + 3 * i])
                agg.total_sq += float(r[5 + 3 * i])
        aggs[name] = agg
    aggs["error_rate"] = Agg(entries, float(errors), float(errors), entries)
    if unit_mode is None:
        unit_mode = keyed > 0
    units = entries
    if unit_mode and entries:
        chosen = [n for n, _ in numeric] + ["error_rate"]
        inner = ", ".join(f"avg({BUILTINS[n].expr}) AS m{i}" for i, n in enumerate(chosen))
        outer = ", ".join(agg_columns(f"m{i}") for i in range(len(chosen)))
        row = reader.one(
            f"SELECT count(*), {outer} FROM (SELECT {inner} FROM entries e WHERE {where} "
            f"GROUP BY {UNIT_KEY})", params)
        units = int(row[0])
        aggs = {name: agg_from(row, 1 + 4 * i) for i, name in enumerate(chosen)}
    return {"entries": entries, "errors": errors, "units": units, "unit_mode": unit_mode,
            "builtins": aggs}


def score_sums(reader: Reader, scope: Scope, arm: Arm, name: str, unit_mode: bool,
               fast: str | None) -> Agg:
    """One score's sums for one arm; counts booleans when cheap (or when it matters)."""
    if not unit_mode and fast:
        return _fast_score_sums(reader, scope, arm, name, fast)
    where, params = scope.where(arm)
    source = f"{SCORES_JOIN} WHERE {where} AND s.name = ?"
    if unit_mode:
        row = reader.one(
            f"SELECT {agg_columns('v')}, total(nb), total(c) FROM (SELECT avg(s.value) "
            f"AS v, total(s.is_bool) AS nb, count(*) AS c {source} GROUP BY {UNIT_KEY})",
            [*params, name])
    else:
        row = reader.one(
            f"SELECT {agg_columns('s.value')}, total(s.is_bool), count(*) {source}",
            [*params, name])
    agg = agg_from(row)
    agg.n_bool, agg.raw_n = int(row[4]), int(row[5])
    return agg


def _fast_score_sums(reader: Reader, scope: Scope, arm: Arm, name: str, fast: str) -> Agg:
    where, params = _fast_where(scope, arm, fast)
    # Scores usually take few distinct values (pass/fail, 1–5): counting rows per value
    # along the covering index is half the work of four aggregates.
    groups = reader.all(
        f"SELECT value, count(*) FROM scores WHERE {where} AND name = ? "
        f"GROUP BY value LIMIT {_limits.DISTINCT_LIMIT + 1}", [*params, name])
    if len(groups) <= _limits.DISTINCT_LIMIT:
        agg = Agg(sum(c for _, c in groups), math.fsum(v * c for v, c in groups),
                  math.fsum(v * v * c for v, c in groups),
                  sum(c for v, c in groups if v in (0, 1)))
    else:
        agg = agg_from(reader.one(
            f"SELECT {agg_columns('value')} FROM scores WHERE {where} AND name = ?",
            [*params, name]))
    if agg.n <= _limits.CHECK_LIMIT:
        agg.n_bool = int(reader.one(
            f"SELECT total(is_bool) FROM scores WHERE {where} AND name = ?",
            [*params, name])[0])
    elif not agg.binary and agg.n:
        # Counting booleans would read every row; they are stored as 0/1, so a mix can
        # only hide among those values (all-0/1 scores are binary anyway). Look at a
        # bounded sample of those values.
        agg.has_bool = bool(reader.one(
            f"SELECT max(b) FROM (SELECT is_bool AS b FROM scores WHERE {where} AND "
            f"name = ? AND value IN (0, 1) LIMIT 2000)", [*params, name])[0])
    return agg


def arm_values(reader: Reader, scope: Scope, arm: Arm, name: str,
               unit_mode: bool) -> list[float]:
    """Per-unit (or per-entry) values of one metric for the robustness tests."""
    where, params = scope.where(arm)
    expr, source, extra = metric_source(name, where)
    if unit_mode:
        sql = f"SELECT avg({expr}) AS v {source} GROUP BY {UNIT_KEY} HAVING v IS NOT NULL"
    else:
        sql = f"SELECT {expr} AS v {source} AND v IS NOT NULL"
    return [r[0] for r in reader.all(sql, [*params, *extra])]


def non_numeric(reader: Reader, index: Index, scope: Scope, arms: tuple[Arm, Arm],
                entry_stats: list[dict[str, Any]], names: list[str]) -> dict[str, int]:
    """Count score values that are not numbers or booleans (the index skips them) by
    re-reading entries through the index: every entry of a small arm; in a larger one,
    the entries that lack a numeric value for some score."""
    counts: dict[str, int] = {}
    for arm, st in zip(arms, entry_stats, strict=True):
        if st["entries"] > _limits.CHECK_LIMIT:
            continue
        where, params = scope.where(arm)
        sql = (f"SELECT e.file_id, e.offset, e.length FROM entries e WHERE {where} AND "
               f"e.status != 'error'")
        if st["entries"] > _limits.NON_NUMERIC_CHECK_LIMIT:
            sql += (" AND (SELECT count(*) FROM scores s WHERE s.entry_rowid = e.rowid) < ?"
                    f" LIMIT {_limits.NON_NUMERIC_CHECK_LIMIT}")
            params = [*params, max(len(names), 1)]
        for file_id, offset, length in reader.all(sql, params):
            entry = index.read_entry(file_id, offset, length)
            scores = entry.get("scores") if entry else None
            if not isinstance(scores, dict):
                continue
            for key, value in scores.items():
                if not _is_number(value):
                    counts[str(key)] = counts.get(str(key), 0) + 1
    return counts


def _is_number(value: Any) -> bool:
    return isinstance(value, bool) or (isinstance(value, int | float) and math.isfinite(value))
