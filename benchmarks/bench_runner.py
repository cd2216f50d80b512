"""How fast is the experiment runner? Medians, and ratios vs baselines from the same run.

    python benchmarks/bench_runner.py            # full run (~30 s)
    python benchmarks/bench_runner.py --quick    # fewer cells and rounds

1. echo provider, end to end — load the experiment, render every cell, call, score, log
   (JSONL writes included): cells per second. Target ≥ 2,000/s, so promptlab is never the
   bottleneck. Baseline: the same work as a bare single-threaded loop (render, echo,
   score, `logger.log`) — the floor of what any runner on this logger could do.
2. a provider that sleeps 50 ms, at concurrency 16: achieved throughput as a share of
   the ideal 16 / 0.05 s = 320 cells/s. Target ≥ 85%.
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer cells and rounds")
    args = parser.parse_args()
    os.environ.pop("PROMPTLAB_LOG_DIR", None)
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs")
    bench_echo(items=1000 if args.quick else 5000, rounds=3 if args.quick else 5)
    bench_sleep(items=160 if args.quick else 640, rounds=3 if args.quick else 5)


if __name__ == "__main__":
    main()
