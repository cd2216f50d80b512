"""The dashboard's errors: whose fault they are (a bad request is a 400; logs the server
cannot read, or an index that went away under it, a 503 — never a 500), in the words of
the web UI (form fields, not command-line options), and in the form of every other answer
(JSON under /api, a page elsewhere, the security headers on all of them, http.server's
own refusals included)."""

from __future__ import annotations

import html
import http.client
import json
import shutil
import socket
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

HOST = {"Host": "127.0.0.1"}


def request(base: str, path: str) -> tuple[int, dict[str, str], str]:
    """A GET with the path sent exactly as given."""
    url = urlsplit(base)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        body = resp.read().decode("utf-8", "replace")
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, body
    finally:
        conn.close()


def shown_error(page: str) -> str:
    """The error paragraph of an HTML page, unescaped."""
    start = page.index('<p class="err" id="error">') + len('<p class="err" id="error">')
    return html.unescape(page[start:page.index("</p>", start)])


@pytest.fixture
def project(tmp_path: Path, log_builder: type) -> Path:
    """A project whose log holds two calls."""
    root = tmp_path / "project"
    (root / "prompts").mkdir(parents=True)
    (root / "promptlab.toml").write_text('log_dir = "logs"\n')
    log = log_builder(root / "logs")
    for i, text in enumerate(["the customer wants a refund", "summarise the sales report"]):
        log.add(time.time() - 100 + i, model="m", user_message=text, assistant_response="ok",
                input_tokens=1, output_tokens=1, status="ok")
    log.write()
    return root


def dashboard(root: Path, **kwargs: Any) -> Any:
    from promptlab.config import load_settings
    from promptlab.dashboard import Dashboard

    return Dashboard(load_settings(root, env={}), **kwargs)


# -- whose fault: 400 or 503 ------------------------------------------------------------------


def test_a_log_folder_that_cannot_be_read_is_a_503(project: Path) -> None:
    """Not the client's fault: 503, with the folder and what to do, as JSON and as a page.
    (A folder that links to itself fails to read for root too, unlike a chmod.)"""
    logs = project / "logs"
    app = dashboard(project, sync_interval=0)
    try:
        assert app.handle("GET", "/api/logs", HOST).status == 200
        bad = app.handle("GET", "/api/logs?status=bogus", HOST)  # the client's mistake
        assert bad.status == 400, bad.body
        logs.rename(project / "logs-moved")
        logs.symlink_to("logs")
        api = app.handle("GET", "/api/logs", HOST)
        assert api.status == 503, api.body
        assert api.content_type == "application/json"
        message = json.loads(api.body)["error"]
        assert f"cannot read the logs in {logs}" in message, message
        assert "symbolic links" in message and "readable" in message, message
        page = app.handle("GET", "/logs", HOST)
        assert page.status == 503 and page.content_type.startswith("text/html")
        assert shown_error(page.body.decode()) == message
    finally:
        app.close()


def test_a_log_folder_that_is_a_file_is_a_503(project: Path) -> None:
    logs = project / "logs"
    shutil.rmtree(logs)
    logs.write_text("not a folder\n")
    app = dashboard(project)
    try:
        api = app.handle("GET", "/api/", HOST)
    finally:
        app.close()
    assert api.status == 503, api.body
    message = json.loads(api.body)["error"]
    assert str(logs) in message and "not a folder" in message, message


def test_an_index_removed_under_a_semantic_search_is_not_a_500(
        project: Path, monkeypatch: pytest.MonkeyPatch, embedder_source: str) -> None:
    """The log folder deleted and made again while the dashboard serves: the vector store
    then opens an index.db without the entries (SQLite creates an empty one). A clear 503
    to try again, never "no such table: entries" as a 500; the next try answers from the
    new, empty log."""
    pytest.importorskip("promptlab.semantic")
    from promptlab.semantic import embed_log

    (project / "embedder.py").write_text(embedder_source)
    (project / "promptlab.toml").write_text(
        'log_dir = "logs"\n[embeddings]\ntype = "python"\nfunction = "embedder.py:embed"\n')
    monkeypatch.chdir(project)
    monkeypatch.delenv("PROMPTLAB_LOG_DIR", raising=False)
    logs = project / "logs"
    embed_log(log_dir=logs)
    app = dashboard(project, sync_interval=3600)  # the index stays as last synced
    try:
        assert app.handle("GET", "/api/logs", HOST).status == 200
        shutil.rmtree(logs)
        logs.mkdir()
        response = app.handle("GET", "/api/logs?q=refund&mode=semantic", HOST)
        assert response.status == 503, response.body
        message = json.loads(response.body)["error"]
        assert f"the log index {logs / 'index.db'} was removed or replaced" in message
        assert "try again" in message
        assert not (logs / "index.db").exists()  # (apsw made an empty one, mode 0644)
        again = app.handle("GET", "/api/logs?q=refund&mode=hybrid", HOST)
        assert again.status == 400 and b"embedded yet" in again.body, again.body
        assert app.handle("GET", "/api/logs", HOST).status == 200
    finally:
        app.close()


# -- the web UI's words ------------------------------------------------------------------------


@pytest.mark.parametrize("query, field", [
    ("status=bogus", "status"), ("kind=bogus", "kind"), ("q=invoice&sort=bogus", "sort"),
    ("since=bogus", "since"), ("until=bogus", "until"),
    ("since=2026-02-01&until=2026-01-01", "since"),
])
def test_filter_errors_name_the_form_field(server: str, query: str, field: str) -> None:
    status, _, body = request(server, f"/api/logs?{query}")
    assert status == 400, body
    message = json.loads(body)["error"]
    assert message.startswith(f"{field} ") and "--" not in message, message
    status, _, page = request(server, f"/logs?{query}")
    assert status == 400
    assert shown_error(page) == message


def test_library_and_cli_keep_naming_options() -> None:
    from promptlab.errors import UsageError
    from promptlab.index.query import make_filters

    for values, message in (({"status": "bogus"}, "--status 'bogus': expected ok or error"),
                            ({"kind": "bogus"}, "--kind 'bogus': expected one of"),
                            ({"until": "bogus"}, "--until 'bogus': expected a date"),
                            ({"since": "2026-02-01", "until": "2026-01-01"},
                             "--since (2026-02-01 00:00:00 UTC) is not before --until")):
        with pytest.raises(UsageError) as caught:
            make_filters(None, values)
        assert str(caught.value).startswith(message), caught.value


def test_an_option_error_survives_pickling() -> None:
    """Errors cross process boundaries pickled (a search's helper process): both wordings
    must come back."""
    import pickle

    from promptlab.errors import OptionError

    error = pickle.loads(pickle.dumps(OptionError(lambda p: f"{p}since 'x': not a time")))
    assert (str(error), error.field_message) == ("--since 'x': not a time", "since 'x': not a time")


def test_a_comparison_that_crashes_is_a_500(project: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """A bug while comparing in the background is the server's (500, details on its
    terminal), not a request that asked the wrong way (it answered 400)."""
    from promptlab.dashboard import data as views_data

    (project / "experiments").mkdir()
    (project / "experiments" / "ab.toml").write_text(
        'prompt = "p"\n[variants]\nv1 = 50\nv2 = 50\n')

    def crash(*args: Any) -> Any:
        raise RuntimeError("a bug")

    monkeypatch.setattr(views_data, "experiment_page", crash)
    app = dashboard(project)
    try:
        for _ in range(50):  # the first requests may only find it being compared
            api = app.handle("GET", "/api/experiments/ab", HOST)
            if api.status != 200:
                break
            time.sleep(0.1)
    finally:
        app.close()
    assert api.status == 500, api.body
    assert "internal error while comparing 'ab'" in json.loads(api.body)["error"]


# -- the form of an error ---------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/api/logs/%ff", "/api/%2e%2e/logs", "/%61pi/x/%2e%2e"])
def test_an_undecodable_api_path_is_a_json_404(server: str, path: str) -> None:
    status, headers, body = request(server, path)
    assert status == 404
    assert headers["content-type"] == "application/json"
    assert json.loads(body) == {"error": "no such page"}


@pytest.mark.parametrize("path", ["/logs/%ff", "/%2e%2e/pyproject.toml", "/static/%ff%fe"])
def test_an_undecodable_page_path_is_a_404_page(server: str, path: str) -> None:
    status, headers, body = request(server, path)
    assert status == 404
    assert headers["content-type"].startswith("text/html")
    assert shown_error(body) == "no such page"
    assert headers["content-security-policy"].startswith("default-src 'none'")


LONG = 65_536  # http.server's limit on the request line and on each header line


@pytest.mark.parametrize("raw, status", [
    # Each request ends where the server stops reading, so it closes without a reset.
    (b"GET /" + b"a" * LONG, 414),
    (b"GET / HTTP/1.1\r\nX-Long: " + b"a" * (LONG - 7), 431),
    (b"GET / HTTP/1.1\r\n" + b"X-Many: 1\r\n" * 101, 431),
    (b"GET / one-word-too-many HTTP/1.1\r\n", 400),
], ids=["uri-too-long", "header-too-long", "too-many-headers", "bad-request-line"])
def test_the_servers_own_refusals_carry_the_security_headers(server: str, raw: bytes,
                                                             status: int) -> None:
    from promptlab.dashboard.server import SECURITY_HEADERS

    url = urlsplit(server)
    with socket.create_connection((url.hostname, url.port), timeout=30) as s:
        s.sendall(raw)
        answer = b""
        while chunk := s.recv(65536):
            answer += chunk
    head = answer.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
    assert head[0].split()[1] == str(status), head[0]
    headers = dict(line.split(": ", 1) for line in head[1:])
    for name, value in SECURITY_HEADERS.items():
        assert headers.get(name) == value, (name, head)
