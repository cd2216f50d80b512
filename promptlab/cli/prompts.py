"""Prompt commands: `prompts`, `render`, `new`, `promote`."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from promptlab.cli._common import (
    Output,
    dumps_json,
    get_settings,
    output_options,
    prompts_dir_option,
)
from promptlab.errors import UsageError


def get_registry():  # type: ignore[no-untyped-def]
    """The project's registry, stamping git provenance like `promptlab.Registry`."""
    from promptlab.history import Registry
    from promptlab.template import RenderLimits

    settings = get_settings()
    return Registry(settings.prompts_dir, limits=RenderLimits.from_settings(settings))


def parse_vars(var_items: tuple[str, ...], vars_file: str | None) -> dict[str, Any]:
    """`--vars FILE.json|-` first, then each `--var k=v` / `--var k=@file` on top."""
    values: dict[str, Any] = {}
    if vars_file is not None:
        values.update(_read_vars_file(vars_file))
    for item in var_items:
        name, sep, value = item.partition("=")
        name = name.strip()
        if not sep or not name:
            raise UsageError(f"--var {item!r}: expected NAME=VALUE (or NAME=@FILE to read a file)")
        if value.startswith("@") and len(value) > 1:
            path = Path(value[1:])
            try:
                value = _read_text_capped(path, f"--var {name}: {path}")
            except FileNotFoundError as exc:
                raise UsageError(f"--var {name}: file {path} not found") from exc
            except (OSError, UnicodeDecodeError) as exc:
                raise UsageError(f"--var {name}: cannot read {path} as UTF-8 text: {exc}") from exc
        values[name] = value
    return values


# A variable file is read whole into memory: /dev/zero or a multi-GB log must not take it.
MAX_VAR_FILE_BYTES = 64 * 1024 * 1024


def _read_text_capped(path: Path | None, what: str) -> str:
    """UTF-8 text of `path` (None: standard input), at most MAX_VAR_FILE_BYTES."""
    if path is None:
        data = sys.stdin.buffer.read(MAX_VAR_FILE_BYTES + 1)
    else:
        with path.open("rb") as stream:
            data = stream.read(MAX_VAR_FILE_BYTES + 1)
    if len(data) > MAX_VAR_FILE_BYTES:
        raise UsageError(f"{what} is larger than {MAX_VAR_FILE_BYTES // 2**20} MiB, the most "
                         "a variable may read; pass a smaller file")
    return data.decode("utf-8").replace("\r\n", "\n").replace("\r", "\n")  # as read_text


def _read_vars_file(vars_file: str) -> dict[str, Any]:
    where = "standard input" if vars_file == "-" else vars_file
    try:
        text = _read_text_capped(None if vars_file == "-" else Path(vars_file), f"--vars: {where}")
    except FileNotFoundError as exc:
        raise UsageError(f"--vars: file {where} not found") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"--vars: cannot read {where}: {exc}") from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"--vars: {where} is not valid JSON (line {exc.lineno}, column "
                         f"{exc.colno}: {exc.msg})") from exc
    except RecursionError as exc:
        raise UsageError(f"--vars: {where} nests JSON too deeply to read; "
                         "variables are a flat JSON object of values") from exc
    if not isinstance(data, dict):
        raise UsageError(f"--vars: {where} must hold a JSON object of variables, "
                         f"got {type(data).__name__}")
    return data


def coerce_cli_vars(template: Any, values: dict[str, Any], from_cli: set[str]) -> dict[str, Any]:
    """Convert `--var` strings to the types declared in input.schema."""
    from promptlab.template import coerce_value

    schema = template.front.schema or {}
    out = dict(values)
    for name in from_cli:
        field = schema.get(name)
        if field is not None and isinstance(out.get(name), str):
            try:
                out[name] = coerce_value(field.type, out[name])
            except UsageError:
                raise
            except Exception as exc:
                raise UsageError(f"--var {name}: {exc}") from exc
    return out


def _version_summary(versions: list[str]) -> str:
    return ", ".join(versions)


@click.command(name="prompts")
@prompts_dir_option
@output_options
def prompts_list(out: Output) -> None:
    """List every prompt: versions, labels and the version each points at, description.

    \b
    Example:
      promptlab prompts
      promptlab prompts --json
    """
    from promptlab.errors import PromptlabError

    registry = get_registry()
    rows, data = [], []
    for prompt_id in registry.ids():
        versions = [v.name for v in registry.versions(prompt_id)]
        labels = registry.labels(prompt_id)
        description = None
        try:
            description = registry.get(prompt_id).description
        except PromptlabError as exc:
            description = f"(error: {exc})"
        rows.append({
            "id": prompt_id,
            "versions": _version_summary(versions),
            "labels": ", ".join(f"{lab.name} -> {lab.version or 'DANGLING'}" for lab in labels),
            "description": description or "",
        })
        data.append({
            "id": prompt_id,
            "versions": versions,
            "labels": {lab.name: lab.version for lab in labels},
            "description": description,
        })
    out.table(rows, ["id", "versions", "labels", "description"], json_rows=data,
              empty=f"No prompts in {registry.path}; create one with 'promptlab new ID'.")


@click.command(name="render")
@click.argument("ref")
@click.option("version", "--version", "-v", metavar="vN", help="Render this version.")
@click.option("label", "--label", "-l", metavar="LABEL", help="Render the version this label points at.")
@click.option("var_items", "--var", multiple=True, metavar="NAME=VALUE",
              help="A variable; NAME=@FILE reads the value from a file. Repeatable.")
@click.option("vars_file", "--vars", metavar="FILE.json|-", help="Variables as a JSON object.")
@click.option("as_json", "--json", is_flag=True, help="Print messages, model, config and stamp as JSON.")
@prompts_dir_option
def prompts_render(ref: str, version: str | None, label: str | None, var_items: tuple[str, ...],
                   vars_file: str | None, as_json: bool) -> None:
    """Render a prompt version with variables.

    REF is an id (uses the `current` label), ID@LABEL or ID/vN. The stamp (id, version,
    label, sha256) goes to stderr, the messages to stdout.

    \b
    Examples:
      promptlab render code-review --var code=@app.py --var language=Python
      promptlab render code-review@production --vars item.json --json
      promptlab render summarization/v1 --var text="..."
    """
    for option, value, example in (("--version", version, "v1"), ("--label", label, "current")):
        if value is not None and not value.strip():
            raise UsageError(f"{option} is empty; give one (e.g. {option} {example}), or leave "
                             "the option out")
    prompt = get_registry().get(ref, version=version, label=label)
    values = parse_vars(var_items, vars_file)
    values = coerce_cli_vars(prompt.template, values, {i.partition("=")[0].strip() for i in var_items})
    rendered = prompt.render(values)
    schema = prompt.template.front.schema
    if schema is not None:
        from promptlab.cli._common import warn

        unused = sorted(set(values) - set(schema) - prompt.template.variables())
        if unused:
            warn(f"variable(s) not used by {prompt.id}/{prompt.version.name}: {', '.join(unused)}")
    if as_json:
        click.echo(dumps_json(rendered.to_dict(), indent=True))
        return
    stamp = rendered.stamp
    label_part = f" @{stamp['prompt_label']}" if stamp.get("prompt_label") else ""
    dirty = " (uncommitted changes)" if stamp.get("prompt_dirty") else ""
    click.echo(f"# {stamp['prompt_id']} {stamp['prompt_version']}{label_part} "
               f"sha256:{stamp['prompt_sha'][:12]}{dirty}", err=True)
    if len(rendered.messages) == 1:
        click.echo(rendered.messages[0]["content"])
        return
    blocks = [f"{m['role']}:\n{m['content']}" for m in rendered.messages]
    click.echo("\n\n".join(blocks))


@click.command(name="new")
@click.argument("prompt_id", metavar="ID")
@click.option("from_version", "--from", metavar="vN", help="Copy this version (default: current).")
@click.option("--description", "-d", help="Description for a brand-new prompt.")
@click.option("do_commit", "--commit", is_flag=True,
              help="Commit the new file(s), and only them, with git.")
@click.option("message", "--message", "-m", metavar="MSG",
              help="Commit message for --commit (default: 'new ID: add vN').")
@prompts_dir_option
def prompts_new(prompt_id: str, from_version: str | None, description: str | None,
                do_commit: bool, message: str | None) -> None:
    """Create the next version of a prompt and print its path.

    An existing prompt gets a copy of `current` (or of --from vN) as vN+1; a new id gets
    a starter v1 and a `current` label. Existing files are never overwritten. --commit
    stages and commits only those files; it refuses when other changes are staged.

    \b
    Examples:
      promptlab new code-review            # v3.txt, a copy of current
      promptlab new code-review --from v1
      promptlab new support/triage -d "Route tickets" --commit
    """
    if message is not None and not do_commit:
        raise UsageError("-m/--message is the commit message: add --commit")
    if not do_commit:
        path = get_registry().new(prompt_id, from_version=from_version, description=description)
        click.echo(str(path))
        return
    from promptlab.history import new_version_committed

    path, done = new_version_committed(get_registry(), prompt_id, from_version=from_version,
                                       description=description, message=message)
    click.echo(str(path))
    report_commit(done)


@click.command(name="promote")
@click.argument("prompt_id", metavar="ID")
@click.argument("version", metavar="vN")
@click.option("label", "--label", "-l", default="current", show_default=True,
              help="The label to move.")
@click.option("do_commit", "--commit", is_flag=True,
              help="Commit the label change, and only it, with git.")
@click.option("message", "--message", "-m", metavar="MSG",
              help="Commit message for --commit (default: 'promote ID: LABEL vA -> vB').")
@prompts_dir_option
def prompts_promote(prompt_id: str, version: str, label: str, do_commit: bool,
                    message: str | None) -> None:
    """Point a label (default `current`) at a version, atomically.

    --commit stages and commits only the label file; it refuses when other changes are
    staged.

    \b
    Examples:
      promptlab promote code-review v2
      promptlab promote code-review v1 --label production
      promptlab promote code-review v2 --commit -m "v2 finds more bugs (exp 12)"
    """
    if message is not None and not do_commit:
        raise UsageError("-m/--message is the commit message: add --commit")
    if not do_commit:
        previous, new = get_registry().promote(prompt_id, version, label)
        click.echo(f"{prompt_id}: {label} {previous or '(none)'} -> {new}")
        return
    from promptlab.history import promote_committed

    previous, new, done = promote_committed(get_registry(), prompt_id, version, label, message)
    click.echo(f"{prompt_id}: {label} {previous or '(none)'} -> {new}")
    report_commit(done)


def report_commit(done: Any) -> None:
    """One stderr line after `new`/`promote --commit`: the commit, or why there is none."""
    if done.commit is None:
        click.echo(f"Nothing to commit: {', '.join(p.name for p in done.paths)} already "
                   "committed as is.", err=True)
    else:
        click.echo(f"Committed {done.commit}: {done.message}", err=True)
