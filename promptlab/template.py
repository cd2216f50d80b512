"""Version files: YAML front matter, a sandboxed Jinja template, role markers → `Rendered`.

Role markers (`system:`, `user:`, `assistant:` alone on a line) are found in the template
*source*. Each is replaced by a token carrying a per-process random nonce before Jinja
sees the text, and the rendered output is split on those tokens. A variable's value can
therefore never start a new message (it cannot know the nonce), while Jinja statements
(`{% set %}`, macros, `{% for %}` around a user/assistant pair for few-shot examples)
work across messages.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from promptlab.config import RENDER_MAX_CHARS, RENDER_TIMEOUT_S
from promptlab.errors import RenderError, SandboxError, TemplateError

ROLES = ("system", "user", "assistant")
_MARKER_LINE = re.compile(r"^(system|user|assistant):[ \t]*\r?$", re.MULTILINE)
_NONCE = secrets.token_hex(8)
_TOKEN = "\x00\x01{role}:" + _NONCE + "\x01\x00"
_TOKEN_SPLIT = re.compile("\x00\x01(system|user|assistant):" + _NONCE + "\x01\x00")

SCHEMA_TYPES = ("string", "number", "integer", "boolean", "array", "object", "any")
_SCHEMA_KEY = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)(\?)?(?:\(([^,)]*)(?:,([^)]*))?\))?$")


@dataclass(frozen=True)
class Rendered:
    """A rendered prompt: chat messages, model settings and the stamp for the log.

    `stamp` holds `prompt_id`, `prompt_version`, `prompt_label`, `prompt_sha`,
    `prompt_commit` and `prompt_dirty`; an experiment adds `experiment`, `variant`,
    `unit_id`. `logger.call(rendered)` copies all of it into the log entry.
    """

    messages: list[dict[str, str]]
    model: str | None = None
    config: dict[str, Any] = field(default_factory=dict)
    stamp: dict[str, Any] = field(default_factory=dict)

    def _joined(self, role: str) -> str | None:
        parts = [m["content"] for m in self.messages if m["role"] == role]
        return "\n\n".join(parts) if parts else None

    @property
    def system(self) -> str | None:
        """The system messages' text, or None when there is none."""
        return self._joined("system")

    @property
    def user(self) -> str | None:
        """The user messages' text, or None when there is none."""
        return self._joined("user")

    @property
    def text(self) -> str:
        """Every message's text, joined by blank lines (what a plain-text model is fed)."""
        return "\n\n".join(m["content"] for m in self.messages)

    def with_stamp(self, **fields: Any) -> Rendered:
        """A copy whose stamp also carries `fields` (e.g. experiment, variant, unit_id)."""
        return replace(self, stamp={**self.stamp, **fields})

    def to_dict(self) -> dict[str, Any]:
        return {
            "messages": [dict(m) for m in self.messages],
            "model": self.model,
            "config": dict(self.config),
            "stamp": dict(self.stamp),
        }


@dataclass(frozen=True)
class Field:
    """One declared input variable (Picoschema: `name?: type, description`)."""

    name: str
    type: str = "any"
    required: bool = True
    description: str | None = None


@dataclass(frozen=True)
class FrontMatter:
    description: str | None = None
    model: str | None = None
    config: dict[str, Any] = field(default_factory=dict)
    schema: dict[str, Field] | None = None
    defaults: dict[str, Any] = field(default_factory=dict)
    tags: tuple[str, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)


def split_front_matter(text: str, path: Path | str) -> tuple[dict[str, Any], str, int]:
    """Return (front matter mapping, body, number of lines the front matter took)."""
    if not (text.startswith("---\n") or text.startswith("---\r\n")):
        return {}, text, 0
    lines = text.splitlines(keepends=True)
    for i in range(1, len(lines)):
        if lines[i].rstrip("\r\n") == "---":
            yaml_text = "".join(lines[1:i])
            body = "".join(lines[i + 1 :])
            return _parse_yaml(yaml_text, path), body, i + 1
    raise TemplateError(f"{path}: front matter starts with '---' on line 1 but is never closed;"
                        " add a line '---' after it")


# Picoschema's optional marker in a flow mapping (`{code: string, language?: string}`) is
# not valid YAML 1.1; when the plain parse fails, such keys are quoted and parsed again.
_OPTIONAL_KEY = re.compile(r"(?<=[{,\s])([A-Za-z_][A-Za-z0-9_]*\?)(?=:)")


def _parse_yaml(yaml_text: str, path: Path | str) -> dict[str, Any]:
    import yaml

    try:
        try:
            data = yaml.safe_load(yaml_text)
        except yaml.YAMLError:
            fixed = _OPTIONAL_KEY.sub(r'"\1"', yaml_text)
            if fixed == yaml_text:
                raise
            try:
                data = yaml.safe_load(fixed)
            except yaml.YAMLError:
                data = yaml.safe_load(yaml_text)  # re-raise the original error
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        if exc.context_mark is not None and "stream end" in (exc.problem or ""):
            mark = exc.context_mark  # an unclosed bracket: point at where it opened
        line = f" line {mark.line + 2}" if mark is not None else ""
        problem = exc.problem or exc.context or "invalid YAML"
        raise TemplateError(f"{path}:{line}: invalid front matter YAML: {problem}") from exc
    except yaml.YAMLError as exc:
        raise TemplateError(f"{path}: invalid front matter YAML: {exc}") from exc
    except RecursionError:
        raise TemplateError(f"{path}: the front matter nests too deeply to read; flatten it"
                            ) from None
    if data is None:
        return {}
    _check_expanded_size(data, path)
    if not isinstance(data, dict):
        raise TemplateError(f"{path}: front matter must be a mapping of keys "
                            f"(description, model, config, input, tags), got {type(data).__name__}")
    return data


MAX_FRONT_MATTER_VALUES = 100_000


def _check_expanded_size(data: Any, path: Path | str) -> None:
    """Refuse front matter that expands beyond MAX_FRONT_MATTER_VALUES values.

    YAML aliases are references: nine lines of `b: &b [*a, *a, …]` load instantly but
    stand for 10**9 strings, and every later copy or `json.dumps` of `config` (render
    --json, each logged call) would hang and take the machine's memory.
    """
    seen = 0
    stack = [data]
    while stack:
        value = stack.pop()
        seen += 1
        if seen > MAX_FRONT_MATTER_VALUES:
            raise TemplateError(f"{path}: the front matter expands to more than "
                                f"{MAX_FRONT_MATTER_VALUES:,} values (YAML aliases repeating "
                                "each other?); write it out plainly")
        if isinstance(value, dict):
            stack.extend(value.keys())
            stack.extend(value.values())
        elif isinstance(value, list | tuple | set):
            stack.extend(value)


def parse_front_matter(data: dict[str, Any], path: Path | str) -> FrontMatter:
    """Validate the known front matter keys; anything else is kept in `extra`."""

    def expect(key: str, value: Any, kind: type | tuple[type, ...], what: str) -> Any:
        if not isinstance(value, kind):
            raise TemplateError(f"{path}: front matter {key!r} must be {what}, got {value!r}")
        return value

    data = dict(data)
    description = data.pop("description", None)
    if description is not None:
        expect("description", description, str, "a string")
    model = data.pop("model", None)
    if model is not None:
        expect("model", model, str, "a string")
    config = expect("config", data.pop("config", None) or {}, dict, "a mapping")
    _check_finite(config, "config", path)
    tags = data.pop("tags", None) or []
    if isinstance(tags, str):
        tags = [tags]
    expect("tags", tags, list, "a list of strings")
    if not all(isinstance(t, str) for t in tags):
        raise TemplateError(f"{path}: front matter 'tags' must be a list of strings, got {tags!r}")
    inp = expect("input", data.pop("input", None) or {}, dict, "a mapping with schema/default")
    unknown = set(inp) - {"schema", "default"}
    if unknown:
        raise TemplateError(f"{path}: front matter input has unknown key(s) "
                            f"{', '.join(sorted(unknown))}; use 'schema' and 'default'")
    schema = parse_schema(inp["schema"], path) if inp.get("schema") is not None else None
    defaults = expect("input.default", inp.get("default") or {}, dict, "a mapping")
    return FrontMatter(description=description, model=model, config=config, schema=schema,
                       defaults=defaults, tags=tuple(tags), extra=data)


def _check_finite(value: Any, key: str, path: Path | str) -> None:
    """Refuse NaN and infinity (YAML `.nan`, `.inf`): no model takes them, and JSON has
    no way to write them (`render --json` and the log would print invalid JSON)."""
    import math

    stack = [(key, value)]
    while stack:
        where, item = stack.pop()
        if isinstance(item, float) and not math.isfinite(item):
            raise TemplateError(f"{path}: front matter {where} is {item}; use a finite number")
        if isinstance(item, dict):
            stack.extend(reversed([(f"{where}.{k}", v) for k, v in item.items()]))
        elif isinstance(item, list):
            stack.extend(reversed([(f"{where}[{i}]", v) for i, v in enumerate(item)]))


def parse_schema(schema: Any, path: Path | str) -> dict[str, Field]:
    """Picoschema (`{code: string, language?: string}`) or a JSON-schema object."""
    if not isinstance(schema, dict):
        raise TemplateError(f"{path}: input.schema must be a mapping of variable names, "
                            f"got {schema!r}")
    if schema.get("type") == "object" and isinstance(schema.get("properties"), dict):
        return _parse_json_schema(schema, path)
    fields: dict[str, Field] = {}
    for key, spec in schema.items():
        m = _SCHEMA_KEY.match(str(key).strip())
        if not m:
            raise TemplateError(f"{path}: input.schema key {key!r} is not a variable name "
                                "(letters, digits, _; add '?' for optional)")
        name, optional, paren_type, paren_desc = m.groups()
        description = paren_desc.strip() if paren_desc else None
        if paren_type:
            type_ = paren_type.strip()
        elif isinstance(spec, dict):
            type_ = "object"
        elif isinstance(spec, str):
            type_, _, desc = spec.partition(",")
            type_ = type_.strip()
            description = desc.strip() or description
        elif spec is None:
            type_ = "any"
        else:
            raise TemplateError(f"{path}: input.schema {key!r}: expected a type name, got {spec!r}")
        if type_ not in SCHEMA_TYPES:
            raise TemplateError(f"{path}: input.schema {key!r}: unknown type {type_!r}; "
                                f"use one of {', '.join(SCHEMA_TYPES)}")
        fields[name] = Field(name, type_, not optional, description)
    return fields


def _parse_json_schema(schema: dict[str, Any], path: Path | str) -> dict[str, Field]:
    """A JSON-schema object (`type: object`, `properties`, `required`) as fields."""
    required = schema.get("required")
    if required is None:
        required = []
    if not isinstance(required, list) or not all(isinstance(r, str) for r in required):
        raise TemplateError(f"{path}: input.schema 'required' must be a list of property "
                            f"names, got {required!r}")
    fields = {}
    for name, spec in schema["properties"].items():
        if not isinstance(name, str) or not name:
            raise TemplateError(f"{path}: input.schema property {name!r} is not a variable "
                                "name; property names are strings")
        description = spec.get("description") if isinstance(spec, dict) else None
        if description is not None and not isinstance(description, str):
            raise TemplateError(f"{path}: input.schema property {name!r}: 'description' must "
                                f"be a string, got {description!r}")
        fields[name] = Field(name, _json_schema_type(spec), name in required, description)
    unknown = [r for r in required if r not in fields]
    if unknown:
        raise TemplateError(f"{path}: input.schema 'required' names {', '.join(map(repr, unknown))}"
                            ", which is not in 'properties'; add it there or remove it")
    return fields


def _json_schema_type(spec: Any) -> str:
    type_ = spec.get("type") if isinstance(spec, dict) else None
    return type_ if type_ in SCHEMA_TYPES else "any"


def _type_ok(type_: str, value: Any) -> bool:
    if type_ == "any":
        return True
    if type_ == "string":
        return isinstance(value, str)
    if type_ == "boolean":
        return isinstance(value, bool)
    if type_ == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if type_ == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    if type_ == "array":
        return isinstance(value, list | tuple)
    return isinstance(value, dict)


def coerce_value(type_: str, value: str) -> Any:
    """Turn a command-line string into the declared type (numbers, booleans, JSON)."""
    import json

    try:
        if type_ == "integer":
            return int(value)
        if type_ == "number":
            return float(value) if any(c in value for c in ".eE") else int(value)
        if type_ == "boolean":
            lowered = value.strip().lower()
            if lowered in ("true", "1", "yes", "on"):
                return True
            if lowered in ("false", "0", "no", "off"):
                return False
            raise ValueError(value)
        if type_ in ("array", "object"):
            return json.loads(value)
    except ValueError as exc:
        raise RenderError(f"value {value!r} is not a valid {type_}") from exc
    return value


# -- the sandbox --------------------------------------------------------------------------


@dataclass(frozen=True)
class RenderLimits:
    """How long one render may take and how much text it may produce.

    Templates come from files many people edit, and an experiment renders thousands of
    them: a loop of loops, `"a" * 3000000000` or a runaway macro must fail with a clear
    error, not take the machine. Set in the project file as `render_timeout_s` and
    `render_max_chars`.
    """

    timeout_s: float = RENDER_TIMEOUT_S
    max_chars: int = RENDER_MAX_CHARS

    @classmethod
    def from_settings(cls, settings: Any) -> RenderLimits:
        return cls(settings.render_timeout_s, settings.render_max_chars)


DEFAULT_LIMITS = RenderLimits()


class _LimitExceeded(Exception):
    """Raised inside a render by the sandbox hooks; becomes a TemplateError naming the file."""


class _Budget(threading.local):
    """The limits of the render running on this thread (None outside a render)."""

    limits: RenderLimits = DEFAULT_LIMITS
    deadline: float | None = None


_budget = _Budget()
_WIDTH = re.compile(r"\d{4,}")  # a number in a format string or spec: "%0999999999d", "{:>99999999}"


def _tick() -> None:
    deadline = _budget.deadline
    if deadline is not None and time.monotonic() > deadline:
        raise _LimitExceeded(f"rendering took longer than render_timeout_s "
                             f"({_budget.limits.timeout_s:g} s)")


def _check_size(n: int, what: str = "the output") -> None:
    limit = _budget.limits.max_chars
    if n > limit:
        raise _LimitExceeded(f"{what} would be {n:,} characters, more than render_max_chars "
                             f"({limit:,})")


def _check_widths(fmt: str) -> None:
    """Refuse a format string whose field widths alone exceed the output limit."""
    for m in _WIDTH.finditer(fmt):
        _check_size(int(m.group()), "a formatted field")


def _check_numbers(args: Any) -> None:
    for arg in args:
        if isinstance(arg, int) and not isinstance(arg, bool):
            _check_size(arg, "a width or repeat count")


_SEQUENCE = (str, bytes, bytearray, list, tuple)


def _text_size(value: Any, limit: int) -> int:
    """A lower bound on `len(str(value))`, counted only until it passes `limit`.

    A list holding the same million-item list a thousand times is small in memory but
    billions of characters as text: output, `~`, `join`, `tojson` measure it this way
    before building the text.
    """
    if isinstance(value, str | bytes | bytearray):
        return len(value)
    if not isinstance(value, list | tuple | dict | set | frozenset):
        return 1
    size = 0
    stack = [value]
    while stack and size <= limit:
        item = stack.pop()
        if isinstance(item, str | bytes | bytearray):
            size += len(item) + 2  # quotes of its repr
        elif isinstance(item, dict):
            size += 4 * len(item) + 2  # "{k: v, …}"
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list | tuple | set | frozenset):
            size += 2 * len(item) + 2  # "[x, …]"
            stack.extend(item)
        else:
            size += 1
    return size


def _check_text(value: Any, what: str = "the output") -> None:
    """Refuse a value whose text (`str(value)`) would pass the output limit."""
    if _budget.deadline is not None and not isinstance(value, str):
        _check_size(_text_size(value, _budget.limits.max_chars), what)


def _check_join(separator: Any, items: list[Any]) -> None:
    """Refuse `separator.join(items)` whose result would pass the output limit."""
    limit = _budget.limits.max_chars
    size = _text_size(separator, limit) * max(len(items) - 1, 0)
    for item in items:
        if size > limit:
            break
        size += _text_size(item, limit)
    _check_size(size, "a joined text")


def _check_replace(text: Any, old: Any, new: Any, count: Any = -1) -> None:
    """Refuse `text.replace(old, new)` whose result would pass the output limit."""
    kinds = (str, bytes, bytearray)
    if not (isinstance(text, kinds) and isinstance(old, kinds) and isinstance(new, kinds)):
        return  # str.replace raises its own TypeError
    if len(new) <= len(old):
        return
    n = text.count(old) if old else len(text) + 1
    if isinstance(count, int) and count >= 0:
        n = min(n, count)
    _check_size(len(text) + n * (len(new) - len(old)), "a replaced text")


def _guard_iter(iterable: Any) -> Any:
    """Every loop's iterable: checks the clock on each item."""
    for item in iterable:
        _tick()
        yield item


def _guard_range(*args: int) -> Any:
    """`range` in templates: at most MAX_RANGE items (like Jinja's sandbox), clock-checked."""
    from jinja2.sandbox import MAX_RANGE

    rng = range(*args)
    if len(rng) > MAX_RANGE:
        raise _LimitExceeded(f"range of {len(rng):,} items; templates may use at most "
                             f"{MAX_RANGE:,}")
    return _guard_iter(rng)


# The longest word Jinja's lorem ipsum uses is 12 letters; with its comma or full stop and
# a space, 14 characters a word, and a paragraph's HTML tags at most 10 more.
_LIPSUM_WORD = 14


def _guard_lipsum(n: int = 5, html: bool = True, min: int = 20, max: int = 100) -> str:
    """`lipsum()` in templates (Jinja's names for its arguments), its longest possible
    text checked before any of it is made."""
    from jinja2.utils import generate_lorem_ipsum

    _tick()
    _check_numbers((n, min, max))
    if n > 0 and max > 0:
        _check_size(n * (max * _LIPSUM_WORD + 10), "lipsum's text")
    return generate_lorem_ipsum(n, html, min, max)


def _guarded_concat(parts: Any) -> str:
    """`a ~ b`: repeated doubling must hit the size limit, not the machine's memory."""
    limit = _budget.limits.max_chars
    _check_size(sum(_text_size(part, limit) for part in parts))
    text = "".join(map(str, parts))
    _check_size(len(text))
    return text


def _finalize(value: Any) -> Any:
    """Every `{{ … }}`: a container's text is measured before `str()` builds it."""
    if value.__class__ is not str:  # the common case first: this runs on every output
        _check_text(value)
    return value


def _limited_filter(fn: Any, *, widths: bool = False) -> Any:
    """A built-in filter whose numeric arguments (or format widths) are checked first."""
    import functools

    @functools.wraps(fn)
    def wrapper(value: Any, *args: Any, **kwargs: Any) -> Any:
        _check_numbers((*args, *kwargs.values()))
        if widths and isinstance(value, str):
            _check_widths(value)
        return fn(value, *args, **kwargs)

    return wrapper


def _limited_filters(env: Any) -> None:
    """Replace the built-in filters that can build text or lists past the size limit
    with versions that check the size first."""
    from jinja2 import pass_environment, pass_eval_context
    from jinja2.filters import do_indent, do_replace, do_wordwrap, make_attrgetter, sync_do_join

    filters = env.filters

    @pass_environment
    def sum_(environment: Any, iterable: Any, attribute: Any = None, start: Any = 0) -> Any:
        if isinstance(start, str | bytes | bytearray):
            raise TypeError("sum() can't sum strings [use ''.join(seq) instead]")
        if attribute is not None:
            iterable = map(make_attrgetter(environment, attribute), iterable)
        total = start
        for item in iterable:
            _tick()
            if isinstance(total, _SEQUENCE) and isinstance(item, _SEQUENCE):
                _check_size(len(total) + len(item), "a sum of lists")
            total = total + item
        return total

    @pass_eval_context
    def join(eval_ctx: Any, value: Any, d: Any = "", attribute: Any = None) -> str:
        if attribute is not None:
            value = map(make_attrgetter(eval_ctx.environment, attribute), value)
        items = list(_guard_iter(value))
        _check_join(d, items)
        return sync_do_join(eval_ctx, items, d)

    @pass_eval_context
    def replace(eval_ctx: Any, s: Any, old: Any, new: Any, count: Any = None) -> str:
        _check_text(s)
        _check_replace(str(s), str(old), str(new), -1 if count is None else count)
        return do_replace(eval_ctx, s, old, new, count)

    def indent(s: Any, width: Any = 4, first: bool = False, blank: bool = False) -> str:
        _check_text(s)
        text = str(s)
        step = len(width) if isinstance(width, str) else width
        if isinstance(step, int):
            _check_size(len(text) + step * (text.count("\n") + 2), "an indented text")
        return do_indent(s, width, first, blank)

    @pass_environment
    def wordwrap(environment: Any, s: Any, width: int = 79, break_long_words: bool = True,
                 wrapstring: Any = None, break_on_hyphens: bool = True) -> str:
        _check_text(s)
        text = str(s)
        if isinstance(wrapstring, str) and isinstance(width, int) and width > 0:
            breaks = (text.count(" ") + text.count("\t") + text.count("\n")
                      + len(text) // width + 1)
            _check_size(len(text) + breaks * len(wrapstring), "a wrapped text")
        return do_wordwrap(environment, s, width, break_long_words, wrapstring,
                           break_on_hyphens)

    def measured(fn: Any) -> Any:
        import functools

        @functools.wraps(fn)
        def wrapper(value: Any, *args: Any, **kwargs: Any) -> Any:
            _check_text(value)
            return fn(value, *args, **kwargs)

        return wrapper

    filters.update(sum=sum_, join=join, replace=replace, indent=indent, wordwrap=wordwrap)
    for name in ("center", "truncate", "batch", "slice"):
        filters[name] = _limited_filter(filters[name])
    filters["format"] = _limited_filter(filters["format"], widths=True)
    filters["pprint"] = measured(filters["pprint"])  # tojson: see sandbox()


def _limited_environment(**options: Any) -> Any:
    """Jinja's immutable sandbox with time and size limits on every render."""
    from functools import update_wrapper

    from jinja2 import nodes
    from jinja2.compiler import CodeGenerator
    from jinja2.sandbox import ImmutableSandboxedEnvironment, SandboxedFormatter
    from markupsafe import EscapeFormatter, Markup

    class LimitedCodeGenerator(CodeGenerator):
        def visit_Template(self, node: Any, frame: Any = None) -> None:
            # Every `{% for %}` iterates through _guard_iter, so no loop outruns the clock.
            for loop in node.find_all(nodes.For):
                if not getattr(loop, "_promptlab_guarded", False):
                    loop.iter = nodes.Filter(loop.iter, "_promptlab_iter", [], [], None, None,
                                             lineno=loop.iter.lineno)
                    loop._promptlab_guarded = True
            super().visit_Template(node, frame)

        def visit_Concat(self, node: Any, frame: Any) -> None:
            self.write("environment.promptlab_concat((")
            for arg in node.nodes:
                self.visit(arg, frame)
                self.write(", ")
            self.write("))")

    class LimitedFormatter(SandboxedFormatter):
        """`str.format` in templates: each field's width, as finally given (literally or
        by another argument, `"{:{}}".format(x, "999999999")`), is checked first."""

        def format_field(self, value: Any, format_spec: str) -> Any:
            _tick()
            _check_widths(format_spec)
            _check_text(value, "a formatted field")
            return super().format_field(value, format_spec)

    class LimitedEscapeFormatter(LimitedFormatter, EscapeFormatter):
        pass

    class LimitedSandbox(ImmutableSandboxedEnvironment):
        code_generator_class = LimitedCodeGenerator
        intercepted_binops = frozenset(["*", "**", "%", "+"])
        promptlab_concat = staticmethod(_guarded_concat)

        def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
            _tick()
            if operator == "+":
                if isinstance(left, _SEQUENCE) and isinstance(right, _SEQUENCE):
                    _check_size(len(left) + len(right))
            elif operator == "*":
                for seq, n in ((left, right), (right, left)):
                    if isinstance(seq, _SEQUENCE) and isinstance(n, int):
                        _check_size(len(seq) * n)
            elif operator == "**" and isinstance(left, int) and isinstance(right, int):
                if right > 0 and abs(left) > 1:
                    _check_size(abs(left).bit_length() * right // 3, "a number's digits")
            elif operator == "%" and isinstance(left, str):
                _check_widths(left)
                args = right if isinstance(right, tuple) else (right,)
                _check_numbers(args)
                for arg in args:
                    _check_text(arg, "a formatted field")
            return super().call_binop(context, operator, left, right)

        def wrap_str_format(self, value: Any) -> Any:
            # Jinja's own, with a formatter that checks each field before formatting it.
            if super().wrap_str_format(value) is None:
                return None
            f_self = value.__self__
            formatter = (LimitedEscapeFormatter(self, escape=f_self.escape)
                         if isinstance(f_self, Markup) else LimitedFormatter(self))
            is_format_map = value.__name__ == "format_map"

            def wrapper(*args: Any, **kwargs: Any) -> str:
                if is_format_map:
                    if kwargs or len(args) != 1:
                        raise TypeError("format_map() takes exactly one mapping argument")
                    args, kwargs = (), args[0]
                return type(f_self)(formatter.vformat(f_self, args, kwargs))

            return update_wrapper(wrapper, value)

        def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
            _tick()
            method = getattr(__obj, "__wrapped__", __obj)
            bound = getattr(method, "__self__", None)
            if isinstance(bound, str | bytes | bytearray):  # "a".ljust(N), "x".join(…), …
                name = getattr(method, "__name__", "")
                if name == "join" and len(args) == 1 and not kwargs:
                    args = (list(_guard_iter(args[0])),)
                    _check_join(bound, args[0])
                elif name == "replace" and len(args) >= 2:
                    _check_replace(bound, args[0], args[1], args[2] if len(args) > 2
                                   else kwargs.get("count", -1))
                elif name == "expandtabs":
                    tabsize = args[0] if args else kwargs.get("tabsize", 8)
                    if isinstance(tabsize, int):
                        _check_size(len(bound) + bound.count("\t") * tabsize, "an expanded text")
                if name not in ("format", "format_map"):  # their widths: LimitedFormatter
                    _check_numbers((*args, *kwargs.values()))
            return super().call(__context, __obj, *args, **kwargs)

    env = LimitedSandbox(finalize=_finalize, **options)
    env.globals["range"] = _guard_range
    env.globals["lipsum"] = _guard_lipsum
    env.filters["_promptlab_iter"] = _guard_iter
    _limited_filters(env)
    return env


def render_limited(compiled: Any, values: dict[str, Any], where: Path | str,
                   limits: RenderLimits | None = None) -> str:
    """Render a template compiled in `sandbox()` within `limits`.

    Exceeding a limit, recursing too deep or running out of memory is a one-line
    TemplateError naming `where`; no render can run past its time limit or build text
    past its size limit.
    """
    limits = limits or DEFAULT_LIMITS
    saved = (_budget.limits, _budget.deadline)
    _budget.limits = limits
    _budget.deadline = time.monotonic() + limits.timeout_s
    chunks: list[str] = []
    size = 0
    try:
        # The render loop itself (Template.render minus its traceback rewriting).
        for chunk in compiled.root_render_func(compiled.new_context(values)):
            size += len(chunk)
            if size > limits.max_chars:
                _check_size(size)
            chunks.append(chunk)
        _tick()
    except _LimitExceeded as exc:
        raise TemplateError(f"{where}: {exc}; simplify the template or raise the limit in "
                            "the project settings (render_timeout_s, render_max_chars)") from None
    except RecursionError:
        raise TemplateError(f"{where}: recursion too deep (a macro or include that calls "
                            "itself without end?)") from None
    except MemoryError:
        raise TemplateError(f"{where}: ran out of memory while rendering; the template "
                            "builds too much text") from None
    finally:
        _budget.limits, _budget.deadline = saved
    return "".join(chunks)


_env_lock = threading.Lock()
_env: Any = None


def sandbox() -> Any:
    """The shared Jinja environment: immutable sandbox with render limits, StrictUndefined,
    plain-JSON tojson.

    Prompt templates and experiment values (scorer `value`s) both render in it; render
    with `render_limited` so the time limit applies.
    """
    global _env
    if _env is None:
        with _env_lock:
            if _env is None:
                import json

                from jinja2 import StrictUndefined

                env = _limited_environment(
                    undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True
                )
                # Jinja's own tojson escapes <, > and & for HTML; prompts want plain JSON.
                def tojson(value: Any, indent: int | None = None) -> str:
                    _check_text(value, "a JSON text")
                    return json.dumps(value, ensure_ascii=False, indent=indent, default=str)

                env.filters["tojson"] = tojson
                _env = env
    return _env


@dataclass(frozen=True)
class Template:
    """A parsed, compiled version file. Load through `Template.load` (cached)."""

    path: Path
    source: str
    sha256: str
    front: FrontMatter
    body: str
    has_roles: bool
    _compiled: Any = field(repr=False, compare=False)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Template:
        """Parse and compile `path`, reusing the compiled template while the file is unchanged."""
        path = Path(path)
        try:
            st = os.stat(path)
        except OSError as exc:
            raise TemplateError(f"{path}: cannot read: {exc.strerror}") from exc
        key = (st.st_mtime_ns, st.st_size, st.st_ino)
        hit = _cache.get(path)
        if hit is not None and hit[0] == key:
            return hit[1]
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise TemplateError(f"{path}: cannot read: {exc.strerror or exc}") from exc
        template = cls.from_bytes(data, path)
        _cache[path] = (key, template)
        return template

    @classmethod
    def from_bytes(cls, data: bytes, path: Path | str = "<template>") -> Template:
        path = Path(path)
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise TemplateError(f"{path}: not UTF-8 text (byte {exc.start}); save it as UTF-8") from exc
        text = text.removeprefix("\ufeff")
        raw_front, body, front_lines = split_front_matter(text, path)
        front = parse_front_matter(raw_front, path)
        has_roles = bool(_MARKER_LINE.search(body))
        # Blank lines in place of the front matter keep Jinja's line numbers equal to the file's.
        jinja_source = "\n" * front_lines + _MARKER_LINE.sub(
            lambda m: _TOKEN.format(role=m.group(1)), body
        )
        compiled = _compile(jinja_source, path)
        return cls(path=path, source=text, sha256=hashlib.sha256(data).hexdigest(), front=front,
                   body=body, has_roles=has_roles, _compiled=compiled)

    def variables(self) -> set[str]:
        """Names the template reads from its context (Jinja's undeclared variables)."""
        from jinja2 import meta

        env = sandbox()
        source = _MARKER_LINE.sub(lambda m: _TOKEN.format(role=m.group(1)), self.body)
        return set(meta.find_undeclared_variables(env.parse(source)))

    def check_vars(self, values: dict[str, Any]) -> dict[str, Any]:
        """Merge defaults under `values` and check them against input.schema."""
        merged = {**self.front.defaults, **values}
        schema = self.front.schema
        if schema:
            missing = [f.name for f in schema.values() if f.required and f.name not in merged]
            if missing:
                names = ", ".join(repr(n) for n in missing)
                raise RenderError(f"{self.path}: missing variable {names} "
                                  f"(required by input.schema); pass it, e.g. --var {missing[0]}=…")
            for f in schema.values():
                if f.name in merged and not _type_ok(f.type, merged[f.name]):
                    raise RenderError(f"{self.path}: variable {f.name!r} must be {f.type}, "
                                      f"got {type(merged[f.name]).__name__} {merged[f.name]!r}")
        return merged

    def render_messages(self, values: dict[str, Any],
                        limits: RenderLimits | None = None) -> list[dict[str, str]]:
        """Render with `values` (defaults applied) into chat messages, within `limits`
        (default: DEFAULT_LIMITS)."""
        from jinja2 import TemplateError as JinjaTemplateError
        from jinja2 import UndefinedError
        from jinja2.sandbox import SecurityError

        merged = self.check_vars(values)
        try:
            output = render_limited(self._compiled, merged, self.path, limits)
        except SecurityError as exc:
            raise SandboxError(f"{self.path}: refused by the sandbox: {exc}") from exc
        except UndefinedError as exc:
            message = str(exc)
            if "unsafe" in message:
                raise SandboxError(f"{self.path}: refused by the sandbox: {message}") from exc
            m = re.match(r"'([^']+)' is undefined", message)
            if m:
                raise RenderError(f"{self.path}: missing variable {m.group(1)!r}; "
                                  f"pass it, e.g. --var {m.group(1)}=…") from exc
            raise RenderError(f"{self.path}: {message}") from exc
        except JinjaTemplateError as exc:
            raise RenderError(f"{self.path}: {exc}") from exc
        except (TypeError, ValueError, ArithmeticError, LookupError, AttributeError,
                NotImplementedError) as exc:
            raise RenderError(f"{self.path}: rendering failed: {type(exc).__name__}: {exc}") from exc
        return self._split(output)

    def _split(self, output: str) -> list[dict[str, str]]:
        parts = _TOKEN_SPLIT.split(output)
        prefix, rest = parts[0], parts[1:]
        if not rest:
            return [{"role": "user", "content": _tidy(prefix)}]
        if prefix.strip():
            raise RenderError(f"{self.path}: text before the first role marker "
                              f"({prefix.strip()[:40]!r}); start the template with system:/user:")
        messages = []
        for role, content in zip(rest[0::2], rest[1::2], strict=True):
            content = _tidy(content)
            if content:
                messages.append({"role": role, "content": content})
        return messages


# Each version file stands alone: its sha256 in the stamp covers all of its text, which a
# template loaded from elsewhere would escape.
_LOADING = {"Include": "include", "Extends": "extends", "Import": "import",
            "FromImport": "from … import"}


def _compile(source: str, path: Path) -> Any:
    """Parse and compile a template in the sandbox; every way that can fail is a one-line
    TemplateError naming the file."""
    from jinja2 import TemplateSyntaxError, nodes

    env = sandbox()
    try:
        tree = env.parse(source)
        for node in tree.find_all((nodes.Include, nodes.Extends, nodes.Import,
                                   nodes.FromImport)):
            tag = _LOADING[type(node).__name__]
            raise TemplateError(
                f"{path}:{node.lineno}: {{% {tag} %}} is not supported in prompt templates: a "
                "version file stands alone, so its sha256 covers all of its text; define a "
                "macro in this file, or copy the text in")
        return env.from_string(tree)
    except TemplateSyntaxError as exc:
        raise TemplateError(f"{path}:{exc.lineno}: Jinja syntax error: {exc.message}") from exc
    except (RecursionError, SyntaxError, MemoryError) as exc:
        # Python's compiler caps nesting: 20 blocks (`for`), 100 indentation levels (`if`),
        # and the parser recurses once per bracket.
        reason = exc.msg if isinstance(exc, SyntaxError) else "recursion too deep"
        raise TemplateError(f"{path}: the template nests too deeply to compile ({reason}); "
                            "flatten its nested blocks or brackets, e.g. with a macro") from None


def _tidy(content: str) -> str:
    return content.lstrip("\r\n").rstrip()


_cache: dict[Path, tuple[tuple[int, int, int], Template]] = {}
