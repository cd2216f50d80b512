"""`promptlab dashboard`: a local, read-only web UI on the standard library's HTTP server.

`Dashboard` is the application (a request in, a `Response` out), kept apart from the
socket server so it can be benchmarked and tested without one. Security model:

* only GET — every other method is answered 405;
* no route reads a file named by the request: the one static route serves names from a
  fixed table, ids are looked up in the index, prompt and experiment names are validated
  before the registry sees them;
* every page is server-rendered with autoescaping and sent with a strict
  Content-Security-Policy (no scripts at all, styles only from /static/);
* bound to loopback by default, with a Host-header check against DNS rebinding; on any
  other address a token is required on every request (query `?token=` once, then an
  HttpOnly SameSite=Strict cookie, or `Authorization: Bearer`).
"""

from __future__ import annotations

import hmac
import ipaddress
import re
import secrets
import socket
import sys
import threading
import time
import traceback
from collections import OrderedDict
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit

import orjson

from promptlab.dashboard import data as views_data
from promptlab.dashboard.report import redact
from promptlab.dashboard.views import STATIC, Links, headline, render_page
from promptlab.errors import LogsUnavailableError, OptionError, PromptlabError, UsageError

if TYPE_CHECKING:
    from promptlab.config import Settings

CSP = ("default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
       "base-uri 'none'; frame-ancestors 'none'")
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Cache-Control": "no-store",
}
STATIC_FILES = {"dashboard.css": "text/css; charset=utf-8"}  # the only files served
COOKIE = "promptlab_token"
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
PROMPT_ID = re.compile(r"[a-z0-9][a-z0-9._-]*(/[a-z0-9][a-z0-9._-]*)*")
TITLES = {"overview": "Overview", "logs": "Logs", "traces": "Traces", "prompts": "Prompts",
          "experiments": "Experiments"}
CACHE_SIZE = 128
CACHE_TTL_S = 30.0
SYNC_INTERVAL_S = 2.0
EXPERIMENT_TTL_S = 60.0
# How long a request waits for an experiment's comparison before answering with the page
# as it stands ("being compared", or the previous result marked as being recomputed): the
# comparison reads every call of the experiment, seconds at a million entries.
EXPERIMENT_WAIT_S = 0.15
REFRESH_S = 2  # a page waiting for its comparison reloads itself this often
REQUEST_TIMEOUT_S = 30.0  # a connection silent this long while sending a request is closed


@dataclass
class Response:
    status: int
    body: bytes
    content_type: str = "text/html; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)


class NotFound(PromptlabError):
    """No such page."""


class InternalError(PromptlabError):
    """A bug met on a background thread, told to the request that waits for it (a 500)."""


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def semantic_search() -> tuple[Any, list[str]]:
    """Semantic and hybrid search when `promptlab.semantic` is there (an optional part):
    a function (index, text, filters, mode, limit) -> hits, and the modes it offers;
    (None, []) otherwise, and the search box offers full text only."""
    try:
        from promptlab.semantic import semantic_search as search
    except Exception:  # not installed, or its optional dependencies are missing
        return None, []

    def run(index: Any, text: str, filters: dict[str, Any], mode: str, limit: int) -> list[Any]:
        # The vector store opens the index with another SQLite library: never both on one
        # file at once in a process (closing one drops the other's POSIX locks).
        index.close()
        return list(search(text, log_dir=index.log_dir, mode=mode, limit=limit, synced=True,
                           auto_embed=0, **filters))

    return run, ["semantic", "hybrid"]


class Dashboard:
    """The read-only web application over one project's logs, prompts and experiments."""

    def __init__(self, settings: Settings, *, token: str | None = None,
                 check_host: bool = True, sync_interval: float = SYNC_INTERVAL_S):
        from promptlab import __version__
        from promptlab.index import Index

        self.settings = settings
        self.token = token
        self.check_host = check_host and token is None
        self.sync_interval = sync_interval
        self.index = Index(settings.log_dir)
        self.version = __version__
        self._lock = threading.RLock()
        self._last_sync = 0.0
        self._cache: OrderedDict[Any, tuple[float, Response]] = OrderedDict()
        self._experiments: dict[str, tuple[Any, float, dict[str, Any]]] = {}
        self._experiment_lock = threading.Lock()
        self._computing: dict[str, tuple[threading.Thread, str]] = {}  # name -> (worker, since)
        self._failed: dict[str, PromptlabError] = {}  # name -> why its last computation failed
        self._generation = 0  # bumped whenever a comparison is stored
        self._experiment_index: Any = None  # the connection experiment() reads on
        self.semantic, self.semantic_modes = semantic_search()

    def close(self) -> None:
        self.index.close()
        with self._experiment_lock:
            if self._experiment_index is not None:
                self._experiment_index.close()

    def sync(self, force: bool = False) -> None:
        """Ingest new log lines, at most every `sync_interval` seconds."""
        now = time.monotonic()
        if force or now - self._last_sync >= self.sync_interval:
            self.index.sync()
            self._last_sync = now

    def experiment(self, name: str, index: Any = None) -> dict[str, Any]:
        """An experiment's page data, computed now if the log changed since the last time.
        `compare` reads every entry of the experiment, which takes seconds at a million
        entries, so its result is kept: recomputed when the log changed, but at most every
        EXPERIMENT_TTL_S while calls keep arriving. Requests use `experiment_view`."""
        with self._experiment_lock:  # one computation at a time; a second caller reuses it
            if index is None:
                if self._experiment_index is None:
                    from promptlab.index import Index

                    self._experiment_index = Index(self.settings.log_dir)
                index = self._experiment_index
            version = views_data.data_version(index)
            hit = self._experiments.get(name)
            if hit is not None and self._fresh(hit, version):
                return hit[2]
            d = views_data.experiment_page(self.settings, index, name)
            d["as_of"] = time.strftime("%H:%M:%S")
            self._experiments[name] = (version, time.monotonic(), d)
            self._generation += 1
            return d

    @staticmethod
    def _fresh(hit: tuple[Any, float, dict[str, Any]], version: Any) -> bool:
        return hit[0] == version or time.monotonic() - hit[1] < EXPERIMENT_TTL_S

    def experiment_view(self, name: str) -> dict[str, Any]:
        """What a request shows of an experiment, in bounded time: the kept comparison when
        it is current; else the comparison is computed in the background and the request
        waits at most EXPERIMENT_WAIT_S for it, then shows the previous comparison marked as
        being recomputed, or — the first time — a page saying it is being compared (which
        reloads itself). A failed computation raises its error here, as the page would."""
        with self._lock:
            version = views_data.data_version(self.index)
            hit = self._experiments.get(name)
            if hit is not None and self._fresh(hit, version):
                return hit[2]
            if hit is None and not self._logged(name):
                from promptlab.experiments.spec import experiment_path

                experiment_path(name, self.settings)  # no file either: says so, with hints
            worker, since = self._computing.get(name, (None, ""))
            if worker is None or not worker.is_alive():
                self._failed.pop(name, None)
                since = time.strftime("%H:%M:%S")
                worker = threading.Thread(target=self._compute, args=(name,), daemon=True,
                                          name=f"promptlab-dashboard-compare-{name}")
                self._computing[name] = (worker, since)
                worker.start()
        worker.join(EXPERIMENT_WAIT_S)
        with self._lock:
            hit = self._experiments.get(name)
            if not worker.is_alive():
                if name in self._failed:  # kept until the next computation starts
                    raise self._failed[name]
                if hit is not None:
                    return hit[2]
            if hit is not None:
                return {**hit[2], "recomputing": since}
        return self._placeholder(name, since)

    def _placeholder(self, name: str, since: str) -> dict[str, Any]:
        """The page of an experiment being compared for the first time: what its file says."""
        d = {"name": name, "computing": since, "status": None, "comparison": None,
             "error": None, "description": None, "prompt": None}
        try:
            from promptlab.experiments import load_experiment

            exp = load_experiment(name, self.settings)
            d.update(description=exp.description, prompt=exp.prompt)
        except PromptlabError:  # no file (calls logged under the name only), or a bad one
            pass
        return d

    def _compute(self, name: str) -> None:
        try:
            self.experiment(name)
        except PromptlabError as exc:
            self._failed[name] = exc
        except Exception as exc:  # a bug: shown as an internal error by the request
            traceback.print_exc(file=sys.stderr)
            self._failed[name] = InternalError(f"internal error while comparing {name!r} "
                                                f"(details on the dashboard's terminal): "
                                                f"{type(exc).__name__}")

    def _logged(self, name: str) -> bool:
        """Whether calls are logged under the experiment (cheap: the cost roll-up)."""
        return self.index.conn.execute("SELECT 1 FROM rollup WHERE experiment = ? LIMIT 1",
                                       (name,)).fetchone() is not None

    def warm(self) -> threading.Thread:
        """Compute every experiment's comparison in the background (on its own connection,
        so the other views answer meanwhile): the first visit does not wait for `compare`."""
        def run() -> None:
            from promptlab.experiments import list_experiments
            from promptlab.index import Index

            with Index(self.settings.log_dir) as index:
                for name in list_experiments(self.settings):
                    try:
                        self.experiment(name, index)
                    except Exception:  # shown (with its message) when the page is opened
                        continue

        thread = threading.Thread(target=run, name="promptlab-dashboard-warm", daemon=True)
        thread.start()
        return thread

    # -- request handling ----------------------------------------------------------------

    def handle(self, method: str, target: str, headers: dict[str, str] | None = None) -> Response:
        headers = {k.lower(): v for k, v in (headers or {}).items()}
        if method != "GET":
            return _text(HTTPStatus.METHOD_NOT_ALLOWED, "read-only: only GET is allowed",
                         {"Allow": "GET"})
        if self.check_host and not _host_ok(headers.get("host", "")):
            return _text(HTTPStatus.MISDIRECTED_REQUEST,
                         "unexpected Host header: open the dashboard at http://127.0.0.1:<port>/")
        url = urlsplit(target)
        params = dict(parse_qsl(url.query, keep_blank_values=True))
        if self.token is not None:
            given = params.pop("token", None)
            if given is not None and _same(given, self.token):
                query = urlencode(params)
                # One leading "/": browsers read "//host" and "/\\host" as another site.
                path = "/" + url.path.lstrip("/\\")
                return Response(HTTPStatus.SEE_OTHER, b"", "text/plain", {
                    "Location": path + ("?" + query if query else ""),
                    "Set-Cookie": f"{COOKIE}={self.token}; HttpOnly; SameSite=Strict; Path=/"})
            if not self._authorised(headers):
                return _text(HTTPStatus.UNAUTHORIZED, "this dashboard needs its token: open the "
                             "URL printed by `promptlab dashboard` (it ends in ?token=…)")
        try:
            segments = _segments(url.path)
        except NotFound as exc:
            return self._error(HTTPStatus.NOT_FOUND, str(exc), _under_api(url.path))
        if segments[:1] == ["static"]:
            return self._static(segments)
        if segments == ["favicon.ico"]:
            return Response(HTTPStatus.NO_CONTENT, b"", "image/x-icon")
        api = segments[:1] == ["api"]
        if api:
            segments = segments[1:]
        try:
            with self._lock:
                self.sync()
            if len(segments) == 2 and segments[0] == "experiments" and _experiment_name(segments[1]):
                # Seconds at a million entries the first time: computed on its own
                # connection and thread, so this and the other views keep answering.
                d = self.experiment_view(segments[1])
                with self._lock:
                    return self._route(segments, params, api, experiment=d)
            with self._lock:
                return self._cached(segments, params, api)
        except NotFound as exc:
            return self._error(HTTPStatus.NOT_FOUND, str(exc), api)
        except PromptlabError as exc:
            # The form's words: `since 'x': …`, where the command line says `--since 'x': …`.
            message = exc.field_message if isinstance(exc, OptionError) else str(exc)
            return self._error(_status_of(exc), message, api)
        except Exception:  # a bug: say so without leaking the details to the page
            traceback.print_exc(file=sys.stderr)
            return self._error(HTTPStatus.INTERNAL_SERVER_ERROR,
                               "internal error (details on the dashboard's terminal)", api)

    def _authorised(self, headers: dict[str, str]) -> bool:
        assert self.token is not None
        auth = headers.get("authorization", "")
        if auth.lower().startswith("bearer ") and _same(auth[7:].strip(), self.token):
            return True
        for part in headers.get("cookie", "").split(";"):
            name, _, value = part.strip().partition("=")
            if name == COOKIE and _same(value, self.token):
                return True
        return False

    def _static(self, segments: list[str]) -> Response:
        name = segments[1] if len(segments) == 2 else ""
        if name not in STATIC_FILES:
            return _text(HTTPStatus.NOT_FOUND, "no such file")
        body = (STATIC / name).read_bytes()
        return Response(HTTPStatus.OK, body, STATIC_FILES[name],
                        {"Cache-Control": "max-age=300"})

    def _error(self, status: int, message: str, api: bool) -> Response:
        if api:
            return Response(status, orjson.dumps({"error": message}), "application/json")
        html = render_page("error", "Error", None, Links(), {**self._context(), "error": message})
        return Response(status, html.encode(), "text/html; charset=utf-8")

    def _context(self) -> dict[str, Any]:
        return {"project": str(self.settings.root.name), "log_dir": str(self.settings.log_dir),
                "version": self.version, "semantic_modes": self.semantic_modes}

    def _cached(self, segments: list[str], params: dict[str, str], api: bool) -> Response:
        key = (tuple(segments), tuple(sorted(params.items())), api,
               views_data.data_version(self.index))
        if segments[:1] in (["prompts"], ["experiments"]):
            key += (views_data.project_mtime(self.settings), self._generation)
        hit = self._cache.get(key)
        if hit is not None and time.monotonic() - hit[0] < CACHE_TTL_S:
            self._cache.move_to_end(key)
            return hit[1]
        response = self._route(segments, params, api)
        self._cache[key] = (time.monotonic(), response)
        while len(self._cache) > CACHE_SIZE:
            self._cache.popitem(last=False)
        return response

    def _route(self, segments: list[str], params: dict[str, str], api: bool,
               experiment: dict[str, Any] | None = None) -> Response:
        s, idx = self.settings, self.index
        head = segments[0] if segments else "overview"
        arg = segments[1] if len(segments) == 2 else None
        if len(segments) > 2 or head not in TITLES or (head == "overview" and arg):
            raise NotFound("no such page: the views are /, /logs, /traces, /prompts and "
                           "/experiments")
        view, title = head, TITLES[head]
        context: dict[str, Any] = {}
        if head == "overview":
            period = views_data.parse_period(params)
            group = params.get("group", "model") or "model"
            d = views_data.overview(idx, period, group, prices=s.prices)
            context = {"since_text": period.since_text, "until_text": period.until_text,
                       "period_params": {"since": period.since_text,
                                         "until": period.until_text,
                                         "period": "" if period.since_text or period.until_text
                                         else period.label}}
        elif head == "logs" and arg is None:
            d = redact(views_data.logs_page(idx, params, semantic=self.semantic))
            context = {"query": {k: v for k, v in params.items()
                                 if k not in ("before", "page") and v}}
        elif head == "logs":
            d = redact(views_data.entry_page(idx, arg))
            view, title = "entry", f"Entry {d['entry'].get('id')}"
        elif head == "traces" and arg is None:
            d = views_data.traces_page(idx, params)
        elif head == "traces":
            d = redact(views_data.trace_page(idx, arg))
            view, title = "trace", f"Trace {d['trace_id']}"
        elif head == "prompts" and arg is None:
            d = views_data.prompts_list(s, idx)
        elif head == "prompts":
            if not PROMPT_ID.fullmatch(arg) or len(arg) > 200:
                raise NotFound(f"no prompt {arg!r}")
            d = views_data.prompt_page(s, idx, arg, params)
            view, title = "prompt", f"Prompt {arg}"
        elif head == "experiments" and arg is None:
            d = views_data.experiments_list(s, idx)
            for x in d["experiments"]:  # the verdict when it is computed (see warm())
                kept = self._experiments.get(x["name"])
                x["verdict"] = headline(kept[2]) if kept else None
        else:
            assert arg is not None
            if not _experiment_name(arg):
                raise NotFound(f"no experiment {arg!r}")
            d = experiment if experiment is not None else self.experiment_view(arg)
            view, title = "experiment", f"Experiment {arg}"
            if d.get("computing"):  # reload until the comparison is there
                context["refresh"] = REFRESH_S
        if api:
            waiting = view == "experiment" and d.get("computing")
            return Response(HTTPStatus.ACCEPTED if waiting else HTTPStatus.OK,
                            views_data.json_bytes(d, orjson.OPT_NON_STR_KEYS),
                            "application/json", {"Retry-After": str(REFRESH_S)} if waiting else {})
        api_url = "/api/" + "/".join(quote(x, safe="") for x in segments)
        if params:
            api_url += "?" + urlencode(params)
        context["api_url"] = api_url
        html = render_page(view, title, d, Links(), {**self._context(), **context})
        return Response(HTTPStatus.OK, html.encode(), "text/html; charset=utf-8")


def _status_of(exc: PromptlabError) -> int:
    """500 for a bug met in the background (a comparison that crashed), 404 for something
    that is not there (an entry, trace, prompt, experiment), 503 for logs the server cannot
    read as they stand (not the client's fault: permissions, a full disk, an index removed
    meanwhile), 400 for a request that asks the wrong way (a bad filter, period or
    search)."""
    from promptlab.errors import ExperimentError, PromptNotFoundError
    from promptlab.index.query import EntryNotFoundError

    if isinstance(exc, LogsUnavailableError):
        return HTTPStatus.SERVICE_UNAVAILABLE
    if isinstance(exc, InternalError):
        return HTTPStatus.INTERNAL_SERVER_ERROR
    missing = isinstance(exc, PromptNotFoundError | EntryNotFoundError) or (
        isinstance(exc, ExperimentError) and str(exc).startswith("no experiment"))
    return HTTPStatus.NOT_FOUND if missing else HTTPStatus.BAD_REQUEST


def _experiment_name(name: str) -> bool:
    """A plain experiment name (never a path: the experiment loader would read one)."""
    return bool(NAME.fullmatch(name)) and not name.endswith(".toml")


def _same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def _host_ok(host: str) -> bool:
    name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    return host == "" or is_loopback(name.strip("[]"))


def _under_api(path: str) -> bool:
    """Whether a path is under /api — judged on its first segment alone, for an error
    about decoding the rest."""
    return unquote(path.lstrip("/").split("/", 1)[0]) == "api"


def _segments(path: str) -> list[str]:
    """Path segments, each percent-decoded once, after the split — so an encoded `/` or
    `..` stays inside one segment. Dot segments and control characters are refused."""
    out = []
    for raw in path.split("/"):
        if raw == "":
            continue
        try:
            value = unquote(raw, errors="strict") if "%" in raw else raw
        except UnicodeDecodeError:
            raise NotFound("no such page") from None
        if value in (".", "..") or ".." in value.split("/") or "\\" in value or \
                any(ord(c) < 32 for c in value) or value.startswith("/"):
            raise NotFound("no such page")
        out.append(value)
    return out


def _text(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    return Response(status, (message + "\n").encode(), "text/plain; charset=utf-8",
                    dict(headers or {}))


# -- the socket server ------------------------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    server_version = "promptlab-dashboard"
    sys_version = ""
    disable_nagle_algorithm = True  # headers and body are separate writes: no 40 ms stall
    # A client that opens a connection and never finishes its request (an unfinished
    # request line or headers) is dropped after this long instead of holding a thread.
    timeout = REQUEST_TIMEOUT_S
    app: Dashboard  # set on the subclass made by serve()
    _refusing = False  # in send_error: end_headers adds SECURITY_HEADERS

    def do_GET(self) -> None:
        self._respond(self.command)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("do_"):  # every other method (POST, PUT, DELETE, HEAD, …): 405
            return lambda: self._respond(name[3:])
        raise AttributeError(name)

    def _respond(self, method: str) -> None:
        try:
            response = self.app.handle(method, self.path, dict(self.headers.items()))
        except UnicodeDecodeError:
            response = self.app._error(HTTPStatus.NOT_FOUND, "no such page",
                                       _under_api(urlsplit(self.path).path))
        self.send_response(response.status)
        for name, value in {**SECURITY_HEADERS, **response.headers}.items():
            self.send_header(name, value)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        if method != "HEAD":
            self.wfile.write(response.body)

    def send_error(self, code: int, message: str | None = None,
                   explain: str | None = None) -> None:
        """http.server's own refusals (a request line or headers too long, a malformed
        request), with the security headers of every other answer."""
        self._refusing = True
        try:
            super().send_error(code, message, explain)
        finally:
            self._refusing = False

    def end_headers(self) -> None:
        if self._refusing:
            for name, value in SECURITY_HEADERS.items():
                self.send_header(name, value)
        super().end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet: a local UI; failures are printed by Dashboard.handle


def make_server(app: Dashboard, host: str = "127.0.0.1", port: int = 8765) -> ThreadingHTTPServer:
    """A threading HTTP server for `app` (port 0: any free port)."""
    if not is_loopback(host) and app.token is None:
        raise UsageError(f"--host {host} is not a loopback address: anyone who can reach it "
                         "could read your logs; give --token (or let promptlab generate one)")
    handler = type("Handler", (_Handler,), {"app": app})
    server_class = ThreadingHTTPServer
    if ":" in host:  # an IPv6 address such as ::1
        server_class = type("Server6", (ThreadingHTTPServer,), {"address_family": socket.AF_INET6})
    server = server_class((host.strip("[]"), port), handler)
    server.daemon_threads = True
    return server


def new_token() -> str:
    return secrets.token_urlsafe(24)
