"""The log entry: field order and types, ULID ids, timestamps, encoding.

One entry is one JSON object on one line. `FIELDS` fixes the order fields are written in;
do not reorder or rename them without bumping `SCHEMA_VERSION` (readers and the index rely
on it). Empty and None values are omitted. Types are checked here, at the edge, so the
writer and every reader can trust what is on disk.
"""

from __future__ import annotations

import contextvars
import datetime as _dt
import math
import os
import random
import re
import threading
import time
from collections.abc import Mapping
from typing import Any

from promptlab.errors import LogError

SCHEMA_VERSION = 1
KINDS = ("llm", "span", "feedback")
STATUSES = ("ok", "error")


class EntryError(LogError):
    """A log field with a value of the wrong type or shape (a caller's mistake)."""

    exit_code = 2


# Field -> type tag. The order of this mapping is the order fields are written in.
_STR, _INT, _NUM, _BOOL, _TAGS, _OBJ, _MSGS, _SCORES, _ID = (
    "str", "int", "num", "bool", "tags", "obj", "msgs", "scores", "id"
)
SCHEMA: dict[str, str] = {
    "v": _INT,
    "id": _STR,
    "timestamp": _STR,
    "kind": _STR,
    "model": _STR,
    "provider": _STR,
    "config": _OBJ,
    "system_prompt": _STR,
    "user_message": _STR,
    "assistant_response": _STR,
    "messages": _MSGS,
    "input_tokens": _INT,
    "output_tokens": _INT,
    "cached_tokens": _INT,
    "reasoning_tokens": _INT,
    "latency_ms": _NUM,
    "cost_usd": _NUM,
    "tags": _TAGS,
    "metadata": _OBJ,
    "prompt_id": _STR,
    "prompt_version": _STR,
    "prompt_label": _STR,
    "prompt_sha": _STR,
    "prompt_commit": _STR,
    "prompt_dirty": _BOOL,
    "run_id": _STR,
    "experiment": _STR,
    "variant": _STR,
    "unit_id": _ID,
    "item_id": _ID,
    "repeat": _INT,
    "scores": _SCORES,
    "target": _STR,
    "trace_id": _STR,
    "span_id": _STR,
    "parent_id": _STR,
    "name": _STR,
    "status": _STR,
    "error": _STR,
}
FIELDS: tuple[str, ...] = tuple(SCHEMA)

# Upper bounds of the numbers in an entry: anything larger is a mistake (seconds given as
# nanoseconds, a provider's garbage usage) and is refused here and skipped by readers.
LIMITS: dict[str, int] = {
    "tokens": 10**9,  # input/output/cached/reasoning tokens of one call
    "repeat": 10**9,
    "latency_ms": 10**10,  # about 116 days
    "cost_usd": 10**6,  # one call
}
_LIMIT: dict[str, int] = {
    "input_tokens": LIMITS["tokens"], "output_tokens": LIMITS["tokens"],
    "cached_tokens": LIMITS["tokens"], "reasoning_tokens": LIMITS["tokens"],
    "repeat": LIMITS["repeat"], "latency_ms": LIMITS["latency_ms"],
    "cost_usd": LIMITS["cost_usd"], "v": 10**9,
}
_FIELD_SET = frozenset(FIELDS)

# -- ULIDs ---------------------------------------------------------------------------------

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_ULID_RE = re.compile(r"^[0-7][0-9A-HJKMNP-TV-Z]{25}$")
# 10-bit value -> its two Crockford characters.
_PAIRS = [_CROCKFORD[i >> 5] + _CROCKFORD[i & 31] for i in range(1024)]
_RAND_MAX = (1 << 80) - 1


def _encode(value: int, length: int) -> str:
    out = []
    for _ in range(length):
        out.append(_CROCKFORD[value & 31])
        value >>= 5
    return "".join(reversed(out))


def _stem(ms: int, r: int, t: list[str] = _PAIRS) -> str:
    """The first 24 characters of a ULID: 10 for the 48-bit time, 14 for the top 70 random bits."""
    return "".join((t[ms >> 40], t[(ms >> 30) & 1023], t[(ms >> 20) & 1023],
                    t[(ms >> 10) & 1023], t[ms & 1023], t[r >> 70], t[(r >> 60) & 1023],
                    t[(r >> 50) & 1023], t[(r >> 40) & 1023], t[(r >> 30) & 1023],
                    t[(r >> 20) & 1023], t[(r >> 10) & 1023]))


class _UlidState:
    """Monotonic ULIDs within a process: same millisecond -> previous random part + 1.

    `stem` caches the first 24 characters; while the low 10 bits of the random part do not
    wrap, the next id only changes its last two characters.
    """

    __slots__ = ("last_ms", "lock", "rand", "stem")

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.lock = threading.Lock()
        self.last_ms = -1
        self.rand = 0
        self.stem = ""


_ulid = _UlidState()
# A private generator, seeded from os.urandom and reseeded in every forked child: ids stay
# unique across processes even when the application seeds the global `random`.
_rng = random.Random()
_getrandbits = _rng.getrandbits


def new_id(ms: int | None = None) -> str:
    """A new 26-character ULID: 48-bit millisecond time + 80 random bits, Crockford base32.

    Ids sort by creation time; within one process they are strictly increasing even inside
    the same millisecond. Random bits (reseeded in forked children) make them unique
    across processes.
    """
    if ms is None:
        ms = time.time_ns() // 1_000_000
    state = _ulid
    lock = state.lock
    lock.acquire()  # cheaper than `with` on this path
    try:
        if ms <= state.last_ms:
            rand = state.rand + 1
            low = rand & 1023
            if low:  # the common case: only the last two characters change
                state.rand = rand
                return state.stem + _PAIRS[low]
            ms = state.last_ms
            if rand > _RAND_MAX:  # 2**80 ids in one millisecond: borrow the next one
                ms += 1
                rand = _getrandbits(80)
        else:
            rand = _getrandbits(80)
        state.last_ms = ms
        state.rand = rand
        state.stem = stem = _stem(ms, rand)
    finally:
        lock.release()
    return stem + _PAIRS[rand & 1023]


def is_ulid(value: Any) -> bool:
    return isinstance(value, str) and bool(_ULID_RE.match(value))


def ulid_time(value: str) -> _dt.datetime:
    """The creation time encoded in a ULID."""
    ms = 0
    for ch in value[:10]:
        ms = ms * 32 + _CROCKFORD.index(ch)
    return _dt.datetime.fromtimestamp(ms / 1000, tz=_dt.UTC)


def _after_fork_in_child() -> None:
    # A forked child must not continue the parent's sequence or random stream (duplicates).
    _ulid.reset()
    _rng.seed()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)

# -- timestamps ----------------------------------------------------------------------------

_TS_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")
# (second, "YYYY-MM-DDTHH:MM:SS.") replaced as one tuple, so threads never see half an update.
_ts_cache: tuple[int, str] = (-1, "")
_DIGITS3 = [f"{i:03d}" for i in range(1000)]


def format_timestamp(ns: int | None = None) -> str:
    """UTC ISO 8601 with microseconds and Z for `ns` nanoseconds since the epoch (or now)."""
    if ns is None:
        ns = time.time_ns()
    global _ts_cache
    sec, rem = divmod(ns, 1_000_000_000)
    cached = _ts_cache
    if cached[0] != sec:
        try:
            parts = time.gmtime(sec)
        except (OverflowError, OSError, ValueError):
            parts = None
        if parts is None or not 1000 <= parts.tm_year <= 9999:
            raise EntryError(f"log entry time {ns} ns since 1970 is outside the years 1000-9999; "
                             "check latency_ms (milliseconds) and timestamp")
        cached = _ts_cache = (sec, time.strftime("%Y-%m-%dT%H:%M:%S.", parts))
    ms, us = divmod(rem // 1000, 1000)
    return cached[1] + _DIGITS3[ms] + _DIGITS3[us] + "Z"


def normalize_timestamp(value: Any) -> str:
    """Accept a datetime, epoch seconds or an ISO 8601 string; return the canonical form."""
    if isinstance(value, str):
        if _TS_RE.match(value):
            return value
        try:
            parsed = _dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise EntryError(f"log field 'timestamp': {value!r} is not an ISO 8601 time; "
                             "use e.g. 2026-11-26T23:33:13.123456Z") from None
        value = parsed
    if isinstance(value, _dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=_dt.UTC)  # naive datetimes are taken as UTC
        value = value.astimezone(_dt.UTC)
        return value.strftime("%Y-%m-%dT%H:%M:%S.%f") + "Z"
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return format_timestamp(int(value * 1_000_000_000))
    raise EntryError(f"log field 'timestamp' must be an ISO 8601 string or a datetime, "
                     f"got {type(value).__name__} {value!r}")


# -- validation ------------------------------------------------------------------------------


def _bad(name: str, what: str, value: Any) -> EntryError:
    shown = repr(value)
    if len(shown) > 60:
        shown = shown[:57] + "..."
    return EntryError(f"log field {name!r} must be {what}, got {type(value).__name__} {shown}")


def _check_number(name: str, value: Any) -> int | float:
    limit = _LIMIT[name]
    tv = type(value)
    if tv is float or tv is int:
        if not 0 <= value <= limit:  # NaN fails every comparison
            raise _bad(name, f"a number between 0 and {limit:,}", value)
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return _check_number(name, float(value) if isinstance(value, float) else int(value))
    raise _bad(name, "a number", value)


def _check_int(name: str, value: Any) -> int:
    limit = _LIMIT[name]
    if type(value) is int or (isinstance(value, int) and not isinstance(value, bool)):
        if not 0 <= value <= limit:
            raise _bad(name, f"an integer between 0 and {limit:,}", value)
        return int(value)
    if isinstance(value, float) and value.is_integer():
        return _check_int(name, int(value))
    raise _bad(name, f"an integer between 0 and {limit:,}", value)


def check_scores(name: str, value: Any) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise _bad(name, "a mapping of score name to number or bool", value)
    out: dict[str, Any] = {}
    for key, score in value.items():
        if not isinstance(key, str) or not key:
            raise EntryError(f"log field {name!r}: score names must be non-empty strings, "
                             f"got {key!r}")
        if isinstance(score, bool):
            out[key] = score
        elif isinstance(score, int | float):
            if isinstance(score, float) and not math.isfinite(score):
                raise EntryError(f"log field {name!r}: score {key!r} must be a finite number, "
                                 f"got {score!r}")
            out[key] = score if type(score) in (int, float) else float(score)
        else:
            raise EntryError(f"log field {name!r}: score {key!r} must be a number or bool, "
                             f"got {type(score).__name__} {score!r}")
    return out


def _check(name: str, kind: str, value: Any) -> Any:
    """Validate one field; return the value to write (possibly normalised)."""
    if kind == _STR:
        if isinstance(value, str):
            return value
        if name == "error" and isinstance(value, BaseException):
            return f"{type(value).__name__}: {value}"
        raise _bad(name, "a string", value)
    if kind == _INT:
        return _check_int(name, value)
    if kind == _NUM:
        return _check_number(name, value)
    if kind == _BOOL:
        if isinstance(value, bool):
            return value
        raise _bad(name, "true or false", value)
    if kind == _TAGS:
        if isinstance(value, str):
            return [value]
        if isinstance(value, list | tuple | set | frozenset):
            tags = list(value)
            for tag in tags:
                if not isinstance(tag, str):
                    raise _bad(name, "a list of strings", value)
            return tags
        raise _bad(name, "a list of strings", value)
    if kind == _OBJ:
        if isinstance(value, Mapping):
            return value if type(value) is dict else dict(value)
        raise _bad(name, "a mapping (JSON object)", value)
    if kind == _MSGS:
        if not isinstance(value, list | tuple):
            raise _bad(name, "a list of {role, content} messages", value)
        for i, message in enumerate(value):
            if not isinstance(message, Mapping) or not isinstance(message.get("role"), str):
                raise EntryError(f"log field 'messages': item {i} must be an object with a "
                                 f"string 'role', got {message!r:.60}")
        return list(value)
    if kind == _SCORES:
        return check_scores(name, value)
    if kind == _ID:
        if isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool)):
            return value
        raise _bad(name, "a string (or integer) id", value)
    raise AssertionError(kind)  # pragma: no cover


def _unknown(names: list[str]) -> EntryError:
    import difflib

    name = names[0]
    close = difflib.get_close_matches(name, FIELDS, n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    return EntryError(f"unknown log field {name!r}; {hint}put custom data in metadata={{...}}")


_INDEX = {name: i for i, name in enumerate(FIELDS)}
_CONTAINERS = frozenset({_TAGS, _OBJ, _MSGS, _SCORES})
# Text fields where an empty string is a real value worth keeping (a model may answer "").
_KEEP_EMPTY = frozenset({"assistant_response", "user_message", "system_prompt"})
_validators: dict[tuple[str, ...], Any] = {}


def _validator(keys: tuple[str, ...]) -> Any:
    """A function validating exactly `keys`, in schema order, as straight-line code.

    Callers repeat the same key sets call after call, so each set is compiled once (the
    technique dataclasses and attrs use): no per-field dispatch on the hot path.
    """
    fn = _validators.get(keys)
    if fn is not None:
        return fn
    unknown = [k for k in keys if k not in _INDEX]
    if unknown:
        raise _unknown(unknown)
    lines = ["def validate(f):", "    out = {}"]
    for name in sorted(keys, key=_INDEX.__getitem__):
        kind = SCHEMA[name]
        n = repr(name)  # schema names only: plain identifiers
        lines.append(f"    v = f[{n}]")
        lines.append("    if v is not None:")
        if kind == _STR:
            lines.append(f"        if type(v) is not str: v = _check({n}, {kind!r}, v)")
            if name in _KEEP_EMPTY:
                lines.append(f"        out[{n}] = v")
            else:
                lines.append(f"        if v: out[{n}] = v")
        elif kind == _INT:
            lines.append(f"        if type(v) is not int or not 0 <= v <= {_LIMIT[name]}:")
            lines.append(f"            v = _check_int({n}, v)")
            lines.append(f"        out[{n}] = v")
        elif kind == _NUM:
            lines.append("        t = type(v)")
            lines.append(f"        if not ((t is int or t is float) and 0 <= v <= {_LIMIT[name]}):")
            lines.append(f"            v = _check_number({n}, v)")
            lines.append(f"        out[{n}] = v")
        elif kind == _OBJ:
            lines.append(f"        if type(v) is not dict: v = _check({n}, {kind!r}, v)")
            lines.append(f"        if v: out[{n}] = v")
        else:
            lines.append(f"        v = _check({n}, {kind!r}, v)")
            if kind in _CONTAINERS:
                lines.append(f"        if v: out[{n}] = v")
            else:
                lines.append(f"        out[{n}] = v")
    lines.append("    return out")
    namespace = {"_check": _check, "_check_int": _check_int, "_check_number": _check_number}
    exec("\n".join(lines), namespace)  # generated from the fixed schema only
    fn = namespace["validate"]
    if len(_validators) > 512:
        _validators.clear()
    _validators[keys] = fn
    return fn


def build_entry(fields: Mapping[str, Any]) -> dict[str, Any]:
    """Validate `fields`; return them in schema order with None and empty values dropped.

    `timestamp` is normalised to the canonical UTC form; `kind` and `status` are checked
    against their allowed values. Raises EntryError naming the first bad field.
    """
    out = _validator(tuple(fields))(fields)
    if "timestamp" in out:
        out["timestamp"] = normalize_timestamp(out["timestamp"])
    kind_value = out.get("kind")
    if kind_value is not None and kind_value not in KINDS:
        raise EntryError(f"log field 'kind' must be one of {', '.join(KINDS)}, got {kind_value!r}")
    status = out.get("status")
    if status is not None and status not in STATUSES:
        raise EntryError(f"log field 'status' must be 'ok' or 'error', got {status!r}")
    return out


HEAD = ("v", "id", "timestamp", "kind")
_HEAD_SET = frozenset(HEAD)
_builders: dict[tuple[str, ...], Any] = {}


def entry_builder(keys: tuple[str, ...]) -> Any:
    """`build(fields, entry_id, kind, start_ns=None, now_ns=None, price_of=None, lookup=None)`
    -> entry, for fields with exactly `keys` (no head keys).

    The entry comes back in schema order with `v`, `id` and `kind` filled in and completed
    as `complete` does: the `timestamp` (when `now_ns` is given; else left None) and the
    `cost_usd` (when `price_of` is given). Compiled once per key set (so unknown keys are
    found once, when compiling), with a fast path: when every value already has its
    canonical type (str, int >= 0, finite float, non-empty list of str, non-empty dict,
    known `status`), one straight-line test accepts them all and a copy of a template dict
    in schema order, updated in place, is the entry (cheaper than building a dict key by
    key). Anything else, None values included, goes through `build_entry`, which converts
    friendly values and raises the same EntryError naming the first bad field.
    """
    fn = _builders.get(keys)
    if fn is not None:
        return fn
    unknown = [k for k in keys if k not in _INDEX]
    if unknown:
        raise _unknown(unknown)
    if not _HEAD_SET.isdisjoint(keys):  # pragma: no cover - callers route those elsewhere
        raise AssertionError("head fields go through build_entry")
    # Locals follow the order of `keys` (= the order of the caller's dict, unpacked in one
    # step); the entry follows the schema (a template dict, copied, then updated in place).
    local = {name: f"x{i}" for i, name in enumerate(keys)}
    tests: list[str] = []
    checked: list[str] = []  # full checks that may raise: last, in schema order
    fixups: list[str] = []
    joins: list[str] = []
    for name in sorted(keys, key=_INDEX.__getitem__):
        kind, x = SCHEMA[name], local[name]
        if kind == _STR:
            if name == "status":
                tests.append(f"type({x}) is str and ({x} == 'ok' or {x} == 'error')")
            elif name in _KEEP_EMPTY:
                tests.append(f"type({x}) is str")
            else:
                tests.append(f"type({x}) is str and {x}")
        elif kind == _INT:
            tests.append(f"type({x}) is int and 0 <= {x} <= {_LIMIT[name]}")
        elif kind == _NUM:
            tests.append(f"(type({x}) is int or type({x}) is float)"
                         f" and 0 <= {x} <= {_LIMIT[name]}")
        elif kind == _BOOL:
            tests.append(f"type({x}) is bool")
        elif kind == _TAGS:
            tests.append(f"type({x}) is list and {x}")
            joins.append(x)  # "".join raises TypeError unless every tag is a str
            fixups.append(f"e[{name!r}] = list({x})")  # the entry keeps its own list
        elif kind == _OBJ:
            tests.append(f"type({x}) is dict and {x}")
        elif kind == _ID:
            tests.append(f"(type({x}) is str or type({x}) is int)")
        else:  # messages, scores: their full checks return a checked copy
            tests.append(f"type({x}) is {'list' if kind == _MSGS else 'dict'} and {x}")
            checked.append(f"({x} := _check({name!r}, {kind!r}, {x}))")
            fixups.append(f"e[{name!r}] = {x}")
    template, priced = _template(keys)
    lines = ["def build(f, entry_id, kind, start_ns=None, now_ns=None, price_of=None,"
             " lookup=None):"]
    if keys:
        lines.append(f"    {', '.join(local[k] for k in keys)}, = f.values()")
        lines.append("    try:")
        lines.append("        if (" + "\n                and ".join(tests + checked) + "):")
        body = [f"_join({x})" for x in joins]
        body += ["e = _template.copy()", "e.update(f)"]
    else:
        body = ["e = _template.copy()"]
    body += ["e['id'] = entry_id", "e['kind'] = kind", *fixups]
    if priced:
        tokens = ", ".join(local.get(k, "0") for k in
                           ("input_tokens", "output_tokens", "cached_tokens"))
        body += ["p = None",
                 "if price_of is not None:",
                 f"    p = price_of.get({local['model']}, _MISS)",
                 f"    if p is _MISS: p = lookup({local['model']})",
                 "if p is None: del e['cost_usd']",
                 f"else: e['cost_usd'] = p.cost({tokens})"]
    latency = local.get("latency_ms")
    body += ["if now_ns is not None:",
             "    if start_ns is None:",
             f"        start_ns = {'now_ns' if latency is None else f'now_ns - int({latency} * 1e6)'}",
             "    e['timestamp'] = _fmt(start_ns)",
             "return e"]
    if keys:
        lines += [f"            {line}" for line in body]
        lines.append("    except TypeError:")
        lines.append("        pass")
        if latency is not None:  # 1e308 ms: inf ns
            lines.append("    except OverflowError:")
            lines.append(f"        _start({latency}, now_ns)  # raises the EntryError")
        lines.append("    return _slow(f, entry_id, kind, start_ns, now_ns, price_of, lookup)")
    else:
        lines += [f"    {line}" for line in body]
    namespace = {"_check": _check, "_join": "".join, "_slow": _build_slow, "_template": template,
                 "_MISS": _MISS, "_fmt": format_timestamp, "_start": start_of}
    exec("\n".join(lines), namespace)  # generated from the fixed schema only
    fn = namespace["build"]
    if len(_builders) > 512:
        _builders.clear()
    _builders[keys] = fn
    return fn


_MISS = object()  # a model not looked up yet (price_of maps known models to a Price or None)


def _template(keys: tuple[str, ...]) -> tuple[dict[str, Any], bool]:
    """(the entry's template in schema order, whether it has a cost_usd slot to fill).

    The cost slot is there when the entry has a model and token counts but no cost; it is
    filled, or removed, once the price is known.
    """
    priced = "model" in keys and "cost_usd" not in keys and (
        "input_tokens" in keys or "output_tokens" in keys)
    template: dict[str, Any] = dict.fromkeys(HEAD)
    template["v"] = SCHEMA_VERSION
    slots = (*keys, "cost_usd") if priced else keys
    template.update(dict.fromkeys(sorted(slots, key=_INDEX.__getitem__)))
    return template, priced


def _build_slow(fields: Mapping[str, Any], entry_id: str, kind: str, start_ns: int | None,
                now_ns: int | None, price_of: dict[str, Any] | None,
                lookup: Any) -> dict[str, Any]:
    present = {k: v for k, v in fields.items() if v is not None}
    if len(present) < len(fields):  # None means "absent": build the entry without those
        return entry_builder(tuple(present))(present, entry_id, kind, start_ns, now_ns,
                                             price_of, lookup)
    entry: dict[str, Any] = {"v": SCHEMA_VERSION, "id": entry_id, "timestamp": None,
                             "kind": kind}
    entry.update(build_entry(fields))
    return complete(entry, start_ns, now_ns, price_of, lookup)


def complete(entry: dict[str, Any], start_ns: int | None, now_ns: int | None,
             price_of: dict[str, Any] | None, lookup: Any) -> dict[str, Any]:
    """Fill in a validated entry's `cost_usd` and `timestamp` (in place; returns it).

    cost_usd:  when absent and the entry has a model and token counts, from `price_of`
               (model -> Price or None, a memo) and `lookup(model)` for models not in it;
               unknown models get no cost (never a made-up 0).
    timestamp: when absent and `now_ns` is given: `start_ns`, else now minus `latency_ms`
               (the call's start).
    """
    if price_of is not None and entry.get("cost_usd") is None:
        model = entry.get("model")
        tokens_in, tokens_out = entry.get("input_tokens"), entry.get("output_tokens")
        if model is not None and (tokens_in is not None or tokens_out is not None):
            price = price_of.get(model, _MISS)
            if price is _MISS:
                price = lookup(model)
            if price is not None:
                cost = price.cost(tokens_in or 0, tokens_out or 0, entry.get("cached_tokens") or 0)
                entry["cost_usd"] = cost
                if list(entry)[-1] == "cost_usd":  # appended: move it to its schema place
                    entry = order_entry(entry)
    if entry.get("timestamp") is None:
        if now_ns is None:
            return entry
        if start_ns is None:
            latency = entry.get("latency_ms")
            start_ns = now_ns if latency is None else start_of(latency, now_ns)
        entry["timestamp"] = format_timestamp(start_ns)
    return entry


def start_of(latency_ms: float, now_ns: int) -> int:
    """When a call that took `latency_ms` and ended at `now_ns` started (ns since 1970)."""
    try:
        return now_ns - int(latency_ms * 1e6)
    except (OverflowError, ValueError):  # 1e308 ms: inf ns
        raise _bad("latency_ms", "a duration in milliseconds (e.g. 1234.5)",
                   latency_ms) from None


def order_entry(entry: dict[str, Any]) -> dict[str, Any]:
    """`entry` with its keys in schema order (unknown keys, if any, last)."""
    ordered = {k: entry[k] for k in FIELDS if k in entry}
    if len(ordered) != len(entry):
        ordered.update((k, v) for k, v in entry.items() if k not in ordered)
    return ordered


def check_finite(entry: Mapping[str, Any]) -> None:
    """Raise EntryError for a NaN or an infinity nested in a field (metadata, config,
    messages): JSON has no such numbers, and orjson would silently write them as null.

    Top-level numbers are range-checked by the builders; callers run this only when the
    encoded line holds a `null` (a NaN's trace), so clean entries pay nothing."""
    for name, value in entry.items():
        if type(value) is dict or type(value) is list:
            where = _non_finite(value)
            if where is not None:
                bad, keys = where[0], where[:0:-1]
                place = "".join(f"[{k!r}]" for k in keys)
                raise EntryError(f"log field {name!r}: {name}{place} must be a finite number, "
                                 f"got {bad!r} (JSON has no NaN or Infinity; log None or a "
                                 "string instead)")


def _non_finite(value: Any) -> list[Any] | None:
    """[the value, innermost key, …, outermost key] of the first non-finite number in
    `value`, or None."""
    if isinstance(value, float):
        return None if math.isfinite(value) else [value]
    if isinstance(value, str | int) or value is None:
        return None
    if isinstance(value, Mapping):
        items: Any = value.items()
    elif isinstance(value, list | tuple | set | frozenset):
        items = enumerate(value)
    elif hasattr(value, "is_finite"):  # decimal.Decimal
        return None if value.is_finite() else [value]
    elif hasattr(value, "tolist"):  # numpy scalars and arrays
        return _non_finite(value.tolist())
    else:
        return None
    for key, item in items:
        found = _non_finite(item)
        if found is not None:
            found.append(key)
            return found
    return None


# -- encoding ---------------------------------------------------------------------------------


def _fallback(value: Any) -> Any:
    """orjson's `default`: make common non-JSON values writable instead of failing the call."""
    _approximated.set(True)
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if hasattr(value, "tolist"):  # numpy arrays and scalars
        return value.tolist()
    import decimal

    if isinstance(value, decimal.Decimal):
        return float(value)
    return str(value)


_dumps: Any = None
_OPT = 1 << 10  # orjson.OPT_APPEND_NEWLINE, checked when orjson is first loaded
# Set when encoding had to convert a value (set -> list, Path -> str, lone surrogate -> U+FFFD):
# the entry as written then differs from the dict given, and callers re-read the line.
_approximated: contextvars.ContextVar[bool] = contextvars.ContextVar("promptlab_approx",
                                                                     default=False)


def _load_orjson() -> Any:
    global _dumps
    import orjson

    assert orjson.OPT_APPEND_NEWLINE == _OPT
    _dumps = orjson.dumps
    return _dumps


def encode_entry(entry: Mapping[str, Any]) -> tuple[bytes, bool]:
    """(one UTF-8 JSON line ending in a newline, whether it holds `entry` exactly)."""
    dumps = _dumps or _load_orjson()
    try:
        line = dumps(entry, default=_fallback, option=_OPT)
    except TypeError as exc:  # orjson.JSONEncodeError is a TypeError
        import orjson

        # Rare shapes: non-string dict keys, lone surrogates in text. Retry slowly.
        option = _OPT | orjson.OPT_NON_STR_KEYS
        try:
            return dumps(_scrub_surrogates(entry), default=_fallback, option=option), False
        except (TypeError, RecursionError) as again:  # (a value that contains itself)
            if isinstance(again, RecursionError) or "Recursion" in str(again):
                raise EntryError("log entry cannot be written as JSON: a value that contains "
                                 "itself, or nested more than 254 levels deep") from exc
            raise EntryError(f"log entry cannot be written as JSON: {again}") from exc
    if _approximated.get():
        _approximated.set(False)
        return line, False
    return line, True


def encode_line(entry: Mapping[str, Any]) -> bytes:
    """One entry as one UTF-8 JSON line ending in a newline (orjson, fields in given order)."""
    return encode_entry(entry)[0]


_SURROGATE = re.compile("[\ud800-\udfff]")


def _scrub_surrogates(value: Any) -> Any:
    """Replace lone surrogates (not encodable as UTF-8) with U+FFFD, recursively."""
    if isinstance(value, str):
        return _SURROGATE.sub("\ufffd", value)
    if isinstance(value, Mapping):
        return {_scrub_surrogates(k): _scrub_surrogates(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_scrub_surrogates(v) for v in value]
    return value


def decode_line(line: bytes | str) -> Any:
    import orjson

    return orjson.loads(line)
