"""`command`: any program as the model — no shell, the request on stdin, the answer on stdout.

    [provider]
    type = "command"
    model_from_response = True
    command = ["llm", "-m", "gpt-4o-mini"]   # or ["ollama", "run", "llama3.2"]
    input = "text"                           # "json" (default) or "text"

With `input = "json"` the program reads `{"messages", "model", "params", "repeat",
"system", "prompt", "text"}`; with `input = "text"` it reads the rendered prompt (all
messages joined), which is what `llm` and `ollama run` expect. Its stdout is the
response: plain text, or a JSON object `{"output": …, "usage": {…}}`. A non-zero exit is
an error; exit status 75 (EX_TEMPFAIL) marks it retryable.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import signal
import subprocess
import time
from typing import Any

from promptlab.errors import ExperimentError, ProviderError
from promptlab.providers.base import Provider, ProviderSpec, Request, Response, elapsed_ms
from promptlab.providers.python import parse_output

EX_TEMPFAIL = 75
# What a command may write to stdout (and to stderr) for one call: a response is a few KB; a
# runaway command (`yes`, a loop) would otherwise fill memory until its timeout.
MAX_OUTPUT = 16 << 20
_PIPE_BUF = 4096  # bytes a pipe that selects as writable takes without blocking (POSIX)


class CommandProvider(Provider):
    type = "command"
    model_from_response = True
    keys = frozenset({"command", "input", "env", "cwd"})
    enforces_timeout = True

    @classmethod
    def validate(cls, spec: ProviderSpec) -> None:
        super().validate(spec)
        argv_of(spec)
        if spec.option("input", "json") not in ("json", "text"):
            raise ExperimentError(f"{spec.where}: 'input' must be \"json\" or \"text\", "
                                  f"got {spec.option('input')!r}")
        env = spec.option("env", {})
        if not isinstance(env, dict) or not all(isinstance(v, str) for v in env.values()):
            raise ExperimentError(f"{spec.where}: 'env' must be a table of strings")

    def __init__(self, spec: ProviderSpec):
        super().__init__(spec)
        self.argv = argv_of(spec)
        self.input = spec.option("input", "json")
        env = spec.option("env")
        self.env = {**os.environ, **env} if env else None
        cwd = spec.option("cwd")
        self.cwd = str(spec.base_dir / cwd) if cwd else None

    @property
    def endpoint(self) -> str:
        return "command:" + shlex.join(self.argv)

    def complete(self, request: Request) -> Response:
        if self.input == "text":
            payload = request.text
        else:
            user = [m["content"] for m in request.messages if m["role"] == "user"]
            payload = json.dumps({**request.to_dict(), "system": request.system,
                                  "prompt": "\n\n".join(user), "text": request.text},
                                 ensure_ascii=False)
        name = self.argv[0]
        start = time.perf_counter()
        try:
            # A session of its own: Ctrl-C in the terminal stops the run, not the calls
            # still in flight, so those finish and are logged.
            proc = run_process(self.argv, payload.encode("utf-8"), request.timeout_s, self.env,
                        self.cwd)
        except FileNotFoundError as exc:
            raise ProviderError(f"command {name!r} not found; check [provider] command "
                                "or your PATH") from exc
        except PermissionError as exc:
            raise ProviderError(f"command {name!r} is not executable") from exc
        except subprocess.TimeoutExpired as exc:
            raise ProviderError(f"command {name!r} timed out after {request.timeout_s:g}s",
                                retryable=True) from exc
        except OutputTooLarge as exc:
            raise ProviderError(f"command {name!r} {exc} and was stopped; a response must be "
                                "shorter (check what the command prints)") from exc
        latency = elapsed_ms(start)
        if proc.returncode != 0:
            stderr = proc.stderr.decode("utf-8", "replace").strip().splitlines()
            detail = f": {stderr[-1]}" if stderr else ""
            raise ProviderError(f"command {name!r} exited with status {proc.returncode}{detail}",
                                retryable=proc.returncode == EX_TEMPFAIL)
        out = proc.stdout.decode("utf-8", "replace")
        return parse_output(_maybe_json(out), latency, request.model, f"command {name!r}")


def run_process(argv: list[str], stdin: bytes, timeout_s: float,
                env: dict[str, str] | None = None, cwd: str | None = None, *,
                limit: int | None = None) -> subprocess.CompletedProcess[bytes]:
    """`subprocess.run`, except that a timeout kills the command's whole process group:
    `sh -c "… & …"` or a tool's helper would otherwise live on after every timed-out call
    (and, holding stdout open, keep the call from ending); and that a command writing more
    than `limit` bytes (default MAX_OUTPUT) to stdout or to stderr is killed the same way
    (OutputTooLarge) instead of filling this process's memory until the timeout. The pipes
    are served as `communicate` serves them: one selector, in this thread."""
    import selectors

    limit = MAX_OUTPUT if limit is None else limit
    deadline = time.monotonic() + timeout_s
    with subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, env=env, cwd=cwd,
                          start_new_session=True) as proc:
        assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
        captured: dict[str, list[bytes]] = {"stdout": [], "stderr": []}
        sizes = dict.fromkeys(captured, 0)
        pending = memoryview(stdin)
        try:
            with selectors.DefaultSelector() as selector:
                selector.register(proc.stdout, selectors.EVENT_READ, "stdout")
                selector.register(proc.stderr, selectors.EVENT_READ, "stderr")
                if pending:
                    selector.register(proc.stdin, selectors.EVENT_WRITE)
                else:
                    proc.stdin.close()
                while selector.get_map():
                    left = deadline - time.monotonic()
                    if left <= 0:
                        raise subprocess.TimeoutExpired(argv, timeout_s)
                    for key, _ in selector.select(left):
                        if key.fileobj is proc.stdin:
                            try:
                                pending = pending[os.write(key.fd, pending[:_PIPE_BUF]):]
                            except BrokenPipeError:  # it stopped reading: the rest is moot
                                pending = pending[:0]
                            if not pending:
                                selector.unregister(proc.stdin)
                                proc.stdin.close()
                            continue
                        chunk = os.read(key.fd, 1 << 16)
                        if not chunk:
                            selector.unregister(key.fileobj)
                            continue
                        sizes[key.data] += len(chunk)
                        if sizes[key.data] > limit:
                            raise OutputTooLarge(key.data, limit)
                        captured[key.data].append(chunk)
            proc.wait(timeout=max(deadline - time.monotonic(), 0))
        except BaseException:
            with contextlib.suppress(OSError):
                os.killpg(proc.pid, signal.SIGKILL)  # its own session: pgid == pid
            proc.kill()
            proc.wait()
            raise
    return subprocess.CompletedProcess(argv, proc.returncode, b"".join(captured["stdout"]),
                                       b"".join(captured["stderr"]))


class OutputTooLarge(Exception):
    """A command wrote more than its limit to `stream` (stdout or stderr), and was stopped."""

    def __init__(self, stream: str, limit: int):
        size = f"{limit >> 20} MB" if limit >= 1 << 20 else f"{limit:,} bytes"
        super().__init__(f"wrote more than {size} to {stream}")
        self.stream, self.limit = stream, limit


def _maybe_json(out: str) -> Any:
    stripped = out.strip()
    if stripped.startswith("{"):
        try:
            data = json.loads(stripped)
        except (ValueError, RecursionError):  # not JSON, or too deep to hold: plain text
            return out.rstrip("\n")
        if isinstance(data, dict) and "output" in data:
            return data
    return out.rstrip("\n")


def argv_of(spec: ProviderSpec) -> list[str]:
    command = spec.option("command")
    if isinstance(command, str) and command.strip():
        return shlex.split(command)
    if (isinstance(command, list) and command
            and all(isinstance(part, str) for part in command)):
        return list(command)
    raise ExperimentError(f"{spec.where}: type 'command' needs command = [\"program\", "
                          "\"arg\", …] (run without a shell)")
