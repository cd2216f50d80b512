"""The logging API: `Logger`, `logger.call(rendered)`, `feedback`, and module-level shortcuts.

    from promptlab import Registry, Logger

    logger = Logger()                       # log folder from env / project / ~/llm-logs
    rendered = Registry().get("code-review").render(code=source)
    with logger.call(rendered) as call:
        reply = client.chat.completions.create(model=rendered.model, messages=rendered.messages)
        call.finish(response=reply)         # text, tokens and cost taken from the response
    logger.feedback(call.entry["id"], helpful=True)

A logging failure (disk full, permission denied, a bad prices file) never breaks the
caller: it warns once with the reason and the entry is dropped (`logger.dropped` counts
them). `strict=True` raises `LogError` instead. Fields of the wrong type are a caller's
mistake and always raise `EntryError` (a `LogError`).
"""

from __future__ import annotations

import functools
import inspect
import os
import re
import threading
import time
import warnings
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from promptlab.errors import LogError, PromptlabError
from promptlab.logs.entry import (
    HEAD,
    SCHEMA,
    SCHEMA_VERSION,
    EntryError,
    _builders,
    build_entry,
    check_finite,
    complete,
    encode_entry,
    entry_builder,
    format_timestamp,
    is_ulid,
    new_id,
)
from promptlab.logs.tracing import Span, current_span_var

if TYPE_CHECKING:  # pragma: no cover
    from promptlab.costs import Price, Prices
    from promptlab.logs.writer import LogWriter
    from promptlab.template import Rendered

__all__ = ["Call", "LogWarning", "Logger", "Sink", "feedback", "get_logger", "log",
           "log_llm_call", "span", "trace", "traced"]

# A sink receives each entry as written (redacted); see Logger.add_sink.
Sink = Callable[[dict[str, Any]], Any]


class LogWarning(UserWarning):
    """A log entry could not be written; the caller's work went on."""


_HEAD = HEAD
# The id readers derive for an entry written without one: "<file stem>:<line number>".
_DERIVED_ID = re.compile(r"[^\s:]{1,150}:[1-9][0-9]{0,9}")
_HEAD_SET = frozenset(HEAD)

# The innermost open span (promptlab.logs.tracing); LLM entries logged inside it become children.
_current_span = current_span_var


class Logger:
    """Writes log entries to `<log_dir>/YYYY-MM-DD.jsonl`. Thread-safe and fork-safe.

    log_dir:  folder for the daily files; None = PROMPTLAB_LOG_DIR, else the project's
              `log_dir` setting, else ~/llm-logs (resolved at the first write).
    redact:   replace API keys, bearer tokens, AWS keys and private keys with [REDACTED]
              (None = the project's `redact` setting, on by default).
    redactor: extra redaction, a function `str -> str` or a `Redactor`, applied to every
              string value of every entry.
    fsync:    flush each entry to disk before returning (survives power loss; ~100x slower).
    strict:   raise LogError when an entry cannot be written instead of warning once.
    prices:   a `Prices` table, a path to a prices file, or False for no cost; None = the
              shipped table plus the project's `prices` file.
    sinks:    functions called with each entry after it is written (see `add_sink`).
    """

    def __init__(
        self,
        log_dir: str | os.PathLike[str] | None = None,
        *,
        redact: bool | None = None,
        redactor: Callable[[str], str] | None = None,
        fsync: bool = False,
        strict: bool = False,
        prices: Prices | str | os.PathLike[str] | bool | None = None,
        check_interval: float = 1.0,
        sinks: Iterable[Sink] = (),
    ):
        self._log_dir_arg = None if log_dir is None else Path(log_dir).expanduser()
        self._redact_arg = redact
        self._redactor = redactor
        self.fsync = fsync
        self.strict = strict
        self._prices_arg = prices
        self.check_interval = check_interval
        self.dropped = 0
        self._warned: set[str] = set()
        self._setup_lock = threading.Lock()
        self._ready = False
        self._setup_error: PromptlabError | None = None
        self._writer: LogWriter | None = None
        self._prices: Prices | None = None
        self._price_of: dict[str, Price | None] = {}
        self._lookup = self._lookup_price  # bound once: the hot path passes it along
        self._redact = True
        self._log_dir: Path | None = self._log_dir_arg
        # A tuple, replaced whole under _setup_lock: the hot path reads it without a lock.
        self._sinks: tuple[Sink, ...] = ()
        self._sink_failed: set[int] = set()
        for sink in sinks:
            self.add_sink(sink)

    @property
    def redactor(self) -> Callable[[str], str] | None:
        """Extra redaction applied to every string value (see the class documentation)."""
        return self._redactor

    @redactor.setter
    def redactor(self, value: Callable[[str], str] | None) -> None:
        self._redactor = value

    # -- sinks ---------------------------------------------------------------------------------

    def add_sink(self, sink: Sink) -> None:
        """Also send each entry to `sink(entry)`, e.g. a live OpenTelemetry exporter.

        The sink is called in the caller's thread right after the entry was appended to the
        log file, with the entry as written (validated, completed and redacted: the dict
        `log` returns; do not change it). Entries that could not be written are not sent.
        A sink should be quick (queue the entry, export elsewhere). An exception from a sink
        never reaches the caller: it warns once per sink and the sink keeps being called.
        `close()` calls the sink's `flush()` and `close()` when it has them.
        """
        if not callable(sink):
            raise TypeError(f"a log sink must be callable with one entry, got {sink!r}")
        with self._setup_lock:
            self._sinks = (*self._sinks, sink)

    def remove_sink(self, sink: Sink) -> None:
        """Stop sending entries to `sink` (a no-op when it was not added)."""
        with self._setup_lock:
            self._sinks = tuple(s for s in self._sinks if s is not sink)

    @property
    def sinks(self) -> tuple[Sink, ...]:
        return self._sinks

    def _send(self, entry: dict[str, Any]) -> None:
        for sink in self._sinks:
            try:
                sink(entry)
            except Exception as exc:  # a sink never fails the caller's call
                if id(sink) not in self._sink_failed:
                    self._sink_failed.add(id(sink))
                    name = getattr(sink, "__qualname__", None) or type(sink).__name__
                    self._warn(f"log sink {name} failed: {type(exc).__name__}: {exc} "
                               "(further failures of this sink are not reported)")

    def __repr__(self) -> str:
        where = self._log_dir or "(log folder resolved at first write)"
        return f"<Logger {where}>"

    # -- set-up -----------------------------------------------------------------------------

    @property
    def log_dir(self) -> Path:
        """The folder entries go to (resolving the project settings if needed)."""
        if self._log_dir is None:
            self._setup()
        return self._log_dir  # type: ignore[return-value]

    def _setup(self) -> None:
        """Resolve settings, open the writer and load prices, once.

        When the project configuration cannot be read, non-strict loggers keep going:
        entries are dropped with a warning, and set-up is retried at the next write.
        """
        with self._setup_lock:
            if self._ready:
                return
            settings = None
            if self._log_dir_arg is None or self._redact_arg is None or self._prices_arg is None:
                from promptlab.config import load_settings

                try:
                    settings = load_settings()
                except PromptlabError as exc:
                    if self.strict or self._log_dir_arg is None:
                        self._setup_error = exc
                        if self.strict:
                            raise
                        return
            self._setup_error = None
            self._log_dir = self._log_dir_arg or settings.log_dir  # type: ignore[union-attr]
            if self._redact_arg is not None:
                self._redact = bool(self._redact_arg)
            elif settings is not None:
                self._redact = settings.redact
            from promptlab.logs.writer import LogWriter

            self._writer = LogWriter(self._log_dir, fsync=self.fsync,
                                     check_interval=self.check_interval)
            self._prices = self._load_prices(settings)
            # Live OpenTelemetry export (promptlab[otel]) when an OTLP endpoint is configured,
            # loaded by name: the logs layer never imports promptlab.otel (docs/otel.md).
            if os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or os.environ.get(
                    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or (
                    settings is not None and (getattr(settings, "otel", None) or {}).get("endpoint")):
                try:
                    import importlib

                    sink = importlib.import_module("promptlab.otel.live").sink_for(self, settings)
                except Exception as exc:  # the extra is missing, a bad URL, …: logging goes on
                    self._warn(f"entries are not exported over OTLP ({type(exc).__name__}: {exc});"
                               " pip install 'promptlab[otel]', or unset the endpoint")
                else:
                    if sink is not None:
                        self._sinks = (*self._sinks, sink)
            self._ready = True

    def _load_prices(self, settings: Any) -> Prices | None:
        arg = self._prices_arg
        if arg is False:
            return None
        from promptlab.costs import Prices, load_prices

        if isinstance(arg, Prices):
            return arg
        try:
            if arg is None or arg is True:
                return load_prices(settings.prices if settings is not None else None)
            return load_prices(arg)  # type: ignore[arg-type]
        except PromptlabError as exc:
            if self.strict:
                raise
            self._warn(f"costs are not computed: {exc}")
            return None

    # -- writing -----------------------------------------------------------------------------

    def log(self, **fields: Any) -> dict[str, Any]:
        """Write one entry and return it as written (with `id`, `timestamp`, `cost_usd`).

        `timestamp` defaults to the call's start: now, minus `latency_ms` when given.

        Accepts the fields of the log entry (design.md): model, system_prompt,
        user_message, assistant_response, messages, input_tokens, output_tokens,
        cached_tokens, reasoning_tokens, latency_ms, tags, metadata, prompt_*, run_id,
        experiment, variant, unit_id, item_id, repeat, scores, status, error, …
        """
        return self._write(fields, True)

    def _write(self, fields: dict[str, Any], attach_trace: bool = False,
               entry_id: str | None = None, start_ns: int | None = None) -> dict[str, Any]:
        """Validate, complete, encode, redact and append one entry. Mutates `fields`.

        `entry_id` and `start_ns` are the id and start time the caller chose (a `Call`);
        by default a new id, and the start is now minus `latency_ms`.
        """
        if not self._ready:
            self._setup()
        now_ns = time.time_ns()
        price_of = self._price_of if self._prices is not None else None
        if "kind" in fields or "id" in fields or "timestamp" in fields or "v" in fields:
            entry = self._entry_with_head(fields, attach_trace, entry_id, start_ns, now_ns,
                                          price_of)
        else:  # the common case: the entry's head is ours to fill in
            if entry_id is None:
                entry_id = new_id(now_ns // 1_000_000)
            if attach_trace and (span := _current_span.get()) is not None:
                _attach_span(fields, span, entry_id)
            keys = tuple(fields)
            build = _builders.get(keys) or entry_builder(keys)
            entry = build(fields, entry_id, "llm", start_ns, now_ns, price_of, self._lookup)
        return self._emit(entry, now_ns)

    def _emit(self, entry: dict[str, Any], now_ns: int) -> dict[str, Any]:
        """Redact, encode and append a complete entry; return it as written."""
        redactor = self._redactor
        if redactor is not None:
            from promptlab.logs.redact import apply_to_strings

            entry = {k: v if k in _HEAD_SET else apply_to_strings(v, redactor)
                     for k, v in entry.items()}
        try:
            line = _dumps(entry, option=_OPT)
        except TypeError:  # not plain JSON: convert what can be, then re-read what was written
            line, exact = encode_entry(entry)
            if b"null" in line:
                check_finite(entry)
            if not exact:
                entry = _decode(line)
        else:
            if b"null" in line:  # orjson writes NaN and Infinity as null: refuse them
                check_finite(entry)
        # Rarely true: most lines hold no secret. The head (v, ULID, timestamp: 81 bytes,
        # fixed by validation) holds none and is skipped.
        if self._redact and _maybe_secret(line, 81):
            from promptlab.logs.redact import redact_value

            redacted = redact_value(entry)
            if redacted is not entry:
                entry = redacted
                line = _dumps(entry, option=_OPT)
        writer = self._writer
        try:
            if writer is None:
                raise LogError(f"no log folder: {self._setup_error}")
            writer.write(line, entry["timestamp"][:10], now_ns)
        except LogError as exc:
            self._failed(exc)
            return entry
        if self._sinks:
            self._send(entry)
        return entry

    def _lookup_price(self, model: Any) -> Price | None:
        """The price row for `model` (memoised per model name), None when unknown."""
        try:
            price = self._prices.lookup(model)  # type: ignore[union-attr]
        except TypeError:  # an unhashable model: validation names it
            return None
        if type(model) is str:
            if len(self._price_of) > 4096:
                self._price_of.clear()
            self._price_of[model] = price
        return price

    def _entry_with_head(self, fields: dict[str, Any], attach_trace: bool, entry_id: str | None,
                         start_ns: int | None, now_ns: int,
                         price_of: dict[str, Price | None] | None) -> dict[str, Any]:
        """The entry for fields that set v, id, timestamp or kind themselves (spans, imports)."""
        if entry_id is not None:
            fields["id"] = entry_id
        if start_ns is not None:
            fields["timestamp"] = format_timestamp(start_ns)
        entry_id = fields.get("id")
        if entry_id is None:
            entry_id = new_id(now_ns // 1_000_000)
        kind = fields.get("kind") or "llm"
        if attach_trace and kind == "llm":
            _attach_span(fields, _current_span.get(), entry_id)
        body = build_entry(fields)
        if "id" in body and not is_ulid(entry_id):
            raise EntryError(f"log field 'id' must be a 26-character ULID, got {entry_id!r}; "
                             "leave it out to get a new one")
        if body.get("v", SCHEMA_VERSION) != SCHEMA_VERSION:
            raise EntryError(f"log field 'v' must be {SCHEMA_VERSION}, got {body['v']!r}")
        entry = {"v": SCHEMA_VERSION, "id": entry_id, "timestamp": None, "kind": kind}
        entry.update(body)
        return complete(entry, None, now_ns, price_of, self._lookup)

    def _failed(self, exc: LogError) -> None:
        if self.strict:
            raise exc
        self.dropped += 1
        self._warn(f"a log entry was not written: {exc}")

    def _warn(self, message: str) -> None:
        if message in self._warned:
            return
        self._warned.add(message)
        # Reported as coming from "promptlab" (a file that does not exist), so the warning
        # prints as one line with no source line of ours under it.
        warnings.warn_explicit(f"promptlab: {message}", LogWarning, "promptlab", 0,
                               module="promptlab")

    def close(self) -> None:
        """Close the open log files (they reopen on the next write), then flush and close
        the sinks that can be (`flush()`, `close()`) and detach them."""
        if self._writer is not None:
            self._writer.close()
        with self._setup_lock:
            sinks, self._sinks = self._sinks, ()
        for sink in sinks:
            for method in ("flush", "close"):
                fn = getattr(sink, method, None)
                if callable(fn) and not isinstance(sink, type):
                    try:
                        fn()
                    except Exception as exc:
                        name = getattr(sink, "__qualname__", None) or type(sink).__name__
                        self._warn(f"log sink {name} failed to {method}: "
                                   f"{type(exc).__name__}: {exc}")

    # -- helpers -----------------------------------------------------------------------------

    def call(self, rendered: Rendered | str | None = None, model: str | None = None,
             **fields: Any) -> Call:
        """Time one LLM call and log it: `with logger.call(rendered) as call: …`.

        Copies the stamp, messages, model and config from `rendered` (a `Rendered`, or a
        plain string logged as the user message). Finish with `call.finish(response=…,
        input_tokens=…, output_tokens=…)`; if the block raises, an entry with
        status "error" is logged and the exception propagates.
        """
        return Call(self, rendered, model, fields)

    def log_llm_call(self, model: str | None, system: str | None, user: str | None,
                     response: str | None, tokens_in: int | None = None,
                     tokens_out: int | None = None, **fields: Any) -> dict[str, Any]:
        """The seed's positional form of `log`."""
        return self.log(model=model, system_prompt=system, user_message=user,
                        assistant_response=response, input_tokens=tokens_in,
                        output_tokens=tokens_out, **fields)

    def feedback(self, entry_id: str, *, comment: str | None = None,
                 metadata: Mapping[str, Any] | None = None, tags: list[str] | None = None,
                 **scores: float | bool) -> dict[str, Any]:
        """Append a `feedback` entry scoring an earlier entry: `feedback(id, helpful=True)`."""
        if not (is_ulid(entry_id) or (isinstance(entry_id, str)
                                      and _DERIVED_ID.fullmatch(entry_id))):
            raise EntryError(f"feedback target {entry_id!r} is not a log entry id "
                             "(a 26-character ULID from entry['id'], or the <file>:<line> id "
                             "readers give entries written without one)")
        if not scores:
            raise EntryError("feedback needs at least one score, e.g. feedback(id, helpful=True)"
                             " or feedback(id, rating=4)")
        if comment is not None:
            metadata = {**(metadata or {}), "comment": comment}
        return self._write({"kind": "feedback", "target": entry_id, "scores": scores,
                            "metadata": metadata, "tags": tags}, attach_trace=False)

    def trace(self, name: str, **fields: Any) -> Span:
        """A new trace (root span) written to this logger: `with logger.trace("answer"):`."""
        return Span(name, logger=self, new_trace=True, fields=fields)

    def span(self, name: str, *, parent: Span | None = None, **fields: Any) -> Span:
        """A span inside the current one (or `parent`); a new trace when there is none."""
        return Span(name, logger=self, parent=parent, fields=fields)


def _attach_span(fields: dict[str, Any], span: Span | None, entry_id: str) -> None:
    """Make the entry a child of `span` (unless its trace is set or there is no span)."""
    if span is not None and fields.get("trace_id") is None:
        fields["trace_id"] = span.trace_id
        fields["parent_id"] = span.id
        fields["span_id"] = entry_id


def _load_dumps(entry: Any, option: int) -> bytes:
    import orjson  # on first use: `promptlab --help` does not pay for it

    global _dumps
    assert orjson.OPT_APPEND_NEWLINE == _OPT
    _dumps = orjson.dumps  # bind the real function after the first call
    return _dumps(entry, option=option)


_dumps: Callable[..., bytes] = _load_dumps
_OPT = 1 << 10  # orjson.OPT_APPEND_NEWLINE


def _maybe_secret(line: bytes, start: int) -> bool:
    from promptlab.logs.redact import maybe_secret

    global _maybe_secret
    _maybe_secret = maybe_secret  # bind the real function after the first call
    return maybe_secret(line, start)


def _decode(line: bytes) -> dict[str, Any]:
    import orjson

    return orjson.loads(line)


# -- Call ----------------------------------------------------------------------------------------


class Call:
    """One timed LLM call; logged by `finish()` or, failing that, when the block exits."""

    def __init__(self, logger: Logger, rendered: Rendered | str | None, model: str | None,
                 fields: dict[str, Any]):
        self.logger = logger
        self.entry: dict[str, Any] | None = None
        self.fields: dict[str, Any] = _fields_from(rendered, model, fields)
        self._own_trace = self.fields.get("trace_id") is None
        self._id: str | None = None
        self._start()

    def _start(self) -> None:
        """(Re)start the clock; the call belongs to the span open at this moment."""
        self.start_ns = time.time_ns()
        self._t0 = time.perf_counter_ns()
        self._span = _current_span.get() if self._own_trace else None

    @property
    def id(self) -> str:
        """The entry's id (known before the call is logged, e.g. to pass along)."""
        if self._id is None:
            self._id = new_id(self.start_ns // 1_000_000)
        return self._id

    @property
    def elapsed_ms(self) -> float:
        return (time.perf_counter_ns() - self._t0) / 1e6

    def update(self, **fields: Any) -> Call:
        """Add or change fields before the entry is written (metadata, tags, …)."""
        self.fields.update(fields)
        return self

    def finish(self, response: Any = None, *, input_tokens: int | None = None,
               output_tokens: int | None = None, cached_tokens: int | None = None,
               reasoning_tokens: int | None = None, scores: Mapping[str, Any] | None = None,
               **more: Any) -> dict[str, Any]:
        """Log the call as finished and return the entry.

        `response` is the reply text, or a provider response (OpenAI chat/responses,
        Anthropic messages; objects or dicts) from which text, token counts and the model
        are taken. Explicit arguments win over what the response says.
        """
        if self.entry is not None:
            raise EntryError(f"call {self.id} was already logged; call finish() once")
        fields = dict(self.fields)
        if response is not None:
            if isinstance(response, str):
                fields["assistant_response"] = response
            else:
                for key, value in extract_response(response).items():
                    if key == "model":
                        fields.setdefault("model", value)
                    elif value is not None:
                        fields[key] = value
        if input_tokens is not None:
            fields["input_tokens"] = input_tokens
        if output_tokens is not None:
            fields["output_tokens"] = output_tokens
        if cached_tokens is not None:
            fields["cached_tokens"] = cached_tokens
        if reasoning_tokens is not None:
            fields["reasoning_tokens"] = reasoning_tokens
        if scores is not None:
            fields["scores"] = scores
        if more:
            fields.update(more)
        fields.setdefault("status", "ok")
        return self._log(fields)

    def fail(self, error: BaseException | str, **more: Any) -> dict[str, Any]:
        """Log the call as failed (status "error") without raising."""
        if self.entry is not None:
            raise EntryError(f"call {self.id} was already logged")
        fields = {**self.fields, **more, "status": "error"}
        fields["error"] = (error if isinstance(error, str)
                           else f"{type(error).__name__}: {error}")
        return self._log(fields)

    def _log(self, fields: dict[str, Any]) -> dict[str, Any]:
        entry_id = self.id
        _attach_span(fields, self._span, entry_id)
        if "latency_ms" not in fields:  # in ms, to the nearest microsecond
            fields["latency_ms"] = (time.perf_counter_ns() - self._t0 + 500) // 1000 / 1000
        self.entry = self.logger._write(fields, attach_trace=False, entry_id=entry_id,
                                        start_ns=self.start_ns)
        return self.entry

    def __enter__(self) -> Call:
        self._start()
        return self

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> bool:
        if self.entry is None:
            if exc is not None:
                self.fail(exc)
            else:
                self.finish()
        return False

    async def __aenter__(self) -> Call:
        return self.__enter__()

    async def __aexit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> bool:
        return self.__exit__(exc_type, exc, tb)


def _fields_from(rendered: Rendered | str | None, model: str | None,
                 fields: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if isinstance(rendered, str):
        out["user_message"] = rendered
    elif rendered is not None:
        # One system and/or one user message (the common prompt): the two texts say it all.
        system = user = None
        for m in rendered.messages:
            role = m.get("role")
            if role == "system" and system is None:
                system = m["content"]
            elif role == "user" and user is None:
                user = m["content"]
            else:  # other roles or several turns: keep the messages too
                system, user = rendered.system, rendered.user
                out["messages"] = list(rendered.messages)
                break
        if system is not None:
            out["system_prompt"] = system
        if user is not None:
            out["user_message"] = user
        if rendered.config:
            out["config"] = dict(rendered.config)
        if rendered.model:
            out["model"] = rendered.model
        extra: dict[str, Any] = {}
        for key, value in (rendered.stamp or {}).items():
            if value is None:  # an absent stamp field (no label, no commit)
                continue
            if key in SCHEMA:
                out[key] = value
            else:
                extra[key] = value
        if extra:
            out["metadata"] = extra
    if model is not None:
        out["model"] = model
    if "metadata" in out and "metadata" in fields and fields["metadata"] is not None:
        fields = {**fields, "metadata": {**out["metadata"], **fields["metadata"]}}
    out.update(fields)
    return out


def _get(obj: Any, key: str) -> Any:
    if obj is None:
        return None
    if isinstance(obj, Mapping):
        return obj.get(key)
    return getattr(obj, key, None)


def extract_response(response: Any) -> dict[str, Any]:
    """Text, token counts and model from an OpenAI or Anthropic response (object or dict)."""
    out: dict[str, Any] = {"model": _get(response, "model")}
    usage = _get(response, "usage")
    choices = _get(response, "choices")
    content = _get(response, "content")
    if choices:  # OpenAI chat completions
        first = choices[0]
        message = _get(first, "message")
        text = _get(message, "content") if message is not None else _get(first, "text")
        out["assistant_response"] = text if isinstance(text, str) else None
        out["input_tokens"] = _get(usage, "prompt_tokens")
        out["output_tokens"] = _get(usage, "completion_tokens")
        out["cached_tokens"] = _get(_get(usage, "prompt_tokens_details"), "cached_tokens")
        out["reasoning_tokens"] = _get(_get(usage, "completion_tokens_details"),
                                       "reasoning_tokens")
    elif isinstance(content, list):  # Anthropic messages
        parts = [_get(block, "text") for block in content if _get(block, "type") == "text"]
        out["assistant_response"] = "".join(p for p in parts if isinstance(p, str))
        base = _get(usage, "input_tokens")
        read = _get(usage, "cache_read_input_tokens") or 0
        written = _get(usage, "cache_creation_input_tokens") or 0
        # Anthropic counts cache reads and writes outside input_tokens; promptlab's
        # input_tokens counts all input, with cached_tokens the part read from cache.
        out["input_tokens"] = None if base is None else base + read + written
        out["cached_tokens"] = read or None
        out["output_tokens"] = _get(usage, "output_tokens")
    elif _get(response, "output") is not None or _get(response, "output_text") is not None:
        text = _get(response, "output_text")  # OpenAI responses API
        if text is None:
            texts = []
            for item in _get(response, "output") or []:
                for part in _get(item, "content") or []:
                    if _get(part, "type") == "output_text":
                        texts.append(_get(part, "text") or "")
            text = "".join(texts)
        out["assistant_response"] = text
        out["input_tokens"] = _get(usage, "input_tokens")
        out["output_tokens"] = _get(usage, "output_tokens")
        out["cached_tokens"] = _get(_get(usage, "input_tokens_details"), "cached_tokens")
        out["reasoning_tokens"] = _get(_get(usage, "output_tokens_details"), "reasoning_tokens")
    else:
        raise EntryError(f"cannot read a reply from a {type(response).__name__}; pass "
                         "response=<text> with input_tokens=… and output_tokens=…")
    if not isinstance(out["model"], str):
        out["model"] = None
    return {k: v for k, v in out.items() if v is not None}


# -- the default logger ----------------------------------------------------------------------

_default: tuple[tuple[str | None, str | None], Logger] | None = None
_default_lock = threading.Lock()


def get_logger() -> Logger:
    """The process's default logger (recreated when PROMPTLAB_LOG_DIR/PRICES change)."""
    global _default
    key = (os.environ.get("PROMPTLAB_LOG_DIR"), os.environ.get("PROMPTLAB_PRICES"))
    current = _default
    if current is not None and current[0] == key:
        return current[1]
    with _default_lock:
        if _default is None or _default[0] != key:
            _default = (key, Logger())
        return _default[1]


def log(**fields: Any) -> dict[str, Any]:
    """Write one entry with the default logger (see `Logger.log`)."""
    return get_logger().log(**fields)


def log_llm_call(model: str | None, system: str | None, user: str | None, response: str | None,
                 tokens_in: int | None = None, tokens_out: int | None = None,
                 **fields: Any) -> dict[str, Any]:
    """The seed's call: `log_llm_call(model, system, user, response, tokens_in, tokens_out)`."""
    return get_logger().log_llm_call(model, system, user, response, tokens_in, tokens_out,
                                     **fields)


def feedback(entry_id: str, **scores: Any) -> dict[str, Any]:
    """Score an earlier entry with the default logger: `feedback(entry_id, helpful=True)`."""
    return get_logger().feedback(entry_id, **scores)


def trace(name: str, *, logger: Logger | None = None, **fields: Any) -> Span:
    """Start a new trace (a root span), even inside another one; the default logger unless
    `logger` is given."""
    return Span(name, logger=logger, new_trace=True, fields=fields, default_logger=get_logger)


def span(name: str, *, logger: Logger | None = None, parent: Span | None = None,
         **fields: Any) -> Span:
    """A span nested in the current one (or in `parent`); a new trace when there is none."""
    return Span(name, logger=logger, parent=parent, fields=fields, default_logger=get_logger)


F = TypeVar("F", bound=Callable[..., Any])


def traced(fn: F | None = None, *, name: str | None = None, logger: Logger | None = None,
           **fields: Any) -> Any:
    """Decorator: run each call of the function (sync or async) inside a span.

        @traced                      # span named after the function
        def retrieve(q): ...

        @traced(name="rerank", tags=["search"])
        async def rerank(docs): ...
    """

    def decorate(func: F) -> F:
        span_name = name or getattr(func, "__qualname__", None) or getattr(func, "__name__", "span")
        if inspect.iscoroutinefunction(func):

            @functools.wraps(func)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                async with span(span_name, logger=logger, **fields):
                    return await func(*args, **kwargs)

            return async_wrapper  # type: ignore[return-value]

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with span(span_name, logger=logger, **fields):
                return func(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    if fn is not None and callable(fn):
        return decorate(fn)
    return decorate
