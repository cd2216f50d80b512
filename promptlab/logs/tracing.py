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
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import inspect
import time
from collections.abc import Callable
from typing import Any, TypeVar

from promptlab.logs.entry import format_timestamp, new_id
from promptlab.logs.logger import _current_span as _current

__all__ = ["Span", "current_span", "propagate", "span", "trace", "traced"]

F = TypeVar("F", bound=Callable[..., Any])

class Span:
    """One timed step. Use as a (sync or async) context manager; `set()` adds fields."""

    def __init__(self, name: str, *, logger: Any = None, parent: Span | None = None,
                 new_trace: bool = False, fields: dict[str, Any] | None = None):
        if not isinstance(name, str) or not name:
            from promptlab.logs.entry import EntryError

            raise EntryError(f"a span needs a non-empty name, got {name!r}")
        self.name = name
        self._logger = logger
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
            from promptlab.logs.logger import get_logger

            self._logger = get_logger()
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


def trace(name: str, *, logger: Any = None, **fields: Any) -> Span:
    """Start a new trace (a root span), even inside another one."""
    return Span(name, logger=logger, new_trace=True, fields=fields)


def span(name: str, *, logger: Any = None, parent: Span | None = None, **fields: Any) -> Span:
    """A span nested in the current one (or in `parent`); a new trace when there is none."""
    return Span(name, logger=logger, parent=parent, fields=fields)


def traced(fn: F | None = None, *, name: str | None = None, logger: Any = None,
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
                async with Span(span_name, logger=logger, fields=fields):
                    return await func(*args, **kwargs)

            return async_wrapper  # type: ignore[return-value]

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with Span(span_name, logger=logger, fields=fields):
                return func(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    if fn is not None and callable(fn):
        return decorate(fn)
    return decorate


def propagate(fn: Callable[..., Any]) -> Callable[..., Any]:
    """`fn` bound to the current context, so spans nest across threads:

        pool.submit(propagate(work), item)     # work's spans are children of this span
    """
    context = contextvars.copy_context()

    @functools.wraps(fn)
    def run(*args: Any, **kwargs: Any) -> Any:
        return context.copy().run(fn, *args, **kwargs)

    return run
