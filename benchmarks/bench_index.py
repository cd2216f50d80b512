"""Benchmark the log index: ingest, incremental sync, search, listing and costs.

    python benchmarks/bench_index.py              # 1,000,000 entries (≈1.5 GB of JSONL)
    python benchmarks/bench_index.py --n 200000   # scaled down
    python benchmarks/bench_index.py --n 200000 --keep /tmp/bench-logs   # reuse the data

Generates N realistic entries of about 1.5 KB (system prompt, user message, response,
tokens, prompts, experiments, tags, scores, some feedback and traces) in daily JSONL files,
then measures, each against a baseline measured in the same run:

- ingest rate end to end (JSONL → indexed with FTS) vs a straightforward load (orjson parse,
  regular FTS5 table with stored content, explicit inserts in 10k-row transactions);
- incremental sync of 1,000 new entries into the big index;
- `promptlab logs search` for a rare and a very common term, whole processes (median of 5);
- `promptlab logs -n 20` and `promptlab costs --by day`, whole processes (median of 5);
- `promptlab logs --help` start-up.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
RARE_TERM = "zebrafishlike"  # planted in a handful of entries
COMMON_TERM = "function"  # in every entry

MODELS = [
    ("gpt-4o-mini", "openai", 0.15, 0.60), ("gpt-4o", "openai", 2.5, 10.0),
    ("claude-sonnet-4-5", "anthropic", 3.0, 15.0), ("claude-haiku-4-5", "anthropic", 1.0, 5.0),
    ("gemini-2.5-flash", "google", 0.3, 2.5), ("llama-3.1-8b-local", "openai", None, None),
]
PROMPTS = [("code-review", ["v1", "v2", "v3"]), ("summarization", ["v1", "v2"]),
           ("triage", ["v1", "v2", "v3", "v4"]), ("support-reply", ["v1"])]
TAGS = ["prod", "staging", "eval", "batch", "canary", "nightly"]
SYSTEMS = [
    "You are a meticulous code reviewer. Look for bugs, security problems, unclear names and "
    "missing tests. Answer with a short list of findings, most severe first, each with the "
    "line it concerns and a concrete fix. Do not restate the code. If the function is "
    "correct, say so in one sentence and suggest at most one improvement.",
    "You summarise documents for busy engineers. Keep the summary under five sentences, "
    "lead with the decision or the result, and name every system, owner and date that the "
    "text mentions. Never invent facts that are not in the document.",
    "You triage incoming support tickets. Classify each into billing, outage, bug, feature "
    "request or question; estimate the severity from one to four; and draft a one-line "
    "reply that acknowledges the customer's problem without promising a date.",
]


def make_vocab(rng: random.Random, size: int = 20000) -> list[str]:
    letters = "abcdefghijklmnopqrstuvwxyz"
    words = {"".join(rng.choice(letters) for _ in range(rng.randint(3, 10))) for _ in range(size)}
    words.discard(RARE_TERM)
    words.discard(COMMON_TERM)
    return sorted(words)


def ulid(ms: int, rng: random.Random) -> str:
    value = (ms << 80) | rng.getrandbits(80)
    return "".join(CROCKFORD[(value >> (5 * i)) & 31] for i in range(25, -1, -1))


def generate(log_dir: Path, n: int, *, seed: int = 7, days: int = 60,
             start_ms: int = 1_767_225_600_000, rare_every: int = 100_000) -> dict[str, int]:
    """Write n entries over `days` daily files. Returns counts of what was planted."""
    rng = random.Random(seed)
    vocab = make_vocab(rng)
    weights = [1.0 / (i + 1) for i in range(len(vocab))]  # Zipf-like word frequencies
    cum = list(_accumulate(weights))
    log_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    span_ms = days * 86_400_000
    step = span_ms / max(n, 1)
    planted = {"rare": 0, "feedback": 0, "spans": 0}
    handles: dict[str, object] = {}
    last_llm_id = None
    for i in range(n):
        ms = start_ms + int(i * step)
        day = time.strftime("%Y-%m-%d", time.gmtime(ms / 1000))
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms / 1000)) + f".{ms % 1000:03d}000Z"
        fh = handles.get(day)
        if fh is None:
            for old in handles.values():
                old.close()  # type: ignore[attr-defined]
            fh = handles[day] = open(log_dir / f"{day}.jsonl", "ab")  # noqa: SIM115
        entry_id = ulid(ms, rng)
        roll = rng.random()
        if roll < 0.02 and last_llm_id:
            planted["feedback"] += 1
            entry = {"v": 1, "id": entry_id, "timestamp": stamp, "kind": "feedback",
                     "target": last_llm_id, "scores": {"thumbs_up": rng.random() < 0.7}}
        elif roll < 0.04:
            planted["spans"] += 1
            entry = {"v": 1, "id": entry_id, "timestamp": stamp, "kind": "span",
                     "trace_id": entry_id, "span_id": entry_id, "name": "handle_request",
                     "latency_ms": round(rng.uniform(50, 3000), 2), "status": "ok"}
        else:
            entry = _llm_entry(rng, vocab, cum, entry_id, stamp)
            if i % rare_every == rare_every // 2:
                entry["user_message"] += f" Please also check the {RARE_TERM} fixture."
                planted["rare"] += 1
            last_llm_id = entry_id
        fh.write(orjson.dumps(entry) + b"\n")  # type: ignore[attr-defined]
    for fh in handles.values():
        fh.close()  # type: ignore[attr-defined]
    return planted


def _accumulate(values: list[float]) -> list[float]:
    total, out = 0.0, []
    for v in values:
        total += v
        out.append(total)
    return out


def _words(rng: random.Random, vocab: list[str], cum: list[float], k: int) -> str:
    return " ".join(rng.choices(vocab, cum_weights=cum, k=k))


def _llm_entry(rng: random.Random, vocab: list[str], cum: list[float], entry_id: str,
               stamp: str) -> dict:
    model, provider, p_in, p_out = rng.choice(MODELS)
    prompt_id, versions = rng.choice(PROMPTS)
    version = rng.choice(versions)
    inp, out = rng.randint(200, 3000), rng.randint(50, 800)
    user = (f"Review this Python {COMMON_TERM}:\n" + _words(rng, vocab, cum, 60))
    response = _words(rng, vocab, cum, 50)
    entry: dict = {
        "v": 1, "id": entry_id, "timestamp": stamp, "kind": "llm",
        "model": model, "provider": provider,
        "system_prompt": rng.choice(SYSTEMS), "user_message": user,
        "assistant_response": response,
        "input_tokens": inp, "output_tokens": out,
        "latency_ms": round(rng.uniform(200, 9000), 2),
        "prompt_id": prompt_id, "prompt_version": version, "prompt_label": "current",
        "prompt_sha": f"{rng.getrandbits(256):064x}",
        "tags": rng.sample(TAGS, rng.randint(0, 2)),
        "status": "error" if rng.random() < 0.01 else "ok",
    }
    if p_in is not None:
        entry["cost_usd"] = round((inp * p_in + out * p_out) / 1e6, 8)
    if rng.random() < 0.3:
        entry.update(experiment=f"{prompt_id}-ab", variant=version,
                     unit_id=f"user-{rng.randint(1, 5000)}", item_id=str(rng.randint(1, 200)),
                     repeat=0, run_id="run-1",
                     scores={"finds_bug": rng.random() < 0.6, "quality": rng.randint(1, 5)})
    if not entry["tags"]:
        del entry["tags"]
    return entry


# -- baseline ---------------------------------------------------------------------------


def baseline_load(log_dir: Path, db_path: Path) -> int:
    """The straightforward load: orjson parse, stored-content FTS5, 10k-row transactions."""
    conn = sqlite3.connect(db_path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute(
        "CREATE TABLE entries (rowid INTEGER PRIMARY KEY, id TEXT UNIQUE, timestamp TEXT, "
        "model TEXT, prompt_id TEXT, prompt_version TEXT, experiment TEXT, variant TEXT, "
        "status TEXT, input_tokens INT, output_tokens INT, latency_ms REAL, cost_usd REAL, "
        "tags TEXT, raw TEXT)"
    )
    conn.execute("CREATE INDEX b_ts ON entries(timestamp)")
    conn.execute("CREATE INDEX b_prompt ON entries(prompt_id, prompt_version)")
    conn.execute("CREATE VIRTUAL TABLE fts USING fts5(system_prompt, user_message, "
                 "assistant_response)")
    n = 0
    rows, texts = [], []

    def flush() -> None:
        conn.execute("BEGIN")
        conn.executemany("INSERT OR IGNORE INTO entries VALUES "
                         "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
        conn.executemany("INSERT INTO fts (rowid, system_prompt, user_message, "
                         "assistant_response) VALUES (?, ?, ?, ?)", texts)
        conn.execute("COMMIT")
        rows.clear()
        texts.clear()

    for path in sorted(log_dir.glob("*.jsonl")):
        with open(path, "rb") as fh:
            for line in fh:
                e = orjson.loads(line)
                n += 1
                g = e.get
                rows.append((n, g("id"), g("timestamp"), g("model"), g("prompt_id"),
                             g("prompt_version"), g("experiment"), g("variant"), g("status"),
                             g("input_tokens"), g("output_tokens"), g("latency_ms"),
                             g("cost_usd"), orjson.dumps(g("tags")).decode(), None))
                texts.append((n, g("system_prompt"), g("user_message"), g("assistant_response")))
                if len(rows) >= 10_000:
                    flush()
    if rows:
        flush()
    conn.close()
    return n


# -- measurements -----------------------------------------------------------------------


def run_cli(args: list[str], log_dir: Path, repeat: int = 5) -> tuple[float, str]:
    """Median wall time (ms) of `promptlab ARGS` as a whole process (the console script next
    to this interpreter; a pyenv shim would add its own start-up), and its last stdout."""
    env = _env(log_dir)
    exe = Path(sys.executable).with_name("promptlab")
    cmd = [str(exe), *args] if exe.exists() else [sys.executable, "-m", "promptlab", *args]
    times, out = [], ""
    subprocess.run(cmd, env=env, capture_output=True, check=False)  # warm: bytecode, page cache
    for _ in range(repeat):
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
        times.append((time.perf_counter() - t0) * 1000)
        if proc.returncode:
            raise SystemExit(f"{' '.join(args)} failed: {proc.stderr.strip()}")
        out = proc.stdout
    return statistics.median(times), out


def _clean_index(log_dir: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        (log_dir / f"index.db{suffix}").unlink(missing_ok=True)


def _cpu() -> float:
    import resource

    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="entries to generate")
    parser.add_argument("--keep", type=Path, help="folder for the data, reused when present")
    parser.add_argument("--skip-baseline", action="store_true", help="skip the baseline load")
    parser.add_argument("--generate-only", action="store_true", help="only write the data")
    parser.add_argument("--processes-only", action="store_true",
                        help="only time the commands, on the index already built")
    args = parser.parse_args()

    from promptlab.index.core import Index

    tmp = Path(tempfile.mkdtemp(prefix="bench-index-"))
    log_dir = args.keep or tmp / "logs"
    if not (log_dir.exists() and any(log_dir.glob("*.jsonl"))):
        t0 = time.perf_counter()
        planted = generate(log_dir, args.n)
        print(f"generated {args.n:,} entries in {time.perf_counter() - t0:.1f} s "
              f"(planted: {planted})")
    if args.generate_only:
        shutil.rmtree(tmp, ignore_errors=True)
        return
    if args.processes_only:
        time_processes(log_dir)
        shutil.rmtree(tmp, ignore_errors=True)
        return
    _clean_index(log_dir)
    size = sum(p.stat().st_size for p in log_dir.glob("*.jsonl"))
    lines = sum(p.read_bytes().count(b"\n") for p in log_dir.glob("*.jsonl"))
    print(f"data: {lines:,} entries in {len(list(log_dir.glob('*.jsonl')))} files, "
          f"{size / 1e6:,.0f} MB, {size / max(lines, 1):,.0f} bytes/entry")
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at start")

    # 1. Ingest, end to end, against the straightforward load measured now.
    base_rate = None
    if not args.skip_baseline:
        base_db = tmp / "baseline.db"
        t0, c0 = time.perf_counter(), _cpu()
        n = baseline_load(log_dir, base_db)
        base_s, base_cpu = time.perf_counter() - t0, _cpu() - c0
        base_rate = n / base_s
        print(f"ingest  baseline (orjson, stored FTS5, 10k-row transactions): "
              f"{base_rate:,.0f} entries/s ({base_s:.1f} s wall, {base_cpu:.1f} s CPU)")
        for p in tmp.glob("baseline.db*"):
            p.unlink()
    t0, c0 = time.perf_counter(), _cpu()
    with Index(log_dir) as index:
        stats = index.sync()
    ingest_s, ingest_cpu = time.perf_counter() - t0, _cpu() - c0
    rate = stats.entries / ingest_s
    line = (f"ingest  promptlab sync: {rate:,.0f} entries/s ({ingest_s:.1f} s wall, "
            f"{ingest_cpu:.1f} s CPU on 2 threads, {stats.entries:,} entries)")
    if base_rate:
        line += f" = {rate / base_rate:.2f}x the baseline"
    print(line)
    db_size = sum(p.stat().st_size for p in log_dir.glob("index.db*"))
    print(f"        index size {db_size / 1e6:,.0f} MB ({db_size / size:.0%} of the JSONL)")

    # 2. Incremental sync of 1,000 new entries into the big index (median of 5 rounds; they
    # go to a file of their own, removed afterwards, so a kept data set stays as generated).
    times = []
    extra_file = log_dir / "2099-12-31.jsonl"
    for round_no in range(5):
        extra = tmp / "extra"
        shutil.rmtree(extra, ignore_errors=True)
        generate(extra, 1000, seed=100 + round_no, days=1, start_ms=4_102_358_400_000)
        with open(extra_file, "ab") as out:
            for p in sorted(extra.glob("*.jsonl")):
                out.write(p.read_bytes())
        with Index(log_dir) as index:
            _ = index.conn  # open before timing: the sync is what is measured
            t0 = time.perf_counter()
            new = index.sync().entries
            times.append((time.perf_counter() - t0) * 1000)
        assert new == 1000, new
    print(f"sync    1,000 new entries into the index: median {statistics.median(times):.0f} ms "
          f"(runs: {', '.join(f'{t:.0f}' for t in times)})")
    extra_file.unlink()
    with Index(log_dir) as index:
        index.sync()

    time_processes(log_dir)
    shutil.rmtree(tmp, ignore_errors=True)  # scratch space (and the data, unless --keep)


def time_processes(log_dir: Path) -> None:
    """Whole processes, median of 5, next to the interpreter's own start-up."""
    env_note = _prepare_bytecode()
    base_ms, _ = run_python(["-c", "pass"])
    click_ms, _ = run_python(["-c", "import click"])
    print(f"start-up reference: python -c pass {base_ms:.0f} ms, import click {click_ms:.0f} ms"
          f"{env_note}")
    for label, cli_args in [
        ("logs --help", ["logs", "--help"]),
        (f"logs search {RARE_TERM} (rare)", ["logs", "search", RARE_TERM]),
        (f"logs search {COMMON_TERM} (every entry)", ["logs", "search", COMMON_TERM]),
        (f"logs search {COMMON_TERM} --sort recent", ["logs", "search", COMMON_TERM, "--sort",
                                                     "recent"]),
        ("logs -n 20", ["logs", "-n", "20"]),
        ("logs -n 20 --model gpt-4o --tag prod", ["logs", "-n", "20", "--model", "gpt-4o",
                                                   "--tag", "prod"]),
        ("logs search function --prompt triage@v2", ["logs", "search", COMMON_TERM,
                                                     "--prompt", "triage@v2"]),
        ("costs --by day (all time)", ["costs", "--by", "day"]),
        ("costs --by model --since 2026-01-15T12:00", ["costs", "--by", "model", "--since",
                                                       "2026-01-15T12:00"]),
        ("trace (recent traces)", ["trace"]),
    ]:
        ms, out = run_cli(cli_args, log_dir)
        rows = max(0, len(out.splitlines()) - 2)
        print(f"process {label:<44} median {ms:5.0f} ms  ({ms - base_ms:+.0f} ms over bare "
              f"python; {rows} rows)")


_PYC = Path(tempfile.gettempdir()) / "promptlab-bench-pyc"


def _prepare_bytecode() -> str:
    """Time processes as an installed package runs them: with compiled bytecode, even where
    PYTHONDONTWRITEBYTECODE is set (a private PYTHONPYCACHEPREFIX keeps the checkout clean)."""
    if os.environ.get("PYTHONDONTWRITEBYTECODE"):
        return f" (bytecode cached in {_PYC}: PYTHONDONTWRITEBYTECODE is set here)"
    return ""


def _env(log_dir: Path | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(_PYC)
    if log_dir is not None:
        env["PROMPTLAB_LOG_DIR"] = str(log_dir)
    return env


def run_python(args: list[str], repeat: int = 5) -> tuple[float, str]:
    times = []
    for _ in range(repeat + 1):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, *args], env=_env(), capture_output=True, check=True)
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times[1:]), ""


if __name__ == "__main__":
    main()
