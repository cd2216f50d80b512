"""Traces and spans: nested, timed steps of one request, logged as `kind: "span"` entries.

    from promptlab import trace, span, traced

    with trace("answer-user-question"):
        with span("retrieve-context"):
            docs = search(question)
        with logger.call(rendered) as call:      # a child of the trace
            ...

    @traced(name="rerank")
    async def rerank(docs): ...

A span's entry is written when it ends: `trace_id` (the root span's id), `span_id` (= its
entry `id`), `parent_id`, `name`, `timestamp` (start), `latency_ms` (duration), `status`.
LLM calls logged inside a span carry the span as `parent_id`. The current span lives in a
context variable, so asyncio tasks inherit it; a new thread starts with no span unless the
function is wrapped with `propagate(fn)` (or the span is passed as `parent=`).

This module sits below the logger: a `Span` writes through the logger it is given (or its
parent's, or the one `default_logger()` returns); the logger imports this module for the
current span, never the other way round. `trace`, `span` and `traced` for the default
logger are in promptlab.logs.logger.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import time
from collections.abc import Callable
from typing import Any

from promptlab.logs.entry import EntryError, format_timestamp, new_id

__all__ = ["Span", "current_span", "current_span_var", "propagate"]

# The innermost open span in this context.
current_span_var: contextvars.ContextVar[Span | None] = contextvars.ContextVar(
    "promptlab_span", default=None
)
_current = current_span_var


class Span:
    """One timed step. Use as a (sync or async) context manager; `set()` adds fields."""

    def __init__(self, name: str, *, logger: Any = None, parent: Span | None = None,
                 new_trace: bool = False, fields: dict[str, Any] | None = None,
                 default_logger: Callable[[], Any] | None = None):
        if not isinstance(name, str) or not name:
            raise EntryError(f"a span needs a non-empty name, got {name!r}")
        self.name = name
        self._logger = logger
        self._default_logger = default_logger
        self._parent_arg = parent
        self._new_trace = new_trace
        self.fields: dict[str, Any] = dict(fields or {})
        self.id = ""
        self.trace_id = ""
        self.parent_id: str | None = None
        self.entry: dict[str, Any] | None = None
        self._token: contextvars.Token[Span | None] | None = None

    def __repr__(self) -> str:
        return f"<Span {self.name} id={self.id or '-'} trace={self.trace_id or '-'}>"

    @property
    def logger(self) -> Any:
        if self._logger is None:
            if self._default_logger is None:
                raise EntryError(f"span {self.name!r} has no logger: create it with "
                                 "logger.span(...) or promptlab.span(...)")
            self._logger = self._default_logger()
        return self._logger

    def set(self, **fields: Any) -> Span:
        """Add fields to the span's entry (metadata, tags, model, scores, …)."""
        self.fields.update(fields)
        return self

    def start(self) -> Span:
        parent = None if self._new_trace else (self._parent_arg or _current.get())
        self.start_ns = time.time_ns()
        self._t0 = time.perf_counter()
        self.id = new_id(self.start_ns // 1_000_000)
        self.trace_id = parent.trace_id if parent is not None else self.id
        self.parent_id = parent.id if parent is not None else None
        if self._logger is None and parent is not None:
            self._logger = parent._logger
            self._default_logger = self._default_logger or parent._default_logger
        self._token = _current.set(self)
        return self

    def end(self, error: BaseException | None = None) -> dict[str, Any]:
        """Close the span and write its entry (status "error" when `error` is given)."""
        latency = (time.perf_counter() - self._t0) * 1000.0
        token, self._token = self._token, None
        if token is not None:
            with contextlib.suppress(ValueError):  # ended in another context (task)
                _current.reset(token)
        fields = dict(self.fields)
        fields.update(
            kind="span", id=self.id, timestamp=format_timestamp(self.start_ns), name=self.name,
            trace_id=self.trace_id, span_id=self.id, parent_id=self.parent_id,
            latency_ms=round(latency, 3),
        )
        if error is not None:
            fields["status"] = "error"
            fields["error"] = f"{type(error).__name__}: {error}"
        else:
            fields.setdefault("status", "ok")
        self.entry = self.logger._write(fields, attach_trace=False)
        return self.entry

    def __enter__(self) -> Span:
        return self.start()

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> bool:
        self.end(exc)
        return False

    async def __aenter__(self) -> Span:
        return self.start()

    async def __aexit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> bool:
        self.end(exc)
        return False


def current_span() -> Span | None:
    """The innermost open span in this context, or None."""
    return _current.get()


def propagate(fn: Callable[..., Any]) -> Callable[..., Any]:
    """`fn` bound to the current context, so spans nest across threads:

        pool.submit(propagate(work), item)     # work's spans are children of this span
    """
    context = contextvars.copy_context()

    @functools.wraps(fn)
    def run(*args: Any, **kwargs: Any) -> Any:
        return context.copy().run(fn, *args, **kwargs)

    return run
