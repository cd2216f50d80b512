"""docs/cli.md is generated from the commands' own --help and must not go stale."""

from __future__ import annotations

from pathlib import Path

from promptlab.cli._reference import cli_reference

DOC = Path(__file__).resolve().parent.parent / "docs" / "cli.md"


def test_cli_reference_is_current() -> None:
    assert DOC.read_text(encoding="utf-8") == cli_reference(), (
        "docs/cli.md is stale: run `python -m promptlab.cli._reference > docs/cli.md`"
    )


def test_every_command_is_documented() -> None:
    text = DOC.read_text(encoding="utf-8")
    for command in ("render", "history", "diff", "check", "log", "logs search", "logs show",
                    "logs check", "logs reindex", "trace", "costs", "experiment run",
                    "experiment assign", "experiment report", "compare", "init"):
        assert f"## `promptlab {command}`" in text, command
