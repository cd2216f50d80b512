"""Log commands: `logs` (list), `logs search`, `logs show`, `logs reindex`, `trace`, `costs`.

Every command syncs the index first, so results are never stale. Heavy modules are not
imported here: `promptlab logs --help` must stay fast.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click

from promptlab.cli._common import (
    Output,
    Styled,
    get_settings,
    output_options,
    printable,
    project_options,
    refuse_file_as_log_dir,
    warn,
)
from promptlab.cli._lazy import LazyGroup
from promptlab.cli._logs_format import (
    ENTRY_COLUMNS,
    ENTRY_HEADERS,
    entry_row,
    fmt_cost,
    fmt_ms,
    fmt_prompt,
    fmt_time,
    render_entry,
    render_trace,
    restyle,
)

if TYPE_CHECKING:
    from promptlab.index.core import Index
    from promptlab.index.query import Filters


# -- shared options ---------------------------------------------------------------------------


def filter_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """--prompt --version --model --tag --experiment --variant --status --kind --since --until"""
    for decorator in reversed([
        click.option("prompt", "--prompt", metavar="ID",
                     help="Prompt id (also ID@v2 or ID/v2 for one version)."),
        click.option("version", "--version", metavar="vN", help="Prompt version (v2 or 2)."),
        click.option("model", "-m", "--model", metavar="MODEL",
                     help="Model name; * and ? match any characters."),
        click.option("tags", "-t", "--tag", multiple=True, metavar="TAG",
                     help="Tag (repeat: entries with all of them)."),
        click.option("experiment", "-e", "--experiment", metavar="NAME", help="Experiment."),
        click.option("variant", "--variant", metavar="NAME", help="Experiment variant."),
        click.option("status", "--status", type=click.Choice(["ok", "error"]),
                     help="Only successful calls, or only failures."),
        click.option("kind", "--kind", type=click.Choice(["llm", "span", "feedback", "all"]),
                     default="llm", show_default=True, help="Kind of entry."),
        click.option("since", "--since", metavar="WHEN",
                     help="From this time: 2026-01-31, 2026-01-31T14:00, 30m, 24h, 7d, today."),
        click.option("until", "--until", metavar="WHEN",
                     help="Before this time (a date includes that whole day)."),
    ]):
        f = decorator(f)
    return f


def limit_option(f: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("limit", "-n", "--limit", type=click.IntRange(min=0), default=20,
                        show_default=True, help="How many entries (0: all).")(f)


def _filters(**values: Any) -> Filters:
    from promptlab.index.query import make_filters

    return make_filters(None, values)


def open_index(out: Output | None = None, *, empty: Any = None) -> Index | None:
    """The synced index of the project's log folder, or None (after saying so) when the
    folder does not exist yet."""
    from promptlab.index.core import Index

    log_dir = get_settings().log_dir
    refuse_file_as_log_dir(log_dir)
    if not log_dir.is_dir():
        if out is not None and out.structured:
            out.emit_json([] if empty is None else empty)
        else:
            click.echo(f"No log entries yet: {log_dir} does not exist.", err=True)
        return None
    index = Index(log_dir)
    report_sync(index, index.sync())
    return index


def report_sync(index: Index, stats: Any) -> None:
    if stats.malformed:
        first = f" (first: {stats.problems[0]})" if stats.problems else ""
        warn(f"skipped {stats.malformed} malformed log line{'s' if stats.malformed > 1 else ''}"
             f"{first}; `promptlab logs check` lists them")
    if stats.duplicates:
        warn(f"{stats.duplicates} log line{'s repeat ids' if stats.duplicates > 1 else ' repeats an id'}"
             " already indexed (a copied file or line?); each id is indexed once")
    if stats.replaced:
        warn(f"{stats.replaced} log file{'s were' if stats.replaced > 1 else ' was'} replaced "
             "since the last sync and read again")
    stale = index.conn.execute("SELECT value FROM meta WHERE key = 'fts_stale'").fetchone()
    total = index.conn.execute("SELECT max(rowid) FROM entries").fetchone()[0] or 0
    if stale and stale[0] > max(10_000, total // 5):
        warn(f"the search index holds {stale[0]:,} rows of removed log lines; "
             "`promptlab logs reindex` compacts it")


# -- logs -------------------------------------------------------------------------------------


@click.group(
    "logs", cls=LazyGroup, invoke_without_command=True,
    lazy_subcommands={"check": "promptlab.cli.logs_check:logs_check",
                      "embed": "promptlab.cli.semantic:logs_embed"},
)
@limit_option
@filter_options
@output_options
@project_options
@click.pass_context
def logs(ctx: click.Context, out: Output, limit: int, **filters: Any) -> None:
    """List logged calls, newest first; search, show and rebuild the index.

    \b
    Examples:
      promptlab logs -n 5
      promptlab logs --prompt code-review@v2 --since 7d
      promptlab logs --status error --json
      promptlab logs search "rate limit"
      promptlab logs show last
    """
    if ctx.invoked_subcommand is not None:
        return
    from promptlab.index.query import list_entries

    flt = _filters(**filters)
    index = open_index(out)
    if index is None:
        return
    with index:
        hits = list_entries(index, flt, limit or None)
    entries = [h.entry for h in hits]
    out.table([entry_row(e) for e in entries], ENTRY_COLUMNS, headers=ENTRY_HEADERS,
              json_rows=entries, empty="No matching log entries.")


@logs.command(name="search")
@click.argument("query")
@limit_option
@click.option("sort", "--sort", type=click.Choice(["rank", "recent"]), default="rank",
              show_default=True,
              help="rank: best matches among the newest --window; recent: newest first.")
@click.option("window", "--window", type=click.IntRange(min=0), default=1000,
              show_default=True, help="How many of the newest matches --sort rank ranks "
              "(0: every match; slower on large logs).")
@click.option("field_name", "--in", type=click.Choice(["system", "user", "response"]),
              help="Search only the system prompt, the user message or the response.")
@click.option("raw", "--fts", is_flag=True,
              help="QUERY is raw SQLite FTS5 syntax (NEAR, column filters, …).")
@click.option("mode", "--semantic", flag_value="semantic",
              help="Search by meaning (embeddings; see `promptlab logs embed`).")
@click.option("mode", "--hybrid", flag_value="hybrid",
              help="Full-text and meaning, ranks fused (reciprocal rank fusion).")
@click.option("model_spec", "--embedding-model", metavar="MODEL",
              help="Embedding model for --semantic/--hybrid (default: [embeddings] setting).")
@filter_options
@output_options
@project_options
def logs_search(query: str, limit: int, sort: str, window: int, field_name: str | None,
                raw: bool, mode: str | None, model_spec: str | None, out: Output,
                **filters: Any) -> None:
    """Full-text search of prompts and responses, with snippets.

    \b
    QUERY words are searched literally (case and accents ignored), plus:
      "exact phrase"    retr*  (prefix)    a OR b    a -b  (a without b)

    \b
    Examples:
      promptlab logs search timeout
      promptlab logs search '"rate limit" -retry' --since 7d --prompt code-review
      promptlab logs search 'NEAR(stack overflow, 5)' --fts
      promptlab logs search --semantic "customer wants their money back"
    """
    if mode is not None:
        from promptlab.cli.semantic import run_search
        from promptlab.errors import UsageError

        if raw or field_name:
            raise UsageError(f"{'--fts' if raw else '--in'} applies to full-text search, not "
                             f"--{mode}")

        run_search(query, mode, limit, model_spec, out, filters, open_index)
        return
    from promptlab.index.fts import parse_search
    from promptlab.index.query import search_entries

    flt = _filters(**filters)
    if not raw:
        parse_search(query)  # a query with nothing to search for fails before any I/O
    index = open_index(out)
    if index is None:
        return
    mark = (("\x1b[1m", "\x1b[0m") if sys.stdout.isatty() and not out.structured and not out.csv
            else ("**", "**"))
    with index:
        hits = search_entries(index, query, flt, limit=limit or None, sort=sort,
                              window=window or None, raw=raw, field_name=field_name,
                              snippet_width=160 if out.structured else 90)
    rows = []
    for hit in hits:
        rows.append({
            "time": fmt_time(hit.entry.get("timestamp")), "id": hit.entry.get("id"),
            "model": hit.entry.get("model") or "", "prompt": fmt_prompt(hit.entry),
            "snippet": Styled(restyle(printable(hit.snippet or ""), mark)),
        })
    out.table(rows, ["time", "id", "model", "prompt", "snippet"],
              headers=["time (UTC)", "id", "model", "prompt", "match"],
              json_rows=[{"rank": h.rank, "snippet": h.snippet, "entry": h.entry} for h in hits],
              empty=f"No log entries match {query!r}.")


@logs.command(name="similar")
@click.argument("entry_id", metavar="ID")
@limit_option
@click.option("model_spec", "--embedding-model", metavar="MODEL",
              help="Embedding model (default: [embeddings] setting).")
@filter_options
@output_options
@project_options
def logs_similar(entry_id: str, limit: int, model_spec: str | None, out: Output,
                 **filters: Any) -> None:
    """Entries closest in meaning to one entry (by their user message and response).

    ID may be a unique prefix of at least 4 characters, or `last`.

    \b
    Examples:
      promptlab logs similar 01JD3Z6X0M
      promptlab logs similar last --since 7d --json
    """
    from promptlab.cli.semantic import run_similar

    run_similar(entry_id, limit, model_spec, out, filters, open_index)


@logs.command(name="show")
@click.argument("entry_id", metavar="ID")
@click.option("as_json", "--json", is_flag=True,
              help='Output JSON: {"entry", "scores", "feedback", "trace"}.')
@project_options
def logs_show(entry_id: str, as_json: bool) -> None:
    """Show one entry whole: texts, tokens, cost, scores, feedback and trace position.

    ID may be any unique prefix of at least 4 characters (like a git short hash; an
    ambiguous one lists the candidates), or `last` for the newest call.

    \b
    Examples:
      promptlab logs show 01KE80AX2V7F
      promptlab logs show last
      promptlab logs show 01KE80AX2V7F --json
    """
    from promptlab.index.query import entry_details

    out = Output(json=as_json)  # one entry is no table: no --csv, --nl or --fmt
    index = open_index(out, empty={})
    if index is None:
        raise click.exceptions.Exit(1)
    with index:
        details = entry_details(index, entry_id)
    if as_json:
        out.emit_json({"entry": details.entry, "scores": details.scores,
                       "feedback": details.feedback, "trace": details.trace})
        return
    click.echo(render_entry(details))


@logs.command(name="reindex")
@project_options
def logs_reindex() -> None:
    """Rebuild the index from the JSONL files (safe: the files are never changed).

    \b
    Example:
      promptlab logs reindex
    """
    from promptlab.index.core import Index

    log_dir = get_settings().log_dir
    refuse_file_as_log_dir(log_dir)
    if not log_dir.is_dir():
        click.echo(f"No log entries yet: {log_dir} does not exist.", err=True)
        return
    with Index(log_dir) as index:
        stats = index.reindex()
        report_sync(index, stats)
        files = index.conn.execute("SELECT count(*) FROM files").fetchone()[0]
    click.echo(f"Indexed {stats.entries:,} entries from {files} file{'s' if files != 1 else ''}"
               f" in {stats.seconds:.1f} s ({index.path}).")


# -- trace ------------------------------------------------------------------------------------


@click.command("trace")
@click.argument("trace_id", required=False, metavar="[TRACE_ID]")
@limit_option
@click.option("since", "--since", metavar="WHEN", help="Traces started from this time.")
@click.option("until", "--until", metavar="WHEN", help="Traces started before this time.")
@output_options
@project_options
def logs_trace(trace_id: str | None, limit: int, since: str | None, until: str | None,
               out: Output) -> None:
    """Show a trace as a tree: spans with durations, LLM calls with tokens and cost.

    Without TRACE_ID, list recent traces. TRACE_ID may also be a unique prefix, or the id
    of any span or call in the trace.

    \b
    Examples:
      promptlab trace
      promptlab trace 01KE80AX
      promptlab trace 01KE80AX --json
    """
    from promptlab.errors import UsageError
    from promptlab.index.trace import build_trace, list_traces

    if trace_id is not None and (out.csv or out.fmt != "simple"):
        raise UsageError("--csv and --fmt format the list of traces (no TRACE_ID); one trace "
                         "is shown as a tree, or as JSON with --json")
    flt = _filters(since=since, until=until)
    index = open_index(out, empty=[] if trace_id is None else {})
    if index is None:
        if trace_id is not None:
            raise click.exceptions.Exit(1)
        return
    with index:
        if trace_id is None:
            traces = list_traces(index, flt, limit or None)
            rows = [{
                "time": fmt_time(t["timestamp"]), "trace": t["trace_id"],
                "name": t["name"] or ("" if t["root"] else "(no root span)"),
                "duration": fmt_ms(t["duration_ms"]), "spans": t["spans"],
                "calls": t["llm_calls"],
                "tokens": f"{t['input_tokens']:,}→{t['output_tokens']:,}",
                "cost": fmt_cost(t["cost_usd"]), "errors": t["errors"] or "",
            } for t in traces]
            headers = ["time (UTC)", *(list(rows[0])[1:] if rows else [])]
            out.table(rows, list(rows[0]) if rows else None, headers=headers,
                      json_rows=traces, empty="No traces in the log.")
            return
        trace = build_trace(index, trace_id)
    if out.structured or out.csv:
        out.emit_json(trace.to_dict())
        return
    click.echo(render_trace(trace))


# -- costs ------------------------------------------------------------------------------------


@click.command("costs")
@click.option("by", "--by", multiple=True, default=("day",), show_default=True,
              type=click.Choice(["day", "model", "provider", "tag", "prompt", "version",
                                 "experiment"]),
              help="Group by (repeat to group by several).")
@click.option("since", "--since", metavar="WHEN",
              help="From this time: 2026-01-31, 2026-01-31T14:00, 30m, 24h, 7d, today.")
@click.option("until", "--until", metavar="WHEN",
              help="Before this time (a date includes that whole day).")
@click.option("prompt", "--prompt", metavar="ID", help="Only this prompt (ID@v2: one version).")
@click.option("version", "--version", metavar="vN", help="Only this prompt version.")
@click.option("model", "-m", "--model", metavar="MODEL", help="Only this model (* ? match).")
@click.option("tag", "-t", "--tag", metavar="TAG", multiple=True,
              help="Only calls with this tag (one: a call with several counts under each).")
@click.option("experiment", "-e", "--experiment", metavar="NAME", help="Only this experiment.")
@click.option("prices", "--prices", type=click.Path(dir_okay=False), metavar="FILE",
              help="Prices file overriding the shipped table (default: project setting).")
@output_options
@project_options
def logs_costs(by: tuple[str, ...], since: str | None, until: str | None, prompt: str | None,
               version: str | None, model: str | None, tag: tuple[str, ...],
               experiment: str | None, prices: str | None, out: Output) -> None:
    """Tokens and cost (USD) of the logged calls per group, with a total row.

    Stored costs are used as logged; calls without one are priced from the price table.
    Calls to models without a price are counted as unknown, never as $0.

    \b
    Examples:
      promptlab costs
      promptlab costs --by model --since 7d
      promptlab costs --by prompt --by version --json
      promptlab costs --prices my-prices.toml
    """
    from promptlab.costs import load_prices
    from promptlab.index.costs import cost_report

    by_list = list(dict.fromkeys(by))
    flt = _filters(since=since, until=until, prompt=prompt, version=version, model=model,
                   tag=tag, experiment=experiment, kind=None)
    price_table = load_prices(prices or get_settings().prices)
    empty = {"by": by_list, "groups": [], "total": None, "unknown_models": {}}
    index = open_index(out, empty=empty)
    if index is None:
        return
    with index:
        report = cost_report(index, by_list, flt, prices=price_table)
    if out.structured:
        out.emit_json(report.to_dict())
        return
    if not report.rows:
        click.echo("No LLM calls in the log" + (" for these filters." if any(
            (since, until, prompt, version, model, tag, experiment)) else "."), err=True)
        return
    cached = any(r.cached_tokens for r in report.rows)

    def row(r: Any, is_total: bool = False) -> dict[str, Any]:
        cost = fmt_cost(r.cost_usd) if r.cost_usd is not None else ""
        if r.unpriced_calls:
            cost = f"{cost} + unknown" if cost else "unknown"
        data = dict(r.group)
        data.update({"calls": f"{r.calls:,}", "input tokens": f"{r.input_tokens:,}"})
        if cached:
            data["cached tokens"] = f"{r.cached_tokens:,}"
        data.update({"output tokens": f"{r.output_tokens:,}", "cost (USD)": cost})
        return data

    rows = [row(r) for r in report.rows]
    if not out.csv:
        rows.append(row(report.total, True))
    out.table(rows, list(rows[0]))
    if report.unknown_models and not out.csv:
        names = ", ".join(f"{m} ({n:,} call{'s' if n != 1 else ''})"
                          for m, n in sorted(report.unknown_models.items()))
        warn(f"no price for {names}; their cost is unknown — add them to a prices file "
             "(--prices, or `prices = \"…\"` in the project config)")
    if "tag" in by_list and not out.csv:
        click.echo("(a call with several tags counts under each; the total counts it once)",
                   err=True)
