"""What every scorer shares: its spec, its input, Jinja values, negation."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from promptlab.errors import ExperimentError, PromptlabError, ScorerError

COMMON_KEYS = frozenset({"name", "type", "value", "not_", "not", "weight", "direction"})
OVERALL = "overall"
DIRECTIONS = ("higher", "lower")


@dataclass(frozen=True)
class ScorerSpec:
    """One `[[scorers]]` table, validated. `options` holds the type's own keys."""

    name: str
    type: str
    value: Any = None
    not_: bool = False
    weight: float = 1.0
    direction: str = "higher"
    options: dict[str, Any] = field(default_factory=dict)
    where: str = "[[scorers]]"


@dataclass(frozen=True)
class ScoreInput:
    """What a scorer sees for one cell."""

    output: str
    item_id: str
    vars: Mapping[str, Any]
    expected: Any = None
    metadata: Mapping[str, Any] = field(default_factory=dict)
    variant: str | None = None
    latency_ms: float | None = None
    usage: Mapping[str, int] = field(default_factory=dict)
    prompt: str = ""  # the rendered prompt text the model was sent

    def context(self) -> dict[str, Any]:
        """The Jinja context of `value` and judge prompts: variables, then the item."""
        return {**self.vars, "vars": dict(self.vars), "expected": self.expected,
                "item_id": self.item_id, "metadata": dict(self.metadata),
                "variant": self.variant, "output": self.output}


@dataclass
class ScorerRuntime:
    """What scorers may need at run time: where files are, and a way to call a model.

    `complete(provider_spec_or_None, rendered) -> text` runs a judge call with the
    runner's retries; `registry` resolves judge prompts.
    """

    base_dir: Path
    registry: Any = None
    complete: Callable[[Any, Any], Any] | None = None
    make_provider_spec: Callable[[dict[str, Any], str], Any] | None = None


# -- value templates --------------------------------------------------------------------

_PURE_EXPR = re.compile(r"^\s*\{\{(.*)\}\}\s*$", re.DOTALL)


class Value:
    """A scorer `value`: a constant, or Jinja evaluated against each item."""

    def __init__(self, raw: Any, where: str):
        self.raw = raw
        self._where = where
        self._expr: Any = None
        self._template: Any = None
        if isinstance(raw, str) and ("{{" in raw or "{%" in raw):
            from jinja2 import TemplateSyntaxError

            from promptlab.template import sandbox

            env = sandbox()
            m = _PURE_EXPR.match(raw)
            try:
                if m and "}}" not in m.group(1) and "{{" not in m.group(1):
                    self._expr = env.compile_expression(m.group(1).strip(),
                                                        undefined_to_none=False)
                else:
                    self._template = env.from_string(raw)
            except TemplateSyntaxError as exc:
                raise ScorerError(f"{where}: 'value' has a Jinja syntax error: {exc.message}"
                                  ) from exc

    @property
    def dynamic(self) -> bool:
        return self._expr is not None or self._template is not None

    def get(self, inp: ScoreInput) -> Any:
        if not self.dynamic:
            return self.raw
        from jinja2 import TemplateError

        try:
            if self._expr is not None:
                from jinja2 import Undefined

                result = self._expr(**inp.context())
                if isinstance(result, Undefined):
                    str(result)  # raises UndefinedError naming the missing variable
                return result
            from promptlab.template import render_limited

            return render_limited(self._template, inp.context(), f"{self._where}: 'value'")
        except TemplateError as exc:
            raise ScorerError(f"value {self.raw!r}: {exc}") from exc
        except PromptlabError as exc:  # a render limit: time, size, recursion, memory
            raise ScorerError(str(exc)) from exc


# -- scorers ----------------------------------------------------------------------------


class Scorer:
    """Base class: subclasses set `type`, `keys`, `needs_value` and implement `score`."""

    type: ClassVar[str] = ""
    keys: ClassVar[frozenset[str]] = frozenset()
    needs_value: ClassVar[bool] = False

    def __init__(self, spec: ScorerSpec, runtime: ScorerRuntime | None = None):
        self.spec = spec
        self.runtime = runtime
        self.value = Value(spec.value, spec.where)

    @classmethod
    def validate(cls, spec: ScorerSpec) -> None:
        """Load-time checks; the default checks the type's keys and `value`."""
        from promptlab.experiments._validate import suggest

        allowed = COMMON_KEYS | cls.keys
        for key in spec.options:
            if key not in allowed:
                raise ExperimentError(f"{spec.where}: unknown key {key!r} for scorer type "
                                      f"{cls.type!r}{suggest(key, allowed)}")
        if cls.needs_value and spec.value is None:
            raise ExperimentError(f"{spec.where}: scorer type {cls.type!r} needs a 'value'")
        Value(spec.value, spec.where)

    def prepare(self) -> None:
        """Run-time set-up (import a function, resolve a judge prompt). Errors are fatal."""

    def score(self, inp: ScoreInput) -> bool | float:
        raise NotImplementedError

    def __call__(self, inp: ScoreInput) -> bool | float:
        """The score after `not_`; raises ScorerError when this output cannot be scored."""
        try:
            result = self.score(inp)
        except PromptlabError:
            raise
        except (Exception, SystemExit) as exc:  # a scorer's sys.exit() must not end the run
            raise ScorerError(f"{type(exc).__name__}: {exc}") from exc
        result = check_result(result, self.spec.name)
        return negate(result) if self.spec.not_ else result


def check_result(result: Any, name: str) -> bool | float:
    if isinstance(result, bool):
        return result
    if isinstance(result, int | float):
        if isinstance(result, float) and not math.isfinite(result):
            raise ScorerError(f"scorer {name!r} returned {result}")
        if isinstance(result, int) and not -2**63 <= result < 2**63:
            try:
                return float(result)  # a log line holds 64-bit integers; beyond, a float
            except OverflowError:  # beyond 1.8e308
                raise ScorerError(f"scorer {name!r} returned an integer of "
                                  f"{int(math.log10(abs(result))) + 1} digits, beyond any "
                                  "float") from None
        return result
    raise ScorerError(f"scorer {name!r} returned {type(result).__name__} {result!r}; "
                      "expected a bool or a number")


def negate(result: bool | float) -> bool | float:
    if isinstance(result, bool):
        return not result
    if 0 <= result <= 1:
        return 1 - result
    raise ScorerError(f"not_ can only negate a bool or a number in [0, 1], got {result!r}")


