"""How fast is the experiment runner? Medians, and ratios vs baselines from the same run.

    python benchmarks/bench_runner.py            # full run (~30 s)
    python benchmarks/bench_runner.py --quick    # fewer cells and rounds

1. echo provider, end to end — load the experiment, render every cell, call, score, log
   (JSONL writes included): cells per second. Target ≥ 2,000/s, so promptlab is never the
   bottleneck. Baseline: the same work as a bare single-threaded loop (render, echo,
   score, `logger.log`) — the floor of what any runner on this logger could do.
2. a provider that sleeps 50 ms, at concurrency 16: achieved throughput as a share of
   the ideal 16 / 0.05 s = 320 cells/s. Target ≥ 85%.
3. the openai provider against a local HTTP server that answers at once, concurrency 8:
   cells per second with the wall-clock deadline on every socket operation, against the
   same runs with httpx's plain per-operation timeouts (rounds alternate). What the
   deadline costs.
4. the response cache: a put (redacted through the log's rules) and a get, per call,
   against the same without redaction.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from promptlab.config import load_settings  # noqa: E402
from promptlab.experiments import load_experiment  # noqa: E402
from promptlab.experiments.runner import RunOptions, run_experiment  # noqa: E402

CODE = ("def average(values):\n    total = 0\n    for i in range(1, len(values)):\n"
        "        total += values[i]\n    return total / len(values)\n")

SLEEPER = """
import time
def answer(user):
    time.sleep(0.05)
    return "ok"
"""


def make_project(root: Path, items: int, provider: str, concurrency: int) -> Path:
    shutil.copytree(REPO / "prompts", root / "prompts", symlinks=True)
    exp_dir = root / "experiments"
    exp_dir.mkdir()
    (exp_dir / "sleeper.py").write_text(SLEEPER)
    with (exp_dir / "data.jsonl").open("w") as fh:
        for n in range(items):
            fh.write(json.dumps({"id": f"item-{n}", "vars": {"code": CODE + f"# {n}\n"},
                                 "expected": "average"}) + "\n")
    (exp_dir / "bench.toml").write_text(f'''
prompt = "code-review"
[variants]
v1 = 50
v2 = 50
[dataset]
path = "data.jsonl"
[provider]
{provider}
[[scorers]]
name = "mentions"
type = "icontains"
value = "{{{{ expected }}}}"
[run]
concurrency = {concurrency}
''')
    return root


def timed_run(root: Path, log_dir: Path) -> tuple[float, int]:
    settings = load_settings(root, log_dir=log_dir)
    start = time.perf_counter()
    exp = load_experiment("bench", settings)
    result = run_experiment(exp, RunOptions(cache=False))
    elapsed = time.perf_counter() - start
    assert result.errors == 0 and result.done == result.planned, result.first_errors
    return elapsed, result.done


def baseline_loop(root: Path, log_dir: Path) -> tuple[float, int]:
    """Render, echo, score and log every cell in a plain loop (no threads, no runner)."""
    from promptlab.logs.logger import Logger
    from promptlab.registry import Registry

    start = time.perf_counter()
    registry = Registry(root / "prompts")
    prompts = {v: registry.get("code-review", version=v) for v in ("v1", "v2")}
    logger = Logger(log_dir)
    rows = [json.loads(line) for line in (root / "experiments" / "data.jsonl").open()]
    n = 0
    for row in rows:
        for variant, prompt in prompts.items():
            rendered = prompt.render(row["vars"])
            text = rendered.text
            logger.log(model=rendered.model, provider="echo", system_prompt=rendered.system,
                       user_message=rendered.user, assistant_response=text,
                       input_tokens=len(text.split()), output_tokens=len(text.split()),
                       latency_ms=0.0, **{k: v for k, v in rendered.stamp.items() if v is not None},
                       experiment="bench", variant=variant, item_id=row["id"],
                       unit_id=row["id"], repeat=0, run_id="baseline",
                       scores={"mentions": row["expected"] in text.lower()}, status="ok")
            n += 1
    return time.perf_counter() - start, n


def bench_echo(items: int, rounds: int) -> None:
    rates, base_rates = [], []
    for _ in range(rounds):
        with tempfile.TemporaryDirectory() as tmp:
            root = make_project(Path(tmp) / "p", items, 'type = "echo"', concurrency=4)
            elapsed, cells = timed_run(root, Path(tmp) / "logs")
            rates.append(cells / elapsed)
            b_elapsed, b_cells = baseline_loop(root, Path(tmp) / "logs-baseline")
            base_rates.append(b_cells / b_elapsed)
    median, base = statistics.median(rates), statistics.median(base_rates)
    print(f"echo, end to end ({2 * items} cells, {rounds} rounds, concurrency 4):")
    print(f"  runner          median {median:8,.0f} cells/s   "
          f"(min {min(rates):,.0f}, max {max(rates):,.0f})   target ≥ 2,000  "
          f"{'OK' if median >= 2000 else 'MISSED'}")
    print(f"  baseline loop   median {base:8,.0f} cells/s   "
          f"runner / baseline = {median / base:.2f}")


def bench_sleep(items: int, rounds: int) -> None:
    shares = []
    ideal = 16 / 0.05
    for _ in range(rounds):
        with tempfile.TemporaryDirectory() as tmp:
            root = make_project(Path(tmp) / "p", items,
                                'type = "python"\nfunction = "sleeper.py:answer"', concurrency=16)
            elapsed, cells = timed_run(root, Path(tmp) / "logs")
            shares.append(cells / elapsed / ideal)
    median = statistics.median(shares)
    print(f"50 ms provider, concurrency 16 ({2 * items} cells, {rounds} rounds):")
    print(f"  achieved        median {median * ideal:8,.1f} cells/s = {median:.1%} of the ideal "
          f"{ideal:.0f}/s (min {min(shares):.1%}, max {max(shares):.1%})   target ≥ 85%  "
          f"{'OK' if median >= 0.85 else 'MISSED'}")


def bench_http(items: int, rounds: int) -> None:
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from promptlab.providers import _http

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("content-length", 0)))
            body = json.dumps({"model": "m", "usage": {"prompt_tokens": 9,
                                                       "completion_tokens": 3},
                               "choices": [{"message": {"content": "average bug"}}]}).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    provider = f'type = "openai"\nmodel = "m"\nbase_url = "{url}"'
    install = _http._install_deadlines
    rates: dict[str, list[float]] = {"deadline": [], "plain": []}
    try:
        for _ in range(rounds):
            for arm in ("deadline", "plain"):
                _http._install_deadlines = install if arm == "deadline" else (lambda c: None)
                with tempfile.TemporaryDirectory() as tmp:
                    root = make_project(Path(tmp) / "p", items, provider, concurrency=8)
                    elapsed, cells = timed_run(root, Path(tmp) / "logs")
                    rates[arm].append(cells / elapsed)
    finally:
        _http._install_deadlines = install
        server.shutdown()
    with_deadline, plain = (statistics.median(rates[a]) for a in ("deadline", "plain"))
    print(f"openai provider, local server, concurrency 8 ({2 * items} cells, {rounds} rounds):")
    print(f"  with deadline   median {with_deadline:8,.0f} cells/s")
    print(f"  plain httpx     median {plain:8,.0f} cells/s   deadline / plain = "
          f"{with_deadline / plain:.2f}")


def bench_cache(n: int, rounds: int) -> None:
    from promptlab.experiments.cache import ResponseCache
    from promptlab.logs.redact import redact_text
    from promptlab.providers.base import Response

    text = ("The function skips the first element: range(1, len(values)) should be "
            "range(len(values)). " * 8)
    costs: dict[str, list[float]] = {"redacted": [], "plain": []}
    for _ in range(rounds):
        for arm, redact in (("redacted", redact_text), ("plain", None)):
            with (tempfile.TemporaryDirectory() as tmp,
                  ResponseCache(Path(tmp) / "cache.db", redact=redact) as cache):
                start = time.perf_counter()
                for i in range(n):
                    cache.put(f"k{i}", Response(text=text, input_tokens=9, model="m"), "x")
                for i in range(n):
                    cache.get(f"k{i}")
                costs[arm].append((time.perf_counter() - start) / n * 1e6)
    red, plain = (statistics.median(costs[a]) for a in ("redacted", "plain"))
    print(f"response cache, put + get of a {len(text)}-character answer ({n} × {rounds}):")
    print(f"  redacted        median {red:8.1f} µs per put+get")
    print(f"  plain           median {plain:8.1f} µs per put+get   redacted / plain = "
          f"{red / plain:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer cells and rounds")
    args = parser.parse_args()
    os.environ.pop("PROMPTLAB_LOG_DIR", None)
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs")
    bench_echo(items=1000 if args.quick else 5000, rounds=3 if args.quick else 5)
    bench_sleep(items=160 if args.quick else 640, rounds=3 if args.quick else 5)
    bench_http(items=250 if args.quick else 1000, rounds=3 if args.quick else 5)
    bench_cache(n=2000, rounds=3 if args.quick else 5)


if __name__ == "__main__":
    main()
