"""The dashboard over real HTTP: routes, JSON API against the CLI's numbers, security
(methods, traversal, CSP, Host check, token) and the CLI commands."""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from promptlab.logs.logger import Logger


def request(base: str, path: str, method: str = "GET",
            headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], str]:
    """A raw request: the path is sent exactly as given (no client-side normalising)."""
    url = urlsplit(base)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
    try:
        conn.request(method, path, headers=headers or {})
        resp = conn.getresponse()
        body = resp.read().decode("utf-8", "replace")
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, body
    finally:
        conn.close()


@pytest.mark.parametrize("path", ["/", "/?period=7d&group=tag", "/?group=provider&period=all",
                                  "/logs", "/logs?q=invoice", "/logs?status=error&kind=llm",
                                  "/traces", "/prompts", "/prompts/code-review",
                                  "/prompts/code-review?a=v1&b=v2", "/experiments",
                                  "/experiments/code-review-ab", "/logs/last"])
def test_every_view_answers_with_a_strict_policy(server: str, path: str) -> None:
    status, headers, body = request(server, path)
    assert status == 200, body[:500]
    assert headers["content-security-policy"].startswith("default-src 'none'")
    assert "script-src" not in headers["content-security-policy"]  # none: default-src 'none'
    assert headers["x-content-type-options"] == "nosniff"
    assert "<script" not in body.lower()
    assert "promptlab" in body


def test_overview_totals_match_costs_json(server: str, dash_project: dict, cli_json: Any) -> None:
    costs = cli_json(dash_project, "costs", "--since", "30d")
    status, _, body = request(server, "/api/?period=30d")
    assert status == 200
    api = json.loads(body)
    total = api["totals"]["total"]
    for key in ("calls", "errors", "input_tokens", "output_tokens", "cost_usd", "unpriced_calls"):
        assert total[key] == pytest.approx(costs["total"][key]), key
    assert total["calls"] == 120 + 60 + 3 + 5 + 2
    # The stacked series add up to the same calls.
    assert sum(cell["calls"] for series in api["series"].values()
               for cell in series.values()) == total["calls"]
    assert api["latency"]["points"] and not api["latency"]["sampled"]


def test_experiment_view_matches_compare_json(server: str, dash_project: dict,
                                              cli_json: Any) -> None:
    expected = cli_json(dash_project, "compare", "--experiment", "code-review-ab")
    status, _, body = request(server, "/api/experiments/code-review-ab")
    assert status == 200
    shown = json.loads(body)["comparison"]
    assert [m["name"] for m in shown["metrics"]] == [m["name"] for m in expected["metrics"]]
    for got, want in zip(shown["metrics"], expected["metrics"], strict=True):
        assert got["verdict"] == want["verdict"]
        assert got["diff"] == pytest.approx(want["diff"])
    status, _, page = request(server, "/experiments/code-review-ab")
    primary = expected["metrics"][0]
    assert f"{primary['lift'] * 100:+.1f}%" in page  # the forest plot's label and the table
    assert primary["verdict"] in page
    assert "Sample ratio" in page and "Power:" in page
    assert page.count("<svg") >= 1


def test_logs_page_newest_first_and_keyset_paging(server: str) -> None:
    _, _, body = request(server, "/api/logs?kind=all")
    first = json.loads(body)
    stamps = [r["timestamp"] for r in first["rows"]]
    assert stamps == sorted(stamps, reverse=True) and len(stamps) == 50
    before = first["next"]["before"]
    _, _, body = request(server, f"/api/logs?kind=all&before={before}")
    second = json.loads(body)
    assert second["rows"][0]["timestamp"] <= stamps[-1]
    assert not {r["id"] for r in second["rows"]} & {r["id"] for r in first["rows"]}


def test_filters_and_search(server: str) -> None:
    _, _, body = request(server, "/api/logs?status=error")
    rows = json.loads(body)["rows"]
    assert len(rows) == 1 and rows[0]["status"] == "error"
    _, _, body = request(server, "/api/logs?q=invoice&model=gpt-4o-mini")
    rows = json.loads(body)["rows"]
    assert rows and all(r["model"] == "gpt-4o-mini" for r in rows)
    assert json.loads(request(server, "/api/logs?q=invoice&in=system")[2])["rows"] == []
    rows = json.loads(request(server, "/api/logs?q=invoice&in=user&sort=recent")[2])["rows"]
    assert len(rows) == 3  # the three traced calls ask about "the invoice"
    status, _, body = request(server, "/logs?q=%22unbalanced&status=bogus")
    assert status == 400 and "status &#39;bogus&#39;" in body and "--status" not in body
    # a hand-edited 'older' link: out of SQLite's range or not a time is a 400, not a 500
    for before in ("1:99999999999999999999", "nan:1", "inf:1", "x:1", "1:-1"):
        status, _, body = request(server, f"/api/logs?before={before}")
        assert status == 400 and "expected <ts>:<rowid>" in body, before
    status, _, body = request(server, "/api/logs?q=invoice&page=99999999999999999999")
    assert status == 200, body
    assert json.loads(body)["rows"] == []


def test_entry_page_shows_chat_scores_feedback_and_trace(server: str, dash_project: dict) -> None:
    target = dash_project["feedback_target"]
    status, _, body = request(server, f"/logs/{target['id']}")
    assert status == 200
    assert "What is in the invoice? (traced)" in body
    assert "helpful" in body and "feedback" in body
    assert f"/traces/{target['trace_id']}" in body
    assert "/prompts/summarization?version=v1" in body
    status, _, body = request(server, f"/logs/{dash_project['long']['id']}")
    assert "<details>" in body and "line 199" in body


def test_trace_waterfall(server: str, dash_project: dict) -> None:
    trace = dash_project["traces"][0]
    status, _, body = request(server, f"/traces/{trace['trace_id']}")
    assert status == 200
    assert "answer-question-0" in body and "retrieve" in body
    assert "1200→200 tok" in body  # the LLM call, highlighted with its tokens


def test_unknown_things_are_404_not_500(server: str) -> None:
    for path in ("/logs/NOPE123456", "/traces/zzzzzzzz", "/prompts/nope", "/experiments/nope",
                 "/nothing", "/api/nothing", "/static/nothing.css"):
        status, _, _ = request(server, path)
        assert status == 404, path


@pytest.mark.parametrize("path", [
    "/static/../../../../etc/passwd", "/static/%2e%2e/%2e%2e/etc/passwd",
    "/static/%2e%2e%2f%2e%2e%2fetc%2fpasswd", "/static/%252e%252e%252fetc%252fpasswd",
    "/static/..%5c..%5cpyproject.toml", "/prompts/..%2f..%2fpyproject.toml",
    "/prompts/%2e%2e", "/experiments/..%2fpyproject", "/experiments/%2e%2e%2fpyproject.toml",
    "/static/dashboard.css%00.txt", "/../pyproject.toml", "/%2e%2e/pyproject.toml",
    "/static/%ff%fe",
])
def test_no_route_reads_outside_the_project(server: str, path: str) -> None:
    status, _, body = request(server, path)
    assert status == 404, (path, status)
    assert "root:" not in body and "[project]" not in body and "[build-system]" not in body


def test_static_stylesheet_is_served(server: str) -> None:
    status, headers, body = request(server, "/static/dashboard.css")
    assert status == 200 and headers["content-type"].startswith("text/css")
    assert "font" in body


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD", "TRACE",
                                    "PROPFIND"])
def test_only_get(server: str, method: str) -> None:
    status, headers, _ = request(server, "/", method=method)
    assert status == 405
    assert headers["allow"] == "GET"


def test_host_header_checked_on_loopback(server: str) -> None:
    status, _, _ = request(server, "/", headers={"Host": "evil.example.com"})
    assert status == 421


def test_token_required_on_every_request(dash_project: dict) -> None:
    import threading

    from promptlab.dashboard import Dashboard, make_server
    from promptlab.errors import UsageError

    app = Dashboard(dash_project["settings"], token="s3cret-token-123")
    with pytest.raises(UsageError, match="token"):
        make_server(Dashboard(dash_project["settings"]), "0.0.0.0", 0)
    httpd = make_server(app, "127.0.0.1", 0)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{httpd.server_address[1]}"
    try:
        for path in ("/", "/logs", "/api/", "/static/dashboard.css", "/nothing"):
            assert request(base, path)[0] == 401, path
        assert request(base, "/?token=wrong")[0] == 401
        status, headers, _ = request(base, "/logs?token=s3cret-token-123&status=ok")
        assert status == 303 and headers["location"] == "/logs?status=ok"
        cookie = headers["set-cookie"].split(";")[0]
        assert "HttpOnly" in headers["set-cookie"] and "SameSite=Strict" in headers["set-cookie"]
        assert request(base, "/logs", headers={"Cookie": cookie})[0] == 200
        assert request(base, "/", headers={"Authorization": "Bearer s3cret-token-123"})[0] == 200
        assert request(base, "/", headers={"Cookie": "promptlab_token=nope"})[0] == 401
    finally:
        httpd.shutdown()
        httpd.server_close()
        app.close()


def test_picks_up_new_entries_while_running(dash_project: dict, tmp_path: Path,
                                            log_builder: type) -> None:
    import threading

    from promptlab.config import load_settings
    from promptlab.dashboard import Dashboard, make_server

    settings = load_settings(dash_project["root"], log_dir=tmp_path / "logs", env={})
    log = log_builder(tmp_path / "logs")
    log.add(time.time() - 5, model="m1", input_tokens=1, output_tokens=1, status="ok")
    log.write()
    app = Dashboard(settings, sync_interval=0)
    httpd = make_server(app, "127.0.0.1", 0)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{httpd.server_address[1]}"
    try:
        assert json.loads(request(base, "/api/?period=7d")[2])["totals"]["total"]["calls"] == 1
        log.files.clear()
        log.add(time.time() - 1, model="m2", input_tokens=1, output_tokens=1, status="ok")
        with open(next((tmp_path / "logs").glob("*.jsonl")), "ab") as f:
            f.write(b"".join(next(iter(log.files.values()))))
        assert json.loads(request(base, "/api/?period=7d")[2])["totals"]["total"]["calls"] == 2
    finally:
        httpd.shutdown()
        httpd.server_close()
        app.close()


def test_cli_dashboard_generates_a_token_off_loopback(dash_project: dict) -> None:
    script = Path(sys.executable).parent / "promptlab"
    env = {k: v for k, v in os.environ.items() if k != "PROMPTLAB_LOG_DIR"}  # the project's
    proc = subprocess.Popen([str(script), "dashboard", "--host", "0.0.0.0", "--port", "0"],
                            cwd=dash_project["root"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    try:
        url = proc.stdout.readline().strip()
        assert "?token=" in url, url
        parts = urlsplit(url)
        base = f"http://127.0.0.1:{parts.port}"
        assert request(base, "/")[0] == 401
        status, headers, _ = request(base, "/?" + parts.query)
        assert status == 303 and "promptlab_token=" in headers["set-cookie"]
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_cli_report_writes_one_file(dash_project: dict, tmp_path: Path, run_cli: Any) -> None:
    out = tmp_path / "report.html"
    result = run_cli(dash_project, "report", "--html", str(out), "--since", "30d",
                     "--experiment", "code-review-ab")
    assert result.exit_code == 0, result.output
    html = out.read_text()
    assert 'http-equiv="Content-Security-Policy"' in html and "style-src &#39;sha256-" in html
    assert "v2 better" in html
    bad = run_cli(dash_project, "report", "--html", str(tmp_path / "x.html"),
                  "--experiment", "no-such-experiment")
    assert bad.exit_code == 2 and "no-such-experiment" in bad.output
    assert not (tmp_path / "x.html").exists()


def test_report_into_a_pipe_or_through_a_link_replaces_neither(
        dash_project: dict, tmp_path: Path, run_cli: Any) -> None:
    """The report is written atomically (a temporary file renamed into place), which
    replaced whatever the path was: `--html /dev/full` as root turned the device into a
    regular file. A pipe or a device is written to (`--html /dev/stdout` works); a link's
    file is replaced and the link stays."""
    import os
    import stat
    import threading

    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()), daemon=True)
    reader.start()
    result = run_cli(dash_project, "report", "--html", str(fifo))
    reader.join(timeout=30)
    assert result.exit_code == 0, result.output
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert got and got[0].startswith(b"<!doctype html>")

    real = tmp_path / "real.html"
    real.write_text("old")
    link = tmp_path / "link.html"
    link.symlink_to(real)
    result = run_cli(dash_project, "report", "--html", str(link))
    assert result.exit_code == 0, result.output
    assert link.is_symlink() and real.read_text().startswith("<!doctype html>")


def test_cli_mistakes_are_one_line_and_exit_2(dash_project: dict, tmp_path: Path,
                                              run_cli: Any, server: str) -> None:
    cases = [
        (["report", "--html", str(tmp_path / "missing" / "r.html")], "does not exist"),
        (["report", "--html", str(tmp_path)], "is a folder"),
        (["report", "--html", str(tmp_path / "r.html"), "--since", "bogus"], "--since 'bogus'"),
        (["report", "--html", str(tmp_path / "r.html"), "--since", "2026-02-01",
          "--until", "2026-01-01"], "is not before"),
        (["dashboard", "--port", str(urlsplit(server).port)], "cannot listen"),
        (["dashboard", "--token", "short"], "at least 8"),
    ]
    for args, message in cases:
        result = run_cli(dash_project, *args)
        assert result.exit_code == 2, (args, result.output)
        assert message in result.output and "Traceback" not in result.output, result.output
    assert list(tmp_path.iterdir()) == []  # nothing half-written


def test_experiments_are_compared_in_the_background_on_start(dash_project: dict) -> None:
    from promptlab.dashboard import Dashboard

    app = Dashboard(dash_project["settings"])
    try:
        app.warm().join(timeout=60)
        assert "code-review-ab" in app._experiments
        response = app.handle("GET", "/experiments/code-review-ab", {"Host": "127.0.0.1"})
        assert response.status == 200 and b"Compared at" in response.body
        assert b"v2 better" in response.body
        listing = app.handle("GET", "/experiments", {"Host": "127.0.0.1"}).body.decode()
        assert "v2 vs v1: finds_bug: v2 better" in listing
    finally:
        app.close()


def test_per_group_table_matches_costs_by(server: str, dash_project: dict, cli_json: Any) -> None:
    for group in ("model", "tag", "version"):
        expected = cli_json(dash_project, "costs", "--by", group)
        shown = json.loads(request(server, f"/api/?period=all&group={group}")[2])["by_group"]
        want = {g[group]: g for g in expected["groups"]}
        assert {r[group] for r in shown} == set(want), group
        for row in shown:
            w = want[row[group]]
            for key in ("calls", "errors", "input_tokens", "output_tokens", "unpriced_calls"):
                assert row[key] == w[key], (group, row[group], key)
            assert row["cost_usd"] == pytest.approx(w["cost_usd"]), (group, row[group])


def test_other_views_answer_while_an_experiment_is_compared(
        dash_project: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    """A comparison that takes long never holds a request: the experiment page answers at
    once with "being compared" (and reloads itself), the API with 202 and Retry-After, the
    other views meanwhile; once computed, the page shows the verdict; after new calls, the
    previous verdict stays on screen, marked as being recomputed."""
    import threading

    from promptlab.dashboard import Dashboard
    from promptlab.dashboard import data as views_data

    release = threading.Event()
    started = threading.Event()
    original = views_data.experiment_page

    def slow_experiment_page(*args: Any, **kwargs: Any) -> Any:
        started.set()
        assert release.wait(60), "the test never released the comparison"
        return original(*args, **kwargs)

    monkeypatch.setattr(views_data, "experiment_page", slow_experiment_page)
    app = Dashboard(dash_project["settings"], sync_interval=0)
    host = {"Host": "127.0.0.1"}
    try:
        first = app.handle("GET", "/experiments/code-review-ab", host)
        assert started.wait(60)
        assert first.status == 200 and b'id="computing"' in first.body
        assert b'http-equiv="refresh"' in first.body
        api = app.handle("GET", "/api/experiments/code-review-ab", host)
        assert api.status == 202 and api.headers["Retry-After"] == "2"
        assert json.loads(api.body)["comparison"] is None
        assert app.handle("GET", "/logs", host).status == 200
        assert len(app._computing) == 1  # the second request joined the first computation
        release.set()
        deadline = time.monotonic() + 60
        while b"v2 better" not in (page := app.handle("GET", "/experiments/code-review-ab",
                                                      host)).body:
            assert time.monotonic() < deadline, page.body[-2000:]
            time.sleep(0.05)
        assert b'http-equiv="refresh"' not in page.body and b"Compared at" in page.body
        # New calls: the old verdict is shown while the new one is computed.
        release.clear()
        started.clear()
        logger = Logger(log_dir=dash_project["settings"].log_dir)
        logger.log(model="gpt-4o", prompt_id="code-review", prompt_version="v2",
                   experiment="code-review-ab", variant="v2", user_message="late call")
        logger.close()
        app._experiments["code-review-ab"] = (None, 0.0, app._experiments["code-review-ab"][2])
        stale = app.handle("GET", "/experiments/code-review-ab", host)
        assert started.wait(60)
        assert b"v2 better" in stale.body and b'id="recomputing"' in stale.body
        release.set()
    finally:
        release.set()
        app.close()


def test_a_failed_comparison_is_shown_not_hidden(dash_project: dict,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from promptlab.dashboard import Dashboard
    from promptlab.dashboard import data as views_data
    from promptlab.errors import ExperimentError

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise ExperimentError("experiments/code-review-ab.toml: variant weights must be > 0")

    monkeypatch.setattr(views_data, "experiment_page", broken)
    app = Dashboard(dash_project["settings"])
    try:
        deadline = time.monotonic() + 60
        while b'id="computing"' in (page := app.handle(
                "GET", "/experiments/code-review-ab", {"Host": "127.0.0.1"})).body:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert page.status == 400 and b"variant weights must be &gt; 0" in page.body
        missing = app.handle("GET", "/api/experiments/no-such-thing", {"Host": "127.0.0.1"})
        assert missing.status == 404 and b"no experiment 'no-such-thing'" in missing.body
    finally:
        app.close()


def test_deep_looping_and_rootless_traces_are_shown(dash_project: dict, tmp_path: Path) -> None:
    """A trace 1,200 spans deep, a loop of parents and a trace whose root span was never
    written: the trace list, the waterfall and the entry page answer 200 with every span."""
    import threading

    from promptlab.config import load_settings
    from promptlab.dashboard import Dashboard, make_server

    logs = tmp_path / "logs"
    logs.mkdir()
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(time.time() - 60))

    def span(trace: str, span_id: str, parent: str | None, name: str) -> str:
        return json.dumps({"v": 1, "id": span_id, "kind": "span", "timestamp": stamp + "Z",
                           "name": name, "trace_id": trace, "span_id": span_id,
                           "latency_ms": 5.0, **({"parent_id": parent} if parent else {})})

    lines = [span("DEEP", f"D{i:05d}", f"D{i - 1:05d}" if i else None, f"level{i}")
             for i in range(1200)]
    lines += [span("LOOP", "LA", "LB", "loop-a"), span("LOOP", "LB", "LA", "loop-b"),
              span("HALF", "HSTEP", "HROOT", "half-step")]
    (logs / time.strftime("%Y-%m-%d.jsonl", time.gmtime())).write_text("\n".join(lines) + "\n")
    app = Dashboard(load_settings(dash_project["root"], log_dir=logs, env={}), sync_interval=0)
    httpd = make_server(app, "127.0.0.1", 0)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{httpd.server_address[1]}"
    try:
        status, _, body = request(base, "/traces")
        assert status == 200 and body.count("no root span") == 2  # LOOP and HALF
        rows = json.loads(request(base, "/api/traces")[2])["rows"]
        assert sorted((r["trace_id"], r["spans"]) for r in rows) == [
            ("DEEP", 1200), ("HALF", 1), ("LOOP", 2)]
        status, _, body = request(base, "/traces/DEEP")
        assert status == 200 and "level1199" in body
        deep = json.loads(request(base, "/api/traces/DEEP")[2])
        assert deep["spans"] == 1200 and deep["rows"][-1]["depth"] == 1199
        loop = json.loads(request(base, "/api/traces/LOOP")[2])
        assert [(r["name"], r["depth"]) for r in loop["rows"]] == [("loop-a", 0), ("loop-b", 1)]
        for entry in ("D01199", "LB", "HSTEP"):
            assert request(base, f"/logs/{entry}")[0] == 200
    finally:
        httpd.shutdown()
        httpd.server_close()
        app.close()
