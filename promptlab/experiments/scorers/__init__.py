"""Scorers: judge one output and return a bool or a number.

Built in: `equals`, `contains`, `icontains`, `regex`, `json_valid`, `max_latency_ms`,
`python`, `command`, `llm_judge`. Every scorer takes `name`, `not_` (negate: a bool is
inverted, a number in [0, 1] becomes 1 - x), `weight` (its share of `overall`, the weighted
mean written when there are several scorers; 0 leaves the scorer out of it — its own score
is still written and compared, and its failure does not void `overall`) and `direction`
("higher" or "lower": which way is better, for `compare`). `value` may use Jinja and sees the dataset item:
`{{ expected }}`, `{{ vars.code }}` or a variable directly (`{{ code }}`); a value that is
exactly one `{{ expression }}` keeps its type, so a list in `expected` stays a list.

Mistakes in the file (unknown type, broken regex, Jinja syntax) fail when the experiment
loads; a scorer that fails on one output is recorded on that cell and the run goes on.

Third-party scorers register a `Scorer` subclass in the `promptlab.scorers` entry point
group; `[[scorers]] type = "<entry point name>"` uses it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from promptlab.errors import ExperimentError
from promptlab.experiments.scorers._base import (
    COMMON_KEYS,
    DIRECTIONS,
    OVERALL,
    ScoreInput,
    Scorer,
    ScorerRuntime,
    ScorerSpec,
    Value,
    check_result,
    negate,
)
from promptlab.experiments.scorers._external import CommandScorer, PythonScorer
from promptlab.experiments.scorers._judge import LlmJudge
from promptlab.experiments.scorers._match import (
    Contains,
    Equals,
    IContains,
    JsonValid,
    MaxLatency,
    Regex,
)
from promptlab.experiments.scorers._verdict import parse_verdict

ENTRY_POINT_GROUP = "promptlab.scorers"


BUILTIN: dict[str, type[Scorer]] = {
    cls.type: cls for cls in (Equals, Contains, IContains, Regex, JsonValid, MaxLatency,
                              PythonScorer, CommandScorer, LlmJudge)
}


def scorer_types() -> list[str]:
    return [*BUILTIN, *sorted(set(_entry_points()) - set(BUILTIN))]


def _entry_points() -> dict[str, Any]:
    from importlib.metadata import entry_points

    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def get_scorer_class(type_name: str, where: str) -> type[Scorer]:
    cls = BUILTIN.get(type_name)
    if cls is not None:
        return cls
    ep = _entry_points().get(type_name)
    if ep is None:
        from promptlab.experiments._validate import suggest

        raise ExperimentError(f"{where}: unknown scorer type {type_name!r}"
                              f"{suggest(type_name, scorer_types())}")
    try:
        loaded = ep.load()
    except Exception as exc:
        raise ExperimentError(f"{where}: scorer {type_name!r} (entry point {ep.value}) failed "
                              f"to load: {type(exc).__name__}: {exc}") from exc
    if not (isinstance(loaded, type) and issubclass(loaded, Scorer)):
        raise ExperimentError(f"{where}: entry point {type_name!r} is not a "
                              "promptlab.experiments.scorers.Scorer subclass")
    return loaded


def parse_scorer(table: Any, index: int, file: str) -> ScorerSpec:
    """Validate one `[[scorers]]` table (the n-th, 1-based) and return its spec."""
    from promptlab.experiments._validate import get_number

    where = f"{file}: [[scorers]] #{index}"
    if not isinstance(table, dict):
        raise ExperimentError(f"{where}: expected a table with name, type, value")
    type_name = table.get("type")
    if not isinstance(type_name, str) or not type_name:
        raise ExperimentError(f"{where}: missing key 'type' (one of {', '.join(BUILTIN)})")
    name = table.get("name", type_name)
    if not isinstance(name, str) or not re.match(r"^[A-Za-z_][A-Za-z0-9_.-]*$", name):
        raise ExperimentError(f"{where}: 'name' must be letters, digits, '_', '.', '-', "
                              f"got {name!r}")
    where = f"{file}: [[scorers]] {name!r}"
    if "not" in table and "not_" in table:
        raise ExperimentError(f"{where}: give 'not_' or 'not', not both")
    negated = table.get("not_", table.get("not", False))
    if not isinstance(negated, bool):
        raise ExperimentError(f"{where}: 'not_' must be true or false, got {negated!r}")
    weight = get_number(table, "weight", where, 1.0, minimum=0)
    direction = table.get("direction", "higher")
    if direction not in DIRECTIONS:
        raise ExperimentError(f"{where}: 'direction' must be \"higher\" or \"lower\", "
                              f"got {direction!r}")
    options = {k: v for k, v in table.items() if k not in COMMON_KEYS}
    spec = ScorerSpec(name=name, type=type_name, value=table.get("value"), not_=negated,
                      weight=float(weight), direction=direction, options=options, where=where)
    get_scorer_class(type_name, where).validate(spec)
    return spec


def build_scorers(specs: list[ScorerSpec], runtime: ScorerRuntime) -> list[Scorer]:
    """Instantiate and prepare every scorer for a run (imports functions, judge prompts)."""
    scorers = []
    for spec in specs:
        scorer = get_scorer_class(spec.type, spec.where)(spec, runtime)
        scorer.prepare()
        scorers.append(scorer)
    return scorers


def overall(scores: Mapping[str, bool | float], specs: list[ScorerSpec]) -> float | None:
    """The weighted mean of the scores (bools as 0/1); None when one is missing."""
    total = weights = 0.0
    for spec in specs:
        if spec.weight == 0:
            continue
        if spec.name not in scores:
            return None
        total += spec.weight * float(scores[spec.name])
        weights += spec.weight
    return total / weights if weights else None


__all__ = [
    "COMMON_KEYS",
    "DIRECTIONS",
    "OVERALL",
    "CommandScorer",
    "Contains",
    "Equals",
    "IContains",
    "JsonValid",
    "LlmJudge",
    "MaxLatency",
    "PythonScorer",
    "Regex",
    "ScoreInput",
    "Scorer",
    "ScorerRuntime",
    "ScorerSpec",
    "Value",
    "build_scorers",
    "check_result",
    "get_scorer_class",
    "negate",
    "overall",
    "parse_scorer",
    "parse_verdict",
    "scorer_types",
]
