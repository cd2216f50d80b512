"""`promptlab log -- CMD …`: run any command-line LLM tool and log the call."""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from typing import Any

import click

from promptlab.cli._common import get_settings, project_options, warn
from promptlab.errors import UsageError

_CHUNK = 65536


@click.command(
    name="log",
    context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False},
)
@click.option("model", "--model", "-m", metavar="MODEL",
              help="Model name to log (default: the prompt's model).")
@click.option("tags", "--tag", "-t", multiple=True, metavar="TAG", help="A tag. Repeatable.")
@click.option("prompt_ref", "--prompt", "-p", metavar="ID[@LABEL]",
              help="Render this prompt and feed it to CMD on stdin (ID, ID@LABEL or ID/vN).")
@click.option("var_items", "--var", multiple=True, metavar="NAME=VALUE",
              help="A variable for --prompt; NAME=@FILE reads a file. Repeatable.")
@click.option("vars_file", "--vars", metavar="FILE.json|-", help="Variables as a JSON object.")
@click.option("provider", "--provider", default="command", show_default=True,
              help="Provider name to log.")
@click.option("print_id", "--print-id", is_flag=True,
              help="Print the logged entry's id on stderr (to attach feedback later).")
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED, metavar="-- CMD [ARGS]...")
@project_options
def log_wrap(model: str | None, tags: tuple[str, ...], prompt_ref: str | None,
             var_items: tuple[str, ...], vars_file: str | None, provider: str,
             print_id: bool, command: tuple[str, ...]) -> None:
    """Run CMD (no shell), log its input, output, exit status and latency.

    With --prompt, the rendered prompt is fed to CMD on stdin and its stamp (prompt id,
    version, sha) is logged; otherwise this command's stdin is passed through. CMD's
    stdout is printed unchanged and logged as the response; stderr passes through. The
    exit code is CMD's.

    \b
    Examples:
      promptlab log --model llama3.1 -- ollama run llama3.1 < question.txt
      promptlab log --prompt code-review --var code=@app.py -- llm -m gpt-4o-mini
      echo "Hi" | promptlab log --tag demo -- llm -m claude-haiku-4-5
    """
    from promptlab.logs.logger import Logger

    if (var_items or vars_file) and prompt_ref is None:
        raise UsageError("--var/--vars need --prompt ID to render; without --prompt, "
                         "stdin is passed to the command as it is")
    rendered = _render(prompt_ref, var_items, vars_file) if prompt_ref else None
    if rendered is not None:
        stdin_data: bytes | None = rendered.text.encode("utf-8")
        if not stdin_data.endswith(b"\n"):
            stdin_data += b"\n"
        logged_input: Any = rendered
    else:
        stdin_data = _read_stdin()
        logged_input = None if stdin_data is None else stdin_data.decode("utf-8", "replace")

    settings = get_settings()
    logger = Logger(settings.log_dir, strict=True)
    meta = {"command": list(command)}
    call = logger.call(logged_input, model=model, provider=provider, tags=list(tags) or None)
    try:
        code, output = _run(command, stdin_data)
    except KeyboardInterrupt:
        _log_quietly(call.fail, "interrupted (Ctrl-C)", metadata=meta)
        sys.exit(130)
    meta["exit_code"] = code
    text = output.decode("utf-8", "replace")
    if code == 0:
        entry = _log_quietly(call.finish, response=text, metadata=meta)
    else:
        entry = _log_quietly(call.fail, f"exit status {code}", assistant_response=text,
                             metadata=meta)
    if print_id and entry is not None:
        click.echo(f"promptlab: logged {entry['id']}", err=True)
    sys.exit(code)


def _render(ref: str, var_items: tuple[str, ...], vars_file: str | None) -> Any:
    from promptlab.cli.prompts import coerce_cli_vars, get_registry, parse_vars

    prompt = get_registry().get(ref)
    values = parse_vars(var_items, vars_file)
    values = coerce_cli_vars(prompt.template, values, {i.partition("=")[0].strip() for i in var_items})
    return prompt.render(values)


def _read_stdin() -> bytes | None:
    """All of stdin, or None when it is a terminal (the command then reads it directly)."""
    stream = sys.stdin
    if stream is None or stream.isatty():
        return None
    buffer = getattr(stream, "buffer", None)
    return buffer.read() if buffer is not None else stream.read().encode("utf-8")


def _run(command: tuple[str, ...], stdin_data: bytes | None) -> tuple[int, bytes]:
    """Run `command`, feeding `stdin_data`; echo its stdout as it comes and return it all."""
    import subprocess

    try:
        proc = subprocess.Popen(
            list(command),
            stdin=subprocess.PIPE if stdin_data is not None else None,
            stdout=subprocess.PIPE,
        )
    except FileNotFoundError:
        raise UsageError(f"command not found: {command[0]!r}; check the name after '--' "
                         "(it runs without a shell)") from None
    except PermissionError:
        raise UsageError(f"cannot run {command[0]!r}: permission denied") from None
    except OSError as exc:
        raise UsageError(f"cannot run {command[0]!r}: {exc.strerror}") from None
    feeder = None
    if stdin_data is not None:
        feeder = threading.Thread(target=_feed, args=(proc.stdin, stdin_data), daemon=True)
        feeder.start()
    out = _stdout_bytes()
    chunks = []
    fd = proc.stdout.fileno()  # type: ignore[union-attr]
    try:
        while True:
            chunk = os.read(fd, _CHUNK)
            if not chunk:
                break
            chunks.append(chunk)
            out.write(chunk)
            out.flush()
    finally:
        proc.stdout.close()  # type: ignore[union-attr]
        code = proc.wait()
        if feeder is not None:
            feeder.join(timeout=1)
    return code, b"".join(chunks)


def _feed(pipe: Any, data: bytes) -> None:
    try:
        pipe.write(data)
    except (BrokenPipeError, OSError):
        pass  # the command stopped reading; its exit status tells the story
    finally:
        with contextlib.suppress(OSError):
            pipe.close()


def _stdout_bytes() -> Any:
    stream = sys.stdout
    return getattr(stream, "buffer", stream)


def _log_quietly(fn: Any, *args: Any, **kwargs: Any) -> dict[str, Any] | None:
    """Log; if the log cannot be written, warn and carry on (CMD's result still counts)."""
    from promptlab.errors import LogError

    try:
        return fn(*args, **kwargs)
    except LogError as exc:
        warn(f"call not logged: {exc}")
        return None
