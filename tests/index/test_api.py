"""The Python API: promptlab.query and Index, for notebooks."""

from __future__ import annotations

import pytest

import promptlab
from promptlab.errors import UsageError

from .conftest import Sample


def test_query_returns_entry_dicts_newest_first(sample: Sample) -> None:
    found = promptlab.query(prompt="code-review", version="v2", log_dir=sample.log_dir)
    assert found == [sample.e["error"], sample.e["review_v2"]]
    assert promptlab.query("division", log_dir=sample.log_dir) == [sample.e["review_v2"]]
    assert promptlab.query("function", sort="recent", log_dir=sample.log_dir) == [
        sample.e["review_v2"], sample.e["review_v1"]]
    assert promptlab.query(since="2026-01-06", kind="span", log_dir=sample.log_dir) == [
        sample.e["span_child"], sample.e["span_root"]]


def test_query_uses_the_default_log_dir(sample: Sample) -> None:
    assert promptlab.query(limit=1) == [sample.e["call_in_trace"]]


def test_index_object(sample: Sample) -> None:
    with promptlab.Index(sample.log_dir) as index:
        assert index.get(sample.e["summary"]["id"][:12]) == sample.e["summary"]
        assert [h.entry["id"] for h in index.search("function", field="response")] == []
        hits = index.search("password", limit=5)
        assert [h.entry["id"] for h in hits] == [sample.e["chat"]["id"]]
        assert "**password**" in hits[0].snippet
        (root,) = index.trace(sample.e["span_root"]["id"])
        assert [c.name for c in root.children] == ["retrieve"]
        report = index.costs(by="model", prices=sample.prices)
        assert {r.group["model"] for r in report.rows} >= {"gpt-4o", "house-model"}
        rows = index.conn.execute("SELECT count(*) FROM entries WHERE kind = 'llm'").fetchone()
        assert rows == (6,)


def test_unknown_filter_is_refused(sample: Sample) -> None:
    with pytest.raises(UsageError, match="unknown filter 'colour'"):
        promptlab.query(colour="red", log_dir=sample.log_dir)


def test_a_missing_log_folder_is_refused_not_created(tmp_path) -> None:
    """`query(log_dir=...)` with a mistyped folder used to create it (and an empty index)
    and answer []: now it names the folder, and nothing is created."""
    from promptlab.errors import LogIndexError, MissingLogDirError
    from promptlab.index import Index

    typo = tmp_path / "llm-lgos"
    with pytest.raises(MissingLogDirError, match=f"log folder {typo} does not exist"):
        promptlab.query("refund", log_dir=typo)
    with pytest.raises(LogIndexError), Index(typo) as index:
        index.sync()
    assert not typo.exists()
    afile = tmp_path / "calls.jsonl"
    afile.write_text("")
    with pytest.raises(MissingLogDirError, match="is not a folder"):
        promptlab.query(log_dir=afile)
