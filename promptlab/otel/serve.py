"""`promptlab otlp serve`: an OTLP/HTTP traces receiver that writes the log.

Apps in any language point their OpenTelemetry SDK at it (OTEL_EXPORTER_OTLP_ENDPOINT=
http://127.0.0.1:4318) and their spans land in the log as `promptlab.otel.SpanExporter`
would write them. It takes POST /v1/traces with an `ExportTraceServiceRequest` as protobuf
(`application/x-protobuf`) or JSON (`application/json`), gzip-encoded or not; decoding is
opentelemetry-proto's, the HTTP server the standard library's.
"""

from __future__ import annotations

import base64
import json
import threading
import zlib
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from promptlab.otel.entries import span_to_entry, spans_from_proto

__all__ = ["OtlpServer", "make_server"]

MAX_BODY = 64 << 20


class OtlpServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], logger: Any, content: bool,
                 warn: Callable[[str], None] | None = None):
        super().__init__(address, _Handler)
        self.logger = logger
        self.content = content
        self.warn = warn  # told, one line a request, when spans are rejected
        self.received = 0
        self.rejected = 0
        self.lock = threading.Lock()


class _Handler(BaseHTTPRequestHandler):
    server: OtlpServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # quiet: the log is the output
        pass

    def _reply(self, code: int, body: bytes, content_type: str) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _error(self, code: int, message: str) -> None:
        self._reply(code, message.encode(), "text/plain; charset=utf-8")

    def do_POST(self) -> None:
        from google.protobuf import json_format
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
            ExportTraceServiceRequest,
            ExportTraceServiceResponse,
        )

        length = int(self.headers.get("Content-Length") or 0)
        if self.path.rstrip("/") != "/v1/traces":
            self.rfile.read(length)
            return self._error(404, "only POST /v1/traces (OTLP/HTTP traces) is served here")
        if length > MAX_BODY:
            return self._error(413, f"request larger than {MAX_BODY} bytes")
        body = self.rfile.read(length)
        encoding = (self.headers.get("Content-Encoding") or "").lower()
        try:
            if encoding in ("gzip", "deflate"):
                inflated = _inflate(body, gzip=encoding == "gzip")
                if inflated is None:
                    return self._error(413, f"request larger than {MAX_BODY} bytes once "
                                            f"decompressed ({encoding})")
                body = inflated
        except (OSError, zlib.error, EOFError):
            return self._error(400, f"body is not valid {encoding}")
        content_type = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        request = ExportTraceServiceRequest()
        try:
            if content_type == "application/json":
                json_format.ParseDict(_hex_ids_to_base64(json.loads(body)), request,
                                      ignore_unknown_fields=True)
            elif content_type in ("application/x-protobuf", "application/protobuf", ""):
                request.ParseFromString(body)
            else:
                return self._error(415, f"Content-Type {content_type!r}: expected "
                                        "application/x-protobuf or application/json")
        except Exception as exc:  # protobuf's DecodeError / json_format.ParseError
            return self._error(400, f"not an ExportTraceServiceRequest: {exc}")
        reasons: dict[str, int] = {}  # why spans were rejected: how many each time
        written = 0
        for span in spans_from_proto(request):
            try:
                if span.invalid:
                    raise ValueError(span.invalid)
                self.server.logger.log(**span_to_entry(span, content=self.server.content))
                written += 1
            except Exception as exc:  # one bad span must not lose the others
                reason = str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__
                reasons[reason] = reasons.get(reason, 0) + 1
        rejected = sum(reasons.values())
        with self.server.lock:
            self.server.received += written
            self.server.rejected += rejected
        response = ExportTraceServiceResponse()
        if rejected:
            response.partial_success.rejected_spans = rejected
            response.partial_success.error_message = _rejections(reasons)
            if self.server.warn is not None:
                self.server.warn(f"{self.client_address[0]} sent {rejected} span"
                                 f"{'s' if rejected > 1 else ''} that were {_rejections(reasons)}")
        if content_type == "application/json":
            self._reply(200, json_format.MessageToJson(response).encode(), "application/json")
        else:
            self._reply(200, response.SerializeToString(), "application/x-protobuf")


def _rejections(reasons: dict[str, int]) -> str:
    """`partial_success.error_message`: why spans were not logged, the first few reasons."""
    shown = [f"{count} span{'s' if count > 1 else ''}: {reason}"
             for reason, count in list(reasons.items())[:5]]
    more = f"; and {len(reasons) - 5} other reasons" if len(reasons) > 5 else ""
    return "not logged: " + "; ".join(shown) + more


def _hex_ids_to_base64(data: Any) -> Any:
    """OTLP/JSON writes trace and span ids as hex; protobuf's JSON mapping expects base64."""
    for resource_spans in data.get("resourceSpans") or []:
        for scope_spans in resource_spans.get("scopeSpans") or []:
            for span in scope_spans.get("spans") or []:
                for item in (span, *(span.get("links") or [])):
                    for key in ("traceId", "spanId", "parentSpanId"):
                        value = item.get(key)
                        if isinstance(value, str) and value:
                            item[key] = base64.b64encode(bytes.fromhex(value)).decode()
    return data


def _inflate(body: bytes, *, gzip: bool) -> bytes | None:
    """A gzip (every member) or zlib body decompressed, or None when that would take more
    than MAX_BODY bytes: never more than that in memory, whatever a small body expands to.
    Raises zlib.error or EOFError for a damaged or truncated one."""
    out: list[bytes] = []
    size = 0
    rest = body
    while True:
        stream = zlib.decompressobj(16 + zlib.MAX_WBITS if gzip else zlib.MAX_WBITS)
        part = stream.decompress(rest, MAX_BODY + 1 - size)
        size += len(part)
        if size > MAX_BODY or stream.unconsumed_tail:
            return None
        if not stream.eof:
            raise EOFError("compressed body ends early")
        out.append(part)
        rest = stream.unused_data
        if not gzip or not rest.strip(b"\0"):  # (gzip members may follow; padding may not)
            return b"".join(out)


def make_server(logger: Any, host: str = "127.0.0.1", port: int = 4318, *,
                content: bool = True, warn: Callable[[str], None] | None = None) -> OtlpServer:
    """A receiver bound to (host, port), not yet serving (call `serve_forever()`). `warn`
    gets one line for each request that had spans rejected (the sender gets them in the
    response's `partial_success`, which few SDKs show)."""
    return OtlpServer((host, port), logger, content, warn)
