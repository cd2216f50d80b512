"""Generate docs/cli.md from the commands' own `--help`.

    python -m promptlab.cli._reference > docs/cli.md

A test checks docs/cli.md against the commands, so the reference cannot go stale.
"""

from __future__ import annotations

from collections.abc import Iterator

import click

WIDTH = 100


def _context(command: click.Command, name: str, parent: click.Context | None) -> click.Context:
    settings = {"max_content_width": WIDTH, **command.context_settings, "terminal_width": WIDTH}
    return click.Context(command, info_name=name, parent=parent, **settings)


def walk(root: click.Command) -> Iterator[tuple[list[str], click.Command, click.Context]]:
    """Every (path, command, context) from `root` down, depth first, hidden ones left out."""

    def visit(command: click.Command, path: list[str], ctx: click.Context
              ) -> Iterator[tuple[list[str], click.Command, click.Context]]:
        yield path, command, ctx
        if isinstance(command, click.Group):
            for name in command.list_commands(ctx):
                sub = command.get_command(ctx, name)
                if sub is not None and not sub.hidden:
                    yield from visit(sub, [*path, name], _context(sub, name, ctx))

    yield from visit(root, ["promptlab"], _context(root, "promptlab", None))


def commands(root: click.Command) -> Iterator[tuple[list[str], click.Command]]:
    """Every (path, command) from `root` down."""
    for path, command, _ctx in walk(root):
        yield path, command


def cli_reference() -> str:
    """The whole CLI reference as Markdown."""
    from promptlab.cli import main

    parts = [
        "# CLI reference\n",
        "Generated from each command's `--help` by `python -m promptlab.cli._reference > docs/cli.md`;",
        "a test fails when this page is stale.\n",
    ]
    for path, command, ctx in walk(main):
        parts.append(f"## `{' '.join(path)}`\n\n```text\n{command.get_help(ctx).rstrip()}\n```\n")
    return "\n".join(parts)


if __name__ == "__main__":
    print(cli_reference(), end="")
