"""Per-unit score means read from the index's score roll-up (score_unit_rollup, one prompt
version, no time window) are the same, value for value, as the GROUP BY over scores_by_unit
they replace and as the joined pass a time window takes; a roll-up that does not hold every
score row of the version (a damaged one, one being rebuilt, a version with calls without
unit or item id) is not used."""

from __future__ import annotations

import random
import sqlite3
from typing import Any

import pytest

from promptlab.comparison import _query
from promptlab.comparison._query import Reader, _unit_score_sums
from promptlab.comparison._target import Arm, Scope
from promptlab.index.core import Index

METRICS = ("--metric", "q", "--metric", "ok", "--metric", "latency_ms")


def _rows(rng: random.Random, n: int, start: int = 0, lone: bool = False
          ) -> list[dict[str, Any]]:
    rows = []
    for i in range(start, start + n):
        version = "v1" if i % 2 else "v2"
        row: dict[str, Any] = {
            "v": 1, "kind": "llm", "model": "m", "prompt_id": "qa", "prompt_version": version,
            "status": "ok", "latency_ms": 100 + i,
            "scores": {"q": round(rng.uniform(0, 5), 3), "ok": rng.random() < 0.6}}
        if i % 5 or not lone:  # `lone`: some calls without unit or item id
            row["unit_id" if i % 7 else "item_id"] = f"u{rng.randint(0, 40)}"
        if i % 11 == 0:
            row["status"], row["error"] = "error", "timeout"
        if i % 53 == 0:
            row["scores"]["q"] = 1e200
        rows.append(row)
    return rows


@pytest.fixture
def used(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Records, per call, whether the roll-up answered."""
    calls: list[bool] = []
    real = _query._rolled_score_sums

    def spy(*args: Any) -> Any:
        got = real(*args)
        calls.append(got is not None)
        return got

    monkeypatch.setattr(_query, "_rolled_score_sums", spy)
    return calls


def test_rolled_up_score_means_match_the_index_pass_and_the_joined_pass(
        write_lines, cli, log_dir, used, same):
    rng = random.Random(4)
    write_lines(_rows(rng, 200), day="2026-11-20")
    assert cli("compare", "v1", "v2", "--json", *METRICS).code in (0, 1)
    write_lines(_rows(rng, 200, start=200), day="2026-11-21")
    write_lines([{"v": 1, "kind": "feedback", "target": f"01JRAW20261120{i:012d}",
                  "scores": {"q": 4.5, "ok": False}} for i in range(0, 200, 9)],
                day="2026-11-22")
    used.clear()
    rolled = cli("compare", "v1", "v2", "--json", *METRICS)
    assert used and all(used)  # every score of both versions from the roll-up
    with pytest.MonkeyPatch.context() as mp:  # the GROUP BY over scores_by_unit instead
        mp.setattr(_query, "_rolled_score_sums", lambda *a: None)
        indexed = cli("compare", "v1", "v2", "--json", *METRICS)
    assert rolled.json == indexed.json  # value for value
    # the joined pass sums each unit's values in another order: the same to rounding
    joined = cli("compare", "v1", "v2", "--json", *METRICS, "--since", "2000-01-01")
    assert rolled.code == joined.code, rolled.err + joined.err
    same(rolled.json["metrics"], joined.json["metrics"])
    assert rolled.json["design"] == "unpaired"
    # the same sums, value for value, as the GROUP BY over scores_by_unit
    with Index(log_dir) as index:
        index.sync()
        reader = Reader(index.path)
        try:
            for version in ("v1", "v2"):
                for name in ("q", "ok"):
                    args = (reader, Scope("qa"), Arm(version, "prompt_version"), name, 1.5)
                    fast = _unit_score_sums(*args)
                    with pytest.MonkeyPatch.context() as mp:
                        mp.setattr(_query, "_rolled_score_sums", lambda *a: None)
                        slow = _unit_score_sums(*args)
                    assert [float(x) for x in fast] == [float(x) for x in slow]
        finally:
            reader.close()


def test_a_roll_up_out_of_step_is_not_used(write_lines, cli, log_dir, used):
    write_lines(_rows(random.Random(8), 120))
    good = cli("compare", "v1", "v2", "--json", *METRICS)
    assert good.code in (0, 1) and all(used)
    conn = sqlite3.connect(log_dir / "index.db", isolation_level=None)
    try:  # a unit's row lost: the count of score rows disagrees
        conn.execute("DELETE FROM score_unit_rollup WHERE (prompt_id, prompt_version, name, "
                     "unit) IN (SELECT prompt_id, prompt_version, name, unit FROM "
                     "score_unit_rollup WHERE prompt_version = 'v1' AND name = 'q' LIMIT 1)")
    finally:
        conn.close()
    used.clear()
    bad = cli("compare", "v1", "v2", "--json", *METRICS)
    assert bad.json["metrics"] == good.json["metrics"]
    assert (used.count(False), used.count(True)) == (1, 3)


def test_a_roll_up_being_rebuilt_is_not_used_and_the_next_sync_rebuilds_it(
        write_lines, log_dir):
    write_lines(_rows(random.Random(8), 120))
    with Index(log_dir) as index:
        index.sync()
        # a bulk load under way (or interrupted): the flag is up until the roll-up is rebuilt
        index.conn.execute("INSERT INTO meta VALUES ('score_unit_rollup_stale', 1)")
        reader = Reader(index.path)
        try:
            assert _query._rolled_score_sums(reader, ["qa", "v1", "q"], 0.0) is None
            index.sync()  # nothing new to read: rebuilds it all the same
            assert _query._rolled_score_sums(reader, ["qa", "v1", "q"], 0.0) is not None
        finally:
            reader.close()


def test_a_version_with_calls_without_unit_ids_takes_the_index(write_lines, cli, used, same):
    write_lines(_rows(random.Random(2), 160, lone=True))
    rolled = cli("compare", "v1", "v2", "--json", *METRICS)
    assert used and not any(used)  # those calls are units of their own: not rolled up
    joined = cli("compare", "v1", "v2", "--json", *METRICS, "--since", "2000-01-01")
    assert rolled.code == joined.code, rolled.err + joined.err
    same(rolled.json["metrics"], joined.json["metrics"])
