"""Reading the arms from the index: read-only connections (one per worker thread), the SQL
fragments, and the per-arm and paired queries that return sufficient statistics (counts,
sums, sums of squares) computed inside SQLite — per-unit values only for the rank tests."""

from __future__ import annotations

import math
import sqlite3
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from promptlab.comparison._analyse import Agg, PairAgg
from promptlab.comparison._target import BUILTINS, MAX_ABS, Arm, Scope
from promptlab.index.schema import UNIT_MAX_ABS

if TYPE_CHECKING:
    from promptlab.index.core import Index

# Units above which per-unit values are not fetched (robustness tests are skipped).
VALUES_LIMIT = 100_000
# Score values that are not numbers are not in the index: entries are re-read from their
# log line to count them — all of them in an arm up to NON_NUMERIC_CHECK_LIMIT entries, the
# ones missing a numeric score (at most that many) in an arm up to CHECK_LIMIT entries.
NON_NUMERIC_CHECK_LIMIT = 1_000
# Up to this many entries per version, booleans among score values are counted exactly and
# non-numeric values looked for; above it, a bounded sample is checked for booleans.
CHECK_LIMIT = 20_000
DISTINCT_LIMIT = 5_000  # a score with more distinct values is summed by SQL aggregates

T = TypeVar("T")

# No `temp_store = MEMORY`: with it SQLite's sorter allocates every row of a GROUP BY on its
# own, and the allocator's process-wide lock (kept for memory statistics in the usual
# builds) then makes the two reader threads take turns. With the default, rows go into one
# growing buffer, spilled to a temporary file only past cache_size (64 MB).
_PRAGMAS = ("query_only = ON", "mmap_size = 1073741824", "cache_size = -65536")


class Reader:
    """A small pool of read-only connections with `all`/`one` queries and `run` fan-out."""

    def __init__(self, path: Path, workers: int = 2):
        self.path = path
        self._local = threading.local()
        self._conns: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=workers)

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=60, check_same_thread=False)
            for pragma in _PRAGMAS:
                conn.execute(f"PRAGMA {pragma}")
            self._local.conn = conn
            with self._lock:
                self._conns.append(conn)
        return conn

    def all(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self._conn().execute(sql, tuple(params)).fetchall()

    def one(self, sql: str, params: Sequence[Any] = ()) -> tuple[Any, ...]:
        return self._conn().execute(sql, tuple(params)).fetchone()

    def run(self, tasks: Sequence[Callable[[], Any]]) -> list[Any]:
        """Run callables on the worker threads; results in order."""
        if len(tasks) <= 1:
            return [t() for t in tasks]
        return list(self._pool.map(lambda t: t(), tasks))

    def run_per_arm(self, names: Sequence[str], arms: tuple[Any, Any],
                    fn: Callable[[Any, str], T]) -> dict[str, tuple[T, T]]:
        """`fn(arm, name)` for every name and both arms at once: name -> (A's, B's)."""
        return by_name(names, self.run(per_arm_tasks(names, arms, fn)))

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        with self._lock:
            for conn in self._conns:
                conn.close()
            self._conns.clear()


def per_arm_tasks(names: Sequence[str], arms: tuple[Any, Any],
                  fn: Callable[[Any, str], T]) -> list[Callable[[], T]]:
    """One task per name × arm, arms innermost (the order `by_name` reads back)."""
    return [(lambda arm=arm, n=n: fn(arm, n)) for n in names for arm in arms]


def by_name(names: Sequence[str], results: Sequence[T]) -> dict[str, tuple[T, T]]:
    it = iter(results)
    return {n: (next(it), next(it)) for n in names}


# Unit key for unpaired designs: a unit's entries are averaged into one value.
UNIT_KEY = "COALESCE(e.unit_id, e.item_id, e.id)"
# A score's rows joined to their entries (filter with the scope's WHERE, then the name).
SCORES_JOIN = "FROM scores s JOIN entries e ON e.rowid = s.entry_rowid"


SCORE_VALUE = f"CASE WHEN abs(s.value) <= {MAX_ABS!r} THEN s.value END"


def agg_columns(expr: str, shift: float = 0.0) -> str:
    """count, Σ(x − shift), Σ(x − shift)² and the number of 0/1 values of an expression
    (see `agg_from`). The shift — one of the values — keeps the variance exact."""
    d = f"(({expr}) - {float(shift)!r})"
    return f"count({expr}), total({d}), total({d} * {d}), total(({expr}) IN (0, 1))"


def agg_from(row: Sequence[Any], offset: int = 0, shift: float = 0.0) -> Agg:
    n, s, ss, n01 = row[offset:offset + 4]
    return Agg(int(n or 0), float(s or 0), float(ss or 0), int(n01 or 0), shift=shift)


def metric_source(name: str, where: str) -> tuple[str, str, list[Any]]:
    """(value expression, FROM … WHERE clause, extra parameters) of one metric: a
    built-in reads `entries`, a score joins `scores` on its name."""
    if name in BUILTINS:
        return BUILTINS[name].expr, f"FROM entries e WHERE {where}", []
    return SCORE_VALUE, f"{SCORES_JOIN} WHERE {where} AND s.name = ?", [name]


def sample_value(reader: Reader, scope: Scope, arm: Arm | tuple[Arm, Arm], name: str
                 ) -> float:
    """One value of a metric (the shift for its sums), 0 when there is none."""
    where, params = scope.where(*(arm if isinstance(arm, tuple) else (arm,)))
    expr, source, extra = metric_source(name, where)
    row = reader.one(f"SELECT {expr} AS v {source} AND v IS NOT NULL LIMIT 1",
                     [*params, *extra])
    return float(row[0]) if row else 0.0


def lost_counts(reader: Reader, scope: Scope, arm: Arm, names: Sequence[str]
                ) -> dict[str, dict[str, int]]:
    """Per score name: how many of its values sit on failed calls (a failed call without
    one is dropped as failed), from the arm's failed calls only."""
    if not names:
        return {}
    where, params = scope.where(arm)
    # `+e.col` keeps SQLite off the per-prompt index, so it walks the (few) failed calls
    # through the partial index on status = 'error' instead of every call of the arm; the
    # CROSS JOIN keeps those calls the outer loop (left to itself, the planner walked every
    # score of the prompt instead: 1.5 s per arm at a million calls, 0.1 s this way).
    where = where.replace("e.", "+e.")
    marks = ", ".join("?" * len(names))
    rows = reader.all(
        f"SELECT s.name, count(*) FROM entries e CROSS JOIN scores s ON s.entry_rowid = e.rowid "
        f"AND s.name IN ({marks}) WHERE e.status = 'error' AND {where} GROUP BY s.name",
        [*names, *params])
    out = {n: {"on_errors": 0, "out_of_range": 0} for n in names}
    for name, count in rows:
        out[name]["on_errors"] = int(count)
    return out


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


def _builtin_columns(numeric: Sequence[tuple[str, Any]], shifts: dict[str, float],
                     careful: bool = False) -> str:
    """Five columns per numeric built-in: count, Σ(x − k), Σ(x − k)², then — `careful` —
    values out of range and values that are not numbers (their sums leave them out), or —
    not careful, the common case: plain sums, min and max (a second, careful pass runs only
    when those show a bad value). The same values count either way."""
    cols = ""
    for n, b in numeric:
        k, col = shifts[n], f"e.{b.column}"
        number = f"typeof({col}) IN ('integer', 'real')"
        v = b.expr if careful else col
        cols += f", count({v}), total({v} - {k!r}), total(({v} - {k!r}) * ({v} - {k!r})), "
        if careful:
            cols += (f"total({number} AND abs({col}) > {MAX_ABS!r}), "
                     f"total({col} IS NOT NULL AND NOT {number})")
        else:  # SQLite orders numbers before text and blobs: min/max reveal any bad value
            cols += f"min({col}), max({col})"
    return cols


def _in_range(low: Any, high: Any) -> bool:
    """Whether a column's min and max show only numbers with |x| ≤ MAX_ABS (or nothing)."""
    if low is None:
        return high is None
    numbers = all(isinstance(x, int | float) and not isinstance(x, bool) for x in (low, high))
    return numbers and low >= -MAX_ABS and high <= MAX_ABS


def _status_sums(reader: Reader, scope: Scope, arm: Arm, where: str, params: list[Any],
                 cols: str) -> list[tuple[Any, ...]]:
    """(status, calls, keyed calls, *cols) rows of one arm: calls and errors from the cost
    roll-up when it can answer (no time window, a prompt version), else grouped by status."""
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
        if int(calls) == sum(int(r[1]) for r in rows):  # else the roll-up is out of step
            return rows
    return reader.all(
        f"SELECT e.status, count(*), count(COALESCE(e.unit_id, e.item_id)){cols} "
        f"FROM entries e WHERE {where} GROUP BY e.status", params)


def rollup_answers(scope: Scope, arm: Arm) -> bool:
    """Whether the index's per-unit roll-up (unit_rollup, migration 008) holds this arm: a
    whole prompt version (no time window, no experiment)."""
    return (not scope.windowed and scope.experiment is None and scope.prompt is not None
            and arm.column == "prompt_version" and MAX_ABS == UNIT_MAX_ABS)


def _rollup_entry_sums(reader: Reader, scope: Scope, arm: Arm,
                       numeric: Sequence[tuple[str, Any]], shifts: dict[str, float]
                       ) -> dict[str, Any] | None:
    """`entry_sums` from unit_rollup: each unit's count, mean and squared deviations give
    the per-call sums about the same shift, Σ(x − k) = Σ n(mean − k) and
    Σ(x − k)² = Σ m2 + n(mean − k)²; in the same pass, the sums over unit means that
    `unit_sums` uses when the calls carry unit ids. None when the roll-up does not hold
    every call of the version (checked against the cost roll-up)."""
    cols = ""
    for name, b in numeric:
        c, k = b.column, shifts[name]
        d = f"({c}_mean - {k!r})"
        cols += (f", total({c}_n), total({c}_n * {d}), total({c}_m2 + {c}_n * {d} * {d}), "
                 f"total({c}_big), total({c}_bad)")
    per_unit = [(name, shifts.get(name, 0.0)) for name, _ in (*numeric, ("error_rate", None))]
    cols += "".join(f", {_rollup_unit_columns(name, k)}" for name, k in per_unit)
    key = [scope.prompt, arm.name]
    row = reader.one(f"SELECT total(calls), total(errors), total(keyed * calls), "
                     f"total(CASE WHEN keyed THEN 1 ELSE calls END){cols} FROM unit_rollup "
                     "WHERE prompt_id = ? AND prompt_version = ?", key)
    calls = reader.one("SELECT total(calls) FROM rollup WHERE prompt_id = ? AND "
                       "prompt_version = ?", key)[0]
    if int(row[0]) != int(calls):
        return None
    aggs: dict[str, Agg] = {}
    for i, (name, _) in enumerate(numeric):
        n, total, total_sq, big, bad = row[4 + 5 * i:9 + 5 * i]
        aggs[name] = Agg(int(n), float(total), float(total_sq), shift=shifts[name],
                         out_of_range=int(big), non_numeric=int(bad), raw_n=int(n))
    unit_aggs: dict[str, Agg] = {}
    base = 4 + 5 * len(numeric)
    for name, k in per_unit:
        agg = agg_from(row, base, k)
        agg.raw_n = int(row[base + 4])
        if name in aggs:
            agg.out_of_range, agg.non_numeric = aggs[name].out_of_range, aggs[name].non_numeric
        unit_aggs[name] = agg
        base += 5
    return {"entries": int(row[0]), "errors": int(row[1]), "keyed": int(row[2]),
            "aggs": aggs, "units": {"units": int(row[3]), "aggs": unit_aggs}}


def entry_sums(reader: Reader, scope: Scope, arm: Arm, builtins: Sequence[str],
               unit_mode: bool | None = None) -> dict[str, Any]:
    """Calls, errors and the built-in metrics' per-call sums for one arm, and whether its
    calls carry unit or item ids (`unit_mode`: then `unit_sums` averages per unit). Each
    numeric metric's Agg counts its values out of range and not numbers. From the per-unit
    roll-up when it holds the arm (`rollup` in the result), else summed over the calls."""
    where, params = scope.where(arm)
    numeric = [(n, BUILTINS[n]) for n in builtins if BUILTINS[n].column is not None]
    shifts = {n: sample_value(reader, scope, arm, n) for n, _ in numeric}
    if rollup_answers(scope, arm):
        got = _rollup_entry_sums(reader, scope, arm, numeric, shifts)
        if got is not None:
            entries, errors, aggs = got["entries"], got["errors"], got["aggs"]
            aggs["error_rate"] = Agg(entries, float(errors), float(errors), entries)
            return {"entries": entries, "errors": errors, "units": entries,
                    "unit_mode": got["keyed"] > 0 if unit_mode is None else unit_mode,
                    "builtins": aggs, "rollup": got["units"]}
    rows = _status_sums(reader, scope, arm, where, params, _builtin_columns(numeric, shifts))
    careful = any(not _in_range(r[6 + 5 * i], r[7 + 5 * i])
                  for r in rows if r[0] != "error" for i in range(len(numeric)))
    if careful:
        # Some value is not a number in range: sum again, counting each kind of bad value.
        rows = _status_sums(reader, scope, arm, where, params,
                            _builtin_columns(numeric, shifts, careful=True))
    entries = sum(int(r[1]) for r in rows)
    errors = sum(int(r[1]) for r in rows if r[0] == "error")
    keyed = sum(int(r[2]) for r in rows)
    aggs: dict[str, Agg] = {}
    for i, (name, _) in enumerate(numeric):
        agg = Agg(shift=shifts[name])
        for r in rows:
            if r[0] != "error":
                agg.n += int(r[3 + 5 * i])
                agg.total += float(r[4 + 5 * i])
                agg.total_sq += float(r[5 + 5 * i])
                if careful:
                    agg.out_of_range += int(r[6 + 5 * i])
                    agg.non_numeric += int(r[7 + 5 * i])
        agg.raw_n = agg.n
        aggs[name] = agg
    aggs["error_rate"] = Agg(entries, float(errors), float(errors), entries)
    if unit_mode is None:
        unit_mode = keyed > 0
    return {"entries": entries, "errors": errors, "units": entries, "unit_mode": unit_mode,
            "builtins": aggs, "rollup": None}


def likely_units(reader: Reader, scope: Scope, a: Arm, b: Arm) -> bool:
    """Whether the first calls (up to 1,000) carry unit or item ids: a cheap guess of the
    unit mode, only to choose which sums to start early (never changes an answer)."""
    where, params = scope.where(a, b)
    row = reader.one(f"SELECT count(k) FROM (SELECT COALESCE(e.unit_id, e.item_id) AS k "
                     f"FROM entries e WHERE {where} LIMIT 1000)", params)
    return bool(row[0])


def _rollup_unit_columns(name: str, shift: float) -> str:
    """The Agg columns of one built-in over its unit means, then its values, from
    unit_rollup: a keyed row is one unit (its mean), the unkeyed row (calls without unit or
    item id) one unit per call — its count, mean and m2 give those calls' sums."""
    if name == "error_rate":
        rate = "(CAST(errors AS REAL) / calls)"
        return (f"total(CASE WHEN keyed THEN 1 ELSE calls END), "
                f"total(CASE WHEN keyed THEN {rate} ELSE errors END), "
                f"total(CASE WHEN keyed THEN {rate} * {rate} ELSE errors END), "
                f"total(CASE WHEN keyed THEN errors = 0 OR errors = calls ELSE calls END), "
                f"total(calls)")
    c = BUILTINS[name].column
    d = f"({c}_mean - {shift!r})"
    return (f"total(CASE WHEN keyed THEN {c}_n > 0 ELSE {c}_n END), "
            f"total(CASE WHEN keyed THEN (CASE WHEN {c}_n > 0 THEN {d} END) "
            f"ELSE {c}_n * {d} END), "
            f"total(CASE WHEN keyed THEN (CASE WHEN {c}_n > 0 THEN {d} * {d} END) "
            f"ELSE {c}_m2 + {c}_n * {d} * {d} END), "
            f"total(CASE WHEN keyed THEN {c}_n > 0 AND {c}_mean IN (0, 1) ELSE {c}_n01 END), "
            f"total({c}_n)")


def unit_sums(reader: Reader, scope: Scope, arm: Arm, names: Sequence[str],
              builtins: dict[str, Agg], rollup: dict[str, Any] | None = None
              ) -> dict[str, Any]:
    """Every metric of one arm averaged per unit, in one pass grouped by unit: the units,
    each metric's sums over its unit means, and each score's values on failed calls and out
    of range (see `lost_counts`). `builtins` (the per-call sums) lend their counts of
    out-of-range and non-numeric values. With `rollup` (what entry_sums read from the
    per-unit roll-up: the units and the built-ins' sums over unit means), the built-ins come
    from there and the scores from scores_by_unit: no pass over the calls."""
    where, params = scope.where(arm)
    cols, joins, join_params, shifts = [], [], [], {}
    grouped, outer = [], []
    # One prompt version, no time window: a score's rows per unit come from the covering
    # index scores_by_unit alone (no join); the entries pass keeps the built-ins and units.
    by_index = (not scope.windowed and scope.experiment is None and scope.prompt is not None
                and arm.column == "prompt_version")
    indexed: dict[str, tuple[Any, ...]] = {}
    rolled: dict[str, Agg] = {}
    if (by_index and rollup is not None and rollup_answers(scope, arm)
            and all(n in rollup["aggs"] for n in names if n in BUILTINS)):
        rolled = rollup["aggs"]
    for i, name in enumerate(names):
        if rolled and name in BUILTINS:
            continue
        shifts[name] = sample_value(reader, scope, arm, name) if name != "error_rate" else 0.0
        if by_index and name not in BUILTINS:
            indexed[name] = _unit_score_sums(reader, scope, arm, name, shifts[name])
            continue
        # Per row, a built-in needs its value only, a score its value, boolean, failed-call
        # and out-of-range flags: every aggregate step counts, 500,000 rows per arm.
        if name in BUILTINS:
            cols.append(f"{BUILTINS[name].expr} AS x{i}")
            grouped.append(f"avg(x{i}) AS m{i}, count(x{i}) AS c{i}")
            outer.append(f"{agg_columns(f'm{i}', shifts[name])}, total(c{i})")
            continue
        joins.append(f"LEFT JOIN scores s{i} ON s{i}.entry_rowid = e.rowid AND s{i}.name = ?")
        join_params.append(name)
        v = f"s{i}.value"
        cols.append(f"CASE WHEN abs({v}) <= {MAX_ABS!r} THEN {v} END AS x{i}, "
                    f"s{i}.is_bool AS b{i}, ({v} IS NOT NULL AND e.status = 'error') AS r{i}, "
                    f"(abs({v}) > {MAX_ABS!r}) AS o{i}")
        grouped.append(f"avg(x{i}) AS m{i}, count(x{i}) AS c{i}, total(b{i}) AS nb{i}, "
                       f"total(r{i}) AS er{i}, total(o{i}) AS oo{i}")
        outer.append(f"{agg_columns(f'm{i}', shifts[name])}, total(c{i}), total(nb{i}), "
                     f"total(er{i}), total(oo{i})")
    if rolled and rollup is not None:
        row: tuple[Any, ...] = (rollup["units"],)
    else:
        row = reader.one(
            f"SELECT {', '.join(['count(*)', *outer])} FROM (SELECT "
            f"{', '.join(['1', *grouped])} FROM (SELECT "
            f"{', '.join([f'{UNIT_KEY} AS u', *cols])} FROM entries e {' '.join(joins)} "
            f"WHERE {where}) GROUP BY u)", [*join_params, *params])
    if indexed:  # values on failed calls: from the arm's failed calls only
        on_errors = lost_counts(reader, scope, arm, list(indexed))
    aggs: dict[str, Agg] = {}
    lost: dict[str, dict[str, int]] = {}
    base = 1
    for name in names:
        if name in indexed:
            sums = indexed[name]
            agg = agg_from(sums, 0, shifts[name])
            agg.raw_n, agg.n_bool, agg.out_of_range = int(sums[4]), int(sums[5]), int(sums[6])
            lost[name] = {"on_errors": on_errors[name]["on_errors"],
                          "out_of_range": agg.out_of_range}
            aggs[name] = agg
            continue
        if name in rolled:
            aggs[name] = rolled[name]
            continue
        agg = agg_from(row, base, shifts[name])
        agg.raw_n = int(row[base + 4])
        if name in BUILTINS:
            if name in builtins:
                agg.out_of_range = builtins[name].out_of_range
                agg.non_numeric = builtins[name].non_numeric
            base += 5
        else:
            agg.n_bool, agg.out_of_range = int(row[base + 5]), int(row[base + 7])
            lost[name] = {"on_errors": int(row[base + 6]), "out_of_range": int(row[base + 7])}
            base += 8
        aggs[name] = agg
    return {"units": int(row[0]), "aggs": aggs, "lost": lost}


def _unit_score_sums(reader: Reader, scope: Scope, arm: Arm, name: str, shift: float
                     ) -> tuple[Any, ...]:
    """One score of one prompt version averaged per unit along scores_by_unit: the Agg
    columns over the unit means, then values in range, booleans and values out of range."""
    key = [scope.prompt, arm.name, name]
    where = "WHERE prompt_id = ? AND prompt_version = ? AND name = ?"
    if rollup_answers(scope, arm):
        rolled = _rolled_score_sums(reader, key, shift)
        if rolled is not None:
            return rolled
    # The smallest and largest value (two seeks along scores_by_prompt): when both are in
    # range, so is every value, and the per-row work shrinks to avg, count and one total.
    low, high = reader.one(f"SELECT (SELECT min(value) FROM scores {where}), "
                           f"(SELECT max(value) FROM scores {where})", [*key, *key])
    if _in_range(low, high):
        return (*reader.one(
            f"SELECT {agg_columns('m', shift)}, total(c), total(nb) FROM (SELECT avg(value) "
            f"AS m, count(*) AS c, total(is_bool) AS nb FROM scores {where} GROUP BY unit)",
            key), 0)
    value = f"CASE WHEN abs(value) <= {MAX_ABS!r} THEN value END"
    return reader.one(
        f"SELECT {agg_columns('m', shift)}, total(c), total(nb), total(oo) FROM (SELECT "
        f"avg({value}) AS m, count({value}) AS c, total(is_bool) AS nb, "
        f"total(abs(value) > {MAX_ABS!r}) AS oo FROM scores "
        f"WHERE prompt_id = ? AND prompt_version = ? AND name = ? GROUP BY unit)",
        [scope.prompt, arm.name, name])


def _rolled_score_sums(reader: Reader, key: list[Any], shift: float
                       ) -> tuple[Any, ...] | None:
    """`_unit_score_sums` from score_unit_rollup (migration 009): each unit's mean of the
    values in range, as the GROUP BY over scores_by_unit computes it, read in the same unit
    order — the same sums, one row per unit instead of one per value. None when the
    roll-up does not hold every row of the score (checked against a count of them)."""
    where = "WHERE prompt_id = ? AND prompt_version = ? AND name = ?"
    row = reader.one(
        f"SELECT {agg_columns('mean', shift)}, total(n), total(n_bool), total(big), "
        f"total(rows), (SELECT value FROM meta WHERE key = 'score_unit_rollup_stale') "
        f"FROM score_unit_rollup {where}", key)
    if row[8] is not None:  # a bulk load has not rebuilt it yet
        return None
    try:  # the narrower covering index counts fastest (0.04 s per 500,000 rows)
        count = reader.one(
            f"SELECT count(*) FROM scores INDEXED BY scores_by_prompt {where}", key)[0]
    except sqlite3.OperationalError:  # no such index (a bulk load under way)
        return None
    if int(row[7]) != int(count):
        return None
    return row[:7]


def score_sums(reader: Reader, scope: Scope, arm: Arm, name: str, unit_mode: bool,
               fast: str | None) -> Agg:
    """One score's sums for one arm (values in range only); counts booleans when cheap
    (or when it matters)."""
    if not unit_mode and fast:
        return _fast_score_sums(reader, scope, arm, name, fast)
    where, params = scope.where(arm)
    shift = sample_value(reader, scope, arm, name)
    source = f"{SCORES_JOIN} WHERE {where} AND s.name = ?"
    if unit_mode:
        row = reader.one(
            f"SELECT {agg_columns('v', shift)}, total(nb), total(c), total(oo), total(er) "
            f"FROM (SELECT avg({SCORE_VALUE}) AS v, total(s.is_bool) AS nb, "
            f"count({SCORE_VALUE}) AS c, total(abs(s.value) > {MAX_ABS!r}) AS oo, "
            f"total(e.status = 'error') AS er {source} GROUP BY {UNIT_KEY})", [*params, name])
        agg = agg_from(row, shift=shift)
        agg.n_bool, agg.raw_n = int(row[4]), int(row[5])
        agg.out_of_range, agg.on_errors = int(row[6]), int(row[7])
        return agg
    else:
        row = reader.one(
            f"SELECT {agg_columns(SCORE_VALUE, shift)}, total(s.is_bool), "
            f"count({SCORE_VALUE}), total(abs(s.value) > {MAX_ABS!r}) {source}",
            [*params, name])
    agg = agg_from(row, shift=shift)
    agg.n_bool, agg.raw_n = int(row[4]), int(row[5])
    if not unit_mode:
        agg.out_of_range = int(row[6])
    return agg


def _fast_score_sums(reader: Reader, scope: Scope, arm: Arm, name: str, fast: str) -> Agg:
    where, params = _fast_where(scope, arm, fast)
    # Scores usually take few distinct values (pass/fail, 1–5): counting rows per value
    # along the covering index is half the work of four aggregates.
    groups = reader.all(
        f"SELECT value, count(*) FROM scores WHERE {where} AND name = ? "
        f"GROUP BY value LIMIT {DISTINCT_LIMIT + 1}", [*params, name])
    if len(groups) <= DISTINCT_LIMIT:
        valid = [(v, c) for v, c in groups if abs(v) <= MAX_ABS]
        shift = valid[0][0] if valid else 0.0
        agg = Agg(sum(c for _, c in valid), math.fsum((v - shift) * c for v, c in valid),
                  math.fsum((v - shift) * (v - shift) * c for v, c in valid),
                  sum(c for v, c in valid if v in (0, 1)), shift=shift,
                  out_of_range=sum(c for v, c in groups if abs(v) > MAX_ABS))
    else:
        shift = sample_value(reader, scope, arm, name)
        row = reader.one(f"SELECT {agg_columns('value', shift)}, min(value), max(value) "
                         f"FROM scores WHERE {where} AND name = ?", [*params, name])
        big = 0
        if not _in_range(row[4], row[5]):  # out-of-range values: leave them out, count them
            value = f"CASE WHEN abs(value) <= {MAX_ABS!r} THEN value END"
            row = reader.one(
                f"SELECT {agg_columns(value, shift)}, total(abs(value) > {MAX_ABS!r}) FROM "
                f"scores WHERE {where} AND name = ?", [*params, name])
            big = int(row[4])
        agg = agg_from(row, shift=shift)
        agg.out_of_range = big
    agg.raw_n = agg.n
    if agg.n <= CHECK_LIMIT:
        agg.n_bool = int(reader.one(
            f"SELECT total(is_bool) FROM scores WHERE {where} AND name = ?",
            [*params, name])[0])
    elif not agg.binary and agg.n:
        # Counting booleans would read every row; they are stored as 0/1, so a mix can
        # only hide among those values (all-0/1 scores are binary anyway). Look at a
        # bounded sample of those values — found along scores_by_prompt, which seeks to
        # them (left to itself, SQLite walks the covering scores_by_unit through every row
        # of the version when there are none: 40–70 ms per arm at 500,000 values).
        hint = " INDEXED BY scores_by_prompt" if fast == "prompt" else ""
        agg.has_bool = bool(reader.one(
            f"SELECT max(b) FROM (SELECT is_bool AS b FROM scores{hint} WHERE {where} AND "
            f"name = ? AND value IN (0, 1) LIMIT 2000)", [*params, name])[0])
    return agg


def arm_values(reader: Reader, scope: Scope, arm: Arm, names: Sequence[str],
               unit_mode: bool) -> dict[str, list[float]]:
    """Per-unit (or per-call) values of each metric of one arm for the robustness tests,
    in one pass over the arm's calls (a score joined by name: one row per call and score),
    sorted, so the seeded bootstrap never depends on the order SQLite returns rows in."""
    if not names:
        return {}
    where, params = scope.where(arm)
    cols, joins, join_params = [], [], []
    for i, name in enumerate(names):
        if name in BUILTINS:
            cols.append(f"{BUILTINS[name].expr} AS x{i}")
            continue
        joins.append(f"LEFT JOIN scores s{i} ON s{i}.entry_rowid = e.rowid AND s{i}.name = ?")
        join_params.append(name)
        cols.append(f"CASE WHEN abs(s{i}.value) <= {MAX_ABS!r} THEN s{i}.value END AS x{i}")
    rows = f"SELECT {', '.join(cols)}{', ' + UNIT_KEY + ' AS u' if unit_mode else ''} " \
           f"FROM entries e {' '.join(joins)} WHERE {where}"
    if unit_mode:
        means = ", ".join(f"avg(x{i})" for i in range(len(names)))
        sql = f"SELECT {means} FROM ({rows}) GROUP BY u"
    else:
        sql = rows
    columns: list[list[float]] = [[] for _ in names]
    for row in reader.all(sql, [*join_params, *params]):
        for i, value in enumerate(row[:len(names)]):
            if value is not None:
                columns[i].append(value)
    return {name: sorted(column) for name, column in zip(names, columns, strict=True)}


def non_numeric(reader: Reader, index: Index, scope: Scope, arms: tuple[Arm, Arm],
                entry_stats: list[dict[str, Any]], names: list[str]
                ) -> tuple[dict[str, int], dict[str, int]]:
    """Per arm: score values that are not numbers or booleans (the index skips them),
    counted by re-reading entries through the index — every entry of a small arm; in a
    larger one, the entries that lack a numeric value for some score; none above
    CHECK_LIMIT entries (those count as missing)."""
    out = []
    for arm, st in zip(arms, entry_stats, strict=True):
        counts: dict[str, int] = {}
        out.append(counts)
        if st["entries"] > CHECK_LIMIT:
            continue
        where, params = scope.where(arm)
        sql = f"SELECT e.file_id, e.offset, e.length FROM entries e WHERE {where}"
        if st["entries"] > NON_NUMERIC_CHECK_LIMIT:
            sql += (" AND (SELECT count(*) FROM scores s WHERE s.entry_rowid = e.rowid) < ?"
                    f" LIMIT {NON_NUMERIC_CHECK_LIMIT}")
            params = [*params, max(len(names), 1)]
        for file_id, offset, length in reader.all(sql, params):
            entry = index.read_entry(file_id, offset, length)
            scores = entry.get("scores") if entry else None
            if not isinstance(scores, dict):
                continue
            for key, value in scores.items():
                if not _is_number(value):
                    counts[str(key)] = counts.get(str(key), 0) + 1
    return out[0], out[1]


def _is_number(value: Any) -> bool:
    return isinstance(value, bool) or (isinstance(value, int | float) and math.isfinite(value))


def item_overlap(reader: Reader, scope: Scope, a: Arm, b: Arm,
                 key: str = "e.item_id") -> tuple[int, int, int]:
    """Items (or units, with `key`) logged under both arms, under A only, under B only."""
    where, params = scope.where(a, b)
    row = reader.one(
        f"SELECT total(ha AND hb), total(ha AND NOT hb), total(hb AND NOT ha) FROM "
        f"(SELECT max({a.cond}) AS ha, max({b.cond}) AS hb FROM entries e WHERE {where} "
        f"AND {key} IS NOT NULL GROUP BY {key})", [a.name, b.name, *params])
    return int(row[0]), int(row[1]), int(row[2])


def shared_units(reader: Reader, scope: Scope, a: Arm, b: Arm) -> int:
    """Units (unit ids, else item ids) with calls under both arms: in an unpaired design
    they are counted in both. One prompt's versions over all time come from the per-unit
    roll-up (an index lookup per unit); otherwise one pass grouped by unit."""
    if (not scope.windowed and scope.experiment is None and scope.prompt is not None
            and a.column == b.column == "prompt_version"):
        row = reader.one(
            "SELECT count(*) FROM unit_rollup x JOIN unit_rollup y ON y.prompt_id = x.prompt_id"
            " AND y.prompt_version = ? AND y.keyed = 1 AND y.unit = x.unit"
            " WHERE x.prompt_id = ? AND x.prompt_version = ? AND x.keyed = 1",
            [b.name, scope.prompt, a.name])
        return int(row[0])
    return item_overlap(reader, scope, a, b, key="COALESCE(e.unit_id, e.item_id)")[0]


def _per_item(scope: Scope, a: Arm, b: Arm, name: str) -> tuple[str, list[Any]]:
    where, params = scope.where(a, b)
    expr, source, extra = metric_source(name, where)
    inner = (f"SELECT avg(CASE WHEN {a.cond} THEN {expr} END) AS va, "
             f"avg(CASE WHEN {b.cond} THEN {expr} END) AS vb {source} "
             f"AND e.item_id IS NOT NULL GROUP BY e.item_id")
    return inner, [a.name, b.name, *params, *extra]


def paired_sums(reader: Reader, scope: Scope, a: Arm, b: Arm, name: str) -> PairAgg:
    """Sums (of v − shift), cross-products and 0/1 cell counts of the items with a value
    under both versions."""
    inner, params = _per_item(scope, a, b, name)
    k = sample_value(reader, scope, (a, b), name)
    da, db = f"(va - {k!r})", f"(vb - {k!r})"
    row = reader.one(
        f"SELECT count(*), total({da}), total({db}), total({da} * {da}), total({db} * {db}), "
        f"total({da} * {db}), total(va IN (0, 1) AND vb IN (0, 1)), "
        f"total(va = 1 AND vb = 0), total(va = 0 AND vb = 1), total(va = 1 AND vb = 1) "
        f"FROM ({inner}) WHERE va IS NOT NULL AND vb IS NOT NULL", params)
    return PairAgg(int(row[0]), *(float(x) for x in row[1:6]), *(int(x) for x in row[6:10]),
                   shift=k)


def paired_diffs(reader: Reader, scope: Scope, a: Arm, b: Arm, name: str) -> list[float]:
    """Per-item differences B − A, for the robustness tests."""
    inner, params = _per_item(scope, a, b, name)
    return [r[0] for r in reader.all(
        f"SELECT vb - va FROM ({inner}) WHERE va IS NOT NULL AND vb IS NOT NULL", params)]
