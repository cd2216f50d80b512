"""The dashboard's errors: whose fault they are (a bad request is a 400; logs the server
cannot read, or an index that went away under it, a 503 — never a 500), in the words of
the web UI (form fields, not command-line options), and in the form of every other answer
(JSON under /api, a page elsewhere, the security headers on all of them, http.server's
own refusals included)."""

from __future__ import annotations

import html
import json
import shutil
import time
from pathlib import Path
from typing import Any

import pytest

HOST = {"Host": "127.0.0.1"}


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
