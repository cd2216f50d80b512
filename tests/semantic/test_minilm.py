"""The default model's integer-arithmetic graph (promptlab.semantic.minilm): its vectors agree
with the shipped graph's, it is built once and cached atomically, and every way it can fail
falls back to a working model."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from promptlab.semantic import LocalEmbedder, entry_text, minilm
from promptlab.semantic.embedders import (
    DEFAULT_MODEL_ID,
    DEFAULT_MODEL_SHA256,
    QUERY_TEXTS,
    TOKENIZER,
)

from .conftest import shipped_model
from .retrieval_set import build_log


def _batch(embedder: LocalEmbedder, text: str) -> np.ndarray:
    """`text`'s vector from onnxruntime's graph: in a batch of more than QUERY_TEXTS (fewer
    go through the numpy model, promptlab.semantic.querymodel)."""
    return embedder.embed([text] * (QUERY_TEXTS + 1))[0]


def test_vectors_agree_with_the_shipped_graph(model: LocalEmbedder) -> None:
    """The gate for sharing the shipped graph's model id (docs/search.md): cosine >= 0.999
    for every text, on calls as embedded and on the paraphrase queries. Measured over the
    bench's 5,236 texts: minimum 0.99923 (graph v7)."""
    entries, queries = build_log(60, n_needles=20, seed=5)
    texts = [entry_text(e, model.max_chars) for e in entries] + [q for q, _ in queries]
    shipped = LocalEmbedder(shipped_model(), tokenizer=TOKENIZER)  # the graph as shipped
    new, old = model.embed(texts), shipped.embed(texts)
    cosine = (new * old).sum(axis=1)
    assert cosine.min() >= 0.999, f"lowest agreement {cosine.min():.5f}"
    assert model.model_id == DEFAULT_MODEL_ID
    # per-token quantisation: a text's vector does not depend on its batch (one of more
    # than QUERY_TEXTS: fewer go through the numpy model, promptlab.semantic.querymodel)
    alone = model.embed(texts[:QUERY_TEXTS + 1])[0]
    assert float(alone @ new[0]) > 0.99999


def test_texts_of_one_length_per_run_nothing_padded(model: LocalEmbedder) -> None:
    """The built graph takes no attention mask: every run holds texts of one length, so
    no run has padding, and a text's vector is the one it has alone."""
    texts = ["refund", "where is my parcel", "the invoice was charged twice this month",
             "cancel", "reset my password please", "refund", "shipping to Canada",
             "a much longer text about the order that never arrived and the refund " * 3]
    assert model.embed(texts * 2).shape == (16, 384)  # loads the session
    assert "attention_mask" not in model._inputs
    runs: list[np.ndarray] = []
    session = model._session

    class Spy:
        def run(self, outputs: object, feed: dict[str, np.ndarray]) -> object:
            runs.append(feed["input_ids"])
            return session.run(outputs, feed)

    model._session = Spy()
    try:
        together = model.embed(texts)
    finally:
        model._session = session
    assert runs and all((ids != 0).all() for ids in runs)  # [PAD] is id 0
    assert sum(len(ids) for ids in runs) == len(texts)
    for i, text in enumerate(texts):
        assert float(_batch(model, text) @ together[i]) > 0.99999, text


def test_built_once_into_the_cache_and_reused(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROMPTLAB_CACHE_DIR", str(tmp_path / "cache"))
    (tmp_path / "cache").mkdir()
    key = DEFAULT_MODEL_SHA256[:16]
    earlier = tmp_path / "cache" / f"minilm-{key}-int8mm-v3.onnx"  # an earlier build's graph
    kept = [tmp_path / "cache" / name for name in (f"minilm-{'0' * 16}-int8mm-v3.onnx",
                                                  f"minilm-{key}-numpy-v1")]
    for path in (earlier, *kept):
        path.write_bytes(b"x")
    built = minilm.fast_model(shipped_model(), DEFAULT_MODEL_SHA256)
    assert built == minilm.cached_path(DEFAULT_MODEL_SHA256) and built.is_file()
    assert built.parent == tmp_path / "cache"
    assert not earlier.exists()  # replaced; another file's graph and the numpy weights stay
    for path in kept:
        assert path.exists()
        path.unlink()
    assert sorted(p.name for p in built.parent.iterdir()) == [built.name]  # no temp file left
    stamp = built.stat().st_mtime_ns
    assert minilm.fast_model(shipped_model(), DEFAULT_MODEL_SHA256) == built
    assert built.stat().st_mtime_ns == stamp
    vector = _batch(LocalEmbedder(), "where is my parcel")
    assert vector.shape == (384,)


def test_cache_folder_follows_xdg(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("PROMPTLAB_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert minilm.cache_dir() == tmp_path / "xdg" / "promptlab"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert minilm.cache_dir() == Path.home() / ".cache" / "promptlab"


def test_an_unwritable_cache_builds_in_memory(unwritable_cache: None) -> None:
    built = minilm.fast_model(shipped_model(), DEFAULT_MODEL_SHA256)
    assert isinstance(built, bytes) and len(built) > 1_000_000
    embedder = LocalEmbedder()
    reference = LocalEmbedder(shipped_model(), tokenizer=TOKENIZER).embed(["refund please"])[0]
    assert float(_batch(embedder, "refund please") @ reference) > 0.999


def test_a_damaged_cache_file_is_built_again(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROMPTLAB_CACHE_DIR", str(tmp_path))
    cached = minilm.cached_path(DEFAULT_MODEL_SHA256)
    cached.write_bytes(b"not an onnx model")
    embedder = LocalEmbedder()
    _batch(embedder, "refund please")
    assert "token_type_ids" not in embedder._inputs  # the built graph, not the shipped one
    assert cached.read_bytes() == minilm.build(shipped_model())


def test_without_a_built_graph_the_shipped_one_answers(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """No `onnx` package (or nothing it could build): the shipped graph, same vectors
    within the agreement above."""
    monkeypatch.setenv("PROMPTLAB_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(minilm, "fast_model", lambda *args, **kwargs: None)
    embedder = LocalEmbedder()
    vector = _batch(embedder, "refund please")
    assert "token_type_ids" in embedder._inputs
    reference = LocalEmbedder(shipped_model(), tokenizer=TOKENIZER).embed(["refund please"])[0]
    assert np.allclose(vector, reference, atol=1e-5)


def test_only_the_file_the_cache_is_named_for_is_rebuilt(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROMPTLAB_CACHE_DIR", str(tmp_path / "cache"))
    other = tmp_path / "other.onnx"
    other.write_bytes(b"something else")
    assert minilm.fast_model(other, DEFAULT_MODEL_SHA256) is None
    assert not (tmp_path / "cache").exists()


def test_concurrent_builders_leave_one_good_file(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """Two processes building at once: each writes its own temporary file and renames it
    into place; the bytes are the same, and no temporary file is left behind."""
    import subprocess
    import sys

    cache = tmp_path / "cache"
    code = ("import sys; from pathlib import Path; from promptlab.semantic import minilm; "
            "print(minilm.fast_model(Path(sys.argv[1]), sys.argv[2]))")
    env = {**os.environ, "PROMPTLAB_CACHE_DIR": str(cache)}
    runs = [subprocess.Popen([sys.executable, "-c", code, str(shipped_model()), DEFAULT_MODEL_SHA256],
                             env=env, stdout=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [run.communicate()[0].strip() for run in runs]
    assert all(run.returncode == 0 for run in runs)
    path = minilm.cached_path(DEFAULT_MODEL_SHA256).name
    assert [Path(out).name for out in outputs] == [path, path]
    assert [p.name for p in cache.iterdir()] == [path]
    assert (cache / path).read_bytes() == minilm.build(shipped_model())
