"""Spans in: an app instrumented with the official openai-v2 instrumentation, talking to a
local fake OpenAI server, logs through promptlab.otel.SpanExporter; the attribute forms of
OpenLLMetry and OpenInference; the round trip export → `otlp serve` → entries."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import Status, StatusCode

from promptlab.logs.logger import Logger
from promptlab.logs.reader import read_entries
from promptlab.otel import SpanExporter, export_otlp
from promptlab.otel.serve import make_server

COMPLETION = {
    "id": "chatcmpl-42", "object": "chat.completion", "created": 1764669600,
    "model": "gpt-4o-mini-2024-07-18",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "Paris."},
                 "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 21, "completion_tokens": 2, "total_tokens": 23},
}


@pytest.fixture
def fake_openai() -> Iterator[dict[str, Any]]:
    """A local OpenAI-compatible server: a completion for model gpt-4o-mini, a 500 otherwise."""
    seen: dict[str, Any] = {"requests": []}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            seen["requests"].append((self.path, body))
            if body["model"] == "gpt-4o-mini":
                code, out = 200, json.dumps(COMPLETION).encode()
            else:
                code, out = 500, b'{"error": {"message": "model overloaded", "type": "server_error"}}'
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    seen["url"] = f"http://127.0.0.1:{server.server_address[1]}/v1"
    yield seen
    server.shutdown()
    server.server_close()


APP = textwrap.dedent("""
    import sys
    import openai
    from opentelemetry import trace
    import importlib
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from promptlab.otel import SpanExporter

    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(SpanExporter(log_dir=sys.argv[2])))
    trace.set_tracer_provider(provider)
    importlib.import_module(sys.argv[3]).OpenAIInstrumentor().instrument()

    client = openai.OpenAI(base_url=sys.argv[1], api_key="sk-test-key-0123456789abcdefghij",
                           max_retries=0)
    with trace.get_tracer("app").start_as_current_span("answer-question"):
        client.chat.completions.create(
            model="gpt-4o-mini", temperature=0.3, max_tokens=50,
            messages=[{"role": "system", "content": "Answer briefly."},
                      {"role": "user", "content": "Capital of France?"}])
        try:
            client.chat.completions.create(model="gpt-4o", messages=[{"role": "user",
                                                                      "content": "hi"}])
        except openai.InternalServerError:
            pass
    provider.shutdown()
""")


def run_app(tmp_path: Path, url: str, log_dir: Path, env: dict[str, str],
            instrumentation: str = "opentelemetry.instrumentation.openai_v2",
            ) -> list[dict[str, Any]]:
    script = tmp_path / "app.py"
    script.write_text(APP)
    clean = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    done = subprocess.run([sys.executable, str(script), url, str(log_dir), instrumentation],
                          env={**clean, **env},
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return list(read_entries(log_dir))


def test_openai_v2_instrumented_app_latest_conventions(tmp_path: Path, fake_openai: Any) -> None:
    log_dir = tmp_path / "logs"
    entries = run_app(tmp_path, fake_openai["url"], log_dir, {
        "OTEL_SEMCONV_STABILITY_OPT_IN": "gen_ai_latest_experimental",
        "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "span_only",
    })
    assert len(fake_openai["requests"]) == 2
    by_model = {e.get("model"): e for e in entries if e["kind"] == "llm"}
    root = next(e for e in entries if e["kind"] == "span")
    ok, failed = by_model["gpt-4o-mini"], by_model["gpt-4o"]

    assert root["name"] == "answer-question" and root["status"] == "ok"
    assert root.get("parent_id") is None and len(root["trace_id"]) == 32
    for call in (ok, failed):
        assert call["trace_id"] == root["trace_id"]
        assert call["parent_id"] == root["span_id"]
        assert call["provider"] == "openai"
        assert call["metadata"]["otel.scope"].startswith("opentelemetry.")
    assert ok["status"] == "ok"
    assert ok["input_tokens"] == 21 and ok["output_tokens"] == 2
    assert ok["config"]["temperature"] == 0.3 and ok["config"]["max_tokens"] == 50
    assert ok["system_prompt"] == "Answer briefly."
    assert ok["user_message"] == "Capital of France?"
    assert ok["assistant_response"] == "Paris."
    assert ok["metadata"]["response_id"] == "chatcmpl-42"
    assert ok["metadata"]["response_model"] == "gpt-4o-mini-2024-07-18"
    assert ok["metadata"]["finish_reasons"] == ["stop"]
    assert ok["cost_usd"] > 0  # priced at write time like any logged call
    assert 0 < ok["latency_ms"] < 60_000
    assert failed["status"] == "error"
    assert failed["error"] == "openai.InternalServerError: Error code: 500 - model overloaded"
    assert "assistant_response" not in failed


def test_openai_v2_instrumented_app_default_conventions(tmp_path: Path, fake_openai: Any) -> None:
    """Without the opt-in the instrumentation keeps semconv 1.30: gen_ai.system, no content."""
    entries = run_app(tmp_path, fake_openai["url"], tmp_path / "logs", {})
    ok = next(e for e in entries if e.get("model") == "gpt-4o-mini")
    assert ok["kind"] == "llm" and ok["provider"] == "openai"
    assert ok["config"] == {"temperature": 0.3, "max_tokens": 50}
    assert (ok["input_tokens"], ok["output_tokens"]) == (21, 2)
    assert "user_message" not in ok and "assistant_response" not in ok


def test_openllmetry_instrumented_app(tmp_path: Path, fake_openai: Any) -> None:
    """OpenLLMetry's opentelemetry-instrumentation-openai (traceloop), content on by default."""
    entries = run_app(tmp_path, fake_openai["url"], tmp_path / "logs", {},
                      instrumentation="opentelemetry.instrumentation.openai")
    root = next(e for e in entries if e["kind"] == "span")
    ok = next(e for e in entries if e.get("model") == "gpt-4o-mini")
    failed = next(e for e in entries if e.get("model") == "gpt-4o")
    assert ok["kind"] == "llm" and ok["provider"] == "openai" and ok["name"] == "openai.chat"
    assert ok["trace_id"] == root["trace_id"] and ok["parent_id"] == root["span_id"]
    assert (ok["input_tokens"], ok["output_tokens"]) == (21, 2)
    assert ok["config"] == {"temperature": 0.3, "max_tokens": 50, "stream": False}
    assert ok["system_prompt"] == "Answer briefly."
    assert ok["user_message"] == "Capital of France?" and ok["assistant_response"] == "Paris."
    assert ok["metadata"]["response_id"] == "chatcmpl-42"
    assert ok["metadata"]["gen_ai.openai.api_base"] == fake_openai["url"] + "/"
    assert failed["status"] == "error" and "500" in failed["error"]


def _exporter_spans(log_dir: Path) -> tuple[Any, Any]:
    provider = TracerProvider()
    exporter = SpanExporter(Logger(log_dir))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider, provider.get_tracer("test")


def test_openllmetry_attributes(tmp_path: Path) -> None:
    provider, tracer = _exporter_spans(tmp_path)
    with tracer.start_as_current_span("openai.chat") as span:
        span.set_attributes({
            "llm.request.type": "chat", "gen_ai.system": "openai",
            "gen_ai.request.model": "gpt-4o", "gen_ai.response.model": "gpt-4o-2024-08-06",
            "gen_ai.prompt.0.role": "system", "gen_ai.prompt.0.content": "Be brief.",
            "gen_ai.prompt.1.role": "user", "gen_ai.prompt.1.content": "Hi?",
            "gen_ai.prompt.2.role": "assistant", "gen_ai.prompt.2.content": "Hello.",
            "gen_ai.prompt.3.role": "user", "gen_ai.prompt.3.content": "Bye?",
            "gen_ai.completion.0.role": "assistant", "gen_ai.completion.0.content": "Bye.",
            "gen_ai.completion.0.finish_reason": "stop",
            "gen_ai.usage.prompt_tokens": 30, "gen_ai.usage.completion_tokens": 4,
            "llm.usage.total_tokens": 34, "gen_ai.usage.cache_read_input_tokens": 10,
            "gen_ai.request.temperature": 0.5, "llm.is_streaming": False,
            "gen_ai.openai.api_base": "https://api.openai.com/v1/",
        })
    provider.shutdown()
    (entry,) = read_entries(tmp_path)
    assert entry["kind"] == "llm" and entry["model"] == "gpt-4o"
    assert entry["provider"] == "openai" and entry["name"] == "openai.chat"
    assert (entry["input_tokens"], entry["output_tokens"], entry["cached_tokens"]) == (30, 4, 10)
    assert entry["config"] == {"temperature": 0.5, "stream": False}
    assert entry["system_prompt"] == "Be brief." and entry["user_message"] == "Hi?\n\nBye?"
    assert entry["messages"] == [
        {"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi?"},
        {"role": "assistant", "content": "Hello."}, {"role": "user", "content": "Bye?"}]
    assert entry["assistant_response"] == "Bye."
    assert entry["status"] == "ok"
    assert entry["metadata"] == {"gen_ai.openai.api_base": "https://api.openai.com/v1/",
                                 "response_model": "gpt-4o-2024-08-06",
                                 "otel.scope": "test"}


def test_openinference_attributes_and_unknown_to_metadata(tmp_path: Path) -> None:
    provider, tracer = _exporter_spans(tmp_path)
    with tracer.start_as_current_span("agent") as parent:
        parent.set_attribute("openinference.span.kind", "CHAIN")
        parent.set_attribute("input.value", "what is 2+2?")
        with tracer.start_as_current_span("ChatCompletion") as span:
            span.set_attributes({
                "openinference.span.kind": "LLM", "llm.model_name": "claude-haiku-4-5",
                "llm.provider": "anthropic",
                "llm.invocation_parameters": '{"temperature": 0, "max_tokens": 64}',
                "llm.input_messages.0.message.role": "user",
                "llm.input_messages.0.message.content": "what is 2+2?",
                "llm.output_messages.0.message.role": "assistant",
                "llm.output_messages.0.message.content": "4",
                "llm.token_count.prompt": 9, "llm.token_count.completion": 1,
                "llm.token_count.total": 10, "tag.tags": ["math"],
                "metadata": '{"customer": "acme"}', "session.id": "s-1", "my.custom": 3,
            })
            span.set_status(Status(StatusCode.ERROR, "rate limited"))
            span.set_attribute("error.type", "RateLimitError")
    provider.shutdown()
    llm, chain = read_entries(tmp_path)
    assert chain["kind"] == "span" and chain["name"] == "agent"
    assert chain["metadata"]["input.value"] == "what is 2+2?"
    assert llm["kind"] == "llm" and llm["model"] == "claude-haiku-4-5"
    assert llm["provider"] == "anthropic" and llm["config"] == {"temperature": 0, "max_tokens": 64}
    assert llm["user_message"] == "what is 2+2?" and llm["assistant_response"] == "4"
    assert "messages" not in llm
    assert (llm["input_tokens"], llm["output_tokens"]) == (9, 1)
    assert llm["tags"] == ["math"]
    assert llm["status"] == "error" and llm["error"] == "RateLimitError: rate limited"
    assert llm["metadata"]["customer"] == "acme" and llm["metadata"]["session_id"] == "s-1"
    assert llm["metadata"]["my.custom"] == 3
    assert llm["parent_id"] == chain["span_id"] and llm["trace_id"] == chain["trace_id"]


def test_same_span_taken_in_twice_gets_the_same_id(tmp_path: Path) -> None:
    from promptlab.otel.entries import span_to_entry, spans_from_sdk

    provider = TracerProvider()
    tracer = provider.get_tracer("t")
    with tracer.start_as_current_span("step") as span:
        pass
    one = span_to_entry(next(spans_from_sdk([span])))
    two = span_to_entry(next(spans_from_sdk([span])))
    assert one == two and len(one["id"]) == 26


def test_round_trip_export_serve_entries_match(tmp_path: Path) -> None:
    """Export a log, take the spans back in through `otlp serve`: the same entries."""
    from .test_export import write_log

    source, copy = tmp_path / "source", tmp_path / "copy"
    originals = write_log(source)
    server = make_server(Logger(copy), "127.0.0.1", 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        summary = export_otlp(source, endpoint=f"http://127.0.0.1:{server.server_address[1]}",
                              content=True)
    finally:
        server.shutdown()
        server.server_close()
    assert summary.sent == 7 and summary.ok
    assert server.received == 7
    back = {e["id"]: e for e in read_entries(copy)}
    assert set(back) == {e["id"] for e in originals.values()}
    for name, original in originals.items():
        received = back[original["id"]]
        expected = dict(original)
        if name == "call":  # what the conventions' forms change: a stop string becomes a list
            expected["config"] = {**expected["config"], "stop": ["END"]}
        assert received == expected, name


def test_serve_rejects_what_is_not_otlp(tmp_path: Path) -> None:
    import urllib.error
    import urllib.request

    server = make_server(Logger(tmp_path), "127.0.0.1", 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        import gzip
        import zlib

        from promptlab.otel.serve import MAX_BODY

        bomb = gzip.compress(b" " * (MAX_BODY + 1))  # ~65 KB that inflate past the limit
        for path, body, ctype, code, encoding in [
            ("/v1/logs", b"", "application/x-protobuf", 404, None),
            ("/v1/traces", b"\xff\xff\xff", "application/x-protobuf", 400, None),
            ("/v1/traces", b"<xml/>", "text/xml", 415, None),
            ("/v1/traces", bomb, "application/json", 413, "gzip"),
            ("/v1/traces", zlib.compress(b" " * (MAX_BODY + 1)), "application/json", 413,
             "deflate"),
            ("/v1/traces", gzip.compress(b"{}")[:-4], "application/json", 400, "gzip"),
            ("/v1/traces", b"not gzip", "application/json", 400, "gzip"),
        ]:
            headers = {"Content-Type": ctype, **({"Content-Encoding": encoding} if encoding
                                                 else {})}
            request = urllib.request.Request(base + path, data=body, headers=headers)
            with pytest.raises(urllib.error.HTTPError) as err:
                urllib.request.urlopen(request, timeout=5)
            assert err.value.code == code
        payload = json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [{
            "traceId": "5b8efff798038103d269b633813fc60c", "spanId": "eee19b7ec3c1b174",
            "name": "chat llama3", "startTimeUnixNano": "1764669600000000000",
            "endTimeUnixNano": "1764669600500000000",
            "attributes": [
                {"key": "gen_ai.operation.name", "value": {"stringValue": "chat"}},
                {"key": "gen_ai.request.model", "value": {"stringValue": "llama3"}},
                {"key": "gen_ai.usage.input_tokens", "value": {"intValue": "7"}}]}]}]}]}
        ).encode()
        ok = urllib.request.Request(  # gzip in two members, as `cat a.gz b.gz` makes
            base + "/v1/traces", headers={"Content-Type": "application/json",
                                          "Content-Encoding": "gzip"},
            data=gzip.compress(payload[:10]) + gzip.compress(payload[10:]))
        with urllib.request.urlopen(ok, timeout=5) as response:
            assert response.status == 200
    finally:
        server.shutdown()
        server.server_close()
    (entry,) = read_entries(tmp_path)
    assert entry["model"] == "llama3" and entry["input_tokens"] == 7
    assert entry["latency_ms"] == 500.0 and entry["trace_id"] == "5b8efff798038103d269b633813fc60c"
    assert entry["span_id"] == "eee19b7ec3c1b174"


def test_console_scripts_serve_and_export(tmp_path: Path, console_script: str) -> None:
    """The installed commands: `otlp serve` in one process, `export otlp` in another."""
    import re
    import signal

    from .test_export import write_log

    source, copy = tmp_path / "source", tmp_path / "copy"
    originals = write_log(source)
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    serve = subprocess.Popen([console_script, "otlp", "serve", "--port", "0", "--log-dir",
                              str(copy)], stderr=subprocess.PIPE, text=True, env=env)
    try:
        line = serve.stderr.readline()
        m = re.search(r"listening on (http://127\.0\.0\.1:\d+)/v1/traces, writing to (.+) \(", line)
        assert m, line
        assert m.group(2) == str(copy)
        done = subprocess.run([console_script, "export", "otlp", "--log-dir", str(source),
                               "--endpoint", m.group(1)], capture_output=True, text=True,
                              env=env, timeout=120)
        assert done.returncode == 0, done.stderr
        assert done.stdout.startswith(f"7 span(s) sent to {m.group(1)}/v1/traces")
        assert done.stderr == ""  # no progress bar off a terminal, no SDK chatter
    finally:
        serve.send_signal(signal.SIGINT)
        _, err = serve.communicate(timeout=30)
    assert serve.returncode == 0
    assert err.strip().endswith("received 7 span(s)")
    assert {e["id"] for e in read_entries(copy)} == {e["id"] for e in originals.values()}


def test_round_trip_of_a_conversation_with_tool_calls(tmp_path: Path) -> None:
    source, copy = tmp_path / "source", tmp_path / "copy"
    messages = [
        {"role": "system", "content": "Use the tools."},
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": "", "tool_calls": [{
            "id": "call_1", "type": "function",
            "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "rainy, 14C"},
    ]
    logger = Logger(source)
    entry = logger.log(model="gpt-4o", messages=messages, system_prompt="Use the tools.",
                       user_message="Weather in Paris?", assistant_response="Rainy, 14C.",
                       input_tokens=80, output_tokens=6, latency_ms=812.0, status="ok")
    server = make_server(Logger(copy), "127.0.0.1", 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        summary = export_otlp(source, endpoint=f"http://127.0.0.1:{server.server_address[1]}",
                              content=True)
    finally:
        server.shutdown()
        server.server_close()
    assert summary.sent == 1
    (back,) = read_entries(copy)
    assert back == entry


def test_serve_rejects_spans_with_invalid_ids_and_says_why(tmp_path: Path) -> None:
    """The OpenTelemetry spec: a trace id is 16 bytes and a span id 8, neither all zero.
    Spans that break it are rejected (partial_success, and a warning at the receiver), the
    others in the same request are logged; a span naming itself as parent is a root."""
    import urllib.request

    warnings: list[str] = []
    server = make_server(Logger(tmp_path), "127.0.0.1", 0, warn=warnings.append)
    threading.Thread(target=server.serve_forever, daemon=True).start()

    def span(name: str, trace: str, span_id: str, parent: str = "") -> dict[str, Any]:
        return {"traceId": trace, "spanId": span_id, "parentSpanId": parent, "name": name,
                "startTimeUnixNano": "1764669600000000000",
                "endTimeUnixNano": "1764669600500000000"}

    trace = "5b8efff798038103d269b633813fc60c"
    spans = [span("good", trace, "eee19b7ec3c1b174"),
             span("zero trace", "0" * 32, "eee19b7ec3c1b175"),
             span("no trace", "", "eee19b7ec3c1b176"),
             span("zero span", trace, "0" * 16),
             span("short span", trace, "eee1"),
             span("long parent", trace, "eee19b7ec3c1b177", "ab" * 9),
             span("own parent", trace, "eee19b7ec3c1b178", "eee19b7ec3c1b178"),
             span("zero parent", trace, "eee19b7ec3c1b179", "0" * 16)]
    body = json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": spans}]}]}).encode()
    request = urllib.request.Request(f"http://127.0.0.1:{server.server_address[1]}/v1/traces",
                                     data=body, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            answer = json.loads(response.read())
    finally:
        server.shutdown()
        server.server_close()
    partial = answer["partialSuccess"]
    assert int(partial["rejectedSpans"]) == 5 and server.rejected == 5
    message = partial["errorMessage"]
    assert message.startswith("not logged: 1 span: invalid trace id 0000000000000000000000")
    assert "invalid trace id empty: it must be 16 bytes, not all zero" in message
    assert "invalid span id 0000000000000000" in message and "invalid span id eee1:" in message
    assert "invalid parent span id ababababababababab: it must be 8 bytes" in message
    (warning,) = warnings
    assert warning.startswith("127.0.0.1 sent 5 spans that were not logged: ")
    logged = {entry["name"]: entry for entry in read_entries(tmp_path)}
    assert set(logged) == {"good", "own parent", "zero parent"}
    assert "parent_id" not in logged["own parent"] and "parent_id" not in logged["zero parent"]


def test_a_span_with_nan_or_infinite_attributes_is_logged(tmp_path: Path) -> None:
    """OpenTelemetry allows NaN and infinite attribute values; a log line cannot hold them
    (the logger refuses them), so they are kept as text rather than the span refused."""
    provider, tracer = _exporter_spans(tmp_path)
    with tracer.start_as_current_span("chat m") as span:
        span.set_attributes({"gen_ai.operation.name": "chat", "gen_ai.request.model": "m",
                             "gen_ai.request.temperature": float("inf"),
                             "quality": float("nan"), "bounds": [1.0, float("-inf")]})
    provider.shutdown()
    (entry,) = read_entries(tmp_path)
    assert entry["model"] == "m" and entry["config"] == {"temperature": "inf"}
    assert entry["metadata"]["quality"] == "nan"
    assert entry["metadata"]["bounds"] == [1.0, "-inf"]
