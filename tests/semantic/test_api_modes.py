"""Search by meaning through the index's own API: `Index.search(mode=…)` and `query(mode=…)`
give the same ranking as `semantic_search`, with the index's filters, and the index keeps
working afterwards (its connection is closed while the vectors are read, then reopened)."""

from __future__ import annotations

from pathlib import Path

import pytest

from promptlab import query
from promptlab.errors import UsageError
from promptlab.index.core import Index
from promptlab.index.query import Filters
from promptlab.semantic import embed_log, semantic_search

from .conftest import SUPPORT, write


def test_index_search_by_meaning_matches_semantic_search(log_dir: Path, model) -> None:
    write(log_dir, SUPPORT)
    embed_log(log_dir=log_dir, embedder=model)
    direct = semantic_search("customer wants a reimbursement", log_dir=log_dir,
                             embedder=model, limit=3)
    with Index(log_dir) as index:
        hits = index.search("customer wants a reimbursement", mode="semantic",
                            embedder=model, limit=3)
        assert [h.entry["id"] for h in hits] == [h.entry["id"] for h in direct]
        assert hits[0].entry["user_message"] == "I'd like a refund for my order"
        assert hits[0].distance == pytest.approx(direct.hits[0].distance)
        assert hits[0].score == pytest.approx(1 - hits[0].distance, abs=1e-5)
        assert hits[0].rank is None  # no full-text rank in semantic mode
        # the index's own connection works again after the vector search
        assert len(index.entries(limit=None)) == len(SUPPORT)
        assert index.search("refund")[0].entry["user_message"] == \
            "I'd like a refund for my order"


def test_filters_apply_in_every_mode(log_dir: Path, model) -> None:
    write(log_dir, SUPPORT)
    embed_log(log_dir=log_dir, embedder=model)
    with Index(log_dir) as index:
        only_v2 = index.search("money back", mode="semantic", embedder=model,
                               prompt="support", version="v2")
        assert [h.entry["user_message"] for h in only_v2] == ["How do I reset my password?"]
        failed = index.search("parcel", Filters(status="error"), mode="hybrid",
                              embedder=model)
        assert [h.entry["user_message"] for h in failed] == ["My parcel never arrived"]
        assert failed[0].rank is not None  # full text found it too: its bm25 rank
        tagged = index.search("refund", Filters(tags=("nope",)), mode="semantic",
                              embedder=model, tag="prod")
        assert [h.entry["user_message"] for h in tagged] == ["I'd like a refund for my order"]


def test_query_takes_a_mode(log_dir: Path, model) -> None:
    write(log_dir, SUPPORT)
    embed_log(log_dir=log_dir, embedder=model)
    entries = query("a poem about fall", log_dir=log_dir, mode="semantic", embedder=model,
                    limit=1)
    assert entries[0]["user_message"] == "Write a haiku about autumn leaves"
    assert query("haiku", log_dir=log_dir)[0]["prompt_id"] == "poet"  # full text by default


def test_an_unknown_mode_is_a_usage_error(log_dir: Path) -> None:
    write(log_dir, SUPPORT[:1])
    with Index(log_dir) as index, pytest.raises(UsageError, match="search mode 'vector'"):
        index.search("refund", mode="vector")


def test_api_mistakes_are_usage_errors_before_any_work(log_dir: Path, model) -> None:
    """A limit that is not a whole number of 0 or more, a search text that is not a
    string, a batch below 1: one UsageError naming the value (a float limit reached
    SQLite as "datatype mismatch", a negative one gave nothing, batch=0 embedded nothing
    without a word and batch=-1 everything in one batch)."""
    from promptlab.semantic import similar

    write(log_dir, SUPPORT)
    for limit in (-1, 2.5, "3", True):
        with pytest.raises(UsageError, match=f"limit {limit!r}: expected a whole number"):
            semantic_search("refund", log_dir=log_dir, embedder=model, limit=limit)
        with pytest.raises(UsageError, match=f"limit {limit!r}: expected a whole number"):
            similar("last", log_dir=log_dir, embedder=model, limit=limit)
    with pytest.raises(UsageError, match="must be a string, not int"):
        semantic_search(5, log_dir=log_dir, embedder=model)  # type: ignore[arg-type]
    for batch in (0, -1, 1.5):
        with pytest.raises(UsageError, match=f"batch {batch!r}: expected a whole number"):
            embed_log(log_dir=log_dir, embedder=model, batch=batch)  # type: ignore[arg-type]
    assert embed_log(log_dir=log_dir, embedder=model, batch=2).embedded == 5


def test_a_limit_or_window_of_the_wrong_kind_is_named(log_dir: Path, model) -> None:
    """`Index.search(limit="5")` was a TypeError from a comparison, an unknown `fts_match`
    was taken as "any" without a word."""
    write(log_dir, SUPPORT)
    with Index(log_dir) as index, pytest.raises(UsageError, match="limit '5': expected"):
        index.search("refund", limit="5")  # type: ignore[arg-type]
    with pytest.raises(UsageError, match="window 2.5: expected a whole number"):
        query("refund", log_dir=log_dir, window=2.5)  # type: ignore[arg-type]
    with pytest.raises(UsageError, match="fts_match 'some': expected 'all'"):
        semantic_search("refund", log_dir=log_dir, embedder=model, mode="hybrid",
                        fts_match="some")


def test_the_cli_and_the_api_embed_in_batches_of_the_same_size() -> None:
    """The CLI keeps its own copy of the default batch (it starts without importing the
    embedding code): the two must not drift apart."""
    import inspect

    from promptlab.cli import semantic as cli
    from promptlab.semantic.embed import EMBED_BATCH, embed_pending

    assert cli.EMBED_BATCH == EMBED_BATCH
    assert inspect.signature(embed_log).parameters["batch"].default == EMBED_BATCH
    assert inspect.signature(embed_pending).parameters["batch"].default == EMBED_BATCH
