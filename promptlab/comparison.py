"""Compare prompt versions from the log index: logs → samples → stats → `Comparison`.

    from promptlab import compare
    result = compare("v1", "v2", prompt="code-review")
    print(result.table())
    result.to_dict()["metrics"][0]["verdict"]      # "v2 better"

Reads only the SQLite index (`promptlab.logs.index`), never the JSONL files. How each
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
and only up to `VALUES_LIMIT` units.
"""

from __future__ import annotations

import math
import os
import sqlite3
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from promptlab.errors import CompareError

if TYPE_CHECKING:
    from promptlab.config import Settings
    from promptlab.logs.index import Index
    from promptlab.stats import Moments, TestResult

__all__ = ["Comparison", "MetricResult", "PairComparison", "compare"]

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
# Unit key for unpaired designs: a unit's entries are averaged into one value.
UNIT_KEY = "COALESCE(e.unit_id, e.item_id, e.id)"


@dataclass(frozen=True)
class Builtin:
    """A metric every call has. Numeric ones read an `entries` column over the calls that
    did not fail; `error_rate` is the share of calls with status 'error'."""

    column: str | None  # None: error_rate
    direction: str = "lower"

    @property
    def expr(self) -> str:
        if self.column is None:
            return "(e.status = 'error')"
        return f"CASE WHEN e.status != 'error' THEN e.{self.column} END"


BUILTINS: dict[str, Builtin] = {
    "latency_ms": Builtin("latency_ms"),
    "output_tokens": Builtin("output_tokens"),
    "input_tokens": Builtin("input_tokens"),
    "cost_usd": Builtin("cost_usd"),
    "error_rate": Builtin(None),
}
DEFAULT_BUILTINS = ("latency_ms", "output_tokens", "cost_usd", "error_rate")
CORRECTIONS = ("holm", "bh", "none")


# -- results ------------------------------------------------------------------------------


@dataclass
class ArmSummary:
    """One version's side of a metric: units (or pairs), mean or rate, and its interval."""

    n: int
    mean: float | None
    ci: tuple[float, float] | None

    def to_dict(self) -> dict[str, Any]:
        return {"n": self.n, "mean": self.mean, "ci": _pair(self.ci)}


@dataclass
class MetricResult:
    """One metric of one comparison. `diff` is B − A; `lift` is B / A − 1."""

    name: str
    kind: str  # "binary" | "numeric"
    test: str | None
    direction: str  # "higher" | "lower" is better
    a: ArmSummary
    b: ArmSummary
    diff: float | None = None
    diff_ci: tuple[float, float] | None = None
    lift: float | None = None
    lift_ci: tuple[float, float] | None = None
    p_value: float | None = None
    p_adjusted: float | None = None
    significant: bool = False
    verdict: str = "not enough data"
    mde: float | None = None
    n_needed: int | None = None
    warnings: list[str] = field(default_factory=list)
    role: str | None = None  # "primary" | "guardrail" | None
    robust: dict[str, Any] | None = None
    chance_b_better: float | None = None
    se: float | None = None
    n_total: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name, "kind": self.kind, "test": self.test,
            "a": self.a.to_dict(), "b": self.b.to_dict(),
            "diff": self.diff, "diff_ci": _pair(self.diff_ci),
            "lift": self.lift, "lift_ci": _pair(self.lift_ci),
            "p_value": self.p_value, "p_adjusted": self.p_adjusted,
            "significant": self.significant, "verdict": self.verdict,
            "mde": self.mde, "n_needed": self.n_needed, "warnings": list(self.warnings),
            "direction": self.direction, "role": self.role, "robust": self.robust,
            "chance_b_better": self.chance_b_better,
        }


@dataclass
class PairComparison:
    """Version B against the baseline A on every metric."""

    a: str
    b: str
    design: str  # "paired" | "unpaired"
    metrics: list[MetricResult]
    srm: dict[str, Any] | None = None
    warnings: list[str] = field(default_factory=list)
    units: tuple[int, int] = (0, 0)

    def worse(self, guarded: Callable[[MetricResult], bool] | None = None) -> list[MetricResult]:
        """Metrics on which B is significantly worse (only `guarded` ones when given)."""
        return [m for m in self.metrics
                if m.verdict == f"{self.b} worse" and (guarded is None or guarded(m))]


@dataclass
class Comparison:
    """The verdict of `compare`: one `PairComparison` per version after the first.

    `to_dict()` is the `--json` form (one object for two versions; with more, the same
    header plus `"comparisons"`, one object per version); `table()` the text report.
    """

    prompt: str | None
    experiment: str | None
    versions: list[str]
    alpha: float
    correction: str
    sequential: bool
    pairs: list[PairComparison]
    warnings: list[str] = field(default_factory=list)
    primary: str | None = None
    guardrails: tuple[str, ...] = ()

    @property
    def a(self) -> str:
        return self.versions[0]

    @property
    def design(self) -> str:
        return self.pairs[0].design if self.pairs else "unpaired"

    @property
    def metrics(self) -> list[MetricResult]:
        """The metrics of the first (or only) comparison."""
        return self.pairs[0].metrics if self.pairs else []

    def guarded(self, metric: MetricResult) -> bool:
        """Whether `--fail-if-worse` watches this metric: the primary metric and the
        guardrails when configured, otherwise every metric compared."""
        if self.primary is None and not self.guardrails:
            return True
        return metric.name == self.primary or metric.name in self.guardrails

    def worse(self) -> list[tuple[PairComparison, MetricResult]]:
        """(comparison, metric) where a version is significantly worse on a watched metric."""
        return [(p, m) for p in self.pairs for m in p.worse(self.guarded)]

    def _pair_dict(self, pair: PairComparison) -> dict[str, Any]:
        return {
            "prompt": self.prompt, "a": pair.a, "b": pair.b, "experiment": self.experiment,
            "design": pair.design, "alpha": self.alpha, "srm": pair.srm,
            "metrics": [m.to_dict() for m in pair.metrics],
            "correction": self.correction, "sequential": self.sequential,
            "warnings": [*self.warnings, *pair.warnings],
        }

    def to_dict(self) -> dict[str, Any]:
        if len(self.pairs) == 1:
            return _clean(self._pair_dict(self.pairs[0]))
        return _clean({
            "prompt": self.prompt, "a": self.a, "b": self.versions[1:],
            "experiment": self.experiment, "alpha": self.alpha,
            "correction": self.correction, "sequential": self.sequential,
            "warnings": list(self.warnings),
            "comparisons": [self._pair_dict(p) for p in self.pairs],
        })

    def table(self, fmt: str = "simple") -> str:
        """The human report: one table per comparison, then SRM, power and footnotes."""
        return format_comparison(self, fmt)

    def rows(self) -> list[dict[str, Any]]:
        """Flat rows (one per version × metric) for CSV and newline-JSON output."""
        out = []
        for pair in self.pairs:
            for m in pair.metrics:
                out.append({
                    "prompt": self.prompt, "experiment": self.experiment, "a": pair.a,
                    "b": pair.b, "design": pair.design, "metric": m.name, "kind": m.kind,
                    "role": m.role, "test": m.test, "n_a": m.a.n, "mean_a": m.a.mean,
                    "n_b": m.b.n, "mean_b": m.b.mean, "diff": m.diff,
                    "diff_low": m.diff_ci[0] if m.diff_ci else None,
                    "diff_high": m.diff_ci[1] if m.diff_ci else None, "lift": m.lift,
                    "p_value": m.p_value, "p_adjusted": m.p_adjusted,
                    "significant": m.significant, "verdict": m.verdict,
                    "chance_b_better": m.chance_b_better, "mde": m.mde,
                    "n_needed": m.n_needed,
                })
        return [_clean(r) for r in out]


def _pair(value: tuple[float, float] | None) -> list[float] | None:
    return None if value is None else [value[0], value[1]]


def _clean(obj: Any) -> Any:
    """JSON-safe: a NaN or infinity that slipped through becomes null."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_clean(v) for v in obj]
    return obj


# -- the public entry point ---------------------------------------------------------------


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
    a date, an ISO time or an age like `7d`. Raises CompareError (exit 2) for a comparison
    that cannot be made as asked.
    """
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
    if settings is None:
        from promptlab.config import load_settings

        settings = load_settings(log_dir=log_dir)
    own_index = index is None
    if index is None:
        from promptlab.logs.index import Index

        index = Index(Path(log_dir) if log_dir is not None else settings.log_dir)
    try:
        if not index.path.exists() and not any(index.log_dir.glob("*.jsonl")):
            raise CompareError(f"no logged calls in {index.log_dir}; log some calls first, or "
                               "point --log-dir (or PROMPTLAB_LOG_DIR) at your logs")
        index.sync()
        reader = _Reader(index.path)
        try:
            return _Engine(index, reader, settings).run(
                versions_list, prompt=prompt, experiment=experiment,
                metrics=list(metrics) if metrics else None, alpha=alpha,
                scope_bounds=_bounds(since, until), correction=correction,
                sequential=sequential,
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


def _bounds(since: Any, until: Any) -> tuple[float | None, float | None]:
    from promptlab.logs.reader import parse_bound

    def epoch(value: Any, end: bool) -> float | None:
        text = parse_bound(value, end=end)
        if text is None:
            return None
        from datetime import datetime

        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()

    lo, hi = epoch(since, False), epoch(until, True)
    if lo is not None and hi is not None and hi <= lo:
        raise CompareError(f"--until ({until}) is not after --since ({since})")
    return lo, hi


# -- reading the index --------------------------------------------------------------------


@dataclass(frozen=True)
class Arm:
    """One side of a comparison: the name the user gave and the column it matched."""

    name: str
    column: str  # "prompt_version" | "variant" | "prompt_label"

    @property
    def cond(self) -> str:
        return f"e.{self.column} = ?"


@dataclass(frozen=True)
class Scope:
    """Which entries count: prompt, experiment and a time window."""

    prompt: str | None = None
    experiment: str | None = None
    since: float | None = None
    until: float | None = None

    def where(self, *arms: Arm) -> tuple[str, list[Any]]:
        parts, params = ["e.kind = 'llm'"], []
        for column, value in (("prompt_id", self.prompt), ("experiment", self.experiment)):
            if value is not None:
                parts.append(f"e.{column} = ?")
                params.append(value)
        if self.since is not None:
            parts.append("e.ts >= ?")
            params.append(self.since)
        if self.until is not None:
            parts.append("e.ts < ?")
            params.append(self.until)
        if arms:
            parts.append("(" + " OR ".join(a.cond for a in arms) + ")")
            params.extend(a.name for a in arms)
        return " AND ".join(parts), params


class _Reader:
    """Connections to index.db, one per worker thread, so independent aggregates run at
    once (sqlite3 releases the GIL while a statement runs)."""

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
            for pragma in ("query_only = ON", "mmap_size = 1073741824", "cache_size = -65536",
                           "temp_store = MEMORY"):
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

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        with self._lock:
            for conn in self._conns:
                conn.close()
            self._conns.clear()


@dataclass
class _Agg:
    """Sufficient statistics of one arm's values: n, Σx, Σx², how many are 0 or 1."""

    n: int = 0
    total: float = 0.0
    total_sq: float = 0.0
    n01: int = 0
    n_bool: int | None = None  # booleans among the raw values, when counted
    raw_n: int | None = None  # raw values (entries) behind the n units, when they differ
    has_bool: bool = False  # a boolean was seen (when n_bool was not counted)

    @property
    def raw(self) -> int:
        return self.n if self.raw_n is None else self.raw_n

    @property
    def binary(self) -> bool:
        return self.n > 0 and self.n01 == self.n

    @property
    def moments(self) -> Moments:
        from promptlab.stats import Moments

        return Moments.from_sums(self.n, self.total, self.total_sq)


@dataclass
class _PairAgg:
    """Sufficient statistics of matched items (per-item means va, vb)."""

    n: int = 0
    sa: float = 0.0
    sb: float = 0.0
    saa: float = 0.0
    sbb: float = 0.0
    sab: float = 0.0
    n01: int = 0  # items whose va and vb are both 0 or 1
    a_only: int = 0  # va = 1, vb = 0
    b_only: int = 0  # va = 0, vb = 1
    both: int = 0  # va = 1, vb = 1


def _agg_columns(expr: str) -> str:
    return f"count({expr}), total({expr}), total(({expr}) * ({expr})), total(({expr}) IN (0, 1))"


def _agg_from(row: Sequence[Any], offset: int = 0) -> _Agg:
    n, s, ss, n01 = row[offset:offset + 4]
    return _Agg(int(n or 0), float(s or 0), float(ss or 0), int(n01 or 0))


@dataclass
class _Target:
    prompt: str | None
    experiment: str | None
    arms: list[Arm]
    spec: Any = None  # promptlab.experiments.Experiment, when its file was read
    warnings: list[str] = field(default_factory=list)


# -- the engine ---------------------------------------------------------------------------


class _Engine:
    """One comparison run: resolve what to compare, aggregate in SQL, test, adjust."""

    def __init__(self, index: Index, reader: _Reader, settings: Settings):
        self.index = index
        self.reader = reader
        self.settings = settings
        self.where_dir = str(index.log_dir)

    # -- resolving prompt, experiment and versions --------------------------------------

    def run(self, versions: list[str], *, prompt: str | None, experiment: str | None,
            metrics: list[str] | None, alpha: float, scope_bounds: tuple[Any, Any],
            correction: str, sequential: bool) -> Comparison:
        if experiment:
            target = self._resolve_experiment(versions, prompt, experiment, explicit=True)
        else:
            target = self._resolve_versions(versions, prompt)
        scope = Scope(target.prompt, target.experiment, *scope_bounds)
        primary, guardrails, directions = self._metric_config(target.spec)
        baseline = target.arms[0]
        pairs = [self._compare_pair(scope, target, baseline, arm, metrics, primary, guardrails,
                                    directions, alpha, sequential)
                 for arm in target.arms[1:]]
        self._srm(scope, target, pairs)
        _adjust(pairs, alpha, correction)
        return Comparison(
            prompt=target.prompt, experiment=target.experiment,
            versions=[a.name for a in target.arms], alpha=alpha, correction=correction,
            sequential=sequential, pairs=pairs, warnings=target.warnings, primary=primary,
            guardrails=guardrails,
        )

    def _resolve_experiment(self, versions: list[str], prompt: str | None, experiment: str,
                            explicit: bool) -> _Target:
        rows = self.reader.all(
            "SELECT variant, count(*) FROM entries WHERE experiment = ? GROUP BY variant",
            (experiment,))
        variants = {v: n for v, n in rows if v is not None}
        if not rows:
            known = [r[0] for r in self.reader.all(
                "SELECT DISTINCT experiment FROM rollup WHERE experiment != '' ORDER BY 1")]
            hint = (f"experiments logged: {', '.join(known)}" if known else
                    f"run it first: promptlab experiment run {experiment}")
            raise CompareError(f"no entries for experiment {experiment!r} in "
                               f"{self.where_dir}; {hint}")
        prompt_rows = self.reader.all(
            "SELECT prompt_id, prompt_version, sum(calls) FROM rollup WHERE experiment = ? "
            "GROUP BY 1, 2", (experiment,))
        prompts = sorted({p for p, _, _ in prompt_rows if p})
        spec, warnings = self._load_spec(experiment, explicit)
        if prompt is not None:
            if prompt not in prompts:
                raise CompareError(f"experiment {experiment!r} has no entries for prompt "
                                   f"{prompt!r}; its prompts: {', '.join(prompts) or 'none'}")
        elif len(prompts) == 1:
            prompt = prompts[0]
        elif spec is not None and spec.prompt in prompts:
            prompt = spec.prompt
        elif len(prompts) > 1:
            raise CompareError(f"experiment {experiment!r} logged several prompts "
                               f"({', '.join(prompts)}); choose one with --prompt ID")
        if not versions:
            if spec is not None:
                versions = [v for v in spec.active_variants if v in variants]
            else:
                versions = sorted(variants)
            if len(versions) < 2:
                raise CompareError(f"experiment {experiment!r} has entries for "
                                   f"{len(versions)} variant(s) only "
                                   f"({', '.join(versions) or 'none'}); nothing to compare")
        logged_versions = {v for p, v, _ in prompt_rows if v and (prompt is None or p == prompt)}
        arms = []
        for name in versions:
            if name in variants:
                arms.append(Arm(name, "variant"))
            elif name in logged_versions:
                arms.append(Arm(name, "prompt_version"))
            else:
                shown = ", ".join(f"{v} ({n} calls)" for v, n in sorted(variants.items()))
                raise CompareError(f"no entries for {name} in experiment {experiment!r} "
                                   f"(variants logged: {shown or 'none'})")
        return _Target(prompt, experiment, arms, spec, warnings)

    def _resolve_versions(self, versions: list[str], prompt: str | None) -> _Target:
        marks = ", ".join("?" * len(versions))
        sql = (f"SELECT prompt_id, prompt_version, experiment, sum(calls) FROM rollup "
               f"WHERE prompt_version IN ({marks})")
        params: list[Any] = list(versions)
        if prompt is not None:
            sql += " AND prompt_id = ?"
            params.append(prompt)
        rows = self.reader.all(sql + " GROUP BY 1, 2, 3", params)
        by_prompt: dict[str, dict[str, int]] = {}
        for p, v, _, calls in rows:
            if p:
                by_prompt.setdefault(p, {})
                by_prompt[p][v] = by_prompt[p].get(v, 0) + int(calls)
        labels = self._label_matches(versions, prompt)
        for p, found in labels.items():
            for v in found:
                by_prompt.setdefault(p, {}).setdefault(v, 0)
        if prompt is not None:
            have = by_prompt.get(prompt, {})
            missing = [v for v in versions if v not in have]
            if missing:
                self._explain_missing_for_prompt(prompt, missing)
        else:
            complete = sorted(p for p, have in by_prompt.items()
                              if all(v in have for v in versions))
            if len(complete) > 1:
                listed = "; ".join(
                    f"{p} ({', '.join(f'{v}: {by_prompt[p][v]} calls' for v in versions)})"
                    for p in complete)
                raise CompareError(f"{' and '.join(versions)} are logged for several prompts: "
                                   f"{listed}; choose one with --prompt ID")
            if not complete:
                experiment = self._experiment_with_variants(versions)
                if experiment is not None:
                    return self._resolve_experiment(versions, None, experiment, explicit=False)
                self._explain_missing(versions, by_prompt)
            prompt = complete[0]
        logged = {pv for p, pv, _, _ in rows if p == prompt}
        arms = [Arm(v, "prompt_version" if v in logged or v not in labels.get(prompt, ())
                    else "prompt_label") for v in versions]
        target = _Target(prompt, None, arms)
        experiments = sorted({e for p, v, e, _ in rows if p == prompt})
        if experiments and all(a.column == "prompt_version" for a in arms):
            if len(experiments) == 1 and experiments[0]:
                inferred = self._resolve_experiment(versions, prompt, experiments[0],
                                                    explicit=False)
                return inferred
            if len(experiments) > 1:
                named = [e for e in experiments if e]
                live = " and live traffic" if "" in experiments else ""
                target.warnings.append(
                    f"these entries come from experiment(s) {', '.join(named)}{live}; they are "
                    "compared together, unpaired; pass --experiment NAME to compare one "
                    "experiment")
        return target

    def _label_matches(self, versions: list[str], prompt: str | None) -> dict[str, set[str]]:
        """Versions given as labels (`production`): prompt id -> the names found as labels."""
        candidates = [v for v in versions if not _looks_like_version(v)]
        if not candidates:
            return {}
        marks = ", ".join("?" * len(candidates))
        sql = (f"SELECT DISTINCT e.prompt_id, e.prompt_label FROM entries e WHERE "
               f"e.kind = 'llm' AND e.prompt_label IN ({marks})")
        params: list[Any] = list(candidates)
        if prompt is not None:
            sql += " AND e.prompt_id = ?"
            params.append(prompt)
        found: dict[str, set[str]] = {}
        for p, label in self.reader.all(sql, params):
            if p:
                found.setdefault(p, set()).add(label)
        return found

    def _experiment_with_variants(self, versions: list[str]) -> str | None:
        marks = ", ".join("?" * len(versions))
        rows = self.reader.all(
            f"SELECT experiment, variant FROM entries WHERE experiment IS NOT NULL AND "
            f"variant IN ({marks}) GROUP BY 1, 2", versions)
        have: dict[str, set[str]] = {}
        for experiment, variant in rows:
            have.setdefault(experiment, set()).add(variant)
        complete = sorted(e for e, vs in have.items() if set(versions) <= vs)
        if len(complete) > 1:
            raise CompareError(f"{' and '.join(versions)} are variants of several experiments: "
                               f"{', '.join(complete)}; choose one with --experiment NAME")
        return complete[0] if complete else None

    def _explain_missing_for_prompt(self, prompt: str, missing: list[str]) -> None:
        rows = self.reader.all(
            "SELECT prompt_version, sum(calls) FROM rollup WHERE prompt_id = ? GROUP BY 1 "
            "ORDER BY 1", (prompt,))
        if not rows:
            prompts = [r[0] for r in self.reader.all(
                "SELECT DISTINCT prompt_id FROM rollup WHERE prompt_id != '' ORDER BY 1")]
            raise CompareError(f"no entries for prompt {prompt!r} in {self.where_dir}; "
                               f"prompts logged: {', '.join(prompts) or 'none'}")
        logged = ", ".join(f"{v or '(no version)'} ({n} calls)" for v, n in rows)
        raise CompareError(f"no entries for {missing[0]} of prompt {prompt!r} in "
                           f"{self.where_dir}; versions logged: {logged}")

    def _explain_missing(self, versions: list[str], by_prompt: dict[str, dict[str, int]]
                         ) -> None:
        logged = {v: sorted(p for p, have in by_prompt.items() if v in have) for v in versions}
        absent = [v for v, ps in logged.items() if not ps]
        if absent:
            all_versions = sorted(
                {r[0] for r in self.reader.all(
                    "SELECT DISTINCT prompt_version FROM rollup WHERE prompt_version != ''")},
                key=_version_key)
            raise CompareError(f"no entries for version {absent[0]} in {self.where_dir}; "
                               f"versions logged: {', '.join(all_versions) or 'none'}")
        where = "; ".join(f"{v} is logged for {', '.join(ps)}" for v, ps in logged.items())
        raise CompareError(f"no prompt has entries for all of {', '.join(versions)} ({where}); "
                           "choose the prompt with --prompt ID")

    def _load_spec(self, experiment: str, explicit: bool) -> tuple[Any, list[str]]:
        path = self.settings.experiments_dir / f"{experiment}.toml"
        if not path.is_file():
            return None, []
        from promptlab.errors import PromptlabError
        from promptlab.experiments import load_experiment

        try:
            return load_experiment(path, self.settings), []
        except PromptlabError as exc:
            if explicit:
                raise
            return None, [f"ignoring {path.name}: {exc}"]

    def _metric_config(self, spec: Any) -> tuple[str | None, tuple[str, ...], dict[str, str]]:
        directions = {name: b.direction for name, b in BUILTINS.items()}
        if spec is None:
            return None, (), directions
        for scorer in spec.scorers:
            directions[scorer.name] = scorer.direction
        return spec.metrics.primary, tuple(spec.metrics.guardrails), directions

    # -- one pair ----------------------------------------------------------------------

    def _compare_pair(self, scope: Scope, target: _Target, a: Arm, b: Arm,
                      wanted: list[str] | None, primary: str | None,
                      guardrails: tuple[str, ...], directions: dict[str, str], alpha: float,
                      sequential: bool) -> PairComparison:
        warnings: list[str] = []
        paired = False
        if scope.experiment is not None:
            common, only_a, only_b = self._item_overlap(scope, a, b)
            paired = common > 0
            if paired and (only_a or only_b):
                warnings.append(
                    f"paired on {common} items logged under both versions; dropped "
                    f"{only_a} item(s) logged only for {a.name} and {only_b} only for {b.name}")
        fast = self._fast_scores(scope, a, b)
        score_names = self._score_names(scope, a, b, fast)
        score_metrics = [n for n in self._requested(wanted, primary, guardrails, score_names)
                         if n in score_names]
        # Entry sums and (on the fast path) score sums all at once, on both readers.
        builtins = list(dict.fromkeys(
            [*DEFAULT_BUILTINS, *(n for n in [*(wanted or ()), primary, *guardrails]
                                  if n in BUILTINS)]))
        tasks: list[Callable[[], Any]] = [lambda arm=arm: self._entry_agg(scope, arm, builtins)
                                          for arm in (a, b)]
        early = fast is not None and not paired
        if early:
            tasks += [(lambda arm=arm, n=n: self._score_agg(scope, arm, n, False, fast))
                      for n in score_metrics for arm in (a, b)]
        done = self.reader.run(tasks)
        entry_stats = done[:2]
        for arm, st in zip((a, b), entry_stats, strict=True):
            if st["entries"] == 0:
                self._no_entries(scope, target, arm)
        available = set(score_names) | {
            name for name in builtins if any(st["builtins"][name].n for st in entry_stats)}
        names, roles = self._choose_metrics(wanted, primary, guardrails, score_names,
                                            available)
        for arm, st in zip((a, b), entry_stats, strict=True):
            if st["errors"] / st["entries"] > MANY_ERRORS:
                warnings.append(
                    f"{arm.name}: {st['errors'] / st['entries']:.0%} of calls failed "
                    f"({st['errors']} of {st['entries']}); latency, tokens and cost cover "
                    "successful calls only")
        skipped = self._non_numeric(scope, (a, b), entry_stats, score_names)
        for name, count in sorted(skipped.items()):
            if name not in score_names:
                warnings.append(f"score `{name}` has no numeric values ({count} non-numeric "
                                "value(s) skipped)")
        if paired:
            results = self._paired_metrics(scope, a, b, names, directions, alpha, sequential)
        else:
            unit_mode = entry_stats[0]["unit_mode"] or entry_stats[1]["unit_mode"]
            if unit_mode and not all(st["unit_mode"] for st in entry_stats):
                entry_stats = self.reader.run(
                    [lambda arm=arm: self._entry_agg(scope, arm, builtins, True)
                     for arm in (a, b)])
            scores: dict[str, tuple[_Agg, _Agg]] = {}
            if early and not unit_mode:
                it = iter(done[2:])
                scores = {n: (next(it), next(it)) for n in score_metrics}
            results = self._unpaired_metrics(scope, a, b, names, directions, alpha, sequential,
                                             entry_stats, fast, unit_mode, scores)
        for m in results:
            m.role = roles.get(m.name)
            if skipped.get(m.name):
                m.warnings.append(f"{skipped[m.name]} non-numeric `{m.name}` value(s) skipped")
        units = (entry_stats[0]["units"], entry_stats[1]["units"])
        return PairComparison(a.name, b.name, "paired" if paired else "unpaired", results,
                              warnings=warnings, units=units)

    def _no_entries(self, scope: Scope, target: _Target, arm: Arm) -> None:
        parts = [f"no entries for {arm.name}"]
        if target.prompt:
            parts.append(f"of prompt {target.prompt!r}")
        if target.experiment:
            parts.append(f"in experiment {target.experiment!r}")
        if scope.since is not None or scope.until is not None:
            parts.append("in the chosen time window (--since/--until)")
        raise CompareError(" ".join(parts) + f" in {self.where_dir}")

    def _requested(self, wanted: list[str] | None, primary: str | None,
                   guardrails: tuple[str, ...], score_names: list[str]) -> list[str]:
        if wanted:
            return list(dict.fromkeys(wanted))
        if primary or guardrails:
            return list(dict.fromkeys([*([primary] if primary else []), *guardrails]))
        return sorted(score_names)

    def _choose_metrics(self, wanted: list[str] | None, primary: str | None,
                        guardrails: tuple[str, ...], score_names: list[str],
                        available: set[str]) -> tuple[list[str], dict[str, str]]:
        roles: dict[str, str] = {}
        if primary:
            roles[primary] = "primary"
        for g in guardrails:
            roles.setdefault(g, "guardrail")
        if wanted:
            unknown = [m for m in wanted if m not in available and m not in BUILTINS]
            if unknown:
                raise CompareError(f"no metric {unknown[0]!r} in these entries; metrics "
                                   f"logged: {', '.join(sorted(available)) or 'none'}")
        names = self._requested(wanted, primary, guardrails, score_names)
        if not wanted and not (primary or guardrails):
            names += [b for b in DEFAULT_BUILTINS if b in available]
        return names, roles

    def _item_overlap(self, scope: Scope, a: Arm, b: Arm) -> tuple[int, int, int]:
        where, params = scope.where(a, b)
        row = self.reader.one(
            f"SELECT total(ha AND hb), total(ha AND NOT hb), total(hb AND NOT ha) FROM "
            f"(SELECT max({a.cond}) AS ha, max({b.cond}) AS hb FROM entries e WHERE {where} "
            f"AND e.item_id IS NOT NULL GROUP BY e.item_id)", [a.name, b.name, *params])
        return int(row[0]), int(row[1]), int(row[2])

    def _fast_scores(self, scope: Scope, a: Arm, b: Arm) -> str | None:
        """Which covering index of `scores` answers per-arm aggregates without a join."""
        if scope.since is not None or scope.until is not None:
            return None
        if scope.experiment is None and a.column == b.column == "prompt_version":
            return "prompt"
        if scope.experiment is not None and a.column == b.column == "variant":
            prompts = self.reader.all(
                "SELECT DISTINCT prompt_id FROM rollup WHERE experiment = ?",
                (scope.experiment,))
            if len(prompts) <= 1:
                return "experiment"
        return None

    def _fast_where(self, scope: Scope, arm: Arm, fast: str) -> tuple[str, list[Any]]:
        if fast == "prompt":
            return "prompt_id = ? AND prompt_version = ?", [scope.prompt, arm.name]
        return "experiment = ? AND variant = ?", [scope.experiment, arm.name]

    def _score_names(self, scope: Scope, a: Arm, b: Arm, fast: str | None) -> list[str]:
        names: set[str] = set()
        if fast:
            for arm in (a, b):
                where, params = self._fast_where(scope, arm, fast)
                # A loose index scan: one seek per distinct name.
                rows = self.reader.all(
                    f"WITH RECURSIVE n(name) AS (SELECT min(name) FROM scores WHERE {where} "
                    f"UNION ALL SELECT (SELECT min(name) FROM scores WHERE {where} AND "
                    f"name > n.name) FROM n WHERE n.name IS NOT NULL) "
                    f"SELECT name FROM n WHERE name IS NOT NULL", [*params, *params])
                names.update(r[0] for r in rows)
        else:
            where, params = scope.where(a, b)
            rows = self.reader.all(
                f"SELECT DISTINCT s.name FROM scores s JOIN entries e ON e.rowid = "
                f"s.entry_rowid WHERE {where}", params)
            names.update(r[0] for r in rows)
        return sorted(names)

    def _entry_agg(self, scope: Scope, arm: Arm, builtins: Sequence[str],
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
        rollup = (scope.since is None and scope.until is None and scope.experiment is None
                  and arm.column == "prompt_version" and scope.prompt is not None)
        if rollup:
            calls, errors = self.reader.one(
                "SELECT total(calls), total(errors) FROM rollup WHERE prompt_id = ? AND "
                "prompt_version = ?", (scope.prompt, arm.name))
            row = self.reader.one(
                f"SELECT 'ok', count(*), count(COALESCE(e.unit_id, e.item_id)){cols} "
                f"FROM entries e WHERE {where} AND e.status != 'error'", params)
            rows = [row, ("error", int(errors), 0)] if row[1] or not errors else [
                ("error", int(errors), 0)]
            if int(calls) != sum(int(r[1]) for r in rows):  # roll-up out of step: count
                rollup = False
        if not rollup:
            rows = self.reader.all(
                f"SELECT e.status, count(*), count(COALESCE(e.unit_id, e.item_id)){cols} "
                f"FROM entries e WHERE {where} GROUP BY e.status", params)
        entries = sum(int(r[1]) for r in rows)
        errors = sum(int(r[1]) for r in rows if r[0] == "error")
        keyed = sum(int(r[2]) for r in rows)
        aggs: dict[str, _Agg] = {}
        for i, (name, _) in enumerate(numeric):
            agg = _Agg()
            for r in rows:
                if r[0] != "error":
                    agg.n += int(r[3 + 3 * i])
                    agg.total += float(r[4 + 3 * i])
                    agg.total_sq += float(r[5 + 3 * i])
            aggs[name] = agg
        aggs["error_rate"] = _Agg(entries, float(errors), float(errors), entries)
        if unit_mode is None:
            unit_mode = keyed > 0
        units = entries
        if unit_mode and entries:
            chosen = [n for n, _ in numeric] + ["error_rate"]
            inner = ", ".join(f"avg({BUILTINS[n].expr}) AS m{i}" for i, n in enumerate(chosen))
            outer = ", ".join(_agg_columns(f"m{i}") for i in range(len(chosen)))
            row = self.reader.one(
                f"SELECT count(*), {outer} FROM (SELECT {inner} FROM entries e WHERE {where} "
                f"GROUP BY {UNIT_KEY})", params)
            units = int(row[0])
            aggs = {name: _agg_from(row, 1 + 4 * i) for i, name in enumerate(chosen)}
        return {"entries": entries, "errors": errors, "units": units, "unit_mode": unit_mode,
                "builtins": aggs}

    def _score_agg(self, scope: Scope, arm: Arm, name: str, unit_mode: bool,
                   fast: str | None) -> _Agg:
        """One score's sums for one arm; counts booleans when cheap (or when it matters)."""
        if not unit_mode and fast:
            where, params = self._fast_where(scope, arm, fast)
            # Scores usually take few distinct values (pass/fail, 1–5): counting rows per
            # value along the covering index is half the work of four aggregates.
            groups = self.reader.all(
                f"SELECT value, count(*) FROM scores WHERE {where} AND name = ? "
                f"GROUP BY value LIMIT {DISTINCT_LIMIT + 1}", [*params, name])
            if len(groups) <= DISTINCT_LIMIT:
                agg = _Agg(sum(c for _, c in groups), math.fsum(v * c for v, c in groups),
                           math.fsum(v * v * c for v, c in groups),
                           sum(c for v, c in groups if v in (0, 1)))
            else:
                agg = _agg_from(self.reader.one(
                    f"SELECT {_agg_columns('value')} FROM scores WHERE {where} AND name = ?",
                    [*params, name]))
            if agg.n <= CHECK_LIMIT:
                agg.n_bool = int(self.reader.one(
                    f"SELECT total(is_bool) FROM scores WHERE {where} AND name = ?",
                    [*params, name])[0])
            elif not agg.binary and agg.n:
                # Counting booleans would read every row; they are stored as 0/1, so a
                # mix can only hide among those values (all-0/1 scores are binary anyway).
                # Look at a bounded sample of those values.
                agg.has_bool = bool(self.reader.one(
                    f"SELECT max(b) FROM (SELECT is_bool AS b FROM scores WHERE {where} AND "
                    f"name = ? AND value IN (0, 1) LIMIT 2000)", [*params, name])[0])
            return agg
        where, params = scope.where(arm)
        source = (f"FROM scores s JOIN entries e ON e.rowid = s.entry_rowid WHERE {where} "
                  f"AND s.name = ?")
        if unit_mode:
            row = self.reader.one(
                f"SELECT {_agg_columns('v')}, total(nb), total(c) FROM (SELECT avg(s.value) "
                f"AS v, total(s.is_bool) AS nb, count(*) AS c {source} GROUP BY {UNIT_KEY})",
                [*params, name])
        else:
            row = self.reader.one(
                f"SELECT {_agg_columns('s.value')}, total(s.is_bool), count(*) {source}",
                [*params, name])
        agg = _agg_from(row)
        agg.n_bool, agg.raw_n = int(row[4]), int(row[5])
        return agg

    def _values(self, scope: Scope, arm: Arm, name: str, unit_mode: bool) -> list[float]:
        """Per-unit (or per-entry) values of one metric for the robustness tests."""
        where, params = scope.where(arm)
        if name in BUILTINS:
            expr, source, extra = BUILTINS[name].expr, f"FROM entries e WHERE {where}", []
        else:
            expr = "s.value"
            source = (f"FROM scores s JOIN entries e ON e.rowid = s.entry_rowid WHERE {where} "
                      f"AND s.name = ?")
            extra = [name]
        if unit_mode:
            sql = f"SELECT avg({expr}) AS v {source} GROUP BY {UNIT_KEY} HAVING v IS NOT NULL"
        else:
            sql = f"SELECT {expr} AS v {source} AND v IS NOT NULL"
        return [r[0] for r in self.reader.all(sql, [*params, *extra])]

    def _non_numeric(self, scope: Scope, arms: tuple[Arm, Arm],
                     entry_stats: list[dict[str, Any]], names: list[str]) -> dict[str, int]:
        """Count score values that are not numbers or booleans (the index skips them) by
        re-reading entries through the index: every entry of a small arm; in a larger one,
        the entries that lack a numeric value for some score."""
        counts: dict[str, int] = {}
        for arm, st in zip(arms, entry_stats, strict=True):
            if st["entries"] > CHECK_LIMIT:
                continue
            where, params = scope.where(arm)
            sql = (f"SELECT e.file_id, e.offset, e.length FROM entries e WHERE {where} AND "
                   f"e.status != 'error'")
            if st["entries"] > NON_NUMERIC_CHECK_LIMIT:
                sql += (" AND (SELECT count(*) FROM scores s WHERE s.entry_rowid = e.rowid) < ?"
                        f" LIMIT {NON_NUMERIC_CHECK_LIMIT}")
                params = [*params, max(len(names), 1)]
            for file_id, offset, length in self.reader.all(sql, params):
                entry = self.index.read_entry(file_id, offset, length)
                scores = entry.get("scores") if entry else None
                if not isinstance(scores, dict):
                    continue
                for key, value in scores.items():
                    if not _is_number(value):
                        counts[str(key)] = counts.get(str(key), 0) + 1
        return counts

    # -- unpaired ------------------------------------------------------------------------

    def _unpaired_metrics(self, scope: Scope, a: Arm, b: Arm, names: list[str],
                          directions: dict[str, str], alpha: float, sequential: bool,
                          entry_stats: list[dict[str, Any]], fast: str | None, unit_mode: bool,
                          scores: dict[str, tuple[_Agg, _Agg]]) -> list[MetricResult]:
        todo = [n for n in names if n not in BUILTINS and n not in scores]
        fetched = self.reader.run(
            [(lambda arm=arm, n=n: self._score_agg(scope, arm, n, unit_mode, fast))
             for n in todo for arm in (a, b)])
        aggs = dict(scores)
        aggs.update({n: (fetched[2 * i], fetched[2 * i + 1]) for i, n in enumerate(todo)})
        for n in names:
            if n in BUILTINS:
                aggs[n] = (entry_stats[0]["builtins"][n], entry_stats[1]["builtins"][n])
        units = entry_stats[0]["units"] + entry_stats[1]["units"]
        want_values = [n for n in names
                       if not (aggs[n][0].binary and aggs[n][1].binary)
                       and min(aggs[n][0].n, aggs[n][1].n) >= 2 and units <= VALUES_LIMIT]
        got = self.reader.run(
            [(lambda arm=arm, n=n: self._values(scope, arm, n, unit_mode))
             for n in want_values for arm in (a, b)])
        values = {n: (got[2 * i], got[2 * i + 1]) for i, n in enumerate(want_values)}
        return [
            _unpaired_result(n, directions.get(n, "higher"), aggs[n][0], aggs[n][1],
                             values.get(n), a.name, b.name, alpha, sequential,
                             skipped_values=units > VALUES_LIMIT)
            for n in names
        ]

    # -- paired --------------------------------------------------------------------------

    def _paired_metrics(self, scope: Scope, a: Arm, b: Arm, names: list[str],
                        directions: dict[str, str], alpha: float, sequential: bool
                        ) -> list[MetricResult]:
        aggs = self.reader.run([lambda n=n: self._paired_agg(scope, a, b, n) for n in names])
        want = [n for n, agg in zip(names, aggs, strict=True)
                if agg.n >= 2 and agg.n01 < agg.n and agg.n <= VALUES_LIMIT]
        fetched = self.reader.run([lambda n=n: self._paired_values(scope, a, b, n)
                                   for n in want])
        diffs = dict(zip(want, fetched, strict=True))
        return [
            _paired_result(n, directions.get(n, "higher"), agg, diffs.get(n), a.name, b.name,
                           alpha, sequential, skipped_values=agg.n > VALUES_LIMIT)
            for n, agg in zip(names, aggs, strict=True)
        ]

    def _paired_source(self, scope: Scope, a: Arm, b: Arm, name: str
                       ) -> tuple[str, list[Any]]:
        where, params = scope.where(a, b)
        if name in BUILTINS:
            expr, source, extra = BUILTINS[name].expr, f"FROM entries e WHERE {where}", []
        else:
            expr = "s.value"
            source = (f"FROM scores s JOIN entries e ON e.rowid = s.entry_rowid WHERE {where} "
                      f"AND s.name = ?")
            extra = [name]
        inner = (f"SELECT avg(CASE WHEN {a.cond} THEN {expr} END) AS va, "
                 f"avg(CASE WHEN {b.cond} THEN {expr} END) AS vb {source} "
                 f"AND e.item_id IS NOT NULL GROUP BY e.item_id")
        return inner, [a.name, b.name, *params, *extra]

    def _paired_agg(self, scope: Scope, a: Arm, b: Arm, name: str) -> _PairAgg:
        inner, params = self._paired_source(scope, a, b, name)
        row = self.reader.one(
            f"SELECT count(*), total(va), total(vb), total(va * va), total(vb * vb), "
            f"total(va * vb), total(va IN (0, 1) AND vb IN (0, 1)), "
            f"total(va = 1 AND vb = 0), total(va = 0 AND vb = 1), total(va = 1 AND vb = 1) "
            f"FROM ({inner}) WHERE va IS NOT NULL AND vb IS NOT NULL", params)
        return _PairAgg(int(row[0]), *(float(x) for x in row[1:6]),
                        *(int(x) for x in row[6:10]))

    def _paired_values(self, scope: Scope, a: Arm, b: Arm, name: str) -> list[float]:
        inner, params = self._paired_source(scope, a, b, name)
        return [r[0] for r in self.reader.all(
            f"SELECT vb - va FROM ({inner}) WHERE va IS NOT NULL AND vb IS NOT NULL", params)]

    # -- sample ratio mismatch -----------------------------------------------------------

    def _srm(self, scope: Scope, target: _Target, pairs: list[PairComparison]) -> None:
        """χ² of units per variant against the experiment's weights (split traffic only)."""
        spec = target.spec
        if spec is None or any(p.design == "paired" for p in pairs):
            return
        if not all(arm.column == "variant" and spec.variants.get(arm.name, 0) > 0
                   for arm in target.arms):
            return
        from promptlab.stats import srm_test

        units = [pairs[0].units[0], *(p.units[1] for p in pairs)]
        weights = [spec.variants[arm.name] for arm in target.arms]
        res = srm_test(units, weights)
        srm = {"p_value": res.p_value, "flag": res.flag, "observed": res.observed,
               "expected": [round(e, 3) for e in res.expected]}
        if res.reason:
            srm["skipped"] = res.reason
        for pair in pairs:
            pair.srm = srm
        if res.flag:
            target.warnings.append(
                f"sample ratio mismatch: {' / '.join(map(str, res.observed))} units against "
                f"{' / '.join(f'{e:.0f}' for e in res.expected)} expected from the weights "
                f"(p = {_fmt_p(res.p_value)}); the split is broken, do not trust these results "
                "until you find why")


def _adjust(pairs: list[PairComparison], alpha: float, correction: str) -> None:
    from promptlab.stats import adjust_p_values

    flat = [(pair, m) for pair in pairs for m in pair.metrics]
    adjusted = adjust_p_values([m.p_value for _, m in flat], correction)
    for (pair, m), p_adjusted in zip(flat, adjusted, strict=True):
        m.p_adjusted = p_adjusted
        _verdict(m, pair.b, alpha)


def _verdict(m: MetricResult, b: str, alpha: float) -> None:
    if m.p_adjusted is None or m.diff is None:
        m.significant = False
        m.verdict = "not enough data"
        return
    m.significant = m.p_adjusted < alpha
    if not m.significant or m.diff == 0:
        m.significant = m.significant and m.diff != 0
        m.verdict = "no significant difference"
        return
    better = (m.diff > 0) == (m.direction == "higher")
    m.verdict = f"{b} better" if better else f"{b} worse"


# -- per-metric statistics (pure: sufficient statistics in, MetricResult out) ---------------


def _unpaired_result(name: str, direction: str, agg_a: _Agg, agg_b: _Agg,
                     values: tuple[list[float], list[float]] | None, a: str, b: str,
                     alpha: float, sequential: bool, skipped_values: bool = False
                     ) -> MetricResult:
    from promptlab import stats as S

    binary = (agg_a.n + agg_b.n > 0 and (agg_a.binary or agg_a.n == 0)
              and (agg_b.binary or agg_b.n == 0))
    kind = "binary" if binary else "numeric"
    na, nb = agg_a.n, agg_b.n
    ma, mb = agg_a.moments, agg_b.moments
    if binary:
        xa, xb = round(agg_a.total), round(agg_b.total)
        arm_a = ArmSummary(na, xa / na if na else None, S.wilson_interval(xa, na, alpha))
        arm_b = ArmSummary(nb, xb / nb if nb else None, S.wilson_interval(xb, nb, alpha))
    else:
        arm_a = ArmSummary(na, ma.mean if na else None, S.mean_interval(ma, alpha))
        arm_b = ArmSummary(nb, mb.mean if nb else None, S.mean_interval(mb, alpha))
    result = MetricResult(name, kind, None, direction, arm_a, arm_b, n_total=na + nb)
    result.warnings.extend(_sample_warnings(name, agg_a, agg_b, a, b))
    if min(na, nb) < 2:
        return result
    if binary:
        test = S.compare_proportions(xa, na, xb, nb, alpha)
        pa, pb = xa / na, xb / nb
        se = math.sqrt(pa * (1 - pa) / na + pb * (1 - pb) / nb)
        lift = S.relative_lift(S.proportion_moments(xa, na), S.proportion_moments(xb, nb), alpha)
        chance = S.chance_b_beats_a_binary(xa, na, xb, nb)
        n_eff = 2 / (1 / na + 1 / nb)
        result.mde = S.mde_two_proportions(pa, n_eff, POWER, alpha)
        result.n_needed = _ceil(S.n_two_proportions(pa, pb, POWER, alpha))
    else:
        test = S.welch_t_test(ma, mb, alpha)
        se = test.se if test.se is not None else 0.0
        lift = S.relative_lift(ma, mb, alpha)
        chance = S.chance_b_beats_a_normal(test.estimate, se)
        sd = math.sqrt((ma.var + mb.var) / 2)
        n_eff = 2 / (1 / na + 1 / nb)
        result.mde = S.mde_t(n_eff, sd, POWER, alpha)
        result.n_needed = _ceil(S.n_t(test.estimate, sd, POWER, alpha))
        result.robust = _robust_unpaired(values, alpha, test, skipped_values, result)
    _fill(result, test, lift, chance, se, alpha, sequential, na + nb)
    return result


def _paired_result(name: str, direction: str, agg: _PairAgg, diffs: list[float] | None,
                   a: str, b: str, alpha: float, sequential: bool,
                   skipped_values: bool = False) -> MetricResult:
    from promptlab import stats as S

    n = agg.n
    ma = S.Moments.from_sums(n, agg.sa, agg.saa)
    mb = S.Moments.from_sums(n, agg.sb, agg.sbb)
    md = S.Moments.from_sums(n, agg.sb - agg.sa, agg.sbb - 2 * agg.sab + agg.saa)
    binary = n > 0 and agg.n01 == n
    if binary:
        arm_a = ArmSummary(n, ma.mean if n else None, S.wilson_interval(round(agg.sa), n, alpha))
        arm_b = ArmSummary(n, mb.mean if n else None, S.wilson_interval(round(agg.sb), n, alpha))
    else:
        arm_a = ArmSummary(n, ma.mean if n else None, S.mean_interval(ma, alpha))
        arm_b = ArmSummary(n, mb.mean if n else None, S.mean_interval(mb, alpha))
    result = MetricResult(name, "binary" if binary else "numeric", None, direction, arm_a,
                          arm_b, n_total=n)
    a_agg = _Agg(n, agg.sa, agg.saa, n if binary else 0)
    b_agg = _Agg(n, agg.sb, agg.sbb, n if binary else 0)
    if n == 0:
        result.warnings.append(f"no item has a `{name}` value under both {a} and {b}")
        return result
    result.warnings.extend(_sample_warnings(name, a_agg, b_agg, a, b, unit="pairs"))
    if n < 2:
        return result
    cov = (agg.sab - agg.sa * agg.sb / n) / (n - 1)
    lift = S.relative_lift(ma, mb, alpha, cov=cov, paired=True)
    se = md.se
    chance = S.chance_b_beats_a_normal(md.mean, se)
    if binary:
        neither = n - agg.a_only - agg.b_only - agg.both
        disc = agg.a_only + agg.b_only
        mc = S.mcnemar_test(agg.a_only, agg.b_only, exact=disc <= EXACT_MCNEMAR_MAX)
        ci = S.paired_proportions_interval(agg.both, agg.a_only, agg.b_only, neither, alpha)
        test = S.TestResult(mc.test, md.mean, ci, mc.p_value, mc.statistic, mc.df, se)
        psi = disc / n
        result.mde = S.mde_mcnemar(psi, n, POWER, alpha)
        result.n_needed = _ceil(S.n_mcnemar(psi, md.mean, POWER, alpha))
    else:
        test = S.paired_t_test(md, alpha)
        result.mde = S.mde_t(n, md.sd, POWER, alpha, paired=True)
        result.n_needed = _ceil(S.n_t(md.mean, md.sd, POWER, alpha, paired=True))
        result.robust = _robust_paired(diffs, alpha, test, skipped_values, result)
    _fill(result, test, lift, chance, se, alpha, sequential, n)
    return result


def _fill(result: MetricResult, test: TestResult, lift: TestResult, chance: float | None,
          se: float, alpha: float, sequential: bool, n: int) -> None:
    from promptlab.stats import sequential_test

    result.test = test.test
    result.diff = test.estimate
    result.diff_ci = test.ci
    result.p_value = test.p_value
    result.se = se
    if result.a.mean:  # a relative lift over a zero baseline is undefined
        result.lift, result.lift_ci = lift.estimate, lift.ci
    if sequential:
        ci, p = sequential_test(test.estimate, se, n, alpha)
        result.diff_ci, result.p_value = ci, p
        result.test = f"{test.test} (sequential)"
        if lift.se is not None and result.lift is not None:
            result.lift_ci, _ = sequential_test(lift.estimate, lift.se, n, alpha)
    if chance is not None and result.direction == "lower":
        chance = 1 - chance
    result.chance_b_better = chance


def _robust_unpaired(values: tuple[list[float], list[float]] | None, alpha: float,
                     test: TestResult, skipped: bool, result: MetricResult
                     ) -> dict[str, Any]:
    from promptlab import stats as S

    if values is None:
        why = f"more than {VALUES_LIMIT} units" if skipped else "not enough data"
        return {"test": "mann_whitney", "p_value": None, "skipped": why}
    va, vb = values
    mw = S.mann_whitney_test(va, vb)
    out: dict[str, Any] = {"test": "mann_whitney", "p_value": mw.p_value,
                           "u": mw.statistic, "prob_superiority": mw.estimate}
    if _heavy_tailed(va) or _heavy_tailed(vb):
        out["bootstrap_ci"] = _pair(S.bootstrap_interval(va, vb, alpha=alpha))
    _disagree(result, test, mw.p_value, alpha, "Welch t", "Mann–Whitney")
    return out


def _robust_paired(diffs: list[float] | None, alpha: float, test: TestResult, skipped: bool,
                   result: MetricResult) -> dict[str, Any]:
    from promptlab import stats as S

    if diffs is None:
        why = f"more than {VALUES_LIMIT} pairs" if skipped else "not enough data"
        return {"test": "wilcoxon_pratt", "p_value": None, "skipped": why}
    w = S.wilcoxon_signed_rank_test(diffs)
    out: dict[str, Any] = {"test": "wilcoxon_pratt", "p_value": w.p_value, "v": w.statistic,
                           "median_diff": w.estimate}
    if _heavy_tailed(diffs):
        out["bootstrap_ci"] = _pair(S.bootstrap_interval(diffs, alpha=alpha))
    _disagree(result, test, w.p_value, alpha, "the paired t-test", "Wilcoxon signed-rank")
    return out


def _disagree(result: MetricResult, test: TestResult, p_robust: float | None, alpha: float,
              main: str, robust: str) -> None:
    if test.p_value is None or p_robust is None:
        return
    if (test.p_value < alpha) != (p_robust < alpha):
        result.warnings.append(
            f"{main} (p = {_fmt_p(test.p_value)}) and {robust} (p = {_fmt_p(p_robust)}) "
            "disagree: outliers or skew drive the difference; look at the distributions")


def _heavy_tailed(values: Sequence[float]) -> bool:
    """Sample skewness beyond ±1 (latency, cost): the bootstrap interval is reported too."""
    import numpy as np

    x = np.asarray(values, dtype=float)
    if x.size < 10:
        return False
    sd = x.std()
    if sd == 0:
        return False
    return abs(float(((x - x.mean()) ** 3).mean() / sd ** 3)) > 1


def _sample_warnings(name: str, agg_a: _Agg, agg_b: _Agg, a: str, b: str,
                     unit: str = "units") -> list[str]:
    out: list[str] = []
    na, nb = agg_a.n, agg_b.n
    if na == 0 and nb == 0:
        out.append(f"no values for `{name}` in either version")
        return out
    if na == 0 or nb == 0:
        has, lacks = (b, a) if na == 0 else (a, b)
        out.append(f"`{name}` was logged only for {has}, not for {lacks}")
        return out
    if min(na, nb) < 2:
        out.append(f"not enough data: {a} has {na} and {b} has {nb} {unit} with `{name}` "
                   "(a test needs 2 or more on each side)")
    elif min(na, nb) < SMALL_SAMPLE:
        out.append(f"small sample ({a} n={na}, {b} n={nb}): the verdict is fragile")
    ma, mb = agg_a.moments, agg_b.moments
    if (na >= 2 and nb >= 2 and ma.var == 0 and mb.var == 0 and ma.mean == mb.mean
            and not (name == "error_rate" and ma.mean == 0)):  # no errors: nothing to say
        out.append(f"every `{name}` value is {_fmt_num(ma.mean)} in both versions")
    if all(agg.n_bool is not None for agg in (agg_a, agg_b)):
        bools = (agg_a.n_bool or 0) + (agg_b.n_bool or 0)
        raw = agg_a.raw + agg_b.raw
        if 0 < bools < raw:
            out.append(f"`{name}` mixes booleans and numbers ({bools} booleans, {raw - bools} "
                       "numbers); booleans count as 0 and 1")
    elif agg_a.has_bool or agg_b.has_bool:
        out.append(f"`{name}` mixes booleans and numbers; booleans count as 0 and 1")
    return out


def _ceil(value: float | None) -> int | None:
    if value is None or not math.isfinite(value):
        return None
    return math.ceil(value - 1e-9)


def _is_number(value: Any) -> bool:
    return isinstance(value, bool) or (isinstance(value, int | float) and math.isfinite(value))


def _looks_like_version(name: str) -> bool:
    return len(name) > 1 and name[0] == "v" and name[1:].isdigit()


def _version_key(name: str) -> tuple[int, str]:
    return (int(name[1:]), name) if _looks_like_version(name) else (1 << 30, name)


# -- the text report ----------------------------------------------------------------------


def format_comparison(cmp: Comparison, fmt: str = "simple") -> str:
    """The table report of a Comparison (what `promptlab compare` prints)."""
    from tabulate import tabulate

    blocks: list[str] = []
    n_tests = sum(1 for p in cmp.pairs for m in p.metrics if m.p_value is not None)
    adjusted = cmp.correction != "none" and n_tests > 1
    p_head = {"holm": "p (Holm)", "bh": "p (BH)"}.get(cmp.correction, "p") if adjusted else "p"
    level = f"{1 - cmp.alpha:.0%}" if (1 - cmp.alpha) * 100 % 1 == 0 else f"{1 - cmp.alpha:.1%}"
    for pair in cmp.pairs:
        head = [f"{cmp.prompt or '(no prompt)'}: {pair.a} → {pair.b}"]
        if cmp.experiment:
            head.append(f"experiment {cmp.experiment}")
        head.append(_design_text(pair))
        head.append(f"α = {cmp.alpha:g}")
        if adjusted:
            head.append(f"{'Holm' if cmp.correction == 'holm' else 'Benjamini–Hochberg'}-"
                        f"adjusted over {n_tests} tests")
        if cmp.sequential:
            head.append("sequential (always valid)")
        rows = [_table_row(m) for m in pair.metrics]
        headers = ["metric", pair.a, pair.b, f"{pair.b} − {pair.a} [{level} CI]",
                   f"lift [{level} CI]", p_head, "test", f"P({pair.b} better)*", "verdict"]
        table = tabulate(rows, headers=headers, tablefmt=fmt, disable_numparse=True)
        lines = [" · ".join(head), "", table, ""]
        if pair.srm is not None:
            lines.append(_srm_text(pair.srm))
        power = _power_text(cmp, pair)
        if power:
            lines.append(power)
        lines.append("* Bayesian posterior probability that the new version is better "
                     "(flat prior); not a p-value.")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def all_warnings(cmp: Comparison) -> list[str]:
    """Every warning of a comparison once; a metric's warning is prefixed by its name,
    unless several metrics share it word for word."""
    out = list(cmp.warnings)
    for pair in cmp.pairs:
        prefix = f"{pair.b}: " if len(cmp.pairs) > 1 else ""
        out.extend(prefix + w for w in pair.warnings)
        seen: dict[str, list[str]] = {}
        for m in pair.metrics:
            for w in m.warnings:
                seen.setdefault(w, []).append(m.name)
        for w, names in seen.items():
            out.append(prefix + (w if len(names) > 1 else f"{names[0]}: {w}"))
    return list(dict.fromkeys(out))


def _design_text(pair: PairComparison) -> str:
    if pair.design == "paired":
        n = max((m.a.n for m in pair.metrics), default=0)
        return f"paired on {n} items"
    a, b = pair.units
    return f"unpaired, {a:,} vs {b:,} units"


def _table_row(m: MetricResult) -> list[str]:
    name = m.name + (f" ({m.role})" if m.role else "")
    binary = m.kind == "binary"
    return [
        name, _arm_text(m.a, binary), _arm_text(m.b, binary),
        _diff_text(m.diff, m.diff_ci, binary), _lift_text(m.lift, m.lift_ci),
        _fmt_p(m.p_adjusted) if m.p_adjusted is not None else "–",
        (m.test or "–").replace("_", " "),
        f"{m.chance_b_better:.0%}" if m.chance_b_better is not None else "–",
        m.verdict,
    ]


def _arm_text(arm: ArmSummary, binary: bool) -> str:
    if arm.mean is None:
        return f"– (n={arm.n})"
    value = f"{arm.mean:.1%}" if binary else _fmt_num(arm.mean)
    return f"{value} (n={arm.n:,})"


def _diff_text(diff: float | None, ci: tuple[float, float] | None, binary: bool) -> str:
    if diff is None:
        return "–"
    if binary:
        text = f"{diff * 100:+.1f} pp"
        if ci:
            text += f" [{ci[0] * 100:+.1f}, {ci[1] * 100:+.1f}]"
        return text
    values = [diff, *(ci or ())]
    fmt = _shared_format(values)
    text = fmt(diff)
    if ci:
        text += f" [{fmt(ci[0])}, {fmt(ci[1])}]"
    return text


def _shared_format(values: Sequence[float]) -> Callable[[float], str]:
    """One signed format for a number and its interval: 3 significant digits of the
    largest, the same decimals for all; scientific below 0.001."""
    top = max((abs(v) for v in values if v), default=0.0)
    if top == 0:
        return lambda v: f"{v:+.0f}"
    exponent = math.floor(math.log10(top))
    if exponent < -3:
        return lambda v: f"{v:+.2e}"
    decimals = max(0, 2 - exponent)
    return lambda v: f"{v:+,.{decimals}f}"


def _lift_text(lift: float | None, ci: tuple[float, float] | None) -> str:
    if lift is None:
        return "–"
    text = f"{lift:+.1%}"
    if ci:
        text += f" [{ci[0]:+.1%}, {ci[1]:+.1%}]"
    return text


def _srm_text(srm: dict[str, Any]) -> str:
    observed = " / ".join(f"{o:,}" for o in srm["observed"])
    expected = " / ".join(f"{e:,.0f}" for e in srm["expected"])
    if srm.get("p_value") is None:
        return f"SRM check: {srm.get('skipped', 'skipped')} (units {observed})."
    if srm["flag"]:
        return (f"SAMPLE RATIO MISMATCH: units {observed} vs {expected} expected, "
                f"p = {_fmt_p(srm['p_value'])} < 0.001 — the traffic split is broken.")
    return (f"SRM check: units {observed} vs {expected} expected, "
            f"p = {_fmt_p(srm['p_value'])} (ok).")


def _power_text(cmp: Comparison, pair: PairComparison) -> str | None:
    chosen = next((m for m in pair.metrics if m.role == "primary"), None) or next(
        (m for m in pair.metrics if m.mde is not None), None)
    if chosen is None or chosen.mde is None:
        return None
    binary = chosen.kind == "binary"
    unit = "pairs" if pair.design == "paired" else "units per version"
    n = chosen.a.n if pair.design == "paired" else min(chosen.a.n, chosen.b.n)

    def size(x: float) -> str:
        return f"{x * 100:.1f} pp" if binary else _fmt_num(x)

    text = (f"Power ({POWER:.0%}, α = {cmp.alpha:g}) on {chosen.name}: detectable difference "
            f"±{size(chosen.mde)} with {n:,} {unit}")
    if chosen.diff and chosen.n_needed is not None:
        text += (f"; the observed {'+' if chosen.diff > 0 else '−'}{size(abs(chosen.diff))} "
                 f"needs ≈ {chosen.n_needed:,} {unit}")
    return text + "."


def _fmt_p(p: float | None) -> str:
    if p is None:
        return "–"
    if p < 0.0001:
        return "<0.0001"
    if p < 0.001:
        return f"{p:.1e}"
    return f"{p:.2g}" if p < 0.1 else f"{p:.2f}"


def _fmt_num(x: float | None, signed: bool = False) -> str:
    if x is None:
        return "–"
    sign = "+" if signed and x > 0 else ""
    if x == 0:
        return "0"
    magnitude = abs(x)
    if magnitude >= 1000:
        return f"{sign}{x:,.0f}"
    if magnitude >= 1:
        return f"{sign}{x:.4g}"
    return f"{sign}{x:.3g}"
