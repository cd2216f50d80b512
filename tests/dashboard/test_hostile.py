"""The dashboard and the report against a hostile or careless user: odd addresses for
--host, far-past periods, non-finite paging values, connections that never finish."""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
from typing import Any
from urllib.parse import urlsplit

import pytest


def get(base: str, path: str) -> tuple[int, str]:
    url = urlsplit(base)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, resp.read().decode("utf-8", "replace")
    finally:
        conn.close()


@pytest.fixture
def no_serving(monkeypatch: pytest.MonkeyPatch) -> None:
    """`promptlab dashboard` starts, then stops at once as if Ctrl-C was pressed."""
    from http.server import ThreadingHTTPServer

    def stop(self: Any, *args: Any, **kwargs: Any) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(ThreadingHTTPServer, "serve_forever", stop)


def test_empty_host_is_not_loopback(dash_project: dict) -> None:
    """"" binds every interface: it must never count as loopback (no token needed)."""
    from promptlab.dashboard import Dashboard, make_server
    from promptlab.dashboard.server import is_loopback
    from promptlab.errors import UsageError

    assert not is_loopback("")
    app = Dashboard(dash_project["settings"])
    try:
        with pytest.raises(UsageError, match="not a loopback"):
            make_server(app, "", 0).server_close()
    finally:
        app.close()


def test_cli_refuses_an_empty_host(dash_project: dict, run_cli: Any, no_serving: None) -> None:
    result = run_cli(dash_project, "dashboard", "--host", "", "--port", "0")
    assert result.exit_code == 2, result.output
    assert "--host ''" in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1, result.output


def test_cli_prints_a_usable_url_for_a_bracketed_ipv6_host(dash_project: dict, run_cli: Any,
                                                            no_serving: None) -> None:
    try:
        socket.socket(socket.AF_INET6).close()
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
    except OSError:
        pytest.skip("no IPv6 loopback here")
    result = run_cli(dash_project, "dashboard", "--host", "[::1]", "--port", "0")
    assert result.exit_code == 0, result.output
    assert "http://[::1]:" in result.output and "[[" not in result.output, result.output


def test_years_before_1000_are_labelled_with_four_digits(server: str) -> None:
    status, body = get(server, "/api/?since=0001-01-01")
    assert status == 200
    d = json.loads(body)
    assert d["bucket"] == "year"
    assert d["days"][0] == "0001" and d["days"][9] == "0010", d["days"][:12]
    assert all(len(label) == 4 for label in d["days"])
    assert get(server, "/?since=0001-01-01")[0] == 200


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "1e400"])
def test_traces_before_must_be_a_finite_time(server: str, value: str) -> None:
    for prefix in ("/api", ""):
        status, body = get(server, f"{prefix}/traces?before={value}")
        assert status == 400, (prefix, value, status)
        assert "before" in body and "Traceback" not in body


def test_an_unfinished_request_is_dropped(dash_project: dict,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """A client that sends half a request never holds a connection (and a thread) forever."""
    from promptlab.dashboard import Dashboard, make_server
    from promptlab.dashboard import server as server_mod

    assert 0 < server_mod._Handler.timeout <= 60
    monkeypatch.setattr(server_mod._Handler, "timeout", 0.5)
    app = Dashboard(dash_project["settings"])
    httpd = make_server(app, "127.0.0.1", 0)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        with socket.create_connection(("127.0.0.1", httpd.server_address[1]), timeout=10) as s:
            s.sendall(b"GET /api/ HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # headers never end
            started = time.monotonic()
            assert s.recv(1024) == b""  # closed by the server, not by our 10 s timeout
            assert time.monotonic() - started < 5
    finally:
        httpd.shutdown()
        httpd.server_close()
        app.close()


@pytest.mark.parametrize("path", ["/\\evil.example/", "//evil.example/", "///evil.example"])
def test_token_redirect_never_leaves_the_dashboard(dash_project: dict, path: str) -> None:
    """The ?token= exchange redirects to the same path without it: never to another host
    (a browser reads "/\\host" and "//host" as a link to that host)."""
    from promptlab.dashboard import Dashboard

    app = Dashboard(dash_project["settings"], token="a-long-enough-token")
    try:
        response = app.handle("GET", path + "?token=a-long-enough-token", {"Host": "x"})
    finally:
        app.close()
    assert response.status == 303
    location = response.headers["Location"]
    assert location.startswith("/") and location[1:2] not in ("/", "\\"), location


def test_report_to_a_path_ending_in_a_slash_is_refused(dash_project: dict, tmp_path: Any,
                                                       run_cli: Any) -> None:
    """`--html out/` names a folder: not a file called `out`."""
    result = run_cli(dash_project, "report", "--html", str(tmp_path / "out") + "/")
    assert result.exit_code == 2, result.output
    assert "does not exist" in result.output and "Traceback" not in result.output
    assert list(tmp_path.iterdir()) == []
