"""`promptlab init`: scaffold a project."""

from __future__ import annotations

import os

import click


@click.command(name="init")
@click.argument("directory", default=".", type=click.Path(file_okay=False))
def init_project(directory: str) -> None:
    """Create prompts/, experiments/, promptlab.toml and .gitignore in DIRECTORY.

    Adds one example prompt (sentiment v1, with a `current` label) and one example
    experiment that runs offline through a stand-in model. Existing files are never
    overwritten; each one left alone is listed. `.gitignore` keeps the call logs and
    caches out of git: an existing one only gets the lines it lacks.

    \b
    Example:
      promptlab init my-project && cd my-project
      promptlab render sentiment --var review="Great kettle"
      promptlab experiment run sentiment
    """
    from promptlab.scaffold import init_project as scaffold

    result = scaffold(directory)

    def show(path: os.PathLike[str]) -> str:
        return os.path.relpath(path, os.getcwd())

    for path in result.created:
        click.echo(f"created  {show(path)}")
    for path, what in result.updated:
        click.echo(f"updated  {show(path)} ({what})")
    for path, reason in result.skipped:
        click.echo(f"skipped  {show(path)} ({reason})")
    if result.created:
        where = show(result.root)
        cd = "" if where == "." else f"cd {where} && "
        click.echo(f"\nNext: {cd}promptlab render sentiment --var review=\"Great kettle\" "
                   "&& promptlab experiment run sentiment")
