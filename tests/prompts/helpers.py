"""Helpers shared by the prompts tests."""

from __future__ import annotations


def one_line_error(result, *needles: str) -> str:  # type: ignore[no-untyped-def]
    """The one `Error: …` line of a CLI result that exited 2, holding every needle."""
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]
