"""Semantic and hybrid search over the log, and the entries nearest to one entry.

    from promptlab.semantic import semantic_search, similar

    semantic_search("customer wants their money back", since="7d")       # by meaning
    semantic_search("refund policy", mode="hybrid", prompt="support")    # + full text
    similar("01JD3Z6X0M", limit=5)

Hybrid ranking is reciprocal rank fusion (Cormack et al. 2009): each entry scores
sum(1 / (60 + rank)) over the full-text (bm25) list and the vector list, each cut at its best
FUSE_DEPTH. The full-text side matches ANY of the query's words (minus common English stop
words), ranked by bm25 — requiring all of them, as `logs search` does, finds nothing for most
sentences.

Missing vectors: a search first embeds up to AUTO_EMBED new entries itself (seconds at
most); with more missing, it searches what is embedded and reports how many are left out,
so the caller can say `run promptlab logs embed`. Nothing is embedded silently for long.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from promptlab.errors import EmbeddingError, UsageError
from promptlab.semantic.embed import EMBED_BATCH, RECIPE, EmbedStats, embed_pending, entry_text
from promptlab.semantic.embedders import Embedder

AUTO_EMBED = 256
FUSE_DEPTH = 100
RRF_K = 60
MODES = ("semantic", "hybrid")

_STOP = frozenset(str.split("""a about above after again against all am an and any are as at be because
been before being below between both but by can could did do does doing down during each few
for from further had has have having he her here hers herself him himself his how i i'd if in
into is it its itself just me more most my myself no nor not now of off on once only or other
our ours ourselves out over own same she should so some such than that the their theirs them
themselves then there these they this those through to too under until up very was we were
what when where which while who whom why will with would you your yours yourself yourselves
want wants need needs get got like"""))
_WORD = re.compile(r"[^\W_]+")


@dataclass
class SemanticHit:
    """One result. `distance`: cosine distance of its vector to the query's (0 = same
    direction, 2 = opposite; None when only full text found it). `score`: 1 - distance for
    semantic search, the fused RRF score for hybrid. `bm25`: its full-text rank (hybrid)."""

    entry: dict[str, Any]
    score: float
    distance: float | None = None
    bm25: float | None = None
    snippet: str = ""
    rowid: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"score": self.score, "distance": self.distance, "bm25": self.bm25,
                "snippet": self.snippet, "entry": self.entry}


@dataclass
class SemanticResults:
    """Hits, best first, and what the search could not see."""

    hits: list[SemanticHit] = field(default_factory=list)
    model: str = ""
    embedded_now: int = 0  # new entries this search embedded first
    missing: int = 0  # LLM entries left out because they have no vector yet
    vectors: int = 0  # entries with a vector

    def __iter__(self) -> Any:
        return iter(self.hits)

    def __len__(self) -> int:
        return len(self.hits)


def resolve_embedder(embedder: Embedder | str | None = None, *, log_dir: Any = None,
                     verify: bool = False) -> Embedder:
    """An Embedder: given, named like `--model`, or from the project's [embeddings]."""
    if isinstance(embedder, Embedder):
        return embedder
    from promptlab.config import load_settings
    from promptlab.semantic.embedders import load_embedder, parse_model_option, spec_from_config

    settings = load_settings()
    where = f"{settings.config_file or 'project config'} [embeddings]"
    spec = spec_from_config(settings.raw.get("embeddings"), settings.root, where)
    if isinstance(embedder, str):
        spec = parse_model_option(embedder, spec)
    return load_embedder(spec, verify=verify)


def _log_dir(log_dir: Any) -> Path:
    if log_dir is None:
        from promptlab.config import default_log_dir

        return default_log_dir()
    return Path(log_dir).expanduser()


def _synced_index(log_dir: Path) -> Any:
    from promptlab.index.core import Index

    index = Index(log_dir)
    index.sync()
    return index


def semantic_search(text: str, *, log_dir: str | os.PathLike[str] | None = None,
                    mode: str = "semantic", limit: int | None = 20,
                    embedder: Embedder | str | None = None, auto_embed: int | None = None,
                    synced: bool = False, fts_match: str = "all", worker: Any = None,
                    **filters: Any) -> SemanticResults:
    """Entries closest in meaning to `text` (mode="semantic"), or fused with full-text
    ranks (mode="hybrid"). Filters as for `query`: prompt, version, model, tag, experiment,
    variant, status, since, until. `embedder`: an Embedder, a `--model` string, or None for
    the project's [embeddings]. `worker`: the command line's helper process
    (promptlab.semantic.worker.SearchWorker), which then does the vector work."""
    from promptlab.index.query import make_filters, row_limit, search_entries

    if mode not in MODES:
        raise UsageError(f"mode {mode!r}: expected semantic or hybrid")
    if text is not None and not isinstance(text, str):
        raise UsageError(f"the search text must be a string, not {type(text).__name__}")
    if fts_match not in ("all", "any"):
        raise UsageError(f"fts_match {fts_match!r}: expected 'all' (every word) or 'any'")
    if not text or not text.strip():
        raise UsageError("nothing to search for: give a sentence or a few words")
    row_limit(limit)  # a whole number of 0 or more (the value stays: knn bounds it)
    flt = make_filters(None, filters)
    folder = _log_dir(log_dir)
    model = resolve_embedder(embedder, log_dir=folder)
    depth = max(limit or FUSE_DEPTH, FUSE_DEPTH) if mode == "hybrid" else (limit or 1000)
    fts_ranked: list[tuple[int, float]] = []
    index = _synced_index(folder) if not synced else _open_index(folder)
    try:
        if mode == "hybrid":
            fts_query = _fts_query(text, fts_match)
            if fts_query:
                hits = search_entries(index, fts_query, flt, limit=depth)
                fts_ranked = [(h.rowid, h.rank or 0.0) for h in hits]
        path = index.path
    finally:
        index.close()  # never two SQLite libraries on one file at once (see index.vectors)
    results = SemanticResults(model=model.model_id)
    vector_ranked = _knn(path, folder, model, text, flt, depth, auto_embed, results,
                         worker=worker)
    return _finish(folder, _fts_query(text, fts_match) if mode == "hybrid" else "", mode,
                   fts_ranked, vector_ranked, limit, results)


@contextmanager
def _one_embedding_run(db: Path) -> Iterator[None]:
    """Hold `<index.db>-embed.lock` (flock) while one `logs embed` runs: a second one on
    the same log would embed the very calls the first is embedding (VectorStore.add keeps
    the first vector of each; the work would be done twice). Where there is no flock
    (Windows) or the lock file cannot be made, the runs are not kept apart."""
    try:
        import fcntl

        fd = os.open(f"{db}-embed.lock", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    except (ImportError, OSError):
        yield
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UsageError(f"another `promptlab logs embed` is running on {db.parent}; wait "
                             "for it to finish (it embeds the calls this one would)") from None
        yield
    finally:
        os.close(fd)


def cached_query(log_dir: str | os.PathLike[str], text: str) -> bytes | None:
    """The vector (float32 bytes) the index holds for this search text, if any: then the
    model need not be loaded at all."""
    import sqlite3

    from promptlab.index.core import index_path

    path = index_path(Path(log_dir))  # (in the cache, for a read-only log folder)
    if not path.exists():  # never create index.db here (its permissions)
        return None
    # The standard sqlite3, read-only: vec_queries is a plain table, so neither apsw nor the
    # sqlite-vec extension (~10 ms) is needed to look at it. Closed before anything else
    # opens the file (see promptlab.index.vectors).
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=5)
    except sqlite3.Error:
        return None
    try:
        row = conn.execute("SELECT embedding FROM vec_queries WHERE text = ?",
                           (text,)).fetchone()
    except sqlite3.Error:  # no vectors yet, or the file is busy: load the model anyway
        return None
    finally:
        conn.close()
    return None if row is None else bytes(row[0])


def _fts_query(text: str, fts_match: str) -> str:
    """The full-text side of a hybrid search: every word of `text` ("all"), or any of its
    words that is not a stop word ("any"), in `logs search` syntax."""
    from promptlab.index.fts import SearchQueryError, parse_search

    if fts_match == "all":
        try:
            parse_search(text)
        except SearchQueryError:
            return ""
        return text
    words = [w for w in _WORD.findall(text) if w.casefold() not in _STOP]
    return " OR ".join(words)


def _open_index(log_dir: Path) -> Any:
    from promptlab.index.core import Index

    return Index(log_dir)


def _knn(path: Path, log_dir: Path, model: Embedder, text: str, flt: Any, depth: int,
         auto_embed: int | None, results: SemanticResults, exclude: int | None = None,
         vector: Any = None, worker: Any = None) -> list[tuple[int, float]]:
    from promptlab.index.vectors import EXACT_MAX, VectorStore

    with VectorStore(path) as store:
        store.check_entries()
        changed = store.check_rowids() > 0  # vectors dropped: the sign bits were rewritten
        info = store.check_model(model.model_id, RECIPE)
        missing = store.count_pending()
        if missing and missing <= (AUTO_EMBED if auto_embed is None else auto_embed):
            results.embedded_now = embed_pending(store, model, log_dir).embedded
            changed = changed or results.embedded_now > 0
            missing = store.count_pending()
            info = store.model()
        results.missing = missing
        results.vectors = store.count()
        if info is None:
            raise EmbeddingError(
                f"nothing in {log_dir} is embedded yet ({missing:,} LLM calls): run `promptlab "
                "logs embed` first (the local model embeds roughly 50-100 calls a second)")
        if flt.kind == "llm":  # only LLM calls have vectors: no need to filter on it
            flt = replace(flt, kind=None)
        where, params = flt.where(conn=store.conn)
        if worker is not None:
            ranked = _knn_by_worker(store, worker, model, text, vector, changed, where, params,
                                    depth, exclude)
            if ranked is not None:
                return ranked
        if vector is None:
            vector = store.cached_query(text)
            if vector is None:
                if results.vectors > EXACT_MAX:
                    # read the sign bits while the model loads (LocalEmbedder.preload)
                    store.load_bits()
                vector = model.embed([text])[0]
                store.cache_query(text, vector)
        return store.knn(vector, depth, where, params, exclude=exclude)


def _knn_by_worker(store: Any, worker: Any, model: Embedder, text: str, vector: Any,
                   changed: bool, where: str, params: list[Any], depth: int,
                   exclude: int | None) -> list[tuple[int, float]] | None:
    """`_knn`'s last step done by the helper process (promptlab.semantic.worker): its
    ranking, or None when it failed (the caller then does the step itself)."""
    from promptlab.semantic.worker import Job

    new_text = False
    if vector is None and not worker.embeds:  # a model the helper was not asked to run
        vector = store.cached_query(text)
        if vector is None:
            vector = model.embed([text])[0]
            new_text = True
    if vector is not None and not isinstance(vector, bytes):
        import numpy as np

        vector = np.ascontiguousarray(vector, dtype=np.float32).tobytes()
    cache = text if text and (new_text or worker.embeds_query) else None
    return worker.knn(Job(where, list(params), depth, exclude, vector, changed, cache))


def _finish(log_dir: Path, text: str, mode: str, fts_ranked: list[tuple[int, float]],
            vector_ranked: list[tuple[int, float]], limit: int | None,
            results: SemanticResults) -> SemanticResults:
    from promptlab.index.core import Index
    from promptlab.index.fts import parse_search, snippet
    from promptlab.index.query import _select_hits, load_entries
    from promptlab.index.vectors import select_in

    distance = dict(vector_ranked)
    bm25 = dict(fts_ranked)
    if mode == "hybrid":
        fused: dict[int, float] = {}
        for ranked in (fts_ranked[:FUSE_DEPTH], vector_ranked[:FUSE_DEPTH]):
            for position, (rowid, _) in enumerate(ranked, start=1):
                fused[rowid] = fused.get(rowid, 0.0) + 1.0 / (RRF_K + position)
        order = sorted(fused, key=lambda r: (-fused[r], distance.get(r, 9.0)))
        scores = fused
    else:
        order = [rowid for rowid, _ in vector_ranked]
        scores = {rowid: 1.0 - d for rowid, d in vector_ranked}
    if limit is not None:
        order = order[:limit]
    if not order:
        return results
    terms = parse_search(text).highlight_terms() if text else []
    with Index(log_dir) as index:
        sql = "SELECT " + _select_hits() + " FROM entries e WHERE e.rowid IN ({marks})"
        rows = {r[0]: r for r in select_in(index.conn, sql, order)}
        found = [rows[r] for r in order if r in rows]
        hits = load_entries(index, found)
    for hit in hits:
        results.hits.append(SemanticHit(
            entry=hit.entry, score=round(scores[hit.rowid], 6),
            distance=None if hit.rowid not in distance else round(distance[hit.rowid], 6),
            bm25=bm25.get(hit.rowid), rowid=hit.rowid,
            snippet=snippet(hit.entry, terms, width=160)))
    return results


def similar(entry_ref: str, *, log_dir: str | os.PathLike[str] | None = None,
            limit: int | None = 10, embedder: Embedder | str | None = None,
            auto_embed: int | None = None, synced: bool = False,
            **filters: Any) -> SemanticResults:
    """The entries nearest in meaning to one entry (by id, unique prefix, or `last`)."""
    from promptlab.index.query import find_entry_row, load_entries, make_filters, row_limit

    row_limit(limit)  # a whole number of 0 or more (the value stays: knn bounds it)
    flt = make_filters(None, filters)
    folder = _log_dir(log_dir)
    model = resolve_embedder(embedder, log_dir=folder)
    index = _synced_index(folder) if not synced else _open_index(folder)
    try:
        row = find_entry_row(index, entry_ref)
        entry = load_entries(index, [row])[0].entry
        path = index.path
    finally:
        index.close()
    rowid, entry_id = row[0], row[1]
    results = SemanticResults(model=model.model_id)
    vector = None
    from promptlab.index.vectors import VectorStore

    with VectorStore(path) as store:
        if store.check_model(model.model_id, RECIPE) is not None:
            vector = store.vector_of(rowid, entry_id)
    if vector is None:
        text = entry_text(entry, model.max_chars)
        if not text:
            raise EmbeddingError(f"entry {entry_id} has no user message or response to compare")
        vector = model.embed([text])[0]
    ranked = _knn(path, folder, model, "", flt, limit or 1000, auto_embed, results,
                  exclude=rowid, vector=vector)
    return _finish(folder, "", "semantic", [], ranked, limit, results)


def embed_log(*, log_dir: str | os.PathLike[str] | None = None,
              embedder: Embedder | str | None = None, since: Any = None,
              limit: int | None = None, rebuild: bool = False, batch: int = EMBED_BATCH,
              progress: Any = None) -> EmbedStats:
    """Embed every LLM entry that has no vector yet (`promptlab logs embed`)."""
    from promptlab.index.query import parse_when, row_limit
    from promptlab.index.vectors import EXACT_MAX, VectorStore

    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise UsageError(f"batch {batch!r}: expected a whole number of calls, 1 or more")
    row_limit(limit)  # a whole number of 0 or more

    folder = _log_dir(log_dir)
    model = resolve_embedder(embedder, log_dir=folder, verify=True)
    since_ts = parse_when(since, option="since")
    index = _synced_index(folder)
    path = index.path
    index.close()
    with _one_embedding_run(path), VectorStore(path) as store:
        store.check_entries()
        if rebuild:
            store.clear()
        store.check_rowids()
        store.check_model(model.model_id, RECIPE)
        stats = embed_pending(store, model, folder, since=since_ts, limit=limit,
                              batch=batch, progress=progress)
        if stats.embedded and not stats.interrupted and store.count() > EXACT_MAX:
            # the sign bits' snapshot for the searches to come (see VectorStore.load_bits):
            # written here, once, rather than by the next search
            store.load_bits()
        return stats
