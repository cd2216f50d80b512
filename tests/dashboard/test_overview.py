"""The overview's charts over long or odd periods, times shown in UTC and entries shown as
logged: on a Dashboard called directly (no server), over small logs of their own."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from promptlab.dashboard.data import Period, chart_axis


@pytest.fixture
def dash(dash_project: dict, tmp_path: Path) -> Iterator[Any]:
    """get(path, *lines) → (status, body): the dashboard over a log of these lines."""
    from promptlab.config import load_settings
    from promptlab.dashboard import Dashboard

    apps: list[Any] = []

    def get(path: str, *lines: dict[str, Any]) -> tuple[int, str]:
        logs = tmp_path / f"logs{len(apps)}"
        logs.mkdir()
        for line in lines:
            with open(logs / f"{line['file']}.jsonl", "a") as fh:
                fh.write(json.dumps({k: v for k, v in line.items() if k != "file"}) + "\n")
        app = Dashboard(load_settings(dash_project["root"], log_dir=logs, env={}), sync_interval=0)
        apps.append(app)
        response = app.handle("GET", path, {"host": "127.0.0.1"})
        return response.status, response.body.decode()

    yield get
    for app in apps:
        app.close()


def call(day: str, n: int, **fields: Any) -> dict[str, Any]:
    return {"file": day, "v": 1, "id": f"CALL{n:022d}", "timestamp": f"{day}T10:00:00Z",
            "model": "gpt-4o", "input_tokens": 1000, "latency_ms": 100.0 * n, **fields}


def test_all_shows_every_call_however_old(dash: Any) -> None:
    # 2024-01-01 and today are ~3 years apart: weekly bars, the first call still drawn.
    today = time.strftime("%Y-%m-%d", time.gmtime())
    status, body = dash("/api/?period=all", call("2024-01-01", 1), call(today, 2))
    d = json.loads(body)
    assert status == 200 and d["bucket"] == "week" and d["not_charted"] is None
    assert d["days"][0] == "2024-01-01" and len(d["days"]) <= 400  # 2024-01-01 is a Monday
    drawn = d["series"]["gpt-4o"]
    assert sum(cell["calls"] for cell in drawn.values()) == d["totals"]["total"]["calls"] == 2
    assert "2024-01-01" in drawn and [p["n"] for p in d["latency"]["points"]] == [1, 1]
    assert d["error_rate"][0]["day"] == "2024-01-01"
    status, page = dash("/?period=all", call("2024-01-01", 1), call(today, 2))
    assert status == 200 and "Calls per week by model" in page and "not-charted" not in page


def test_a_far_future_call_does_not_push_the_others_off(dash: Any) -> None:
    today = time.strftime("%Y-%m-%d", time.gmtime())
    lines = (call("2026-01-05", 1), call(today, 2), call("2099-01-01", 3))
    d = json.loads(dash("/api/?period=all", *lines)[1])
    assert d["bucket"] == "day" and d["days"][0] == "2026-01-05" and d["days"][-1] == today
    assert set(d["series"]["gpt-4o"]) == {"2026-01-05", today, "2099-01-01"}  # in the data...
    assert d["totals"]["total"]["calls"] == 3
    assert d["not_charted"]["calls"] == 1  # ...but said to be off the axis
    page = dash("/?period=all", *lines)[1]
    assert "Not in the charts: 1 call dated after" in page
    assert f"promptlab logs --since {d['not_charted']['since']}" in page


@pytest.mark.parametrize(("first", "last", "bucket", "bars"), [
    ("2026-01-01", "2026-12-31", "day", 365),
    ("2025-01-01", "2026-12-31", "week", 105),  # Mondays 2024-12-30 to 2026-12-28
    ("2000-01-01", "2026-12-31", "month", 324),
    ("1900-01-01", "2026-12-31", "year", 127),
])
def test_bars_widen_with_the_span(first: str, last: str, bucket: str, bars: int) -> None:
    from promptlab.dashboard.data import _iso_day

    days = [_iso_day(first), _iso_day(last)]
    axis = chart_axis(days, Period(None, None, "all"), now=(days[1] + 0.5) * 86400)
    assert axis.bucket == bucket and len(axis.labels) == bars
    assert axis.labels[0] <= first and axis.labels[-1] <= last


def test_logs_list_shows_utc_times(dash: Any) -> None:
    east = {"file": "2026-12-01", "v": 1, "id": "01M8TZ00000000000000000001",
            "timestamp": "2026-12-02T02:00:00+05:00", "model": "gpt-4o", "input_tokens": 1000}
    status, page = dash("/logs", east)
    assert status == 200 and "2026-12-01 21:00:00" in page and "2026-12-02 02:00" not in page


def test_an_integer_beyond_64_bits_is_shown_exactly(dash: Any) -> None:
    # Entries are read with exact integers, which orjson cannot write: the pages and the
    # API fall back to the standard library instead of failing with a 500.
    huge = {"file": "2026-12-01", "v": 1, "id": "01M8TZ00000000000000000002",
            "timestamp": "2026-12-01T10:00:00Z", "model": "gpt-4o",
            "metadata": {"big": 123456789012345678901234567890}}
    status, body = dash("/api/logs/01M8TZ00000000000000000002", huge)
    assert status == 200
    assert json.loads(body)["entry"]["metadata"]["big"] == 123456789012345678901234567890
    status, page = dash("/logs/01M8TZ00000000000000000002", huge)
    assert status == 200 and "123456789012345678901234567890" in page


def test_axis_labels_keep_the_year_when_it_changes_and_show_months_and_years() -> None:
    """Cut to `MM-DD` only within one year: across years a week's `03-18` is ambiguous, and
    a month (`2026-03`) or a year cut the same way read as `03` or nothing."""
    import re

    from promptlab.dashboard.svg import _x_labels

    def texts(days: list[str]) -> list[str]:
        return re.findall(r">([^<]*)</text>", "".join(_x_labels(days, 0, 10, 100)))

    assert texts(["2026-03-01", "2026-03-02"]) == ["03-01", "03-02"]
    assert texts(["2025-12-29", "2026-01-05"]) == ["2025-12-29", "2026-01-05"]
    assert texts(["2025-12", "2026-01"]) == ["2025-12", "2026-01"]
    assert texts(["2024", "2025"]) == ["2024", "2025"]
