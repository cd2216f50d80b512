"""One comparison run: resolve what to compare, aggregate in SQL (two reader threads),
test each metric, check the split, adjust p-values and give verdicts."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from promptlab.comparison import _limits
from promptlab.comparison._analyse import paired_result, unpaired_result
from promptlab.comparison._metrics import (
    BUILTINS,
    MetricConfig,
    builtins_needed,
    check_tolerance,
    choose_metrics,
    metric_config,
    requested,
)
from promptlab.comparison._model import Comparison, MetricResult, PairComparison
from promptlab.comparison._query_arms import (
    arm_values,
    entry_sums,
    fast_path,
    non_numeric,
    score_names,
    score_sums,
)
from promptlab.comparison._query_pairs import item_overlap, paired_diffs, paired_sums
from promptlab.comparison._reader import by_name, per_arm_tasks
from promptlab.comparison._resolve import Resolver, Target
from promptlab.comparison._scope import Arm, Scope
from promptlab.comparison._srm import check_srm
from promptlab.comparison._verdict import adjust
from promptlab.errors import CompareError

if TYPE_CHECKING:
    from promptlab.comparison._reader import Reader
    from promptlab.comparison._samples import Agg
    from promptlab.config import Settings
    from promptlab.index.core import Index


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
        )

    def _compare_pair(self, scope: Scope, target: Target, a: Arm, b: Arm,
                      wanted: list[str] | None, config: MetricConfig, alpha: float,
                      sequential: bool) -> PairComparison:
        reader = self.reader
        warnings: list[str] = []
        paired = False
        if scope.experiment is not None:
            common, only_a, only_b = item_overlap(reader, scope, a, b)
            paired = common > 0
            if paired and (only_a or only_b):
                warnings.append(
                    f"paired on {common} items logged under both versions; dropped "
                    f"{only_a} item(s) logged only for {a.name} and {only_b} only for {b.name}")
        fast = fast_path(reader, scope, a, b)
        scores_logged = score_names(reader, scope, a, b, fast)
        score_metrics = [n for n in requested(wanted, config, scores_logged)
                         if n in scores_logged]
        # Entry sums and (on the fast path) score sums all at once, on both readers.
        builtins = builtins_needed(wanted, config)
        tasks: list[Callable[[], Any]] = [
            lambda arm=arm: entry_sums(reader, scope, arm, builtins) for arm in (a, b)]
        early = fast is not None and not paired
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
            if st["errors"] / st["entries"] > _limits.MANY_ERRORS:
                warnings.append(
                    f"{arm.name}: {st['errors'] / st['entries']:.0%} of calls failed "
                    f"({st['errors']} of {st['entries']}); latency, tokens and cost cover "
                    "successful calls only")
        skipped = non_numeric(reader, self.index, scope, (a, b), entry_stats, scores_logged)
        for name, count in sorted(skipped.items()):
            if name not in scores_logged:
                warnings.append(f"score `{name}` has no numeric values ({count} non-numeric "
                                "value(s) skipped)")
        if paired:
            results = self._paired_metrics(scope, a, b, names, config, alpha, sequential)
        else:
            unit_mode = entry_stats[0]["unit_mode"] or entry_stats[1]["unit_mode"]
            if unit_mode and not all(st["unit_mode"] for st in entry_stats):
                entry_stats = reader.run(
                    [lambda arm=arm: entry_sums(reader, scope, arm, builtins, True)
                     for arm in (a, b)])
            scores: dict[str, tuple[Agg, Agg]] = {}
            if early and not unit_mode:
                scores = by_name(score_metrics, done[2:])
            results = self._unpaired_metrics(scope, a, b, names, config, alpha, sequential,
                                             entry_stats, fast, unit_mode, scores)
        roles = config.roles()
        for m in results:
            m.role = roles.get(m.name)
            m.tolerance = config.tolerance.get(m.name)
            if skipped.get(m.name):
                m.warnings.append(f"{skipped[m.name]} non-numeric `{m.name}` value(s) skipped")
        units = (entry_stats[0]["units"], entry_stats[1]["units"])
        return PairComparison(a.name, b.name, "paired" if paired else "unpaired", results,
                              warnings=warnings, units=units)

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
                          scores: dict[str, tuple[Agg, Agg]]) -> list[MetricResult]:
        reader = self.reader
        todo = [n for n in names if n not in BUILTINS and n not in scores]
        aggs = dict(scores)
        aggs.update(reader.run_per_arm(todo, (a, b), lambda arm, n: score_sums(
            reader, scope, arm, n, unit_mode, fast)))
        for n in names:
            if n in BUILTINS:
                aggs[n] = (entry_stats[0]["builtins"][n], entry_stats[1]["builtins"][n])
        units = entry_stats[0]["units"] + entry_stats[1]["units"]
        want_values = [n for n in names
                       if not (aggs[n][0].binary and aggs[n][1].binary)
                       and min(aggs[n][0].n, aggs[n][1].n) >= 2
                       and units <= _limits.VALUES_LIMIT]
        values = reader.run_per_arm(want_values, (a, b), lambda arm, n: arm_values(
            reader, scope, arm, n, unit_mode))
        return [
            unpaired_result(n, config.directions.get(n, "higher"), aggs[n][0], aggs[n][1],
                            values.get(n), a.name, b.name, alpha, sequential,
                            skipped_values=units > _limits.VALUES_LIMIT)
            for n in names
        ]

    def _paired_metrics(self, scope: Scope, a: Arm, b: Arm, names: list[str],
                        config: MetricConfig, alpha: float, sequential: bool
                        ) -> list[MetricResult]:
        reader = self.reader
        aggs = reader.run([lambda n=n: paired_sums(reader, scope, a, b, n) for n in names])
        want = [n for n, agg in zip(names, aggs, strict=True)
                if agg.n >= 2 and agg.n01 < agg.n and agg.n <= _limits.VALUES_LIMIT]
        fetched = reader.run([lambda n=n: paired_diffs(reader, scope, a, b, n) for n in want])
        diffs = dict(zip(want, fetched, strict=True))
        return [
            paired_result(n, config.directions.get(n, "higher"), agg, diffs.get(n), a.name,
                          b.name, alpha, sequential,
                          skipped_values=agg.n > _limits.VALUES_LIMIT)
            for n, agg in zip(names, aggs, strict=True)
        ]
