"""`promptlab export otlp` against a loopback OTLP/HTTP receiver: ids, parent links, timings
and every attribute; idempotent and resumable; retries, failures and the summary."""

from __future__ import annotations

import calendar
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from promptlab.cli import main
from promptlab.logs.logger import Logger

CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def ulid_hex(ulid: str) -> str:
    value = 0
    for ch in ulid:
        value = value * 32 + CROCKFORD.index(ch)
    return f"{value:032x}"


def ns(timestamp: str) -> int:
    head, frac = timestamp.rstrip("Z").split(".")
    seconds = calendar.timegm((int(head[:4]), int(head[5:7]), int(head[8:10]), int(head[11:13]),
                               int(head[14:16]), int(head[17:19]), 0, 0, 0))
    return seconds * 10**9 + int(frac.ljust(9, "0"))


def write_log(log_dir: Path) -> dict[str, dict[str, Any]]:
    """A trace (root span, child span, a call inside), a standalone call, a failed call and
    feedback on two of them."""
    logger = Logger(log_dir)
    out: dict[str, dict[str, Any]] = {}
    with logger.trace("answer-question", metadata={"user": "u-1"}) as root:
        with logger.span("retrieve", tags=["rag"]) as child:
            pass
        with logger.call(None, model="gpt-4o-mini", provider="openai",
                         config={"temperature": 0.2, "max_tokens": 800, "top_p": 0.9,
                                 "stop": ["END"], "seed": 7, "response_format": {"type": "json"}},
                         system_prompt="You review code.",
                         user_message="key sk-abcdefghijklmnopqrstuvwx0123 leaked?",
                         prompt_id="code-review", prompt_version="v2", prompt_label="production",
                         prompt_sha="ab" * 32, prompt_commit="c0ffee1",
                         experiment="checklist", variant="v2", unit_id="user-9", item_id="item-3",
                         run_id="run-1", tags=["support", "beta"],
                         metadata={"ticket": 42, "nested": {"a": [1, 2]}}) as call:
            call.finish(response="Looks fine.", input_tokens=812, output_tokens=96,
                        cached_tokens=512, reasoning_tokens=10, scores={"finds_bug": True,
                                                                        "quality": 0.75})
    out["root"] = root.entry
    out["child"] = child.entry
    out["call"] = call.entry
    out["standalone"] = logger.log(model="claude-sonnet-4-5", provider="anthropic",
                                   user_message="hi", assistant_response="hello",
                                   input_tokens=5, output_tokens=2, latency_ms=1234.5)
    out["failed"] = logger.log(model="gpt-4o", user_message="q", latency_ms=30000.0,
                               status="error", error="TimeoutError: no reply in 30 s")
    out["fb_call"] = logger.feedback(call.entry["id"], helpful=True, rating=4, comment="good")
    out["fb_standalone"] = logger.feedback(out["standalone"]["id"], thumbs_up=False)
    logger.close()
    return out


def run(*args: str, env: dict[str, str] | None = None) -> Any:
    return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)


def test_export_sends_logged_ids_timings_and_genai_attributes(log_dir: Path, receiver: Any) -> None:
    e = write_log(log_dir)
    result = run("export", "otlp", "--endpoint", receiver.url)
    assert result.exit_code == 0, result.output
    assert result.output.strip() == (f"7 span(s) sent to {receiver.url}/v1/traces, "
                                     "0 skipped (already sent), 0 failed")
    assert len(receiver.spans) == 7

    trace_hex = ulid_hex(e["root"]["id"])
    root = receiver.by_name("answer-question")
    child = receiver.by_name("retrieve")
    call = receiver.by_name("chat gpt-4o-mini")
    # the logged ids, not new ones: the trace id is the root's ULID, span ids its low 64 bits
    assert root.trace_id == child.trace_id == call.trace_id == trace_hex
    assert root.span_id == trace_hex[16:] and root.parent_id is None
    assert child.span_id == ulid_hex(e["child"]["id"])[16:]
    assert child.parent_id == root.span_id
    assert call.span_id == ulid_hex(e["call"]["id"])[16:]
    assert call.parent_id == root.span_id
    for span, entry in ((root, e["root"]), (child, e["child"]), (call, e["call"])):
        assert span.start_ns == ns(entry["timestamp"])
        assert span.end_ns - span.start_ns == int(entry["latency_ms"] * 1_000_000)
        assert span.resource["service.name"] == "promptlab"
        assert span.scope == "promptlab"
    assert root.kind == 1 and call.kind == 3  # INTERNAL, CLIENT
    assert root.attributes["promptlab.metadata"] == '{"user":"u-1"}'
    assert child.attributes["promptlab.tags"] == ["rag"]

    assert call.attributes == {
        "promptlab.id": e["call"]["id"],
        "promptlab.parent_id": e["root"]["id"],
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-4o-mini",
        "gen_ai.response.model": "gpt-4o-mini",
        "gen_ai.request.temperature": 0.2,
        "gen_ai.request.max_tokens": 800,
        "gen_ai.request.top_p": 0.9,
        "gen_ai.request.stop_sequences": ["END"],
        "gen_ai.request.seed": 7,
        "promptlab.config.response_format": '{"type":"json"}',
        "gen_ai.usage.input_tokens": 812,
        "gen_ai.usage.output_tokens": 96,
        "gen_ai.usage.cache_read.input_tokens": 512,
        "gen_ai.usage.reasoning.output_tokens": 10,
        "promptlab.cost_usd": e["call"]["cost_usd"],
        "promptlab.prompt.id": "code-review",
        "promptlab.prompt.version": "v2",
        "promptlab.prompt.label": "production",
        "promptlab.prompt.sha": "ab" * 32,
        "promptlab.prompt.commit": "c0ffee1",
        "promptlab.experiment": "checklist",
        "promptlab.variant": "v2",
        "promptlab.unit_id": "user-9",
        "promptlab.item_id": "item-3",
        "promptlab.run_id": "run-1",
        "promptlab.score.finds_bug": True,
        "promptlab.score.quality": 0.75,
        "promptlab.tags": ["support", "beta"],
        "promptlab.metadata": '{"ticket":42,"nested":{"a":[1,2]}}',
    }
    assert call.status_code == 1  # OK: the entry says so (status "ok")
    assert root.status_code == 1 and receiver.by_name("chat claude-sonnet-4-5").status_code == 0
    # no message content unless asked for
    assert not any(k.startswith("gen_ai.input") or k.startswith("gen_ai.output") or
                   k == "gen_ai.system_instructions" for s in receiver.spans for k in s.attributes)

    # a call outside any trace: a one-span trace named after its own id
    alone = receiver.by_name("chat claude-sonnet-4-5")
    assert alone.trace_id == ulid_hex(e["standalone"]["id"])
    assert alone.span_id == alone.trace_id[16:] and alone.parent_id is None
    assert alone.attributes["gen_ai.provider.name"] == "anthropic"
    assert alone.end_ns - alone.start_ns == 1_234_500_000

    failed = receiver.by_name("chat gpt-4o")
    assert failed.status_code == 2 and failed.status_message == "TimeoutError: no reply in 30 s"
    assert failed.attributes["error.type"] == "TimeoutError"
    assert "gen_ai.provider.name" not in failed.attributes  # not logged, not invented

    # feedback: a zero-length child span of the scored call, one evaluation event per score
    fb = [s for s in receiver.spans if s.name == "feedback"]
    on_call = next(s for s in fb if s.attributes["promptlab.target"] == e["call"]["id"])
    assert on_call.trace_id == trace_hex and on_call.parent_id == call.span_id
    assert on_call.start_ns == on_call.end_ns == ns(e["fb_call"]["timestamp"])
    assert on_call.attributes["promptlab.score.helpful"] is True
    assert on_call.attributes["promptlab.score.rating"] == 4
    assert json.loads(on_call.attributes["promptlab.metadata"]) == {"comment": "good"}
    assert sorted(on_call.events, key=lambda ev: ev[1]["gen_ai.evaluation.name"]) == [
        ("gen_ai.evaluation.result", {"gen_ai.evaluation.name": "helpful",
                                      "gen_ai.evaluation.score.value": 1.0,
                                      "gen_ai.evaluation.score.label": "true"}),
        ("gen_ai.evaluation.result", {"gen_ai.evaluation.name": "rating",
                                      "gen_ai.evaluation.score.value": 4.0}),
    ]
    on_alone = next(s for s in fb if s.attributes["promptlab.target"] == e["standalone"]["id"])
    assert on_alone.trace_id == alone.trace_id and on_alone.parent_id == alone.span_id


def test_content_is_opt_in_and_redacted(log_dir: Path, receiver: Any) -> None:
    e = write_log(log_dir)
    result = run("export", "otlp", "--endpoint", receiver.url, "--content")
    assert result.exit_code == 0, result.output
    call = receiver.by_name("chat gpt-4o-mini")
    assert json.loads(call.attributes["gen_ai.system_instructions"]) == [
        {"type": "text", "content": "You review code."}]
    assert json.loads(call.attributes["gen_ai.input.messages"]) == [
        {"role": "user", "parts": [{"type": "text", "content": "key sk-[REDACTED] leaked?"}]}]
    assert json.loads(call.attributes["gen_ai.output.messages"]) == [
        {"role": "assistant", "parts": [{"type": "text", "content": "Looks fine."}],
         "finish_reason": "stop"}]
    assert "sk-abcdefghij" not in e["call"]["user_message"]  # the log itself was redacted too


def test_content_is_redacted_even_when_the_log_was_not(log_dir: Path, receiver: Any) -> None:
    logger = Logger(log_dir, redact=False)
    logger.log(model="m", user_message="token sk-abcdefghijklmnopqrstuvwx0123", latency_ms=1.0)
    logger.close()
    assert run("export", "otlp", "--endpoint", receiver.url, "--content").exit_code == 0
    text = receiver.spans[0].attributes["gen_ai.input.messages"]
    assert "sk-[REDACTED]" in text and "abcdefghij" not in text


def test_metadata_config_and_names_are_redacted_even_without_content(log_dir: Path,
                                                                     receiver: Any) -> None:
    """Only the texts are opt-in: metadata, config, names and tags always go out, so they
    are redacted too (a key in them was sent in full)."""
    key = "sk-proj-abcdefghijklmnopqrstuvwxyz0123456789ABCD"
    logger = Logger(log_dir, redact=False)
    logger.log(model="m", user_message="x", latency_ms=1.0, name=f"call {key}",
               metadata={"k": key, "nested": [{"note": f"key {key}"}]},
               config={"api_key": key, "note": key}, tags=["release", key])
    logger.close()
    assert run("export", "otlp", "--endpoint", receiver.url).exit_code == 0
    sent = repr(receiver.spans[0].attributes)
    assert "abcdefghijklmnopqrstuvwxyz" not in sent, sent
    assert sent.count("sk-[REDACTED]") >= 6, sent


def test_second_run_sends_only_new_entries_and_all_resends(log_dir: Path, receiver: Any) -> None:
    write_log(log_dir)
    assert run("export", "otlp", "--endpoint", receiver.url).exit_code == 0
    first = {(s.trace_id, s.span_id, s.start_ns, s.end_ns) for s in receiver.spans}

    again = run("export", "otlp", "--endpoint", receiver.url)
    assert again.exit_code == 0
    assert again.output.startswith("0 span(s) sent")
    assert len(receiver.spans) == 7

    Logger(log_dir).log(model="gpt-4o-mini", user_message="new", latency_ms=2.0)
    third = run("export", "otlp", "--endpoint", receiver.url, "--json")
    assert json.loads(third.output)["sent"] == 1
    assert len(receiver.spans) == 8

    resend = run("export", "otlp", "--endpoint", receiver.url, "--all")
    assert resend.output.startswith("8 span(s) sent")
    # a re-export is identical: same ids and times
    assert first <= {(s.trace_id, s.span_id, s.start_ns, s.end_ns) for s in receiver.spans[8:]}

    # another endpoint has its own record
    other = run("export", "otlp", "--endpoint", receiver.url.replace("127.0.0.1", "localhost"))
    assert other.output.startswith("8 span(s) sent")


def test_filtered_run_then_full_run_never_sends_twice(log_dir: Path, receiver: Any) -> None:
    write_log(log_dir)
    only = run("export", "otlp", "--endpoint", receiver.url, "--experiment", "checklist")
    assert only.output.startswith("1 span(s) sent")
    assert "6 entries did not match the filters" in only.output
    assert [s.name for s in receiver.spans] == ["chat gpt-4o-mini"]
    again = run("export", "otlp", "--endpoint", receiver.url, "--prompt", "code-review@v2")
    assert again.output.startswith("0 span(s) sent to")
    assert "1 skipped" in again.output
    full = run("export", "otlp", "--endpoint", receiver.url)
    assert full.output.startswith("6 span(s) sent") and "1 skipped" in full.output
    assert sorted(s.name for s in receiver.spans).count("chat gpt-4o-mini") == 1
    assert run("export", "otlp", "--endpoint", receiver.url).output.startswith("0 span(s)")


def test_since_until_select_by_entry_time(log_dir: Path, receiver: Any) -> None:
    logger = Logger(log_dir)
    logger.log(model="m", user_message="old", timestamp="2026-01-10T12:00:00.000000Z")
    logger.log(model="m", user_message="mid", timestamp="2026-01-11T12:00:00.000000Z")
    logger.log(model="m", user_message="new", timestamp="2026-01-12T12:00:00.000000Z")
    logger.close()
    result = run("export", "otlp", "--endpoint", receiver.url, "--since", "2026-01-11",
                 "--until", "2026-01-11")
    assert result.output.startswith("1 span(s) sent"), result.output
    assert receiver.spans[0].start_ns == ns("2026-01-11T12:00:00.000000Z")


def test_batches_and_retry_on_503_with_backoff(log_dir: Path, receiver: Any) -> None:
    logger = Logger(log_dir)
    for i in range(25):
        logger.log(model="m", user_message=f"q{i}", latency_ms=1.0)
    logger.close()
    receiver.fail_with = [503, 429]  # the SDK exporter retries these (Retry-After: 0)
    result = run("export", "otlp", "--endpoint", receiver.url, "--batch-size", "10")
    assert result.exit_code == 0, result.output
    assert result.output.startswith("25 span(s) sent")
    assert [len(r.resource_spans[0].scope_spans[0].spans) for r in receiver.requests] == [10, 10, 5]
    assert receiver.attempts == 5


def test_failure_exits_1_keeps_what_was_sent_and_resumes(log_dir: Path, receiver: Any) -> None:
    logger = Logger(log_dir)
    for i in range(25):
        logger.log(model="m", user_message=f"q{i}", latency_ms=1.0)
    logger.close()
    receiver.fail_with = [200, 500]  # the first batch is taken, the second refused (no retry)
    result = run("export", "otlp", "--endpoint", receiver.url, "--batch-size", "10")
    assert result.exit_code == 1
    assert result.output.startswith(f"10 span(s) sent to {receiver.url}/v1/traces, "
                                    "0 skipped (already sent), 10 failed; 5 not attempted")
    assert "last error: Failed to export spans batch code: 500" in result.output
    resumed = run("export", "otlp", "--endpoint", receiver.url, "--batch-size", "10")
    assert resumed.exit_code == 0
    assert resumed.output.startswith("15 span(s) sent")
    assert len({s.span_id for s in receiver.spans}) == 25 == len(receiver.spans)


def test_standard_environment_variables(log_dir: Path, receiver: Any,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    write_log(log_dir)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.url)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", "x-api-key=s3cret,x-team=ml%20ops")
    monkeypatch.setenv("OTEL_SERVICE_NAME", "support-bot")
    result = run("export", "otlp", "--header", "x-extra=1")
    assert result.exit_code == 0, result.output
    headers = receiver.headers[0]
    assert headers["x-api-key"] == "s3cret" and headers["x-team"] == "ml ops"
    assert headers["x-extra"] == "1"
    assert {s.resource["service.name"] for s in receiver.spans} == {"support-bot"}


def test_project_otel_settings(log_dir: Path, receiver: Any, tmp_path: Path,
                               monkeypatch: pytest.MonkeyPatch) -> None:
    write_log(log_dir)
    (tmp_path / "promptlab.toml").write_text(
        f'[otel]\nendpoint = "{receiver.url}"\nservice_name = "reviewer"\ncontent = true\n'
        '[otel.headers]\nauthorization = "Basic abc"\n')
    monkeypatch.chdir(tmp_path)
    result = run("export", "otlp")
    assert result.exit_code == 0, result.output
    assert receiver.headers[0]["authorization"] == "Basic abc"
    assert {s.resource["service.name"] for s in receiver.spans} == {"reviewer"}
    assert "gen_ai.input.messages" in receiver.by_name("chat gpt-4o-mini").attributes


@pytest.mark.parametrize(("args", "message"), [
    ([], "Error: no OTLP endpoint: pass --endpoint URL"),
    (["--endpoint", "localhost:4318"], "Error: --endpoint 'localhost:4318': expected an http(s) URL"),
    (["--endpoint", "http://[::1"], "Error: --endpoint 'http://[::1': expected an http(s) URL"),
    (["--endpoint", "http://h:99999"], "Error: --endpoint 'http://h:99999': expected an http(s)"),
    (["--endpoint", "http://x", "--header", "novalue"], "Error: --header 'novalue': expected KEY=VALUE"),
    (["--endpoint", "http://x", "--since", "yesteryear"], "Error: time 'yesteryear' is not a date"),
])
def test_mistakes_are_one_line_exit_2(log_dir: Path, args: list[str], message: str) -> None:
    write_log(log_dir)
    result = CliRunner().invoke(main, ["export", "otlp", *args])
    assert result.exit_code == 2
    assert result.output.startswith(message), result.output
    assert "Traceback" not in result.output


def test_grpc_protocol_is_refused_with_the_fix(log_dir: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    write_log(log_dir)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
    result = CliRunner().invoke(main, ["export", "otlp", "--endpoint", "http://localhost:4317"])
    assert result.exit_code == 2
    assert result.output.startswith("Error: OTEL_EXPORTER_OTLP_PROTOCOL=grpc: promptlab sends "
                                    "OTLP over HTTP with protobuf")


def test_bad_project_setting_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "promptlab.toml").write_text('[otel]\nendpont = "http://x"\n')
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["export", "otlp"])
    assert result.exit_code == 2
    assert "unknown setting otel.endpont" in result.output


def test_unreadable_lines_are_skipped_and_counted(log_dir: Path, receiver: Any) -> None:
    logger = Logger(log_dir)
    entry = logger.log(model="m", user_message="ok", latency_ms=1.0)
    logger.close()
    path = log_dir / f"{entry['timestamp'][:10]}.jsonl"
    with path.open("ab") as fh:
        fh.write(b"{not json\n")
        fh.write(b'{"v":1,"id":"01')  # a torn last line: left for the next run
    result = run("export", "otlp", "--endpoint", receiver.url)
    assert result.exit_code == 0
    assert result.output.startswith("1 span(s) sent") and "1 unreadable line(s)" in result.output


def test_one_export_of_a_folder_at_a_time(log_dir: Path, receiver: Any) -> None:
    from promptlab.otel.export import ExportState

    write_log(log_dir)
    holder = ExportState(log_dir, "http://elsewhere/v1/traces")
    try:
        result = CliRunner().invoke(main, ["export", "otlp", "--endpoint", receiver.url])
        assert result.exit_code == 2
        assert result.output.startswith(
            f"Error: another `promptlab export otlp` is running on {log_dir}")
    finally:
        holder.close()
    assert run("export", "otlp", "--endpoint", receiver.url).exit_code == 0


def test_an_entry_glued_after_a_torn_fragment_is_sent(log_dir: Path, receiver: Any) -> None:
    logger = Logger(log_dir)
    first = logger.log(model="m", user_message="one", latency_ms=1.0)
    logger.close()
    path = log_dir / f"{first['timestamp'][:10]}.jsonl"
    second = dict(first, id=first["id"][:-1] + ("Z" if first["id"][-1] != "Z" else "Y"))
    with path.open("ab") as fh:  # a writer killed mid-line, then another appended a whole entry
        fh.write(b'{"v":1,"id":"01TORN' + json.dumps(second).encode() + b"\n")
    result = run("export", "otlp", "--endpoint", receiver.url)
    assert result.output.startswith("2 span(s) sent") and "1 unreadable line(s)" in result.output
    assert {s.attributes["promptlab.id"] for s in receiver.spans} == {first["id"], second["id"]}


def test_service_name_precedence(log_dir: Path, receiver: Any, tmp_path: Path,
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    Logger(log_dir).log(model="m", user_message="x", latency_ms=1.0)
    (tmp_path / "promptlab.toml").write_text('[otel]\nservice_name = "from-config"\n')
    monkeypatch.chdir(tmp_path)
    names = []
    for args, env in ((["--service-name", "from-option"], {"OTEL_SERVICE_NAME": "from-env"}),
                      ([], {"OTEL_SERVICE_NAME": "from-env"}), ([], {})):
        run("export", "otlp", "--endpoint", receiver.url, "--all", *args, env=env)
        names.append(receiver.spans[-1].resource["service.name"])
    assert names == ["from-option", "from-env", "from-config"]


def test_feedback_on_an_entry_sent_in_an_earlier_run_finds_its_trace(log_dir: Path,
                                                                     receiver: Any) -> None:
    logger = Logger(log_dir)
    with logger.trace("request") as root, logger.call(None, model="m") as call:
        call.finish(response="r")
    assert run("export", "otlp", "--endpoint", receiver.url).output.startswith("2 span(s)")
    logger.feedback(call.entry["id"], helpful=False)
    logger.close()
    assert run("export", "otlp", "--endpoint", receiver.url).output.startswith("1 span(s)")
    feedback = receiver.by_name("feedback")
    assert feedback.trace_id == ulid_hex(root.entry["id"])  # looked up in the index
    assert feedback.parent_id == ulid_hex(call.entry["id"])[16:]


def test_feedback_on_an_entry_without_an_id_is_a_trace_of_its_own(log_dir: Path,
                                                                  receiver: Any) -> None:
    """An entry written without an id is not sent; feedback on it (by its derived id
    `<day>:<line>`) went out as the child of that never-sent span. It is now a root span,
    and feedback on an entry that was sent still finds it."""
    log_dir.mkdir(parents=True, exist_ok=True)
    lines = [
        {"v": 1, "timestamp": "2026-12-03T10:00:00Z", "model": "m"},
        {"v": 1, "id": "01JD3Z6X0M0000000000000002", "timestamp": "2026-12-03T10:00:01Z",
         "model": "m", "trace_id": "ab" * 16, "span_id": "cd" * 8},
        {"v": 1, "id": "01JD3Z6X0M0000000000000003", "timestamp": "2026-12-03T10:00:02Z",
         "kind": "feedback", "target": "2026-12-03:1", "scores": {"helpful": 1}},
        {"v": 1, "id": "01JD3Z6X0M0000000000000004", "timestamp": "2026-12-03T10:00:03Z",
         "kind": "feedback", "target": "01JD3Z6X0M0000000000000002", "scores": {"helpful": 0}},
    ]
    (log_dir / "2026-12-03.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    result = run("export", "otlp", "--endpoint", receiver.url, "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["sent"] == 3
    by_id = {s.attributes["promptlab.id"]: s for s in receiver.spans}
    orphan = by_id["01JD3Z6X0M0000000000000003"]
    assert orphan.parent_id is None
    assert orphan.attributes["promptlab.target"] == "2026-12-03:1"
    child = by_id["01JD3Z6X0M0000000000000004"]
    assert child.trace_id == "ab" * 16 and child.parent_id == "cd" * 8


def test_all_zero_ids_are_not_sent_as_one_shared_trace(log_dir: Path, receiver: Any) -> None:
    """Entries taken in with all-zero ids went out as trace 000…1 and span 000…1, one trace
    for every such entry; each now goes out as a trace of its own, named by its id."""
    log_dir.mkdir(parents=True, exist_ok=True)
    lines = [json.dumps({"v": 1, "id": f"01JD3Z6X0M00000000000000{i:02d}", "kind": "span",
                         "timestamp": "2026-12-03T10:00:00Z", "name": f"s{i}",
                         "trace_id": "0" * 32, "span_id": "0" * 16, "parent_id": "0" * 16})
             for i in range(2)]
    (log_dir / "2026-12-03.jsonl").write_text("\n".join(lines) + "\n")
    assert run("export", "otlp", "--endpoint", receiver.url).exit_code == 0
    first, second = receiver.spans
    assert first.trace_id != second.trace_id and first.span_id != second.span_id
    assert first.trace_id == ulid_hex("01JD3Z6X0M0000000000000000") and first.parent_id is None


def test_export_takes_the_lines_the_readers_take(log_dir: Path, receiver: Any) -> None:
    """The export decides lines with the reader's parser: an entry with a wrong field type
    (skipped by `logs check` and the index) is not sent, one without a timestamp but with a
    ULID id is (its time is the id's), and one without an id is counted, not sent."""
    log_dir.mkdir(parents=True, exist_ok=True)
    lines = [
        {"v": 1, "id": "01JD3Z6X0M0000000000000001", "timestamp": "2026-12-03T10:00:00Z",
         "model": "m", "metadata": "not an object"},
        {"v": 1, "id": "01JD3Z6X0M0000000000000002", "model": "m"},
        {"v": 1, "timestamp": "2026-12-03T10:00:02Z", "model": "m"},
    ]
    (log_dir / "2026-12-03.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    result = run("export", "otlp", "--endpoint", receiver.url, "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["sent"] == 1 and summary["malformed"] == 2
    (span,) = receiver.spans
    assert span.trace_id == ulid_hex("01JD3Z6X0M0000000000000002")
