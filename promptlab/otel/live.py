"""Live export: each entry a `Logger` writes also goes out over OTLP, off the caller's thread.

A `Logger` whose project has an `[otel]` endpoint (or whose environment has
OTEL_EXPORTER_OTLP_ENDPOINT / OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) loads `sink_for` by name
(promptlab.logs never imports this package) and calls the sink after each write. The sink
only appends the entry to a queue: turning it into a span happens on a background thread,
which hands spans to the SDK's `BatchSpanProcessor`, whose own thread batches them and
sends them with `OTLPSpanExporter`. The caller's LLM call is never blocked or failed: a
full queue drops the entry (counted in `dropped`), an unreachable endpoint is the SDK's
problem, retried and then dropped there.
"""

from __future__ import annotations

import atexit
import collections
import contextlib
import os
import threading
import time
import weakref
from collections.abc import Mapping
from typing import Any

from promptlab.otel.export import OtlpTarget, resolve_target

__all__ = ["LiveExporter", "live_target", "sink_for"]

MAX_QUEUE = 100_000
_OFF = ("0", "false", "off", "no")


def live_target(settings: Any = None, env: Mapping[str, str] | None = None) -> OtlpTarget | None:
    """The endpoint live export sends to, or None when none is configured or it is off
    (`[otel] live = false`, or PROMPTLAB_OTEL_LIVE=0)."""
    env = os.environ if env is None else env
    otel = dict(getattr(settings, "otel", None) or {})
    if env.get("PROMPTLAB_OTEL_LIVE", "").strip().lower() in _OFF or otel.get("live") is False:
        return None
    return resolve_target(otel=otel, env=env, required=False)


class LiveExporter:
    """The sink: `exporter(entry)` enqueues; `flush()` waits until everything queued is sent;
    `shutdown()` flushes and stops (also run at interpreter exit)."""

    def __init__(self, target: OtlpTarget, *, exporter: Any = None, max_queue: int = MAX_QUEUE,
                 schedule_delay_ms: int = 500, parents: int = 10_000):
        # The SDK is imported here, in the thread of the first logger.log (once per process,
        # about 0.2 s): importing it later on the drain thread races with the interpreter's
        # shutdown in short scripts, whose entries would then be lost.
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        from promptlab.otel.spans import SpanMaker, make_resource

        self.target = target
        self.dropped = 0
        self.max_queue = max_queue
        self._queue: collections.deque[Mapping[str, Any]] = collections.deque()
        self._wake = threading.Event()
        self._idle = threading.Event()
        self._idle.set()
        self._stop = False
        # entry id -> (trace id, span id) of recent entries, so feedback finds its target
        self._recent: collections.OrderedDict[str, tuple[int, int]] = collections.OrderedDict()
        self._parents = parents
        self._maker = SpanMaker(make_resource(None, target.service_name), content=target.content,
                                parent_of=self._recent.get)
        self._exporter = exporter or target.exporter()
        self.processor = BatchSpanProcessor(self._exporter,
                                            max_queue_size=max(max_queue, 512),
                                            max_export_batch_size=512,
                                            schedule_delay_millis=schedule_delay_ms)
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        _live.add(self)

    def __call__(self, entry: Mapping[str, Any]) -> None:
        queue = self._queue
        if len(queue) >= self.max_queue:
            self.dropped += 1
            return
        queue.append(entry)
        if self._thread is None:
            self._start()
        elif len(queue) == 1:
            self._wake.set()

    def _start(self) -> None:
        with self._lock:
            if self._thread is None and not self._stop:
                self._thread = threading.Thread(target=self._drain, name="promptlab-otel",
                                                daemon=True)
                self._thread.start()

    def _drain(self) -> None:
        from promptlab.otel.spans import entry_span_ids

        queue = self._queue
        while True:
            self._wake.wait(0.2)
            self._wake.clear()
            while queue:
                self._idle.clear()
                entry = queue.popleft()
                try:
                    span = self._maker.make(entry)
                except Exception:  # a malformed entry is dropped, never the thread
                    self.dropped += 1
                    continue
                if entry.get("kind") != "feedback":
                    recent = self._recent
                    recent[entry["id"]] = entry_span_ids(entry)[:2]
                    if len(recent) > self._parents:
                        recent.popitem(last=False)
                self.processor.on_end(span)
                time.sleep(0)  # hand the GIL back between spans: callers never wait long
            self._idle.set()
            if self._stop:
                return

    def flush(self, timeout: float = 30.0) -> bool:
        """Send everything queued so far; True when it was sent in time."""
        deadline = time.monotonic() + timeout
        if self._thread is not None:
            while self._queue or not self._idle.is_set():
                self._wake.set()
                if time.monotonic() > deadline:
                    return False
                time.sleep(0.002)
        left = max(deadline - time.monotonic(), 0.0)
        # The SDK's force_flush waits for an export in progress whatever its timeout says
        # (a hanging backend: the exporter's own 10 s), so it waits on a thread of its own.
        outcome: list[bool] = []
        waiter = threading.Thread(
            target=lambda: outcome.append(self.processor.force_flush(int(left * 1000))),
            name="promptlab-otel-flush", daemon=True)
        waiter.start()
        waiter.join(left + 0.05)
        return bool(outcome and outcome[0])

    def close(self) -> None:
        """What `Logger.close()` calls: send what is queued. The exporter itself is shared by
        the loggers of one endpoint and stops at interpreter exit (or `shutdown()`). Waits
        at most 5 s: a backend that is down must not hang the application."""
        self.flush(5.0)

    def shutdown(self, timeout: float = 5.0) -> None:
        """Send what is queued (waiting at most `timeout` s), then stop the threads."""
        if self._stop:
            return
        sent = self.flush(timeout)
        self._stop = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join(5)
        if not sent:
            # The backend did not take the spans in time (down, or hanging): the processor's
            # shutdown would wait for its worker, stuck in a request until the exporter's
            # timeout (10 s more at the end of every short script). Its thread is a daemon:
            # stop the exporter and leave it.
            self._exporter.shutdown()
        else:
            self.processor.shutdown()
        _live.discard(self)

    def _after_fork(self) -> None:
        # The drain thread does not exist in a forked child: start afresh there.
        self._queue.clear()
        self._thread = None
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._idle = threading.Event()
        self._idle.set()


_live: weakref.WeakSet[LiveExporter] = weakref.WeakSet()
_by_target: dict[tuple[Any, ...], LiveExporter] = {}
_by_target_lock = threading.Lock()


@atexit.register
def _shutdown_all() -> None:
    for live in list(_live):
        with contextlib.suppress(Exception):  # never fail at exit
            live.shutdown()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=lambda: [live._after_fork() for live in list(_live)])


def sink_for(logger: Any, settings: Any = None) -> LiveExporter | None:
    """The live sink for a `Logger` being set up (loaded by name from promptlab.logs), or
    None when no endpoint is configured or the logger says `otel_live = False` (the loggers
    that take spans in). Loggers sending to the same endpoint share one."""
    if getattr(logger, "otel_live", True) is False:
        return None
    if settings is None:
        try:
            from promptlab.config import load_settings

            settings = load_settings()
        except Exception:  # a broken project file is the logger's to report
            settings = None
    target = live_target(settings)
    if target is None:
        return None
    key = (target.endpoint, tuple(sorted(target.headers.items())), target.service_name,
           target.content)
    with _by_target_lock:
        live = _by_target.get(key)
        if live is None or live._stop:
            live = _by_target[key] = LiveExporter(target)
        return live
