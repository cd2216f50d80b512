"""The search's helper process (promptlab.semantic.worker), forked the way the console
script forks it (promptlab._entry), in a new interpreter: its rankings are the in-process
`VectorStore.knn`'s, whatever it was handed, and it keeps the query's vector once it has
answered; a helper that fails gives no answer (the search then runs in-process), and every
helper is reaped."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from promptlab.index.vectors import VectorStore
from promptlab.semantic import LocalEmbedder, embed_log

from .conftest import SUPPORT, write

_SCRIPT = r"""
import json, os, sys
from pathlib import Path
from promptlab import _entry
from promptlab.index import vectors

vectors.EXACT_MAX = 0  # before any fork: the helpers take the coarse plan (sign bits)


def fork():
    _entry._fork_warm()  # what the console script does first for a semantic search
    warm = _entry.take_warm()
    assert warm is not None and _entry.take_warm() is None, "one helper, taken once"
    return warm


def reaped(pid):
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return True
    return False


from promptlab.semantic.embedders import EmbedderSpec, LocalEmbedder
from promptlab.semantic.worker import Job, SearchWorker, release

db, missing = Path(sys.argv[1]), sys.argv[2]
query = "customer wants their money back"
out = {}
# the query's word pieces, embedded by the helper while the parent does work of its own
ids = LocalEmbedder(verify=False).encode([query])  # what the parent does
worker = SearchWorker.begin(fork(), db, spec=EmbedderSpec())
worker.embed(ids)
waited = []
worker.while_waiting = lambda: waited.append(True)
ranked = worker.knn(Job("1", [], 5, cache=query))
worker.wait()
assert reaped(worker.pid) and waited == [True]
with vectors.VectorStore(db) as store:  # kept by the helper once it had answered
    vector = store.cached_query(query).tobytes()
out["text"] = ranked
out["vector"] = vector.hex()
# its cached vector, a filter, and vectors the parent changed meanwhile (the helper
# reads the sign bits again)
worker = SearchWorker.begin(fork(), db, vector=vector)
out["filtered"] = worker.knn(Job("e.prompt_id = ?", ["support"], 3, changed=True))
# nothing at first (a model this process runs): the vector comes with the job
worker = SearchWorker.begin(fork(), db)
out["late"] = worker.knn(Job("1", [], 5, exclude=ranked[0][0], vector=vector))
# a helper that fails (no such model) answers nothing, and is reaped
worker = SearchWorker.begin(fork(), db, spec=EmbedderSpec(options={"model": missing}))
worker.embed(ids)
out["failed"] = worker.knn(Job("1", [], 5))
worker.wait()
assert reaped(worker.pid)
# a helper nobody needs is stopped and reaped at once
warm = fork()
release(warm).wait()
assert reaped(warm[0])
print(json.dumps(out))
"""


def test_the_helper_ranks_as_the_search_does(log_dir: Path, tmp_path: Path,
                                             model: LocalEmbedder) -> None:
    if not sys.platform.startswith("linux"):
        pytest.skip("the helper is forked on Linux only")
    write(log_dir, SUPPORT)
    embed_log(log_dir=log_dir, embedder=model)
    db = log_dir / "index.db"
    done = subprocess.run([sys.executable, "-c", _SCRIPT, str(db), str(tmp_path / "none.onnx")],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    vector = np.frombuffer(bytes.fromhex(out["vector"]), dtype=np.float32)
    assert np.allclose(vector, model.embed(["customer wants their money back"])[0], atol=1e-6)
    with VectorStore(db) as store:
        expect = store.knn(vector, 5, exact_max=0)
        assert [tuple(r) for r in out["text"]] == expect
        assert [tuple(r) for r in out["filtered"]] == store.knn(
            vector, 3, "e.prompt_id = ?", ["support"], exact_max=0)
        assert [tuple(r) for r in out["late"]] == store.knn(
            vector, 5, exclude=expect[0][0], exact_max=0)
    assert len(expect) == 5 and out["failed"] is None
