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


def assert_same(a: Any, b: Any, where: str = "") -> None:
    """Two `compare --json` objects agree: the same keys and lists, every float to 1e-9
    relative (the same sums added in another order), everything else exactly."""
    if isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for k in a:
            assert_same(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, list):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_same(x, y, f"{where}[{i}]")
    elif isinstance(a, float) and isinstance(b, float):
        assert a == pytest.approx(b, rel=1e-9, abs=1e-12), where
    else:
        assert a == b, where


@pytest.fixture
def same():
    """`assert_same`, for tests comparing two compare results."""
    return assert_same
