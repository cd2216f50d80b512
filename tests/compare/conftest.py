"""Helpers for the compare tests: write calls through the real logger, run the CLI."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from promptlab.cli import main


@pytest.fixture
def write_calls(log_dir: Path):
    """Log entries through `promptlab.logs.logger.Logger` (as an app or the runner would)."""
    from promptlab.logs.logger import Logger

    logger = Logger(log_dir, prices=False, strict=True)

    def write(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [logger.log(**row) for row in rows]

    return write


@pytest.fixture
def write_lines(log_dir: Path):
    """Append raw JSONL lines (what another tool could write), bypassing the logger."""

    def write(entries: list[dict[str, Any]], day: str = "2026-11-20") -> None:
        log_dir.mkdir(parents=True, exist_ok=True)
        with open(log_dir / f"{day}.jsonl", "a", encoding="utf-8") as fh:
            for i, entry in enumerate(entries):
                entry.setdefault("id", f"01JRAW{day.replace('-', '')}{i:012d}")
                entry.setdefault("timestamp", f"{day}T12:00:00.000000Z")
                fh.write(json.dumps(entry) + "\n")

    return write


class Run:
    """A finished CLI invocation: exit code, stdout, stderr and the parsed JSON."""

    def __init__(self, result: Any):
        self.code = result.exit_code
        self.out = result.stdout
        self.err = result.stderr
        self.exception = result.exception

    @property
    def json(self) -> Any:
        return json.loads(self.out)


@pytest.fixture
def cli():
    def invoke(*args: str) -> Run:
        return Run(CliRunner().invoke(main, list(args)))

    return invoke


def metric(data: dict[str, Any], name: str) -> dict[str, Any]:
    return next(m for m in data["metrics"] if m["name"] == name)
