"""`promptlab logs show` and `promptlab trace`."""

from __future__ import annotations

import json
import re
from pathlib import Path

from .conftest import Sample, run


def test_show_prints_the_whole_entry_with_its_scores_and_feedback(sample: Sample) -> None:
    e = sample.e["review_v1"]
    out = run("logs", "show", e["id"]).stdout
    assert out.splitlines()[:8] == [
        f"id         {e['id']}",
        "time       2026-01-05 01:00:00.000000 UTC",
        "kind       llm · ok",
        "model      gpt-4o (openai)",
        "prompt     code-review@v1",
        "tokens     1,000 in · 200 out",
        "latency    120 ms",
        "cost       $0.004500",
    ]
    assert "tags       prod" in out
    assert "── system ──\nYou are a helpful assistant." in out
    assert "── user ──\nReview this function: def total(xs): return sum(xs[1:])" in out
    assert "── response ──\nFound an off-by-one error" in out
    fb = sample.e["feedback"]
    assert "── scores ──\n" in out
    assert f"  finds_bug  false    (feedback {fb['id']})" in out
    assert f"  helpful    true     (feedback {fb['id']})" in out
    assert f"  2026-01-06 01:06:40  {fb['id']}  finds_bug=false helpful=true  “missed it”" in out


def test_show_json(sample: Sample) -> None:
    e, fb = sample.e["review_v1"], sample.e["feedback"]
    data = json.loads(run("logs", "show", e["id"], "--json").stdout)
    assert data["entry"] == e
    assert data["feedback"] == [fb]
    assert data["scores"] == [
        {"name": "finds_bug", "value": False, "source": "feedback", "feedback_id": fb["id"]},
        {"name": "helpful", "value": True, "source": "feedback", "feedback_id": fb["id"]},
    ]
    assert data["trace"] is None


def test_show_accepts_a_unique_prefix_and_lower_case(sample: Sample) -> None:
    e = sample.e["summary"]
    assert json.loads(run("logs", "show", e["id"][:20].lower(), "--json").stdout)["entry"] == e


def test_show_messages_and_trace_position(sample: Sample) -> None:
    chat = run("logs", "show", sample.e["chat"]["id"]).stdout
    assert "── system ──\nAnswer in French.\n\n── user ──\nHow do I reset my password?" in chat
    assert "── assistant ──\nCliquez sur « mot de passe oublié »." in chat
    call = sample.e["call_in_trace"]
    out = run("logs", "show", call["id"]).stdout
    assert (f"trace      {call['trace_id']}  answer-question › retrieve › gpt-4o  (depth 2, "
            "0 children; trace has 2 spans, 1 LLM call)") in out
    position = json.loads(run("logs", "show", call["id"], "--json").stdout)["trace"]
    assert position["path"] == ["answer-question", "retrieve", "gpt-4o"]


def test_show_unknown_or_ambiguous_ids(sample: Sample) -> None:
    result = run("logs", "show", "01ZZZZZZZZZZZZZZZZZZZZZZZZ", ok=False)
    assert result.exit_code == 2
    assert result.stderr == (f"Error: no entry '01ZZZZZZZZZZZZZZZZZZZZZZZZ' in the log index of "
                             f"{sample.log_dir}; list recent ones with `promptlab logs`\n")
    result = run("logs", "show", "01K", ok=False)  # too short to be a prefix
    assert (result.exit_code, result.stderr) == (2, "Error: entry id prefix '01K' is too short: "
                                                 "give at least 4 characters of the id\n")
    result = run("logs", "show", "01ke", ok=False)  # every entry: lists the first few
    assert result.exit_code == 2
    assert result.stderr.startswith("Error: entry id prefix '01ke' is ambiguous: it matches ")
    assert result.stderr.count("01KE") == 5 and "and more; give more characters" in result.stderr
    prefix = "01KE8000000000000000"  # both spans of the trace
    result = run("logs", "show", prefix, ok=False)
    assert result.stderr == (
        f"Error: entry id prefix '{prefix}' is ambiguous: it matches 01KE8000000000000000000001 "
        "(2026-01-06 00:59:59); 01KE8000000000000000000002 (2026-01-06 01:00:00); give more "
        "characters\n")
    result = run("logs", "show", "'; DROP TABLE entries", ok=False)
    assert result.stderr.startswith("Error: \"'; DROP TABLE entries\" is not an entry id")
    result = run("logs", "show", "x" * 300, ok=False)
    assert (result.exit_code, len(result.stderr.splitlines())) == (2, 1)


def test_unique_prefixes_resolve_like_git_short_hashes(sample: Sample) -> None:
    summary = sample.e["summary"]["id"]
    # ULIDs of one day share their first characters: find the shortest unique prefix.
    ids = [e["id"] for e in sample.e.values()]
    n = next(n for n in range(4, 27)
             if sum(i.startswith(summary[:n]) for i in ids) == 1)
    shown = json.loads(run("logs", "show", summary[:n].lower(), "--json").stdout)
    assert shown["entry"]["id"] == summary
    trace = sample.e["span_root"]["trace_id"]
    assert json.loads(run("trace", trace[:24], "--json").stdout)["trace_id"] == trace
    result = run("trace", trace[:3], ok=False)
    assert "too short: give at least 4 characters" in result.stderr


def test_trace_tree(sample: Sample) -> None:
    root = sample.e["span_root"]["id"]
    out = run("trace", root).stdout.splitlines()
    assert out[0] == (f"trace {root} · answer-question · 2.50 s · 2 spans · 1 LLM call · "
                      "700→90 tokens · $0.0020")
    assert out[2].split() == ["answer-question", "2.50", "s", "+0", "ms"]
    assert out[3].split()[:5] == ["└──", "retrieve", "1.50", "s", "+1.00"]
    assert out[4].split() == ["└──", "llm", "gpt-4o", "120", "ms", "+2.00", "s",
                              "700→90", "tokens", "$0.0020"]
    assert out[4].startswith("    └── llm gpt-4o")


def test_trace_from_any_entry_of_it_and_as_json(sample: Sample) -> None:
    root = sample.e["span_root"]["id"]
    data = json.loads(run("trace", sample.e["call_in_trace"]["id"], "--json").stdout)
    assert data["trace_id"] == root
    assert (data["spans"], data["llm_calls"], data["input_tokens"]) == (2, 1, 700)
    (tree,) = data["tree"]
    assert tree["name"] == "answer-question"
    assert tree["children"][0]["name"] == "retrieve"
    call = tree["children"][0]["children"][0]
    assert (call["kind"], call["model"], call["offset_ms"]) == ("llm", "gpt-4o", 2000.0)


def test_trace_list_and_unknown_trace(sample: Sample) -> None:
    out = run("trace").stdout.splitlines()
    assert out[0].split() == ["time", "(UTC)", "trace", "name", "duration", "spans", "calls",
                              "tokens", "cost", "errors"]
    assert sample.e["span_root"]["id"] in out[2]
    assert "answer-question" in out[2]
    result = run("trace", "nope", ok=False)
    assert result.exit_code == 2
    assert result.stderr == (f"Error: no trace 'nope' in the log index of {sample.log_dir}; "
                             "list recent traces with `promptlab trace`\n")
    result = run("trace", sample.e["summary"]["id"], ok=False)
    assert result.stderr == f"Error: entry {sample.e['summary']['id']} is not part of a trace\n"


def test_trace_written_by_the_logger(log_dir: Path) -> None:
    from promptlab.logs.logger import Logger

    logger = Logger(log_dir)
    with logger.trace("handle-request") as root:
        with logger.span("retrieve"):
            pass
        with logger.span("answer"):
            call = logger.log(model="gpt-4o", user_message="hi", assistant_response="hello",
                              input_tokens=5, output_tokens=2)
    logger.close()
    out = run("trace", root.id).stdout.splitlines()
    labels = [re.match(r"^(.*?)\s{2,}[\d+]", line).group(1) for line in out[2:]]
    assert labels == ["handle-request", "├── retrieve", "└── answer", "    └── llm gpt-4o"]
    assert run("logs", "show", call["id"]).stdout.count("handle-request › answer › gpt-4o") == 1


def test_show_last_is_the_newest_llm_call(sample: Sample, log_dir: Path) -> None:
    newest = max((e for e in sample.e.values() if e.get("kind", "llm") == "llm"),
                 key=lambda e: e["id"])
    data = json.loads(run("logs", "show", "last", "--json").stdout)
    assert data["entry"]["id"] == newest["id"]
    assert json.loads(run("logs", "show", "LATEST", "--json").stdout)["entry"]["id"] == newest["id"]


def test_show_last_with_no_calls(log_dir: Path) -> None:
    log_dir.mkdir(parents=True, exist_ok=True)
    (log_dir / "2026-01-01.jsonl").write_text("")
    result = run("logs", "show", "last", ok=False)
    assert result.exit_code == 2
    assert "no LLM calls in the log index" in result.stderr
