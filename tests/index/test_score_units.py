"""Score rows carry the randomisation unit of the entry they score (unit id, else item id,
else the entry's own id) — feedback scores too, whichever way they are folded."""

from __future__ import annotations

from pathlib import Path

from promptlab.index.core import Index

from .helpers import append, entry


def _units(index: Index) -> set[tuple]:
    return set(index.conn.execute(
        "SELECT entry_id, name, value, source, unit FROM scores").fetchall())


def test_own_and_feedback_scores_carry_the_entry_unit(log_dir: Path) -> None:
    by_unit = entry(seconds=1, prompt_id="qa", prompt_version="v1", unit_id="user-1",
                    item_id="item-9", scores={"q": 3})
    by_item = entry(seconds=2, prompt_id="qa", prompt_version="v1", item_id="item-2",
                    scores={"q": 4})
    alone = entry(seconds=3, prompt_id="qa", prompt_version="v1", scores={"q": 5})
    same_batch = entry(seconds=4, kind="feedback", target=by_item["id"], scores={"q": 1})
    append(log_dir, by_unit, by_item, alone, same_batch)
    with Index(log_dir) as index:
        index.sync()
        assert _units(index) == {
            (by_unit["id"], "q", 3.0, "entry", "user-1"),
            (by_item["id"], "q", 1.0, "feedback", "item-2"),
            (alone["id"], "q", 5.0, "entry", alone["id"])}
    # feedback in a later file (its target looked up in the index) and feedback that
    # waits for a target not indexed yet
    later = entry("2026-01-06", 1, kind="feedback", target=by_unit["id"], scores={"r": 2})
    early_target = entry("2026-01-08", 1, prompt_id="qa", prompt_version="v2",
                         unit_id="user-7")
    waiting = entry("2026-01-07", 1, kind="feedback", target=early_target["id"],
                    scores={"r": 1})
    append(log_dir, later)
    append(log_dir, waiting)
    with Index(log_dir) as index:
        index.sync()
        append(log_dir, early_target)
        index.sync()
        assert {r for r in _units(index) if r[1] == "r"} == {
            (by_unit["id"], "r", 2.0, "feedback", "user-1"),
            (early_target["id"], "r", 1.0, "feedback", "user-7")}
    # removing the feedback file re-folds the target from its own line, unit kept
    (log_dir / "2026-01-05.jsonl").write_text("")
    with Index(log_dir) as index:
        index.sync()
        assert {r for r in _units(index) if r[1] == "r"} == {
            (early_target["id"], "r", 1.0, "feedback", "user-7")}
        assert index.conn.execute("SELECT count(*) FROM scores WHERE unit IS NULL"
                                  ).fetchone() == (0,)
