"""`promptlab compare` and `promptlab experiment report`: is the new version better?

Thin commands: parse, call `promptlab.comparison.compare`, print. The statistics (and
scipy) are imported only when a command runs.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
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

CORRECTION_CHOICES = ("holm", "bh", "none")


def _analysis_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """Options shared by `compare` and `experiment report`, passed on to the command as
    one `analysis` dict of `compare()` keyword arguments plus `fail_if_worse`."""

    @functools.wraps(f)
    def wrapper(*args: Any, metrics: tuple[str, ...], alpha: float, since: str | None,
                until: str | None, correction: str, sequential: bool,
                tolerance: tuple[str, ...], **kwargs: Any) -> Any:
        analysis = {"metrics": list(metrics) or None, "alpha": alpha, "since": since,
                    "until": until, "correction": correction, "sequential": sequential,
                    "tolerance": parse_tolerances(tolerance)}
        return f(*args, analysis=analysis, **kwargs)

    for option in reversed([
        click.option("metrics", "--metric", multiple=True, metavar="NAME",
                     help="Metric to compare (repeatable): a score name, latency_ms, "
                          "output_tokens, input_tokens, cost_usd or error_rate."),
        click.option("alpha", "--alpha", type=float, default=0.05, show_default=True,
                     help="Significance level (two-sided)."),
        click.option("since", "--since", metavar="WHEN",
                     help="Only calls since a date, ISO time or age (2026-11-01, 7d, 24h)."),
        click.option("until", "--until", metavar="WHEN", help="Only calls before this."),
        click.option("correction", "--correction", type=click.Choice(CORRECTION_CHOICES),
                     default="holm", show_default=True,
                     help="Multiple-testing correction across metrics and versions."),
        click.option("sequential", "--sequential", is_flag=True,
                     help="Always-valid p-values and confidence sequences: safe to re-run "
                          "while data is still coming in."),
        click.option("tolerance", "--tolerance", multiple=True, metavar="METRIC=FRACTION",
                     help="How much worse (relative) a metric may get, e.g. "
                          "latency_ms=0.25: it then counts as worse only when its lift's CI "
                          "lies entirely beyond 25% worse (repeatable; overrides the "
                          "experiment's [metrics] tolerance)."),
        click.option("fail_if_worse", "--fail-if-worse", is_flag=True,
                     help="Exit 1 when a version is significantly worse (beyond its "
                          "tolerance) on the primary metric or a guardrail (every metric "
                          "when none is configured), or when the split failed its "
                          "sample-ratio check; exit 3 when the gate cannot judge (no "
                          "p-value for the primary metric, or for any watched metric)."),
        click.option("allow_no_data", "--allow-no-data", is_flag=True,
                     help="With --fail-if-worse: pass (exit 0) when there is not enough "
                          "data to judge, instead of exit 3."),
    ]):
        wrapper = option(wrapper)
    return wrapper


def parse_tolerances(values: tuple[str, ...]) -> dict[str, float]:
    """`latency_ms=0.25` (or `latency_ms=25%`) options as {metric: fraction}; the range
    (a finite number ≥ 0) is checked by `compare()`."""
    from promptlab.errors import CompareError

    out: dict[str, float] = {}
    for text in values:
        name, sep, value = (part.strip() for part in text.partition("="))
        try:
            margin = float(value[:-1]) / 100 if value.endswith("%") else float(value)
        except ValueError:
            margin = None
        if not sep or not name or margin is None:
            raise CompareError(f"--tolerance {text!r}: use METRIC=FRACTION, e.g. --tolerance "
                               "latency_ms=0.25 (up to 25% worse)")
        if name in out:
            raise CompareError(f"--tolerance {name} is given twice; give each metric once")
        out[name] = margin
    return out


@click.command(name="compare")
@click.argument("versions", nargs=-1, metavar="A B [C ...]")
@click.option("prompt_id", "--prompt", metavar="ID",
              help="Prompt id (needed only when several prompts have these versions).")
@click.option("experiment", "--experiment", metavar="NAME",
              help="Compare this experiment's entries (variants); paired when items match.")
@_analysis_options
@output_options
@project_options
def compare_cmd(versions: tuple[str, ...], prompt_id: str | None, experiment: str | None,
                analysis: dict[str, Any], fail_if_worse: bool, allow_no_data: bool,
                out: Output) -> None:
    """Is version B better than version A? Tests every metric in the logs.

    Picks the design (paired by item when the experiment ran every item through every
    version, else unpaired by unit_id) and the test (McNemar, paired t, two-proportion z /
    Fisher, Welch t) by itself, adjusts p-values across metrics and versions (Holm), and
    states the power. The difference is always B − A; several versions are each compared
    with A. Exit codes with --fail-if-worse: 0 pass, 1 worse or sample ratio mismatch,
    3 not enough data to judge (--allow-no-data: 0), 2 usage error.

    \b
    Examples:
      promptlab compare v1 v2
      promptlab compare v1 v2 --prompt code-review --metric finds_bug --json
      promptlab compare v1 v2 v3 --since 7d --correction bh
      promptlab compare --experiment code-review-ab --fail-if-worse
      promptlab compare v1 v2 --fail-if-worse --tolerance latency_ms=0.25
    """
    from promptlab.comparison import compare

    result = compare(*versions, prompt=prompt_id, experiment=experiment,
                     settings=get_settings(), **analysis)
    _emit(result, out, fail_if_worse, allow_no_data)


@click.command(name="report")
@click.argument("name", required=False)
@_analysis_options
@output_options
@project_options
def experiment_report(name: str | None, analysis: dict[str, Any], fail_if_worse: bool,
                      allow_no_data: bool, out: Output) -> None:
    """Compare an experiment's variants on its configured metrics.

    The first variant in the experiment file is the baseline; the primary metric, the
    guardrails and their tolerances come from its [metrics] table. Without NAME: the only
    experiment there is.

    \b
    Examples:
      promptlab experiment report code-review-ab
      promptlab experiment report code-review-ab --json --fail-if-worse
    """
    from promptlab.comparison import compare
    from promptlab.errors import ExperimentError
    from promptlab.experiments import list_experiments

    settings = get_settings()
    if name is None:
        known = list_experiments(settings)
        if len(known) != 1:
            listed = ", ".join(known) if known else f"none in {settings.experiments_dir}"
            raise ExperimentError(f"name the experiment to report on (experiments: {listed})")
        name = known[0]
    from promptlab.errors import CompareError
    from promptlab.experiments import load_experiment

    try:
        load_experiment(name, settings)
        missing: ExperimentError | None = None
    except ExperimentError as exc:  # no file: the logs may still hold its entries
        missing = exc
    try:
        result = compare(experiment=name, settings=settings, **analysis)
    except CompareError:
        if missing is not None:
            raise missing from None
        raise
    _emit(result, out, fail_if_worse, allow_no_data)


# --fail-if-worse: 1 = a version is worse, or the split is broken (no verdict holds);
# 3 = the gate could not judge (not enough data); 2 stays a usage error.
EXIT_WORSE = 1
EXIT_UNDECIDED = 3


def _emit(result: Any, out: Output, fail_if_worse: bool, allow_no_data: bool = False) -> None:
    from promptlab.comparison import all_warnings

    if out.json:
        out.emit_json(result.to_dict())
    elif out.nl or out.csv:
        rows = result.rows()
        out.table(rows, list(rows[0]) if rows else None)
    else:
        click.echo(printable(result.table(out.fmt), lines=True))  # names come from the log
        for line in all_warnings(result):
            warn(line)
    if not fail_if_worse:
        return
    worse = result.worse()
    for pair, metric in worse:
        click.echo(printable(_failure_line(pair, metric)), err=True)
    broken = result.untrustworthy()
    for pair in broken:
        click.echo(f"Failed: {pair.b} vs {pair.a} is not trustworthy: sample ratio mismatch "
                   "(the traffic split is broken); fix the assignment before judging",
                   err=True)
    if worse or broken:
        raise SystemExit(EXIT_WORSE)
    undecided = result.undecided()
    for pair, missing in undecided:
        names = ", ".join(m.name for m in missing) or "no metric"
        click.echo(printable(f"Undecided: not enough data to judge {pair.b} against {pair.a} "
                             f"({names}: no p-value); the gate cannot pass or fail"
                             + ("" if allow_no_data else
                                " (exit 3; --allow-no-data passes instead)")), err=True)
    if undecided and not allow_no_data:
        raise SystemExit(EXIT_UNDECIDED)


def _failure_line(pair: Any, metric: Any) -> str:
    role = f" ({metric.role})" if metric.role else ""
    line = (f"Failed: {pair.b} is significantly worse than {pair.a} on {metric.name}{role}: "
            f"{pair.b} − {pair.a} = {metric.diff:+.4g}, adjusted p = {metric.p_adjusted:.2g}")
    if metric.tolerance is not None and metric.lift_ci is not None:
        from promptlab.comparison import format_tolerance

        low, high = metric.lift_ci
        line += (f"; lift {metric.lift:+.1%} [{low:+.1%}, {high:+.1%}] lies beyond the "
                 f"{format_tolerance(metric.tolerance, metric.direction)} tolerance")
    return line
