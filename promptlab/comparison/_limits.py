"""The thresholds of a comparison: how much is fetched, checked and warned about.

Read as `_limits.NAME` at call time, so a test can lower one with monkeypatch.
"""

# Units above which per-unit values are not fetched (robustness tests are skipped).
VALUES_LIMIT = 100_000
# Score values that are not numbers are not in the index: entries are re-read from their
# log line to count them — all of them in an arm up to NON_NUMERIC_CHECK_LIMIT entries, the
# ones missing a numeric score (at most that many) in an arm up to CHECK_LIMIT entries.
NON_NUMERIC_CHECK_LIMIT = 1_000
# Up to this many entries per version, booleans among score values are counted exactly and
# non-numeric values looked for; above it, a bounded sample is checked for booleans.
CHECK_LIMIT = 20_000
SMALL_SAMPLE = 20
DISTINCT_LIMIT = 5_000  # a score with more distinct values is summed by SQL aggregates
MANY_ERRORS = 0.10
POWER = 0.8
EXACT_MCNEMAR_MAX = 100
