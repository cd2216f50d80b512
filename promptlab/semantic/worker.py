"""The vector side of `promptlab logs search --semantic/--hybrid`, in a helper process.

A search in a new process has two chains of work: the command line (click, the index's
sync, the table it prints) and the vectors (numpy, the query's embedding, the sign bits of
every stored vector compared with the query's). One after the other they cost ~450 ms of
CPU at a million vectors on 2 cores; side by side they take ~250 ms. So the console script
(promptlab._entry) forks this helper before it imports anything, when the command line
looks like a semantic search, and the helper:

  1. imports numpy while the parent imports its command line;
  2. on `begin` (index.db's path, and the query: the embedder spec to embed it with, or
     its cached vector), maps the sign bits (VectorStore.load_bits: a snapshot file beside
     index.db; its pages are touched on a thread) and loads the model, while the parent
     encodes the query (word pieces: the tokenizer needs no numpy); then it embeds the word
     pieces the parent sends and measures the Hamming distance to every stored vector
     (VectorStore.hamming), while the parent syncs the index and checks the stored
     vectors;
  3. on `knn` (the filters as SQL, how many, and whether the parent changed the vectors
     meanwhile: remapped them, or embedded a few new calls), runs the same
     `VectorStore.knn` a search runs in-process, answers the ranking, and then keeps the
     query's vector for the next search of the same text (while the parent prints).

The parent never imports numpy on this path. It does everything that decides what may be
searched (index sync, model check, the calls embedded on the fly), and the helper only
what `knn` computes, so the two cannot disagree. Whenever the helper is missing or fails
(not Linux, a fork refused, an error in it), the parent runs the same steps itself: the
helper makes a search faster, never different. Messages are pickles with a length
prefix over two pipes; the helper's stdio is /dev/null, and it exits with os._exit (no
teardown) once it has answered, or when the parent closes the request pipe unused.
"""

from __future__ import annotations

import contextlib
import os
import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_LENGTH = struct.Struct("<Q")
CACHE_WAIT_MS = 2_000  # how long the helper waits for a busy index to cache the query


def serve(request: int, answer: int) -> None:
    """The helper's side: import, then serve one `begin` and one `knn` (see the module
    docstring). Returns when the parent lets it go; raises when anything fails (the parent
    then sees no answer and searches itself)."""
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # as the search does (cli.semantic)
    with contextlib.suppress(ImportError):  # the parent reports a missing extra itself
        import numpy  # noqa: F401
    begin = _recv(request)
    if begin is None:
        return
    import threading

    import numpy as np

    from promptlab.index.vectors import EXACT_MAX, VectorStore
    from promptlab.semantic.embedders import load_embedder

    path, spec, vector = begin
    with VectorStore(path) as store:
        coarse = store.count() > EXACT_MAX
        if coarse:
            # the snapshot, mapped (or read once, and written for next time); its pages
            # are mapped in by a thread while the query is embedded
            bits, vids = store.load_bits()
            threading.Thread(target=_touch, args=(bits, vids), daemon=True).start()
        if spec is not None:  # the query's word pieces follow
            embedder = load_embedder(spec, verify=False)
            embedder.prepare(1)
            ids = _recv(request)
            if ids is None:
                return
            vector = embedder.embed_ids(ids)[0]
        if coarse and vector is not None:
            # the pass over every sign bit (the search's `knn` reuses it), while the parent
            # syncs the index and checks the vectors
            store.hamming(np.frombuffer(vector, dtype=np.float32)
                          if isinstance(vector, bytes) else vector)
        job = _recv(request)
        if job is None:
            return
        if job.vector is not None:
            vector = job.vector
        if vector is None:
            raise ValueError("no query vector")
        if job.changed:  # the parent changed the vectors after this process mapped them
            store.forget_bits()
        vector = np.frombuffer(vector, dtype=np.float32) if isinstance(vector, bytes) else vector
        ranked = store.knn(vector, job.depth, job.where, job.params, exclude=job.exclude)
        _send(answer, ranked)
        if job.cache is not None:
            # after the answer, while the parent prints: the search text's vector for the
            # next search of it (best effort: a busy index is not waited for long)
            with contextlib.suppress(Exception):
                store.conn.set_busy_timeout(CACHE_WAIT_MS)
                store.cache_query(job.cache, vector)


def _touch(*arrays: Any) -> None:
    """Read one value in every page of each array (numpy lets go of the GIL meanwhile)."""
    for array in arrays:
        flat = array.reshape(-1)
        flat[::max(1, 4096 // flat.itemsize)].sum()


@dataclass(frozen=True)
class Job:
    """What `knn` asks of the helper: the filters as SQL over `entries e`, how many, the
    entry to leave out, the query's vector when the helper was not given it, and whether
    the parent changed the stored vectors since `begin` (remapped them, or embedded a few
    new calls: the helper then reads the sign bits again), and the search text to keep the
    query's vector under once the helper has answered (VectorStore.cache_query: ~5 ms of a
    write transaction the parent would otherwise spend after the answer)."""

    where: str
    params: list[Any]
    depth: int
    exclude: int | None = None
    vector: bytes | None = None
    changed: bool = False
    cache: str | None = None


class SearchWorker:
    """The parent's side of the helper forked at start-up: `begin`, then `knn`, once.
    `while_waiting`: work of the parent's own to do while the helper searches."""

    def __init__(self, warm: tuple[int, int, int], *, ids: bool = False,
                 vector: bool = False):
        self.pid, self._request, self._answer = warm
        self.embeds_query = ids  # the helper embeds the query (its word pieces)
        self.embeds = ids or vector  # the helper has the query (encoded, or its vector)
        self.while_waiting: Callable[[], None] | None = None
        self._done = False
        self._answered = False  # then it is exiting by itself (os._exit)
        self._reaper: Any = None

    @classmethod
    def begin(cls, warm: tuple[int, int, int], path: Path, *, spec: Any = None,
              vector: bytes | None = None) -> SearchWorker | None:
        """Hand the helper index.db's path and what it will embed the query with: the
        local model `spec` (the query's word pieces follow: `embed`), or the query's
        `vector` (cached), or neither (the parent embeds it, and passes it to `knn`). None
        (and the helper let go) when it cannot be reached."""
        worker = cls(warm, ids=spec is not None, vector=vector is not None)
        try:
            _send(worker._request, (str(path), spec, vector))
        except OSError:
            worker.close()
            return None
        return worker

    def embed(self, ids: list[list[int]]) -> None:
        """The query's word pieces (LocalEmbedder.encode), after a `begin` with a spec.
        A helper that cannot be reached gives no answer to `knn` (the caller then embeds
        and searches itself)."""
        with contextlib.suppress(OSError):
            _send(self._request, ids)

    def knn(self, job: Job) -> list[tuple[int, float]] | None:
        """The helper's ranking for `job`, or None when it failed (the caller searches
        itself)."""
        try:
            _send(self._request, job)
            os.close(self._request)
            self._request = -1
            if self.while_waiting is not None:
                self.while_waiting()
            answer = _recv(self._answer)
        except OSError:
            answer = None
        self._answered = answer is not None
        self.close()
        return answer

    def close(self) -> None:
        """Let the helper go, at once if it is still working, and reap it."""
        if self._done:
            return
        self._done = True
        if not self._answered:  # still working, or waiting for a request: stopped now
            import signal

            with contextlib.suppress(OSError):
                os.kill(self.pid, signal.SIGKILL)
        for fd in (self._request, self._answer):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._request = self._answer = -1
        # Reaped on a thread: the kernel takes ~10-15 ms to tear down a process that
        # mapped numpy and the sign bits (measured), which the search need not wait for.
        import threading

        self._reaper = threading.Thread(target=_reap, args=(self.pid,), name="reap-helper",
                                        daemon=True)
        self._reaper.start()

    def wait(self) -> None:
        """Until the helper is reaped (after `close`)."""
        if self._reaper is not None:
            self._reaper.join()


def _reap(pid: int) -> None:
    with contextlib.suppress(OSError):
        os.waitpid(pid, 0)


def release(warm: tuple[int, int, int]) -> SearchWorker:
    """Let an unused helper go: it would go on importing on the other core while this
    process works (measured: ~20-50 ms slower searches)."""
    worker = SearchWorker(warm)
    worker.close()
    return worker


def _send(fd: int, obj: Any) -> None:
    import pickle

    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    view = memoryview(_LENGTH.pack(len(data)) + data)
    while view:
        view = view[os.write(fd, view):]


def _recv(fd: int) -> Any:
    """One message, or None when the other side closed the pipe first."""
    import pickle

    head = _read(fd, _LENGTH.size)
    if head is None:
        return None
    body = _read(fd, _LENGTH.unpack(head)[0])
    return None if body is None else pickle.loads(body)


def _read(fd: int, size: int) -> bytes | None:
    chunks, left = [], size
    while left:
        chunk = os.read(fd, min(left, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)
