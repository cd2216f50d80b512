"""QA (#14): index.db and its companions are never followed through a symbolic link
(SQLite would write the log's contents wherever it points) and must be regular files."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from promptlab.cli import main


def _folder(tmp_path: Path) -> Path:
    from promptlab.logs.logger import Logger

    d = tmp_path / "d"
    Logger(d, prices=False).log(model="m", user_message="secret text", assistant_response="out")
    for name in os.listdir(d):
        if name.startswith("index.db"):
            os.unlink(d / name)
    return d


@pytest.mark.parametrize("suffix", ["", "-wal", "-shm", "-journal"])
def test_a_symlinked_index_db_is_refused(tmp_path, suffix):
    d = _folder(tmp_path)
    victim = tmp_path / "victim.db"
    if suffix:  # the companion is planted beside a real, new index
        os.close(os.open(d / "index.db", os.O_WRONLY | os.O_CREAT, 0o600))
    os.symlink(victim, d / f"index.db{suffix}")
    run = CliRunner().invoke(main, ["logs", "--log-dir", str(d)])
    assert run.exit_code == 2, (run.output, run.exception)
    assert run.stderr.strip() == (
        f"Error: the log index {d / ('index.db' + suffix)} is a symbolic link; promptlab does "
        "not follow it: remove it (the index is rebuilt from the JSONL logs) and run the "
        "command again")
    assert not victim.exists()
    # reindex refuses too, and leaves the link alone
    run = CliRunner().invoke(main, ["logs", "reindex", "--log-dir", str(d)])
    assert run.exit_code == 2 and "symbolic link" in run.stderr
    assert os.path.islink(d / f"index.db{suffix}") and not victim.exists()


def test_a_fifo_index_db_is_refused_without_blocking(tmp_path):
    d = _folder(tmp_path)
    os.mkfifo(d / "index.db")
    run = CliRunner().invoke(main, ["logs", "--log-dir", str(d)])
    assert run.exit_code == 2
    assert "index.db is not a regular file" in run.stderr
    assert len(run.stderr.strip().splitlines()) == 1


def test_the_otel_export_state_is_never_followed(tmp_path):
    from promptlab.errors import PromptlabError
    from promptlab.otel.export import STATE_NAME, ExportState

    d = _folder(tmp_path)
    victim = tmp_path / "victim.db"
    os.symlink(victim, d / STATE_NAME)
    with pytest.raises(PromptlabError, match="is a symbolic link; promptlab does not follow"):
        ExportState(d, "http://127.0.0.1:1")
    assert not victim.exists()
    os.unlink(d / STATE_NAME)
    os.symlink(victim, d / (STATE_NAME + ".lock"))
    with pytest.raises(PromptlabError):
        ExportState(d, "http://127.0.0.1:1")
    assert not victim.exists()


def test_the_vectors_side_refuses_a_symlinked_index(tmp_path):
    pytest.importorskip("apsw")
    from promptlab.errors import PromptlabError
    from promptlab.index.vectors import VectorStore

    d = _folder(tmp_path)
    victim = tmp_path / "victim.db"
    os.symlink(victim, d / "index.db")
    with pytest.raises(PromptlabError, match="symbolic link"):
        VectorStore(d / "index.db")
    assert not victim.exists()
