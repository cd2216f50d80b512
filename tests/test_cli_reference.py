"""docs/cli.md is generated from the commands' own --help and must not go stale.

Exact help formatting changes between click releases, so the check is on content: every
command has its section, and each section carries the command's help text, arguments and
every option it takes.
"""

from __future__ import annotations

import re
from pathlib import Path

import click

from promptlab.cli import main
from promptlab.cli._reference import cli_reference, commands

DOC = Path(__file__).resolve().parent.parent / "docs" / "cli.md"


def sections() -> dict[str, str]:
    text = DOC.read_text(encoding="utf-8")
    parts = re.split(r"^## `(promptlab[^`]*)`\n", text, flags=re.M)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


def test_every_command_has_an_up_to_date_section() -> None:
    documented = sections()
    stale = "docs/cli.md is stale: run `python -m promptlab.cli._reference > docs/cli.md`"
    listed = []
    for path, command in commands(main):
        title = " ".join(path)
        listed.append(title)
        assert title in documented, f"{stale} ({title} is missing)"
        body = " ".join(documented[title].split())
        first_line = (command.help or "").strip().splitlines()[0] if command.help else ""
        assert " ".join(first_line.split()) in body, f"{stale} ({title}: help text changed)"
        for param in command.params:
            if isinstance(param, click.Option) and not param.hidden:
                for opt in param.opts + param.secondary_opts:
                    assert opt in body, f"{stale} ({title}: option {opt} missing)"
            elif isinstance(param, click.Argument):
                assert (param.metavar or param.name.upper()) in body, f"{stale} ({title})"
    assert sorted(documented) == sorted(listed), f"{stale} (sections for removed commands)"


def test_the_generator_reproduces_every_section() -> None:
    assert set(re.findall(r"^## `(promptlab[^`]*)`", cli_reference(), flags=re.M)) == set(sections())


def test_core_commands_are_documented() -> None:
    documented = sections()
    for command in ("render", "history", "diff", "check", "log", "logs search", "logs show",
                    "logs check", "logs reindex", "trace", "costs", "experiment run",
                    "experiment assign", "experiment report", "compare", "init"):
        assert f"promptlab {command}" in documented, command
