"""Scorers that match text: equals, contains, icontains, regex, json_valid, and
max_latency_ms."""

from __future__ import annotations

import json
import math
import re
from typing import Any, ClassVar

from promptlab.errors import ExperimentError, ScorerError
from promptlab.experiments.scorers._base import ScoreInput, Scorer, ScorerRuntime, ScorerSpec, Value


def _texts(value: Any) -> list[str]:
    """A value as a list of alternatives (a list means 'any of these')."""
    if isinstance(value, list | tuple):
        return [str(v) for v in value]
    return [str(value)]


def _wanted(scorer: Scorer, inp: ScoreInput, *, empty_ok: bool = True) -> list[str]:
    """The alternatives `value` gives for this cell; nothing to compare with is a scorer
    error, never a silent score: a row without `expected` would otherwise be compared with
    the text "None", and an empty needle is in every output."""
    value = scorer.value.get(inp)
    items = list(value) if isinstance(value, list | tuple) else [value]
    if not items or any(v is None for v in items):
        raise ScorerError(f"value {scorer.value.raw!r} is empty for item {inp.item_id!r} "
                          "(a dataset row without 'expected'?): nothing to compare with")
    texts = _texts(items)
    if not empty_ok and any(not t for t in texts):
        raise ScorerError(f"value {scorer.value.raw!r} is an empty string for item "
                          f"{inp.item_id!r}: every output contains it")
    return texts


class Equals(Scorer):
    """True when the output, trimmed, equals `value` (or any item of a list)."""

    type = "equals"
    keys = frozenset({"ignore_case"})
    needs_value = True

    def score(self, inp: ScoreInput) -> bool:
        fold = str.casefold if self.spec.options.get("ignore_case") else (lambda s: s)
        output = fold(inp.output.strip())
        return any(output == fold(v.strip()) for v in _wanted(self, inp))


class Contains(Scorer):
    """True when the output contains `value`; a list means any of them (`all = true`: all)."""

    type = "contains"
    keys = frozenset({"all", "ignore_case"})
    needs_value = True
    ignore_case = False

    def score(self, inp: ScoreInput) -> bool:
        ignore = self.ignore_case or bool(self.spec.options.get("ignore_case"))
        output = inp.output.casefold() if ignore else inp.output
        needles = [v.casefold() if ignore else v for v in _wanted(self, inp, empty_ok=False)]
        found = (needle in output for needle in needles)
        return all(found) if self.spec.options.get("all") else any(found)


class IContains(Contains):
    type = "icontains"
    keys = frozenset({"all"})
    ignore_case = True


class Regex(Scorer):
    """True when `value` (a Python regular expression) matches anywhere in the output.

    Matched by the `regex` package (its version 0 behaviour is the standard `re`'s), which
    can stop a match: one that runs past TIME_LIMIT_S on an output (a pattern that
    backtracks catastrophically, such as `(a|aa)+b`) is that cell's scorer error, where `re`
    would hang the run beyond the reach of Ctrl-C."""

    type = "regex"
    keys = frozenset({"flags"})
    needs_value = True
    TIME_LIMIT_S = 1.0
    _FLAGS: ClassVar[dict[str, str]] = {"i": "IGNORECASE", "m": "MULTILINE", "s": "DOTALL",
                                        "x": "VERBOSE"}

    @classmethod
    def validate(cls, spec: ScorerSpec) -> None:
        super().validate(spec)
        flags = cls._flags(spec)
        value = Value(spec.value, spec.where)
        if not value.dynamic:
            cls._compile(spec.value, flags, spec.where)

    @classmethod
    def _flags(cls, spec: ScorerSpec) -> str:
        letters = spec.options.get("flags", "")
        if not isinstance(letters, str) or any(c not in cls._FLAGS for c in letters):
            raise ExperimentError(f"{spec.where}: 'flags' must be letters from 'imsx', "
                                  f"got {letters!r}")
        return letters

    @classmethod
    def _compile(cls, pattern: Any, letters: str, where: str) -> Any:
        import regex  # (here: ~10 ms that only a regex scorer needs)

        flags = 0
        for c in letters:
            flags |= getattr(regex, cls._FLAGS[c])
        try:
            return regex.compile(str(pattern), flags | regex.VERSION0)
        except regex.error as exc:
            raise ScorerError(f"{where}: invalid regular expression {pattern!r}: {exc}") from exc

    def __init__(self, spec: ScorerSpec, runtime: ScorerRuntime | None = None):
        super().__init__(spec, runtime)
        self.flags = self._flags(spec)
        self.pattern = None if self.value.dynamic else self._compile(spec.value, self.flags,
                                                                     spec.where)

    def _dynamic_pattern(self, inp: ScoreInput) -> Any:
        _wanted(self, inp)  # raises when there is nothing to compare with
        return self.value.get(inp)

    def score(self, inp: ScoreInput) -> bool:
        pattern = self.pattern or self._compile(self._dynamic_pattern(inp), self.flags, "regex")
        try:
            return pattern.search(inp.output, timeout=self.TIME_LIMIT_S) is not None
        except TimeoutError as exc:
            raise ScorerError(
                f"regular expression {pattern.pattern!r} ran past {self.TIME_LIMIT_S:g}s on this "
                "output (it backtracks catastrophically: avoid nested repeats such as (a+)+ or "
                "(a|aa)+)") from exc


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
        value = spec.value
        if (isinstance(value, bool) or not isinstance(value, int | float)
                or not math.isfinite(value) or value < 0):
            raise ExperimentError(f"{spec.where}: 'value' must be a finite number of "
                                  f"milliseconds ≥ 0, got {value!r}")

    def score(self, inp: ScoreInput) -> bool:
        if inp.latency_ms is None:
            raise ScorerError("no latency recorded for this call")
        return inp.latency_ms <= self.spec.value


