"""`promptlab report --html FILE`: the dashboard's views as one self-contained HTML file.

Everything is inlined (the stylesheet, the charts as SVG, the data as an inert
`application/json` block with `<`, `>` and `&` escaped), no script runs, and a
Content-Security-Policy meta tag pins the one inline stylesheet by its hash — so the file
opens offline from disk or as an e-mail attachment, and a logged `<script>` stays text.
Logged strings are redacted (the logger's built-in rules) before they are written.
"""

from __future__ import annotations

import base64
import hashlib
import os
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
from markupsafe import Markup

from promptlab.config import require_log_dir
from promptlab.dashboard import data as views_data
from promptlab.dashboard import svg
from promptlab.dashboard.views import (
    STATIC,
    ReportLinks,
    environment,
    experiment_parts,
    headline,
    overview_charts,
)
from promptlab.errors import PromptlabError, UsageError

if TYPE_CHECKING:
    from promptlab.config import Settings

ENTRIES = 100  # newest calls written whole
TRACES = 10  # newest traces drawn


def redact(value: Any) -> Any:
    """Every string inside `value` with secrets (API keys, tokens, private keys) replaced."""
    from promptlab.logs.redact import apply_to_strings, redact_text

    return apply_to_strings(value, redact_text)


def script_json(value: Any) -> Markup:
    """JSON safe inside a <script type="application/json"> element: `</script>`, `<!--`
    and the like cannot end it, because <, > and & are written as \\u escapes."""
    text = views_data.json_bytes(value, orjson.OPT_NON_STR_KEYS).decode()
    for ch, esc in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"),
                    ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
        text = text.replace(ch, esc)
    return Markup(text)


def build_report(settings: Settings, *, since: str | None = None, until: str | None = None,
                 experiment: str | None = None, entries: int = ENTRIES,
                 traces: int = TRACES) -> str:
    """The report as an HTML string."""
    from promptlab import __version__
    from promptlab.index import Index

    params = {"since": since or "", "until": until or ""}
    period = views_data.parse_period(params, default="30d")
    with Index(settings.log_dir) as index:
        index.sync()
        overview = views_data.overview(index, period, "model", prices=settings.prices)
        logs = views_data.logs_page(index, {**params, "kind": "llm"}, page_size=entries)
        entry_views = [redact(views_data.entry_page(index, r["id"])) for r in logs["rows"]]
        trace_list = views_data.traces_page(index, params, page_size=traces)
        trace_data = [redact(views_data.trace_page(index, t["trace_id"]))
                      for t in trace_list["rows"]]
        prompts = views_data.prompts_list(settings, index)
        prompt_data = []
        for p in prompts["prompts"]:
            if p.get("versions"):
                try:
                    prompt_data.append(views_data.prompt_page(settings, index, p["id"], {}))
                except PromptlabError:
                    continue
        if experiment:
            from promptlab.experiments import load_experiment

            load_experiment(experiment, settings)  # a clear error for an unknown name
            experiments = {"experiments": [x for x in views_data.experiments_list(
                settings, index)["experiments"] if x["name"] == experiment]}
        else:
            experiments = views_data.experiments_list(settings, index)
        experiment_data = [views_data.experiment_page(settings, index, x["name"], period)
                           for x in experiments["experiments"] if not x.get("error")]
    rows = redact(logs["rows"])
    trace_list = redact(trace_list)
    links = ReportLinks(
        entries={e["entry"].get("id") for e in entry_views},
        traces={t["trace_id"] for t in trace_data},
        prompts={p["id"] for p in prompt_data},
        experiments={x["name"] for x in experiment_data})
    verdicts = {x["name"]: headline(x) for x in experiment_data}
    for x in experiments["experiments"]:
        x["verdict"] = verdicts.get(x["name"])
    experiment_views = []
    for x in experiment_data:
        pairs, plots, words = experiment_parts(x)
        experiment_views.append({"data": x, "pairs": pairs, "plots": plots, "words": words})
    css = (STATIC / "dashboard.css").read_text(encoding="utf-8")
    digest = base64.b64encode(hashlib.sha256(css.encode()).digest()).decode()
    csp = (f"default-src 'none'; style-src 'sha256-{digest}'; img-src data:; "
           "form-action 'none'; base-uri 'none'")
    label = period.label if not (since or until) else f"{since or '…'} – {until or 'now'}"
    return environment().get_template("report.html").render(
        csp=csp, css=Markup(css), project=settings.root.name, period_label=label,
        written=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"), version=__version__,
        log_dir=str(settings.log_dir), links=links,
        overview=overview, charts=overview_charts(overview),
        rows=rows, entries=entry_views, more_entries=logs["next"] is not None,
        traces=trace_list,
        trace_views=[{"data": t, "chart": svg.waterfall(t["rows"], t["duration_ms"], links.entry)}
                     for t in trace_data],
        prompts=prompts, prompt_views=prompt_data,
        experiments=experiments, experiment_views=experiment_views,
        since_text="", until_text="", period_params={}, query={}, semantic_modes=[],
        data_json=script_json({"overview": overview, "entries": rows,
                               "traces": trace_list["rows"],
                               "experiments": [x["comparison"] for x in experiment_data]}),
    )


def write_report(settings: Settings, path: str | os.PathLike[str], **options: Any) -> Path:
    """Build the report and write it to `path` atomically (a temporary file, then rename),
    so a failure never leaves half a report behind. A symbolic link is followed (the file
    it names is replaced, the link stays), and a path that is not a regular file (a device
    such as /dev/stdout, a pipe) is written to, never replaced."""
    import stat

    given = Path(path)
    try:
        mode: int | None = os.stat(given).st_mode  # (through any link)
    except OSError:
        mode = None  # not there yet: a new file
    special = mode is not None and not stat.S_ISREG(mode) and not stat.S_ISDIR(mode)
    target = Path(os.path.realpath(given)) if given.is_symlink() and not special else given
    folder = target.parent if str(target.parent) else Path(".")
    if str(path).endswith(("/", os.sep)) and not target.is_dir():  # Path() drops the slash
        folder = target
    if not folder.is_dir():
        raise UsageError(f"--html {given}: folder {folder} does not exist; create it or "
                         "write the report elsewhere")
    if target.is_dir():
        raise UsageError(f"--html {given} is a folder; give a file name such as "
                         f"{given / 'report.html'}")
    require_log_dir(settings.log_dir, "nothing to report")
    html = build_report(settings, **options)
    if special:  # a device or a pipe (/dev/stdout, a FIFO): written to, never replaced
        try:
            with open(given, "w", encoding="utf-8") as f:
                f.write(html)
        except BrokenPipeError:  # the reader stopped reading (`| head`): no failure of ours
            pass
        except OSError as exc:
            raise UsageError(f"cannot write the report to {given}: {exc.strerror}") from None
        return given
    try:
        fd, tmp = tempfile.mkstemp(prefix=".report-", suffix=".html", dir=folder)
    except OSError as exc:
        raise UsageError(f"cannot write the report to {target}: {exc.strerror}") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(html)
        os.chmod(tmp, 0o600)  # the logs are private; so is a report of them
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target
