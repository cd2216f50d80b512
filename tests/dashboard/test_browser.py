"""The dashboard and the report in a real headless Chromium (Debian's, driven by Playwright).

Without a browser these tests skip and say how to run them; in CI (CI=true, where .ci/run
installs Chromium) a missing browser is a failure. Screenshots of every view are saved under
tests/dashboard/artifacts/ (or $PROMPTLAB_TEST_ARTIFACTS)."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

HOW = ("browser tests need Chromium and Playwright: `apt-get install chromium` (or your "
       "distribution's package) and `pip install -e '.[test]'`; no `playwright install` needed")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run"]


def _unavailable(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI must run the browser tests: {reason}. {HOW}")
    pytest.skip(f"{reason}. {HOW}")


# Module scope: Playwright's sync API keeps an event loop on this thread while it runs,
# which would break later tests that call asyncio.run().
@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("Playwright for Python is not installed")
    path = os.environ.get("PROMPTLAB_CHROMIUM") or shutil.which("chromium") or \
        shutil.which("chromium-browser") or \
        next((p for p in ("/usr/bin/chromium", "/usr/bin/chromium-browser") if os.path.exists(p)), None)
    if not path:
        _unavailable("no chromium on PATH")
    with sync_playwright() as p:
        # Playwright gives every launch a fresh temporary profile (its --user-data-dir).
        b = p.chromium.launch(executable_path=path, args=FLAGS)
        yield b
        b.close()


class Page:
    """A browser tab that records dialogs (an executed alert) and console errors (CSP
    violations are reported there)."""

    def __init__(self, browser: Any, offline: bool = False):
        self.context = browser.new_context(viewport={"width": 1280, "height": 900})
        if offline:
            self.context.route("**/*", lambda route: route.continue_()
                               if route.request.url.startswith("file:") else route.abort())
        self.page = self.context.new_page()
        self.dialogs: list[str] = []
        self.errors: list[str] = []
        self.page.on("dialog", lambda d: (self.dialogs.append(d.message), d.dismiss()))
        self.page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def tab(browser: Any) -> Iterator[Page]:
    page = Page(browser)
    yield page
    page.close()


def injected(page: Any) -> dict[str, int]:
    """Anything a payload would have added to the DOM had it been parsed as markup."""
    return page.evaluate("""() => ({
        scripts: document.querySelectorAll('script:not([type="application/json"])').length,
        handlers: document.querySelectorAll('[onerror],[onload],[onclick],[onmouseover]').length,
        img_x: document.querySelectorAll('img[src="x"]').length,
        js_links: document.querySelectorAll('a[href^="javascript:" i]').length,
        bold: document.querySelectorAll('main b').length,
    })""")


VIEWS = [("overview", "/"), ("overview-by-tag", "/?group=tag&period=30d"), ("logs", "/logs"),
         ("traces", "/traces"), ("prompts", "/prompts"), ("prompt", "/prompts/code-review"),
         ("experiments", "/experiments"), ("experiment", "/experiments/code-review-ab")]


def test_every_view_in_the_browser(server: str, tab: Page, artifacts: Path) -> None:
    for name, path in VIEWS:
        tab.page.goto(server + path)
        assert tab.page.locator("main h2").count() >= 1, name
        assert not tab.page.locator("#error").count(), (name, tab.page.inner_text("#error"))
        tab.page.screenshot(path=str(artifacts / f"{name}.png"), full_page=True)
    # The stylesheet applied under the CSP (a blocked one would leave the header unstyled).
    colour = tab.page.evaluate("getComputedStyle(document.querySelector('header')).backgroundColor")
    assert colour == "rgb(31, 41, 55)"
    assert tab.errors == [] and tab.dialogs == []


def test_overview_shows_what_costs_prints(server: str, tab: Page, dash_project: dict,
                                          cli_json: Any) -> None:
    costs = cli_json(dash_project, "costs", "--since", "30d")
    tab.page.goto(server + "/?period=30d")
    shown = {k: tab.page.inner_text(f'#totals td[data-k="{k}"]') for k in
             ("calls", "errors", "input_tokens", "output_tokens")}
    for key, text in shown.items():
        assert int(text.replace(",", "")) == costs["total"][key], key
    cost_text = tab.page.inner_text('#totals td[data-k="cost_usd"]')
    assert f"${costs['total']['cost_usd']:.4f}" in cost_text
    assert f"{costs['total']['unpriced_calls']} calls of unknown cost" in cost_text
    assert tab.page.locator("svg.chart").count() == 5
    tab.page.click("text=provider")
    assert "group=provider" in tab.page.url
    assert "Calls per day by provider" in tab.page.inner_text("main")


def test_experiment_shows_compare_verdict_and_forest_plot(server: str, tab: Page,
                                                         dash_project: dict,
                                                         cli_json: Any) -> None:
    expected = cli_json(dash_project, "compare", "--experiment", "code-review-ab")
    tab.page.goto(server + "/experiments/code-review-ab")
    verdict = tab.page.inner_text("#verdict-1")
    primary = expected["metrics"][0]
    assert f"{primary['name']}: {primary['verdict']}" in verdict
    rows = tab.page.locator("table.compare tr").all_inner_texts()[1:]
    assert [r.split("\t")[0].split(" ")[0] for r in rows] == [m["name"] for m in expected["metrics"]]
    for row, m in zip(rows, expected["metrics"], strict=True):
        assert m["verdict"] in row
    forest = tab.page.locator(".forest svg")
    assert forest.count() == 1
    labels = tab.page.evaluate(
        "document.querySelector('.forest svg').textContent")
    assert f"{primary['lift'] * 100:+.1f}%" in labels and "tolerance" in labels


def test_search_entry_trace_click_through(server: str, tab: Page, artifacts: Path) -> None:
    tab.page.goto(server + "/logs")
    tab.page.fill('input[name="q"]', "traced invoice")
    tab.page.click('#search button[type="submit"]')
    assert "q=traced" in tab.page.url
    first = tab.page.locator("#entries tr td a").first
    first.click()
    assert tab.page.inner_text("main h2").startswith("Entry ")
    assert "What is in the invoice? (traced)" in tab.page.inner_text(".chat")
    tab.page.screenshot(path=str(artifacts / "entry.png"), full_page=True)
    tab.page.click("#trace-link")
    assert tab.page.inner_text("main h2").startswith("Trace ")
    waterfall = tab.page.evaluate("document.querySelector('#waterfall svg').textContent")
    assert "generate · gpt-4o-mini" in waterfall and "retrieve" in waterfall
    assert "1200→200 tok" in waterfall
    tab.page.screenshot(path=str(artifacts / "trace.png"), full_page=True)
    # Every bar links back to its entry.
    tab.page.locator("#waterfall svg a rect").nth(2).click()
    assert tab.page.inner_text("main h2").startswith("Entry ")
    assert tab.errors == []


def test_long_texts_collapse(server: str, tab: Page, dash_project: dict) -> None:
    tab.page.goto(server + f"/logs/{dash_project['long']['id']}")
    details = tab.page.locator(".chat details")
    assert details.count() == 1
    assert not tab.page.locator(".chat details pre").is_visible()
    details.locator("summary").click()
    assert tab.page.locator(".chat details pre").is_visible()


def test_xss_payloads_stay_text(server: str, tab: Page, dash_project: dict,
                                artifacts: Path, payloads: list[str]) -> None:
    pages = ["/logs", "/logs?kind=all", "/traces/xsstrace0000111122223333",
             "/logs?q=alert", "/?group=tag", "/?group=model"]
    pages += [f"/logs/{e['id']}" for e in dash_project["xss"]]
    for path in pages:
        tab.page.goto(server + path)
        assert injected(tab.page) == {"scripts": 0, "handlers": 0, "img_x": 0, "js_links": 0,
                                      "bold": 0}, path
    tab.page.goto(server + f"/logs/{dash_project['xss'][0]['id']}")
    text = tab.page.inner_text("main")
    assert payloads[0] in text  # shown as text
    tab.page.screenshot(path=str(artifacts / "xss-entry.png"), full_page=True)
    for entry in dash_project["xss"]:
        tab.page.goto(server + f"/logs/{entry['id']}")
        assert entry["system_prompt"] in tab.page.inner_text(".chat")
    assert tab.dialogs == []


def test_report_opens_offline_and_runs_nothing(browser: Any, dash_project: dict,
                                               tmp_path: Path, artifacts: Path,
                                               payloads: list[str], secret: str) -> None:
    from promptlab.dashboard import write_report

    path = write_report(dash_project["settings"], tmp_path / "report.html", since="30d")
    html = path.read_text()
    assert secret not in html and "[REDACTED]" in html
    page = Page(browser, offline=True)
    try:
        page.page.goto(path.as_uri())
        assert injected(page.page) == {"scripts": 0, "handlers": 0, "img_x": 0, "js_links": 0,
                                       "bold": 0}
        colour = page.page.evaluate(
            "getComputedStyle(document.querySelector('header')).backgroundColor")
        assert colour == "rgb(31, 41, 55)"  # the inline stylesheet is allowed by its hash
        data = json.loads(page.page.evaluate(
            "document.getElementById('report-data').textContent"))
        assert any(payloads[3] in (e.get("text") or "") or payloads[3] in json.dumps(e)
                   for e in data["entries"])  # </script> inside the JSON did not end it
        assert "v2 better" in page.page.inner_text("#experiments")
        assert page.page.locator("#overview svg.chart").count() == 5
        page.page.click('nav a[href="#experiments"]')
        page.page.screenshot(path=str(artifacts / "report.png"), full_page=False)
        assert page.dialogs == [] and page.errors == []
    finally:
        page.close()


def test_experiment_page_reloads_itself_until_compared(dash_project: dict, tab: Page,
                                                       artifacts: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """A comparison that takes seconds (as at a million calls): the page answers at once
    saying so, and reloads itself (a meta refresh: no script) until the verdict is there."""
    import threading
    import time

    from promptlab.dashboard import Dashboard, make_server
    from promptlab.dashboard import data as views_data

    original = views_data.experiment_page

    def slow(*args: Any, **kwargs: Any) -> Any:
        time.sleep(2.5)
        return original(*args, **kwargs)

    monkeypatch.setattr(views_data, "experiment_page", slow)
    app = Dashboard(dash_project["settings"])
    httpd = make_server(app, "127.0.0.1", 0)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        started = time.monotonic()
        tab.page.goto(f"http://127.0.0.1:{httpd.server_address[1]}/experiments/code-review-ab")
        assert "Comparing the variants" in tab.page.inner_text("#computing")
        tab.page.screenshot(path=str(artifacts / "experiment-computing.png"), full_page=True)
        tab.page.wait_for_selector("#verdict-1", timeout=60_000)
        assert time.monotonic() - started >= 2.0  # it did wait for the comparison
        assert "finds_bug: v2 better" in tab.page.inner_text("#verdict-1")
        assert tab.errors == [] and tab.dialogs == []
    finally:
        httpd.shutdown()
        httpd.server_close()
        app.close()
