"""Per-unit score means of one prompt version read from scores_by_unit (no join) agree
with the joined per-unit pass that a time window still takes."""

from __future__ import annotations

import random


def _rows(day: str) -> list[dict]:
    rng = random.Random(7)
    rows: list[dict] = []
    for i in range(240):
        version = "v1" if i % 2 else "v2"
        row = {"v": 1, "kind": "llm", "model": "m", "prompt_id": "qa",
               "prompt_version": version, "status": "ok", "latency_ms": 100 + i,
               "scores": {"q": round(rng.uniform(0, 5), 3), "ok": rng.random() < 0.6}}
        if i % 5:  # most calls carry a unit id shared by a few calls, some only an item id
            row["unit_id" if i % 7 else "item_id"] = f"u{i % 37}"
        if i % 11 == 0:
            row["status"], row["error"] = "error", "timeout"
        if i % 53 == 0:
            row["scores"]["q"] = 1e200  # out of range: dropped and counted
        if i % 13 == 0:
            del row["scores"]["ok"]
        rows.append(row)
    rows.append({"v": 1, "kind": "span", "name": "s", "prompt_id": "other", "scores": {"q": 9}})
    return rows


def test_unit_means_from_the_score_index_match_the_joined_pass(write_lines, cli):
    rows = _rows("2026-11-20")
    write_lines(rows)
    ids = [f"01JRAW20261120{i:012d}" for i in range(len(rows))]
    # feedback replaces some scores: it counts under the target's unit
    write_lines([{"v": 1, "kind": "feedback", "target": ids[i], "scores": {"q": 4.5}}
                 for i in range(0, 200, 9)], day="2026-11-21")
    fast = cli("compare", "v1", "v2", "--json", "--metric", "q", "--metric", "ok")
    joined = cli("compare", "v1", "v2", "--json", "--metric", "q", "--metric", "ok",
                 "--since", "2000-01-01")
    assert fast.code == joined.code == 0, fast.err + joined.err
    a, b = fast.json, joined.json
    assert a["design"] == b["design"] == "unpaired"
    assert a["metrics"] == b["metrics"] and a["metrics"]
    q = next(m for m in a["metrics"] if m["name"] == "q")
    assert q["a"]["n"] < 120 and q["b"]["n"] < 120  # averaged per unit, not per call
    # five values out of range, one of them replaced by feedback
    assert q["dropped"]["a"]["out_of_range"] + q["dropped"]["b"]["out_of_range"] == 4
    ok = next(m for m in a["metrics"] if m["name"] == "ok")
    assert ok["dropped"]["a"]["failed"] + ok["dropped"]["b"]["failed"] == 2
