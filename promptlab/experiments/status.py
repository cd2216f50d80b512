"""`experiment status`: what the logs hold for an experiment.

Per variant: the version it resolves to now, calls, errors, scorer failures (runner cells
logged ok but missing a configured scorer's score) and the prompt versions seen; the
traffic split observed (distinct units per variant) against the configured weights; and
the last run. Calls from live traffic (`experiment.render(...)` in an app) count as well
as runner cells.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from promptlab.errors import PromptlabError
from promptlab.experiments.logged import LoggedCell, logged_cells
from promptlab.experiments.spec import Experiment


def experiment_status(exp: Experiment, log_dir: Path) -> dict[str, Any]:
    """What the logs hold for `exp` (see the module docstring), as plain data."""
    return summarize_status(exp, logged_cells(log_dir, exp.name))


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
