"""`experiment status`: what the logs hold for an experiment.

Per variant: the version it resolves to now, calls, errors, scorer failures (runner cells
logged ok but missing a configured scorer's score) and the prompt versions seen; the
traffic split observed (distinct units per variant) against the configured weights; and
the last run. Calls from live traffic (`experiment.render(...)` in an app) count as well
as runner cells.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from promptlab.errors import PromptlabError
from promptlab.experiments.logged import LoggedCell, logged_cells
from promptlab.experiments.spec import Experiment


def experiment_status(exp: Experiment, log_dir: Path) -> dict[str, Any]:
    """What the logs hold for `exp` (see the module docstring), as plain data.

    Counted by SQLite from the index when it can be (two passes over the experiment's
    rows in the covering index `entries_by_experiment_cells`, a few grouped rows back,
    nothing per call in Python); otherwise from the JSONL files by `summarize_status`.
    Both give the same answer."""
    if not log_dir.is_dir():
        return summarize_status(exp, [])
    try:
        return _status_from_index(exp, log_dir)
    except (ImportError, PromptlabError, OSError):
        pass
    except Exception as exc:  # sqlite3 errors and the like: the JSONL files still answer
        import sqlite3

        if not isinstance(exc, sqlite3.Error):
            raise
    return summarize_status(exp, logged_cells(log_dir, exp.name))


# What `summarize_status` reads of a cell, as SQL over `entries e`: the unit (`unit_id or
# item_id`), whether the cell is live traffic (no run id), and whether a runner cell logged
# ok lacks the own score of scorer `:s<i>` (`_missing_scores`).
_UNIT = "coalesce(nullif(e.unit_id, ''), e.item_id)"
_CELLS = "entries e WHERE e.experiment = :exp AND e.kind = 'llm'"
_RUNNER_OK = "e.status = 'ok' AND nullif(e.run_id, '') IS NOT NULL"
_MISSING = (f"CASE WHEN {_RUNNER_OK} THEN NOT EXISTS (SELECT 1 FROM scores s "
            "WHERE s.entry_rowid = e.rowid AND s.name = :s{i} AND s.own = 1) "
            "ELSE 0 END")
_OWN_SCORES = ("(SELECT count(DISTINCT s.name) FROM scores s WHERE s.entry_rowid = e.rowid "
               "AND s.name IN ({names}) AND s.own = 1)")


def _status_from_index(exp: Experiment, log_dir: Path) -> dict[str, Any]:
    from promptlab.index.core import Index

    scorers = [s.name for s in exp.scorers]
    params: dict[str, Any] = {"exp": exp.name, **{f"s{i}": n for i, n in enumerate(scorers)}}
    per_scorer = "".join(f", sum({_MISSING.format(i=i)})" for i in range(len(scorers)))
    if len(scorers) > 1:
        names = ", ".join(f":s{i}" for i in range(len(scorers)))
        any_missing = (f", sum(CASE WHEN {_RUNNER_OK} THEN "
                       f"{_OWN_SCORES.format(names=names)} < {len(set(scorers))} ELSE 0 END)")
    else:
        any_missing = ", 0"  # one scorer: its own count; none: nothing can be missing
    # In a paired run only live traffic (no run id) says anything about the split.
    live = "nullif(e.run_id, '') IS NULL" if exp.dataset.design == "paired" else "1"
    # The index is ordered (experiment, variant, run_id, prompt_version, …, timestamp):
    # this groups without sorting and looks the scores up in about ingest order.
    group_sql = (f"SELECT e.variant, e.run_id, e.prompt_version, count(*), "
                 f"sum(e.status = 'error'), sum(e.status = 'ok'), min(e.timestamp), "
                 f"max(e.timestamp){any_missing}{per_scorer} FROM {_CELLS} "
                 "GROUP BY e.variant, e.run_id, e.prompt_version")
    units_sql = (f"SELECT {{key}}, count(DISTINCT {_UNIT}) + max({_UNIT} IS NULL), "
                 f"count(DISTINCT CASE WHEN {live} THEN {_UNIT} END) "
                 f"+ max({live} AND {_UNIT} IS NULL) FROM {_CELLS}{{where}}")
    with Index(log_dir) as index:
        index.sync()
        conn = index.conn
        groups = conn.execute(group_sql, params).fetchall()
        units = {k: (u, s) for k, u, s in conn.execute(
            units_sql.format(key="e.variant", where=" GROUP BY e.variant"), params)}
        blank = [v for v in units if not v or v == "?"]
        if len(blank) > 1:  # `variant or "?"` joins these: count their units together
            for v in blank:
                del units[v]
            row = conn.execute(units_sql.format(
                key="'?'", where=" AND coalesce(nullif(e.variant, ''), '?') = '?'"),
                params).fetchone()
            units["?"] = row[1:]
        else:
            units = {(v or "?"): c for v, c in units.items()}
        runs = [g for g in groups if g[1]]
        last_run = _last_run(conn, params, scorers, runs) if runs else None
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])  # cells, errors, scorer errors
    versions: dict[str, set[str]] = defaultdict(set)
    run_ids: dict[str, set[str]] = defaultdict(set)
    for variant, run_id, version, n, errors, _, _, _, *missing in groups:
        c = counts[variant or "?"]
        c[0] += n
        c[1] += errors
        c[2] += missing[1] if len(scorers) == 1 else missing[0]
        if version:
            versions[variant or "?"].add(version)
        if run_id:
            run_ids[variant or "?"].add(run_id)
    total_units = sum(units[v][1] for v in units if v in exp.variants)
    rows = []
    for variant in exp.variants:
        n, errors, scorer_errors = counts.get(variant, (0, 0, 0))
        rows.append({
            "variant": variant,
            "resolves_to": _resolves_to(exp, variant),
            "versions": sorted(versions.get(variant, ())),
            "configured": exp.shares[variant],
            "observed": units.get(variant, (0, 0))[1] / total_units if total_units else None,
            "units": units.get(variant, (0, 0))[0], "cells": n, "errors": errors,
            "error_rate": errors / n if n else None,
            "scorer_errors": scorer_errors, "runs": len(run_ids.get(variant, ())),
        })
    return {"experiment": exp.name, "prompt": exp.prompt, "design": exp.dataset.design,
            "cells": sum(c[0] for c in counts.values()), "variants": rows,
            "last_run": last_run,
            "unknown_variants": sorted(v for v in counts if v not in exp.variants)}


def _last_run(conn: Any, params: dict[str, Any], scorers: list[str],
              groups: list[tuple[Any, ...]]) -> dict[str, Any]:
    """The last run — the one whose last cell is latest; on a tie, the one seen first —
    from the (variant, run, version) groups of runner cells: variant, run, version, cells,
    errors, ok, first and last timestamp, failures of any scorer, failures per scorer."""

    def in_log_order(items: list[tuple[str, Any]], where: Callable[[Any], str],
                     args: Callable[[Any], dict[str, Any]]) -> list[Any]:
        # Log order is (timestamp, ingest order). `items` are (first timestamp, key) in
        # the order that breaks a tie within one cell; the rowid of a first cell is looked
        # up only when its timestamp ties with another item's.
        tied = Counter(ts for ts, _ in items)

        def rowid(ts: str, key: Any) -> int:
            if tied[ts] < 2:
                return 0
            return conn.execute(
                f"SELECT min(e.rowid) FROM {_CELLS} AND e.timestamp = :ts AND {where(key)}",
                {**params, "ts": ts, **args(key)}).fetchone()[0]

        ranked = sorted((ts, rowid(ts, key), n) for n, (ts, key) in enumerate(items))
        return [items[n][1] for _, _, n in ranked]

    runs: dict[str, list[tuple[Any, ...]]] = defaultdict(list)
    for g in groups:
        runs[g[1]].append(g)
    ended = max(g[7] for g in groups)
    latest = in_log_order(
        [(min(g[6] for g in gs), run) for run, gs in runs.items()
         if max(g[7] for g in gs) == ended],
        lambda run: "e.run_id = :run", lambda run: {"run": run})[0]
    mine = runs[latest]
    per_variant: dict[Any, list[Any]] = {}
    for g in mine:
        v = per_variant.setdefault(g[0], [g[6], 0])
        v[0] = min(v[0], g[6])
        v[1] += g[3]
    variants = in_log_order([(first, v) for v, (first, _) in per_variant.items()],
                            lambda v: "e.run_id = :run AND e.variant IS :variant",
                            lambda v: {"run": latest, "variant": v})
    failed = [(name, sum(g[9 + i] for g in mine)) for i, name in enumerate(scorers)]
    failed = [(name, count) for name, count in failed if count]
    if len(failed) > 1:  # in the order they first failed (ties: in scorer order)
        first = []
        for name, count in failed:
            i = scorers.index(name)
            ts = conn.execute(
                f"SELECT min(e.timestamp) FROM {_CELLS} AND e.run_id = :run "
                f"AND {_MISSING.format(i=i)}", {**params, "run": latest}).fetchone()[0]
            first.append((ts, (name, count, i)))
        failed = [(name, count) for name, count, _ in in_log_order(
            first, lambda key: f"e.run_id = :run AND {_MISSING.format(i=key[2])}",
            lambda key: {"run": latest})]
    return {"run_id": latest, "cells": sum(g[3] for g in mine),
            "errors": sum(g[4] for g in mine), "scored": sum(g[5] for g in mine),
            "scorer_errors": dict(failed),
            "started": min(g[6] for g in mine), "ended": ended,
            "per_variant": {v: per_variant[v][1] for v in variants}}


def summarize_status(exp: Experiment, cells: list[LoggedCell]) -> dict[str, Any]:
    """Per-variant counts, observed vs configured split, and the last run."""
    per_variant: dict[str, list[LoggedCell]] = defaultdict(list)
    for cell in cells:
        per_variant[cell.variant or "?"].append(cell)
    # In a paired run every item goes through every variant: only live traffic (entries
    # without a run id) says anything about the split.
    sampled = [c for c in cells if not c.run_id] if exp.dataset.design == "paired" else cells
    units: dict[str, set[str | None]] = defaultdict(set)
    split: dict[str, set[str | None]] = defaultdict(set)
    for cell in cells:
        units[cell.variant or "?"].add(cell.unit_id or cell.item_id)
    for cell in sampled:
        split[cell.variant or "?"].add(cell.unit_id or cell.item_id)
    total_units = sum(len(u) for v, u in split.items() if v in exp.variants)
    shares = exp.shares
    rows = []
    for variant in exp.variants:
        cs = per_variant.get(variant, [])
        errors = sum(c.status == "error" for c in cs)
        rows.append({
            "variant": variant,
            "resolves_to": _resolves_to(exp, variant),
            "versions": sorted({c.prompt_version for c in cs if c.prompt_version}),
            "configured": shares[variant],
            "observed": len(split.get(variant, ())) / total_units if total_units else None,
            "units": len(units.get(variant, ())), "cells": len(cs), "errors": errors,
            "error_rate": errors / len(cs) if cs else None,
            "scorer_errors": sum(bool(_missing_scores(exp, c)) for c in cs),
            "runs": len({c.run_id for c in cs if c.run_id}),
        })
    last_run = None
    ends: dict[str, str] = {}
    for c in cells:
        if c.run_id and c.timestamp >= ends.get(c.run_id, ""):
            ends[c.run_id] = c.timestamp
    if ends:
        latest = max(ends, key=lambda r: ends[r])
        mine = [c for c in cells if c.run_id == latest]
        failed: Counter[str] = Counter()
        for c in mine:
            failed.update(_missing_scores(exp, c))
        last_run = {"run_id": latest, "cells": len(mine),
                    "errors": sum(c.status == "error" for c in mine),
                    "scored": sum(c.status == "ok" for c in mine),
                    "scorer_errors": dict(failed),
                    "started": min(c.timestamp for c in mine),
                    "ended": max(c.timestamp for c in mine),
                    "per_variant": dict(Counter(c.variant for c in mine))}
    return {"experiment": exp.name, "prompt": exp.prompt, "design": exp.dataset.design,
            "cells": len(cells), "variants": rows, "last_run": last_run,
            "unknown_variants": sorted(v for v in per_variant if v not in exp.variants)}


def _resolves_to(exp: Experiment, variant: str) -> str | None:
    """The version a variant names now (a label may move), or None if it names none."""
    try:
        return exp.prompt_for(variant).version.name
    except PromptlabError:
        return None


def _missing_scores(exp: Experiment, cell: LoggedCell) -> list[str]:
    """The configured scorers that gave no score on a runner cell logged ok: each one
    failed on that output (the reason is in the entry's metadata.scorer_errors)."""
    if cell.status != "ok" or not cell.run_id:
        return []
    return [s.name for s in exp.scorers if s.name not in cell.scores]
