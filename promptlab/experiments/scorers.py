"""Scorers: judge one output and return a bool or a number.

Built in: `equals`, `contains`, `icontains`, `regex`, `json_valid`, `max_latency_ms`,
`python`, `command`, `llm_judge`. Every scorer takes `name`, `not_` (negate: a bool is
inverted, a number in [0, 1] becomes 1 - x), `weight` (its share of `overall`, the weighted
mean written when there are several scorers) and `direction` ("higher" or "lower": which
way is better, for `compare`). `value` may use Jinja and sees the dataset item:
`{{ expected }}`, `{{ vars.code }}` or a variable directly (`{{ code }}`); a value that is
exactly one `{{ expression }}` keeps its type, so a list in `expected` stays a list.

Mistakes in the file (unknown type, broken regex, Jinja syntax) fail when the experiment
loads; a scorer that fails on one output is recorded on that cell and the run goes on.

Third-party scorers register a `Scorer` subclass in the `promptlab.scorers` entry point
group; `[[scorers]] type = "<entry point name>"` uses it.
"""

from __future__ import annotations

import json
import math
import re
import shlex
import subprocess
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from promptlab.errors import ExperimentError, PromptlabError, ScorerError

ENTRY_POINT_GROUP = "promptlab.scorers"
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
_env_lock = threading.Lock()
_env: Any = None


def _environment() -> Any:
    global _env
    if _env is None:
        with _env_lock:
            if _env is None:
                from jinja2 import StrictUndefined
                from jinja2.sandbox import ImmutableSandboxedEnvironment

                _env = ImmutableSandboxedEnvironment(undefined=StrictUndefined,
                                                     autoescape=False)
    return _env


class Value:
    """A scorer `value`: a constant, or Jinja evaluated against each item."""

    def __init__(self, raw: Any, where: str):
        self.raw = raw
        self._expr: Any = None
        self._template: Any = None
        if isinstance(raw, str) and ("{{" in raw or "{%" in raw):
            from jinja2 import TemplateSyntaxError

            env = _environment()
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
            return self._template.render(**inp.context())
        except TemplateError as exc:
            raise ScorerError(f"value {self.raw!r}: {exc}") from exc


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
        except Exception as exc:
            raise ScorerError(f"{type(exc).__name__}: {exc}") from exc
        result = check_result(result, self.spec.name)
        return negate(result) if self.spec.not_ else result


def check_result(result: Any, name: str) -> bool | float:
    if isinstance(result, bool):
        return result
    if isinstance(result, int | float):
        if isinstance(result, float) and not math.isfinite(result):
            raise ScorerError(f"scorer {name!r} returned {result}")
        return result
    raise ScorerError(f"scorer {name!r} returned {type(result).__name__} {result!r}; "
                      "expected a bool or a number")


def negate(result: bool | float) -> bool | float:
    if isinstance(result, bool):
        return not result
    if 0 <= result <= 1:
        return 1 - result
    raise ScorerError(f"not_ can only negate a bool or a number in [0, 1], got {result!r}")


def _texts(value: Any) -> list[str]:
    """A value as a list of alternatives (a list means 'any of these')."""
    if isinstance(value, list | tuple):
        return [str(v) for v in value]
    return [str(value)]


class Equals(Scorer):
    """True when the output, trimmed, equals `value` (or any item of a list)."""

    type = "equals"
    keys = frozenset({"ignore_case"})
    needs_value = True

    def score(self, inp: ScoreInput) -> bool:
        fold = str.casefold if self.spec.options.get("ignore_case") else (lambda s: s)
        output = fold(inp.output.strip())
        return any(output == fold(v.strip()) for v in _texts(self.value.get(inp)))


class Contains(Scorer):
    """True when the output contains `value`; a list means any of them (`all = true`: all)."""

    type = "contains"
    keys = frozenset({"all", "ignore_case"})
    needs_value = True
    ignore_case = False

    def score(self, inp: ScoreInput) -> bool:
        ignore = self.ignore_case or bool(self.spec.options.get("ignore_case"))
        output = inp.output.casefold() if ignore else inp.output
        needles = [v.casefold() if ignore else v for v in _texts(self.value.get(inp))]
        found = (needle in output for needle in needles)
        return all(found) if self.spec.options.get("all") else any(found)


class IContains(Contains):
    type = "icontains"
    keys = frozenset({"all"})
    ignore_case = True


class Regex(Scorer):
    """True when `value` (a Python regular expression) matches anywhere in the output."""

    type = "regex"
    keys = frozenset({"flags"})
    needs_value = True
    _FLAGS: ClassVar[dict[str, int]] = {"i": re.IGNORECASE, "m": re.MULTILINE,
                                        "s": re.DOTALL, "x": re.VERBOSE}

    @classmethod
    def validate(cls, spec: ScorerSpec) -> None:
        super().validate(spec)
        flags = cls._flags(spec)
        value = Value(spec.value, spec.where)
        if not value.dynamic:
            cls._compile(spec.value, flags, spec.where)

    @classmethod
    def _flags(cls, spec: ScorerSpec) -> int:
        letters = spec.options.get("flags", "")
        if not isinstance(letters, str) or any(c not in cls._FLAGS for c in letters):
            raise ExperimentError(f"{spec.where}: 'flags' must be letters from 'imsx', "
                                  f"got {letters!r}")
        result = 0
        for c in letters:
            result |= cls._FLAGS[c]
        return result

    @staticmethod
    def _compile(pattern: Any, flags: int, where: str) -> re.Pattern[str]:
        try:
            return re.compile(str(pattern), flags)
        except re.error as exc:
            raise ScorerError(f"{where}: invalid regular expression {pattern!r}: {exc}") from exc

    def __init__(self, spec: ScorerSpec, runtime: ScorerRuntime | None = None):
        super().__init__(spec, runtime)
        self.flags = self._flags(spec)
        self.pattern = None if self.value.dynamic else self._compile(spec.value, self.flags,
                                                                     spec.where)

    def score(self, inp: ScoreInput) -> bool:
        pattern = self.pattern or self._compile(self.value.get(inp), self.flags, "regex")
        return pattern.search(inp.output) is not None


_FENCE = re.compile(r"^```[A-Za-z0-9_-]*\s*\n(.*?)\n?```\s*$", re.DOTALL)


class JsonValid(Scorer):
    """True when the output is JSON (a reply that is one ```json fenced block counts)."""

    type = "json_valid"

    def score(self, inp: ScoreInput) -> bool:
        text = inp.output.strip()
        m = _FENCE.match(text)
        if m:
            text = m.group(1)
        try:
            json.loads(text)
        except ValueError:
            return False
        return True


class MaxLatency(Scorer):
    """True when the call took at most `value` milliseconds."""

    type = "max_latency_ms"
    needs_value = True

    @classmethod
    def validate(cls, spec: ScorerSpec) -> None:
        super().validate(spec)
        if isinstance(spec.value, bool) or not isinstance(spec.value, int | float):
            raise ExperimentError(f"{spec.where}: 'value' must be a number of milliseconds, "
                                  f"got {spec.value!r}")

    def score(self, inp: ScoreInput) -> bool:
        if inp.latency_ms is None:
            raise ScorerError("no latency recorded for this call")
        return inp.latency_ms <= self.spec.value


class PythonScorer(Scorer):
    """`function = "module:func"` or `"file.py:func"`, called with the keyword arguments it
    declares among output, expected, vars, item_id, metadata, variant, latency_ms, usage,
    prompt, value. Returns a bool or a number."""

    type = "python"
    keys = frozenset({"function"})

    @classmethod
    def validate(cls, spec: ScorerSpec) -> None:
        super().validate(spec)
        ref = spec.options.get("function")
        if not isinstance(ref, str) or ":" not in ref:
            raise ExperimentError(f"{spec.where}: type 'python' needs function = "
                                  "\"module:function\" or \"path/to/file.py:function\"")

    def prepare(self) -> None:
        from promptlab.providers._loader import load_function

        base = self.runtime.base_dir if self.runtime else Path.cwd()
        self.func = load_function(self.spec.options["function"], base, self.spec.where)

    def score(self, inp: ScoreInput) -> bool | float:
        from promptlab.providers._loader import call_with_accepted

        available = {"output": inp.output, "expected": inp.expected, "vars": dict(inp.vars),
                     "item_id": inp.item_id, "metadata": dict(inp.metadata),
                     "variant": inp.variant, "latency_ms": inp.latency_ms,
                     "usage": dict(inp.usage), "prompt": inp.prompt,
                     "value": self.value.get(inp)}
        return call_with_accepted(self.func, available)


class CommandScorer(Scorer):
    """`command = ["prog", "arg"]` (no shell) reads JSON on stdin (output, expected, vars,
    item_id, variant, latency_ms, value) and prints a number, true/false, pass/fail, or
    JSON `{"score": …}` / `{"pass": …}`. A non-zero exit is a scorer error."""

    type = "command"
    keys = frozenset({"command", "timeout_s"})

    @classmethod
    def validate(cls, spec: ScorerSpec) -> None:
        super().validate(spec)
        cls._argv(spec)
        timeout = spec.options.get("timeout_s", 30)
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
            raise ExperimentError(f"{spec.where}: 'timeout_s' must be a number > 0")

    @staticmethod
    def _argv(spec: ScorerSpec) -> list[str]:
        command = spec.options.get("command")
        if isinstance(command, str) and command.strip():
            return shlex.split(command)
        if isinstance(command, list) and command and all(isinstance(c, str) for c in command):
            return list(command)
        raise ExperimentError(f"{spec.where}: type 'command' needs command = [\"program\", "
                              "\"arg\", …] (run without a shell)")

    def score(self, inp: ScoreInput) -> bool | float:
        argv = self._argv(self.spec)
        payload = json.dumps({"output": inp.output, "expected": inp.expected,
                              "vars": dict(inp.vars), "item_id": inp.item_id,
                              "variant": inp.variant, "latency_ms": inp.latency_ms,
                              "value": self.value.get(inp)}, ensure_ascii=False, default=str)
        timeout = self.spec.options.get("timeout_s", 30)
        cwd = self.runtime.base_dir if self.runtime else None
        try:
            proc = subprocess.run(argv, input=payload.encode(), capture_output=True,
                                  timeout=timeout, cwd=cwd, start_new_session=True, check=False)
        except FileNotFoundError as exc:
            raise ScorerError(f"command {argv[0]!r} not found") from exc
        except subprocess.TimeoutExpired as exc:
            raise ScorerError(f"command {argv[0]!r} timed out after {timeout:g}s") from exc
        if proc.returncode != 0:
            lines = proc.stderr.decode("utf-8", "replace").strip().splitlines()
            detail = f": {lines[-1]}" if lines else ""
            raise ScorerError(f"command {argv[0]!r} exited with status {proc.returncode}"
                              f"{detail}")
        return parse_verdict(proc.stdout.decode("utf-8", "replace"), "auto",
                             f"command {argv[0]!r}")


_PASS = re.compile(r"\b(pass|passed|yes|true|correct)\b", re.IGNORECASE)
_FAIL = re.compile(r"\b(fail|failed|no|false|incorrect)\b", re.IGNORECASE)
_NUMBER = re.compile(r"[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?")


def parse_verdict(text: str, mode: str, what: str) -> bool | float:
    """A number, or pass/fail, from a judge's or a command's output.

    `mode` "number" takes the first number; "pass_fail" the first PASS/FAIL-like word;
    "auto" accepts JSON `{"score"|"pass": …}`, a bare true/false/number, then pass/fail
    words, then the first number.
    """
    stripped = text.strip()
    if mode == "auto":
        try:
            data = json.loads(stripped)
        except ValueError:
            data = None
        if isinstance(data, dict):
            for key in ("score", "pass", "value"):
                if isinstance(data.get(key), bool | int | float):
                    return data[key]
        if isinstance(data, bool | int | float):
            return data
    if mode in ("auto", "pass_fail"):
        passed, failed = _PASS.search(stripped), _FAIL.search(stripped)
        if passed and (not failed or passed.start() < failed.start()):
            return True
        if failed:
            return False
        if mode == "pass_fail":
            raise ScorerError(f"{what} gave no PASS/FAIL verdict: {stripped[:80]!r}")
    m = _NUMBER.search(stripped)
    if m:
        return float(m.group(0))
    raise ScorerError(f"{what} gave no score: {stripped[:80]!r}")


class LlmJudge(Scorer):
    """A judge prompt from the registry (versioned like any prompt), rendered with the
    item's variables plus `output`, `expected` and `input` (the prompt sent), run through
    a provider (`provider = {…}`, default: the experiment's), its answer parsed as a
    number (`parse = "number"`, `scale` divides it), pass/fail (`"pass_fail"`) or either
    (`"auto"`). `threshold` turns a number into pass (≥ threshold) / fail."""

    type = "llm_judge"
    keys = frozenset({"prompt", "provider", "parse", "scale", "threshold"})

    @classmethod
    def validate(cls, spec: ScorerSpec) -> None:
        super().validate(spec)
        if not isinstance(spec.options.get("prompt"), str):
            raise ExperimentError(f"{spec.where}: type 'llm_judge' needs prompt = "
                                  "\"<judge prompt id>\" (a prompt in the registry)")
        if spec.options.get("parse", "auto") not in ("auto", "number", "pass_fail"):
            raise ExperimentError(f"{spec.where}: 'parse' must be \"auto\", \"number\" or "
                                  f"\"pass_fail\", got {spec.options.get('parse')!r}")
        for key in ("scale", "threshold"):
            value = spec.options.get(key)
            if value is not None and (isinstance(value, bool)
                                      or not isinstance(value, int | float)):
                raise ExperimentError(f"{spec.where}: {key!r} must be a number")
        if spec.options.get("scale") == 0:
            raise ExperimentError(f"{spec.where}: 'scale' must not be 0")
        provider = spec.options.get("provider")
        if provider is not None and not isinstance(provider, dict):
            raise ExperimentError(f"{spec.where}: 'provider' must be a table like "
                                  "{type = \"openai\", model = \"gpt-4o\"}")

    def prepare(self) -> None:
        if self.runtime is None or self.runtime.registry is None or not self.runtime.complete:
            raise ScorerError(f"{self.spec.where}: llm_judge needs a prompt registry and a "
                              "provider")
        self.prompt = self.runtime.registry.get(self.spec.options["prompt"])
        self.prompt.template  # noqa: B018 - parse now so a broken judge prompt fails early
        table = self.spec.options.get("provider")
        self.provider_spec = (self.runtime.make_provider_spec(table, self.spec.where)
                              if table is not None and self.runtime.make_provider_spec
                              else None)
        self.last: dict[str, Any] = {}

    def score(self, inp: ScoreInput) -> bool | float:
        variables = {**inp.context(), "input": inp.prompt}
        rendered = self.prompt.render(variables)
        text = self.runtime.complete(self.provider_spec, rendered)  # type: ignore[union-attr]
        verdict = parse_verdict(text, self.spec.options.get("parse", "auto"),
                                f"judge {self.prompt.id}/{self.prompt.version.name}")
        if not isinstance(verdict, bool):
            scale = self.spec.options.get("scale")
            if scale:
                verdict = verdict / scale
            threshold = self.spec.options.get("threshold")
            if threshold is not None:
                verdict = verdict >= threshold
        return verdict

    @property
    def judge_ref(self) -> str:
        return f"{self.prompt.id}/{self.prompt.version.name}"


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
