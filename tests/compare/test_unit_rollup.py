"""The built-in metrics read from the index's per-unit roll-up (unit_rollup, one prompt
version, no time window) agree with the pass over the calls that a time window still takes —
per call and per unit, with units, item ids, calls with neither, failed calls and missing
values, synced in several steps and after feedback."""

from __future__ import annotations

import random
from typing import Any

import pytest

from promptlab.comparison._query import Reader, entry_sums, rollup_answers
from promptlab.comparison._target import Arm, Scope
from promptlab.index.core import Index

METRICS = ("--metric", "latency_ms", "--metric", "output_tokens", "--metric", "input_tokens",
           "--metric", "cost_usd", "--metric", "error_rate", "--metric", "q")


def _rows(rng: random.Random, n: int, units: bool, start: int = 0) -> list[dict]:
    rows = []
    for i in range(start, start + n):
        version = rng.choice(["v1", "v2"])
        row: dict[str, Any] = {
            "v": 1, "kind": "llm", "model": "m", "prompt_id": "qa", "prompt_version": version,
            "status": "ok", "latency_ms": round(rng.lognormvariate(6, 0.6), 2),
            "output_tokens": rng.randint(0, 1) if i % 3 else rng.randint(50, 90),
            "input_tokens": rng.randint(100, 200), "cost_usd": rng.random() / 1e4,
            "scores": {"q": rng.randint(1, 5)}}
        if units and i % 4:
            key = "unit_id" if i % 5 else "item_id"
            row[key] = f"{version}-u{rng.randint(0, 15)}"  # one version per unit
        if rng.random() < 0.08:
            row.update(status="error", error="timeout")
            del row["output_tokens"]
        if rng.random() < 0.1:
            del row["cost_usd"]
        rows.append(row)
    return rows


@pytest.mark.parametrize("units", [True, False])
def test_rolled_up_built_ins_match_the_pass_over_the_calls(write_lines, cli, log_dir, units,
                                                           same):
    rng = random.Random(9 if units else 10)
    first = _rows(rng, 150, units)
    write_lines(first, day="2026-11-20")
    assert cli("compare", "v1", "v2", "--json").code in (0, 1)  # synced: later rows merge
    write_lines(_rows(rng, 150, units, start=150), day="2026-11-21")
    assert cli("compare", "v1", "v2", "--json").code in (0, 1)
    write_lines([{"v": 1, "kind": "feedback", "target": f"01JRAW20261120{i:012d}",
                  "scores": {"q": 1}} for i in range(0, 150, 7)], day="2026-11-23")
    write_lines(_rows(rng, 100, units, start=300), day="2026-11-22")
    rolled = cli("compare", "v1", "v2", "--json", *METRICS)
    joined = cli("compare", "v1", "v2", "--json", *METRICS, "--since", "2000-01-01")
    assert rolled.code == joined.code, rolled.err + joined.err
    a, b = rolled.json, joined.json
    same(a, b)
    errors = next(m for m in a["metrics"] if m["name"] == "error_rate")
    n = errors["a"]["n"] + errors["b"]["n"]
    assert n < 250 if units else n == 400  # per unit (calls without ids are units), per call
    assert {m["name"] for m in a["metrics"]} == {"latency_ms", "output_tokens", "input_tokens",
                                                  "cost_usd", "error_rate", "q"}


def test_the_roll_up_answers_a_prompt_version_only(write_lines, log_dir):
    write_lines(_rows(random.Random(3), 40, True))
    with Index(log_dir) as index:
        index.sync()
        reader = Reader(index.path)
        try:
            arm = Arm("v1", "prompt_version")
            whole = entry_sums(reader, Scope("qa"), arm, ["latency_ms", "cost_usd"])
            window = entry_sums(reader, Scope("qa", since=0.0), arm, ["latency_ms", "cost_usd"])
        finally:
            reader.close()
    assert whole["rollup"] and not window["rollup"]
    assert not rollup_answers(Scope("qa", experiment="e"), Arm("v1", "variant"))
    assert not rollup_answers(Scope("qa"), Arm("prod", "prompt_label"))
    for key in ("entries", "errors", "unit_mode"):
        assert whole[key] == window[key]
    for name in ("latency_ms", "cost_usd"):
        x, y = whole["builtins"][name], window["builtins"][name]
        assert (x.n, x.shift, x.out_of_range, x.non_numeric) == (
            y.n, y.shift, y.out_of_range, y.non_numeric)
        assert x.total == pytest.approx(y.total, rel=1e-12, abs=1e-15)
        assert x.total_sq == pytest.approx(y.total_sq, rel=1e-12, abs=1e-15)
