"""OpenTelemetry spans → promptlab log entries: `SpanExporter` and the attribute mapping.

    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from promptlab.otel import SpanExporter

    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(SpanExporter()))   # into ~/llm-logs

GenAI spans become LLM-call entries (model, provider, messages or prompt/completion when the
instrumentation recorded them, tokens, latency, errors, trace/span/parent ids); other spans
become `kind: "span"` entries, so `logs search`, `costs`, `trace` and `compare` work on them.
The attribute names of the GenAI conventions (old and new), OpenLLMetry and OpenInference
are read (`ATTRIBUTE_TABLE`, documented in docs/otel.md); anything else goes to `metadata`.

Spans come in as `SpanData`, a neutral form built from an SDK `ReadableSpan` or from an
OTLP protobuf `ResourceSpans` (what `promptlab otlp serve` receives).
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson

from promptlab.logs.entry import format_timestamp

if TYPE_CHECKING:
    from promptlab.logs.logger import Logger

__all__ = ["ATTRIBUTE_TABLE", "SpanData", "SpanExporter", "span_to_entry", "spans_from_proto"]

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_ULID = re.compile(r"^[0-7][0-9A-HJKMNP-TV-Z]{25}$")


@dataclass
class SpanData:
    """One finished span, whatever it came from."""

    name: str
    trace_id: int
    span_id: int
    parent_id: int | None
    start_ns: int
    end_ns: int
    attributes: dict[str, Any] = field(default_factory=dict)
    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    error: bool = False
    ok: bool = False  # status OK (set explicitly); neither: UNSET
    status_message: str | None = None
    resource: dict[str, Any] = field(default_factory=dict)
    scope: str | None = None
    invalid: str | None = None  # why the span cannot be logged (its ids), when it cannot


# -- the attribute table (first match wins; see docs/otel.md) -------------------------------

MODEL = ("gen_ai.request.model", "llm.request.model", "llm.model_name", "gen_ai.response.model",
         "llm.response.model")
RESPONSE_MODEL = ("gen_ai.response.model", "llm.response.model")
PROVIDER = ("gen_ai.provider.name", "gen_ai.system", "llm.provider", "llm.system")
OPERATION = ("gen_ai.operation.name", "llm.request.type")
INPUT_TOKENS = ("gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens",
                "llm.usage.prompt_tokens", "llm.token_count.prompt")
OUTPUT_TOKENS = ("gen_ai.usage.output_tokens", "gen_ai.usage.completion_tokens",
                 "llm.usage.completion_tokens", "llm.token_count.completion")
CACHED_TOKENS = ("gen_ai.usage.cache_read.input_tokens", "gen_ai.usage.cache_read_input_tokens",
                 "llm.token_count.prompt_details.cache_read")
REASONING_TOKENS = ("gen_ai.usage.reasoning.output_tokens", "gen_ai.usage.reasoning_tokens",
                    "llm.usage.reasoning_tokens", "llm.token_count.completion_details.reasoning")
COST = ("promptlab.cost_usd", "llm.cost.total", "gen_ai.usage.cost")
CONFIG = {
    "gen_ai.request.temperature": "temperature", "llm.temperature": "temperature",
    "gen_ai.request.max_tokens": "max_tokens", "llm.max_tokens": "max_tokens",
    "gen_ai.request.top_p": "top_p", "llm.top_p": "top_p",
    "gen_ai.request.top_k": "top_k", "llm.top_k": "top_k",
    "gen_ai.request.frequency_penalty": "frequency_penalty",
    "llm.frequency_penalty": "frequency_penalty",
    "gen_ai.request.presence_penalty": "presence_penalty",
    "llm.presence_penalty": "presence_penalty",
    "gen_ai.request.seed": "seed", "gen_ai.openai.request.seed": "seed",
    "gen_ai.request.stop_sequences": "stop", "llm.chat.stop_sequences": "stop",
    "gen_ai.request.choice.count": "n",
    "gen_ai.request.stream": "stream", "llm.is_streaming": "stream",
    "gen_ai.is_streaming": "stream",
}
PROMPTLAB = {
    "promptlab.prompt.id": "prompt_id", "promptlab.prompt.version": "prompt_version",
    "promptlab.prompt.label": "prompt_label", "promptlab.prompt.sha": "prompt_sha",
    "promptlab.prompt.commit": "prompt_commit", "promptlab.prompt.dirty": "prompt_dirty",
    "promptlab.run_id": "run_id", "promptlab.experiment": "experiment",
    "promptlab.variant": "variant", "promptlab.unit_id": "unit_id",
    "promptlab.item_id": "item_id", "promptlab.repeat": "repeat",
    "promptlab.target": "target", "promptlab.name": "name",
}
# Read as metadata under a short name.
METADATA = {
    "gen_ai.response.id": "response_id", "gen_ai.response.finish_reasons": "finish_reasons",
    "gen_ai.conversation.id": "conversation_id", "session.id": "session_id",
    "user.id": "user_id",
}
# Consumed by the rules above or below (never copied to metadata).
_CONSUMED = {
    "llm.invocation_parameters", "llm.usage.total_tokens", "llm.token_count.total",
    "gen_ai.usage.total_tokens", "openinference.span.kind", "metadata", "tag.tags",
    "promptlab.tags", "promptlab.metadata", "promptlab.id", "promptlab.parent_id", "error.type",
}
# Texts of an LLM call (read into its entry; on other spans they are metadata).
_CONTENT = {
    "gen_ai.input.messages", "gen_ai.output.messages", "gen_ai.system_instructions",
    "gen_ai.prompt", "gen_ai.completion", "input.value", "output.value", "input.mime_type",
    "output.mime_type", "llm.prompts",
}
_INDEXED = re.compile(
    r"^(gen_ai\.prompt|gen_ai\.completion|llm\.input_messages|llm\.output_messages|llm\.prompts)"
    r"\.(\d+)\.(.+)$")
_LLM_OPERATIONS = {"chat", "text_completion", "generate_content", "completion", "embeddings",
                   "embedding", "responses"}

ATTRIBUTE_TABLE: list[tuple[str, tuple[str, ...]]] = [
    ("model", MODEL), ("provider", PROVIDER), ("input_tokens", INPUT_TOKENS),
    ("output_tokens", OUTPUT_TOKENS), ("cached_tokens", CACHED_TOKENS),
    ("reasoning_tokens", REASONING_TOKENS), ("cost_usd", COST),
]


def _first(attrs: Mapping[str, Any], names: Sequence[str]) -> Any:
    for name in names:
        value = attrs.get(name)
        if value is not None and value != "":
            return value
    return None


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float) and value >= 0:
        return int(value)
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


def _json(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return orjson.loads(value)
        except orjson.JSONDecodeError:
            return None
    return value


def _text_of(parts: Any) -> str | None:
    """The text of a message's content: a string, GenAI `parts`, or OpenAI content parts."""
    if isinstance(parts, str):
        return parts
    if isinstance(parts, list):
        texts = []
        for part in parts:
            if isinstance(part, Mapping):
                text = part.get("content") if part.get("type", "text") == "text" else None
                if text is None:
                    text = part.get("text")
                if isinstance(text, str):
                    texts.append(text)
            elif isinstance(part, str):
                texts.append(part)
        return "".join(texts) if texts else None
    return None


def _messages_of(value: Any) -> list[dict[str, Any]]:
    """Chat messages in OpenAI form ({role, content}, `tool_calls`, `tool_call_id`) from
    GenAI `gen_ai.*.messages` JSON (typed parts) or a list of such messages."""
    out = []
    for message in _json(value) or []:
        if not isinstance(message, Mapping):
            continue
        role = message.get("role") or "user"
        parts = message.get("parts")
        text = _text_of(parts if parts is not None else message.get("content"))
        if text is None and isinstance(message.get("message"), Mapping):  # OpenInference JSON
            text = _text_of(message["message"].get("content"))
        item: dict[str, Any] = {"role": str(role), "content": text if text is not None else ""}
        for part in parts if isinstance(parts, list) else ():
            if not isinstance(part, Mapping):
                continue
            if part.get("type") == "tool_call":
                arguments = part.get("arguments")
                item.setdefault("tool_calls", []).append({
                    "id": part.get("id"), "type": "function",
                    "function": {"name": part.get("name"),
                                 "arguments": arguments if isinstance(arguments, str)
                                 else orjson.dumps(arguments).decode()}})
            elif part.get("type") == "tool_call_response":
                item["tool_call_id"] = part.get("id")
                response = part.get("response", part.get("result"))
                item["content"] = response if isinstance(response, str) else \
                    orjson.dumps(response).decode()
        if message.get("name"):
            item["name"] = str(message["name"])
        out.append(item)
    return out


def _indexed_messages(attrs: Mapping[str, Any], prefix: str) -> list[dict[str, Any]]:
    """Messages flattened into attributes: `gen_ai.prompt.0.content` (OpenLLMetry),
    `llm.input_messages.0.message.content` (OpenInference)."""
    found: dict[int, dict[str, Any]] = {}
    for key, value in attrs.items():
        m = _INDEXED.match(key)
        if m is None or m.group(1) != prefix:
            continue
        rest = m.group(3).removeprefix("message.")
        slot = found.setdefault(int(m.group(2)), {})
        if rest in ("role", "content", "name", "finish_reason"):
            slot[rest] = value
        elif rest.startswith("contents.") and rest.endswith("message_content.text"):
            slot.setdefault("_parts", []).append(str(value))
        elif rest == "prompt" or rest == "prompt.text":  # llm.prompts.N.prompt.text
            slot["content"] = value
    out = []
    for _, slot in sorted(found.items()):
        content = slot.get("content")
        if content is None and "_parts" in slot:
            content = "".join(slot["_parts"])
        content = _text_of(_json(content)) if isinstance(content, str) and content[:1] == "[" \
            else content
        item = {"role": str(slot.get("role") or "user"),
                "content": content if isinstance(content, str) else ""}
        if slot.get("name"):
            item["name"] = str(slot["name"])
        out.append(item)
    return out


def _ulid_of(value: int) -> str:
    chars = []
    for _ in range(26):
        chars.append(_CROCKFORD[value & 31])
        value >>= 5
    return "".join(reversed(chars))


def entry_id_for(span: SpanData) -> str:
    """A ULID for a span from elsewhere: its start millisecond and 80 bits of a hash of its
    trace and span ids, so the same span taken in twice gets the same id."""
    ms = span.start_ns // 1_000_000
    digest = hashlib.sha256(f"{span.trace_id:032x}{span.span_id:016x}".encode()).digest()
    return _ulid_of((ms << 80) | int.from_bytes(digest[:10], "big"))


def span_to_entry(span: SpanData, *, content: bool = True) -> dict[str, Any]:
    """The log-entry fields for one span (for `Logger.log`)."""
    attrs = {k: _finite(v) for k, v in span.attributes.items()}
    used: set[str] = set()

    def take(names: Sequence[str]) -> Any:
        for name in names:
            value = attrs.get(name)
            if value is not None and value != "":
                used.update(names)
                return value
        return None

    own_id = attrs.get("promptlab.id")
    ours = isinstance(own_id, str) and _ULID.match(own_id) is not None
    operation = take(OPERATION)
    kind_attr = attrs.get("openinference.span.kind")
    model = take(MODEL)
    is_feedback = ours and span.name == "feedback" and "promptlab.target" in attrs
    is_llm = not is_feedback and (
        (isinstance(operation, str) and operation.lower() in _LLM_OPERATIONS)
        or (isinstance(kind_attr, str) and kind_attr.upper() in ("LLM", "EMBEDDING"))
        or (operation is None and model is not None and _first(attrs, PROVIDER) is not None))
    entry: dict[str, Any] = {"kind": "feedback" if is_feedback else ("llm" if is_llm else "span")}

    # ids and times
    if ours:
        entry["id"] = own_id
        trace = _ulid_of(span.trace_id)
        standalone = (entry["kind"] == "llm" and span.parent_id is None and trace == own_id)
        if not standalone and not is_feedback:
            entry["trace_id"] = trace
            entry["span_id"] = own_id
            parent = attrs.get("promptlab.parent_id")
            if isinstance(parent, str):
                entry["parent_id"] = parent
            elif span.parent_id is not None:
                entry["parent_id"] = f"{span.parent_id:016x}"
    else:
        entry["id"] = entry_id_for(span)
        entry["trace_id"] = f"{span.trace_id:032x}"
        entry["span_id"] = f"{span.span_id:016x}"
        if span.parent_id is not None:
            entry["parent_id"] = f"{span.parent_id:016x}"
    entry["timestamp"] = format_timestamp(span.start_ns)
    if not is_feedback:
        entry["latency_ms"] = round(max(span.end_ns - span.start_ns, 0) / 1e6, 3)

    # GenAI fields
    metadata: dict[str, Any] = {}
    if is_llm:
        if model is not None:
            entry["model"] = str(model)
        response_model = take(RESPONSE_MODEL)
        if response_model is not None and response_model != model:
            metadata["response_model"] = response_model
        expected = f"{operation} {model}" if model else str(operation)
        if span.name and span.name not in (expected, str(operation)) and "name" not in entry:
            entry["name"] = span.name
        if operation is not None and str(operation).lower() != "chat":
            metadata["operation"] = operation
    elif not is_feedback:
        entry["name"] = span.name or "span"
        if model is not None:
            entry["model"] = str(model)
        if operation is not None:
            metadata["operation"] = operation
    provider = take(PROVIDER)
    if provider is not None:
        entry["provider"] = str(provider)
    for field_name, names in (("input_tokens", INPUT_TOKENS), ("output_tokens", OUTPUT_TOKENS),
                              ("cached_tokens", CACHED_TOKENS),
                              ("reasoning_tokens", REASONING_TOKENS)):
        value = _int(take(names))
        if value is not None:
            entry[field_name] = value
    cost = take(COST)
    if isinstance(cost, int | float) and not isinstance(cost, bool) and cost >= 0:
        entry["cost_usd"] = cost

    # request parameters
    config: dict[str, Any] = {}
    params = _json(attrs.get("llm.invocation_parameters"))
    if isinstance(params, Mapping):
        config.update(params)
    for key, value in attrs.items():
        if key in CONFIG:
            used.add(key)
            config[CONFIG[key]] = list(value) if isinstance(value, tuple) else value
        elif key.startswith("promptlab.config."):
            used.add(key)
            config[key.removeprefix("promptlab.config.")] = _json_or_text(value)
    if config and entry["kind"] != "feedback":
        entry["config"] = config

    # promptlab's own attributes
    for key, name in PROMPTLAB.items():
        if key in attrs:
            used.add(key)
            entry[name] = attrs[key]
    scores = {}
    for key, value in attrs.items():
        if key.startswith("promptlab.score."):
            used.add(key)
            scores[key.removeprefix("promptlab.score.")] = value
    if scores:
        entry["scores"] = scores
    tags = attrs.get("promptlab.tags") or attrs.get("tag.tags")
    if isinstance(tags, list | tuple) and tags:
        entry["tags"] = [str(t) for t in tags]
    own_metadata = _json(attrs.get("promptlab.metadata"))
    if isinstance(own_metadata, Mapping):
        metadata.update(own_metadata)
    app_metadata = _json(attrs.get("metadata"))  # OpenInference
    if isinstance(app_metadata, Mapping):
        metadata.update(app_metadata)

    # content
    if content and is_llm:
        _content(span, entry, metadata)

    # errors
    if span.error:
        entry["status"] = "error"
        kind_name = attrs.get("error.type")
        message = span.status_message
        for name, event in span.events:
            if name == "exception":
                kind_name = kind_name or event.get("exception.type")
                message = message or event.get("exception.message")
        if isinstance(kind_name, str) and (m := re.fullmatch(r"<class '(.+)'>", kind_name)):
            kind_name = m.group(1)  # some instrumentations record str(type(exc))
        if kind_name and message and not str(message).startswith(str(kind_name)):
            entry["error"] = f"{kind_name}: {message}"
        else:
            entry["error"] = str(message or kind_name or "error")
    elif entry["kind"] != "feedback" and (span.ok or not ours):
        entry["status"] = "ok"  # promptlab's own spans: only when the entry said so

    # everything else
    for key, value in attrs.items():
        if key in used or key in _CONSUMED or key in PROMPTLAB or (
                is_llm and (key in _CONTENT or _INDEXED.match(key))):
            continue
        if key in METADATA:
            metadata[METADATA[key]] = list(value) if isinstance(value, tuple) else value
        else:
            metadata[key] = list(value) if isinstance(value, tuple) else value
    if not ours:
        service = span.resource.get("service.name")
        if service and not str(service).startswith("unknown_service"):
            metadata.setdefault("service.name", service)
        if span.scope:
            metadata.setdefault("otel.scope", span.scope)
    if metadata:
        entry["metadata"] = metadata
    return entry


def _finite(value: Any) -> Any:
    """An attribute value JSON can hold: a NaN or an infinity (which OpenTelemetry allows and
    a log line cannot) becomes its name as text, so the span is logged, not refused."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, tuple | list) and any(
            isinstance(v, float) and not math.isfinite(v) for v in value):
        return [str(v) if isinstance(v, float) and not math.isfinite(v) else v for v in value]
    return value


def _json_or_text(value: Any) -> Any:
    if isinstance(value, str) and value[:1] in "[{":
        parsed = _json(value)
        if parsed is not None:
            return parsed
    return list(value) if isinstance(value, tuple) else value


def _content(span: SpanData, entry: dict[str, Any], metadata: dict[str, Any]) -> None:
    """system_prompt / user_message / messages / assistant_response, from whichever form the
    instrumentation used."""
    attrs = span.attributes
    system = _text_of(_json(attrs.get("gen_ai.system_instructions")))
    inputs = _messages_of(attrs.get("gen_ai.input.messages"))
    outputs = _messages_of(attrs.get("gen_ai.output.messages"))
    if not inputs:
        inputs = (_indexed_messages(attrs, "gen_ai.prompt")
                  or _indexed_messages(attrs, "llm.input_messages"))
    if not outputs:
        outputs = (_indexed_messages(attrs, "gen_ai.completion")
                   or _indexed_messages(attrs, "llm.output_messages"))
    for name, event in span.events:  # semconv <= 1.27: content on span events
        if name == "gen_ai.content.prompt" and not inputs:
            inputs = _messages_of(event.get("gen_ai.prompt"))
        elif name == "gen_ai.content.completion" and not outputs:
            outputs = _messages_of(event.get("gen_ai.completion"))
    if not inputs and isinstance(attrs.get("input.value"), str):
        parsed = _json(attrs["input.value"]) if attrs.get("input.mime_type") == \
            "application/json" else None
        msgs = parsed.get("messages") if isinstance(parsed, Mapping) else None
        inputs = _messages_of(msgs) if msgs else [{"role": "user", "content": attrs["input.value"]}]
    if not outputs and isinstance(attrs.get("output.value"), str) and \
            attrs.get("output.mime_type") != "application/json":
        outputs = [{"role": "assistant", "content": attrs["output.value"]}]
    if system is not None:
        entry["system_prompt"] = system
    if inputs:
        systems = [m["content"] for m in inputs if m["role"] == "system"]
        users = [m["content"] for m in inputs if m["role"] == "user"]
        simple = (len(users) == 1 and len(inputs) == len(users) + len(systems)
                  and len(systems) <= 1 and not any("name" in m for m in inputs))
        if not simple:
            entry["messages"] = inputs
        if systems and "system_prompt" not in entry:
            entry["system_prompt"] = "\n\n".join(systems)
        if users:
            entry["user_message"] = "\n\n".join(users)
    if outputs:
        texts = [m["content"] for m in outputs if m.get("content")]
        if texts:
            entry["assistant_response"] = texts[0] if len(texts) == 1 else "\n\n".join(texts)


# -- sources of SpanData ---------------------------------------------------------------------


def spans_from_sdk(spans: Iterable[Any]) -> Iterator[SpanData]:
    """SpanData for SDK `ReadableSpan`s."""
    from opentelemetry.trace import StatusCode

    for span in spans:
        context = span.context
        parent = span.parent
        resource = dict(span.resource.attributes) if span.resource is not None else {}
        scope = span.instrumentation_scope.name if span.instrumentation_scope else None
        yield SpanData(
            name=span.name, trace_id=context.trace_id, span_id=context.span_id,
            parent_id=parent.span_id if parent is not None else None,
            start_ns=span.start_time or 0, end_ns=span.end_time or span.start_time or 0,
            attributes=dict(span.attributes or {}),
            events=[(e.name, dict(e.attributes or {})) for e in span.events],
            error=span.status.status_code == StatusCode.ERROR,
            ok=span.status.status_code == StatusCode.OK,
            status_message=span.status.description, resource=resource, scope=scope,
        )


def _any_value(value: Any) -> Any:
    which = value.WhichOneof("value")
    if which is None:
        return None
    if which == "array_value":
        return tuple(_any_value(v) for v in value.array_value.values)
    if which == "kvlist_value":
        return {kv.key: _any_value(kv.value) for kv in value.kvlist_value.values}
    if which == "bytes_value":
        return value.bytes_value.hex()
    return getattr(value, which)


def _attributes(pairs: Iterable[Any]) -> dict[str, Any]:
    return {kv.key: _any_value(kv.value) for kv in pairs}


def _invalid_ids(span: Any) -> str | None:
    """What makes an OTLP span's ids invalid (the OpenTelemetry spec: a trace id is 16 bytes,
    a span id 8, neither all zero), or None. Such a span would share its "trace" with every
    other broken sender's, so it is rejected, not logged."""
    for what, value, size in (("trace id", span.trace_id, 16), ("span id", span.span_id, 8)):
        if len(value) != size or not any(value):
            shown = value.hex() or "empty"
            return f"invalid {what} {shown[:40]}: it must be {size} bytes, not all zero"
    if span.parent_span_id and len(span.parent_span_id) != 8:
        return f"invalid parent span id {span.parent_span_id.hex()[:40]}: it must be 8 bytes"
    return None


def spans_from_proto(request: Any) -> Iterator[SpanData]:
    """SpanData for every span of an OTLP `ExportTraceServiceRequest` (protobuf message)."""
    for resource_spans in request.resource_spans:
        resource = _attributes(resource_spans.resource.attributes)
        for scope_spans in resource_spans.scope_spans:
            scope = scope_spans.scope.name or None
            for span in scope_spans.spans:
                parent = int.from_bytes(span.parent_span_id, "big") if span.parent_span_id \
                    else None
                span_id = int.from_bytes(span.span_id, "big")
                if parent == 0 or parent == span_id:  # no parent, or a loop: a root span
                    parent = None
                yield SpanData(
                    name=span.name, trace_id=int.from_bytes(span.trace_id, "big"),
                    span_id=span_id, parent_id=parent,
                    start_ns=span.start_time_unix_nano, end_ns=span.end_time_unix_nano,
                    attributes=_attributes(span.attributes),
                    events=[(e.name, _attributes(e.attributes)) for e in span.events],
                    error=span.status.code == 2, ok=span.status.code == 1,
                    status_message=span.status.message or None,
                    resource=resource, scope=scope, invalid=_invalid_ids(span),
                )


def without_live_export(logger: Logger) -> Logger:
    """`logger` without the live OTLP sink: spans taken in from OpenTelemetry must not be
    sent back out (to the app's own backend, or in a loop to `otlp serve` itself)."""
    logger.otel_live = False  # type: ignore[attr-defined]  # read by otel.live.sink_for
    if logger.sinks:  # already set up with one
        from promptlab.otel.live import LiveExporter

        for sink in logger.sinks:
            if isinstance(sink, LiveExporter):
                logger.remove_sink(sink)
    return logger


def write_spans(logger: Logger, spans: Iterable[SpanData], *, content: bool = True) -> int:
    """Log one entry per span; returns how many were written."""
    written = 0
    for span in spans:
        logger.log(**span_to_entry(span, content=content))
        written += 1
    return written


# -- the SpanExporter -----------------------------------------------------------------------

try:
    from opentelemetry.sdk.trace.export import SpanExporter as _SdkSpanExporter
    from opentelemetry.sdk.trace.export import SpanExportResult
except ImportError:  # pragma: no cover - promptlab[otel] not installed
    _SdkSpanExporter = object  # type: ignore[assignment,misc]
    SpanExportResult = None  # type: ignore[assignment,misc]


class SpanExporter(_SdkSpanExporter):  # type: ignore[misc,valid-type]
    """An OpenTelemetry `SpanExporter` that writes spans to promptlab's log.

    logger:  the `Logger` to write to (default: a new `Logger()`, the project's log folder).
    log_dir: shorthand for `Logger(log_dir)`.
    content: keep the prompts and responses the instrumentation recorded (default True);
             they go through the logger's redaction like every entry.
    """

    def __init__(self, logger: Logger | None = None, *, log_dir: str | None = None,
                 content: bool = True):
        if _SdkSpanExporter is object:
            from promptlab.errors import ConfigError

            raise ConfigError("promptlab.otel.SpanExporter needs the OpenTelemetry SDK: "
                              "pip install 'promptlab[otel]'")
        if logger is None:
            from promptlab.logs.logger import Logger

            logger = without_live_export(Logger(log_dir))
        self.logger = logger
        self.content = content
        self.rejected = 0

    def export(self, spans: Sequence[Any]) -> Any:
        failed = False
        for span in spans_from_sdk(spans):
            try:
                self.logger.log(**span_to_entry(span, content=self.content))
            except Exception as exc:  # a span promptlab cannot log must not stop the others
                self.rejected += 1
                failed = True
                self.logger._warn(f"span {span.name!r} was not logged: {exc}")
        return SpanExportResult.FAILURE if failed else SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        self.logger.close()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True
