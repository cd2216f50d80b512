"""Embedding the log into the index: incremental, resumable, one model at a time, kept
right across reindex and deleted files; filters; the coarse-then-exact plan."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from promptlab.errors import EmbeddingError, UsageError
from promptlab.index.core import Index
from promptlab.index.vectors import VectorStore
from promptlab.semantic import FunctionEmbedder, embed_log, entry_text, semantic_search, similar

from .conftest import SUPPORT, write


def _users(results) -> list[str]:
    return [h.entry["user_message"] for h in results]


def test_embed_is_incremental_and_search_ranks_by_meaning(log_dir: Path, model) -> None:
    write(log_dir, SUPPORT)
    first = embed_log(log_dir=log_dir, embedder=model)
    assert (first.embedded, first.pending) == (5, 0)
    again = embed_log(log_dir=log_dir, embedder=model)
    assert again.embedded == 0
    write(log_dir, [{"user_message": "Can I get my money back?", "assistant_response": "Yes."}])
    assert embed_log(log_dir=log_dir, embedder=model).embedded == 1

    hits = semantic_search("customer wants a reimbursement", log_dir=log_dir, embedder=model,
                           limit=3)
    assert _users(hits)[:2] == ["Can I get my money back?", "I'd like a refund for my order"] \
        or _users(hits)[:2] == ["I'd like a refund for my order", "Can I get my money back?"]
    assert hits.hits[0].distance < hits.hits[2].distance
    assert hits.hits[0].score == pytest.approx(1 - hits.hits[0].distance, abs=1e-5)
    assert hits.vectors == 6 and hits.missing == 0


def test_limit_then_resume_and_small_backlog_embedded_by_search(log_dir: Path, model) -> None:
    write(log_dir, SUPPORT)
    partial = embed_log(log_dir=log_dir, embedder=model, limit=2)
    assert (partial.embedded, partial.pending) == (2, 3)
    hits = semantic_search("poem about fall", log_dir=log_dir, embedder=model, limit=1)
    assert hits.embedded_now == 3 and hits.missing == 0
    assert _users(hits) == ["Write a haiku about autumn leaves"]


def test_large_backlog_is_reported_not_embedded(log_dir: Path, model) -> None:
    write(log_dir, SUPPORT)
    embed_log(log_dir=log_dir, embedder=model, limit=1)
    hits = semantic_search("poem about fall", log_dir=log_dir, embedder=model, auto_embed=2)
    assert hits.embedded_now == 0 and hits.missing == 4 and len(hits) == 1


def test_nothing_embedded_and_big_backlog_is_an_error(log_dir: Path, model) -> None:
    write(log_dir, SUPPORT)
    with pytest.raises(EmbeddingError, match=r"promptlab logs embed"):
        semantic_search("refund", log_dir=log_dir, embedder=model, auto_embed=2)


def test_mixing_models_is_refused_and_rebuild_replaces(log_dir: Path, model) -> None:
    write(log_dir, SUPPORT[:2])
    embed_log(log_dir=log_dir, embedder=model)
    other = FunctionEmbedder(lambda texts: model.embed(texts)[:, ::-1], model_id="python:rev")
    with pytest.raises(EmbeddingError, match=r"all-MiniLM-L6-v2.*--rebuild"):
        embed_log(log_dir=log_dir, embedder=other)
    with pytest.raises(EmbeddingError, match="--rebuild"):
        semantic_search("refund", log_dir=log_dir, embedder=other)
    stats = embed_log(log_dir=log_dir, embedder=other, rebuild=True)
    assert stats.embedded == 2
    with VectorStore(log_dir / "index.db") as store:
        assert store.model().model == "python:rev"


def test_filters_apply_to_semantic_search(log_dir: Path, model) -> None:
    write(log_dir, SUPPORT)
    embed_log(log_dir=log_dir, embedder=model)
    assert set(_users(semantic_search("help", log_dir=log_dir, embedder=model,
                                      prompt="support"))) == {
        "I'd like a refund for my order", "How do I reset my password?", "My parcel never arrived"}
    assert _users(semantic_search("help", log_dir=log_dir, embedder=model,
                                  prompt="support@v2")) == ["How do I reset my password?"]
    assert _users(semantic_search("help", log_dir=log_dir, embedder=model,
                                  model="claude-*")) == ["Write a haiku about autumn leaves"]
    assert _users(semantic_search("help", log_dir=log_dir, embedder=model,
                                  tag="prod")) == ["I'd like a refund for my order"]
    assert _users(semantic_search("help", log_dir=log_dir, embedder=model,
                                  status="error")) == ["My parcel never arrived"]
    assert semantic_search("help", log_dir=log_dir, embedder=model, since="2000-01-01",
                           until="2000-01-02").hits == []


def test_coarse_then_exact_agrees_with_exact(log_dir: Path, model) -> None:
    write(log_dir, SUPPORT * 4)
    embed_log(log_dir=log_dir, embedder=model)
    vector = model.embed(["a poem about the season when leaves fall"])[0]
    with VectorStore(log_dir / "index.db") as store:
        exact = store.knn(vector, 4)
        coarse = store.knn(vector, 4, exact_max=0, rerank=8)
        filtered = store.knn(vector, 2, "e.prompt_id = ?", ["support"], exact_max=0, rerank=4)
    assert [d for _, d in coarse] == pytest.approx([d for _, d in exact], abs=1e-5)
    assert len(filtered) == 2


def test_coarse_pass_keeps_the_asymmetric_nearest_of_the_hamming_shortlist(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Past EXACT_MAX the sign bits pick the candidates: the SHORTLIST nearest by Hamming
    distance, then the `want` of those with the largest sum of the query's values over
    their set bits. Checked against the same arithmetic done plainly in numpy."""
    import numpy as np

    from promptlab.index import vectors

    rng = np.random.default_rng(7)
    data = rng.normal(size=(3000, 384)).astype(np.float32)
    data /= np.linalg.norm(data, axis=1, keepdims=True)
    query = (data[0] + 0.8 * rng.normal(size=384) / np.sqrt(384)).astype(np.float32)
    query /= np.linalg.norm(query)
    with VectorStore(tmp_path / "index.db", create=True) as store:
        store.start("test-model", 384, "test")
        store.add([(i + 1, f"e{i}") for i in range(len(data))], data)
        vids = store.conn.execute(
            "SELECT vid, entry_rowid FROM vec_items ORDER BY vid").fetchall()
        row_of = {vid: rowid - 1 for vid, rowid in vids}
        signs = data > 0
        hamming = (signs != (query > 0)).sum(axis=1)
        closeness = (signs * query).sum(axis=1)
        monkeypatch.setattr(vectors, "SHORTLIST", 500)
        got = sorted(row_of[v] for v in store._coarse(query, 40))
        shortlist = np.argsort(hamming, kind="stable")[:500]
        best = shortlist[np.argsort(-closeness[shortlist])[:40]]
        # ties in Hamming distance at the cut may be broken either way: compare the scores
        assert sorted(closeness[got]) == pytest.approx(sorted(closeness[best]), abs=1e-4)
        assert 0 in got  # the vector the query was made from
        # with the whole store as the shortlist, the asymmetric stage alone decides
        monkeypatch.setattr(vectors, "SHORTLIST", 10_000)
        everything = sorted(row_of[v] for v in store._coarse(query, 40))
        assert everything == sorted(np.argsort(-closeness)[:40].tolist())


def test_the_hamming_shortlist_cut_keeps_ties_in_position_order() -> None:
    """`_smallest` (a histogram's cut-off instead of argpartition): the same positions as
    a stable sort, for any count, ties at the cut included; also when the sample that
    guesses the cut-off (every 16th distance) is unlike the rest, in either direction."""
    import numpy as np

    from promptlab.index.vectors import SAMPLE, _smallest

    rng = np.random.default_rng(3)
    random = rng.integers(0, 60, size=20_000).astype(np.uint16)
    sampled = np.arange(20_000) % SAMPLE == 0
    near_sample = np.where(sampled, 0, 40).astype(np.uint16)  # the guess keeps too few
    far_sample = np.where(sampled, 90, rng.integers(0, 30, size=20_000)).astype(np.uint16)
    for distance in (random, near_sample, far_sample):
        for count in (1, 777, 5_000, 19_999, 20_000):
            got = _smallest(distance, count)
            assert len(got) == count
            want = np.argsort(distance, kind="stable")[:count]
            assert sorted(got.tolist()) == sorted(want.tolist())


@pytest.mark.parametrize("numpy_count", [True, False], ids=["bitwise_count", "table"])
def test_the_hamming_pass_over_words_counts_every_differing_bit(
        monkeypatch: pytest.MonkeyPatch, numpy_count: bool) -> None:
    """`_hamming_words` (sign bits a word per row, word counts added in groups of three):
    the plain bit count, for widths of one to seven words (a last group of one, two or
    three), any range, steps shorter than the range, and numpy's bitwise_count or the
    table numpy < 2 uses."""
    import numpy as np

    from promptlab.index import vectors

    if not numpy_count:
        monkeypatch.delattr(np, "bitwise_count", raising=False)
    monkeypatch.setattr(vectors, "WORD_STEP", 37)
    rng = np.random.default_rng(4)
    for width in range(1, 8):
        words = rng.integers(0, 2**64, size=(width, 500), dtype=np.uint64)
        words[:, 0] = ~np.uint64(0)  # every bit set: the largest distance (64 per word)
        query = rng.integers(0, 2**64, size=width, dtype=np.uint64)
        query[:] = 0 if width % 2 else query
        bits = np.unpackbits(words.T.copy().view(np.uint8), axis=1)
        plain = (bits != np.unpackbits(query.view(np.uint8))).sum(axis=1)
        distance = np.full(500, 9999, dtype=np.uint16)
        vectors._hamming_words(words, query, distance, 0, 500)
        assert distance.tolist() == plain.tolist()
        part = np.full(500, 9999, dtype=np.uint16)
        vectors._hamming_words(words, query, part, 120, 333)
        assert part[120:333].tolist() == plain[120:333].tolist()
        assert set(part[:120].tolist()) == set(part[333:].tolist()) == {9999}
    assert distance[0] == 64 * 7  # width 7 and a query of zeros: every bit of column 0 differs


def test_similar_excludes_the_entry_itself(log_dir: Path, model) -> None:
    write(log_dir, [*SUPPORT, {"user_message": "Please reimburse my purchase",
                               "assistant_response": "Done, refund issued."}])
    embed_log(log_dir=log_dir, embedder=model)
    hits = similar("last", log_dir=log_dir, embedder=model, limit=2)
    assert _users(hits)[0] == "I'd like a refund for my order"
    assert "Please reimburse my purchase" not in _users(hits)


def test_reindex_renumbers_and_vectors_follow(log_dir: Path, model) -> None:
    write(log_dir, SUPPORT)
    embed_log(log_dir=log_dir, embedder=model)
    # An older day's file: read first by reindex, so every entry gets a new rowid.
    write(log_dir, [{"user_message": "Old question about tea", "assistant_response": "Green.",
                     "timestamp": "2000-01-01T00:00:00Z"}])
    with Index(log_dir) as index:
        index.sync()
        before = index.conn.execute("SELECT rowid FROM entries WHERE prompt_id = 'poet'").fetchone()
        index.reindex()
        after = index.conn.execute("SELECT rowid FROM entries WHERE prompt_id = 'poet'").fetchone()
    assert before != after
    hits = semantic_search("poem about fall", log_dir=log_dir, embedder=model, limit=1,
                           auto_embed=0)
    assert _users(hits) == ["Write a haiku about autumn leaves"] and hits.missing == 1
    assert embed_log(log_dir=log_dir, embedder=model).embedded == 1


def test_deleted_log_file_takes_its_vectors_away(log_dir: Path, model) -> None:
    write(log_dir, SUPPORT)
    embed_log(log_dir=log_dir, embedder=model)
    for name in os.listdir(log_dir):
        if name.endswith(".jsonl"):
            os.unlink(log_dir / name)
    write(log_dir, [{"user_message": "Explain quicksort", "assistant_response": "Pivot."}])
    hits = semantic_search("poem about fall", log_dir=log_dir, embedder=model)
    assert _users(hits) == ["Explain quicksort"]
    with VectorStore(log_dir / "index.db") as store:
        assert store.count() == 1
        vids, _ = store._all_bits()
        assert len(vids) == 1  # the coarse copy lost the deleted ones too
        assert len(store.knn(model.embed(["poem"])[0], 5, exact_max=0)) == 1


def test_what_is_embedded_user_and_response_redacted_and_cut() -> None:
    entry = {"system_prompt": "You are terse.", "user_message": "key sk-proj-" + "a1B2c3D4" * 5 + " " +
             "u" * 2000, "assistant_response": "r" * 2000}
    text = entry_text(entry, 512)
    assert "You are terse" not in text
    assert "[REDACTED]" in text and "a1B2c3D4" not in text
    assert len(text) <= 512 and "rrrr" in text  # the response keeps its share
    assert entry_text({"user_message": "hi", "error": "upstream timeout"}, 512) == \
        "hi\nupstream timeout"
    assert entry_text({"messages": [{"role": "user", "content": "from messages"}]}, 512) == \
        "from messages"
    assert entry_text({"kind": "llm"}, 512) == ""


def test_a_repeated_search_does_not_run_the_model(log_dir: Path, model) -> None:
    write(log_dir, SUPPORT)
    embed_log(log_dir=log_dir, embedder=model)
    calls: list[list[str]] = []

    def counting(texts: list[str]):
        calls.append(texts)
        return model.embed(texts)

    same = FunctionEmbedder(counting, model_id=model.model_id)
    first = semantic_search("poem about fall", log_dir=log_dir, embedder=same, limit=2)
    second = semantic_search("poem about fall", log_dir=log_dir, embedder=same, limit=2)
    assert calls == [["poem about fall"]]
    assert [h.distance for h in first] == [h.distance for h in second]


def test_interrupted_run_keeps_finished_batches(log_dir: Path, model) -> None:
    write(log_dir, SUPPORT * 2)
    batches: list[int] = []

    def interrupting(texts: list[str]):
        batches.append(len(texts))
        if len(batches) == 3:
            raise KeyboardInterrupt
        return model.embed(texts)

    stopped = embed_log(log_dir=log_dir, embedder=FunctionEmbedder(
        interrupting, model_id=model.model_id), batch=3)
    assert stopped.interrupted and (stopped.embedded, stopped.pending) == (6, 4)
    resumed = embed_log(log_dir=log_dir, embedder=model, batch=3)
    assert (resumed.embedded, resumed.pending) == (4, 0)


def test_pipelined_batches_store_each_vector_with_its_entry(log_dir: Path, model) -> None:
    """The model embeds one batch while the next is read: every vector must still land on
    its own entry, in order, with entries without text skipped and the cursor past them."""
    calls = [{"user_message": f"question {i} about {topic}", "assistant_response": "ok"}
             for i, topic in enumerate(["refunds", "shipping", "passwords", "invoices",
                                        "haiku", "weather", "taxes"])]
    empty = {"user_message": "", "assistant_response": ""}
    write(log_dir, [calls[0], empty, empty, calls[1], calls[2], empty, *calls[3:]])
    seen: list[list[str]] = []

    def recording(texts: list[str]):
        seen.append(list(texts))
        return model.embed(texts)

    stats = embed_log(log_dir=log_dir, embedder=FunctionEmbedder(
        recording, model_id=model.model_id), batch=2)
    assert (stats.embedded, stats.skipped, stats.pending) == (7, 3, 0)
    assert [t for batch in seen for t in batch] == [entry_text(c, 512) for c in calls]
    with Index(log_dir) as index:
        rows = index.conn.execute("SELECT rowid, id FROM entries ORDER BY rowid").fetchall()
        path = index.path
    with VectorStore(path) as store:
        stored = [store.vector_of(rowid, entry_id) for rowid, entry_id in rows]
        assert store.count_pending() == 0
    vectors = [v for v in stored if v is not None]
    assert len(vectors) == 7
    expected = [v for batch in seen for v in model.embed(batch)]  # as the batches ran
    for got, want in zip(vectors, expected, strict=True):
        assert float(got @ want) > 0.99999
    assert embed_log(log_dir=log_dir, embedder=model).embedded == 0


def test_embedding_while_a_writer_appends(log_dir: Path, model) -> None:
    import threading

    write(log_dir, SUPPORT * 4)
    stop = threading.Event()

    def writer() -> None:
        from promptlab.logs.logger import Logger

        logger = Logger(log_dir=log_dir)
        n = 0
        while not stop.is_set() and n < 200:
            logger.log(model="gpt-4o", user_message=f"question {n}", assistant_response="ok")
            n += 1
        logger.close()

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        embed_log(log_dir=log_dir, embedder=model, batch=4)
    finally:
        stop.set()
        thread.join()
    embed_log(log_dir=log_dir, embedder=model)
    with Index(log_dir) as index:
        index.sync()
        llm = index.conn.execute("SELECT count(*) FROM entries WHERE kind = 'llm'").fetchone()[0]
    with VectorStore(log_dir / "index.db") as store:
        assert store.count() == llm
        assert store.conn.execute("SELECT count(DISTINCT entry_id) FROM vec_items").fetchone()[0] \
            == llm


def test_since_embeds_only_recent_calls(log_dir: Path, model) -> None:
    write(log_dir, [{"user_message": "old one", "assistant_response": "x",
                     "timestamp": "2020-01-01T00:00:00Z"}, *SUPPORT[:2]])
    recent = embed_log(log_dir=log_dir, embedder=model, since="30d")
    assert (recent.embedded, recent.pending) == (2, 0)
    assert embed_log(log_dir=log_dir, embedder=model).embedded == 1


def _store_with(tmp_path: Path, vectors: Any) -> VectorStore:
    store = VectorStore(tmp_path / "index.db", create=True)
    store.start("test-model", vectors.shape[1], "test")
    store.add([(i + 1, f"e{i}") for i in range(len(vectors))], vectors)
    return store


def _unit(rng: Any, n: int) -> Any:
    import numpy as np

    v = rng.normal(size=(n, 64)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def _snapshots(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.glob("index.db-signs-*"))


def test_the_sign_bits_snapshot_is_written_once_and_mapped(tmp_path: Path) -> None:
    """The first search reads the sign bits from SQLite and writes the snapshot beside
    index.db; the next store maps it (no copy), with the same bits and vids."""
    import numpy as np

    rng = np.random.default_rng(11)
    with _store_with(tmp_path, _unit(rng, 300)) as store:
        bits, vids = store.load_bits()
        assert not isinstance(bits, np.memmap)
        assert len(_snapshots(tmp_path)) == 2  # the bits and the vids, no temp file
    with VectorStore(tmp_path / "index.db", create=True) as store:
        mapped, mapped_vids = store.load_bits()
        assert isinstance(mapped, np.memmap) and isinstance(mapped_vids, np.memmap)
        assert np.array_equal(mapped, bits) and np.array_equal(mapped_vids, vids)
        want, _ = store._all_bits()
        assert np.array_equal(mapped_vids, want)


def test_a_snapshot_of_other_sign_bits_is_never_used(tmp_path: Path) -> None:
    """Any change to the sign bits makes a new generation: new vectors, a rebuild with the
    same number of vectors (the rows alone would match), index.db deleted and built again,
    a change made without the generation (a promptlab from before it: the rows tell). Only
    the current snapshot is kept."""
    import numpy as np

    rng = np.random.default_rng(12)
    query = _unit(rng, 1)[0]
    with _store_with(tmp_path, _unit(rng, 200)) as store:
        store.load_bits()
        before = _snapshots(tmp_path)
        store.add([(1000 + i, f"n{i}") for i in range(5)], _unit(rng, 5))
        bits, vids = store.load_bits()
        assert bits.shape[1] == 205 and not isinstance(bits, np.memmap)
        after = _snapshots(tmp_path)
        assert len(after) == 2 and not set(after) & set(before)
        store.clear()  # `logs embed --rebuild`, then the same number of other vectors
    with _store_with(tmp_path, _unit(rng, 205)) as store:
        assert not isinstance(store.load_bits()[0], np.memmap)
    for name in ("index.db", "index.db-wal", "index.db-shm"):  # deleted, built again
        (tmp_path / name).unlink(missing_ok=True)
    with _store_with(tmp_path, _unit(rng, 205)) as store:
        fresh = store._all_bits()
        got = store.load_bits()
        assert not isinstance(got[0], np.memmap)
        assert np.array_equal(got[0], fresh[1].T) and np.array_equal(got[1], fresh[0])
        # a chunk appended behind the generation's back (an older promptlab)
        last = store.conn.execute("SELECT max(chunk) FROM vec_bitchunks").fetchone()[0]
        store.conn.execute("INSERT INTO vec_bitchunks (chunk, n, vids, bits) VALUES (?, 1, ?, ?)",
                           (last + 1, np.array([999], np.int64).tobytes(),
                            np.zeros(1, np.uint64).tobytes()))
    with VectorStore(tmp_path / "index.db", create=True) as store:
        bits, vids = store.load_bits()
        assert bits.shape[1] == 206 and vids[-1] == 999
        assert store._coarse(query, 5)  # searches the bits it was given


def test_a_damaged_or_planted_snapshot_is_ignored(tmp_path: Path) -> None:
    import numpy as np

    rng = np.random.default_rng(13)
    with _store_with(tmp_path, _unit(rng, 100)) as store:
        bits, _ = store.load_bits()
        bits_path, _ = store._snapshot_paths(store._snapshot_key())
    bits_path.write_bytes(bits_path.read_bytes()[:200])  # truncated
    with VectorStore(tmp_path / "index.db", create=True) as store:
        got = store.load_bits()
        assert not isinstance(got[0], np.memmap) and np.array_equal(got[0], bits)
    # a symbolic link in its place is not followed
    elsewhere = tmp_path / "elsewhere.npy"
    np.save(elsewhere, np.zeros_like(bits))
    bits_path.unlink()
    bits_path.symlink_to(elsewhere)
    with VectorStore(tmp_path / "index.db", create=True) as store:
        got = store.load_bits()
        assert np.array_equal(got[0], bits)
    assert np.array_equal(np.load(elsewhere), np.zeros_like(bits))  # never written through


def test_without_a_writable_folder_the_bits_come_from_sqlite(tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch
                                                            ) -> None:
    import tempfile

    import numpy as np

    rng = np.random.default_rng(14)

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise PermissionError("read-only folder")

    with _store_with(tmp_path, _unit(rng, 50)) as store:
        monkeypatch.setattr(tempfile, "mkstemp", refuse)
        bits, _ = store.load_bits()
        assert bits.shape[1] == 50 and _snapshots(tmp_path) == []


def test_the_hamming_pass_is_kept_for_the_last_query_until_the_bits_change(
        tmp_path: Path) -> None:
    import numpy as np

    rng = np.random.default_rng(15)
    data = _unit(rng, 300)
    query = _unit(rng, 1)[0]
    with _store_with(tmp_path, data) as store:
        distance = store.hamming(query)
        assert store.hamming(query.copy()) is distance  # the same query: not computed again
        _, vids = store.load_bits()
        plain = ((data > 0) != (query > 0)).sum(axis=1)
        assert distance.tolist() == plain[vids - vids.min()].tolist()
        assert store.hamming(-query) is not distance
        store.add([(1000 + i, f"n{i}") for i in range(5)], _unit(rng, 5))
        assert store._hamming is None and len(store.hamming(query)) == 305


def test_a_killed_writers_temporary_files_are_cleared_later(tmp_path: Path) -> None:
    """A search's helper killed while it writes the snapshot leaves a temporary file: the
    next snapshot written removes it once it is ten minutes old (never one still being
    written)."""
    import time

    import numpy as np

    rng = np.random.default_rng(16)
    with _store_with(tmp_path, _unit(rng, 40)) as store:
        old = tmp_path / "index.db-signs-x-40-1-1.npy.abc123.tmp"
        fresh = tmp_path / "index.db-signs-x-40-1-1.npy.def456.tmp"
        for path in (old, fresh):
            path.write_bytes(b"half a file")
        an_hour_ago = time.time() - 3600
        os.utime(old, (an_hour_ago, an_hour_ago))
        store.load_bits()
        assert not old.exists() and fresh.exists()
        assert len(_snapshots(tmp_path)) == 3  # the snapshot's two files and the fresh one


def test_logs_embed_leaves_the_snapshot_for_the_searches(log_dir: Path, model,
                                                         monkeypatch: pytest.MonkeyPatch
                                                         ) -> None:
    """Past the size searched exactly, `logs embed` writes the sign bits' snapshot when it
    is done, so that the next search maps it at once."""
    import numpy as np

    from promptlab.index import vectors

    monkeypatch.setattr(vectors, "EXACT_MAX", 2)
    write(log_dir, SUPPORT)
    embed_log(log_dir=log_dir, embedder=model)
    assert len(_snapshots(log_dir)) == 2
    with VectorStore(log_dir / "index.db") as store:
        assert isinstance(store.load_bits()[0], np.memmap)


def test_long_answers_stay_within_sqlites_parameter_limit(
        tmp_path: Path, log_dir: Path, model, monkeypatch: pytest.MonkeyPatch) -> None:
    """`-n 3000` past EXACT_MAX listed 45,000 candidates in one statement ("too many SQL
    variables"): they go in chunks, under the 999 host parameters of SQLite before 3.32.
    And a `k` beyond any index (`-n 99999999999999999999`) is no overflow."""
    import apsw
    import numpy as np

    from promptlab.index import vectors

    rng = np.random.default_rng(3)
    data = rng.normal(size=(1200, 384)).astype(np.float32)
    data /= np.linalg.norm(data, axis=1, keepdims=True)
    many = tmp_path / "many"
    write(many, [{"user_message": f"question {i}"} for i in range(len(data))])
    with Index(many) as index:
        index.sync()
        rows = index.conn.execute("SELECT rowid, id FROM entries ORDER BY rowid").fetchall()
    with VectorStore(many / "index.db") as store:
        store.conn.limit(apsw.SQLITE_LIMIT_VARIABLE_NUMBER, 999)
        store.start("test-model", 384, "test")
        store.add(rows, data)
        exact = store.knn(data[0], 1100)
        coarse = store.knn(data[0], 1100, exact_max=0)
        everything = store.knn(data[0], 10**20, exact_max=0)
    assert len(exact) == len(coarse) == 1100 and len(everything) == 1200
    assert [d for _, d in coarse] == pytest.approx([d for _, d in exact], abs=1e-5)
    assert sorted(r for r, _ in everything) == [r for r, _ in rows]

    # the hits' rows are read in chunks too: the same answer with chunks of 2
    write(log_dir, SUPPORT * 4)
    embed_log(log_dir=log_dir, embedder=model)
    whole = semantic_search("refund", log_dir=log_dir, embedder=model, limit=10**20)
    monkeypatch.setattr(vectors, "VARS_PER_STATEMENT", 2)
    chunked = semantic_search("refund", log_dir=log_dir, embedder=model, limit=10**20)
    assert len(whole) == 20
    assert [h.entry["id"] for h in chunked] == [h.entry["id"] for h in whole]
    assert [h.score for h in chunked] == [h.score for h in whole]


def test_two_embedding_runs_never_store_two_vectors_for_one_call(log_dir: Path, model) -> None:
    """Three `logs embed` started together stored 1,800 vectors for 600 calls (and a search
    found each call three times). A second run on the same log is refused while one runs,
    and a vector for a call that has one (a search's on-the-fly embedding racing a run) is
    not stored again."""
    import fcntl

    import numpy as np

    write(log_dir, SUPPORT)
    with Index(log_dir) as index:
        index.sync()
        path = index.path
    lock = os.open(f"{path}-embed.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)  # as a running `logs embed` holds it
        with pytest.raises(UsageError, match="another `promptlab logs embed` is running on"):
            embed_log(log_dir=log_dir, embedder=model)
    finally:
        os.close(lock)
    first = embed_log(log_dir=log_dir, embedder=model, limit=2)
    assert (first.embedded, first.already) == (2, 0)

    with Index(log_dir) as index:  # (never open beside a VectorStore: see index.vectors)
        rows = index.conn.execute(
            "SELECT rowid, id FROM entries WHERE kind = 'llm' ORDER BY rowid").fetchall()
        texts = [entry_text(index.get(entry_id), model.max_chars) for _, entry_id in rows]
    vectors = model.embed(texts)
    with VectorStore(path) as store:
        # all five, twice over in one batch: the two stored already and the repeats are not
        stored = store.add([*rows, *rows], np.concatenate([vectors, vectors]),
                           advance_cursor=False)
        assert stored == 3 and store.count() == 5
        assert store.add(rows, vectors) == 0
        assert store.conn.execute(
            "SELECT count(*), count(DISTINCT entry_rowid) FROM vec_items").fetchone() == (5, 5)
    hits = semantic_search("refund", log_dir=log_dir, embedder=model, limit=None)
    assert len(hits) == len({h.entry["id"] for h in hits}) == 5
    # an index an older promptlab embedded twice: each call is found once, nearest first
    with VectorStore(path) as store:
        twice = [(vid + 100, rowid, entry_id) for vid, (rowid, entry_id) in enumerate(rows)]
        store._transaction(store._store, twice, vectors)
        assert store.count() == 10
    again = semantic_search("refund", log_dir=log_dir, embedder=model, limit=None)
    assert [h.entry["id"] for h in again] == [h.entry["id"] for h in hits]
    with VectorStore(path) as store:  # and the next check drops the second ones, once
        store.conn.execute("DELETE FROM vec_meta WHERE key = 'one_per_entry'")
        first = store.conn.execute("SELECT vid FROM vec_items WHERE vid < 100").fetchall()
        assert store.check_rowids() == 5 and store.count() == 5
        assert store.conn.execute("SELECT vid FROM vec_items").fetchall() == first
        assert store.check_rowids() == 0
        assert len(store.knn(vectors[0], 10, exact_max=0)) == 5


def test_a_model_that_fails_midway_keeps_the_batches_before_and_says_so(
        log_dir: Path, model) -> None:
    """An endpoint that stops answering after two batches: the run fails with its error,
    and the message says how many calls were kept and what is left to embed."""
    calls = {"n": 0}

    def flaky(texts: list[str]) -> Any:
        calls["n"] += 1
        if calls["n"] > 2:
            raise RuntimeError("model unloaded")
        return model.embed(texts)

    write(log_dir, SUPPORT * 2)
    embedder = FunctionEmbedder(flaky, model_id="flaky")
    with pytest.raises(EmbeddingError, match=r"RuntimeError: model unloaded; the 4 calls "
                                             r"embedded before it are kept, 6 still to embed: "
                                             r"run `promptlab logs embed` again"):
        embed_log(log_dir=log_dir, embedder=embedder, batch=2)
    calls["n"] = -100
    assert embed_log(log_dir=log_dir, embedder=embedder, batch=2).embedded == 6


def test_a_model_whose_dimension_changed_says_to_rebuild(log_dir: Path, model) -> None:
    """A server that now answers with longer vectors under the same model name: running
    `logs embed` again (what the error used to advise) can never help; --rebuild does."""
    import numpy as np

    write(log_dir, SUPPORT)
    embed_log(log_dir=log_dir, embedder=FunctionEmbedder(model.embed, model_id="server"))
    write(log_dir, SUPPORT[:2])
    longer = FunctionEmbedder(lambda texts: np.hstack([model.embed(texts)] * 2),
                              model_id="server")
    with pytest.raises(EmbeddingError) as info:
        embed_log(log_dir=log_dir, embedder=longer)
    message = str(info.value)
    assert "model server now returns 768-dimensional vectors, but the index holds 384" in message
    assert "run `promptlab logs embed --rebuild`" in message and "again to carry on" not in message
    assert embed_log(log_dir=log_dir, embedder=longer, rebuild=True).embedded == len(SUPPORT) + 2


def test_a_vector_for_an_entry_renumbered_meanwhile_is_not_stored(log_dir: Path, model) -> None:
    """`logs embed` embeds a batch while another command syncs a log file that was replaced:
    the entries get new numbers, and the batch's vectors under the old ones became second
    vectors once the entries were embedded again (64 calls with two vectors). A vector is
    now stored only for an entry as it is at that moment."""
    embedder = FunctionEmbedder(model.embed, model_id="m")
    write(log_dir, SUPPORT)
    embed_log(log_dir=log_dir, embedder=embedder, limit=1)
    with Index(log_dir) as index:
        stale = index.conn.execute(
            "SELECT rowid, id FROM entries WHERE kind = 'llm' ORDER BY rowid LIMIT 1 OFFSET 2"
        ).fetchone()
        path = index.path
    (day,) = log_dir.glob("*.jsonl")
    kept = day.read_bytes().splitlines(keepends=True)[1:]  # the file, rewritten without its first line
    day.with_suffix(".tmp").write_bytes(b"".join(kept))
    os.replace(day.with_suffix(".tmp"), day)
    with Index(log_dir) as index:
        index.sync()
        assert index.conn.execute("SELECT rowid FROM entries WHERE id = ?",
                                  (stale[1],)).fetchone()[0] != stale[0]  # renumbered
    with VectorStore(path) as store:
        assert store.add([tuple(stale)], model.embed(["late batch"])) == 0
    embed_log(log_dir=log_dir, embedder=embedder)
    with VectorStore(path) as store:
        twice = store.conn.execute("SELECT entry_id FROM vec_items GROUP BY entry_id "
                                   "HAVING count(*) > 1").fetchall()
        assert twice == [] and store.count() == len(SUPPORT) - 1
