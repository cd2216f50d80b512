"""Semantic search commands: `logs embed`, `logs similar`, and `logs search --semantic /
--hybrid` (the search command lives in cli/logs.py and hands those modes to `run_search`)."""

from __future__ import annotations

import sys
import time
from typing import Any

import click

from promptlab.cli._common import (
    Output,
    get_settings,
    project_options,
    refuse_file_as_log_dir,
    warn,
)
from promptlab.cli._logs_format import fmt_prompt, fmt_time, restyle

EMBED_RATE_HINT = 60  # entries/s, to say roughly how long `logs embed` will take
# promptlab.semantic.embed.EMBED_BATCH, not imported here: the CLI starts without it
EMBED_BATCH = 256


def model_option(f: Any) -> Any:
    return click.option(
        "model_spec", "--model", "--embedding-model", metavar="MODEL",
        help="Embedding model: local (the built-in all-MiniLM-L6-v2), a path to an ONNX file "
             "or sentence-transformers folder, openai:NAME (an OpenAI-compatible endpoint; "
             "base_url from [embeddings]) or python:module:function. Default: [embeddings] in "
             "the project config, else local.")(f)


def make_embedder(model_spec: str | None, *, verify: bool = False) -> Any:
    """The embedder the project config and --model ask for."""
    from promptlab.semantic.embedders import load_embedder

    return load_embedder(embedder_spec(model_spec), verify=verify)


def embedder_spec(model_spec: str | None) -> Any:
    from promptlab.semantic.embedders import parse_model_option, spec_from_config

    settings = get_settings()
    where = f"{settings.config_file.name if settings.config_file else 'project config'} " \
            "[embeddings]"
    spec = spec_from_config(settings.raw.get("embeddings"), settings.root, where)
    if model_spec:
        spec = parse_model_option(model_spec, spec)
    return spec


def _log_dir_or_none(out: Output | None) -> Any:
    log_dir = get_settings().log_dir
    refuse_file_as_log_dir(log_dir)
    if not log_dir.is_dir():
        if out is not None and out.structured:
            out.emit_json([])
        else:
            click.echo(f"No log entries yet: {log_dir} does not exist.", err=True)
        return None
    return log_dir


def _report_missing(results: Any) -> None:
    if results.embedded_now:
        click.echo(f"(embedded {results.embedded_now:,} new "
                   f"entr{'ies' if results.embedded_now != 1 else 'y'} first)", err=True)
    if results.missing:
        minutes = results.missing / EMBED_RATE_HINT / 60
        took = f"about {minutes:.0f} min" if minutes >= 1 else "under a minute"
        warn(f"{results.missing:,} LLM calls are not embedded yet and were left out; run "
             f"`promptlab logs embed` to add them ({took} with the local model)")


def _rows(results: Any, mode: str, out: Output) -> tuple[list[dict[str, Any]], list[str]]:
    mark = (("\x1b[1m", "\x1b[0m") if sys.stdout.isatty() and not out.structured and not out.csv
            else ("**", "**"))
    rows = []
    for hit in results.hits:
        score = f"{hit.score:.3f}" if mode == "semantic" else f"{hit.score:.4f}"
        snip = hit.snippet if out.structured or out.csv else hit.snippet[:90]
        rows.append({"score": score, "time": fmt_time(hit.entry.get("timestamp")),
                     "id": hit.entry.get("id"), "model": hit.entry.get("model") or "",
                     "prompt": fmt_prompt(hit.entry), "snippet": restyle(snip, mark)})
    return rows, ["score", "time", "id", "model", "prompt", "snippet"]


def run_search(query: str, mode: str, limit: int, model_spec: str | None, out: Output,
               filters: dict[str, Any], open_index: Any) -> None:
    """`logs search --semantic/--hybrid`: called by cli/logs.py, which passes its
    `open_index` (this module never imports cli.logs: that would be a circle)."""
    import os

    from promptlab import _entry
    from promptlab.semantic.embedders import LocalEmbedder, load_embedder
    from promptlab.semantic.search import cached_query, semantic_search
    from promptlab.semantic.worker import SearchWorker, release

    if "numpy" not in sys.modules:
        # OpenBLAS starts a thread per core when numpy is imported; a search does no
        # linear algebra worth a thread (measured: ~30 ms of CPU less at start-up).
        os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    warm = _entry.take_warm()  # the helper forked at start-up, if any
    worker = embedder = None
    try:
        filters = {k: v for k, v in filters.items() if k != "kind" or v != "llm"}
        spec = embedder_spec(model_spec)
        embedder = load_embedder(spec, verify=False)
        from promptlab.index.core import index_path

        log_dir = get_settings().log_dir
        db = index_path(log_dir)  # (in the cache, for a read-only log folder)
        cached = cached_query(log_dir, query)
        embeds_here = isinstance(embedder, LocalEmbedder) and cached is None
        if warm is not None and db.is_file():  # (the helper must never create index.db)
            # the helper does the vector work from here on (promptlab.semantic.worker);
            # the query's word pieces are worked out here, while it loads the model
            worker = SearchWorker.begin(warm, db, spec=spec if embeds_here else None,
                                        vector=cached)
            warm = None  # the worker's now (or let go, when it could not be reached)
            if worker is not None and embeds_here:
                worker.embed(embedder.encode([query]))
        if worker is None and embeds_here:
            embedder.preload([query])  # loads the model while the index syncs
        if not out.structured and not out.csv:
            # the table's import (~30 ms) while the helper searches (or the model loads):
            # this process would only wait
            def import_tabulate() -> None:
                import tabulate  # noqa: F401

            if worker is not None:
                worker.while_waiting = import_tabulate
            else:
                import_tabulate()
        index = open_index(out)
        if index is None:
            return
        index.close()
        results = semantic_search(query, log_dir=index.log_dir, mode=mode, limit=limit or None,
                                  embedder=embedder, synced=True, worker=worker, **filters)
    finally:
        if embedder is not None:
            embedder.close()
            _entry.keep(embedder)
        if worker is not None:
            worker.close()
        elif warm is not None:
            release(warm)
    _report_missing(results)
    rows, columns = _rows(results, mode, out)
    headers = ["similarity" if mode == "semantic" else "rrf score", "time (UTC)", "id",
               "model", "prompt", "start" if mode == "semantic" else "match"]
    out.table(rows, columns, headers=headers, json_rows=[h.to_dict() for h in results.hits],
              empty=f"No embedded log entries to compare with {query!r}.")


@click.command(name="embed")
@click.option("since", "--since", metavar="WHEN",
              help="Only calls from this time (2026-01-31, 7d, …); older ones stay unembedded.")
@click.option("limit", "-n", "--limit", type=click.IntRange(min=1), metavar="N",
              help="Embed at most N calls this run (the next run carries on).")
@click.option("rebuild", "--rebuild", is_flag=True,
              help="Forget every stored vector and embed everything again (after changing the "
                   "model).")
@click.option("batch", "--batch", type=click.IntRange(min=1, max=4096), default=EMBED_BATCH,
              show_default=True, help="Calls per batch (one transaction each).")
@model_option
@project_options
def logs_embed(since: str | None, limit: int | None, rebuild: bool, batch: int,
               model_spec: str | None) -> None:
    """Embed the logged calls that have no vector yet, for `logs search --semantic`.

    Incremental: only what is new since the last run is embedded, oldest first, one batch
    per transaction. Ctrl-C keeps every finished batch; run it again to carry on. Safe
    while other processes log. Secrets are redacted before any text reaches the model.

    \b
    Examples:
      promptlab logs embed
      promptlab logs embed --since 7d
      promptlab logs embed --model openai:nomic-embed-text
      promptlab logs embed --rebuild
    """
    from promptlab.semantic.search import embed_log

    log_dir = _log_dir_or_none(None)
    if log_dir is None:
        return
    embedder = make_embedder(model_spec, verify=True)
    bar = _Progress() if sys.stderr.isatty() else None
    try:
        stats = embed_log(log_dir=log_dir, embedder=embedder, since=since, limit=limit,
                          rebuild=rebuild, batch=batch, progress=bar)
    finally:
        embedder.close()
        if bar is not None:
            bar.done()
    rate = stats.embedded / stats.seconds if stats.seconds > 0 else 0.0
    if not stats.embedded and not stats.interrupted:
        click.echo(f"Nothing new to embed ({stats.vectors:,} calls embedded).")
        if stats.pending and since:
            click.echo(f"{stats.pending:,} older calls are not embedded (--since).", err=True)
        return
    message = (f"Embedded {stats.embedded:,} call{'s' if stats.embedded != 1 else ''} in "
               f"{stats.seconds:.1f} s ({rate:,.0f}/s) with {embedder.model_id}.")
    if stats.skipped:
        message += f" {stats.skipped:,} had no text to embed."
    if stats.already:
        message += f" {stats.already:,} were embedded meanwhile by a search."
    click.echo(message)
    if stats.interrupted:
        warn(f"interrupted; the finished batches are kept and {stats.pending:,} calls are left: "
             "run `promptlab logs embed` again to carry on")
        raise click.exceptions.Exit(130)
    if stats.pending:
        click.echo(f"{stats.pending:,} calls are still to embed"
                   + (" (older than --since)." if since else "; run it again to carry on."),
                   err=True)


def run_similar(entry_id: str, limit: int, model_spec: str | None, out: Output,
                filters: dict[str, Any], open_index: Any) -> None:
    """`logs similar ID`: called by cli/logs.py (which owns the filter options)."""
    from promptlab.semantic.search import similar

    filters = {k: v for k, v in filters.items() if k != "kind" or v != "llm"}
    embedder = make_embedder(model_spec)
    index = open_index(out, empty=[])
    if index is None:
        raise click.exceptions.Exit(1)
    index.close()
    try:
        results = similar(entry_id, log_dir=index.log_dir, limit=limit or None,
                          embedder=embedder, synced=True, **filters)
    finally:
        embedder.close()
    _report_missing(results)
    rows, columns = _rows(results, "semantic", out)
    out.table(rows, columns, headers=["similarity", "time (UTC)", "id", "model", "prompt",
                                      "start"],
              json_rows=[h.to_dict() for h in results.hits],
              empty="No other embedded entries to compare with.")


class _Progress:
    """A one-line progress bar on stderr (only used on a TTY)."""

    def __init__(self) -> None:
        self.start = time.perf_counter()
        self.shown = False

    def __call__(self, done: int, total: int) -> None:
        elapsed = time.perf_counter() - self.start
        rate = done / elapsed if elapsed > 0 else 0.0
        left = (total - done) / rate if rate > 0 else 0.0
        width = 30
        filled = int(width * done / max(total, 1))
        line = (f"\rembedding [{'#' * filled}{'.' * (width - filled)}] {done:,}/{total:,} "
                f"{rate:,.0f}/s, {left:,.0f} s left ")
        click.echo(line, err=True, nl=False)
        self.shown = True

    def done(self) -> None:
        if self.shown:
            click.echo("", err=True)
