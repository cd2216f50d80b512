"""Benchmark `experiment status` at 1M log entries: SQL counts against the per-cell way.

    python benchmarks/bench_experiment_status.py --keep /tmp/bench-dash   # reuse a project
    python benchmarks/bench_experiment_status.py --n 100000              # scaled down

Uses bench_dashboard's project (the shipped experiments, `--n` generated entries, the
index built once). Times, as medians of --repeat runs in the same process and run:
`experiment_status` (grouped queries on the index, a few rows back) and, as the baseline,
the reference computation it replaced (`summarize_status` over every logged cell read from
the index), checking both give the same answer; then the whole process of
`promptlab experiment status NAME` and `--json`.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from bench_dashboard import project  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--experiment", default="code-review-ab")
    parser.add_argument("--keep", type=Path, help="folder to keep (and reuse) the project in")
    args = parser.parse_args()
    root = args.keep or Path(tempfile.mkdtemp(prefix="bench-status-"))
    project(root, args.n)

    from promptlab.config import load_settings
    from promptlab.experiments import load_experiment
    from promptlab.experiments.logged import logged_cells
    from promptlab.experiments.status import experiment_status, summarize_status
    from promptlab.index import Index

    settings = load_settings(root, env={})
    t = time.perf_counter()
    with Index(settings.log_dir) as index:
        index.sync()  # applies pending migrations and ingests anything new
        entries = index.conn.execute("SELECT count(*) FROM entries").fetchone()[0]
    print(f"{entries:,} entries; index opened and synced in {time.perf_counter() - t:.1f} s")
    exp = load_experiment(args.experiment, settings)

    def reference() -> dict:
        return summarize_status(exp, logged_cells(settings.log_dir, exp.name))

    sql_times, ref_times = [], []
    for _ in range(args.repeat):  # interleaved, so both see the same load
        t = time.perf_counter()
        new = experiment_status(exp, settings.log_dir)
        sql_times.append((time.perf_counter() - t) * 1000)
        t = time.perf_counter()
        old = reference()
        ref_times.append((time.perf_counter() - t) * 1000)
    assert json.dumps(new) == json.dumps(old), "the SQL counts differ from the reference"
    sql, ref = statistics.median(sql_times), statistics.median(ref_times)
    print(f"{args.experiment}: {new['cells']:,} cells")
    print(f"experiment_status (SQL):              median {sql:7.0f} ms  max {max(sql_times):6.0f}")
    print(f"reference (every cell into Python):   median {ref:7.0f} ms  max {max(ref_times):6.0f}"
          f"  ({ref / sql:.1f}x the SQL time)")

    cli = Path(sys.executable).with_name("promptlab")
    env = {**os.environ, "NO_COLOR": "1"}
    for extra in ([], ["--json"]):
        times = []
        for _ in range(args.repeat):
            t = time.perf_counter()
            subprocess.run([str(cli), "experiment", "status", args.experiment, *extra],
                           cwd=root, env=env, check=True, capture_output=True)
            times.append((time.perf_counter() - t) * 1000)
        print(f"promptlab experiment status {' '.join(extra):6}   median "
              f"{statistics.median(times):7.0f} ms  (whole process)")
    times = []
    for _ in range(args.repeat):
        t = time.perf_counter()
        subprocess.run([str(cli), "--help"], cwd=root, env=env, check=True, capture_output=True)
        times.append((time.perf_counter() - t) * 1000)
    print(f"promptlab --help (start-up alone)    median {statistics.median(times):7.0f} ms")


if __name__ == "__main__":
    main()
