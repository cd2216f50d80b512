"""`compare()` and the engine behind it: check the arguments, open the index, resolve what
to compare, aggregate in SQL (two reader threads), test each metric, check the split,
adjust p-values and give verdicts."""

from __future__ import annotations

import math
import os
import sqlite3
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from promptlab.comparison import _query
from promptlab.comparison._analyse import (
    add_bootstrap_intervals,
    paired_result,
    unpaired_result,
)
from promptlab.comparison._model import Comparison, MetricResult, PairComparison, p_text
from promptlab.comparison._query import (
    Reader,
    arm_values,
    by_name,
    entry_sums,
    fast_path,
    item_overlap,
    likely_units,
    lost_counts,
    non_numeric,
    paired_diffs,
    paired_sums,
    per_arm_tasks,
    score_names,
    score_sums,
    shared_units,
    unit_sums,
)
from promptlab.comparison._target import (
    BUILTINS,
    MAX_ABS,
    Arm,
    MetricConfig,
    Resolver,
    Scope,
    Target,
    builtins_needed,
    check_tolerance,
    choose_metrics,
    metric_config,
    requested,
    time_bounds,
)
from promptlab.comparison._verdict import adjust, check_srm
from promptlab.errors import CompareError, not_utf8

if TYPE_CHECKING:
    from promptlab.comparison._query import Agg
    from promptlab.config import Settings
    from promptlab.index.core import Index

MANY_ERRORS = 0.10


CORRECTIONS = ("holm", "bh", "none")
_WARMING: list[threading.Thread] = []


def _warm_scipy() -> None:
    """Start importing `scipy.stats` on a helper thread. The tests need it at the end, and
    its import (about 0.8 s of CPU) would otherwise start only when the SQL is done; Python's
    sqlite3 releases the GIL inside a query, so the two overlap. Once per process."""
    if _WARMING or "scipy.stats.contingency" in sys.modules:
        return

    def load() -> None:
        try:
            from promptlab.stats import _scipy_stats

            _scipy_stats()
        except Exception:  # the main thread meets the same error and says why
            pass

    thread = threading.Thread(target=load, name="promptlab-scipy", daemon=True)
    _WARMING.append(thread)
    thread.start()


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
    for what, values in (("version", versions), ("--prompt", [prompt]),
                         ("--experiment", [experiment]), ("--metric", metrics or ())):
        for value in values:
            _check_text(value, what)
    versions_list = _check_arguments(versions, experiment, alpha, correction)
    margins = _check_tolerance(tolerance or {})
    _warm_scipy()
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
            from promptlab.errors import LogsUnavailableError

            raise LogsUnavailableError(f"reading the log index {index.path} failed: {exc}; "
                                       "`promptlab logs reindex` rebuilds it") from exc
        finally:
            reader.close()
    finally:
        if own_index:
            index.close()


# Below this, 1 − α/2 rounds to 1 in double precision (from ~1e-16) and critical values
# and power stop meaning anything; no study asks for more than 5 sigma (≈ 6e-7).
MIN_ALPHA = 1e-10


def _check_text(value: Any, what: str) -> None:
    """A name from the command line must be text SQLite can take: bytes that are not UTF-8
    arrive as lone surrogates (`printf 'v\\xff'`)."""
    if isinstance(value, str) and not_utf8(value):
        raise CompareError(f"{what} {value!r} is not valid UTF-8 text")


def _check_arguments(versions: Sequence[str | None], experiment: str | None, alpha: float,
                     correction: str) -> list[str]:
    """The version names, stripped; a CompareError for what cannot be compared."""
    if not MIN_ALPHA <= alpha < 1:  # (NaN fails too)
        raise CompareError(f"--alpha must be at least {MIN_ALPHA:g} and below 1, got {alpha}; "
                           "0.05 is usual, 0.001 strict")
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


REASONS = (("failed", "failed call(s) without a value"), ("missing", "missing"),
           ("non_numeric", "not a number"), ("out_of_range", f"out of range (|x| > {MAX_ABS:g})"))


def account_drops(m: MetricResult, arms: tuple[Arm, Arm], entry_stats: list[dict[str, Any]],
                  aggs: tuple[Agg, Agg] | None, lost: list[dict[str, dict[str, int]]],
                  skipped: tuple[dict[str, int], dict[str, int]]) -> None:
    """Count every call that gave this metric no value, per version and why (failed call,
    missing, not a number, out of range), into `m.dropped` and a warning; warn when one
    version lost a clearly larger share than the other — where a verdict can lie.

    Latency, tokens and cost are never taken from failed calls. A score logged on a failed
    call counts like any other (a scorer may grade a failure 0 on purpose); a failed call
    without the score is dropped as failed. Non-numeric score values are seen only in arms
    of up to CHECK_LIMIT calls (re-read from the log); above that they count as missing.
    """
    from promptlab.stats import compare_proportions

    builtin = m.name in BUILTINS
    out: dict[str, dict[str, int]] = {}
    shares = []
    for side, arm, st, counts, bad in zip(("a", "b"), arms, entry_stats, lost, skipped,
                                          strict=True):
        calls, errors = st["entries"], st["errors"]
        agg = None if aggs is None else aggs[0 if side == "a" else 1]
        mine = counts.get(m.name, {"on_errors": 0, "out_of_range": 0})
        out_of_range = agg.out_of_range if agg else mine["out_of_range"]
        failed = errors if builtin else max(errors - mine["on_errors"], 0)
        non_numeric = (agg.non_numeric if agg else 0) if builtin else bad.get(m.name, 0)
        row = {"failed": failed, "missing": 0, "non_numeric": non_numeric,
               "out_of_range": out_of_range}
        if agg is not None:
            values = agg.raw if agg.raw_n is not None else agg.n
            row["missing"] = max(calls - values - failed - non_numeric - out_of_range, 0)
        out[side] = row
        total = sum(row.values())
        shares.append((total, calls))
        if total:
            why = ", ".join(f"{row[k]} {text}" for k, text in REASONS if row[k])
            m.warnings.append(f"dropped {total} of {calls} call(s) under {arm.name}: {why}")
    m.dropped = out
    (lost_a, calls_a), (lost_b, calls_b) = shares
    if calls_a and calls_b and (lost_a or lost_b):
        test = compare_proportions(lost_a, calls_a, lost_b, calls_b)
        if test.p_value is not None and test.p_value < 0.05:
            more, less = (arms[1], arms[0]) if lost_b / calls_b > lost_a / calls_a else arms
            share = {arms[0].name: lost_a / calls_a, arms[1].name: lost_b / calls_b}
            m.warnings.append(
                f"{more.name} lost more `{m.name}` values ({share[more.name]:.0%}) than "
                f"{less.name} ({share[less.name]:.0%}), {p_text(test.p_value)}: the calls "
                "left are not comparable, so the verdict can mislead")


def choose_design(reader: Reader, scope: Scope, target: Target, a: Arm, b: Arm
                  ) -> tuple[bool, str, str]:
    """(paired?, the unit analysed, why): the design decides, never the fields present.

    Paired (by item) only when every item went through every version: the experiment
    file says `design = "paired"` for its dataset, or — without a file — the experiment's
    randomisation units (`unit_id`, else `item_id`) were each logged under both versions,
    which a split by unit cannot produce. Everything else is analysed by its unit.
    """
    if scope.experiment is None:
        return False, "unit_id", "live traffic: one value per unit_id, else per call"
    spec = target.spec
    if spec is not None:
        if spec.dataset.path is not None and spec.dataset.design == "paired":
            return True, "item_id", "experiment design: paired by item"
        if spec.dataset.path is None:
            return False, "unit_id", "live-traffic experiment, randomised by unit_id"
        return False, "unit_id", "split design, randomised by unit_id"
    both, _, _ = item_overlap(reader, scope, a, b, key="COALESCE(e.unit_id, e.item_id)")
    if both:
        return True, "item_id", "no experiment file; units ran under both versions: paired by item"
    return False, "unit_id", "no experiment file; one version per unit_id"


class Engine:
    """Runs one comparison over an index through a `Reader`."""

    def __init__(self, index: Index, reader: Reader, settings: Settings):
        self.index = index
        self.reader = reader
        self.where_dir = str(index.log_dir)
        self.resolver = Resolver(reader, settings, self.where_dir)

    def run(self, versions: list[str], *, prompt: str | None, experiment: str | None,
            metrics: list[str] | None, alpha: float, scope_bounds: tuple[Any, Any],
            correction: str, sequential: bool, tolerance: dict[str, float]) -> Comparison:
        target = self.resolver.resolve(versions, prompt, experiment)
        scope = Scope(target.prompt, target.experiment, *scope_bounds)
        config = metric_config(target.spec, tolerance)
        baseline = target.arms[0]
        pairs = [self._compare_pair(scope, target, baseline, arm, metrics, config, alpha,
                                    sequential)
                 for arm in target.arms[1:]]
        check_tolerance(tolerance, [m.name for p in pairs for m in p.metrics])
        check_srm(target, pairs)
        adjust(pairs, alpha, correction)
        return Comparison(
            prompt=target.prompt, experiment=target.experiment,
            versions=[a.name for a in target.arms], alpha=alpha, correction=correction,
            sequential=sequential, pairs=pairs, warnings=target.warnings,
            primary=config.primary, guardrails=config.guardrails,
            watch=tuple(dict.fromkeys(metrics)) if metrics else None,
        )

    def _compare_pair(self, scope: Scope, target: Target, a: Arm, b: Arm,
                      wanted: list[str] | None, config: MetricConfig, alpha: float,
                      sequential: bool) -> PairComparison:
        reader = self.reader
        warnings: list[str] = []
        paired, unit, reason = choose_design(reader, scope, target, a, b)
        items = None
        if paired:
            items, only_a, only_b = item_overlap(reader, scope, a, b)
            paired = items > 0
            if not paired:
                unit, reason = "unit_id", "no item logged under both versions: unpaired by unit_id"
            elif only_a or only_b:
                warnings.append(
                    f"paired on {items} items logged under both versions; dropped "
                    f"{only_a} item(s) logged only for {a.name} and {only_b} only for {b.name}")
        fast = fast_path(reader, scope, a, b)
        scores_logged = score_names(reader, scope, a, b, fast)
        score_metrics = [n for n in requested(wanted, config, scores_logged)
                         if n in scores_logged]
        # Entry sums and (on the fast path) score sums all at once, on both readers.
        builtins = builtins_needed(wanted, config)
        tasks: list[Callable[[], Any]] = [
            lambda arm=arm: entry_sums(reader, scope, arm, builtins) for arm in (a, b)]
        # Per-call score sums start beside the entry pass, unless the first calls carry
        # unit ids (then the scores are averaged per unit instead).
        early = fast is not None and not paired and not likely_units(reader, scope, a, b)
        if early:
            tasks += per_arm_tasks(score_metrics, (a, b), lambda arm, n: score_sums(
                reader, scope, arm, n, False, fast))
        done = reader.run(tasks)
        entry_stats = done[:2]
        for arm, st in zip((a, b), entry_stats, strict=True):
            if st["entries"] == 0:
                self._no_entries(scope, target, arm)
        available = set(scores_logged) | {
            name for name in builtins if any(st["builtins"][name].n for st in entry_stats)}
        names = choose_metrics(wanted, config, scores_logged, available)
        for arm, st in zip((a, b), entry_stats, strict=True):
            if st["errors"] / st["entries"] > MANY_ERRORS:
                warnings.append(
                    f"{arm.name}: {st['errors'] / st['entries']:.0%} of calls failed "
                    f"({st['errors']} of {st['entries']}); latency, tokens and cost cover "
                    "successful calls only")
        skipped = non_numeric(reader, self.index, scope, (a, b), entry_stats, scores_logged)
        for name in sorted({*skipped[0], *skipped[1]}):
            if name not in scores_logged:
                count = skipped[0].get(name, 0) + skipped[1].get(name, 0)
                warnings.append(f"score `{name}` has no numeric values ({count} non-numeric "
                                "value(s) skipped)")
        aggs_seen: dict[str, tuple[Agg, Agg]] = {}
        unit_mode = not paired and any(st["unit_mode"] for st in entry_stats)
        lost: list[dict[str, dict[str, int]]] = [{}, {}]
        if not unit_mode:
            lost = reader.run([lambda arm=arm: lost_counts(reader, scope, arm, score_metrics)
                               for arm in (a, b)])
        if paired:
            results = self._paired_metrics(scope, a, b, names, config, alpha, sequential)
        else:
            scores: dict[str, tuple[Agg, Agg]] = {}
            if unit_mode:  # every metric averaged per unit, one pass per arm
                per_arm = reader.run([
                    lambda arm=arm, st=st: unit_sums(reader, scope, arm, names, st["builtins"],
                                                     st["rollup"])
                    for arm, st in zip((a, b), entry_stats, strict=True)])
                scores = {n: (per_arm[0]["aggs"][n], per_arm[1]["aggs"][n]) for n in names}
                for st, sums in zip(entry_stats, per_arm, strict=True):
                    st["units"] = sums["units"]
                lost = [sums["lost"] for sums in per_arm]
            elif early:
                scores = by_name(score_metrics, done[2:])
            results, aggs_seen = self._unpaired_metrics(
                scope, a, b, names, config, alpha, sequential, entry_stats, fast, unit_mode,
                scores)
        roles = config.roles()
        for m in results:
            m.role = roles.get(m.name)
            m.tolerance = config.tolerance.get(m.name)
            if m.name != "error_rate":
                account_drops(m, (a, b), entry_stats, aggs_seen.get(m.name), lost, skipped)
            if paired and items and m.a.n < items:
                m.warnings.append(f"{m.a.n} of the {items} paired items have a `{m.name}` "
                                  f"value under both versions; the other {items - m.a.n} "
                                  "are left out")
        units = (entry_stats[0]["units"], entry_stats[1]["units"])
        shared = shared_units(reader, scope, a, b) if unit_mode else None
        if shared:
            share = shared / max(min(units), 1)
            warnings.append(
                f"{shared:,} unit{'s' if shared > 1 else ''} ({share:.0%} of the smaller arm) "
                f"had calls under both {a.name} and {b.name}, and count in both arms, which "
                "the unpaired tests assume independent: the weights changed during the "
                "experiment (a unit near a moved boundary changes variant), or units were not "
                "assigned with experiment.assign; compare the traffic since the change "
                "(--since WHEN), or give the experiment a new salt when you change weights")
        return PairComparison(a.name, b.name, "paired" if paired else "unpaired", results,
                              warnings=warnings, units=units, unit=unit, design_reason=reason,
                              items=items, shared_units=shared)

    def _no_entries(self, scope: Scope, target: Target, arm: Arm) -> None:
        parts = [f"no entries for {arm.name}"]
        if target.prompt:
            parts.append(f"of prompt {target.prompt!r}")
        if target.experiment:
            parts.append(f"in experiment {target.experiment!r}")
        if scope.windowed:
            parts.append("in the chosen time window (--since/--until)")
        raise CompareError(" ".join(parts) + f" in {self.where_dir}")

    def _unpaired_metrics(self, scope: Scope, a: Arm, b: Arm, names: list[str],
                          config: MetricConfig, alpha: float, sequential: bool,
                          entry_stats: list[dict[str, Any]], fast: str | None, unit_mode: bool,
                          scores: dict[str, tuple[Agg, Agg]]
                          ) -> tuple[list[MetricResult], dict[str, tuple[Agg, Agg]]]:
        reader = self.reader
        todo = [n for n in names if n not in BUILTINS and n not in scores]
        aggs = dict(scores)
        aggs.update(reader.run_per_arm(todo, (a, b), lambda arm, n: score_sums(
            reader, scope, arm, n, unit_mode, fast)))
        for n in names:
            if n in BUILTINS and n not in aggs:
                aggs[n] = (entry_stats[0]["builtins"][n], entry_stats[1]["builtins"][n])
        units = entry_stats[0]["units"] + entry_stats[1]["units"]
        want_values = [n for n in names
                       if not (aggs[n][0].binary and aggs[n][1].binary)
                       and min(aggs[n][0].n, aggs[n][1].n) >= 2
                       and units <= _query.VALUES_LIMIT]
        per_arm = reader.run([lambda arm=arm: arm_values(reader, scope, arm, want_values,
                                                         unit_mode) for arm in (a, b)])
        values = {n: (per_arm[0][n], per_arm[1][n]) for n in want_values}
        skipped = _query.VALUES_LIMIT if units > _query.VALUES_LIMIT else None
        results = [
            unpaired_result(n, config.directions.get(n, "higher"), aggs[n][0], aggs[n][1],
                            values.get(n), a.name, b.name, alpha, sequential,
                            skipped_values=skipped)
            for n in names
        ]
        add_bootstrap_intervals(results, values, alpha)
        return results, aggs

    def _paired_metrics(self, scope: Scope, a: Arm, b: Arm, names: list[str],
                        config: MetricConfig, alpha: float, sequential: bool
                        ) -> list[MetricResult]:
        reader = self.reader
        aggs = reader.run([lambda n=n: paired_sums(reader, scope, a, b, n) for n in names])
        want = [n for n, agg in zip(names, aggs, strict=True)
                if agg.n >= 2 and agg.n01 < agg.n and agg.n <= _query.VALUES_LIMIT]
        fetched = reader.run([lambda n=n: paired_diffs(reader, scope, a, b, n) for n in want])
        diffs = dict(zip(want, fetched, strict=True))
        results = [
            paired_result(n, config.directions.get(n, "higher"), agg, diffs.get(n), a.name,
                          b.name, alpha, sequential,
                          skipped_values=(_query.VALUES_LIMIT if agg.n > _query.VALUES_LIMIT
                                          else None))
            for n, agg in zip(names, aggs, strict=True)
        ]
        add_bootstrap_intervals(results, {n: (d, None) for n, d in diffs.items()}, alpha)
        return results
