"""How fast is logging one LLM call? µs per entry, medians, ratios vs baselines measured
in the same run.

    python benchmarks/bench_logging.py                  # full run
    python benchmarks/bench_logging.py --quick          # fewer rounds
    python benchmarks/bench_logging.py --baseline-rev d1f2648
        # also runs the same cases on an older promptlab (its pure-Python path), in child
        # processes interleaved with this one's rounds, and compares the ratios

Baselines (each process measures its own, so ratios compare across processes):
  naive        open the file, append json.dumps(entry), close — per call (the seed's way)
  FileHandler  logging.FileHandler with json.dumps
  bare         orjson.dumps + one os.write on a kept-open O_APPEND descriptor (the floor)
Measured through the public API (id, timestamp, validation, redaction and cost included):
  Logger.log           logger.log(model=model, system_prompt=system, ...): 15 keyword
                       arguments written out, as application code calls it
  Logger.log(**f)      the same fields unpacked from a dict
  call()               with logger.call(rendered) as call: call.finish(...)
For reference, in the same run, when `llm` is installed (pip install llm==0.36; benchmarks
only, not a promptlab dependency):
  llm log_to_db        llm 0.36's own per-response logging to SQLite: a real
                       llm.Response from an offline stand-in model, `response.log_to_db(db)`
                       into a migrated logs.db as `llm` opens it (sqlite-utils, default
                       journal), and the same with WAL turned on
The entry is ~1.5 KB (a code-review prompt, its reply, tokens, tags, metadata, stamp).
Times are CPU time of the process (user + system), not wall-clock: on a shared machine
other processes' load would otherwise dominate. llm's SQLite rows are wall-clock as well
(its commits wait for the disk) and say so.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import orjson

ROOT = Path(os.environ.get("PROMPTLAB_BENCH_ROOT") or Path(__file__).resolve().parent.parent)
sys.path.insert(0, str(ROOT))

from promptlab.logs.logger import Logger  # noqa: E402
from promptlab.template import Rendered  # noqa: E402

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
PROMPT_SHA = "c9977c685abbff1e129826960eeecd7475c7208e99c2f8236acab322becea233"


def fields() -> dict:
    return {
        "model": "gpt-4o-mini", "provider": "openai", "system_prompt": SYSTEM,
        "user_message": USER, "assistant_response": RESPONSE, "input_tokens": 412,
        "output_tokens": 96, "latency_ms": 1234.5, "tags": ["review", "bench"],
        "metadata": {"user": "u-1842", "session": "s-77"}, "prompt_id": "code-review",
        "prompt_version": "v2", "prompt_label": "current", "prompt_sha": PROMPT_SHA,
        "status": "ok",
    }


def timed(fn, n: int) -> float:
    """µs of this process's CPU time (user + system) per call: other load on a shared
    machine does not count, the work of the call (syscalls included) does."""
    start = time.process_time_ns()
    for _ in range(n):
        fn()
    return (time.process_time_ns() - start) / n / 1000


def make_cases(tmp: Path) -> dict:
    f = fields()
    entry = {"v": 1, "id": "01M8D469Y9N0ZCS9SA52VYMRFA",
             "timestamp": "2026-11-26T23:48:58.441600Z", "kind": "llm", **f}
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

    # Calls with the keyword arguments written out, as in application code; the values
    # are variables of the calling function, as they would be there.
    written_out = ", ".join(f"{name}={name}" for name in f)
    source = (f"def make(target, {', '.join(f)}):\n"
              f"    def call():\n        target.log({written_out})\n    return call\n")
    namespace: dict = {}
    exec(source, namespace)  # a benchmark's own fixed source, built from the field names
    rendered = Rendered(
        messages=[{"role": "system", "content": SYSTEM}, {"role": "user", "content": USER}],
        model="gpt-4o-mini", config={"temperature": 0.2},
        stamp={"prompt_id": "code-review", "prompt_version": "v2", "prompt_label": "current",
               "prompt_sha": PROMPT_SHA, "prompt_commit": None, "prompt_dirty": None},
    )

    def api_call() -> None:
        with logger.call(rendered) as call:
            call.finish(response=RESPONSE, input_tokens=412, output_tokens=96)

    return {
        "naive (open/json.dumps/close)": naive,
        "logging.FileHandler": filehandler,
        "bare orjson + os.write": bare,
        "call only (**fields, no work)": namespace["make"](Empty(), **f),
        "Logger.log": namespace["make"](logger, **f),
        "Logger.log(**f)": api_unpacked,
        "Logger.log, redact=False": namespace["make"](plain, **f),
        "logger.call(rendered)": api_call,
    }


def measure(quick: bool) -> dict[str, list[float]]:
    """µs per entry of every case, one figure per round (rounds interleave the cases)."""
    n = 2000 if quick else 5000
    rounds = 5 if quick else 9
    tmp = Path(tempfile.mkdtemp(prefix="bench-logging-"))
    cases = make_cases(tmp)
    for fn in cases.values():  # warm up: imports, price table, open files
        for _ in range(200):
            fn()
    results: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(rounds):
        for name, fn in cases.items():
            results[name].append(timed(fn, n))
    for path in tmp.rglob("*"):
        if path.is_file():
            path.unlink()
    return results


# -- llm's own logging, for reference --------------------------------------------------------


def measure_llm(quick: bool) -> dict[str, list[float]] | str:
    """µs per `Response.log_to_db(db)` for llm (rounds), or why it was not measured."""
    try:
        import llm
        import sqlite_utils
        from llm.migrations import migrate
    except ImportError:
        return "llm not installed: pip install llm (0.36 was measured for docs/logging.md)"

    class StandIn(llm.Model):  # offline: the reply is made up, nothing is sent anywhere
        model_id = "gpt-4o-mini"
        can_stream = True

        def execute(self, prompt, stream, response, conversation):  # type: ignore[no-untyped-def]
            response.set_usage(input=412, output=96)
            yield RESPONSE

    model = StandIn()
    per_round = 40 if quick else 100
    rounds = 3
    out: dict[str, list[float]] = {}
    for label, wal in (("llm 0.36 log_to_db (SQLite)", False),
                       ("llm 0.36 log_to_db (SQLite, WAL)", True)):
        tmp = Path(tempfile.mkdtemp(prefix="bench-llm-"))
        db = sqlite_utils.Database(tmp / "logs.db")
        migrate(db)
        if wal:
            db.enable_wal()
        times: list[float] = []
        cpu_times: list[float] = []
        for r in range(rounds + 1):
            # Distinct calls, as in real use (llm stores identical content once).
            responses = []
            for i in range(per_round):
                response = model.prompt(f"{USER}\n# call {r}-{i}", system=SYSTEM)
                response.text()
                responses.append(response)
            start, cpu = time.perf_counter(), time.process_time()
            for response in responses:
                response.log_to_db(db)
            if r:  # the first round warms up
                times.append((time.perf_counter() - start) / per_round * 1e6)
                cpu_times.append((time.process_time() - cpu) / per_round * 1e6)
        out[label + ", wall"] = times
        out[label + ", CPU"] = cpu_times
        db.close()
    return out


# -- an older promptlab, for the same-run comparison ------------------------------------------


def measure_baseline(rev: str, quick: bool) -> dict[str, list[float]]:
    """Run `measure` on promptlab at git revision `rev` (pure Python) in a child process."""
    tree = Path(tempfile.mkdtemp(prefix="bench-baseline-"))
    archive = subprocess.run(["git", "-C", str(Path(__file__).resolve().parent.parent),
                              "archive", rev, "promptlab"], check=True, capture_output=True)
    subprocess.run(["tar", "-x", "-C", str(tree)], input=archive.stdout, check=True)
    env = {**os.environ, "PROMPTLAB_BENCH_ROOT": str(tree), "PROMPTLAB_NO_SPEEDUPS": "1"}
    child = subprocess.run([sys.executable, __file__, "--emit-json", *(["--quick"] * quick)],
                           env=env, capture_output=True, text=True, check=True)
    return json.loads(child.stdout)


def report(title: str, results: dict[str, list[float]]) -> dict[str, float]:
    med = {name: statistics.median(v) for name, v in results.items()}
    naive_us = med["naive (open/json.dumps/close)"]
    bare_us = med["bare orjson + os.write"]
    print(title)
    print(f"{'case':36} {'µs/entry':>9} {'min':>8} {'max':>8} {'naive/x':>8} {'x/bare':>7}")
    for name, us in med.items():
        lo, hi = min(results[name]), max(results[name])
        ratio = f"{naive_us / us:8.2f}" if name in results else ""
        print(f"{name:36} {us:9.2f} {lo:8.2f} {hi:8.2f} {ratio} {us / bare_us:7.2f}")
    return med


def run(quick: bool, baseline_rev: str | None) -> None:
    size = len(orjson.dumps({"v": 1, "id": "01M8D469Y9N0ZCS9SA52VYMRFA",
                             "timestamp": "2026-11-26T23:48:58.441600Z", "kind": "llm",
                             **fields()}))
    print(f"entry size: {size} bytes; medians of rounds, µs per entry")
    ours: dict[str, list[float]] = {}
    theirs: dict[str, list[float]] = {}
    passes = 2 if baseline_rev else 1
    for _ in range(passes):  # interleave this promptlab and the older one
        for name, values in measure(quick).items():
            ours.setdefault(name, []).extend(values)
        if baseline_rev:
            for name, values in measure_baseline(baseline_rev, quick).items():
                theirs.setdefault(name, []).extend(values)
    med = report("\nthis promptlab:", ours)
    llm_results = measure_llm(quick)
    if isinstance(llm_results, str):
        print(f"\n{llm_results}")
    else:
        naive_us = med["naive (open/json.dumps/close)"]
        print("\nllm, same run (one distinct response per call):")
        for name, values in llm_results.items():
            us = statistics.median(values)
            print(f"{name:36} {us:9.1f} {min(values):8.1f} {max(values):8.1f} "
                  f"{naive_us / us:8.3f}   Logger.log is {us / med['Logger.log']:,.0f}x faster")

    threads, per_thread = 4, 2000 if quick else 5000
    tmp = Path(tempfile.mkdtemp(prefix="bench-threads-"))
    mt_logger = Logger(tmp / "threads")
    f = fields()

    def worker() -> None:
        for _ in range(per_thread):
            mt_logger.log(**f)

    start = time.perf_counter()
    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    print(f"\n{threads} threads through one Logger: "
          f"{threads * per_thread / (time.perf_counter() - start):,.0f} entries/s")
    fsync_logger = Logger(tmp / "fsync", fsync=True)
    fsync_us = statistics.median(timed(lambda: fsync_logger.log(**f), 50) for _ in range(3))
    print(f"Logger.log, fsync=True: {fsync_us:,.0f} µs")

    api, naive_us = med["Logger.log"], med["naive (open/json.dumps/close)"]
    print(f"\nLogger.log: {api:.2f} µs, {naive_us / api:.2f}x faster than the naive logger "
          f"and {api / med['bare orjson + os.write']:.2f}x the bare orjson+os.write.")
    if baseline_rev:
        old = report(f"\npromptlab at {baseline_rev} (pure-Python path), child processes "
                     "interleaved with the rounds above:", theirs)
        old_ratio = old["naive (open/json.dumps/close)"] / old["Logger.log"]
        new_ratio = naive_us / api
        verdict = "no slower" if new_ratio >= old_ratio * 0.97 else "SLOWER"
        print(f"\nbar: naive/Logger.log {new_ratio:.2f}x now vs {old_ratio:.2f}x at "
              f"{baseline_rev} -> {verdict} (same-run ratios; 3% noise allowance)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds")
    parser.add_argument("--baseline-rev", metavar="REV",
                        help="also measure promptlab at this git revision (pure Python)")
    parser.add_argument("--emit-json", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.emit_json:
        print(json.dumps(measure(args.quick)))
    else:
        run(args.quick, args.baseline_rev)
