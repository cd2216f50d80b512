"""What every command family shares: project settings and one way to print results.

Results go to stdout (a table, `--json`, `--csv`, `--nl`); progress and warnings go to
stderr so pipes work.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import click

from promptlab.config import Settings, load_settings


@dataclass
class _State:
    prompts_dir: str | None = None
    log_dir: str | None = None
    settings: Settings | None = None


def _state(ctx: click.Context) -> _State:
    root = ctx.find_root()
    if not isinstance(root.obj, _State):
        root.obj = _State()
    return root.obj


def get_settings(ctx: click.Context | None = None) -> Settings:
    """The project's settings, resolved once per invocation."""
    state = _state(ctx or click.get_current_context())
    if state.settings is None:
        state.settings = load_settings(prompts_dir=state.prompts_dir, log_dir=state.log_dir)
    return state.settings


def _remember(attr: str) -> Callable[[click.Context, click.Parameter, Any], Any]:
    def callback(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
        if value is not None and not str(value).strip():  # Path("") would be the cwd
            raise click.BadParameter("empty; give a folder", ctx=ctx, param=param)
        if value is not None:
            state = _state(ctx)
            setattr(state, attr, value)
            state.settings = None
        return value

    return callback


def prompts_dir_option(f: Callable[..., Any]) -> Callable[..., Any]:
    """`--prompts-dir`, for commands that use prompts but never touch the logs."""
    return click.option(
        "--prompts-dir",
        type=click.Path(file_okay=False),
        expose_value=False,
        callback=_remember("prompts_dir"),
        help="Prompts folder (default: prompts/ of the project; env PROMPTLAB_PROMPTS_DIR).",
    )(f)


def project_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """`--prompts-dir` and `--log-dir`, accepted on the group and on each command that
    reads or writes the logs."""
    f = prompts_dir_option(f)
    f = click.option(
        "--log-dir",
        type=click.Path(file_okay=False),
        expose_value=False,
        callback=_remember("log_dir"),
        help="Log folder (default: project setting, else ~/llm-logs; env PROMPTLAB_LOG_DIR).",
    )(f)
    return f


def warn(message: str) -> None:
    """One warning line on stderr, coloured only on a TTY."""
    prefix = click.style("Warning:", fg="yellow") if sys.stderr.isatty() else "Warning:"
    click.echo(f"{prefix} {printable(message)}", err=True)


# -- output -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Output:
    """How a listing command prints: a tabulate format, CSV, JSON or newline-JSON."""

    json: bool = False
    nl: bool = False
    csv: bool = False
    fmt: str = "simple"

    @property
    def structured(self) -> bool:
        return self.json or self.nl

    def emit_json(self, data: Any) -> None:
        click.echo(dumps_json(data, indent=True))

    def table(
        self,
        rows: Sequence[dict[str, Any]],
        columns: Sequence[str] | None = None,
        *,
        headers: Sequence[str] | None = None,
        json_rows: Iterable[Any] | None = None,
        empty: str | None = None,
    ) -> None:
        """Print `rows` (dicts) as a table of `columns`, or as JSON.

        `json_rows` replaces `rows` for --json/--nl when the machine form carries more
        (or rawer) fields than the table shows.
        """
        if self.json or self.nl:
            data = list(json_rows) if json_rows is not None else list(rows)
            if self.nl:
                for item in data:
                    click.echo(dumps_json(item))
            else:
                self.emit_json(data)
            return
        columns = list(columns or (rows[0].keys() if rows else []))
        if self.csv:
            import csv

            writer = csv.writer(sys.stdout, lineterminator="\n")
            writer.writerow(headers or columns)
            for row in rows:
                writer.writerow(["" if row.get(c) is None else row.get(c) for c in columns])
            return
        if not rows:
            if empty:
                click.echo(empty, err=True)
            return
        from tabulate import tabulate

        # Logged text (models, tags, names, snippets) may hold control characters: escaped.
        body = [["" if (v := row.get(c)) is None else
                 printable(v) if isinstance(v, str) and not isinstance(v, Styled) else v
                 for c in columns] for row in rows]
        click.echo(tabulate(body, headers=list(headers or columns), tablefmt=self.fmt,
                            disable_numparse=True))


def output_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """Adds --json, --nl, --csv, --fmt and passes one `out: Output` to the command."""

    @functools.wraps(f)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        out = Output(
            json=kwargs.pop("out_json"),
            nl=kwargs.pop("out_nl"),
            csv=kwargs.pop("out_csv"),
            fmt=kwargs.pop("out_fmt"),
        )
        return f(*args, out=out, **kwargs)

    wrapper = click.option(
        "out_fmt", "--fmt", default="simple", show_default=True, metavar="FORMAT",
        callback=_check_fmt,
        help="Table format (any tabulate format: simple, github, grid, plain, …).",
    )(wrapper)
    wrapper = click.option("out_csv", "--csv", is_flag=True, help="Output CSV.")(wrapper)
    wrapper = click.option("out_nl", "--nl", is_flag=True, help="Output newline-delimited JSON.")(
        wrapper
    )
    wrapper = click.option("out_json", "--json", is_flag=True, help="Output JSON.")(wrapper)
    return wrapper


def _check_fmt(ctx: click.Context, param: click.Parameter, value: str) -> str:
    if value != "simple":
        from tabulate import tabulate_formats

        if value not in tabulate_formats:
            raise click.BadParameter(
                f"unknown table format {value!r}; use one of {', '.join(sorted(tabulate_formats))}",
                ctx=ctx, param=param,
            )
    return value


# C0 and C1 control characters (and DEL), shown escaped: a file name, author or subject
# from someone else's commit must not move the cursor, retitle the terminal or split a row.
_CONTROLS = {c: f"\\x{c:02x}" for c in (*range(0x20), *range(0x7f, 0xa0))}
_CONTROLS.update({ord("\n"): "\\n", ord("\r"): "\\r", ord("\t"): "\\t"})


_BLOCK_CONTROLS = {c: v for c, v in _CONTROLS.items() if c not in (ord("\n"), ord("\t"))}


def printable(text: str, *, lines: bool = False) -> str:
    """`text` with control characters escaped (`\\x1b`, `\\n`), for a terminal or a table.
    With `lines`, newlines and tabs stay (a message or response shown as a block)."""
    return text.translate(_BLOCK_CONTROLS if lines else _CONTROLS)


class Styled(str):
    """A table cell already made printable, carrying terminal styling of our own (bold)."""


def dumps_json(data: Any, *, indent: bool = False) -> str:
    """JSON text for stdout: UTF-8 as is, non-JSON values (paths, dates) as strings."""
    import json

    return json.dumps(data, ensure_ascii=False, indent=2 if indent else None, default=str)


def refuse_file_as_log_dir(log_dir: Any) -> None:
    """UsageError when the log folder is a file (a mistyped --log-dir)."""
    if log_dir.exists() and not log_dir.is_dir():
        from promptlab.errors import UsageError

        raise UsageError(f"log folder {log_dir} is a file, not a folder; point --log-dir "
                         "(or PROMPTLAB_LOG_DIR) at the folder holding the .jsonl files")
