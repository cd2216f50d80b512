"""Scores: one row per (entry, name); feedback folded onto its target, latest wins."""

from __future__ import annotations

from pathlib import Path

from promptlab.index.core import Index

from .helpers import append, entry


def feedback(target: str, day: str = "2026-01-05", seconds: int = 500, **scores: object) -> dict:
    return entry(day, seconds, kind="feedback", target=target, scores=scores,
                 model=None, provider=None, system_prompt=None, user_message=None,
                 assistant_response=None, input_tokens=None, output_tokens=None,
                 latency_ms=None)


def scores(index: Index) -> list[tuple]:
    return index.conn.execute(
        "SELECT entry_id, name, value, is_bool, source, prompt_id, prompt_version, experiment,"
        " variant FROM scores ORDER BY entry_id, name").fetchall()


def test_entry_scores_and_feedback_fold_onto_the_target(log_dir: Path) -> None:
    call = entry(seconds=1, prompt_id="code-review", prompt_version="v2", experiment="ab",
                 variant="v2", scores={"correct": True, "quality": 3})
    fb = feedback(call["id"], correct=False, thumbs_up=True)
    append(log_dir, call, fb)
    with Index(log_dir) as index:
        index.sync()
        assert scores(index) == [
            (call["id"], "correct", 0.0, 1, "feedback", "code-review", "v2", "ab", "v2"),
            (call["id"], "quality", 3.0, 0, "entry", "code-review", "v2", "ab", "v2"),
            (call["id"], "thumbs_up", 1.0, 1, "feedback", "code-review", "v2", "ab", "v2"),
        ]
        # The feedback entry is an entry too, but carries no score rows of its own.
        assert index.conn.execute(
            "SELECT kind, target FROM entries WHERE id = ?", (fb["id"],)).fetchone() == (
            "feedback", call["id"])


def test_latest_feedback_wins_whatever_the_line_order(log_dir: Path) -> None:
    call = entry(seconds=1)
    early = feedback(call["id"], seconds=100, rating=1)
    late = feedback(call["id"], seconds=200, rating=5)
    append(log_dir, call, late, early)  # the later one written first
    with Index(log_dir) as index:
        index.sync()
        assert index.conn.execute("SELECT value, feedback_id FROM scores").fetchall() == [
            (5.0, late["id"])]


def test_feedback_waits_for_a_target_not_indexed_yet(log_dir: Path) -> None:
    call = entry("2026-01-06", 1)
    append(log_dir, feedback(call["id"], "2026-01-05", 1, helpful=True))
    with Index(log_dir) as index:
        index.sync()
        assert index.conn.execute("SELECT count(*) FROM pending_feedback").fetchone() == (1,)
        append(log_dir, call)
        index.sync()
        assert index.conn.execute("SELECT entry_id, name, value FROM scores").fetchall() == [
            (call["id"], "helpful", 1.0)]
        assert index.conn.execute("SELECT count(*) FROM pending_feedback").fetchone() == (0,)


def test_removing_a_feedback_file_restores_the_entry_own_score(log_dir: Path) -> None:
    call = entry("2026-01-05", 1, scores={"correct": True})
    append(log_dir, call)
    append(log_dir, feedback(call["id"], "2026-01-06", 1, correct=False))
    with Index(log_dir) as index:
        index.sync()
        assert index.conn.execute("SELECT value, source FROM scores").fetchall() == [
            (0.0, "feedback")]
        (log_dir / "2026-01-06.jsonl").unlink()
        index.sync()
        assert index.conn.execute("SELECT value, source FROM scores").fetchall() == [
            (1.0, "entry")]


def test_feedback_whose_target_file_is_replaced_follows_the_target(log_dir: Path) -> None:
    call = entry("2026-01-05", 1)
    path = append(log_dir, call)
    append(log_dir, feedback(call["id"], "2026-01-06", 1, stars=4))
    with Index(log_dir) as index:
        index.sync()
        path.unlink()
        index.sync()
        assert index.conn.execute("SELECT count(*) FROM scores").fetchone() == (0,)
        assert index.conn.execute("SELECT target FROM pending_feedback").fetchall() == [
            (call["id"],)]
        append(log_dir, call)  # the entry comes back
        index.sync()
        assert index.conn.execute("SELECT entry_id, value FROM scores").fetchall() == [
            (call["id"], 4.0)]


def test_non_numeric_scores_are_skipped(log_dir: Path) -> None:
    call = entry(seconds=1, scores={"label": "good", "nan": None, "ok": 1, "half": 0.5})
    append(log_dir, call)
    with Index(log_dir) as index:
        index.sync()
        assert index.conn.execute("SELECT name, value, is_bool FROM scores ORDER BY name"
                                  ).fetchall() == [("half", 0.5, 0), ("ok", 1.0, 0)]
