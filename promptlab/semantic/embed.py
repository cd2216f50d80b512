"""What is embedded, and embedding the log incrementally.

The text of an entry (RECIPE): its user message, then its response — or its error when the
call failed. Not the system prompt: it is the same for every call of a prompt version, so
it would pull all of them together and drown what differs (use --prompt to narrow to one
prompt instead). Entries that logged only `messages` use their user and assistant turns.
Only LLM calls are embedded (not spans or feedback).

Long texts are cut, not chunked: one vector per entry. The budget (`max_chars` of the
embedder: 512 characters for the local model, which reads 128 word pieces) is shared
between the two parts — the user message gets up to half and the response the rest, or
more when the other part is short — so a long pasted document never pushes the answer
out. Built-in secret redaction (promptlab.logs.redact) runs on the text before it reaches
any model or endpoint.

Embedding goes by position, like sync: entries are taken oldest first in batches, each
batch is committed in its own transaction, and the index remembers how far it got. Ctrl-C
loses at most the batch in flight; the next run carries on.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from promptlab.errors import PromptlabError
from promptlab.semantic.embedders import Embedder

if TYPE_CHECKING:  # concurrent.futures costs a search ~8 ms it does not need
    from concurrent.futures import Future

RECIPE = "user+response/v1"
# Calls per batch of `logs embed` (one transaction each). The built graph runs texts of one
# length together, and a batch ends with a wait for its last run: 256 calls give runs of
# full size and 4x fewer waits than 64. Measured through embed_log, same run, alternating,
# 4 x 1,024 calls: median 103.8 against 93.5 calls/s (1.11x), both cores busy 97 % of the
# time against 87 %.
EMBED_BATCH = 256


def entry_text(entry: dict[str, Any], max_chars: int) -> str:
    """The text embedded for one entry (empty when it has none)."""
    from promptlab.index.parse import entry_texts
    from promptlab.logs.redact import redact_text

    _, user, response = entry_texts(entry)
    if not response and isinstance(entry.get("error"), str):
        response = entry["error"]
    user = " ".join((user or "").split())
    response = " ".join((response or "").split())
    half = max_chars // 2
    user_budget = max(half, max_chars - len(response))
    user = user[:user_budget]
    response = response[:max(0, max_chars - len(user) - 1)]
    text = f"{user}\n{response}".strip()
    return redact_text(text) if text else ""


@dataclass
class EmbedStats:
    embedded: int = 0
    skipped: int = 0  # entries without text
    already: int = 0  # embedded meanwhile by another process (theirs are kept)
    pending: int = 0  # still to embed when the run stopped (limit reached or interrupted)
    vectors: int = 0  # entries with a vector after the run
    seconds: float = 0.0
    interrupted: bool = False


class _EntryReader:
    """What `promptlab.index.query.load_entries` needs from an index: `.conn`, `.log_dir`."""

    def __init__(self, conn: Any, log_dir: Path):
        self.conn, self.log_dir = conn, log_dir


def embed_pending(store: Any, embedder: Embedder, log_dir: str | os.PathLike[str], *,
                  since: float | None = None, limit: int | None = None, batch: int = EMBED_BATCH,
                  progress: Callable[[int, int], None] | None = None) -> EmbedStats:
    """Embed the LLM entries of the index that have no vector yet, oldest first, one
    transaction per batch. `progress(done, total)` after each batch.

    Pipelined: while the model embeds one batch (on its own thread; onnxruntime and HTTP
    let go of the GIL), this thread reads and redacts the next one and stores the one
    before, so the cores never wait for Python between batches. Batches are still stored
    in order, so Ctrl-C loses only what was not yet stored."""
    from concurrent.futures import ThreadPoolExecutor

    from promptlab.index.query import load_entries

    started = time.perf_counter()
    stats = EmbedStats()
    reader = _EntryReader(store.conn, Path(log_dir))
    total = store.count_pending(since)
    if limit is not None:
        total = min(total, limit)
    read = 0  # entries taken from the index so far (embedded or skipped, or in flight)

    def next_batch(after: int) -> _Batch | None:
        nonlocal read
        if read >= total:
            return None
        rows = store.pending(min(batch, total - read), since, after)
        if not rows:
            return None
        job = _Batch(last=rows[-1][0], considered=len(rows))
        for hit in load_entries(reader, rows):
            text = entry_text(hit.entry, embedder.max_chars)
            if text:
                job.items.append((hit.rowid, hit.entry.get("id") or hit.fields["id"]))
                job.texts.append(text)
        read += len(rows)
        return job

    def store_batch(job: _Batch) -> None:
        if job.future is not None:
            vectors = job.future.result()
            if store.model() is None:
                store.start(embedder.model_id, int(vectors.shape[1]), RECIPE)
            stored = store.add(job.items, vectors, considered_upto=job.last,
                               advance_cursor=since is None)
            stats.embedded += stored
            stats.already += len(job.texts) - stored
        elif since is None:
            store.advance(job.last)
        stats.skipped += job.considered - len(job.texts)
        if progress is not None:
            progress(stats.embedded + stats.skipped + stats.already, total)

    pool = ThreadPoolExecutor(1, "embed-batch")
    in_flight: _Batch | None = None
    try:
        upcoming = next_batch(0)
        while upcoming is not None:
            if in_flight is not None and in_flight.future is not None:
                in_flight.future.result()  # the model is free: give it the next batch
            if upcoming.texts:
                upcoming.future = pool.submit(embedder.embed, upcoming.texts)
            done, in_flight = in_flight, upcoming
            if done is not None:
                store_batch(done)
            upcoming = next_batch(in_flight.last)
        if in_flight is not None:
            store_batch(in_flight)
    except KeyboardInterrupt:
        stats.interrupted = True
    except PromptlabError as exc:  # the model or endpoint failed: say what is kept
        pool.shutdown(wait=True, cancel_futures=True)
        if not getattr(exc, "retry_helps", True):
            raise
        left = store.count_pending(since)
        kept = (f"the {stats.embedded:,} call{'s' if stats.embedded != 1 else ''} embedded "
                "before it are kept" if stats.embedded else "nothing was embedded")
        exc.args = (f"{exc}; {kept}, {left:,} still to embed: run `promptlab logs embed` "
                    "again to carry on", *exc.args[1:])
        raise
    finally:
        # an interrupted batch may still be running: let it finish on its own, unstored
        pool.shutdown(wait=not stats.interrupted, cancel_futures=True)
    stats.pending = store.count_pending(since)
    stats.vectors = store.count()
    stats.seconds = time.perf_counter() - started
    return stats


@dataclass
class _Batch:
    """One batch of the pipeline: what to store, and the model's answer when it comes."""

    last: int  # rowid of its last entry: the cursor once it is stored
    considered: int  # entries it covers (with text or without)
    items: list[tuple[int, str]] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    future: Future[Any] | None = None
