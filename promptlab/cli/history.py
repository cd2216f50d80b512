"""Prompts under git: `history`, `diff`, `check`."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import click

from promptlab.cli._common import (
    Output,
    dumps_json,
    get_settings,
    output_options,
    printable,
    project_options,
    prompts_dir_option,
    warn,
)
from promptlab.cli.prompts import coerce_cli_vars, get_registry, parse_vars
from promptlab.errors import UsageError


def _plain_id(prompt_id: str, command: str) -> str:
    """Refuse `code-review/v2` or `code-review@current` where a prompt id is expected."""
    from promptlab.registry import parse_ref

    pid, version, label = parse_ref(prompt_id)
    if version or label:
        raise UsageError(f"{command} takes a prompt id, not {prompt_id!r}; "
                         f"try 'promptlab {command} {pid}'")
    return pid


@click.command(name="history")
@click.argument("prompt_id", metavar="ID")
@click.option("rev", "--rev", default="HEAD", show_default=True, metavar="REV",
              help="Start from this revision (branch, tag, commit).")
@click.option("limit", "-n", "--limit", type=click.IntRange(min=1), metavar="N",
              help="Show only the newest N commits.")
@prompts_dir_option
@output_options
def prompts_history(prompt_id: str, rev: str, limit: int | None, out: Output) -> None:
    """Show every commit that touched a prompt, in prompt terms.

    One row per commit: short sha, date, author, subject, and what changed ("added v3",
    "edited v2 (!)", "current: v1 -> v2", "removed v1"). "(!)" marks an edit of a version
    that was already committed: its logged calls no longer match its text.

    \b
    Examples:
      promptlab history code-review
      promptlab history code-review --rev origin/main -n 10
      promptlab history code-review --json
    """
    from promptlab.history import prompt_history

    history = prompt_history(get_registry(), _plain_id(prompt_id, "history"), rev=rev)
    rows = history.rows[:limit] if limit else history.rows
    if history.shallow_boundary:
        warn(f"shallow clone: history before {history.shallow_boundary[:7]} was not fetched; "
             "run 'git fetch --unshallow' to see all of it")
    table = [{
        "commit": r.short,
        "date": r.date[:16].replace("T", " "),
        "author": printable(r.author),
        "subject": printable(r.subject if len(r.subject) <= 50 else r.subject[:49] + "…"),
        "changes": printable(", ".join(r.changes)),
    } for r in rows]
    out.table(table, ["commit", "date", "author", "subject", "changes"],
              json_rows=[r.to_dict() for r in rows],
              empty=f"No commit touches {history.folder}/ yet; commit it "
                    f"(git add {history.folder} && git commit) to start its history.")


@click.command(name="diff")
@click.argument("prompt_id", metavar="ID")
@click.argument("a", metavar="A")
@click.argument("b", metavar="[B]", required=False)
@click.option("rev", "--rev", metavar="REV",
              help="Compare version A with its own content at this git revision.")
@click.option("--rendered", is_flag=True,
              help="Diff the rendered messages (with --vars/--var) instead of the sources.")
@click.option("vars_file", "--vars", metavar="FILE.json|-",
              help="Variables for --rendered, as a JSON object.")
@click.option("var_items", "--var", multiple=True, metavar="NAME=VALUE",
              help="A variable for --rendered; NAME=@FILE reads a file. Repeatable.")
@click.option("context", "-U", "--unified", type=click.IntRange(min=0), default=3,
              show_default=True, help="Lines of context around each change.")
@click.option("color", "--color", type=click.Choice(["auto", "always", "never"]),
              default="auto", show_default=True, help="Colour the diff (auto: on a TTY).")
@prompts_dir_option
def prompts_diff(prompt_id: str, a: str, b: str | None, rev: str | None, rendered: bool,
                 vars_file: str | None, var_items: tuple[str, ...], context: int,
                 color: str) -> None:
    """Unified diff of two versions of a prompt (A and B: versions or labels).

    \b
    Examples:
      promptlab diff code-review v1 v2
      promptlab diff code-review production current
      promptlab diff code-review v1 v2 --rendered --vars item.json
      promptlab diff code-review v2 --rev main       # v2 now vs v2 at main
    """
    _diff_id(prompt_id, a, b, rev)
    if not a.strip() or (b is not None and not b.strip()):
        raise UsageError("diff: a version or label is empty; give two, e.g. "
                         f"'promptlab diff {prompt_id} v1 v2'")
    if (vars_file is not None or var_items) and not rendered:
        raise UsageError("--vars/--var only apply with --rendered")
    if rev is not None and b is not None:
        raise UsageError(f"--rev compares one version with its own content at {rev}; give "
                         f"one version (promptlab diff {prompt_id} {a} --rev {rev})")
    if rev is None and b is None:
        raise UsageError(f"diff needs two versions or labels (promptlab diff {prompt_id} v1 v2),"
                         f" or one with --rev REV")
    registry = get_registry()
    prompt_id = _plain_id(prompt_id, "diff")
    values = parse_vars(var_items, vars_file) if rendered else {}
    cli_names = {item.partition("=")[0].strip() for item in var_items}
    old = _side(registry, prompt_id, a)
    if rev is not None:
        new = replace(old, title=f"{prompt_id}/{old.prompt.path.name} (working tree)")
        old = _at_revision(old, prompt_id, rev)
        what = f"{prompt_id} {old.prompt.version.name} at {rev} and now"
    else:
        assert b is not None
        new = _side(registry, prompt_id, b)
        what = f"{prompt_id} {a} and {b}"
    from promptlab.history import unified_diff

    suffix = " (rendered)" if rendered else ""
    lines = unified_diff(old.text(rendered, values, cli_names),
                         new.text(rendered, values, cli_names),
                         old.title + suffix, new.title + suffix, context=context)
    if not lines:
        click.echo(f"No differences: {what} are identical"
                   f"{' once rendered' if rendered else ''}.", err=True)
        return
    colour = color == "always" or (color == "auto" and sys.stdout.isatty())
    for line in lines:
        click.echo(_colour(line) if colour else line, color=colour)


def _diff_id(prompt_id: str, a: str, b: str | None, rev: str | None) -> None:
    """Refuse `diff code-review/v1 v2` (a version or label in the id), suggesting the
    command meant: `promptlab diff code-review v1 v2`."""
    from promptlab.registry import parse_ref

    pid, version, label = parse_ref(prompt_id)
    named = version or label
    if not named:
        return
    if b is None and rev is None:
        meant = f"{pid} {named} {a}"
    else:
        meant = f"{pid} {a}" + (f" {b}" if b is not None else "") + (
            f" --rev {rev}" if rev is not None else "")
    raise UsageError(f"diff takes a prompt id, not {prompt_id!r}; try 'promptlab diff {meant}'")


@dataclass(frozen=True)
class _Side:
    """One side of a diff: its title, and its text read (or parsed) only when needed."""

    prompt: Any
    title: str
    load: Callable[[], Any]  # the parsed Template, for --rendered
    read: Callable[[], str]  # the source text

    def text(self, rendered: bool, values: dict[str, Any], cli_names: set[str]) -> str:
        if not rendered:
            return self.read()
        return _rendered_text(self.load(), values, cli_names, self.prompt.registry.limits)


def _side(registry: Any, prompt_id: str, name: str) -> _Side:
    """A version (`v2`, `v2.txt`) or a label (`current`) of `prompt_id`."""
    from promptlab.history import version_of
    from promptlab.registry import is_version_name

    if is_version_name(name) or version_of(name):
        prompt = registry.get(prompt_id, version=name)
        title = f"{prompt_id}/{prompt.path.name}"
    else:
        prompt = registry.get(prompt_id, label=name)
        title = f"{prompt_id}/{prompt.path.name} ({name})"
    return _Side(prompt, title, lambda: prompt.template,
                 lambda: prompt.path.read_text(encoding="utf-8", errors="replace"))


def _at_revision(side: _Side, prompt_id: str, rev: str) -> _Side:
    """`side`'s version file as it was at git revision `rev`."""
    from promptlab.history import file_at_revision
    from promptlab.template import Template

    at = file_at_revision(side.prompt.path, rev)
    title = f"{prompt_id}/{side.prompt.path.name} @ {rev} ({at.short})"
    return _Side(side.prompt, title, lambda: Template.from_bytes(at.data, title),
                 lambda: at.data.decode("utf-8", "replace"))


def _rendered_text(template: Any, values: dict[str, Any], cli_names: set[str],
                   limits: Any) -> str:
    """Model, config and messages as `promptlab render` shows them."""
    messages = template.render_messages(coerce_cli_vars(template, values, cli_names), limits)
    head = (f"model: {template.front.model or '(none)'}\n"
            f"config: {dumps_json(template.front.config)}\n\n")
    body = "\n\n".join(f"{m['role']}:\n{m['content']}" for m in messages)
    return head + body + "\n"


def _colour(line: str) -> str:
    if line.startswith(("+++", "---")):
        return click.style(line, bold=True)
    if line.startswith("@@"):
        return click.style(line, fg="cyan")
    if line.startswith("+"):
        return click.style(line, fg="green")
    if line.startswith("-"):
        return click.style(line, fg="red")
    return line


@click.command(name="check")
@click.argument("prompt_ids", metavar="[ID]...", nargs=-1)
@click.option("base", "--base", metavar="REV",
              help="Only versions present where HEAD forked from REV are released "
                   "(e.g. origin/main in a pull request). Default: every committed version.")
@click.option("no_logs", "--no-logs", is_flag=True,
              help="Skip comparing logged prompt_sha values with the files.")
@click.option("as_json", "--json", is_flag=True, help="Print the findings as JSON.")
@project_options
def prompts_check(prompt_ids: tuple[str, ...], base: str | None, no_logs: bool,
                  as_json: bool) -> None:
    """Check prompts for CI: exit 1 when any check fails, one line per finding.

    \b
    Checks:
      - a committed version whose text changed later (in a commit or the working tree)
      - front matter and Jinja syntax errors
      - variables used but not declared in input.schema, or declared but unused
      - dangling or escaping labels; two files for one version (v2.txt and v2.j2)
      - a label or version file that is not what it should be (a symlink where a
        version file belongs, a label defined twice)
      - a prompt_sha in the logs that no longer matches its version's file
    Outside a git repository the first check is skipped, with a note. Call logs or
    caches tracked by git are a warning (they hold every prompt and response).

    \b
    Examples:
      promptlab check
      promptlab check code-review --base origin/main
    """
    from promptlab.history import check_prompts

    settings = get_settings()
    registry = get_registry()
    ids = [_plain_id(pid, "check") for pid in prompt_ids]
    report = check_prompts(registry, ids or None, base=base,
                           log_dir=None if no_logs else settings.log_dir,
                           private_dir=settings.log_dir)
    if as_json:
        click.echo(dumps_json({
            "ok": report.ok,
            "prompts": report.prompt_ids,
            "findings": [f.to_dict() for f in report.findings],
            "notes": report.notes,
            "warnings": report.warnings,
            "checked": {"prompts": len(report.prompt_ids), "versions": report.versions,
                        "labels": report.labels, "log_entries": report.log_entries},
        }, indent=True))
    else:
        for note in report.notes:
            click.echo(f"Note: {note}", err=True)
        for warning in report.warnings:
            warn(warning)
        for finding in report.findings:
            click.echo(printable(finding.format()))
        logs = (f", {report.log_entries} log {'entry' if report.log_entries == 1 else 'entries'}"
                if report.log_entries else "")
        scope = (f"{_plural(len(report.prompt_ids), 'prompt')}, "
                 f"{_plural(report.versions, 'version')}, {_plural(report.labels, 'label')}{logs}")
        if report.ok:
            click.echo(f"OK: {scope} checked.", err=True)
        else:
            failing = sorted({f.prompt_id for f in report.findings})
            warn(f"{_plural(len(report.findings), 'problem')} in {', '.join(failing)} "
                 f"({scope} checked)")
    if not report.ok:
        click.get_current_context().exit(1)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"
