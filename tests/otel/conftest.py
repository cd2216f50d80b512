"""A loopback OTLP/HTTP receiver: a real `http.server` on 127.0.0.1 that decodes each
`ExportTraceServiceRequest` with opentelemetry-proto, as a collector would."""

from __future__ import annotations

import gzip
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)


def any_value(value: Any) -> Any:
    which = value.WhichOneof("value")
    if which == "array_value":
        return [any_value(v) for v in value.array_value.values]
    if which == "kvlist_value":
        return {kv.key: any_value(kv.value) for kv in value.kvlist_value.values}
    return getattr(value, which) if which else None


@dataclass
class Received:
    """One decoded span with its resource."""

    name: str
    trace_id: str  # hex
    span_id: str
    parent_id: str | None
    start_ns: int
    end_ns: int
    kind: int
    attributes: dict[str, Any]
    events: list[tuple[str, dict[str, Any]]]
    status_code: int
    status_message: str
    resource: dict[str, Any]
    scope: str


@dataclass
class Receiver:
    url: str
    requests: list[ExportTraceServiceRequest] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    spans: list[Received] = field(default_factory=list)
    # status codes to answer with before accepting (e.g. [503] = fail once, then accept)
    fail_with: list[int] = field(default_factory=list)
    retry_after: str | None = "0"
    always_fail: int | None = None
    attempts: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def by_name(self, name: str) -> Received:
        found = [s for s in self.spans if s.name == name]
        assert len(found) == 1, f"{len(found)} spans named {name!r}: {[s.name for s in self.spans]}"
        return found[0]

    def wait_for(self, count: int, timeout: float = 10.0) -> None:
        import time

        deadline = time.monotonic() + timeout
        while len(self.spans) < count and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(self.spans) >= count, f"received {len(self.spans)} of {count} spans"


def _make_handler(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            with receiver.lock:
                receiver.attempts += 1
                code = receiver.always_fail or (receiver.fail_with.pop(0)
                                                if receiver.fail_with else 200)
            if code != 200:
                self.send_response(code)
                if receiver.retry_after is not None:
                    self.send_header("Retry-After", receiver.retry_after)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            assert self.path == "/v1/traces", self.path
            assert self.headers["Content-Type"] == "application/x-protobuf"
            if self.headers.get("Content-Encoding") == "gzip":
                body = gzip.decompress(body)
            request = ExportTraceServiceRequest()
            request.ParseFromString(body)
            decoded = []
            for rs in request.resource_spans:
                resource = {kv.key: any_value(kv.value) for kv in rs.resource.attributes}
                for ss in rs.scope_spans:
                    for s in ss.spans:
                        decoded.append(Received(
                            name=s.name, trace_id=s.trace_id.hex(), span_id=s.span_id.hex(),
                            parent_id=s.parent_span_id.hex() or None,
                            start_ns=s.start_time_unix_nano, end_ns=s.end_time_unix_nano,
                            kind=s.kind,
                            attributes={kv.key: any_value(kv.value) for kv in s.attributes},
                            events=[(e.name, {kv.key: any_value(kv.value) for kv in e.attributes})
                                    for e in s.events],
                            status_code=s.status.code, status_message=s.status.message,
                            resource=resource, scope=ss.scope.name))
            with receiver.lock:
                receiver.requests.append(request)
                receiver.headers.append({k.lower(): v for k, v in self.headers.items()})
                receiver.spans.extend(decoded)
            out = ExportTraceServiceResponse().SerializeToString()
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)

    return Handler


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), None)  # type: ignore[arg-type]
    rec = Receiver(url=f"http://127.0.0.1:{server.server_address[1]}")
    server.RequestHandlerClass = _make_handler(rec)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield rec
    server.shutdown()
    server.server_close()


@pytest.fixture(autouse=True)
def _no_otel_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No OpenTelemetry settings leak in from the machine running the tests."""
    import os

    for name in list(os.environ):
        if name.startswith("OTEL_") or name == "PROMPTLAB_OTEL_LIVE":
            monkeypatch.delenv(name)
