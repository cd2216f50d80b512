"""`promptlab logs show` and `promptlab trace`."""

from __future__ import annotations

import json
import re
import subprocess
import sys
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


def _span_line(trace: str, span: str, parent: str | None, ts: str, name: str) -> str:
    entry = {"v": 1, "id": span, "kind": "span", "timestamp": ts, "name": name,
             "trace_id": trace, "span_id": span, "latency_ms": 10.0}
    if parent:
        entry["parent_id"] = parent
    return json.dumps(entry)


def test_a_trace_thousands_of_spans_deep(log_dir: Path) -> None:
    """A recursive agent: 1,500 nested spans and a call at the bottom. Nothing recurses:
    the tree, its JSON and `logs show` work; the views nest 100 levels and list the deeper
    spans under level 100 with their depth (and, in JSON, their parent)."""
    from promptlab.index.trace import MAX_NESTING

    log_dir.mkdir(parents=True)
    trace = "01TRACE0000000000000000000"
    lines = [_span_line(trace, f"S{i:05d}", f"S{i - 1:05d}" if i else None,
                        f"2026-01-05T00:00:{i // 100:02d}.{i % 100:02d}0000Z", f"step{i}")
             for i in range(1500)]
    call = {"v": 1, "id": "01CALL00000000000000000000", "timestamp": "2026-01-05T00:01:00Z",
            "model": "gpt-4o", "input_tokens": 3, "output_tokens": 1, "trace_id": trace,
            "span_id": "01CALL00000000000000000000", "parent_id": "S01499"}
    (log_dir / "2026-01-05.jsonl").write_text("\n".join([*lines, json.dumps(call)]) + "\n")
    out = run("trace", trace).stdout.splitlines()
    assert out[0].startswith(f"trace {trace} · step0 · ") and "1,500 spans · 1 LLM call" in out[0]
    assert len(out) == 2 + 1501
    assert out[2].startswith("step0 ") and out[3].startswith("└── step1 ")
    assert out[2 + MAX_NESTING].startswith("    " * (MAX_NESTING - 1) + "└── step100 ")
    assert out[2 + MAX_NESTING + 1].startswith(
        "    " * (MAX_NESTING - 1) + "└── [depth 101] step101 ")
    assert "[depth 1500] llm gpt-4o" in out[-1]
    data = json.loads(run("trace", trace, "--json").stdout)
    node, depth = data["tree"][0], 0
    while depth < MAX_NESTING:
        (node,) = node["children"]
        depth += 1
    assert node["name"] == "step100" and "depth" not in node
    flat = node["children"]
    assert [n["depth"] for n in flat] == list(range(101, 1501))
    assert flat[0]["parent_id"] == "S00100" and flat[-1]["parent_id"] == "S01499"
    assert all(n["children"] == [] for n in flat)
    shown = json.loads(run("logs", "show", call["id"], "--json").stdout)["trace"]
    assert shown["depth"] == 1500 and shown["path"][:2] == ["step0", "step1"]
    assert shown["path"][-1] == "gpt-4o" and shown["trace_spans"] == 1500


def test_a_loop_of_parents_is_shown_once_at_the_top(log_dir: Path) -> None:
    """Spans from elsewhere can name any parent: A ← B ← A, and C its own parent. Each is
    shown once, the earliest of a loop at the top level, marked; the trace is listed."""
    log_dir.mkdir(parents=True)
    trace = "01LOOP00000000000000000000"
    lines = [_span_line(trace, "A", "B", "2026-01-05T00:00:01Z", "a"),
             _span_line(trace, "B", "A", "2026-01-05T00:00:02Z", "b"),
             _span_line(trace, "K", "B", "2026-01-05T00:00:03Z", "under-b"),
             _span_line(trace, "C", "C", "2026-01-05T00:00:04Z", "c")]
    (log_dir / "2026-01-05.jsonl").write_text("\n".join(lines) + "\n")
    out = run("trace", trace).stdout.splitlines()
    labels = [re.match(r"^(.*?)\s{2,}[\d+]", line).group(1) for line in out[2:]]
    assert labels == ["a  (its parents lead back to it)", "└── b", "    └── under-b",
                      "c  (its parents lead back to it)"]
    data = json.loads(run("trace", trace, "--json").stdout)
    assert [(n["name"], n.get("loop")) for n in data["tree"]] == [("a", True), ("c", True)]
    assert data["spans"] == 4
    assert json.loads(run("logs", "show", "K", "--json").stdout)["trace"]["path"] == [
        "a", "b", "under-b"]
    (listed,) = json.loads(run("trace", "--json").stdout)
    assert (listed["trace_id"], listed["root"], listed["name"], listed["spans"]) == (
        trace, False, None, 4)


def test_traces_without_a_root_span_are_listed_by_their_start(log_dir: Path) -> None:
    """A crashed request writes its inner spans, never its root: its trace is listed (by
    its first entry, marked as having no root span) among complete ones, newest first,
    and --since/--until/-n select by start."""
    from promptlab.logs.logger import Logger

    log_dir.mkdir(parents=True)
    lines = []
    for day, (trace, complete) in enumerate([("T1", True), ("T2", False), ("T3", True),
                                             ("T4", False)], start=1):
        ts = f"2026-01-0{day}T10:00:00Z"
        if complete:
            lines.append(_span_line(trace, f"{trace}root", None, ts, f"request-{trace}"))
        lines.append(_span_line(trace, f"{trace}step", f"{trace}root",
                                f"2026-01-0{day}T10:00:01Z", "step"))
    (log_dir / "2026-01-01.jsonl").write_text("\n".join(lines) + "\n")
    listed = json.loads(run("trace", "--json").stdout)
    assert [(t["trace_id"], t["root"], t["name"], t["spans"]) for t in listed] == [
        ("T4", False, None, 1), ("T3", True, "request-T3", 2), ("T2", False, None, 1),
        ("T1", True, "request-T1", 2)]
    assert listed[0]["timestamp"] == "2026-01-04T10:00:01Z"
    out = run("trace").stdout.splitlines()
    assert "(no root span)" in out[2] and "T4" in out[2] and "request-T3" in out[3]
    pick = json.loads(run("trace", "-n", "2", "--since", "2026-01-02", "--until", "2026-01-03",
                          "--json").stdout)
    assert [t["trace_id"] for t in pick] == ["T3", "T2"]
    assert [t["trace_id"] for t in json.loads(run("trace", "-n", "1", "--json").stdout)] == ["T4"]
    assert [t["trace_id"] for t in json.loads(run("trace", "-n", "0", "--json").stdout)] == [
        "T4", "T3", "T2", "T1"]
    # The logger's own spans: a trace that finished, then a process that died inside one
    # (its inner span and call are written when they end, its root never is).
    logger = Logger(log_dir)
    with logger.trace("finished"):
        pass
    logger.close()
    assert json.loads(run("trace", "-n", "1", "--json").stdout)[0]["name"] == "finished"
    script = ("import os, sys\nfrom promptlab import Logger\nlogger = Logger(sys.argv[1])\n"
              "with logger.trace('crashes'):\n    with logger.span('step1'):\n"
              "        logger.log(model='gpt-4o', input_tokens=100, output_tokens=100)\n"
              "    os._exit(1)\n")
    done = subprocess.run([sys.executable, "-c", script, str(log_dir)], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 1, done.stderr
    (crashed,) = json.loads(run("trace", "-n", "1", "--json").stdout)
    assert (crashed["root"], crashed["name"], crashed["spans"], crashed["llm_calls"]) == (
        False, None, 1, 1)


def test_show_offers_only_json_and_trace_refuses_table_options(sample: Sample) -> None:
    entry_id = sample.e["review_v1"]["id"]
    help_text = run("logs", "show", "--help").stdout
    assert "--json" in help_text
    assert not any(opt in help_text for opt in ("--csv", "--fmt", "--nl"))
    for option in (["--csv"], ["--fmt", "html"], ["--nl"]):
        result = run("logs", "show", entry_id, *option, ok=False)
        assert result.exit_code == 2 and f"No such option '{option[0]}'" in result.stderr
        assert result.stdout == ""
    trace_id = sample.e["span_root"]["id"]
    for option in (["--csv"], ["--fmt", "html"]):
        result = run("trace", trace_id, *option, ok=False)
        assert result.exit_code == 2 and result.stdout == ""
        assert result.stderr == ("Error: --csv and --fmt format the list of traces (no "
                                 "TRACE_ID); one trace is shown as a tree, or as JSON with "
                                 "--json\n")
    assert run("trace", "--csv").stdout.startswith("time (UTC),trace,")  # the list: a table
