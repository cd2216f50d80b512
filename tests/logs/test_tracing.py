"""Traces and spans: nesting, LLM calls as children, errors, threads and asyncio tasks."""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from pathlib import Path

import pytest

from promptlab import Logger, span, trace, traced
from promptlab.logs.reader import read_entries
from promptlab.logs.tracing import current_span, propagate


def by_name(log_dir: Path) -> dict[str, dict]:
    return {e.get("name") or e.get("user_message"): e for e in read_entries(log_dir)}


def test_nested_spans_and_calls_form_one_tree(tmp_path: Path) -> None:
    logger = Logger(tmp_path)
    with logger.trace("answer-user-question", metadata={"user": "u1"}) as root:
        with logger.span("retrieve-context") as retrieve:
            retrieve.set(tags=["search"])
        with logger.call("what is 2+2?", model="gpt-4o-mini") as call:
            call.finish(response="4", input_tokens=12, output_tokens=1)
        logger.log(model="gpt-4o-mini", user_message="direct log inside the trace")
    entries = by_name(tmp_path)
    top, child = entries["answer-user-question"], entries["retrieve-context"]
    llm, direct = entries["what is 2+2?"], entries["direct log inside the trace"]
    assert top["kind"] == "span" and top["trace_id"] == top["id"] == top["span_id"] == root.id
    assert "parent_id" not in top and top["metadata"] == {"user": "u1"}
    assert child["parent_id"] == top["id"] and child["trace_id"] == top["id"]
    assert child["tags"] == ["search"] and child["status"] == "ok"
    for e in (llm, direct):
        assert e["kind"] == "llm" and e["trace_id"] == top["id"] and e["parent_id"] == top["id"]
        assert e["span_id"] == e["id"]
    # a span's timestamp is its start and latency its duration: children fit inside
    assert top["timestamp"] <= child["timestamp"] and top["latency_ms"] >= child["latency_ms"]
    assert current_span() is None


def test_a_failing_span_is_logged_as_an_error_and_reraises(tmp_path: Path) -> None:
    logger = Logger(tmp_path)
    with pytest.raises(KeyError), logger.trace("outer"), logger.span("lookup"):
        raise KeyError("missing-doc")
    entries = by_name(tmp_path)
    assert entries["lookup"]["status"] == "error"
    assert entries["lookup"]["error"] == "KeyError: 'missing-doc'"
    assert entries["outer"]["status"] == "error"


def test_traced_decorator_sync_and_async(log_dir: Path) -> None:
    @traced
    def retrieve(q: str) -> str:
        return q.upper()

    @traced(name="rerank", tags=["search"])
    async def rerank(docs: list[str]) -> list[str]:
        await asyncio.sleep(0)
        return sorted(docs)

    with trace("request") as root:
        assert retrieve("x") == "X"
        assert asyncio.run(rerank(["b", "a"])) == ["a", "b"]
    entries = by_name(log_dir)
    name = "test_traced_decorator_sync_and_async.<locals>.retrieve"
    assert entries[name]["parent_id"] == root.id
    assert entries["rerank"]["parent_id"] == root.id and entries["rerank"]["tags"] == ["search"]
    assert retrieve.__name__ == "retrieve"


def test_concurrent_asyncio_tasks_keep_their_own_spans(tmp_path: Path) -> None:
    logger = Logger(tmp_path)

    async def handle(n: int) -> None:
        with logger.span(f"task-{n}"):
            await asyncio.sleep(0.01 * (3 - n))
            with logger.span(f"inner-{n}"):
                await asyncio.sleep(0)
                logger.log(model="m", user_message=f"call-{n}")

    async def main() -> None:
        with logger.trace("batch"):
            await asyncio.gather(*(handle(n) for n in range(3)))

    asyncio.run(main())
    entries = by_name(tmp_path)
    for n in range(3):
        task, inner, call = entries[f"task-{n}"], entries[f"inner-{n}"], entries[f"call-{n}"]
        assert task["parent_id"] == entries["batch"]["id"]
        assert inner["parent_id"] == task["id"]
        assert call["parent_id"] == inner["id"]


def test_threads_follow_the_span_when_propagated(tmp_path: Path) -> None:
    logger = Logger(tmp_path)

    def work(n: int) -> None:
        with logger.span(f"work-{n}"):
            logger.log(model="m", user_message=f"call-{n}")

    with logger.trace("fan-out") as root, concurrent.futures.ThreadPoolExecutor(4) as pool:
        list(pool.map(propagate(work), range(4)))
        t = threading.Thread(target=work, args=(99,))  # not propagated: a trace of its own
        t.start()
        t.join()
        explicit = threading.Thread(target=lambda: logger.span("explicit", parent=root)
                                    .__enter__().end())
        explicit.start()
        explicit.join()
    entries = by_name(tmp_path)
    for n in range(4):
        assert entries[f"work-{n}"]["parent_id"] == root.id
        assert entries[f"call-{n}"]["parent_id"] == entries[f"work-{n}"]["id"]
    assert "parent_id" not in entries["work-99"]
    assert entries["work-99"]["trace_id"] == entries["work-99"]["id"] != root.id
    assert entries["explicit"]["parent_id"] == root.id


def test_trace_inside_a_trace_starts_a_new_one(tmp_path: Path) -> None:
    logger = Logger(tmp_path)
    with logger.trace("first") as first, logger.trace("second") as second:
        pass
    assert second.trace_id != first.trace_id and second.parent_id is None
    assert span("x").name == "x"
