"""What a comparison reads: the arms (versions, labels, variants), the prompt, the
experiment and the time window as SQL conditions on `entries e`; the metrics it shows with
their direction; and the resolver that finds all of that in the index — or an error that
lists what is logged instead."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from promptlab.errors import CompareError

if TYPE_CHECKING:
    from promptlab.comparison._query import Reader
    from promptlab.config import Settings


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

    @property
    def windowed(self) -> bool:
        return self.since is not None or self.until is not None

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


def time_bounds(since: Any, until: Any) -> tuple[float | None, float | None]:
    """`--since`/`--until` (a date, an ISO time or an age like `7d`) as epoch seconds."""
    from promptlab.logs.reader import parse_bound

    def epoch(value: Any, end: bool) -> float | None:
        text = parse_bound(value, end=end)
        if text is None:
            return None
        from datetime import UTC, datetime

        # Years 1..9999 all count: the year may come unpadded ("1-01-01T…" from strftime),
        # which fromisoformat refuses, so pad it; seconds by datetime arithmetic.
        year, _, rest = text.partition("-")
        when = datetime.fromisoformat(f"{int(year):04d}-{rest}".replace("Z", "+00:00"))
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        return (when - datetime(1970, 1, 1, tzinfo=UTC)).total_seconds()

    lo, hi = epoch(since, False), epoch(until, True)
    if lo is not None and hi is not None and hi <= lo:
        raise CompareError(f"--until ({until}) is not after --since ({since})")
    return lo, hi


# The one validation of values, in SQL, so every path and every size agrees: a value
# counts when it is a number with |x| ≤ MAX_ABS (its square, and sums of squares, stay
# finite); larger ones are dropped and counted as out of range. The index has already
# dropped what is not a finite number (strings, booleans in numeric fields, NaN, 1e400).
MAX_ABS = 1e150


@dataclass(frozen=True)
class Builtin:
    """A metric every call has. Numeric ones read an `entries` column over the calls that
    did not fail; `error_rate` is the share of calls with status 'error'."""

    column: str | None  # None: error_rate
    direction: str = "lower"

    @property
    def expr(self) -> str:
        """The value of one entry: NULL for failed calls and out-of-range values."""
        if self.column is None:
            return "(e.status = 'error')"
        # SQLite orders every number before any text or blob, so the range alone keeps the
        # numbers: two comparisons per call where typeof() made a string and abs() a call.
        return (f"CASE WHEN e.status != 'error' AND e.{self.column} BETWEEN {-MAX_ABS!r} AND "
                f"{MAX_ABS!r} THEN e.{self.column} END")


BUILTINS: dict[str, Builtin] = {
    "latency_ms": Builtin("latency_ms"),
    "output_tokens": Builtin("output_tokens"),
    "input_tokens": Builtin("input_tokens"),
    "cost_usd": Builtin("cost_usd"),
    "error_rate": Builtin(None),
}
DEFAULT_BUILTINS = ("latency_ms", "output_tokens", "cost_usd", "error_rate")


@dataclass(frozen=True)
class MetricConfig:
    """The experiment's `[metrics]` table (empty without one), each metric's direction, and
    the tolerances (relative margins) from the file and from `--tolerance`."""

    primary: str | None
    guardrails: tuple[str, ...]
    directions: dict[str, str]
    tolerance: dict[str, float] = field(default_factory=dict)

    @property
    def configured(self) -> bool:
        return bool(self.primary or self.guardrails)

    def roles(self) -> dict[str, str]:
        roles: dict[str, str] = {}
        if self.primary:
            roles[self.primary] = "primary"
        for g in self.guardrails:
            roles.setdefault(g, "guardrail")
        return roles


def metric_config(spec: Any, tolerance: Mapping[str, float] | None = None) -> MetricConfig:
    """Primary metric, guardrails, directions and tolerances from an experiment (None:
    defaults); `tolerance` (from `--tolerance`) overrides the file's, metric by metric."""
    directions = {name: b.direction for name, b in BUILTINS.items()}
    if spec is None:
        return MetricConfig(None, (), directions, dict(tolerance or {}))
    for scorer in spec.scorers:
        directions[scorer.name] = scorer.direction
    margins = {**spec.metrics.tolerance, **(tolerance or {})}
    return MetricConfig(spec.metrics.primary, tuple(spec.metrics.guardrails), directions,
                        margins)


def requested(wanted: list[str] | None, config: MetricConfig,
              score_names: list[str]) -> list[str]:
    """The metrics asked for: `--metric`, else primary + guardrails, else every score."""
    if wanted:
        return list(dict.fromkeys(wanted))
    if config.configured:
        primary = [config.primary] if config.primary else []
        return list(dict.fromkeys([*primary, *config.guardrails]))
    return sorted(score_names)


def choose_metrics(wanted: list[str] | None, config: MetricConfig, score_names: list[str],
                   available: set[str]) -> list[str]:
    """The metrics to compare, in order; an unknown `--metric` is a CompareError."""
    if wanted:
        unknown = [m for m in wanted if m not in available and m not in BUILTINS]
        if unknown:
            raise CompareError(f"no metric {unknown[0]!r} in these entries; metrics "
                               f"logged: {', '.join(sorted(available)) or 'none'}")
    names = requested(wanted, config, score_names)
    if not wanted and not config.configured:
        names += [b for b in DEFAULT_BUILTINS if b in available]
    return names


def builtins_needed(wanted: list[str] | None, config: MetricConfig) -> list[str]:
    """Built-in metrics to sum for every arm: the defaults plus any asked for."""
    asked = [*(wanted or ()), config.primary, *config.guardrails]
    return list(dict.fromkeys([*DEFAULT_BUILTINS, *(n for n in asked if n in BUILTINS)]))


def check_tolerance(tolerance: Mapping[str, float], names: list[str]) -> None:
    """Each `--tolerance` must name a metric this comparison shows."""
    shown = list(dict.fromkeys(names))
    for name in tolerance:
        if name not in shown:
            raise CompareError(f"--tolerance {name}: no metric {name!r} in this comparison; "
                               f"compared: {', '.join(shown) or 'none'}")


@dataclass
class Target:
    prompt: str | None
    experiment: str | None
    arms: list[Arm]
    spec: Any = None  # promptlab.experiments.Experiment, when its file was read
    warnings: list[str] = field(default_factory=list)


class Resolver:
    """Turns `compare`'s arguments into a `Target` by asking the index."""

    def __init__(self, reader: Reader, settings: Settings, where_dir: str):
        self.reader = reader
        self.settings = settings
        self.where_dir = where_dir

    def resolve(self, versions: list[str], prompt: str | None,
                experiment: str | None) -> Target:
        if experiment:
            return self._experiment(versions, prompt, experiment, explicit=True)
        return self._versions(versions, prompt)

    def _experiment(self, versions: list[str], prompt: str | None, experiment: str,
                    explicit: bool) -> Target:
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
        return Target(prompt, experiment, arms, spec, warnings)

    def _versions(self, versions: list[str], prompt: str | None) -> Target:
        sql, params = _matching(
            "SELECT prompt_id, prompt_version, experiment, sum(calls) FROM rollup WHERE",
            "prompt_version", versions, "prompt_id", prompt)
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
                    return self._experiment(versions, None, experiment, explicit=False)
                self._explain_missing(versions, by_prompt)
            prompt = complete[0]
        logged = {pv for p, pv, _, _ in rows if p == prompt}
        arms = [Arm(v, "prompt_version" if v in logged or v not in labels.get(prompt, ())
                    else "prompt_label") for v in versions]
        target = Target(prompt, None, arms)
        experiments = sorted({e for p, v, e, _ in rows if p == prompt})
        if experiments and all(a.column == "prompt_version" for a in arms):
            if len(experiments) == 1 and experiments[0]:
                return self._experiment(versions, prompt, experiments[0], explicit=False)
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
        sql, params = _matching(
            "SELECT DISTINCT e.prompt_id, e.prompt_label FROM entries e WHERE e.kind = 'llm' AND",
            "e.prompt_label", candidates, "e.prompt_id", prompt)
        found: dict[str, set[str]] = {}
        for p, label in self.reader.all(sql, params):
            if p:
                found.setdefault(p, set()).add(label)
        return found

    def _experiment_with_variants(self, versions: list[str]) -> str | None:
        sql, params = _matching(
            "SELECT experiment, variant FROM entries WHERE experiment IS NOT NULL AND",
            "variant", versions)
        rows = self.reader.all(sql + " GROUP BY 1, 2", params)
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
            # Found through the logs, it still decides the design, metrics, tolerances and
            # the sample-ratio check: judging without it would change what a gate checks.
            raise CompareError(f"{exc} (the experiment file of the calls compared; fix it, "
                               "or move it out of the experiments folder to compare "
                               "without it)") from None


def _matching(select: str, column: str, names: list[str], prompt_column: str = "",
              prompt: str | None = None) -> tuple[str, list[Any]]:
    """`SELECT … WHERE column IN (names) [AND prompt_column = prompt]` and its parameters."""
    sql = f"{select} {column} IN ({', '.join('?' * len(names))})"
    params: list[Any] = list(names)
    if prompt is not None:
        sql += f" AND {prompt_column} = ?"
        params.append(prompt)
    return sql, params


def _looks_like_version(name: str) -> bool:
    return len(name) > 1 and name[0] == "v" and name[1:].isdigit()


def _version_key(name: str) -> tuple[int, str]:
    return (int(name[1:]), name) if _looks_like_version(name) else (1 << 30, name)
