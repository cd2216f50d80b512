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

    Counted by SQLite from the index when it can be (one pass over the experiment's rows,
    a few grouped rows back, nothing per call in Python); otherwise from the JSONL files
    by `summarize_status`. Both give the same answer."""
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


# What `summarize_status` reads of a cell, as SQL over `entries e`: the variant as shown
# (`variant or "?"`), the unit (`unit_id or item_id`), the run id when there is one, and
# whether a runner cell logged ok lacks the own score of scorer `?` (`_missing_scores`).
_KEY = "coalesce(nullif(e.variant, ''), '?')"
_UNIT = "coalesce(nullif(e.unit_id, ''), e.item_id)"
_RUN = "nullif(e.run_id, '')"
_MISSING = (f"CASE WHEN e.status = 'ok' AND {_RUN} IS NOT NULL THEN NOT EXISTS ("
            "SELECT 1 FROM scores s WHERE s.entry_rowid = e.rowid AND s.name = ? "
            "AND s.source = 'entry') ELSE 0 END")
_CELLS = "entries e WHERE e.experiment = ? AND e.kind = 'llm'"


def _status_from_index(exp: Experiment, log_dir: Path) -> dict[str, Any]:
    from promptlab.index.core import Index

    scorers = [s.name for s in exp.scorers]
    width = 8 + 2 * len(scorers)

    def part(*columns: str) -> str:
        return ", ".join([*columns, *["NULL"] * (width - len(columns))])

    missing = "".join(f", {_MISSING} AS m{i}" for i in range(len(scorers)))
    any_missing = " OR ".join(f"m{i}" for i in range(len(scorers))) or "0"
    per_scorer = [c for i in range(len(scorers))
                  for c in (f"sum(m{i})", f"min(CASE WHEN m{i} THEN ts END)")]
    # In a paired run only live traffic (no run id) says anything about the split.
    live = "run IS NULL" if exp.dataset.design == "paired" else "1"
    # One statement, so the rows are read once (MATERIALIZED); it answers in tagged parts:
    # 'v' a row per variant, 'p' the versions seen per variant, 'g' a row per (run,
    # variant) — a few rows however many calls.
    sql = f"""
        WITH cells AS MATERIALIZED (
            SELECT {_KEY} AS k, e.variant AS variant, {_UNIT} AS u, {_RUN} AS run,
                   e.status AS status, e.prompt_version AS pv, e.timestamp AS ts{missing}
            FROM {_CELLS})
        SELECT {part("'v'", "k", "count(*)", "sum(status = 'error')",
                     "count(DISTINCT u) + max(u IS NULL)",
                     f"count(DISTINCT CASE WHEN {live} THEN u END)"
                     f" + max({live} AND u IS NULL)",
                     "count(DISTINCT run)", f"sum({any_missing})")}
        FROM cells GROUP BY k
        UNION ALL SELECT DISTINCT {part("'p'", "k", "pv")} FROM cells WHERE pv <> ''
        UNION ALL SELECT 'g', run, variant, count(*), sum(status = 'error'),
               sum(status = 'ok'), min(ts), max(ts){"".join(", " + c for c in per_scorer)}
        FROM cells WHERE run IS NOT NULL GROUP BY run, variant
    """
    with Index(log_dir) as index:
        index.sync()
        parts = index.conn.execute(sql, (*scorers, exp.name)).fetchall()
        counts = {row[1]: row[2:8] for row in parts if row[0] == "v"}
        versions: dict[str, set[str]] = defaultdict(set)
        for row in parts:
            if row[0] == "p":
                versions[row[1]].add(row[2])
        groups = [row[1:] for row in parts if row[0] == "g"]
        last_run = _last_run(index.conn, exp.name, scorers, groups) if groups else None
    total_units = sum(c[3] for v, c in counts.items() if v in exp.variants)
    rows = []
    for variant in exp.variants:
        n, errors, units, split, runs, scorer_errors = counts.get(variant, (0,) * 6)
        rows.append({
            "variant": variant,
            "resolves_to": _resolves_to(exp, variant),
            "versions": sorted(versions.get(variant, ())),
            "configured": exp.shares[variant],
            "observed": split / total_units if total_units else None,
            "units": units, "cells": n, "errors": errors,
            "error_rate": errors / n if n else None,
            "scorer_errors": scorer_errors, "runs": runs,
        })
    return {"experiment": exp.name, "prompt": exp.prompt, "design": exp.dataset.design,
            "cells": sum(c[0] for c in counts.values()), "variants": rows,
            "last_run": last_run,
            "unknown_variants": sorted(v for v in counts if v not in exp.variants)}


def _last_run(conn: Any, experiment: str, scorers: list[str],
              groups: list[tuple[Any, ...]]) -> dict[str, Any]:
    """The last run (the one whose last cell is latest; on a tie, the one seen first) from
    the (run, variant) groups: run, variant, cells, errors, ok, first and last timestamp,
    then per scorer the failures and the timestamp of the first."""

    def in_log_order(items: list[tuple[str, Any]], where: str,
                     params: Callable[[Any], tuple[Any, ...]]) -> list[Any]:
        # Log order is (timestamp, ingest order). The keys of `items` (first timestamp,
        # key) come in the order that breaks a tie within one cell; the rowid of a first
        # cell is looked up only when its timestamp is tied with another's.
        tied = Counter(ts for ts, _ in items)

        def rowid(ts: str, key: Any) -> int:
            if tied[ts] < 2:
                return 0
            return conn.execute(f"SELECT min(e.rowid) FROM {_CELLS} AND e.timestamp = ? "
                                f"AND {where}", (experiment, ts, *params(key))).fetchone()[0]

        ranked = sorted((ts, rowid(ts, key), n) for n, (ts, key) in enumerate(items))
        return [items[n][1] for _, _, n in ranked]

    runs: dict[str, list[tuple[Any, ...]]] = defaultdict(list)
    for g in groups:
        runs[g[0]].append(g)
    ended = max(g[6] for g in groups)
    latest = in_log_order(
        [(min(g[5] for g in gs), run) for run, gs in runs.items()
         if max(g[6] for g in gs) == ended],
        "e.run_id = ?", lambda run: (run,))[0]
    mine = runs[latest]
    variants = in_log_order([(g[5], g[1]) for g in mine], "e.run_id = ? AND e.variant IS ?",
                            lambda variant: (latest, variant))
    by_variant = {g[1]: g for g in mine}
    failed = []
    for i, name in enumerate(scorers):
        count = sum(g[7 + 2 * i] for g in mine)
        if count:
            failed.append((min(g[8 + 2 * i] for g in mine if g[8 + 2 * i] is not None),
                           (name, count)))
    failed_ordered = in_log_order(failed, f"e.run_id = ? AND {_MISSING}",
                                  lambda nc: (latest, nc[0]))
    return {"run_id": latest, "cells": sum(g[2] for g in mine),
            "errors": sum(g[3] for g in mine), "scored": sum(g[4] for g in mine),
            "scorer_errors": dict(failed_ordered),
            "started": min(g[5] for g in mine), "ended": ended,
            "per_variant": {v: by_variant[v][2] for v in variants}}


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
