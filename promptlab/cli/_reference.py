"""Generate docs/cli.md from the commands' own `--help`.

    python -m promptlab.cli._reference > docs/cli.md

A test compares docs/cli.md with this output, so the reference cannot go stale.
"""

from __future__ import annotations

from collections.abc import Iterator

import click


def _walk(command: click.Command, path: list[str],
          parent: click.Context | None) -> Iterator[tuple[list[str], str]]:
    settings = {"max_content_width": 100, **command.context_settings, "terminal_width": 100}
    sub_ctx = click.Context(command, info_name=path[-1], parent=parent, **settings)
    yield path, command.get_help(sub_ctx)
    if isinstance(command, click.Group):
        for name in command.list_commands(sub_ctx):
            sub = command.get_command(sub_ctx, name)
            if sub is not None and not sub.hidden:
                yield from _walk(sub, [*path, name], sub_ctx)


def cli_reference() -> str:
    """The whole CLI reference as Markdown."""
    from promptlab.cli import main

    parts = [
        "# CLI reference\n",
        "Generated from each command's `--help` by `python -m promptlab.cli._reference > docs/cli.md`;",
        "a test fails when this page is stale.\n",
    ]
    for path, help_text in _walk(main, ["promptlab"], None):
        title = " ".join(path)
        parts.append(f"## `{title}`\n\n```text\n{help_text.rstrip()}\n```\n")
    return "\n".join(parts)


if __name__ == "__main__":
    print(cli_reference(), end="")
