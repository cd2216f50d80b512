"""Log entries → OpenTelemetry spans, with the GenAI semantic conventions.

The conventions followed are the GenAI ones of the OpenTelemetry semantic conventions as
they stand in the `semantic-conventions-genai` repository (the successor of the gen-ai pages
of semantic-conventions v1.37+; `opentelemetry-semantic-conventions` 0.66b2, schema 1.44.0):
`gen_ai.provider.name` (which replaced `gen_ai.system`), span name
`{gen_ai.operation.name} {gen_ai.request.model}`, message content as JSON in
`gen_ai.input.messages` / `gen_ai.output.messages` / `gen_ai.system_instructions`, opt-in only.

Ids are the logged ones, never generated: a ULID is 128 bits, so a promptlab trace id (the
root span's ULID) *is* the 16-byte OpenTelemetry trace id; a span id is the low 64 bits of
the entry's ULID. Ids that came in from OpenTelemetry (hex) go back out unchanged. A call
logged outside any trace becomes a one-span trace whose ids derive from its own id, so a
re-export sends identical spans. docs/otel.md has the full table.
"""

from __future__ import annotations

import calendar
import hashlib
import re
from collections.abc import Callable, Mapping
from typing import Any

import orjson
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags

from promptlab import __version__

__all__ = [
    "SCHEMA_URL", "SpanMaker", "entry_span_ids", "span_id_of", "trace_id_of", "ulid_from_int",
    "ulid_to_int",
]

SCHEMA_URL = "https://opentelemetry.io/schemas/1.44.0"
SCOPE = InstrumentationScope("promptlab", __version__, SCHEMA_URL)

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_ULID = re.compile(r"^[0-7][0-9A-HJKMNP-TV-Z]{25}$")
_HEX32 = re.compile(r"^[0-9a-f]{32}$")
_HEX16 = re.compile(r"^[0-9a-f]{16}$")
_MASK64 = (1 << 64) - 1
_SAMPLED = TraceFlags(TraceFlags.SAMPLED)

# config key -> GenAI request attribute (the rest go to promptlab.config.<key>)
CONFIG_ATTRIBUTES: dict[str, str] = {
    "temperature": "gen_ai.request.temperature",
    "max_tokens": "gen_ai.request.max_tokens",
    "max_completion_tokens": "gen_ai.request.max_tokens",
    "max_output_tokens": "gen_ai.request.max_tokens",
    "top_p": "gen_ai.request.top_p",
    "top_k": "gen_ai.request.top_k",
    "frequency_penalty": "gen_ai.request.frequency_penalty",
    "presence_penalty": "gen_ai.request.presence_penalty",
    "seed": "gen_ai.request.seed",
    "stop": "gen_ai.request.stop_sequences",
    "stop_sequences": "gen_ai.request.stop_sequences",
    "n": "gen_ai.request.choice.count",
    "stream": "gen_ai.request.stream",
}

# entry field -> attribute, for plain values copied as they are
PLAIN_ATTRIBUTES: dict[str, str] = {
    "provider": "gen_ai.provider.name",
    "input_tokens": "gen_ai.usage.input_tokens",
    "output_tokens": "gen_ai.usage.output_tokens",
    "cached_tokens": "gen_ai.usage.cache_read.input_tokens",
    "reasoning_tokens": "gen_ai.usage.reasoning.output_tokens",
    "cost_usd": "promptlab.cost_usd",
    "prompt_id": "promptlab.prompt.id",
    "prompt_version": "promptlab.prompt.version",
    "prompt_label": "promptlab.prompt.label",
    "prompt_sha": "promptlab.prompt.sha",
    "prompt_commit": "promptlab.prompt.commit",
    "prompt_dirty": "promptlab.prompt.dirty",
    "run_id": "promptlab.run_id",
    "experiment": "promptlab.experiment",
    "variant": "promptlab.variant",
    "unit_id": "promptlab.unit_id",
    "item_id": "promptlab.item_id",
    "repeat": "promptlab.repeat",
    "target": "promptlab.target",
}


# -- ids ---------------------------------------------------------------------------------------


_TO_BASE32 = str.maketrans(_CROCKFORD, "0123456789abcdefghijklmnopqrstuv")


def ulid_to_int(ulid: str) -> int:
    """The 128-bit value of a (valid, upper-case) ULID."""
    return int(ulid.translate(_TO_BASE32), 32)


def ulid_from_int(value: int) -> str:
    chars = []
    for _ in range(26):
        chars.append(_CROCKFORD[value & 31])
        value >>= 5
    return "".join(reversed(chars))


def _hashed(text: str, bits: int) -> int:
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[: bits // 8], "big") or 1


def trace_id_of(value: str) -> int:
    """The 128-bit trace id for a logged trace id (a ULID, 32 hex digits, or anything else)."""
    if _ULID.match(value):
        return ulid_to_int(value) or 1
    if _HEX32.match(value):
        return int(value, 16) or 1
    return _hashed(value, 128)


def span_id_of(value: str) -> int:
    """The 64-bit span id for a logged span id (a ULID, 16 hex digits, or anything else)."""
    if _ULID.match(value):
        return (ulid_to_int(value) & _MASK64) or _hashed(value, 64)
    if _HEX16.match(value):
        return int(value, 16) or 1
    return _hashed(value, 64)


def _valid(value: Any) -> Any:
    """`value`, or None for an id of only zeros (`0000…`, as hex or as a ULID)."""
    if isinstance(value, str) and value and not value.strip("0"):
        return None
    return value


def entry_span_ids(entry: Mapping[str, Any]) -> tuple[int, int, int | None]:
    """(trace id, span id, parent span id or None) of an entry's span.

    A call logged outside a trace is a one-span trace named after its own id.
    """
    entry_id = entry["id"]
    # An all-zero id is OpenTelemetry's "invalid": such entries would share one trace (and
    # one span id) with every other, so they count as having none.
    trace = _valid(entry.get("trace_id"))
    span = _valid(entry.get("span_id")) or entry_id
    parent = _valid(entry.get("parent_id"))
    if not trace:
        return trace_id_of(entry_id), span_id_of(entry_id), None
    return trace_id_of(trace), span_id_of(span), (span_id_of(parent) if parent else None)


# -- timestamps ---------------------------------------------------------------------------------

_second_cache: dict[str, int] = {}


def timestamp_ns(ts: str) -> int:
    """Nanoseconds since the epoch for a logged `YYYY-MM-DDTHH:MM:SS.ffffffZ` timestamp."""
    head, _, frac = ts.rstrip("Z").partition(".")
    seconds = _second_cache.get(head)
    if seconds is None:
        if len(_second_cache) > 4096:
            _second_cache.clear()
        seconds = _second_cache[head] = calendar.timegm(
            (int(head[0:4]), int(head[5:7]), int(head[8:10]), int(head[11:13]),
             int(head[14:16]), int(head[17:19]), 0, 0, 0))
    return seconds * 1_000_000_000 + (int((frac + "000000000")[:9]) if frac else 0)


# -- attributes -------------------------------------------------------------------------------


def _scalar(value: Any) -> Any:
    """An attribute value: str/bool/int/float as they are, lists of one such type, else JSON."""
    if isinstance(value, str | bool | int | float):
        return value
    if isinstance(value, list | tuple) and value and all(isinstance(v, str) for v in value):
        return list(value)
    return orjson.dumps(value).decode()


def error_type(error: str | None) -> str:
    """`error.type` from a logged error text (`TimeoutError: …` → `TimeoutError`)."""
    if error:
        head = error.split(":", 1)[0].strip()
        if head and re.fullmatch(r"[A-Za-z_][\w.]*", head):
            return head
    return "_OTHER"


def _parts(text: str) -> list[dict[str, str]]:
    return [{"type": "text", "content": text}]


def _message(message: Mapping[str, Any], redact: Callable[[str], str]) -> dict[str, Any]:
    """One chat message (OpenAI form) as a GenAI message: role and typed parts."""
    content = message.get("content")
    role = message.get("role") or "user"
    parts: list[dict[str, Any]] = []
    if role == "tool" and message.get("tool_call_id"):
        parts.append({"type": "tool_call_response", "id": message["tool_call_id"],
                      "response": redact(content) if isinstance(content, str) else content})
    elif isinstance(content, str) and (content or not message.get("tool_calls")):
        parts.extend(_parts(redact(content)))
    elif isinstance(content, list):  # OpenAI content parts
        for part in content:
            if isinstance(part, Mapping) and isinstance(part.get("text"), str):
                parts.append({"type": "text", "content": redact(part["text"])})
            else:
                parts.append({"type": "generic", "content": orjson.dumps(part).decode()})
    for call in message.get("tool_calls") or []:
        if not isinstance(call, Mapping):
            continue
        function = call.get("function") if isinstance(call.get("function"), Mapping) else call
        arguments = function.get("arguments")
        if isinstance(arguments, str):
            try:
                arguments = orjson.loads(redact(arguments))
            except orjson.JSONDecodeError:
                arguments = redact(arguments)
        parts.append({"type": "tool_call", "id": call.get("id"), "name": function.get("name"),
                      "arguments": arguments})
    out: dict[str, Any] = {"role": role, "parts": parts}
    if message.get("name"):
        out["name"] = message["name"]
    return out


def content_attributes(entry: Mapping[str, Any], redact: Callable[[str], str]) -> dict[str, str]:
    """`gen_ai.system_instructions`, `gen_ai.input.messages` and `gen_ai.output.messages` as
    JSON text (the conventions' form for span attributes), each string redacted."""
    out: dict[str, str] = {}
    system = entry.get("system_prompt")
    messages = entry.get("messages")
    if isinstance(system, str):
        out["gen_ai.system_instructions"] = orjson.dumps(_parts(redact(system))).decode()
    if isinstance(messages, list) and messages:
        inputs = [_message(m, redact) for m in messages if isinstance(m, Mapping)]
        out["gen_ai.input.messages"] = orjson.dumps(inputs).decode()
    elif isinstance(entry.get("user_message"), str):
        inputs = [{"role": "user", "parts": _parts(redact(entry["user_message"]))}]
        out["gen_ai.input.messages"] = orjson.dumps(inputs).decode()
    response = entry.get("assistant_response")
    if isinstance(response, str):
        output = {"role": "assistant", "parts": _parts(redact(response))}
        if entry.get("status") == "error":
            output["finish_reason"] = "error"
        else:
            output["finish_reason"] = "stop"
        out["gen_ai.output.messages"] = orjson.dumps([output]).decode()
    return out


def _redact_value(value: Any) -> Any:
    from promptlab.logs.redact import redact_value

    return redact_value(value)


class SpanMaker:
    """Builds `ReadableSpan`s from log entries for one resource (service).

    `content`: also send the texts (system prompt, messages, response) — off by default,
    as the conventions ask, and always through `redact`.
    `parent_of`: for a feedback entry, the (trace id, span id) of the entry it scores, when
    known (by default the scored entry is taken to be a call logged outside any trace);
    (trace id, None) makes the feedback a root span of that trace.
    """

    def __init__(self, resource: Resource, *, content: bool = False,
                 redact: Callable[[str], str] | None = None,
                 parent_of: Callable[[str], tuple[int, int | None] | None] | None = None):
        self.resource = resource
        self.content = content
        if redact is None:
            from promptlab.logs.redact import redact_text

            redact = redact_text
        self.redact = redact
        self.parent_of = parent_of

    def make(self, entry: Mapping[str, Any]) -> ReadableSpan:
        """The span of one entry (kind llm, span or feedback)."""
        kind = entry.get("kind") or "llm"
        start = timestamp_ns(entry["timestamp"])
        latency = entry.get("latency_ms")
        end = start + (int(latency * 1_000_000) if isinstance(latency, int | float) else 0)
        attributes: dict[str, Any] = {"promptlab.id": entry["id"]}
        events: list[Event] = []
        if kind == "feedback":
            trace_id, span_id, parent = self._feedback_ids(entry)
            name = "feedback"
            span_kind = SpanKind.INTERNAL
            for score_name, value in (entry.get("scores") or {}).items():
                events.append(Event("gen_ai.evaluation.result", {
                    "gen_ai.evaluation.name": score_name,
                    "gen_ai.evaluation.score.value": float(value),
                    **({"gen_ai.evaluation.score.label": str(value).lower()}
                       if isinstance(value, bool) else {}),
                }, timestamp=start))
        else:
            trace_id, span_id, parent = entry_span_ids(entry)
            parent_ulid = entry.get("parent_id")
            if parent_ulid and _ULID.match(parent_ulid):
                attributes["promptlab.parent_id"] = parent_ulid
            if kind == "llm":
                model = entry.get("model")
                operation = "chat"
                attributes["gen_ai.operation.name"] = operation
                if model:
                    attributes["gen_ai.request.model"] = model
                    attributes["gen_ai.response.model"] = model
                name = f"{operation} {model}" if model else operation
                span_kind = SpanKind.CLIENT
                if entry.get("name"):
                    attributes["promptlab.name"] = entry["name"]
                config = entry.get("config") or {}
                if isinstance(config, Mapping):  # keyed secrets (api_key = …) too
                    config = _redact_value(config)
                for key, value in config.items():
                    if value is None:
                        continue
                    attr = CONFIG_ATTRIBUTES.get(key)
                    if attr is None:
                        attributes[f"promptlab.config.{key}"] = _scalar(value)
                    elif attr == "gen_ai.request.stop_sequences":
                        attributes[attr] = [value] if isinstance(value, str) else _scalar(value)
                    else:
                        attributes[attr] = _scalar(value)
                if self.content:
                    attributes.update(content_attributes(entry, self.redact))
            else:
                name = entry.get("name") or "span"
                span_kind = SpanKind.INTERNAL
                if entry.get("model"):
                    attributes["gen_ai.request.model"] = entry["model"]
        for field, attr in PLAIN_ATTRIBUTES.items():
            value = entry.get(field)
            if value is not None:
                attributes[attr] = value if isinstance(value, str | bool | int | float) \
                    else _scalar(value)
        if kind != "feedback":
            for score_name, value in (entry.get("scores") or {}).items():
                attributes[f"promptlab.score.{score_name}"] = value
        elif entry.get("scores"):
            for score_name, value in entry["scores"].items():
                attributes[f"promptlab.score.{score_name}"] = value
        tags = entry.get("tags")
        if tags:
            attributes["promptlab.tags"] = list(tags)
        metadata = entry.get("metadata")
        if metadata:
            attributes["promptlab.metadata"] = orjson.dumps(_redact_value(metadata)).decode()
        # Every text attribute through `redact` (names, ids, tags, config and metadata as
        # sent): the log may have been written with redaction off.
        for attr, value in attributes.items():
            if isinstance(value, str):
                attributes[attr] = self.redact(value)
            elif isinstance(value, list) and any(isinstance(v, str) for v in value):
                attributes[attr] = [self.redact(v) if isinstance(v, str) else v for v in value]
        if entry.get("status") == "error" or (entry.get("error") and entry.get("status") != "ok"):
            error = entry.get("error")
            attributes["error.type"] = error_type(error)
            status = Status(StatusCode.ERROR, self.redact(error) if error else None)
        elif entry.get("status") == "ok":  # the entry says the call succeeded
            status = Status(StatusCode.OK)
        else:
            status = Status(StatusCode.UNSET)
        context = SpanContext(trace_id, span_id, is_remote=False, trace_flags=_SAMPLED)
        parent_context = (SpanContext(trace_id, parent, is_remote=False, trace_flags=_SAMPLED)
                          if parent is not None else None)
        return ReadableSpan(
            name=name, context=context, parent=parent_context, resource=self.resource,
            attributes=attributes, events=events, kind=span_kind, status=status,
            start_time=start, end_time=end, instrumentation_scope=SCOPE,
        )

    def _feedback_ids(self, entry: Mapping[str, Any]) -> tuple[int, int, int | None]:
        """A feedback entry is a zero-length child span of the entry it scores (a root span
        when `parent_of` answers a trace without a span: an entry that is never sent)."""
        target = entry.get("target") or entry["id"]
        known = self.parent_of(target) if self.parent_of is not None else None
        if known is not None:
            trace_id, parent = known
        else:
            trace_id, parent = trace_id_of(target), span_id_of(target)
        return trace_id, span_id_of(entry["id"]), parent


def make_resource(service_name: str | None = None, configured: str | None = None) -> Resource:
    """The resource of exported spans. service.name: `service_name` (an option), else
    OTEL_SERVICE_NAME / OTEL_RESOURCE_ATTRIBUTES, else `configured` (the project's
    `[otel] service_name`), else `promptlab`."""
    import os

    attributes: dict[str, Any] = {}
    from_env = bool(os.environ.get("OTEL_SERVICE_NAME")) or "service.name=" in os.environ.get(
        "OTEL_RESOURCE_ATTRIBUTES", "")
    if service_name:
        attributes["service.name"] = service_name
    elif not from_env:
        attributes["service.name"] = configured or "promptlab"
    return Resource.create(attributes)
