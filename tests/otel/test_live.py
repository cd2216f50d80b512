"""Live export: a Logger with an OTLP endpoint also sends each entry, off the caller's thread."""

from __future__ import annotations

import threading
import warnings
from pathlib import Path
from typing import Any

import pytest

from promptlab.logs.logger import Logger
from promptlab.otel.export import resolve_target
from promptlab.otel.live import LiveExporter, live_target

from .test_export import ns, ulid_hex


def test_logger_with_env_endpoint_exports_each_entry(log_dir: Path, receiver: Any,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.url)
    monkeypatch.setenv("OTEL_SERVICE_NAME", "live-app")
    logger = Logger(log_dir)
    with logger.trace("handle-request") as root, logger.call(None, model="gpt-4o-mini", provider="openai",
                     config={"temperature": 0.0}, prompt_id="greet",
                     prompt_version="v1") as call:
        call.finish(response="hi", input_tokens=12, output_tokens=3)
    fb = logger.feedback(call.entry["id"], helpful=True)
    sinks = logger.sinks
    assert len(sinks) == 1 and isinstance(sinks[0], LiveExporter)
    assert sinks[0].flush(10)
    receiver.wait_for(3)

    trace_hex = ulid_hex(root.entry["id"])
    span = receiver.by_name("chat gpt-4o-mini")
    assert span.trace_id == trace_hex
    assert span.span_id == ulid_hex(call.entry["id"])[16:]
    assert span.parent_id == trace_hex[16:]
    assert span.start_ns == ns(call.entry["timestamp"])
    assert span.end_ns - span.start_ns == int(call.entry["latency_ms"] * 1_000_000)
    assert span.attributes["gen_ai.usage.input_tokens"] == 12
    assert span.attributes["gen_ai.request.temperature"] == 0.0
    assert span.attributes["promptlab.prompt.id"] == "greet"
    assert span.resource["service.name"] == "live-app"
    root_span = receiver.by_name("handle-request")
    assert root_span.span_id == trace_hex[16:] and root_span.parent_id is None
    feedback = receiver.by_name("feedback")
    # the live exporter remembers recent entries, so feedback finds its target in the trace
    assert feedback.trace_id == trace_hex and feedback.parent_id == span.span_id
    assert feedback.attributes["promptlab.target"] == fb["target"]
    logger.close()


def test_project_setting_and_live_off(log_dir: Path, receiver: Any, tmp_path: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "promptlab.toml").write_text(f'[otel]\nendpoint = "{receiver.url}"\n')
    monkeypatch.chdir(tmp_path)
    logger = Logger(log_dir)
    logger.log(model="m", user_message="x", latency_ms=1.0)
    assert len(logger.sinks) == 1
    logger.close()  # flushes the sink
    receiver.wait_for(1)

    monkeypatch.setenv("PROMPTLAB_OTEL_LIVE", "0")
    quiet = Logger(log_dir)
    quiet.log(model="m", user_message="y", latency_ms=1.0)
    assert quiet.sinks == ()
    (tmp_path / "promptlab.toml").write_text(f'[otel]\nendpoint = "{receiver.url}"\nlive = false\n')
    monkeypatch.delenv("PROMPTLAB_OTEL_LIVE")
    assert live_target(None) is None
    other = Logger(log_dir)
    other.log(model="m", user_message="z", latency_ms=1.0)
    assert other.sinks == ()


def test_no_endpoint_no_sink_and_no_sdk_import(log_dir: Path) -> None:
    logger = Logger(log_dir)
    logger.log(model="m", user_message="x")
    assert logger.sinks == ()


def test_unreachable_or_bad_endpoint_never_breaks_logging(log_dir: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "not a url")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        logger = Logger(log_dir)
        entry = logger.log(model="m", user_message="x")
    assert entry["id"] and logger.sinks == ()
    assert any("not exported over OTLP" in str(w.message) and "expected an http(s) URL"
               in str(w.message) for w in caught)
    # a closed port: the call returns at once; the SDK gives up in the background
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "1")
    logger = Logger(log_dir)
    entry = logger.log(model="m", user_message="y")
    assert (log_dir / f"{entry['timestamp'][:10]}.jsonl").read_text().count("\n") == 2


class GatedExporter:
    """A span exporter whose export waits for `gate` (at most 30 s); `stopped` is set when
    it is shut down."""

    def __init__(self, gate: threading.Event, stopped: threading.Event | None = None):
        self.gate, self.stopped = gate, stopped or threading.Event()

    def export(self, spans: Any) -> Any:
        from opentelemetry.sdk.trace.export import SpanExportResult

        self.gate.wait(30)
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        self.stopped.set()

    def force_flush(self, timeout_millis: int = 0) -> bool:
        return True


def test_sink_only_enqueues_and_drops_when_full(receiver: Any) -> None:
    target = resolve_target(receiver.url)
    gate = threading.Event()

    live = LiveExporter(target, exporter=GatedExporter(gate), max_queue=3)
    entry = {"v": 1, "id": "01KB0000000000000000000000", "timestamp": "2026-12-02T10:00:00.000000Z",
             "kind": "llm", "model": "m"}
    live._thread = threading.current_thread()  # keep the drain thread from starting: queue only
    for _ in range(5):
        live(entry)
    assert len(live._queue) == 3 and live.dropped == 2
    gate.set()
    live._thread = None
    live._stop = True
    live.processor.shutdown()


def test_a_hanging_backend_delays_shutdown_only_by_the_flush_timeout(receiver: Any) -> None:
    """The SDK's force_flush waits for an export in progress whatever its timeout (a backend
    that hangs: the exporter's own 10 s); flush and shutdown give up at their timeout, and
    the stuck export is left to its daemon thread."""
    target = resolve_target(receiver.url)
    gate = threading.Event()
    stopped = threading.Event()

    live = LiveExporter(target, exporter=GatedExporter(gate, stopped), schedule_delay_ms=10)
    live({"v": 1, "id": "01KB0000000000000000000000", "timestamp": "2026-12-02T10:00:00.000000Z",
          "kind": "llm", "model": "m"})
    assert live.flush(0.3) is False
    assert not gate.is_set()  # returned while the export still hangs
    live.shutdown(0.3)
    assert stopped.is_set() and not gate.is_set()
    gate.set()


def test_entries_written_by_threads_all_arrive(log_dir: Path, receiver: Any,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", receiver.url + "/v1/traces")
    logger = Logger(log_dir)

    def work(n: int) -> None:
        for i in range(50):
            logger.log(model="m", user_message=f"{n}-{i}", latency_ms=1.0)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert logger.sinks[0].flush(10)
    receiver.wait_for(200)
    assert len({s.span_id for s in receiver.spans}) == 200
    logger.close()


def test_spans_taken_in_are_not_sent_back_out(log_dir: Path, receiver: Any,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    from promptlab.otel import SpanExporter

    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.url)
    exporter = SpanExporter(log_dir=str(log_dir))
    assert exporter.logger.sinks == ()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    with provider.get_tracer("t").start_as_current_span("step"):
        pass
    provider.shutdown()
    assert receiver.spans == [] and receiver.attempts == 0


def test_a_short_script_that_logs_and_exits_still_exports(log_dir: Path, receiver: Any) -> None:
    """What is queued at exit is sent: the exporter flushes from an atexit handler."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env.update(OTEL_EXPORTER_OTLP_ENDPOINT=receiver.url, PROMPTLAB_LOG_DIR=str(log_dir))
    code = ("import promptlab\n"
            "for i in range(3):\n"
            "    promptlab.log(model='gpt-4o-mini', user_message=f'q{i}', latency_ms=5.0)\n")
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0 and done.stderr == "", done.stderr
    receiver.wait_for(3)
    assert sorted(s.name for s in receiver.spans) == ["chat gpt-4o-mini"] * 3


def test_live_content_is_opt_in_and_redacted(log_dir: Path, receiver: Any, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "promptlab.toml").write_text(
        f'[otel]\nendpoint = "{receiver.url}"\ncontent = true\nservice_name = "bot"\n')
    monkeypatch.chdir(tmp_path)
    logger = Logger(log_dir, redact=False)  # even an unredacted log is redacted on the wire
    logger.log(model="m", user_message="my key sk-abcdefghijklmnopqrstuvwx0123",
               assistant_response="ok", latency_ms=1.0)
    logger.close()
    receiver.wait_for(1)
    (span,) = receiver.spans
    assert span.resource["service.name"] == "bot"
    assert "sk-[REDACTED]" in span.attributes["gen_ai.input.messages"]
    assert "abcdefghij" not in span.attributes["gen_ai.input.messages"]
