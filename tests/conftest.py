"""Shared fixtures: no test touches the real home, log folder or prompts."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest
from hypothesis import settings

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def console_script() -> str:
    """The `promptlab` console script installed beside the interpreter running the tests.

    Never looked up on PATH (a venv need not be activated), and never a reason to skip:
    a test that needs it fails when the product is not installed.
    """
    script = Path(sys.executable).parent / "promptlab"
    assert script.exists(), f"the promptlab console script is not installed beside {sys.executable}"
    return str(script)

# Shared machines are noisy: property tests are judged on their answers, never on time.
settings.register_profile("promptlab", deadline=None)
settings.load_profile("promptlab")


@pytest.fixture(autouse=True)
def _isolate(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("PROMPTLAB_LOG_DIR", str(home / "llm-logs"))
    for name in ("PROMPTLAB_PROMPTS_DIR", "PROMPTLAB_EXPERIMENTS_DIR", "PROMPTLAB_PRICES"):
        monkeypatch.delenv(name, raising=False)
    # A machine's OpenTelemetry settings would make every test's Logger export live.
    import os

    for name in [n for n in os.environ if n.startswith("OTEL_")]:
        monkeypatch.delenv(name, raising=False)
    # Tests that build git repositories need an identity, whatever the machine's config.
    for key, value in {
        "GIT_AUTHOR_NAME": "Test Author", "GIT_AUTHOR_EMAIL": "author@example.com",
        "GIT_COMMITTER_NAME": "Test Author", "GIT_COMMITTER_EMAIL": "author@example.com",
        "GIT_CONFIG_NOSYSTEM": "1",
    }.items():
        monkeypatch.setenv(key, value)
    monkeypatch.chdir(home)


@pytest.fixture
def log_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """An empty log folder, also set as PROMPTLAB_LOG_DIR."""
    path = tmp_path / "llm-logs"
    monkeypatch.setenv("PROMPTLAB_LOG_DIR", str(path))
    return path


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A temporary project holding a copy of the shipped prompts/; the working directory."""
    root = tmp_path / "project"
    root.mkdir()
    shutil.copytree(REPO / "prompts", root / "prompts", symlinks=True)
    monkeypatch.chdir(root)
    return root
