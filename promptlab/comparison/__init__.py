"""Compare prompt versions from the log index: index → samples → stats → `Comparison`.

    from promptlab import compare
    result = compare("v1", "v2", prompt="code-review")
    print(result.table())
    result.to_dict()["metrics"][0]["verdict"]      # "v2 better"

Reads only the SQLite index (`promptlab.index`), never the JSONL files. docs/compare.md
says which test is used when, on which unit, and how observations are dropped.

Where things are: `_engine` (the entry point, one run) → `_target` (what to compare: arms,
scope, metrics) → `_query` (SQL sums per arm and per pair, through a `Reader`) →
`_analyse` (one metric's statistics) → `_verdict` (SRM, adjusted p, verdicts) → `_model`
(the results, their JSON and their text report). Nothing here imports numpy, scipy or
tabulate until a comparison runs.
"""

from __future__ import annotations

from promptlab.comparison._engine import compare
from promptlab.comparison._model import (
    ArmSummary,
    Comparison,
    MetricResult,
    PairComparison,
    all_warnings,
    format_comparison,
    format_tolerance,
)

__all__ = [
    "ArmSummary",
    "Comparison",
    "MetricResult",
    "PairComparison",
    "all_warnings",
    "compare",
    "format_comparison",
    "format_tolerance",
]
