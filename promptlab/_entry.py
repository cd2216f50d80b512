"""The `promptlab` console script (and `python -m promptlab`).

For `logs search --semantic/--hybrid` it first forks the helper process that will embed the
query, before anything else is imported: the helper imports numpy and onnxruntime (~80 ms)
while this process imports the command line and parses it, then waits for the search to
say what to embed (`LocalEmbedder.use_warm`). The guess is made from the words alone; when
it is wrong (a cached query, another kind of model, a usage error), nobody writes to the
helper and it exits."""

from __future__ import annotations

import os
import sys

# (pid, request write end, answer read end) of the helper, until the search takes it
_warm: tuple[int, int, int] | None = None


def main() -> None:
    if _semantic_search(sys.argv[1:]):
        _fork_warm()
    from promptlab.cli import main as cli

    cli(prog_name="promptlab")


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
    if not sys.platform.startswith("linux"):  # see embedders._can_fork
        return
    try:
        request_r, request_w = os.pipe()
        answer_r, answer_w = os.pipe()
        pid = os.fork()
    except OSError:
        return
    if pid == 0:  # the helper: never returns
        code = 1
        try:
            os.close(request_w)
            os.close(answer_r)
            # never hold the caller's terminal or pipes open (a caller reading our output
            # to its end would wait for this process too)
            devnull = os.open(os.devnull, os.O_RDWR)
            for fd in (0, 1, 2):
                os.dup2(devnull, fd)
            from promptlab.semantic.embedders import serve_warm

            serve_warm(request_r, answer_w)
            code = 0
        finally:
            os._exit(code)
    os.close(request_r)
    os.close(answer_w)
    _warm = (pid, request_w, answer_r)
