"""Benchmark: `promptlab compare` as a whole process over a large log index.

    python benchmarks/bench_compare.py            # 1,000,000 entries (two versions, 3 scores)
    python benchmarks/bench_compare.py --n 200000 --runs 7
    python benchmarks/bench_compare.py --units 200000        # 1M calls from 200,000 users
    python benchmarks/bench_compare.py --before /tmp/old     # an earlier checkout, same run
    python benchmarks/bench_compare.py --keep /tmp/d --before /tmp/old --before-logs /tmp/d0
        # an earlier checkout reading its own copy of the logs (an index without newer
        # migrations, which it would refuse)

Generates live-traffic entries (two versions of one prompt, scores `correct` (bool),
`quality` (1–5) and `relevance` (0–1), latency, tokens, cost, ~2 % errors) as JSONL,
ingests them through the index's own sync, then times — separately from the ingest —
`promptlab compare v1 v2 --json` as a fresh process, several runs, and reports medians of
wall time and of CPU time (user + system of the child: on a loaded machine the CPU time is
the steadier figure). The commands run in alternating rounds (one run of each per round), so
a change in the machine's load hits them alike; the load and the share of CPU time the host
stole while they ran are printed with the figures.

Baselines measured in the same run:
  * `python -c "import promptlab.cli"` — the floor any promptlab command pays;
  * a naive compare — fetch every value into Python, then run the same tests with
    scipy.stats — the straightforward implementation the SQL push-down replaces.
  * with `--before DIR`, the same command from an earlier checkout (same-run ratio: of the
    medians, and the median of each round's ratio).
Target (issues 7 and 15): the compare process ≤ 2 s at 1,000,000 entries, warm.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import orjson
from _machine import cpu_ticks, stolen_since

CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def _ulids(n: int, start_ms: int, rng: np.random.Generator) -> list[str]:
    """n distinct, time-sorted 26-character ULIDs (1 ms apart, random tails)."""
    out = []
    rand = rng.integers(0, 2**62, size=n)
    for i in range(n):
        value = ((start_ms + i) << 80) | (int(rand[i]) << 18) | (i & 0x3FFFF)
        chars = []
        for _ in range(26):
            chars.append(CROCKFORD[value & 31])
            value >>= 5
        out.append("".join(reversed(chars)))
    return out


def generate(log_dir: Path, n: int, seed: int = 7, units: int = 0) -> None:
    """Write n entries as JSONL (one file per simulated day); with `units`, each entry
    carries one of that many `unit_id`s (users making several calls each)."""
    rng = np.random.default_rng(seed)
    log_dir.mkdir(parents=True, exist_ok=True)
    start_ms = 1_767_225_600_000  # 2026-01-01T00:00:00Z
    version = rng.integers(0, 2, size=n)
    user = rng.integers(0, units, size=n) if units else None
    if user is not None:  # a user's calls all go to one version
        version = user % 2
    error = rng.random(n) < 0.02
    correct = rng.random(n) < np.where(version == 1, 0.74, 0.72)
    quality = np.clip(np.round(rng.normal(np.where(version == 1, 3.55, 3.5), 1.0)), 1, 5)
    relevance = np.clip(rng.beta(5, 2, size=n) + version * 0.004, 0, 1)
    latency = rng.lognormal(np.where(version == 1, 6.9, 6.92), 0.5)
    out_tokens = rng.poisson(np.where(version == 1, 240, 250))
    in_tokens = rng.poisson(600, size=n)
    ids = _ulids(n, start_ms, rng)
    per_day = max(1, n // 10)
    fh = None
    day = -1
    try:
        for i in range(n):
            if i // per_day != day:
                day = i // per_day
                if fh:
                    fh.close()
                fh = open(log_dir / f"2026-01-{day + 1:02d}.jsonl", "wb")  # noqa: SIM115
            ms = start_ms + day * 86_400_000 + i % per_day
            stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms / 1000))
            entry = {
                "v": 1, "id": ids[i], "timestamp": f"{stamp}.{ms % 1000:03d}000Z",
                "model": "gpt-4o-mini", "provider": "openai",
                "prompt_id": "support-reply", "prompt_version": f"v{version[i] + 1}",
                "user_message": f"Customer {i % 9973} asks about order {i}",
                "input_tokens": int(in_tokens[i]), "latency_ms": round(float(latency[i]), 2),
            }
            if user is not None:
                entry["unit_id"] = f"user-{user[i]}"
            if error[i]:
                entry.update(status="error", error="HTTP 500 from provider")
            else:
                ot = int(out_tokens[i])
                entry.update(
                    assistant_response=f"Thanks for reaching out about order {i}.",
                    output_tokens=ot,
                    cost_usd=round((int(in_tokens[i]) * 0.15 + ot * 0.6) / 1e6, 9),
                    status="ok",
                    scores={"correct": bool(correct[i]), "quality": int(quality[i]),
                            "relevance": round(float(relevance[i]), 4)},
                )
            fh.write(orjson.dumps(entry) + b"\n")
    finally:
        if fh:
            fh.close()


def ingest(log_dir: Path) -> float:
    from promptlab.index.core import Index

    started = time.perf_counter()
    with Index(log_dir) as index:
        index.sync()
    return time.perf_counter() - started


NAIVE = r"""
import sqlite3, sys
import numpy as np
from scipy import stats
conn = sqlite3.connect(sys.argv[1])
rows = conn.execute(
    "SELECT prompt_version, status, latency_ms, output_tokens, cost_usd FROM entries "
    "WHERE kind = 'llm' AND prompt_id = 'support-reply'").fetchall()
scores = conn.execute(
    "SELECT s.prompt_version, s.name, s.value FROM scores s JOIN entries e "
    "ON e.rowid = s.entry_rowid WHERE e.prompt_id = 'support-reply'").fetchall()
out = {}
for col in (2, 3, 4):
    a = np.array([r[col] for r in rows if r[0] == 'v1' and r[1] == 'ok'], float)
    b = np.array([r[col] for r in rows if r[0] == 'v2' and r[1] == 'ok'], float)
    out[col] = stats.ttest_ind(b, a, equal_var=False).pvalue
for name in ('correct', 'quality', 'relevance'):
    a = np.array([v for p, n, v in scores if p == 'v1' and n == name])
    b = np.array([v for p, n, v in scores if p == 'v2' and n == name])
    out[name] = stats.ttest_ind(b, a, equal_var=False).pvalue
print(out)
"""


CPU: dict[int, list[float]] = {}  # id(wall-times list) -> CPU seconds of the same runs


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def time_processes(cmds: dict[str, tuple[list[str], dict[str, str]]], runs: int
                   ) -> dict[str, list[float]]:
    """Wall seconds of `runs` fresh processes of each command, in alternating rounds (one
    of each per round, so a change in the machine's load hits all of them alike), after
    one untimed run of each (warm: the page cache holds the index, and a copied log folder
    has been synced once); their CPU seconds go to CPU[id(result)]."""
    for cmd, env in cmds.values():
        subprocess.run(cmd, capture_output=True, env=env)
    times: dict[str, list[float]] = {label: [] for label in cmds}
    cpu: dict[str, list[float]] = {label: [] for label in cmds}
    for _ in range(runs):
        for label, (cmd, env) in cmds.items():
            started, cpu0 = time.perf_counter(), _children_cpu()
            proc = subprocess.run(cmd, capture_output=True, env=env, text=True)
            times[label].append(time.perf_counter() - started)
            cpu[label].append(_children_cpu() - cpu0)
            if proc.returncode not in (0, 1):
                raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr}")
    for label in cmds:
        CPU[id(times[label])] = cpu[label]
    return times


def cpu_median(times: list[float]) -> float:
    return statistics.median(CPU[id(times)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="entries (default 1,000,000)")
    parser.add_argument("--runs", type=int, default=5, help="timed runs of each process")
    parser.add_argument("--units", type=int, default=0,
                        help="give entries one of this many unit_ids (e.g. 200000)")
    parser.add_argument("--keep", type=Path, help="reuse/keep the data in this folder")
    parser.add_argument("--before", type=Path,
                        help="a checkout of an earlier promptlab (e.g. `git worktree add "
                             "/tmp/before <commit>`): its compare is timed in the same run")
    parser.add_argument("--before-logs", type=Path,
                        help="the log folder --before reads (default: the same as now); a "
                             "copy whose index has no migration the earlier checkout lacks")
    args = parser.parse_args()

    tmp = None
    if args.keep:
        log_dir = args.keep
    else:
        tmp = Path(tempfile.mkdtemp(prefix="bench-compare-"))
        log_dir = tmp / "logs"
    try:
        if not (log_dir / "index.db").exists():
            t0 = time.perf_counter()
            generate(log_dir, args.n, units=args.units)
            gen_s = time.perf_counter() - t0
            ingest_s = ingest(log_dir)
            print(f"generated {args.n:,} entries in {gen_s:.1f} s; "
                  f"ingested in {ingest_s:.1f} s ({args.n / ingest_s:,.0f} entries/s)")
        else:
            print(f"reusing the index in {log_dir}")
        env = {**os.environ, "PROMPTLAB_LOG_DIR": str(log_dir)}
        promptlab = shutil.which("promptlab") or sys.executable
        base = [promptlab] if promptlab.endswith("promptlab") else [sys.executable, "-m",
                                                                     "promptlab"]
        cmds = {"compare": ([*base, "compare", "v1", "v2", "--json"], env),
                "table": ([*base, "compare", "v1", "v2"], env)}
        if args.before:
            before_env = {**env, "PYTHONPATH": str(args.before)}
            if args.before_logs:
                before_env["PROMPTLAB_LOG_DIR"] = str(args.before_logs)
            cmds["before"] = ([sys.executable, "-m", "promptlab", "compare", "v1", "v2",
                               "--json"], before_env)
        cmds["floor"] = ([sys.executable, "-c", "import promptlab.cli"], env)
        ticks, load = cpu_ticks(), os.getloadavg()[0]
        timed = time_processes(cmds, args.runs)
        stolen = stolen_since(ticks)
        compare, table, floor = timed["compare"], timed["table"], timed["floor"]
        before = timed.get("before")
        naive = time_processes({"naive": ([sys.executable, "-c", NAIVE,
                                           str(log_dir / "index.db")], env)},
                               max(1, args.runs // 2))["naive"]
        print(f"machine: load {load:.1f} -> {os.getloadavg()[0]:.1f} on {os.cpu_count()} "
              f"cores" + (f", {stolen:.0%} of CPU time stolen by the host while timed"
                          if stolen is not None else ""))
        med = statistics.median
        print(f"promptlab compare v1 v2 --json : median {med(compare):.3f} s "
              f"(runs: {', '.join(f'{t:.2f}' for t in compare)}), "
              f"CPU {cpu_median(compare):.3f} s  target <= 2 s")
        print(f"promptlab compare v1 v2 (table): median {med(table):.3f} s")
        if before:
            rounds = [b / c for b, c in zip(before, compare, strict=True)]
            print(f"before ({args.before}) --json  : median {med(before):.3f} s "
                  f"(runs: {', '.join(f'{t:.2f}' for t in before)}), "
                  f"CPU {cpu_median(before):.3f} s -> now {med(before) / med(compare):.2f}x "
                  f"faster (wall), {cpu_median(before) / cpu_median(compare):.2f}x (CPU); "
                  f"per round {med(rounds):.2f}x (median of {', '.join(f'{r:.2f}' for r in rounds)})")
        print(f"baseline: import promptlab.cli : median {med(floor):.3f} s, "
              f"CPU {cpu_median(floor):.3f} s -> compare is {med(compare) / med(floor):.1f}x "
              f"the floor (wall), {cpu_median(compare) / cpu_median(floor):.1f}x (CPU)")
        print(f"baseline: naive fetch + scipy  : median {med(naive):.3f} s "
              f"-> compare is {med(naive) / med(compare):.1f}x faster")
        proc = subprocess.run([*base, "compare", "v1", "v2"], capture_output=True, env=env,
                              text=True)
        print(proc.stdout + proc.stderr)
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
