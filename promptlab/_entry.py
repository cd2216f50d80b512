"""The `promptlab` console script (and `python -m promptlab`).

For `logs search --semantic/--hybrid` it first forks the helper process that will do the
search's vector work (promptlab.semantic.worker), before anything else is imported: the
helper imports numpy while this process imports the command line and parses it, then
waits for the search to say what to do. The guess is made from the words alone; when it is
wrong (a usage error, another command), nobody writes to the helper and it exits.

Such a search also ends with os._exit once its output is flushed: the interpreter's
teardown of numpy, apsw and the modules it loaded cost ~20-60 ms (measured) and nothing
of the search's needs it (its SQLite transactions are committed, its files closed)."""

from __future__ import annotations

import os
import sys

# (pid, request write end, answer read end) of the helper, until the search takes it
_warm: tuple[int, int, int] | None = None
# what `keep` holds until os._exit; None unless this process ends that way
_kept: list[object] | None = None


def main() -> None:
    global _kept
    _open_standard_fds()
    search = _semantic_search(sys.argv[1:])
    if search:
        _kept = []
        _fork_warm()
    try:
        from promptlab.cli import main as cli
    except KeyboardInterrupt:  # Ctrl-C while starting up: no traceback of the imports
        print("Aborted!", file=sys.stderr)
        _exit_now(130)

    if not search:
        cli(prog_name="promptlab")
        return
    try:
        cli(prog_name="promptlab")
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 0 if exc.code is None else 1
        if isinstance(exc.code, str):
            print(exc.code, file=sys.stderr)
    _exit_now(code)


def _open_standard_fds() -> None:
    """Put /dev/null on a standard stream the process was started without (`>&-`, some
    daemons): Python leaves sys.stdout None there, and the next file opened (a log file,
    index.db) would get descriptor 1, where a command run by `promptlab log` or a scorer
    would then write. What would have been printed goes nowhere, as the caller asked."""
    for fd, name in ((0, "stdin"), (1, "stdout"), (2, "stderr")):
        if _is_open(fd):
            continue
        null = os.open(os.devnull, os.O_RDWR)
        if null != fd:
            os.dup2(null, fd)
            os.close(null)
        if getattr(sys, name) is None:
            setattr(sys, name, open(fd, "r" if fd == 0 else "w", closefd=False))  # noqa: SIM115


def _is_open(fd: int) -> bool:
    try:
        os.fstat(fd)
    except OSError:
        return False
    return True


def _exit_now(code: int) -> None:
    """Flush what was printed and end the process without the interpreter's teardown."""
    import contextlib

    for stream in (sys.stdout, sys.stderr):
        # a reader that stopped reading (`| head`) is no failure of the search
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(code)


def keep(obj: object) -> None:
    """Hold `obj` until the process ends, when it ends with os._exit: freeing the search's
    embedder (the tokenizer's vocabulary, the model's arrays) cost ~7 ms (measured) that
    nothing needs. Anywhere else (a test's CliRunner, the Python API) a no-op."""
    if _kept is not None:
        _kept.append(obj)


def take_warm() -> tuple[int, int, int] | None:
    """The helper forked at start-up, once (None when there is none)."""
    global _warm
    warm, _warm = _warm, None
    return warm


def _semantic_search(args: list[str]) -> bool:
    words = set(args)
    return ("search" in words and "logs" in args[:args.index("search")]
            and bool(words & {"--semantic", "--hybrid"}) and not words & {"-h", "--help"})


def _fork_warm() -> None:
    global _warm
    if not sys.platform.startswith("linux"):  # macOS's system libraries are unsafe to fork
        return
    try:
        request_r, request_w = os.pipe()
        answer_r, answer_w = os.pipe()
    except OSError:
        return
    try:
        pid = os.fork()
    except OSError:
        for fd in (request_r, request_w, answer_r, answer_w):
            os.close(fd)
        return
    if pid == 0:  # the helper: never returns
        import gc

        # A process that lives for one search and ends with os._exit: the cycle collector
        # would only run during its imports (numpy's: ~8 % faster without it, measured).
        gc.disable()
        code = 1
        try:
            os.close(request_w)
            os.close(answer_r)
            # never hold the caller's terminal or pipes open (a caller reading our output
            # to its end would wait for this process too)
            devnull = os.open(os.devnull, os.O_RDWR)
            for fd in (0, 1, 2):
                os.dup2(devnull, fd)
            from promptlab.semantic.worker import serve

            serve(request_r, answer_w)
            code = 0
        finally:
            os._exit(code)
    os.close(request_r)
    os.close(answer_w)
    _warm = (pid, request_w, answer_r)
