"""`promptlab experiment …`: run, assign, list, status (and `report`, from compare)."""

from __future__ import annotations

import sys
from typing import Any

import click

from promptlab.cli._common import (
    Output,
    get_settings,
    output_options,
    printable,
    project_options,
    warn,
)
from promptlab.cli._lazy import LazyGroup
from promptlab.errors import UsageError

EXIT_INTERRUPTED = 130


@click.group(cls=LazyGroup, lazy_subcommands={"report": "promptlab.cli.compare:experiment_report"})
@project_options
def experiment() -> None:
    """Run experiments on prompt versions and split live traffic between them.

    \b
    Examples:
      promptlab experiment list
      promptlab experiment run code-review-ab
      promptlab experiment run code-review-ab --limit 5 --dry-run
      promptlab experiment assign code-review-ab user-42
      promptlab experiment status code-review-ab
    """


def _load(name: str) -> Any:
    from promptlab.experiments import load_experiment

    return load_experiment(name, get_settings())


def _only_experiment() -> str:
    """The name to run when none is given: the only experiment file, else a clear error."""
    from promptlab.experiments import list_experiments
    from promptlab.experiments._validate import display_path

    settings = get_settings()
    names = list_experiments(settings)
    folder = display_path(settings.experiments_dir)
    if not names:
        raise UsageError(f"no experiment files in {folder}/; create {folder}/NAME.toml "
                         "(see docs/experiments.md)")
    if len(names) > 1:
        raise UsageError(f"{len(names)} experiments in {folder}/: {', '.join(names)}; "
                         "name one: promptlab experiment run NAME")
    return names[0]


# -- run ----------------------------------------------------------------------------------


@experiment.command(name="run")
@click.argument("name", required=False)
@click.option("concurrency", "-c", "--concurrency", type=click.IntRange(min=1, max=1024),
              help="Calls in flight at once (default: [run] concurrency).")
@click.option("limit", "-n", "--limit", type=click.IntRange(min=1),
              help="Use only the first N dataset items.")
@click.option("dry_run", "--dry-run", is_flag=True,
              help="Render every cell and show the counts; call nothing.")
@click.option("resume", "--resume", is_flag=True,
              help="Skip cells already logged successfully for this experiment.")
@click.option("no_cache", "--no-cache", is_flag=True,
              help="Call the provider even for requests answered before.")
@click.option("timeout_s", "--timeout", type=click.FloatRange(min=0, min_open=True, max=86400),
              metavar="SECONDS",
              help="Wall-clock limit of each call (default: [run] timeout_s).")
@click.option("max_retries", "--max-retries", type=click.IntRange(min=0, max=100),
              help="Retries of a retryable error (default: [run] max_retries).")
@click.option("quiet", "-q", "--quiet", is_flag=True, help="No progress on stderr.")
@output_options
@project_options
def experiment_run(name: str | None, concurrency: int | None, limit: int | None, dry_run: bool,
                   resume: bool, no_cache: bool, timeout_s: float | None,
                   max_retries: int | None, quiet: bool, out: Output) -> None:
    """Send the dataset through every variant, score each output and log every call.

    With no NAME, runs the only experiment in experiments/. Progress goes to stderr;
    the per-variant summary and the compare command to run next go to stdout.

    \b
    Examples:
      promptlab experiment run code-review-ab
      promptlab experiment run code-review-ab --limit 5 --dry-run
      promptlab experiment run code-review-ab --resume --concurrency 16
    """
    from promptlab.experiments.runner import RunOptions, run_experiment

    exp = _load(name or _only_experiment())
    options = RunOptions(concurrency=concurrency, limit=limit, dry_run=dry_run, resume=resume,
                         cache=not no_cache, timeout_s=timeout_s, max_retries=max_retries)
    result = run_experiment(exp, options, reporter=_reporter(exp, options, quiet or out.structured))
    if dry_run and not (quiet or out.structured):
        click.echo(_header(exp, options, result), err=True)
    _print_result(exp, result, out)
    if result.stopped == "interrupted":
        raise click.exceptions.Exit(EXIT_INTERRUPTED)
    if result.failed:
        raise click.exceptions.Exit(1)


def _write_err(text: str) -> None:
    sys.stderr.write(text)
    sys.stderr.flush()


def _reporter(exp: Any, options: Any, quiet: bool) -> Any:
    """A header line and a bar on a TTY, plain lines otherwise; only notes when quiet."""
    from promptlab.experiments.progress import Announcer, LineReporter, TtyReporter

    if quiet:
        return Announcer(_write_err, None, None)
    if sys.stderr.isatty():
        import shutil

        inner: Any = TtyReporter(_write_err, columns=shutil.get_terminal_size().columns)
    else:
        inner = LineReporter(_write_err)
    return Announcer(_write_err, lambda result, conc: _header(exp, options, result, conc), inner)


def _header(exp: Any, options: Any, result: Any, concurrency: int | None = None) -> str:
    """One line on stderr saying what is about to happen."""
    variants = list(result.variants)
    what = (f"{len(variants)} variants ({', '.join(variants)})" if len(variants) != 1
            else f"variant {variants[0]}")
    provider = exp.provider.type if exp.provider else "none"
    if exp.provider and exp.provider.model:
        provider += f" {exp.provider.model}"
    limit = f", first {options.limit} items" if options.limit else ""
    todo = result.planned - result.skipped
    skipped = f" ({result.skipped} already logged)" if result.skipped else ""
    line = (f"{exp.name}: {todo} cells{skipped} — {exp.prompt} × {what}, "
            f"{exp.dataset.design} design, repeat {exp.dataset.repeat}{limit}; "
            f"provider {provider}")
    if concurrency is not None:
        line += f", concurrency {concurrency}; run {result.run_id}"
    return line


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _money(value: float | None) -> str:
    """Dollars with enough digits to see small runs: 1.2346, 0.0123, 0.000017."""
    if value is None:
        return "–"
    if value >= 0.01 or value <= 0:
        return f"{value:.4f}"
    import math

    return f"{value:.{1 - math.floor(math.log10(value))}f}"  # two significant digits


def _print_result(exp: Any, result: Any, out: Output) -> None:
    if out.json:
        out.emit_json(result.to_dict())
        return
    primary = result.primary or "primary"
    rows = []
    for v in result.variants.values():
        row = {"variant": v.variant, "version": v.prompt_version}
        if result.dry_run:
            row.update(cells=v.planned - v.skipped, skipped=v.skipped)
        else:
            row.update(cells=v.cells, errors=v.errors)
            if result.skipped:
                row["skipped"] = v.skipped
            row[primary] = _fmt(v.primary_mean)
            if result.scorer_errors:
                row["scorer_errors"] = v.scorer_errors
            row.update(input_tokens=v.input_tokens, output_tokens=v.output_tokens,
                       cost_usd=_money(v.cost_usd),
                       latency_ms=_fmt(v.latency_mean, 1))
        rows.append(row)
    json_rows = [v.to_dict() for v in result.variants.values()]
    out.table(rows, list(rows[0]) if rows else None, json_rows=json_rows)
    if out.structured or out.csv:
        return
    if result.dry_run:
        todo = result.planned - result.skipped
        skipped = f" ({result.skipped} already logged, skipped)" if result.skipped else ""
        click.echo(f"\nDry run: {todo} cells would be called{skipped}; nothing was called.")
        if result.failed:
            click.echo(printable(f"Error: {result.failed}; first: {result.first_errors[0]}"),
                       err=True)
        return
    cached = f", {result.cache_hits} from the cache" if result.cache_hits else ""
    failures = sum(result.scorer_errors.values())
    scorer_note = (f", {failures} scorer failure{'s' if failures != 1 else ''}"
                   if failures else "")
    click.echo(f"\nRun {result.run_id}: {_n(result.done, 'cell')} in {result.elapsed_s:.1f}s, "
               f"{_n(result.errors, 'error')}{scorer_note}{cached}.")
    if result.skipped:
        click.echo(f"{_n(result.skipped, 'cell')} {'was' if result.skipped == 1 else 'were'} "
                   "already logged and skipped (--resume).")
    if result.errors:
        click.echo(printable(f"First error: {result.first_errors[0]}"), err=True)
    for name, count in result.scorer_errors.items():
        click.echo(printable(f"Scorer {name!r} failed on {count} of {result.scored} cells; "
                             f"first: {result.first_scorer_errors[name]}"), err=True)
    if result.stopped == "interrupted":
        click.echo(f"Interrupted: {result.remaining} cells not run; continue with: "
                   f"promptlab experiment run {exp.name} --resume", err=True)
    elif result.failed:
        hint = ("fix the log folder, then run again" if result.unlogged else
                f"fix the cause, then continue with: promptlab experiment run {exp.name} "
                "--resume")
        click.echo(f"Error: the run failed: {result.failed}; {hint}", err=True)
    elif len(result.variants) > 1:
        click.echo(f"Next: {result.compare_command}")


def _configured(row: dict[str, Any]) -> str:
    """`v1 50%`, or `production → v1 50%` for a label."""
    now = row["resolves_to"] or "?"
    name = row["variant"] if row["variant"] == now else f"{row['variant']} → {now}"
    return f"{name} {row['configured']:.0%}"


def _versions(row: dict[str, Any]) -> str:
    """The version a variant resolves to now, and any other version its cells logged."""
    now = row["resolves_to"] or "?"
    if not row["cells"]:
        return f"{now} (not run)"
    others = [v for v in row["versions"] if v != now]
    return f"{now} (also logged: {', '.join(others)})" if others else now


# -- assign -------------------------------------------------------------------------------


@experiment.command(name="assign")
@click.argument("name")
@click.argument("units", nargs=-1, required=True)
@output_options
@project_options
def experiment_assign(name: str, units: tuple[str, ...], out: Output) -> None:
    """Print the variant each UNIT (user id, session id, …) is assigned.

    Sticky and stateless: the same unit always gets the same variant, in any process
    or language (sha256 of "SALT:UNIT"). Give `-` to read units from stdin, one a line.

    \b
    Examples:
      promptlab experiment assign code-review-ab user-42
      cut -f1 users.tsv | promptlab experiment assign code-review-ab - --csv
    """
    exp = _load(name)
    if units == ("-",):
        units = tuple(line.strip() for line in sys.stdin if line.strip())
    elif "-" in units:
        raise UsageError("give either '-' (read units from stdin) or units, not both")
    if not units:
        raise UsageError("no units on stdin")
    rows = [{"unit": unit, "variant": exp.assign(unit)} for unit in units]
    if len(rows) == 1 and not (out.structured or out.csv):
        click.echo(rows[0]["variant"])
        return
    out.table(rows, ["unit", "variant"])


# -- list ---------------------------------------------------------------------------------


@experiment.command(name="list")
@output_options
@project_options
def experiment_list(out: Output) -> None:
    """List the experiment files: prompt, variants and weights, design, provider.

    \b
    Example:
      promptlab experiment list --json
    """
    from promptlab.errors import PromptlabError
    from promptlab.experiments import list_experiments, load_experiment
    from promptlab.experiments._validate import display_path

    settings = get_settings()
    rows, json_rows = [], []
    for name in list_experiments(settings):
        try:
            exp = load_experiment(name, settings)
        except PromptlabError as exc:
            warn(str(exc))
            rows.append({"name": name, "prompt": "(invalid file)"})
            json_rows.append({"name": name, "error": str(exc)})
            continue
        try:
            items: int | str = len(exp.load_items()) if exp.dataset.path else "–"
        except PromptlabError:
            items = "?"
        provider = exp.provider.type if exp.provider else "–"
        if exp.provider and exp.provider.model:
            provider += f" {exp.provider.model}"
        rows.append({"name": name, "prompt": exp.prompt,
                     "variants": " ".join(f"{k}:{w:g}" for k, w in exp.variants.items()),
                     "design": exp.dataset.design, "items": items, "provider": provider,
                     "primary": exp.metrics.primary or ("(all)" if not exp.metrics.guardrails
                                                          else "–"),
                     "description": exp.description or ""})
        json_rows.append({**exp.to_dict(), "items": items if isinstance(items, int) else None})
    folder = display_path(settings.experiments_dir)
    out.table(rows, ["name", "prompt", "variants", "design", "items", "provider", "primary",
                     "description"], json_rows=json_rows,
              empty=f"No experiments in {folder}/ (create {folder}/NAME.toml).")


# -- status -------------------------------------------------------------------------------


@experiment.command(name="status")
@click.argument("name", required=False)
@output_options
@project_options
def experiment_status(name: str | None, out: Output) -> None:
    """Cells and errors per variant from the logs, the last run, and the traffic split
    observed against the configured weights (live traffic counts too).

    \b
    Example:
      promptlab experiment status code-review-ab
    """
    from promptlab.experiments.status import experiment_status

    exp = _load(name or _only_experiment())
    status = experiment_status(exp, get_settings().log_dir)
    if out.json:
        out.emit_json(status)
        return
    rows = [{"variant": r["variant"], "version": _versions(r),
             "configured": f"{r['configured']:.1%}",
             "observed": "–" if r["observed"] is None else f"{r['observed']:.1%}",
             "units": r["units"], "cells": r["cells"], "errors": r["errors"],
             "error_rate": "–" if r["error_rate"] is None else f"{r['error_rate']:.1%}",
             "scorer_errors": r["scorer_errors"],
             "runs": r["runs"]} for r in status["variants"]]
    out.table(rows, list(rows[0]) if rows else None, json_rows=status["variants"])
    if out.structured or out.csv:
        return
    last = status["last_run"]
    if last is None:
        if status["cells"]:
            click.echo(f"\n{status['cells']} calls logged from live traffic; no experiment "
                       "runs yet.")
        else:
            variants = ", ".join(_configured(r) for r in status["variants"])
            click.echo(f"\nNo calls logged for {exp.name} yet: nothing has run. Configured: "
                       f"{variants}; run: promptlab experiment run {exp.name}")
        return
    failures = sum(last["scorer_errors"].values())
    scorer_note = f", {_n(failures, 'scorer failure')}" if failures else ""
    click.echo(f"\nLast run {last['run_id']}: {_n(last['cells'], 'cell')}, "
               f"{_n(last['errors'], 'error')}"
               f"{scorer_note}, {last['started']} → {last['ended']}")
    for name, count in last["scorer_errors"].items():
        warn(f"scorer {name!r} gave no score on {count} of {last['scored']} cells of the last "
             "run (see metadata.scorer_errors in those entries)")
    if status["unknown_variants"]:
        warn(f"entries for variants not in {exp.path.name}: "
             f"{', '.join(status['unknown_variants'])}")


def _n(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"
