"""The commands as a user types them: logs embed, logs search --semantic/--hybrid, logs
similar; one run through the installed console script."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from promptlab.cli import main

from .conftest import SUPPORT, write


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def test_embed_then_semantic_and_hybrid_search(log_dir: Path) -> None:
    write(log_dir, SUPPORT)
    code, out, err = run("logs", "embed")
    assert code == 0, err
    assert out.startswith("Embedded 5 calls in ") and "all-MiniLM-L6-v2" in out
    code, out, _ = run("logs", "embed")
    assert "Nothing new to embed (5 calls embedded)" in out

    code, out, err = run("logs", "search", "--semantic", "customer wants their money back",
                         "-n", "2")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["similarity", "time", "(UTC)"]
    assert "Refunds go back to your card" in lines[2]

    code, out, _ = run("logs", "search", "--semantic", "money back", "--json", "-n", "1",
                       "--prompt", "support@v2")
    data = json.loads(out)
    assert data[0]["entry"]["user_message"] == "How do I reset my password?"
    assert 0 < data[0]["distance"] < 2 and data[0]["score"] == pytest.approx(
        1 - data[0]["distance"], abs=1e-5)

    code, out, _ = run("logs", "search", "--hybrid", "binary search", "--json", "-n", "3")
    data = json.loads(out)
    assert data[0]["entry"]["user_message"] == "Explain binary search in Python"
    assert data[0]["bm25"] is not None and data[0]["distance"] is not None
    assert data[1]["bm25"] is None  # found by meaning only

    # a limit beyond any index: every match, no overflow
    for mode in ("--semantic", "--hybrid"):
        code, out, err = run("logs", "search", mode, "refund", "--json",
                             "-n", "99999999999999999999")
        assert code == 0, err
        assert len(json.loads(out)) == 5


def test_similar(log_dir: Path) -> None:
    write(log_dir, [*SUPPORT, {"user_message": "Reimburse me please",
                               "assistant_response": "Refund issued."}])
    run("logs", "embed")
    code, out, err = run("logs", "similar", "last", "-n", "1", "--json")
    assert code == 0, err
    assert json.loads(out)[0]["entry"]["user_message"] == "I'd like a refund for my order"
    code, out, err = run("logs", "similar", "last", "-n", "99999999999999999999", "--json")
    assert code == 0, err
    assert len(json.loads(out)) == 5  # every other embedded call


def test_a_log_folder_that_is_a_file_is_named(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "notes.txt").write_text("not a folder")
    monkeypatch.setenv("PROMPTLAB_LOG_DIR", str(tmp_path / "notes.txt"))
    for args in (["logs", "embed"], ["logs", "similar", "last"],
                 ["logs", "search", "--semantic", "refund"]):
        code, _, err = run(*args)
        assert code == 2 and "notes.txt is a file, not a folder" in err, (args, err)


def test_backlog_warning_and_errors(log_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(log_dir, SUPPORT)
    monkeypatch.setattr("promptlab.semantic.search.AUTO_EMBED", 2)
    code, _, err = run("logs", "search", "--semantic", "refund")
    assert code == 2 and "nothing in" in err and "promptlab logs embed" in err
    assert "Traceback" not in err
    run("logs", "embed", "-n", "1")
    code, _, err = run("logs", "search", "--semantic", "refund")
    assert code == 0
    assert "4 LLM calls are not embedded yet and were left out; run `promptlab logs embed`" in err
    code, _, err = run("logs", "embed", "--model", "python:no_such_module:embed")
    assert code == 2 and "no_such_module" in err
    code, _, err = run("logs", "embed", "--model", "/nowhere/model.onnx")
    assert code == 2 and "is not a file or folder" in err


def test_config_chooses_the_embedder_and_mixing_is_refused(log_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "embedder.py").write_text(
        "from promptlab.semantic import LocalEmbedder\n"
        "_model = LocalEmbedder()\n"
        "def embed(texts):\n"
        "    return _model.embed(texts)\n")
    write(log_dir, SUPPORT)
    run("logs", "embed")
    (tmp_path / "promptlab.toml").write_text(
        '[embeddings]\ntype = "python"\nfunction = "embedder.py:embed"\n')
    code, _, err = run("logs", "search", "--semantic", "refund")
    assert code == 2
    assert "python:embedder.py:embed" in err and "logs embed --rebuild" in err
    code, out, err = run("logs", "embed", "--rebuild")
    assert code == 0, err
    assert "Embedded 5 calls" in out and "python:embedder.py:embed" in out
    (tmp_path / "promptlab.toml").write_text('[embeddings]\ntype = "bert"\n')
    code, _, err = run("logs", "embed")
    assert code == 2 and "type 'bert'" in err


def test_console_script_end_to_end(log_dir: Path, console_script: str) -> None:
    write(log_dir, SUPPORT)
    subprocess.run([console_script, "logs", "embed"], check=True, capture_output=True)
    done = subprocess.run([console_script, "logs", "search", "--semantic", "a poem", "-n", "1",
                           "--nl"], check=True, capture_output=True, text=True)
    assert json.loads(done.stdout)["entry"]["prompt_id"] == "poet"

    # started with stdout (or stdin and stdout) closed, as `>&-` does: no traceback
    # (sys.stdout was None: promptlab._entry puts /dev/null there)
    def closed(*fds: int) -> Any:
        return lambda: [os.close(fd) for fd in fds]

    for fds in ((1,), (0, 1)):
        for args in (["logs", "search", "--semantic", "a poem"], ["logs", "search", "poem"],
                     ["logs", "similar", "last"], ["logs", "embed"]):
            done = subprocess.run([console_script, *args], stderr=subprocess.PIPE,
                                  preexec_fn=closed(*fds), text=True)
            assert done.returncode == 0 and "Traceback" not in done.stderr, (fds, args,
                                                                              done.stderr)


def test_console_script_search_through_the_start_up_helper(log_dir: Path,
                                                           console_script: str,
                                                           model) -> None:
    """The console script forks the helper that does the search's vector work before it
    imports the command line (promptlab._entry, promptlab.semantic.worker): its answer
    must be the search's, for a new query, a cached one and with a filter; and when the
    command is something else, the helper is let go and the command still answers."""
    from promptlab.semantic import semantic_search

    write(log_dir, SUPPORT)
    subprocess.run([console_script, "logs", "embed"], check=True, capture_output=True)
    query = "customer wants a reimbursement"
    # a new query, then the same one (its vector cached), then with a filter
    for filters in ({}, {}, {"prompt": "support"}):
        options = [f"--{k}={v}" for k, v in filters.items()]
        done = subprocess.run([console_script, "logs", "search", "--semantic", query, "-n",
                               "3", "--json", *options], check=True, capture_output=True,
                              text=True, timeout=120)
        got = [(h["entry"]["id"], h["distance"]) for h in json.loads(done.stdout)]
        want = [(h.entry["id"], h.distance) for h in semantic_search(
            query, log_dir=log_dir, embedder=model, limit=3, **filters)]
        assert len(got) == 3 and [i for i, _ in got] == [i for i, _ in want]
        assert [d for _, d in got] == pytest.approx([d for _, d in want], abs=1e-5)
        _wait_for_cached(log_dir / "index.db", query)  # kept by the helper, after its answer
    usage = subprocess.run([console_script, "logs", "search", "--semantic"],
                           capture_output=True, text=True, timeout=120)
    assert usage.returncode == 2 and "Traceback" not in usage.stderr


def _wait_for_cached(db: Path, query: str) -> None:
    """Until the search's helper, which may outlive the search by a few milliseconds, has
    kept the query's vector (at most 30 s)."""
    import time

    from promptlab.index.vectors import VectorStore

    deadline = time.monotonic() + 30
    while True:
        with VectorStore(db) as store:
            if store.cached_query(query) is not None:
                return
        assert time.monotonic() < deadline, f"the vector of {query!r} was never cached"
        time.sleep(0.05)


def test_the_search_process_leaves_numpy_and_onnxruntime_to_its_helper(log_dir: Path,
                                                                       console_script: str
                                                                       ) -> None:
    """The point of the helper (promptlab.semantic.worker): the process the user started
    imports neither numpy nor onnxruntime, for a new query or a cached one (Linux, where
    the helper is forked; -X importtime lists the parent's imports, the helper's stderr is
    /dev/null), and still answers."""
    import sys

    if not sys.platform.startswith("linux"):
        pytest.skip("the helper is forked on Linux only")
    write(log_dir, SUPPORT)
    subprocess.run([console_script, "logs", "embed"], check=True, capture_output=True)
    for _ in range(2):  # a new query, then the same one (its vector cached)
        done = subprocess.run([sys.executable, "-X", "importtime", "-m", "promptlab", "logs",
                               "search", "--semantic", "a poem about the autumn", "-n", "1",
                               "--nl"], check=True, capture_output=True, text=True,
                              timeout=120)
        assert json.loads(done.stdout)["entry"]["prompt_id"] == "poet"
        imported = {line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines()
                    if line.startswith("import time:")}
        assert "promptlab.semantic.worker" in imported  # the helper was used
        assert not {m for m in imported if m.split(".")[0] in ("numpy", "onnxruntime")}
        _wait_for_cached(log_dir / "index.db", "a poem about the autumn")


def test_start_up_helper_guess() -> None:
    from promptlab._entry import _semantic_search

    assert _semantic_search(["logs", "search", "--semantic", "refund"])
    assert _semantic_search(["-C", "proj", "logs", "search", "x", "--hybrid", "-n", "3"])
    assert not _semantic_search(["logs", "search", "refund"])
    assert not _semantic_search(["search", "--semantic", "x"])
    assert not _semantic_search(["logs", "search", "--semantic", "x", "--help"])
    assert not _semantic_search(["logs", "similar", "last"])


def test_ctrl_c_while_the_command_line_loads_is_no_traceback(log_dir: Path) -> None:
    """Ctrl-C in the first ~150 ms (while the command line is imported, before click can
    catch it) printed a KeyboardInterrupt traceback of the imports."""
    import sys

    code = "\n".join((
        "import builtins, sys",
        "real = builtins.__import__",
        "def interrupted(name, *args, **kwargs):",
        "    if name == 'promptlab.cli':",
        "        raise KeyboardInterrupt",
        "    return real(name, *args, **kwargs)",
        "builtins.__import__ = interrupted",
        "sys.argv = ['promptlab'] + sys.argv[1:]",
        "from promptlab._entry import main",
        "main()"))
    for args in (["logs", "search", "--semantic", "refund"], ["logs"]):
        done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True,
                              text=True, timeout=60)
        assert done.returncode == 130, done.stderr
        assert done.stderr.strip() == "Aborted!"


def test_only_a_process_that_ends_with_os_exit_keeps_its_embedder(
        log_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`_entry.keep` holds the search's embedder (its teardown is skipped by os._exit) in
    the console script's semantic search, and nothing when the command runs in-process."""
    from promptlab import _entry
    from promptlab.semantic.embedders import Embedder

    write(log_dir, SUPPORT)
    assert run("logs", "embed")[0] == 0
    assert run("logs", "search", "--semantic", "money back")[0] == 0
    assert _entry._kept is None  # in-process (CliRunner): nothing held
    monkeypatch.setattr(_entry, "_kept", [])  # as main() sets it before such a search
    assert run("logs", "search", "--semantic", "money back")[0] == 0
    assert len(_entry._kept) == 1 and isinstance(_entry._kept[0], Embedder)


def test_full_text_options_are_refused_with_semantic(log_dir: Path) -> None:
    write(log_dir, SUPPORT[:1])
    code, _, err = run("logs", "search", "--semantic", "refund", "--fts")
    assert code == 2 and "--fts applies to full-text search, not --semantic" in err
