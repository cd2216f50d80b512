"""Compare prompt versions from the log index: logs → samples → stats → `Comparison`.

    from promptlab import compare
    result = compare("v1", "v2", prompt="code-review")
    print(result.table())
    result.to_dict()["metrics"][0]["verdict"]      # "v2 better"

Reads only the SQLite index (`promptlab.index.core`), never the JSONL files. How each
metric is tested:

* design — *paired* when the entries come from one experiment and the same `item_id`s were
  run under both versions (repeats are averaged per item first; items seen under one
  version only are dropped, with a warning); otherwise *unpaired*, with one value per
  `unit_id` (or `item_id`) when units have several entries (their mean).
* outcome — *binary* when every (aggregated) value is 0/1 or a boolean, else *numeric*.
* paired × binary: exact McNemar (χ² with continuity correction above 100 discordant
  pairs), Newcombe's paired interval; paired × numeric: paired t, Wilcoxon signed-rank
  (Pratt) alongside; unpaired × binary: two-proportion z (= χ² without correction), or
  Fisher's exact test when an expected cell is below 5, Wilson interval per arm and
  Newcombe's for the difference; unpaired × numeric: Welch t, Mann–Whitney alongside.
* p-values are adjusted across every metric × comparison (Holm by default).

Counts, sums and sums of squares are computed in SQL (two reader threads), so a million
entries cost a few table scans; per-unit values are fetched only for the robustness tests,
and only up to `_limits.VALUES_LIMIT` units.

Where things are: `_compare` (the entry point) → `_resolve` (what to compare) →
`_engine` (one run) → `_query_arms` / `_query_pairs` (SQL sums, via `_reader`, `_scope`,
`_sql`) → `_analyse` (+ `_robust`, `_warnings`) → `_srm`, `_verdict` → `_model` (the
results) → `_format` (the table). Nothing here imports numpy, scipy or tabulate until a
comparison runs.
"""

from __future__ import annotations

from promptlab.comparison._compare import compare
from promptlab.comparison._format import format_comparison
from promptlab.comparison._model import ArmSummary, Comparison, MetricResult, PairComparison
from promptlab.comparison._verdict import format_tolerance
from promptlab.comparison._warnings import all_warnings

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
