"""How fast is logging one LLM call? µs per entry, medians, ratios vs baselines measured
in the same run.

    python benchmarks/bench_logging.py            # full run (~20 s)
    python benchmarks/bench_logging.py --quick    # fewer rounds

Baselines:
  naive        open the file, append json.dumps(entry), close — per call (the seed's way)
  FileHandler  logging.FileHandler with json.dumps
  bare         orjson.dumps + one os.write on a kept-open O_APPEND descriptor (the floor)
Measured through the public API (id, timestamp, validation, redaction and cost included):
  Logger.log           logger.log(model=model, system_prompt=system, ...): 15 keyword
                       arguments written out, as application code calls it
  Logger.log(**f)      the same fields unpacked from a dict (Python builds the keyword
                       names and values from the dict on every call)
  call()               with logger.call(rendered) as call: call.finish(...)
For reference, measured in the same run:
  call only            a Python method taking **fields that does nothing, given the 15
                       keyword arguments written out
  floor                call only + bare: the least a logger written in Python can cost
Whether the C speed-ups (promptlab/logs/_speedups.c) are in use is printed first.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from promptlab.logs.logger import Logger
from promptlab.template import Rendered

SYSTEM = ("You are a meticulous code reviewer. You read every line before you answer, and you "
          "name each bug precisely: the line, what goes wrong, and the fix. Keep answers short.")
USER = ("Review this Python function. Work through this checklist, one item at a time:\n\n"
        "1. Off-by-one errors in ranges, slices and loop bounds.\n"
        "2. Wrong comparison or boolean operators (< vs <=, and vs or).\n"
        "3. Unhandled edge cases: empty input, None, zero, negative numbers.\n\n"
        "```python\ndef average(xs):\n    total = 0\n    for i in range(1, len(xs)):\n"
        "        total += xs[i]\n    return total / len(xs)\n```\n"
        "Then answer with the single most serious bug first, in one line.")
RESPONSE = ("BUG: the loop starts at index 1, so the first element is never added to the total "
            "and the average is too small. Fix: iterate `for x in xs: total += x`, and guard "
            "against an empty list before dividing (ZeroDivisionError). Also consider "
            "`statistics.fmean(xs)`, which handles floats precisely and raises a clear error on "
            "empty input. Everything else looks fine: the division is true division in Python 3.")


def fields() -> dict:
    return {
        "model": "gpt-4o-mini", "provider": "openai", "system_prompt": SYSTEM,
        "user_message": USER, "assistant_response": RESPONSE, "input_tokens": 412,
        "output_tokens": 96, "latency_ms": 1234.5, "tags": ["review", "bench"],
        "metadata": {"user": "u-1842", "session": "s-77"}, "prompt_id": "code-review",
        "prompt_version": "v2", "prompt_label": "current",
        "prompt_sha": "c9977c685abbff1e129826960eeecd7475c7208e99c2f8236acab322becea233",
        "status": "ok",
    }


def timed(fn, n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - start) / n * 1e6


def run(quick: bool) -> None:
    n = 2000 if quick else 5000
    rounds = 5 if quick else 9
    tmp = Path(tempfile.mkdtemp(prefix="bench-logging-"))
    f = fields()
    entry = {"v": 1, "id": "01M8D469Y9N0ZCS9SA52VYMRFA", "timestamp": "2026-11-26T23:48:58.441600Z",
             "kind": "llm", **f}
    size = len(orjson.dumps(entry))

    naive_path = tmp / "naive.jsonl"

    def naive() -> None:
        with open(naive_path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(entry) + "\n")

    bare_fd = os.open(tmp / "bare.jsonl", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    dumps, write, opt = orjson.dumps, os.write, orjson.OPT_APPEND_NEWLINE

    def bare() -> None:
        write(bare_fd, dumps(entry, option=opt))

    handler = logging.FileHandler(tmp / "handler.jsonl")
    pylog = logging.getLogger("bench")
    pylog.propagate = False
    pylog.addHandler(handler)
    pylog.setLevel(logging.INFO)

    def filehandler() -> None:
        pylog.info(json.dumps(entry))

    logger = Logger(tmp / "api", prices=None)
    plain = Logger(tmp / "api-noredact", redact=False)

    def api_unpacked() -> None:
        logger.log(**f)

    class Empty:
        def log(self, **fields: object) -> None:
            pass

    empty = Empty()
    # Calls with the keyword arguments written out, as in application code; the values
    # are variables of the calling function, as they would be there.
    written_out = ", ".join(f"{name}={name}" for name in f)
    source = (f"def make(target, {', '.join(f)}):\n"
              f"    def call():\n        target.log({written_out})\n    return call\n")
    namespace: dict = {}
    exec(source, namespace)  # a benchmark's own fixed source, built from the field names
    api = namespace["make"](logger, **f)
    call_only = namespace["make"](empty, **f)
    api_noredact = namespace["make"](plain, **f)

    rendered = Rendered(
        messages=[{"role": "system", "content": SYSTEM}, {"role": "user", "content": USER}],
        model="gpt-4o-mini", config={"temperature": 0.2},
        stamp={"prompt_id": "code-review", "prompt_version": "v2", "prompt_label": "current",
               "prompt_sha": f["prompt_sha"], "prompt_commit": None, "prompt_dirty": None},
    )

    def api_call() -> None:
        with logger.call(rendered) as call:
            call.finish(response=RESPONSE, input_tokens=412, output_tokens=96)

    cases = {
        "naive (open/json.dumps/close)": naive,
        "logging.FileHandler": filehandler,
        "bare orjson + os.write": bare,
        "call only (**fields, no work)": call_only,
        "Logger.log": api,
        "Logger.log(**f)": api_unpacked,
        "Logger.log, redact=False": api_noredact,
        "logger.call(rendered)": api_call,
    }
    for fn in cases.values():  # warm up: imports, price table, open files
        for _ in range(200):
            fn()
    results: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(rounds):  # interleave rounds so drift hits every case alike
        for name, fn in cases.items():
            results[name].append(timed(fn, n))

    fsync_logger = Logger(tmp / "fsync", fsync=True)
    fsync_us = statistics.median(timed(lambda: fsync_logger.log(**f), 50) for _ in range(3))

    threads = 4
    per_thread = n
    mt_logger = Logger(tmp / "threads")

    def worker() -> None:
        for _ in range(per_thread):
            mt_logger.log(**f)

    start = time.perf_counter()
    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    mt_rate = threads * per_thread / (time.perf_counter() - start)

    med = {name: statistics.median(v) for name, v in results.items()}
    naive_us = med["naive (open/json.dumps/close)"]
    bare_us = med["bare orjson + os.write"]
    from promptlab.logs import entry as entry_module

    speedups = "in use" if entry_module.speedups is not None else "NOT built (pure Python)"
    print(f"C speed-ups: {speedups}")
    print(f"entry size: {size} bytes; {rounds} rounds x {n} entries; medians in µs/entry")
    print(f"{'case':32} {'µs/entry':>9} {'min':>7} {'max':>7} {'naive/x':>8} {'x/bare':>7}")
    for name, us in med.items():
        lo, hi = min(results[name]), max(results[name])
        print(f"{name:32} {us:9.2f} {lo:7.2f} {hi:7.2f} {naive_us / us:8.2f} {us / bare_us:7.2f}")
    print(f"{'Logger.log, fsync=True':32} {fsync_us:9.2f}")
    print(f"{threads} threads through one Logger: {mt_rate:,.0f} entries/s")
    api_us = med["Logger.log"]
    floor_us = bare_us + med["call only (**fields, no work)"]
    print(f"{'floor (call only + bare)':32} {floor_us:9.2f} {'':7} {'':7} "
          f"{naive_us / floor_us:8.2f} {floor_us / bare_us:7.2f}")
    unpacked_us = med["Logger.log(**f)"]
    print(f"\nLogger.log is {naive_us / api_us:.2f}x faster than the naive logger (target >= 5x) "
          f"and {api_us / bare_us:.2f}x the bare orjson+os.write (target <= 3x); "
          f"with **fields: {naive_us / unpacked_us:.2f}x and {unpacked_us / bare_us:.2f}x.")
    for path in tmp.rglob("*"):
        if path.is_file():
            path.unlink()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds")
    run(parser.parse_args().quick)
