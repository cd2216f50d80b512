"""`promptlab export otlp`: send the log to an OpenTelemetry backend; `promptlab otlp serve`:
take OTLP/HTTP from any language into the log. The work is in promptlab.otel."""

from __future__ import annotations

import sys
from typing import Any

import click

from promptlab.cli._common import dumps_json, get_settings, project_options


def _require_otel() -> None:
    from promptlab.otel import require_sdk

    require_sdk()


@click.group(name="export")
@project_options
def export() -> None:
    """Send the log elsewhere."""


@export.command(name="otlp")
@click.option("endpoint", "--endpoint", metavar="URL",
              help="OTLP/HTTP endpoint: base URL (http://localhost:4318) or full …/v1/traces URL "
                   "(default: OTEL_EXPORTER_OTLP_ENDPOINT, else [otel] endpoint).")
@click.option("headers", "--header", multiple=True, metavar="KEY=VALUE",
              help="Request header (repeat); added to OTEL_EXPORTER_OTLP_HEADERS.")
@click.option("since", "--since", metavar="WHEN",
              help="Entries from this time: 2026-01-31, 2026-01-31T14:00, 30m, 24h, 7d, today.")
@click.option("until", "--until", metavar="WHEN",
              help="Entries before this time (a date includes that whole day).")
@click.option("prompt", "--prompt", metavar="ID", help="Only this prompt (ID@v2: one version).")
@click.option("experiment", "-e", "--experiment", metavar="NAME", help="Only this experiment.")
@click.option("all_", "--all", is_flag=True,
              help="Send every matching entry again, even those already sent.")
@click.option("content", "--content/--no-content", default=None,
              help="Also send prompts and responses, redacted (default: [otel] content, off).")
@click.option("batch_size", "--batch-size", type=click.IntRange(min=1), default=512,
              show_default=True, help="Spans per request.")
@click.option("service_name", "--service-name", metavar="NAME",
              help="service.name of the spans (default: OTEL_SERVICE_NAME, else [otel] "
                   "service_name, else promptlab).")
@click.option("timeout", "--timeout", type=click.FloatRange(min=0.1), metavar="SECONDS",
              help="Per request, retries included (default: OTEL_EXPORTER_OTLP_TIMEOUT, else 10).")
@click.option("as_json", "--json", is_flag=True, help="Print the summary as JSON.")
@project_options
def export_otlp_cmd(endpoint: str | None, headers: tuple[str, ...], since: str | None,
                    until: str | None, prompt: str | None, experiment: str | None, all_: bool,
                    content: bool | None, batch_size: int, service_name: str | None,
                    timeout: float | None, as_json: bool) -> None:
    """Send logged traces, spans and LLM calls to an OTLP/HTTP backend (Jaeger, Tempo,
    Phoenix, Honeycomb, Langfuse, an OpenTelemetry Collector), with the GenAI semantic
    conventions. Ids and timings are the logged ones. Only what was not sent to this
    endpoint before is sent (--all: everything again). Exits 1 when a batch fails.

    \b
    Examples:
      promptlab export otlp --endpoint http://localhost:4318
      promptlab export otlp --since 7d --prompt code-review
      OTEL_EXPORTER_OTLP_HEADERS='x-api-key=…' promptlab export otlp --endpoint https://otlp.example.com
    """
    _require_otel()
    from promptlab.otel.export import export_otlp, resolve_target

    settings = get_settings()
    target = resolve_target(endpoint, list(headers), otel=settings.otel, content=content,
                            timeout=timeout)
    bar: Any = None
    progress = None
    if sys.stderr.isatty():
        def progress(done: int, total: int) -> None:
            nonlocal bar
            if bar is None:
                bar = click.progressbar(length=max(total, 1), label="exporting", file=sys.stderr)
                bar.__enter__()
            bar.update(done - bar.pos)
    try:
        summary = export_otlp(settings.log_dir, target=target, since=since, until=until,
                              prompt=prompt, experiment=experiment, all_=all_,
                              batch_size=batch_size, service_name=service_name,
                              progress=progress)
    finally:
        if bar is not None:
            bar.__exit__(None, None, None)
    if as_json:
        click.echo(dumps_json({
            "endpoint": summary.endpoint, "sent": summary.sent, "skipped": summary.skipped,
            "failed": summary.failed, "unmatched": summary.unmatched,
            "not_attempted": summary.not_attempted, "malformed": summary.malformed,
            "seconds": round(summary.seconds, 3), "error": summary.error,
        }, indent=True))
    else:
        click.echo(summary.line())
    if not summary.ok:
        sys.exit(1)


@click.group(name="otlp")
@project_options
def otlp() -> None:
    """Take OpenTelemetry spans in."""


@otlp.command(name="serve")
@click.option("host", "--host", default="127.0.0.1", show_default=True,
              help="Address to listen on.")
@click.option("port", "--port", type=click.IntRange(0, 65535), default=4318, show_default=True,
              help="Port (4318 is the OTLP/HTTP port; 0 picks a free one).")
@click.option("content", "--content/--no-content", default=True, show_default=True,
              help="Keep prompts and responses the spans carry (redacted like every entry).")
@project_options
def otlp_serve(host: str, port: int, content: bool) -> None:
    """Receive OTLP/HTTP traces (protobuf or JSON, POST /v1/traces) from any language and
    write them to the log: GenAI spans as LLM calls, others as spans. Ctrl-C stops.

    \b
    Examples:
      promptlab otlp serve
      OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318 node app.js   # in another shell
    """
    _require_otel()
    from promptlab.logs.logger import Logger
    from promptlab.otel.entries import without_live_export
    from promptlab.otel.serve import make_server

    settings = get_settings()
    logger = without_live_export(Logger(settings.log_dir))
    try:
        server = make_server(logger, host, port, content=content,
                             warn=lambda line: click.echo(f"Warning: {line}", err=True))
    except OSError as exc:
        raise click.ClickException(f"cannot listen on {host}:{port}: {exc.strerror}; "
                                   "choose another with --port (or --host)") from exc
    bound = server.server_address
    click.echo(f"listening on http://{bound[0]}:{bound[1]}/v1/traces, writing to "
               f"{settings.log_dir} (Ctrl-C stops)", err=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        logger.close()
        rejected = f", rejected {server.rejected}" if server.rejected else ""
        click.echo(f"received {server.received} span(s){rejected}", err=True)
