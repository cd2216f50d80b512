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
              help="Model name to log (default: unknown, or the model named in the JSON read "
                   "with --usage-from json). A --prompt's front-matter model is kept as "
                   "metadata.prompt_model: CMD may run another.")
@click.option("tags", "--tag", "-t", multiple=True, metavar="TAG", help="A tag. Repeatable.")
@click.option("prompt_ref", "--prompt", "-p", metavar="ID[@LABEL]",
              help="Render this prompt and feed it to CMD on stdin (ID, ID@LABEL or ID/vN).")
@click.option("var_items", "--var", multiple=True, metavar="NAME=VALUE",
              help="A variable for --prompt; NAME=@FILE reads a file. Repeatable.")
@click.option("vars_file", "--vars", metavar="FILE.json|-", help="Variables as a JSON object.")
@click.option("provider", "--provider", default="command", show_default=True,
              help="Provider name to log.")
@click.option("input_tokens", "--input-tokens", type=click.IntRange(0, 10**9), metavar="N",
              help="Input (prompt) tokens of the call, for its cost.")
@click.option("output_tokens", "--output-tokens", type=click.IntRange(0, 10**9), metavar="N",
              help="Output (completion) tokens of the call, for its cost.")
@click.option("usage_from", "--usage-from", type=click.Choice(["json"]),
              help="json: CMD prints JSON (e.g. `claude -p --output-format json`, `ollama` API "
                   "replies, OpenAI/Anthropic/Gemini responses); take the token counts, the "
                   "model and the reply text from it (a JSON document, or the last JSON line "
                   "that has them).")
@click.option("print_id", "--print-id", is_flag=True,
              help="Print the logged entry's id on stderr (to attach feedback with "
                   "`promptlab feedback ID name=value`).")
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED, metavar="-- CMD [ARGS]...")
@project_options
def log_wrap(model: str | None, tags: tuple[str, ...], prompt_ref: str | None,
             var_items: tuple[str, ...], vars_file: str | None, provider: str,
             input_tokens: int | None, output_tokens: int | None, usage_from: str | None,
             print_id: bool, command: tuple[str, ...]) -> None:
    """Run CMD (no shell), log its input, output, exit status and latency.

    With --prompt, the rendered prompt is fed to CMD on stdin and its stamp (prompt id,
    version, sha) is logged; otherwise this command's stdin is passed through. CMD's
    stdout is printed unchanged and logged as the response; stderr passes through. The
    exit code is CMD's (128 + N when a signal N killed it: 137 for SIGKILL, 143 for
    SIGTERM). Token counts come from --input-tokens/--output-tokens or, with
    --usage-from json, from CMD's JSON output; with a known model they give the cost.

    \b
    Examples:
      promptlab log --model llama3.1 -- ollama run llama3.1 < question.txt
      promptlab log --prompt code-review --var code=@app.py -m gpt-4o-mini -- llm -m gpt-4o-mini
      echo "Hi" | promptlab log --tag demo -- llm -m claude-haiku-4-5
      promptlab log --usage-from json -- claude -p "Hi" --output-format json
      promptlab log -m gpt-4o-mini --input-tokens 812 --output-tokens 95 -- ./ask.sh
    """
    from promptlab.logs.logger import Logger

    for option, value in [("--model", model), ("--provider", provider),
                          *(("--tag", t) for t in tags)]:
        _check_name(option, value)
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
    meta: dict[str, Any] = {"command": list(command)}
    call = logger.call(logged_input, model=model, provider=provider, tags=list(tags) or None)
    if model is None and "model" in call.fields:
        # The front matter names the model the prompt was written for; CMD may run any.
        meta["prompt_model"] = call.fields.pop("model")
    try:
        code, output, interrupted = _run(command, stdin_data)
    except KeyboardInterrupt:  # before the command started: nothing was printed
        _log_quietly(call.fail, "interrupted (Ctrl-C)", metadata=meta)
        sys.exit(130)
    text = output.decode("utf-8", "replace")
    usage: dict[str, Any] = {}
    if usage_from == "json":
        usage = usage_from_json(text)
        if not usage.get("input_tokens") and not usage.get("output_tokens"):
            warn("no token usage found in the command's output (--usage-from json)")
        if "assistant_response" in usage:
            text = usage.pop("assistant_response")
        if model is not None:
            usage.pop("model", None)
        elif _has_controls(usage.get("model", "")):
            warn(f"ignored the model name in the command's output: {usage.pop('model')!r} "
                 "holds control characters")
    if input_tokens is not None:
        usage["input_tokens"] = input_tokens
    if output_tokens is not None:
        usage["output_tokens"] = output_tokens
    if code < 0:  # killed by a signal: report it the way shells do, 128 + N
        signum = -code
        code = 128 + signum
        meta["signal"] = _signal_name(signum)
        error = f"killed by signal {meta['signal']}"
    else:
        error = f"exit status {code}"
    meta["exit_code"] = code
    if interrupted:
        error = "interrupted (Ctrl-C)"
    if code == 0 and not interrupted:
        entry = _log_quietly(call.finish, response=text, metadata=meta, **usage)
    else:
        entry = _log_quietly(call.fail, error, assistant_response=text, metadata=meta, **usage)
    if print_id and entry is not None:
        click.echo(f"promptlab: logged {entry['id']}", err=True)
    sys.exit(130 if interrupted else code)


def _has_controls(text: str) -> bool:
    return any(ord(c) < 0x20 or 0x7f <= ord(c) < 0xa0 for c in text)


def _check_name(option: str, value: str | None) -> None:
    """A model, provider or tag is a name: never empty, never a control character (a
    newline would split every table row it is shown in)."""
    if value is None:
        return
    if not value.strip():
        raise UsageError(f"{option} is empty; give a name (or leave the option out)")
    if _has_controls(value):
        raise UsageError(f"{option} {value!r} holds a control character (a newline, a tab, "
                         "an escape); names are one line of printable text")


def _signal_name(signum: int) -> str:
    import signal

    try:
        return signal.Signals(signum).name
    except ValueError:
        return str(signum)


def usage_from_json(output: str) -> dict[str, Any]:
    """Token counts, model and reply text from a tool's JSON output (empty when none).

    `output` is one JSON document, or JSON lines (a streamed reply): the last object that
    carries token counts wins, and its text, if any, is the reply. Shapes understood:
    OpenAI chat/responses, Anthropic messages, Claude Code (`claude -p --output-format
    json`), Ollama's API (`prompt_eval_count`/`eval_count`), Gemini (`usageMetadata`), and
    any object with `usage: {input_tokens|prompt_tokens, output_tokens|completion_tokens}`.
    """
    import json

    objects: list[Any] = []
    try:
        objects.append(json.loads(output))
    except ValueError:
        for line in output.splitlines():
            line = line.strip()
            if line.startswith("{"):
                try:
                    objects.append(json.loads(line))
                except ValueError:
                    continue
    for obj in reversed(objects):
        found = _reply_fields(obj) if isinstance(obj, dict) else {}
        if found.get("input_tokens") is not None or found.get("output_tokens") is not None:
            return found
    return {}


def _reply_fields(obj: dict[str, Any]) -> dict[str, Any]:
    from promptlab.logs.entry import EntryError
    from promptlab.logs.logger import extract_response

    try:
        found = extract_response(obj)  # OpenAI chat/responses, Anthropic messages
    except EntryError:
        found = {}
    usage = obj.get("usage") if isinstance(obj.get("usage"), dict) else {}
    meta = obj.get("usageMetadata") if isinstance(obj.get("usageMetadata"), dict) else {}
    if "input_tokens" not in found:
        base = _count(usage.get("input_tokens"), usage.get("prompt_tokens"),
                      obj.get("prompt_eval_count"), meta.get("promptTokenCount"))
        if base is not None and usage.get("input_tokens") is not None:
            # Anthropic-style counts keep cache reads and writes outside input_tokens.
            cached = _count(usage.get("cache_read_input_tokens")) or 0
            base += cached + (_count(usage.get("cache_creation_input_tokens")) or 0)
            if cached:
                found.setdefault("cached_tokens", cached)
        if base is not None:
            found["input_tokens"] = base
    if "output_tokens" not in found:
        out = _count(usage.get("output_tokens"), usage.get("completion_tokens"),
                     obj.get("eval_count"), meta.get("candidatesTokenCount"))
        if out is not None:
            found["output_tokens"] = out
    if "assistant_response" not in found:
        text = _text_of(obj)
        if text is not None:
            found["assistant_response"] = text
    model = obj.get("model") or obj.get("modelVersion")
    if "model" not in found and isinstance(model, str) and model:
        found["model"] = model
    return found


def _count(*values: Any) -> int | None:
    for value in values:
        if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 10**9:
            return value
    return None


def _text_of(obj: dict[str, Any]) -> str | None:
    for key in ("result", "response", "text", "output"):  # Claude Code, Ollama, generic
        if isinstance(obj.get(key), str):
            return obj[key]
    message = obj.get("message")
    if isinstance(message, dict) and isinstance(message.get("content"), str):  # Ollama chat
        return message["content"]
    candidates = obj.get("candidates")  # Gemini
    if isinstance(candidates, list) and candidates and isinstance(candidates[0], dict):
        parts = (candidates[0].get("content") or {}).get("parts") or []
        texts = [p.get("text") for p in parts if isinstance(p, dict)]
        if texts and all(isinstance(t, str) for t in texts):
            return "".join(texts)
    return None


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


def _run(command: tuple[str, ...], stdin_data: bytes | None) -> tuple[int, bytes, bool]:
    """Run `command`, feeding `stdin_data`; echo its stdout as it comes and return its exit
    status, all of its stdout, and whether Ctrl-C interrupted it."""
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
    chunks: list[bytes] = []
    interrupted = False
    try:
        _copy_output(proc, chunks)
    except KeyboardInterrupt:
        interrupted = True
        _interrupt(proc, chunks)
    finally:
        proc.stdout.close()  # type: ignore[union-attr]
    try:
        code = proc.wait()
    except KeyboardInterrupt:
        interrupted = True
        proc.kill()
        code = proc.wait()
    if feeder is not None:
        feeder.join(timeout=1)
    return code, b"".join(chunks), interrupted


def _copy_output(proc: Any, chunks: list[bytes], until_exit: bool = False) -> None:
    """Echo and keep the command's stdout until its end (or, with `until_exit`, until the
    command has exited and nothing more is waiting: a child it left behind may hold the
    pipe open)."""
    import select

    out = _stdout_bytes()
    fd = proc.stdout.fileno()
    while True:
        if until_exit and not select.select([fd], [], [], 0.05)[0]:
            if proc.poll() is None:
                continue
            if not select.select([fd], [], [], 0)[0]:  # what it wrote just before exiting
                return
        chunk = os.read(fd, _CHUNK)
        if not chunk:
            return
        chunks.append(chunk)
        out.write(chunk)
        out.flush()


def _interrupt(proc: Any, chunks: list[bytes]) -> None:
    """After Ctrl-C: keep what the command prints until it stops; a second Ctrl-C kills it.

    A terminal's Ctrl-C reaches the command as well (it runs in promptlab's process group);
    a SIGINT sent to promptlab alone (`kill -INT`, no terminal) is passed on to it."""
    import signal

    if proc.poll() is None and not _in_terminal_foreground():
        with contextlib.suppress(OSError):
            proc.send_signal(signal.SIGINT)
    try:
        _copy_output(proc, chunks, until_exit=True)
    except KeyboardInterrupt:
        proc.kill()


def _in_terminal_foreground() -> bool:
    """Whether this process group is its terminal's foreground group (so a Ctrl-C typed
    there was sent to the command too)."""
    try:
        fd = os.open("/dev/tty", os.O_RDONLY | os.O_NOCTTY)
    except OSError:
        return False
    try:
        return os.tcgetpgrp(fd) == os.getpgrp()
    except OSError:
        return False
    finally:
        os.close(fd)


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
