"""`promptlab costs`: stored costs, costs priced now, unknown models, groups, time ranges."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .conftest import Sample, run
from .helpers import append, entry

UNKNOWN_WARNING = ("Warning: no price for mystery-local (1 call); their cost is unknown — add "
                   "them to a prices file (--prices, or `prices = \"…\"` in the project config)\n")


def table(result_stdout: str) -> list[list[str]]:
    lines = result_stdout.splitlines()
    return [[c.strip() for c in line.split("  ") if c.strip()] for line in lines[2:]]


def test_costs_by_day_with_a_total_and_unknown_models_listed_once(sample: Sample) -> None:
    result = run("costs", "--prices", str(sample.prices))
    assert result.stdout.splitlines()[0].split() == [
        "day", "calls", "input", "tokens", "output", "tokens", "cost", "(USD)"]
    assert table(result.stdout) == [
        ["2026-01-05", "3", "3,300", "780", "$0.0075 + unknown"],
        ["2026-01-06", "3", "750", "100", "$0.2520"],
        ["total", "6", "4,050", "880", "$0.2595 + unknown"],
    ]
    assert result.stderr == UNKNOWN_WARNING


def test_costs_by_model(sample: Sample) -> None:
    result = run("costs", "--by", "model", "--prices", str(sample.prices))
    assert table(result.stdout) == [
        ["house-model", "2", "2,050", "510", "$0.2530"],  # $0.25 stored + $0.003 priced now
        ["gpt-4o", "3", "1,700", "290", "$0.0065"],
        ["mystery-local", "1", "300", "80", "unknown"],
        ["total", "6", "4,050", "880", "$0.2595 + unknown"],
    ]


def test_costs_by_tag_counts_a_call_once_in_the_total(sample: Sample) -> None:
    result = run("costs", "--by", "tag", "--prices", str(sample.prices))
    assert table(result.stdout) == [
        ["(untagged)", "3", "1,050", "180", "$0.2520 + unknown"],
        ["prod", "3", "3,000", "700", "$0.0075"],
        ["eval", "1", "2,000", "500", "$0.0030"],
        ["total", "6", "4,050", "880", "$0.2595 + unknown"],
    ]
    assert result.stderr == UNKNOWN_WARNING + (
        "(a call with several tags counts under each; the total counts it once)\n")


@pytest.mark.parametrize(("by", "groups"), [
    (["prompt"], {"(no prompt)": 0.252, "code-review": 0.0075, "summarization": None}),
    (["version"], {"(no prompt)": 0.252, "code-review@v1": 0.0045, "code-review@v2": 0.003,
                   "summarization@v1": None}),
    (["experiment"], {"(none)": 0.2565, "cr-ab": 0.003}),
    (["provider"], {"openai": 0.2595}),
])
def test_costs_by_each_dimension(sample: Sample, by: list[str], groups: dict) -> None:
    args = [x for b in by for x in ("--by", b)]
    data = json.loads(run("costs", *args, "--json", "--prices", str(sample.prices)).stdout)
    got = {g[by[0]]: None if g["cost_usd"] is None else round(g["cost_usd"], 6)
           for g in data["groups"]}
    assert got == groups
    assert data["total"]["calls"] == 6


def test_costs_json(sample: Sample) -> None:
    data = json.loads(run("costs", "--by", "day", "--by", "model", "--json",
                          "--prices", str(sample.prices)).stdout)
    assert data["by"] == ["day", "model"]
    assert data["groups"][0] == {
        "day": "2026-01-05", "model": "gpt-4o", "calls": 1, "errors": 0,
        "input_tokens": 1000, "output_tokens": 200, "cached_tokens": 0, "reasoning_tokens": 0,
        "cost_usd": 0.0045, "unpriced_calls": 0}
    assert data["total"]["unpriced_calls"] == 1
    assert data["unknown_models"] == {"mystery-local": 1}


def test_costs_time_range_cuts_days_exactly(sample: Sample) -> None:
    data = json.loads(run("costs", "--since", "2026-01-05T02:00", "--until", "2026-01-06T00:30",
                          "--json", "--prices", str(sample.prices)).stdout)
    assert [(g["day"], g["calls"]) for g in data["groups"]] == [
        ("2026-01-05", 2), ("2026-01-06", 2)]  # error at 00:10, chat at 00:20
    assert data["total"]["input_tokens"] == 2350
    whole = json.loads(run("costs", "--since", "2026-01-06", "--json",
                           "--prices", str(sample.prices)).stdout)
    assert [(g["day"], g["calls"]) for g in whole["groups"]] == [("2026-01-06", 3)]
    inside = json.loads(run("costs", "--since", "2026-01-05T01:30", "--until",
                            "2026-01-05T02:30", "--json", "--prices", str(sample.prices)).stdout)
    assert [(g["day"], g["calls"]) for g in inside["groups"]] == [("2026-01-05", 1)]


def test_costs_filters(sample: Sample) -> None:
    def calls(*args: str) -> int:
        return json.loads(run("costs", "--json", "--prices", str(sample.prices), *args
                              ).stdout)["total"]["calls"]

    assert calls("--model", "gpt-4o") == 3
    assert calls("--model", "*-model") == 2
    assert calls("--prompt", "code-review") == 3
    assert calls("--prompt", "code-review@v2") == 2
    assert calls("--tag", "prod") == 3
    assert calls("--experiment", "cr-ab") == 1


def test_without_the_user_prices_the_house_model_is_unknown(sample: Sample) -> None:
    result = run("costs", "--by", "model")
    assert ["house-model", "2", "2,050", "510", "$0.2500 + unknown"] in table(result.stdout)
    assert "no price for house-model (1 call), mystery-local (1 call)" in result.stderr


def test_prices_from_the_project_setting(sample: Sample, tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROMPTLAB_PRICES", str(sample.prices))
    assert "unknown" not in run("costs", "--by", "model", "--model", "house-model").stdout


def test_bad_prices_file_and_bad_group(sample: Sample, tmp_path: Path) -> None:
    result = run("costs", "--prices", str(tmp_path / "missing.toml"), ok=False)
    assert result.exit_code == 2
    assert result.stderr.startswith(f"Error: prices file {tmp_path / 'missing.toml'} not found")
    bad = tmp_path / "bad.toml"
    bad.write_text("[models.x\n")
    result = run("costs", "--prices", str(bad), ok=False)
    assert result.exit_code == 2
    assert result.stderr.startswith(f"Error: {bad}")
    result = run("costs", "--by", "colour", ok=False)
    assert result.exit_code == 2
    assert "Invalid value for '--by'" in result.stderr
    result = run("costs", "--since", "soon", ok=False)
    assert result.stderr.startswith("Error: --since 'soon': expected a date")


def test_no_calls(sample: Sample) -> None:
    result = run("costs", "--model", "nothing-like-this")
    assert result.stdout == ""
    assert result.stderr == "No LLM calls in the log for these filters.\n"


def test_roll_up_follows_new_lines(sample: Sample) -> None:
    before = json.loads(run("costs", "--json", "--prices", str(sample.prices)).stdout)
    append(sample.log_dir, entry("2026-01-07", 5, model="house-model", input_tokens=1_000_000,
                                 output_tokens=0))
    after = json.loads(run("costs", "--json", "--prices", str(sample.prices)).stdout)
    assert after["total"]["calls"] == before["total"]["calls"] + 1
    assert round(after["total"]["cost_usd"] - before["total"]["cost_usd"], 6) == 1.0


def test_cached_tokens_beyond_the_input_are_capped_call_by_call(log_dir: Path,
                                                                tmp_path: Path) -> None:
    """Priced at read time, a call's cached tokens count up to its input tokens (Anthropic's
    usage reports cache reads outside the input). The cap is per call, so the total is the
    sum of its groups whatever the grouping — and an index built before the cap is rolled
    up again (migration 012)."""
    prices = tmp_path / "prices.toml"
    prices.write_text('[models."acme-llm"]\ninput = 1000\ncached_input = 100\noutput = 1000\n')
    append(log_dir, entry(model="acme-llm", input_tokens=100, cached_tokens=500,
                          output_tokens=0, tags=["t1"], cost_usd=None),
           entry(seconds=1, model="acme-llm", input_tokens=1000, cached_tokens=0,
                 output_tokens=0, tags=["t2"], cost_usd=None))

    def totals(*by: str) -> tuple[float, list[float]]:
        report = json.loads(run("costs", "--json", "--prices", str(prices),
                                *(f"--by={b}" for b in by)).stdout)
        return report["total"]["cost_usd"], [g["cost_usd"] for g in report["groups"]]

    for by in ("tag", "model", "day"):
        total, groups = totals(by)
        assert total == pytest.approx(1.01) and sum(groups) == pytest.approx(1.01), by
    # An index rolled up before: its sums of cached tokens were not capped.
    import sqlite3

    conn = sqlite3.connect(log_dir / "index.db")
    conn.execute("UPDATE rollup SET unpriced_cached_tokens = 500")
    conn.execute("DELETE FROM migrations WHERE name = '012_capped_cached_rollup'")
    conn.commit()
    conn.close()
    assert totals("model")[0] == pytest.approx(1.01)


def test_costs_refuses_two_tags_rather_than_using_the_last(sample: Sample) -> None:
    result = run("costs", "-t", "prod", "-t", "beta", ok=False)
    assert result.exit_code == 2
    assert result.stderr == ("Error: costs takes one --tag (a call with several tags counts "
                             "under each)\n")
    result = run("logs", *(arg for i in range(65) for arg in ("-t", f"tag{i}")), ok=False)
    assert result.exit_code == 2
    assert result.stderr == "Error: 65 --tag filters: at most 64 (an entry must carry every one)\n"
    assert run("logs", "-t", "prod", "-t", "prod", "--json").stdout == run(
        "logs", "-t", "prod", "--json").stdout
