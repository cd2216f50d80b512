"""`compare()`, the public entry point: check the arguments, open the index, run."""

from __future__ import annotations

import math
import os
import sqlite3
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from promptlab.comparison._engine import Engine
from promptlab.comparison._reader import Reader
from promptlab.comparison._scope import time_bounds
from promptlab.errors import CompareError

if TYPE_CHECKING:
    from promptlab.comparison._model import Comparison
    from promptlab.config import Settings
    from promptlab.index.core import Index

CORRECTIONS = ("holm", "bh", "none")


def compare(
    *versions: str,
    prompt: str | None = None,
    experiment: str | None = None,
    metrics: Sequence[str] | None = None,
    alpha: float = 0.05,
    since: Any = None,
    until: Any = None,
    correction: str = "holm",
    sequential: bool = False,
    tolerance: Mapping[str, float] | None = None,
    log_dir: str | os.PathLike[str] | None = None,
    settings: Settings | None = None,
    index: Index | None = None,
) -> Comparison:
    """Compare version B (and C, …) against version A from the logged calls.

    `versions` are prompt versions (`v1`), labels (`production`) or experiment variants;
    with `experiment` and no versions, the experiment's variants in file order. `prompt`
    may be omitted when exactly one prompt (or experiment) has all the versions. `metrics`
    chooses metric names (scores, `latency_ms`, `output_tokens`, `input_tokens`,
    `cost_usd`, `error_rate`); by default the experiment's primary metric and guardrails,
    else every score plus latency, output tokens, cost and error rate. `since`/`until` take
    a date, an ISO time or an age like `7d`. `tolerance` maps metric names to relative
    margins (0.25: B may be up to 25 % worse) over the experiment file's `[metrics]
    tolerance`: such a metric is judged worse only when its whole lift interval lies beyond
    the margin. Raises CompareError (exit 2) for a comparison that cannot be made as asked.
    """
    versions_list = _check_arguments(versions, experiment, alpha, correction)
    margins = _check_tolerance(tolerance or {})
    if settings is None:
        from promptlab.config import load_settings

        settings = load_settings(log_dir=log_dir)
    own_index = index is None
    if index is None:
        from promptlab.index.core import Index

        index = Index(Path(log_dir) if log_dir is not None else settings.log_dir)
    try:
        if not index.path.exists() and not any(index.log_dir.glob("*.jsonl")):
            raise CompareError(f"no logged calls in {index.log_dir}; log some calls first, or "
                               "point --log-dir (or PROMPTLAB_LOG_DIR) at your logs")
        index.sync()
        reader = Reader(index.path)
        try:
            return Engine(index, reader, settings).run(
                versions_list, prompt=prompt, experiment=experiment,
                metrics=list(metrics) if metrics else None, alpha=alpha,
                scope_bounds=time_bounds(since, until), correction=correction,
                sequential=sequential, tolerance=margins,
            )
        except sqlite3.Error as exc:
            from promptlab.errors import LogIndexError

            raise LogIndexError(f"reading the log index {index.path} failed: {exc}; "
                                "`promptlab logs reindex` rebuilds it") from exc
        finally:
            reader.close()
    finally:
        if own_index:
            index.close()


def _check_arguments(versions: Sequence[str | None], experiment: str | None, alpha: float,
                     correction: str) -> list[str]:
    """The version names, stripped; a CompareError for what cannot be compared."""
    if not 0 < alpha < 1:
        raise CompareError(f"--alpha must be between 0 and 1 (exclusive), got {alpha}")
    if correction not in CORRECTIONS:
        raise CompareError(f"--correction must be one of {', '.join(CORRECTIONS)}, "
                           f"got {correction!r}")
    versions_list = [v.strip() for v in versions if v is not None]
    if any(not v for v in versions_list):
        raise CompareError("a version name is empty; name versions like v1 v2")
    duplicates = sorted({v for v in versions_list if versions_list.count(v) > 1})
    if duplicates:
        raise CompareError(f"version {duplicates[0]!r} is given twice; compare distinct "
                           "versions")
    if len(versions_list) == 1 or (not versions_list and not experiment):
        raise CompareError("compare needs two or more versions: promptlab compare v1 v2 "
                           "(or --experiment NAME for an experiment's variants)")
    return versions_list


def _check_tolerance(tolerance: Mapping[str, float]) -> dict[str, float]:
    out: dict[str, float] = {}
    for name, margin in tolerance.items():
        if not isinstance(name, str) or not name.strip():
            raise CompareError("--tolerance needs a metric name: METRIC=FRACTION, e.g. "
                               "latency_ms=0.25")
        number = isinstance(margin, int | float) and not isinstance(margin, bool)
        if not number or not math.isfinite(margin) or margin < 0:
            shown = f"{margin:g}" if number else repr(margin)
            raise CompareError(f"--tolerance {name}={shown}: the tolerance must be a number "
                               "≥ 0 (a fraction: 0.25 = up to 25% worse)")
        out[name.strip()] = float(margin)
    return out
