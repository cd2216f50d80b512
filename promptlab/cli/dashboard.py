"""`promptlab dashboard` (the local web UI) and `promptlab report` (one HTML file)."""

from __future__ import annotations

import click

from promptlab.cli._common import get_settings, project_options


@click.command(name="dashboard")
@click.option("port", "--port", type=click.IntRange(0, 65535), default=8765, show_default=True,
              help="Port to listen on (0: any free port).")
@click.option("host", "--host", default="127.0.0.1", show_default=True,
              help="Address to bind. Anything but loopback needs a token.")
@click.option("open_browser", "--open", is_flag=True, help="Open the dashboard in a browser.")
@click.option("token", "--token", metavar="TOKEN",
              help="Require this token on every request (generated and printed when --host "
                   "is not loopback and none is given).")
@project_options
def dashboard_serve(port: int, host: str, open_browser: bool, token: str | None) -> None:
    """Serve a local, read-only web UI over the project's logs, prompts and experiments.

    Overview (cost, tokens and calls per day, latency, errors), Logs (search, filters, each
    entry as a chat), Traces (waterfalls), Prompts (versions, labels, history, diff, usage)
    and Experiments (the comparison with a forest plot). It syncs the log index on start
    and picks up new entries while it runs. Ctrl-C stops it.

    \b
    Examples:
      promptlab dashboard
      promptlab dashboard --port 9000 --open
      promptlab dashboard --host 0.0.0.0          # prints a URL with a generated token
    """
    from promptlab.config import require_log_dir
    from promptlab.dashboard.server import Dashboard, is_loopback, make_server, new_token
    from promptlab.errors import UsageError

    settings = get_settings()
    if not host.strip("[] "):  # "" would bind every interface
        raise UsageError(f"--host {host!r}: give an address (127.0.0.1: this machine only; "
                         "0.0.0.0: every interface, with a token)")
    if token is not None and len(token) < 8:
        raise UsageError("--token: use at least 8 characters (or leave it out to have one "
                         "generated)")
    require_log_dir(settings.log_dir, "nothing to show")
    if not is_loopback(host) and token is None:
        token = new_token()
    app = Dashboard(settings, token=token)
    app.sync(force=True)
    app.warm()
    try:
        server = make_server(app, host, port)
    except OSError as exc:
        app.close()
        raise UsageError(f"cannot listen on {host}:{port}: {exc.strerror}; choose another "
                         "with --port (or --host)") from None
    bare = host.strip("[]")
    shown = f"[{bare}]" if ":" in bare else bare
    url = f"http://{shown}:{server.server_address[1]}/"
    if token is not None:
        url += f"?token={token}"
    click.echo(f"promptlab dashboard: {url}  (read-only; Ctrl-C stops it)", err=True)
    click.echo(url)
    if open_browser:
        import webbrowser

        webbrowser.open(url)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        click.echo("stopped", err=True)
    finally:
        server.server_close()
        app.close()


@click.command(name="report")
@click.option("html_file", "--html", metavar="FILE", default="report.html",
              show_default=True, help="Where to write the report.")
@click.option("since", "--since", metavar="WHEN", help="Start of the period (default: 30 days ago).")
@click.option("until", "--until", metavar="WHEN", help="End of the period (default: now).")
@click.option("experiment", "--experiment", metavar="NAME",
              help="Only this experiment in the Experiments section.")
@project_options
def dashboard_report(html_file: str, since: str | None, until: str | None,
                     experiment: str | None) -> None:
    """Write the dashboard's views as one self-contained HTML file: the weekly review.

    Data, charts and styles are inlined; no script runs and nothing is fetched, so it
    opens offline from disk or as an attachment. Secrets are redacted.

    \b
    Examples:
      promptlab report --html report.html
      promptlab report --html week.html --since 7d --experiment code-review-ab
    """
    from promptlab.dashboard.report import write_report

    path = write_report(get_settings(), html_file, since=since, until=until,
                        experiment=experiment)
    click.echo(f"wrote {path}", err=True)
