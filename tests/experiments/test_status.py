"""`experiment status` counted by SQLite from the index gives exactly what the reference
(`summarize_status` over every logged cell) gives: same numbers, same key order, on logs
full of odd cells."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from promptlab.experiments import load_experiment
from promptlab.experiments.logged import _from_files, logged_cells
from promptlab.experiments.status import experiment_status, summarize_status

_ULID = "01M8D49P7P0EZS3T3MR0V3E{:03d}"


def entry(n: int, ts: str, **fields: Any) -> dict[str, Any]:
    return {"v": 1, "id": _ULID.format(n), "timestamp": ts,
            "experiment": "ab", "prompt_id": "code-review", **fields}


def t(second: int) -> str:
    return f"2026-11-26T10:00:{second:02d}.000000Z"


def hostile_log(log_dir: Path) -> None:
    """Runs with tied ends, tied timestamps, lines out of time order, missing and empty
    variants, units, run ids and versions, errors, scorer failures, feedback, other kinds
    and another experiment."""
    ok = {"status": "ok"}
    lines = [
        # run r1: ends at 40, first seen at 05
        entry(1, t(5), variant="v1", item_id=1, unit_id="u1", run_id="r1",
              prompt_version="v1", scores={"a": 1, "b": True}, **ok),
        entry(2, t(40), variant="v2", item_id=1, unit_id="", run_id="r1",
              prompt_version="v2", scores={"a": 0}, **ok),           # b failed
        # run r2: also ends at 40 but first seen at 07: r1 stays the last run
        entry(3, t(7), variant="v2", item_id="2", run_id="r2", prompt_version="v2",
              scores={"a": 1, "b": False}, **ok),
        entry(4, t(40), variant="v1", item_id="2", run_id="r2", prompt_version="",
              error="boom"),                                          # an error, no status
        # r1 again, out of time order, timestamps tied across variants and scorers
        entry(5, t(20), variant="v3", item_id="3", run_id="r1", prompt_version="v3",
              scores={"a": 1}, **ok),                                 # b failed
        entry(6, t(20), variant="v1", item_id="3", run_id="r1", prompt_version="v1",
              scores={"b": 1}, **ok),                                 # a failed
        entry(7, t(20), run_id="r1", item_id="4", scores={"a": 1, "b": 1}, **ok),  # no variant
        entry(8, t(11), variant="", item_id="", run_id="r1", status="error"),
        # live traffic: no run id (or an empty one), units shared across variants
        entry(9, t(30), variant="v1", unit_id="user-1", prompt_version="v1", **ok),
        entry(10, t(31), variant="v1", unit_id="user-1", run_id="", **ok),
        entry(11, t(32), variant="v2", unit_id="user-2", prompt_version="v2", **ok),
        entry(12, t(33), variant="v2", **ok),                         # no unit, no item
        # not cells of this experiment
        {**entry(13, t(34), variant="v1"), "kind": "span", "trace_id": "t", "span_id": "s"},
        {**entry(14, t(35), variant="v1", item_id="9", run_id="r9", **ok), "experiment": "x"},
        {**entry(15, t(59), variant="v1", item_id="9", run_id="r9", **ok), "experiment": "x"},
        # feedback replacing entry 3's own score of `a`
        {"v": 1, "id": _ULID.format(16), "timestamp": t(50), "kind": "feedback",
         "target": _ULID.format(3), "scores": {"a": 0}},
    ]
    log_dir.mkdir(parents=True, exist_ok=True)
    text = "".join(json.dumps(line) + "\n" for line in lines[:9]) + "{torn line\n"
    (log_dir / "2026-11-26.jsonl").write_text(text)
    (log_dir / "2026-11-27.jsonl").write_text(
        "".join(json.dumps(line) + "\n" for line in lines[9:]))


SCORERS = ('[[scorers]]\nname = "a"\ntype = "contains"\nvalue = "x"\n\n'
           '[[scorers]]\nname = "b"\ntype = "contains"\nvalue = "y"\n')


@pytest.mark.parametrize("design", ["paired", "split"])
def test_index_counts_match_the_reference(exp_project, toml, rows, design) -> None:
    exp_project.write("ab", toml(scorers=SCORERS, dataset=f'path = "data.jsonl"\ndesign = "{design}"'),
                      rows)
    hostile_log(exp_project.log_dir)
    exp = load_experiment("ab")
    # what status gave before it was counted in SQL: every cell read from the index
    reference = summarize_status(exp, logged_cells(exp_project.log_dir, "ab"))
    status = experiment_status(exp, exp_project.log_dir)
    # same values and the same key order (the --json output is the dict as built)
    assert json.dumps(status) == json.dumps(reference)
    assert status["cells"] == 12 and status["unknown_variants"] == ["?", "v3"]
    last = status["last_run"]
    assert last["run_id"] == "r1"  # tied with r2 on the end, seen first
    # first seen in log order: by timestamp, then by line (v3 and None tie at :20)
    assert list(last["per_variant"].items()) == [("v1", 2), ("", 1), ("v3", 1), (None, 1),
                                                 ("v2", 1)]
    # b first fails on line 5, a on line 6, both at :20
    assert list(last["scorer_errors"].items()) == [("b", 2), ("a", 1)]
    v1, v2 = status["variants"]
    assert (v1["cells"], v1["errors"], v1["runs"], v1["versions"]) == (5, 1, 2, ["v1"])
    # The feedback on entry 3 replaced the value of its own score a: the scorer did not
    # fail there, so only entry 2 (b missing) counts — as in the JSONL files.
    assert (v2["cells"], v2["units"], v2["scorer_errors"]) == (4, 4, 1)
    assert json.dumps(status) == json.dumps(
        summarize_status(exp, _from_files(exp_project.log_dir, "ab")))
    if design == "paired":  # only live traffic counts for the split: user-1 | user-2, None
        assert (v1["observed"], v2["observed"]) == (1 / 3, 2 / 3)
    else:  # every cell counts: u1, 2, 3, user-1 | 1, 2, user-2, None
        assert (v1["observed"], v2["observed"]) == (0.5, 0.5)


def test_nothing_logged(exp_project, toml, rows) -> None:
    exp_project.write("ab", toml(), rows)
    exp = load_experiment("ab")
    empty = experiment_status(exp, exp_project.log_dir)  # no log folder
    assert empty == summarize_status(exp, [])
    exp_project.log_dir.mkdir(parents=True)
    (exp_project.log_dir / "2026-11-26.jsonl").write_text(
        json.dumps(entry(1, t(1), variant="v1", **{"experiment": "other"})) + "\n")
    status = experiment_status(exp, exp_project.log_dir)
    assert json.dumps(status) == json.dumps(empty)
    assert status["last_run"] is None and status["variants"][0]["error_rate"] is None


def test_unusable_index_falls_back_to_the_files(exp_project, toml, rows) -> None:
    exp_project.write("ab", toml(scorers=SCORERS), rows)
    hostile_log(exp_project.log_dir)
    (exp_project.log_dir / "index.db").mkdir()  # a folder where the index should be
    exp = load_experiment("ab")
    status = experiment_status(exp, exp_project.log_dir)
    assert json.dumps(status) == json.dumps(
        summarize_status(exp, _from_files(exp_project.log_dir, "ab")))
    assert status["cells"] == 12


def test_an_index_older_than_own_scores_reads_them_from_the_lines(exp_project, toml,
                                                                   rows) -> None:
    """An index built before migration 010 cannot tell a feedback row that replaced an own
    score from one that added a name: the next sync reads the scored entries' lines."""
    import sqlite3

    from promptlab.index.core import Index

    exp_project.write("ab", toml(scorers=SCORERS), rows)
    hostile_log(exp_project.log_dir)
    # feedback that adds a name the entry never had: not an own score
    with (exp_project.log_dir / "2026-11-27.jsonl").open("a") as fh:
        fh.write(json.dumps({"v": 1, "id": _ULID.format(17), "timestamp": t(51),
                             "kind": "feedback", "target": _ULID.format(2),
                             "scores": {"b": 1}}) + "\n")
    exp = load_experiment("ab")
    expected = experiment_status(exp, exp_project.log_dir)
    assert expected["variants"][1]["scorer_errors"] == 1  # entry 2's b came by feedback
    with Index(exp_project.log_dir) as index:
        index.sync()
        own = index.conn.execute("SELECT entry_id, name, source, own FROM scores "
                                 "WHERE source = 'feedback' ORDER BY entry_id").fetchall()
    assert own == [(_ULID.format(2), "b", "feedback", 0), (_ULID.format(3), "a", "feedback", 1)]
    # make it the index an older promptlab left: no `own` column, nine migrations
    conn = sqlite3.connect(exp_project.log_dir / "index.db", isolation_level=None)
    conn.execute("ALTER TABLE scores DROP COLUMN own")
    conn.execute("DELETE FROM migrations WHERE name = '010_own_scores'")
    conn.execute("PRAGMA user_version = 9")
    conn.close()
    with Index(exp_project.log_dir) as index:  # migrates: the flag is up until a sync
        assert index.conn.execute(
            "SELECT value FROM meta WHERE key = 'own_scores_unread'").fetchone() == (1,)
        assert index.conn.execute(
            "SELECT count(*) FROM scores WHERE source = 'feedback' AND own = 1"
        ).fetchone() == (0,)
    assert json.dumps(experiment_status(exp, exp_project.log_dir)) == json.dumps(expected)
    with Index(exp_project.log_dir) as index:
        assert index.conn.execute("SELECT entry_id, name, source, own FROM scores WHERE "
                                  "source = 'feedback' ORDER BY entry_id").fetchall() == own
        assert index.conn.execute(
            "SELECT 1 FROM meta WHERE key = 'own_scores_unread'").fetchone() is None
