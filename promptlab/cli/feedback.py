"""`promptlab feedback ID name=value …`: score a logged call after the fact."""

from __future__ import annotations

import math
import re

import click

from promptlab.cli._common import get_settings, project_options
from promptlab.errors import UsageError

_NAME = re.compile(r"[A-Za-z0-9_.-]{1,100}")
_TRUE = {"true", "yes", "y", "pass", "ok"}
_FALSE = {"false", "no", "n", "fail"}


@click.command(name="feedback")
@click.argument("entry_ref", metavar="ID")
@click.argument("score_items", nargs=-1, required=True, metavar="NAME=VALUE...")
@click.option("comment", "--comment", "-c", metavar="TEXT", help="A comment to keep with the scores.")
@click.option("tags", "--tag", "-t", multiple=True, metavar="TAG", help="A tag. Repeatable.")
@click.option("as_json", "--json", is_flag=True, help="Print the feedback entry as JSON.")
@project_options
def feedback_cmd(entry_ref: str, score_items: tuple[str, ...], comment: str | None,
                 tags: tuple[str, ...], as_json: bool) -> None:
    """Score a logged call: append a `feedback` entry whose target is ID.

    ID is an entry id, a unique prefix of one (at least 4 characters, like a git short
    hash), or `last` for the newest call. A VALUE is a number or true/false (also yes/no,
    pass/fail). The scores count in `logs show`, `compare` and the dashboard like the
    scores an experiment logs.

    \b
    Examples:
      promptlab log --print-id -- llm -m gpt-4o-mini "Hi"     # prints the id
      promptlab feedback 01KE80AX2V helpful=true rating=4
      promptlab feedback last correct=no --comment "wrong year"
    """
    from promptlab.logs.logger import Logger

    scores = dict(_parse_score(item) for item in score_items)
    target = _resolve(entry_ref)
    logger = Logger(get_settings().log_dir, strict=True)
    entry = logger.feedback(target, comment=comment, tags=list(tags) or None, **scores)
    if as_json:
        from promptlab.cli._common import dumps_json

        click.echo(dumps_json(entry))
        return
    shown = " ".join(f"{k}={str(v).lower() if isinstance(v, bool) else v}"
                     for k, v in scores.items())
    click.echo(f"Logged feedback {entry['id']} for {target}: {shown}")


def _parse_score(item: str) -> tuple[str, float | int | bool]:
    name, sep, raw = item.partition("=")
    name, raw = name.strip(), raw.strip()
    if not sep or not raw:
        raise UsageError(f"score {item!r} must be NAME=VALUE, e.g. helpful=true or rating=4")
    if not _NAME.fullmatch(name):
        raise UsageError(f"score name {name!r} may use letters, digits, '_', '.' and '-' "
                         "(at most 100)")
    low = raw.lower()
    if low in _TRUE:
        return name, True
    if low in _FALSE:
        return name, False
    try:
        value: float | int = int(raw)
    except ValueError:
        try:
            value = float(raw)
        except ValueError:
            raise UsageError(f"score {name!r} must be a number or true/false, "
                             f"got {raw!r}") from None
    if isinstance(value, float) and not math.isfinite(value):
        raise UsageError(f"score {name!r} must be a finite number, got {raw!r}")
    if abs(value) > 1e15:
        raise UsageError(f"score {name!r} is out of range ({raw}); scores are at most 1e15")
    return name, value


def _resolve(ref: str) -> str:
    """The full id of the entry `ref` names, found in the project's log index."""
    from promptlab.cli.logs import open_index
    from promptlab.index.query import get_entry

    index = open_index()
    if index is None:
        raise click.exceptions.Exit(2)
    with index:
        entry = get_entry(index, ref).entry
    if entry.get("kind") == "feedback":
        raise UsageError(f"{entry['id']} is a feedback entry; give the id of the call it "
                         "scores")
    return str(entry["id"])
