"""Vectors in the index: one embedding per LLM call, stored in index.db with sqlite-vec.

This module knows nothing of models: it stores and searches the vectors it is given
(`promptlab.semantic` computes them). Tables, created on first use next to the entries:

    vec_meta    key/value: 'model' (id of the embedder), 'dim', 'recipe' (what text was
                embedded), 'cursor' (every LLM entry with rowid <= cursor was considered),
                'format'.
    vec_items   vid INTEGER PRIMARY KEY, entry_rowid, entry_id — which entry each vector
                belongs to. entry_id is the truth: `logs reindex` renumbers entries, and a
                deleted log file takes its entries away, so every read joins
                `entries e ON e.rowid = entry_rowid AND e.id = entry_id`, and a renumbered
                index is remapped once (see `VectorStore.check_rowids`).
    vec_exact   vid INTEGER PRIMARY KEY, embedding BLOB (float32[dim]): exact distances.
                A plain table, not vec0: re-ranking reads a few hundred vectors by key, 5x
                faster from a table than from vec0's chunks (measured).
    vec_bitchunks  chunk INTEGER PRIMARY KEY, n, vids BLOB (int64[n]), bits BLOB: the sign
                bit of each dimension of up to CHUNK vectors, packed (a 32x smaller copy),
                searched by Hamming distance for the coarse pass.
    vec_queries text, embedding, used: the vectors of the last QUERY_CACHE search texts, so
                a repeated search does not load the model at all.

Beside index.db, `index.db-signs-v2-<key>.npy` and `.vids.npy`: a snapshot of vec_bitchunks as
two standard .npy files (the bits with a 64-bit word per row), which a search maps instead of
reading the chunks (see `load_bits`); derived, like the index, and rewritten by the first
search after a change.

Why apsw: sqlite-vec is a loadable extension, and many Pythons (pyenv and macOS builds,
this project's own CI) have an `sqlite3` module without `enable_load_extension`. apsw ships
its own current SQLite with extension loading on every platform, and is released with
every SQLite release. Two SQLite libraries in one process must not hold the same file open
at once (POSIX locks are per process: closing one would drop the other's locks), so the
`sqlite3` connection of `Index` is closed before a VectorStore opens, and the other way.

Search plan (`knn`): up to EXACT_MAX candidate vectors, an exact cosine scan
(sqlite-vec's `vec_distance_cosine`, filters joined in SQL). Beyond, a coarse-then-exact
plan: the Hamming distance of the query's sign bits to every packed bit vector (numpy
popcount, `hamming`) keeps a SHORTLIST, the asymmetric distance keeps the best `rerank` of
those, then exact cosine orders those only. Not sqlite-vec's vec0 KNN for the coarse
pass: its cost grows with k (measured at 100k bit vectors: k = 10 in 16 ms, k = 400 in
178 ms, k = 1000 in 578 ms), while the popcount pass costs the same for any k.
benchmarks/bench_semantic.py measures what it costs in recall (docs/search.md has the
figures).
"""

from __future__ import annotations

import itertools
import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from promptlab.errors import EmbeddingError, LogsUnavailableError

FORMAT = 1
EXACT_MAX = 10_000  # candidate vectors searched exactly; beyond: bits first, then exact
# Host parameters per statement when vids are listed (SQLite refuses more than 999 before
# 3.32, 32,766 since, by default), and the largest `k` a search takes (more than any index
# holds; keeps the SQL integers in range).
VARS_PER_STATEMENT = 900
MAX_K = 1 << 32


def select_in(conn: Any, sql: str, ids: Sequence[Any], before: Sequence[Any] = ()) -> list[Any]:
    """The rows of `sql` — a statement whose `{marks}` is an IN list, after the parameters
    `before` — for every id of `ids`, listed VARS_PER_STATEMENT at a time (an apsw or a
    sqlite3 connection)."""
    rows: list[Any] = []
    for start in range(0, len(ids), VARS_PER_STATEMENT):
        part = list(ids[start:start + VARS_PER_STATEMENT])
        rows += conn.execute(sql.replace("{marks}", ", ".join("?" * len(part))),
                             [*before, *part]).fetchall()
    return rows
QUERY_CACHE = 500  # search texts whose vectors are kept
# The coarse plan, past EXACT_MAX: the Hamming distance of sign bits to every vector keeps
# the SHORTLIST nearest (at least 100 x k); the query's float values summed over each of
# their set bits (the asymmetric distance: no extra storage, the bits are in memory) keeps
# the RERANK best of those (at least 15 x k); the exact cosine orders those. At a million
# vectors, k = 10, against an exact scan: recall@10 0.993, against 0.980 for the 400
# Hamming-nearest re-ranked exactly, with 150 instead of 400 random reads of float vectors
# (each a page read when the file is not cached: ~0.2 ms).
SHORTLIST = 2000
RERANK = 150
SAMPLE = 16  # every SAMPLE-th Hamming distance guesses the shortlist's cut-off (_smallest)
CHUNK = 16_384  # bit vectors per vec_bitchunks row
WORD_STEP = 32_768  # vectors per step of the Hamming pass (buffers of ~400 KB)
SNAPSHOT = "v2"  # the layout of the sign bits' snapshot files (see load_bits)
BUSY_TIMEOUT_MS = 60_000

_JOIN = "JOIN entries e ON e.rowid = vi.entry_rowid AND e.id = vi.entry_id"


@dataclass(frozen=True)
class ModelInfo:
    """The embedder whose vectors an index holds."""

    model: str
    dim: int
    recipe: str


def _extension_path() -> str:
    """sqlite-vec's loadable library, found without importing the sqlite_vec package: its
    __init__ imports numpy.typing (~110 ms of CPU), which a search that needs no numpy
    (an exact scan, a cached query) would pay for nothing."""
    from importlib.util import find_spec

    spec = find_spec("sqlite_vec")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("No module named 'sqlite_vec'", name="sqlite_vec")
    return os.path.join(next(iter(spec.submodule_search_locations)), "vec0")


def _connect(path: Path, *, create: bool = False) -> Any:
    try:
        import apsw

        extension = _extension_path()
    except ImportError as exc:
        raise EmbeddingError(
            f"semantic search needs the 'semantic' extra ({exc.name} is missing); install it "
            "with: pip install 'promptlab[semantic]'"
        ) from exc
    from promptlab.index.safety import refuse_unsafe_database

    refuse_unsafe_database(path, "the log index", "remove it (the index is rebuilt from the "
                           "JSONL logs) and run the command again")
    try:
        # Not created here: the index (promptlab.index.core) creates its file, with its
        # permissions (0600); one missing now was removed meanwhile.
        flags = apsw.SQLITE_OPEN_READWRITE | (apsw.SQLITE_OPEN_CREATE if create else 0)
        conn = apsw.Connection(str(path), flags=flags)
        conn.set_busy_timeout(BUSY_TIMEOUT_MS)
        conn.enable_load_extension(True)
        conn.load_extension(extension)
        conn.enable_load_extension(False)
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        # Not the whole file: pages read through the map count in the process's RSS (a
        # search at a million vectors showed 500 MB mapped against 105 MB), for ~10 ms.
        conn.execute("PRAGMA mmap_size = 1073741824")
        conn.execute("PRAGMA cache_size = -65536")
    except apsw.CantOpenError as exc:
        if path.exists():
            raise LogsUnavailableError(
                f"cannot open the vectors of the log index {path}: {exc}") from exc
        raise _removed(path) from exc
    except apsw.Error as exc:
        raise LogsUnavailableError(
            f"cannot open the vectors of the log index {path}: {exc}") from exc
    return conn


def _removed(path: Path) -> LogsUnavailableError:
    return LogsUnavailableError(
        f"the log index {path} was removed or replaced while it was being read (the log "
        "folder deleted or rebuilt?); try again")


def _hamming_words(words: Any, packed_query: Any, distance: Any, lo: int, hi: int) -> None:
    """distance[lo:hi] = Hamming distance of vectors lo..hi to `packed_query`. `words` holds
    the sign bits a 64-bit word per row (see VectorStore.load_bits), so every pass reads one
    contiguous run: ~2x faster than the vectors as rows, whose per-row sum of a few words
    is a strided pass (measured at a million: ~10 ms against ~20 on one core). The counts
    of three words (at most 192) are added in uint8, then the groups in uint16."""
    import numpy as np

    width = len(words)
    step = max(1, min(WORD_STEP, hi - lo))
    xor = np.empty(step, dtype=np.uint64)
    count = np.empty(step, dtype=np.uint8)
    group = np.empty(step, dtype=np.uint8)
    table = None if hasattr(np, "bitwise_count") else np.array(  # numpy < 2
        [bin(i).count("1") for i in range(256)], dtype=np.uint8)

    def popcount(out: Any, n: int) -> None:
        if table is None:
            np.bitwise_count(xor[:n], out=out[:n])
        else:
            out[:n] = table[xor[:n].view(np.uint8)].reshape(n, 8).sum(axis=1)

    for at in range(lo, hi, step):
        n = min(step, hi - at)
        part = distance[at:at + n]
        for word in range(width):
            np.bitwise_xor(words[word, at:at + n], packed_query[word], out=xor[:n])
            if word % 3 == 0:
                popcount(group, n)
            else:
                popcount(count, n)
                np.add(group[:n], count[:n], out=group[:n])
            if word % 3 == 2 or word == width - 1:  # a group is complete
                if word < 3:
                    np.copyto(part, group[:n])
                else:
                    np.add(part, group[:n], out=part)


def _smallest(distance: Any, count: int) -> Any:
    """The positions of the `count` smallest of `distance` (Hamming distances: small
    non-negative integers), ties taken in position order. A histogram finds the cut-off
    (~2x faster than argpartition at a million): first a histogram of every 16th distance
    guesses a cut-off with room to spare, one pass keeps the positions within it, and the
    exact cut-off is found among those few. When the guess keeps too few (a rare sample),
    the histogram of all of them. ~5x faster than that at a million (1.0-1.6 ms against
    5-7 ms, measured): no 8-byte copy of every distance (numpy's bincount makes one)."""
    import numpy as np

    guess = int(np.searchsorted(np.cumsum(np.bincount(distance[::SAMPLE])),
                                -(-count * 5 // 4) // SAMPLE))
    within = np.flatnonzero(distance <= guess)
    if len(within) < count:
        within = np.arange(len(distance))
    near = distance[within]
    cut = int(np.searchsorted(np.cumsum(np.bincount(near)), count))
    below = within[near < cut]
    return np.concatenate([below, within[near == cut][:count - len(below)]])


class VectorStore:
    """The vectors of one index.db. Use as a context manager; never alongside an open
    `Index` connection in the same process (see the module docstring)."""

    def __init__(self, path: str | os.PathLike[str], *, create: bool = False):
        """`create`: make the file when it is missing (a store of its own, in tests and
        benchmarks); an index's store is opened after the index made its file."""
        self.path = Path(path)
        self.conn = _connect(self.path, create=create)
        self._bits: tuple[Any, Any] | None = None  # (sign bits, vids), see load_bits
        self._hamming: tuple[bytes, Any] | None = None  # (query, distances), see hamming
        self.conn.execute(
            "CREATE TABLE IF NOT EXISTS vec_meta (key TEXT PRIMARY KEY, value) WITHOUT ROWID")
        fmt = self._meta("format")
        if fmt is not None and int(fmt) > FORMAT:
            raise LogsUnavailableError(f"{self.path}: its vectors were written by a newer "
                                       f"promptlab (format {fmt}); upgrade promptlab or run "
                                       "`promptlab logs embed --rebuild`")

    # -- plumbing -----------------------------------------------------------------------

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> VectorStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _meta(self, key: str, default: Any = None) -> Any:
        row = self.conn.execute("SELECT value FROM vec_meta WHERE key = ?", (key,)).fetchone()
        return default if row is None else row[0]

    def _set_meta(self, key: str, value: Any) -> None:
        self.conn.execute("INSERT OR REPLACE INTO vec_meta (key, value) VALUES (?, ?)",
                          (key, value))

    def _has_table(self, name: str) -> bool:
        return self.conn.execute("SELECT 1 FROM sqlite_master WHERE name = ?",
                                 (name,)).fetchone() is not None

    def _transaction(self, fn: Any, *args: Any) -> Any:
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            result = fn(*args)
        except BaseException:
            if not self.conn.get_autocommit():
                self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")
        return result

    # -- the model ------------------------------------------------------------------------

    def model(self) -> ModelInfo | None:
        """The embedder of the stored vectors (None: nothing embedded yet)."""
        model = self._meta("model")
        if model is None or not self._has_table("vec_items"):
            return None
        return ModelInfo(model=model, dim=int(self._meta("dim")), recipe=self._meta("recipe"))

    def check_model(self, model: str, recipe: str) -> ModelInfo | None:
        """Refuse to mix vectors of two embedders (or of two ways of choosing the text)."""
        info = self.model()
        if info is not None and (info.model != model or info.recipe != recipe):
            what = (f"model {info.model}" if info.model != model
                    else f"text recipe {info.recipe!r}")
            now = f"model {model}" if info.model != model else f"{recipe!r}"
            raise EmbeddingError(
                f"the log index holds embeddings made with {what}, not {now}; vectors of two "
                f"embedders cannot be compared: run `promptlab logs embed --rebuild` to re-embed "
                f"everything with the new one, or go back to {info.model} ([embeddings] in the "
                "project config, or --model)")
        return info

    def start(self, model: str, dim: int, recipe: str) -> None:
        """Create the vector tables for `model` (no-op when they exist for it)."""
        if self.check_model(model, recipe) is not None:
            return
        if not 1 <= dim <= 8192:
            raise EmbeddingError(f"embedding model {model} returned {dim}-dimensional vectors; "
                                 "expected 1 to 8192 dimensions")

        def run() -> None:
            self._drop()
            self.conn.execute(
                "CREATE TABLE vec_items (vid INTEGER PRIMARY KEY, entry_rowid INTEGER NOT NULL, "
                "entry_id TEXT NOT NULL)")
            self.conn.execute("CREATE INDEX vec_items_by_entry ON vec_items(entry_rowid)")
            self.conn.execute("CREATE INDEX vec_items_by_id ON vec_items(entry_id)")
            self.conn.execute(
                "CREATE TABLE vec_exact (vid INTEGER PRIMARY KEY, embedding BLOB NOT NULL)")
            self.conn.execute("CREATE TABLE vec_bitchunks (chunk INTEGER PRIMARY KEY, "
                              "n INTEGER NOT NULL, vids BLOB NOT NULL, bits BLOB NOT NULL)")
            self.conn.execute("CREATE TABLE vec_queries (text TEXT PRIMARY KEY, embedding BLOB "
                              "NOT NULL, used REAL NOT NULL)")
            for key, value in (("model", model), ("dim", dim), ("recipe", recipe),
                               ("cursor", 0), ("format", FORMAT), ("one_per_entry", 1)):
                self._set_meta(key, value)

        self._transaction(run)

    def _drop(self) -> None:
        for table in ("vec_exact", "vec_bitchunks", "vec_items", "vec_queries"):
            self.conn.execute(f"DROP TABLE IF EXISTS {table}")
        self.conn.execute("DELETE FROM vec_meta")
        self._bits_changed()  # a snapshot of the dropped sign bits must never match again

    def clear(self) -> None:
        """Forget every vector (`logs embed --rebuild`)."""
        self.forget_bits()
        self._transaction(self._drop)

    # -- keeping up with the entries --------------------------------------------------------

    def check_entries(self) -> None:
        """Refuse a file that holds no log index: the log folder was removed or rebuilt after
        the caller synced it (SQLite then opens a new, empty index.db), and every read of the
        entries would fail with "no such table"."""
        if not self._has_table("entries"):
            raise _removed(self.path)

    def check_rowids(self) -> int:
        """Remap vectors after `logs reindex` renumbered the entries, and drop the vectors of
        entries that left the index (their log file was deleted) and, once, the second
        vectors of entries that concurrent runs of an older promptlab embedded twice.
        Returns vectors dropped."""
        if not self._has_table("vec_items"):
            return 0
        twice = self._meta("one_per_entry") is None
        stale = self.conn.execute("SELECT value FROM meta WHERE key = 'fts_stale'").fetchone()
        stale_mark = stale[0] if stale else None
        probe = self.conn.execute(
            "SELECT vi.entry_rowid, vi.entry_id, e.id FROM vec_items vi LEFT JOIN entries e "
            "ON e.rowid = vi.entry_rowid WHERE vi.vid IN ((SELECT max(vid) FROM vec_items), "
            "(SELECT min(vid) FROM vec_items))").fetchall()
        renumbered = any(found != wanted for _, wanted, found in probe)
        if not renumbered and stale_mark == self._meta("stale_mark") and not twice:
            return 0

        def run() -> int:
            if renumbered:
                self.conn.execute(
                    "UPDATE vec_items SET entry_rowid = coalesce((SELECT e.rowid FROM entries e "
                    "WHERE e.id = vec_items.entry_id), -1)")
                self._set_meta("cursor", 0)
            gone = [r[0] for r in self.conn.execute(
                "SELECT vid FROM vec_items vi WHERE NOT EXISTS (SELECT 1 FROM entries e "
                "WHERE e.rowid = vi.entry_rowid AND e.id = vi.entry_id)")]
            if twice:  # the first vector of each entry stays
                gone += [r[0] for r in self.conn.execute(
                    "SELECT vi.vid FROM (SELECT entry_rowid, entry_id, min(vid) AS first FROM "
                    "vec_items GROUP BY entry_rowid, entry_id HAVING count(*) > 1) d JOIN "
                    "vec_items vi ON vi.entry_rowid = d.entry_rowid AND vi.entry_id = "
                    "d.entry_id AND vi.vid != d.first")]
                self._set_meta("one_per_entry", 1)
            self._delete(gone)
            if gone:
                self._rewrite_bits()
            self._set_meta("stale_mark", stale_mark)
            return len(gone)

        return self._transaction(run)

    def _rewrite_bits(self) -> None:
        """Drop bit vectors whose vid is gone (rare: after a log file was deleted)."""
        import numpy as np

        vids, bits = self._all_bits()
        if not len(vids):
            return
        keep = np.isin(vids, np.array([r[0] for r in self.conn.execute(
            "SELECT vid FROM vec_items")], dtype=np.int64))
        self.conn.execute("DELETE FROM vec_bitchunks")
        self._append_bits(vids[keep], bits[keep])

    def _all_bits(self) -> tuple[Any, Any]:
        """(vids, sign bits) of every vector, read with SQLite's incremental blob I/O
        straight into two arrays: ~2x faster in a new process than fetching the chunk rows
        as bytes (measured at a million vectors)."""
        import numpy as np

        width = self._bit_width()
        chunks = self.conn.execute("SELECT chunk, n FROM vec_bitchunks ORDER BY chunk").fetchall()
        rows = sum(n for _, n in chunks)
        vids = np.empty(rows, dtype=np.int64)
        bits = np.empty((rows, width), dtype=np.uint64)
        at = 0
        for chunk, n in chunks:
            for column, out in (("vids", vids[at:at + n]), ("bits", bits[at:at + n])):
                with self.conn.blob_open("main", "vec_bitchunks", column, chunk, False) as blob:
                    blob.read_into(out)
            at += n
        return vids, bits

    def _bit_width(self) -> int:
        """uint64 words per packed bit vector."""
        return (int(self._meta("dim")) + 63) // 64

    def _pack(self, vectors: Any) -> Any:
        import numpy as np

        width = self._bit_width()
        packed = np.packbits(np.asarray(vectors) > 0, axis=1)
        padded = np.zeros((packed.shape[0], width * 8), dtype=np.uint8)
        padded[:, :packed.shape[1]] = packed
        return padded.view(np.uint64)

    def _append_bits(self, vids: Any, bits: Any) -> None:
        import numpy as np

        self._bits_changed()

        vids = np.ascontiguousarray(vids, dtype=np.int64)
        bits = np.ascontiguousarray(bits, dtype=np.uint64)
        last = self.conn.execute(
            "SELECT chunk, n, vids, bits FROM vec_bitchunks ORDER BY chunk DESC LIMIT 1").fetchone()
        start = 0
        if last is not None and last[1] < CHUNK:
            take = min(CHUNK - last[1], len(vids))
            self.conn.execute(
                "UPDATE vec_bitchunks SET n = ?, vids = ?, bits = ? WHERE chunk = ?",
                (last[1] + take, last[2] + vids[:take].tobytes(), last[3] + bits[:take].tobytes(),
                 last[0]))
            start = take
        chunk = (last[0] + 1) if last is not None else 1
        for i in range(start, len(vids), CHUNK):
            part = slice(i, min(i + CHUNK, len(vids)))
            self.conn.execute("INSERT INTO vec_bitchunks (chunk, n, vids, bits) VALUES (?, ?, ?, ?)",
                              (chunk, part.stop - part.start, vids[part].tobytes(),
                               bits[part].tobytes()))
            chunk += 1

    def _bits_changed(self) -> None:
        """Within the transaction that changes vec_bitchunks: a new generation (random, so
        that an index.db deleted and built again never meets its old snapshots), and no
        snapshot of the old sign bits is used again (see load_bits)."""
        self.forget_bits()
        self._set_meta("bits_generation", os.urandom(8).hex())

    def load_bits(self) -> tuple[Any, Any]:
        """Every sign-bit vector, as one (words, n) uint64 array: row w holds the w-th
        64-bit word of every vector (vector i is column i), which the Hamming pass reads
        contiguously (`_hamming_words`); and their vids (n int64). Read once per store. From
        the snapshot beside index.db when it is current (mapped, not read: ~1 ms instead of
        ~30 ms at a million vectors, and nothing to copy), else from SQLite, and then the
        snapshot is written for the next search."""
        if self._bits is None:
            with self.conn:  # one read transaction: the key and the bits of the same state
                key = self._snapshot_key()
                snapshot = self._read_snapshot(key)
                if snapshot is None:
                    vids, rows = self._all_bits()
            if snapshot is None:
                import numpy as np

                words = np.ascontiguousarray(rows.T)
                del rows
                self._write_snapshot(key, words, vids)
            self._bits = snapshot or (words, vids)
        return self._bits

    def forget_bits(self) -> None:
        """Read the sign bits again at the next search (another connection changed them)."""
        self._bits = None
        self._hamming = None

    def hamming(self, query: Any) -> Any:
        """The Hamming distance (uint16) of `query`'s sign bits to every stored sign-bit
        vector, in `load_bits` order: a pass over all of them, kept for the last query. A
        search's helper process runs it as soon as it has the query's vector, while the
        parent still works (promptlab.semantic.worker)."""
        import numpy as np

        query = np.ascontiguousarray(query, dtype=np.float32)
        if self._hamming is not None and self._hamming[0] == query.tobytes():
            return self._hamming[1]
        words, _ = self.load_bits()
        total = words.shape[1]
        packed_query = self._pack(query[None, :])[0]
        distance = np.empty(total, dtype=np.uint16)
        # Halves on two threads past a few hundred thousand vectors (numpy lets go of the
        # GIL in these loops).
        parts = 2 if total >= 200_000 and (os.cpu_count() or 1) > 1 else 1
        edges = [total * i // parts // WORD_STEP * WORD_STEP for i in range(parts)] + [total]
        if parts == 1:
            _hamming_words(words, packed_query, distance, 0, total)
        else:
            import threading

            workers = [threading.Thread(target=_hamming_words, name="hamming",
                                        args=(words, packed_query, distance, lo, hi))
                       for lo, hi in itertools.pairwise(edges)]
            for worker in workers:
                worker.start()
            for worker in workers:
                worker.join()
        self._hamming = (query.tobytes(), distance)
        return distance

    # The snapshot: `index.db-signs-v2-<key>.npy` (the sign bits) and `...-<key>.vids.npy`,
    # standard .npy files. The key names the state of vec_bitchunks it copies: the
    # generation every change renews, and the rows and chunks (which also catch a change
    # made by a promptlab from before the generation). A stale snapshot is never read;
    # writing a new one removes the others. Written to temporary files and renamed into
    # place (the vids first), so a reader sees both files whole or uses SQLite.

    def _snapshot_key(self) -> str:
        rows, chunks, last = self.conn.execute(
            "SELECT coalesce(sum(n), 0), count(*), coalesce(max(chunk), 0) "
            "FROM vec_bitchunks").fetchone()
        return f"{self._meta('bits_generation', '0')}-{rows}-{chunks}-{last}"

    def _snapshot_paths(self, key: str) -> tuple[Path, Path]:
        stem = f"{self.path.name}-signs-{SNAPSHOT}-{key}"
        return self.path.with_name(stem + ".npy"), self.path.with_name(stem + ".vids.npy")

    def _read_snapshot(self, key: str) -> tuple[Any, Any] | None:
        import numpy as np

        bits_path, vids_path = self._snapshot_paths(key)
        try:
            for path in (bits_path, vids_path):
                if not stat.S_ISREG(os.lstat(path).st_mode):  # never follow a planted link
                    return None
            bits = np.load(bits_path, mmap_mode="r")
            vids = np.load(vids_path, mmap_mode="r")
        except (OSError, ValueError):
            return None
        rows = int(key.split("-")[1])
        if (bits.dtype != np.uint64 or bits.shape != (self._bit_width(), rows)
                or vids.dtype != np.int64 or vids.shape != (rows,)):
            return None
        return bits, vids

    def _write_snapshot(self, key: str, bits: Any, vids: Any) -> None:
        """Best effort: a folder this process cannot write keeps searching from SQLite."""
        import contextlib
        import tempfile
        import time

        import numpy as np

        bits_path, vids_path = self._snapshot_paths(key)
        with contextlib.suppress(OSError):
            for path, array in ((vids_path, vids), (bits_path, bits)):
                fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp",
                                           dir=path.parent)
                try:
                    with os.fdopen(fd, "wb") as fh:
                        np.save(fh, array)
                    os.replace(tmp, path)
                except BaseException:
                    with contextlib.suppress(OSError):
                        os.unlink(tmp)
                    raise
        for old in self.path.parent.glob(f"{self.path.name}-signs-*"):
            # other snapshots, and the temporary files of a writer that was killed (a
            # search's helper is, when its search stops early), not of one still writing
            with contextlib.suppress(OSError):
                if old not in (bits_path, vids_path) and (
                        old.suffix != ".tmp" or old.stat().st_mtime < time.time() - 600):
                    old.unlink()

    def _coarse(self, query: Any, want: int, allowed: Any = None) -> list[int]:
        """The `want` vids nearest to `query` (among `allowed`) by their sign bits: the
        SHORTLIST nearest by Hamming distance (`hamming`), then the `want` of those whose
        set bits hold the largest sum of the query's values (the asymmetric distance)."""
        import numpy as np

        words, vids = self.load_bits()
        total = len(vids)
        if not total:
            return []
        distance = self.hamming(query)
        positions = None if allowed is None else np.flatnonzero(np.isin(vids, allowed))
        if positions is not None:
            if not len(positions):
                return []
            distance = distance[positions]
        shortlist = max(SHORTLIST, 100 * want // 15)
        if shortlist < len(distance):
            nearest = _smallest(distance, shortlist)
            positions = nearest if positions is None else positions[nearest]
        elif positions is None:
            positions = np.arange(total)
        if want < len(positions):
            rows = np.ascontiguousarray(words[:, positions].T)
            signs = np.unpackbits(rows.view(np.uint8), axis=1)[:, :len(query)]
            closeness = signs.astype(np.float32) @ query
            positions = positions[np.argpartition(-closeness, want)[:want]]
        return vids[positions].tolist()

    def _delete(self, vids: Sequence[int]) -> None:
        for start in range(0, len(vids), 500):
            chunk = list(vids[start:start + 500])
            marks = ", ".join("?" * len(chunk))
            self.conn.execute(f"DELETE FROM vec_exact WHERE vid IN ({marks})", chunk)
            self.conn.execute(f"DELETE FROM vec_items WHERE vid IN ({marks})", chunk)

    def _pending_where(self, since: float | None) -> tuple[str, list[Any]]:
        cursor = int(self._meta("cursor", 0) or 0) if self._has_table("vec_items") else 0
        where = "e.kind = 'llm' AND e.rowid > ?"
        params: list[Any] = [cursor]
        if since is not None:
            where += " AND e.ts >= ?"
            params.append(since)
        if self._has_table("vec_items"):
            where += (" AND NOT EXISTS (SELECT 1 FROM vec_items vi WHERE "
                      "vi.entry_rowid = e.rowid AND vi.entry_id = e.id)")
        return where, params

    def count_pending(self, since: float | None = None) -> int:
        """LLM entries in the index that have no vector yet."""
        where, params = self._pending_where(since)
        return self.conn.execute(f"SELECT count(*) FROM entries e WHERE {where}",
                                 params).fetchone()[0]

    def pending(self, limit: int, since: float | None = None,
                after: int = 0) -> list[tuple[Any, ...]]:
        """Rows (rowid, id, file_id, offset, length, …) of entries to embed, oldest first."""
        from promptlab.index.query import _select_hits

        where, params = self._pending_where(since)
        return self.conn.execute(
            f"SELECT {_select_hits()} FROM entries e WHERE {where} AND e.rowid > ? "
            "ORDER BY e.rowid LIMIT ?", [*params, after, limit]).fetchall()

    def add(self, items: Sequence[tuple[int, str]], vectors: Any, *,
            considered_upto: int | None = None, advance_cursor: bool = True) -> int:
        """Store one vector per (entry_rowid, entry_id), in one transaction, and return how
        many were stored: an entry that has a vector already (another process embedding the
        same calls got there first) keeps it. The cursor moves to `considered_upto`
        (entries up to it that got no vector had no text)."""
        import numpy as np

        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        info = self.model()
        if info is not None and vectors.ndim == 2 and vectors.shape[1] != info.dim:
            error = EmbeddingError(
                f"model {info.model} now returns {vectors.shape[1]}-dimensional vectors, but "
                f"the index holds {info.dim}-dimensional ones made with it ({self.path}): the "
                "model changed under the same name; run `promptlab logs embed --rebuild` to "
                "re-embed everything with it")
            error.retry_helps = False
            raise error
        if info is None or vectors.ndim != 2:
            raise EmbeddingError(f"cannot store vectors of shape {vectors.shape} in an index of "
                                 f"{info.dim if info else 'no'}-dimensional vectors ({self.path})")

        def run() -> int:
            nonlocal items, vectors
            rowids = [rowid for rowid, _ in items]
            have: set[tuple[int, str]] = set(select_in(
                self.conn, "SELECT entry_rowid, entry_id FROM vec_items WHERE entry_rowid IN "
                "({marks})", rowids))
            # Only entries as they are now: a sync meanwhile (a log file replaced while this
            # batch was embedded) renumbers them, and a vector stored under the old number
            # would be a second one once the entry is embedded under its new number.
            current: set[tuple[int, str]] | None = set(select_in(
                self.conn, "SELECT rowid, id FROM entries WHERE rowid IN ({marks})", rowids)
            ) if self._has_table("entries") else None  # (a store used on its own)
            keep = []
            for i, (rowid, entry_id) in enumerate(items):
                if (current is None or (rowid, entry_id) in current) \
                        and (rowid, entry_id) not in have:  # (nor twice in `items`)
                    have.add((rowid, entry_id))
                    keep.append(i)
            if len(keep) < len(items):
                items, vectors = [items[i] for i in keep], vectors[keep]
            start = (self.conn.execute("SELECT max(vid) FROM vec_items").fetchone()[0] or 0) + 1
            rows = [(start + i, rowid, entry_id) for i, (rowid, entry_id) in enumerate(items)]
            if rows:
                self._store(rows, vectors)
            if advance_cursor and considered_upto is not None:
                cursor = int(self._meta("cursor", 0) or 0)
                self._set_meta("cursor", max(cursor, considered_upto))
            return len(rows)

        return int(self._transaction(run))

    def _store(self, rows: list[tuple[int, int, str]], vectors: Any) -> None:
        """Insert (vid, entry_rowid, entry_id) rows, their vectors and their sign bits."""
        import numpy as np

        self.conn.executemany(
            "INSERT INTO vec_items (vid, entry_rowid, entry_id) VALUES (?, ?, ?)", rows)
        blobs = [(vid, vector.tobytes()) for (vid, _, _), vector in zip(rows, vectors,
                                                                         strict=True)]
        self.conn.executemany("INSERT INTO vec_exact (vid, embedding) VALUES (?, ?)", blobs)
        self._append_bits(np.array([r[0] for r in rows], dtype=np.int64), self._pack(vectors))

    def advance(self, considered_upto: int) -> None:
        """Move the cursor past entries that had nothing to embed."""
        def run() -> None:
            cursor = int(self._meta("cursor", 0) or 0)
            self._set_meta("cursor", max(cursor, considered_upto))

        if self._has_table("vec_items"):
            self._transaction(run)

    def count(self) -> int:
        if not self._has_table("vec_items"):
            return 0
        # Every vector has exactly one sign-bit row (added and dropped together), and the
        # chunks count theirs: 61 rows read at a million vectors instead of a million.
        return self.conn.execute("SELECT coalesce(sum(n), 0) FROM vec_bitchunks").fetchone()[0]

    def vector_of(self, entry_rowid: int, entry_id: str) -> Any:
        """The stored vector of an entry (numpy float32), or None."""
        import numpy as np

        if not self._has_table("vec_items"):
            return None
        row = self.conn.execute(
            "SELECT x.embedding FROM vec_items vi JOIN vec_exact x ON x.vid = vi.vid "
            "WHERE vi.entry_rowid = ? AND vi.entry_id = ?", (entry_rowid, entry_id)).fetchone()
        return None if row is None else np.frombuffer(row[0], dtype=np.float32)

    def cached_query(self, text: str) -> Any:
        """The stored vector of a search text (for the index's model), or None."""
        import numpy as np

        if not self._has_table("vec_queries"):
            return None
        row = self.conn.execute("SELECT embedding FROM vec_queries WHERE text = ?",
                                (text,)).fetchone()
        return None if row is None else np.frombuffer(row[0], dtype=np.float32)

    def cache_query(self, text: str, vector: Any) -> None:
        """Keep the vector (numpy, or float32 bytes) of a search text."""
        import time

        if not self._has_table("vec_queries"):
            return
        if not isinstance(vector, bytes):
            import numpy as np

            vector = np.ascontiguousarray(vector, dtype=np.float32).tobytes()

        def run() -> None:
            self.conn.execute("INSERT OR REPLACE INTO vec_queries (text, embedding, used) "
                              "VALUES (?, ?, ?)", (text, vector, time.time()))
            self.conn.execute("DELETE FROM vec_queries WHERE text NOT IN (SELECT text FROM "
                              "vec_queries ORDER BY used DESC LIMIT ?)", (QUERY_CACHE,))

        self._transaction(run)

    # -- search -----------------------------------------------------------------------------

    def knn(self, vector: Any, k: int, where: str = "1", params: Sequence[Any] = (), *,
            exclude: int | None = None, exact_max: int | None = None,
            rerank: int = RERANK) -> list[tuple[int, float]]:
        """The `k` entries nearest to `vector` among those matching `where` (SQL over
        `entries e`), as (entry_rowid, cosine distance), nearest first. `exclude`: an
        entry_rowid left out (the entry itself, for `similar`)."""
        import numpy as np

        if not self._has_table("vec_items") or k <= 0:
            return []
        k = min(k, MAX_K)
        query = np.ascontiguousarray(vector, dtype=np.float32).tobytes()
        params = list(params)
        exact_max = EXACT_MAX if exact_max is None else exact_max
        want = k + (1 if exclude is not None else 0)
        # Only whether there are more than exact_max matters: count no further.
        if where == "1":
            total = self.conn.execute("SELECT max(vid) FROM vec_items").fetchone()[0] or 0
        else:
            total = self.conn.execute(
                f"SELECT count(*) FROM (SELECT 1 FROM vec_items vi {_JOIN} WHERE {where} "
                "LIMIT ?)", [*params, exact_max + 1]).fetchone()[0]
        if total == 0:
            return []
        if total <= exact_max:  # exact: a scan of the allowed vectors
            if where == "1":
                rows = self.conn.execute(
                    "SELECT vid, vec_distance_cosine(embedding, ?) AS d FROM vec_exact "
                    "ORDER BY d LIMIT ?", [query, want + 16]).fetchall()
            else:
                rows = self.conn.execute(
                    "SELECT vi.vid, vec_distance_cosine(x.embedding, ?) AS d FROM vec_items vi "
                    f"{_JOIN} JOIN vec_exact x ON x.vid = vi.vid WHERE {where} "
                    "ORDER BY d LIMIT ?", [query, *params, want]).fetchall()
        else:  # coarse (Hamming over sign bits), then exact over the best candidates
            allowed_vids = None
            if where != "1":
                # One string from SQLite instead of a Python row per vector: 2.5x faster
                # for 160k of a million (measured).
                listed = self.conn.execute(
                    f"SELECT group_concat(vi.vid) FROM vec_items vi {_JOIN} WHERE {where}",
                    params).fetchone()[0]
                allowed_vids = np.array(listed.split(",") if listed else [], dtype=np.int64)
            coarse = self._coarse(np.frombuffer(query, dtype=np.float32),
                                  max(rerank, 15 * want), allowed_vids)
            rows = select_in(self.conn, "SELECT vid, vec_distance_cosine(embedding, ?) AS d "
                             "FROM vec_exact WHERE vid IN ({marks})", coarse, [query])
        # vids -> entry rowids, nearest first, dropping vectors whose entry left the index:
        # only as many looked up as the answer needs (each is a random read of two tables)
        ranked = sorted(rows, key=lambda r: r[1])
        out: list[tuple[int, float]] = []
        seen: set[int] = set()  # (an index embedded twice by an older promptlab: once each)
        step = min(max(2 * want, 32), VARS_PER_STATEMENT)
        for start in range(0, len(ranked), step):
            part = ranked[start:start + step]
            marks = ", ".join("?" * len(part))
            live = dict(self.conn.execute(
                f"SELECT vi.vid, vi.entry_rowid FROM vec_items vi {_JOIN} "
                f"WHERE vi.vid IN ({marks})", [vid for vid, _ in part]).fetchall())
            for vid, d in part:
                rowid = live.get(vid)
                if rowid is not None and rowid != exclude and rowid not in seen:
                    seen.add(rowid)
                    out.append((rowid, float(d)))
            if len(out) >= k:
                break
        return out[:k]
