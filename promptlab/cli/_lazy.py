"""A click group whose subcommands are imported only when used.

Every command family lives in its own module; `promptlab logs …` must not pay for
importing the experiment runner or scipy. Listing commands (`--help`) imports the family
modules, which themselves import nothing heavy at module level.
"""

from __future__ import annotations

import errno
import importlib

import click

from promptlab.errors import PromptlabError, UsageError


class PromptlabCommandError(click.ClickException):
    """Carries a PromptlabError's message and exit code through click."""

    def __init__(self, error: PromptlabError):
        super().__init__(str(error))
        self.exit_code = error.exit_code

    def show(self, file=None) -> None:  # type: ignore[no-untyped-def]
        click.echo(f"Error: {self.format_message()}", err=True)


class LazyGroup(click.Group):
    """Group with `lazy_subcommands={"name": "module:attr"}` imported on first use.

    PromptlabError raised anywhere below becomes one line on stderr and its exit code.
    """

    def __init__(self, *args, lazy_subcommands: dict[str, str] | None = None, **kwargs):  # type: ignore[no-untyped-def]
        super().__init__(*args, **kwargs)
        self.lazy_subcommands = dict(lazy_subcommands or {})

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy_subcommands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.lazy_subcommands:
            return self._load(cmd_name)
        return super().get_command(ctx, cmd_name)

    def _load(self, cmd_name: str) -> click.Command | None:
        module_name, attr = self.lazy_subcommands[cmd_name].split(":")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name == module_name:  # a family not built into this install
                return None
            raise
        command = getattr(module, attr)
        if not isinstance(command, click.Command):
            raise TypeError(f"{module_name}:{attr} is not a click command")
        return command

    def resolve_command(self, ctx: click.Context, args: list[str]):  # type: ignore[no-untyped-def]
        try:
            return super().resolve_command(ctx, args)
        except click.UsageError as exc:
            name = args[0] if args else ""
            if name and name not in self.list_commands(ctx):
                import difflib

                close = difflib.get_close_matches(name, self.list_commands(ctx), n=3, cutoff=0.6)
                if close:
                    exc.message = (f"{exc.message} Did you mean "
                                   f"{' or '.join(repr(c) for c in close)}?")
            raise

    def invoke(self, ctx: click.Context):  # type: ignore[no-untyped-def]
        try:
            return super().invoke(ctx)
        except PromptlabError as exc:
            raise PromptlabCommandError(exc) from exc
        except OSError as exc:
            # A name longer than the file system allows, from any option or argument.
            if exc.errno != errno.ENAMETOOLONG:
                raise
            name = str(exc.filename or "")
            shown = name if len(name) <= 80 else f"{name[:50]}…{name[-20:]}"
            raise PromptlabCommandError(UsageError(
                f"file name too long: {shown} ({len(name)} characters); use a shorter name"
            )) from exc
