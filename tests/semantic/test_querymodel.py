"""The default model in numpy for a search's query (promptlab.semantic.querymodel): the
shipped graph's arithmetic, so the same vectors; built once into the cache and mapped from
there; and every way it can fail leaves onnxruntime to answer."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from promptlab.semantic import LocalEmbedder, entry_text, querymodel
from promptlab.semantic.embedders import DEFAULT_MODEL_SHA256, TOKENIZER

from .conftest import shipped_model
from .retrieval_set import build_log


def _numpy_vectors(model: querymodel.QueryModel, texts: list[str]) -> np.ndarray:
    embedder = LocalEmbedder(verify=False)
    tokenizer = embedder._load_tokenizer()
    pooled = np.stack([model.hidden(e.ids).mean(axis=0) for e in tokenizer.encode_batch(texts)])
    return pooled / np.linalg.norm(pooled, axis=1, keepdims=True)


def test_vectors_are_the_shipped_graphs() -> None:
    """Float32 throughout, as the shipped file computes: cosine > 0.99999 on calls as
    embedded, the paraphrase queries, one word, and a text cut at 128 word pieces."""
    entries, queries = build_log(40, n_needles=10, seed=9)
    texts = ([entry_text(e, 512) for e in entries] + [q for q, _ in queries]
             + ["x", "Résumé of the café meeting — naïve? 日本語", "refund " * 400])
    model = querymodel.query_model(shipped_model(), DEFAULT_MODEL_SHA256)
    assert model is not None
    shipped = LocalEmbedder(shipped_model(), tokenizer=TOKENIZER).embed(texts)
    cosine = (_numpy_vectors(model, texts) * shipped).sum(axis=1)
    assert cosine.min() > 0.99999, f"lowest agreement {cosine.min():.7f}"


def test_a_search_process_never_imports_onnxruntime(tmp_path: Path) -> None:
    """The point of the numpy model: a query's vector in a new process without
    onnxruntime's import and session, and the same vector as in this process."""
    code = ("import json, sys; from promptlab.semantic import LocalEmbedder; "
            "v = LocalEmbedder(verify=False).embed(['where is my parcel'])[0]; "
            "print(json.dumps({'ort': 'onnxruntime' in sys.modules, 'v': v.tolist()}))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True, timeout=120)
    import json

    out = json.loads(done.stdout)
    assert out["ort"] is False
    here = LocalEmbedder(verify=False).embed(["where is my parcel"])[0]
    assert np.allclose(out["v"], here, atol=1e-6)


def test_built_once_into_the_cache_and_mapped(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROMPTLAB_CACHE_DIR", str(tmp_path / "cache"))
    folder = querymodel.cached_folder(DEFAULT_MODEL_SHA256)
    earlier = folder.with_name(folder.name.removesuffix(querymodel.BUILD) + "numpy-v0")
    writing = folder.with_name(folder.name + ".abc123.tmp")  # another process's, unfinished
    for path in (earlier, writing):
        path.mkdir(parents=True)
        (path / "qkv_w.npy").write_bytes(b"x")
    model = querymodel.query_model(shipped_model(), DEFAULT_MODEL_SHA256)
    assert model is not None and (folder / "done").is_file()
    assert not earlier.exists() and writing.exists()  # an earlier build's weights removed
    shutil.rmtree(writing)
    assert [p.name for p in folder.parent.iterdir()] == [folder.name]  # no temp folder left
    assert isinstance(model.a["ff_in_w"], np.memmap)  # mapped, not read
    stamp = (folder / "ff_in_w.npy").stat().st_mtime_ns
    again = querymodel.query_model(shipped_model(), DEFAULT_MODEL_SHA256)
    assert (folder / "ff_in_w.npy").stat().st_mtime_ns == stamp
    assert np.array_equal(again.hidden([101, 2054, 102]), model.hidden([101, 2054, 102]))


def test_a_damaged_cache_folder_is_built_again(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROMPTLAB_CACHE_DIR", str(tmp_path))
    good = querymodel.query_model(shipped_model(), DEFAULT_MODEL_SHA256).hidden([101, 2054, 102])
    folder = querymodel.cached_folder(DEFAULT_MODEL_SHA256)
    (folder / "qkv_w.npy").write_bytes(b"truncated")
    model = querymodel.query_model(shipped_model(), DEFAULT_MODEL_SHA256)
    assert np.array_equal(model.hidden([101, 2054, 102]), good)
    assert isinstance(model.a["qkv_w"], np.memmap)  # cached again
    (folder / "out_b.npy").unlink()
    model = querymodel.query_model(shipped_model(), DEFAULT_MODEL_SHA256)
    assert np.array_equal(model.hidden([101, 2054, 102]), good)


def test_an_unwritable_cache_builds_in_memory(unwritable_cache: None) -> None:
    model = querymodel.query_model(shipped_model(), DEFAULT_MODEL_SHA256)
    assert model is not None and not isinstance(model.a["ff_in_w"], np.memmap)
    vector = LocalEmbedder(verify=False).embed(["refund please"])[0]
    reference = LocalEmbedder(shipped_model(), tokenizer=TOKENIZER).embed(["refund please"])[0]
    assert float(vector @ reference) > 0.99999


def test_without_onnx_there_is_no_numpy_model(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """The weights are read from the shipped file with the `onnx` package: without it (and
    nothing cached) there is no numpy model, and LocalEmbedder uses onnxruntime (see
    test_embedders)."""
    monkeypatch.setenv("PROMPTLAB_CACHE_DIR", str(tmp_path))

    def no_onnx(source: Path) -> None:
        raise ImportError("No module named 'onnx'", name="onnx")

    monkeypatch.setattr(querymodel, "read_source", no_onnx)
    assert querymodel.query_model(shipped_model(), DEFAULT_MODEL_SHA256) is None
    assert not querymodel.cached_folder(DEFAULT_MODEL_SHA256).exists()


def test_concurrent_builders_leave_one_good_folder(tmp_path: Path) -> None:
    """Two processes building at once: each writes its own temporary folder and renames it
    into place; the loser's is removed, and both get the same model."""
    cache = tmp_path / "cache"
    code = ("import sys; from pathlib import Path; from promptlab.semantic import querymodel; "
            "m = querymodel.query_model(Path(sys.argv[1]), sys.argv[2]); "
            "print(m.hidden([101, 2054, 102]).sum())")
    env = {**os.environ, "PROMPTLAB_CACHE_DIR": str(cache)}
    runs = [subprocess.Popen([sys.executable, "-c", code, str(shipped_model()), DEFAULT_MODEL_SHA256],
                             env=env, stdout=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [run.communicate(timeout=300)[0].strip() for run in runs]
    assert all(run.returncode == 0 for run in runs)
    assert outputs[0] == outputs[1]
    assert [p.name for p in cache.iterdir()] == [querymodel.cached_folder(
        DEFAULT_MODEL_SHA256).name]


def test_token_counts_outside_the_model_are_refused() -> None:
    model = querymodel.query_model(shipped_model(), DEFAULT_MODEL_SHA256)
    with pytest.raises(ValueError, match="word pieces"):
        model.hidden([])
    with pytest.raises(ValueError, match="word pieces"):
        model.hidden([100] * 513)
