"""What resume and status read from the logs: the index and the JSONL fallback agree, and
torn or foreign lines never break them."""

from __future__ import annotations

import json
from pathlib import Path

from promptlab.experiments.logged import _from_files, _from_index, done_keys, latest_run, logged_cells


def write_log(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    lines = [
        {"v": 1, "id": "01M8D49P7P0EZS3T3MR0V3E6ZB", "timestamp": "2026-11-26T23:50:49.308679Z",
         "experiment": "ab", "variant": "v1", "item_id": 3, "repeat": 0, "status": "ok",
         "run_id": "r1", "prompt_version": "v1", "unit_id": "u3", "scores": {"a": 1}},
        {"v": 1, "id": "01M8D49P7P0EZS3T3MR0V3E6ZC", "timestamp": "2026-11-26T23:50:50.308679Z",
         "experiment": "ab", "variant": "v2", "item_id": "x", "error": "boom", "run_id": "r2",
         "prompt_version": "v2"},
        {"v": 1, "id": "01M8D49P7P0EZS3T3MR0V3E6ZD", "timestamp": "2026-11-26T23:50:51.308679Z",
         "experiment": "other", "variant": "v1", "item_id": "x"},
        {"v": 1, "id": "01M8D49P7P0EZS3T3MR0V3E6ZE", "timestamp": "2026-11-26T23:50:52.308679Z",
         "kind": "feedback", "experiment": "ab", "target": "01M8D49P7P0EZS3T3MR0V3E6ZB",
         "scores": {"good": True, "a": 0}},  # replaces the entry's own `a`, adds `good`
    ]
    text = "\n".join(json.dumps(line) for line in lines[:2]) + "\n{torn line\n"
    text += "\n".join(json.dumps(line) for line in lines[2:]) + "\n"
    (folder / "2026-11-26.jsonl").write_text(text)


def test_index_and_files_agree(tmp_path: Path) -> None:
    write_log(tmp_path / "logs")
    from_files = _from_files(tmp_path / "logs", "ab")
    assert from_files == _from_index(tmp_path / "logs", "ab")
    assert [(c.variant, c.item_id, c.status, c.run_id) for c in from_files] == [
        ("v1", "3", "ok", "r1"), ("v2", "x", "error", "r2")]
    # the entry's own score names, whatever feedback did to their values
    assert [c.scores for c in from_files] == [frozenset({"a"}), frozenset()]
    assert logged_cells(tmp_path / "logs", "ab") == from_files
    assert logged_cells(tmp_path / "missing", "ab") == []


def test_done_keys_only_count_successes_of_the_current_version(tmp_path: Path) -> None:
    write_log(tmp_path / "logs")
    cells = logged_cells(tmp_path / "logs", "ab")
    assert done_keys(cells, {"v1": "v1", "v2": "v2"}) == {("v1", "3", 0)}
    # a label that now points at another version makes its old cells stale
    assert done_keys(cells, {"v1": "v7"}) == set()
    assert latest_run(cells) == "r2"
