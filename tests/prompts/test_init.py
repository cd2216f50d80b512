"""`promptlab init`: a working project, and nothing overwritten."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from promptlab.cli import main


def run(*args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(main, list(args))


def test_init_creates_a_project_that_renders_and_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PROMPTLAB_LOG_DIR")
    result = run("init", "demo")
    assert result.exit_code == 0, result.output
    for rel in ("promptlab.toml", "prompts/sentiment/v1.txt", "prompts/sentiment/current",
                "experiments/sentiment.toml", "experiments/data/sentiment.jsonl",
                "experiments/standin_sentiment.py"):
        assert f"created  demo/{rel}" in result.output
    assert os.readlink(tmp_path / "demo/prompts/sentiment/current") == "v1.txt"
    assert "Next: cd demo && promptlab render sentiment" in result.output

    monkeypatch.chdir(tmp_path / "demo")
    rendered = run("render", "sentiment", "--var", "review=Great kettle", "--json")
    assert json.loads(rendered.stdout)["messages"][-1]["content"].endswith("Great kettle")
    ran = run("experiment", "run", "sentiment")
    assert ran.exit_code == 0, ran.output
    assert "36 cells" in ran.output
    # the project's own log folder, from promptlab.toml
    assert list((tmp_path / "demo/.promptlab/logs").glob("*.jsonl"))


def test_init_then_a_second_version_gives_a_verdict(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert run("init").exit_code == 0
    v2 = Path(run("new", "sentiment").stdout.strip())
    v2.write_text(v2.read_text().replace("positive or negative?", "positive, negative or neutral?"))
    spec = tmp_path / "experiments/sentiment.toml"
    spec.write_text(spec.read_text().replace("# v2 = 50", "v2 = 50"))
    assert run("experiment", "run", "sentiment").exit_code == 0
    result = run("compare", "v1", "v2", "--experiment", "sentiment", "--json")
    data = json.loads(result.stdout)
    correct = next(m for m in data["metrics"] if m["name"] == "correct")
    assert (correct["a"]["mean"], correct["b"]["mean"]) == (pytest.approx(24 / 36), 1.0)
    assert correct["verdict"] == "v2 better"


def test_init_never_overwrites(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "prompts/sentiment").mkdir(parents=True)
    (tmp_path / "prompts/sentiment/v1.txt").write_text("mine")
    (tmp_path / "pyproject.toml").write_text('[tool.promptlab]\nlog_dir = "logs"\n')
    result = run("init")
    assert result.exit_code == 0
    assert "skipped  prompts/sentiment/v1.txt (already exists)" in result.output
    assert "skipped  promptlab.toml (pyproject.toml already has [tool.promptlab])" in result.output
    assert (tmp_path / "prompts/sentiment/v1.txt").read_text() == "mine"
    assert not (tmp_path / "promptlab.toml").exists()
    again = run("init")
    assert "created" not in again.output
    assert "skipped  experiments/sentiment.toml (already exists)" in again.output


def test_init_into_a_file_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "afile").write_text("x")
    result = run("init", "afile")
    assert result.exit_code == 2
    assert "Error" in result.stderr and "afile" in result.stderr
