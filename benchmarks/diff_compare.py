"""Check that `promptlab compare --json` gives the same answers as an earlier checkout.

    git archive HEAD promptlab | tar -x -C /tmp/before      # before changing anything
    python benchmarks/diff_compare.py --before /tmp/before
    python benchmarks/diff_compare.py --before /tmp/before --logs /tmp/pl/units   # and these

Generates a few logs with `bench_compare.generate` — per-unit (unit ids, values fetched
for the rank tests and the bootstrap), per-call (no unit ids), some calls without unit ids,
values out of range or not numbers, a time window, a metric subset, an experiment's
variants, a paired experiment — then runs `promptlab compare
... --json` from the earlier checkout (`PYTHONPATH`) and from this tree on each, and
compares the two documents value by value: every float must be the same double. Prints
each case and the first differences; exits 1 when any case differs. Both processes read
the same index, so the earlier checkout must know every migration of this one.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_compare import generate

REPO = Path(__file__).resolve().parent.parent


def _rewrite(log_dir: Path, change: Any) -> None:
    """Apply `change(i, entry) -> entry` to every line of the generated logs."""
    i = 0
    for path in sorted(log_dir.glob("*.jsonl")):
        lines = []
        for line in path.read_bytes().splitlines():
            lines.append(orjson.dumps(change(i, orjson.loads(line))))
            i += 1
        path.write_bytes(b"\n".join(lines) + b"\n")


def _no_units_every_7th(i: int, entry: dict[str, Any]) -> dict[str, Any]:
    if i % 7 == 0:
        entry.pop("unit_id", None)
    return entry


def _experiment(i: int, entry: dict[str, Any]) -> dict[str, Any]:
    entry["experiment"] = "exp-1"
    entry["variant"] = "control" if entry["prompt_version"] == "v1" else "treatment"
    return entry


def _odd_values(i: int, entry: dict[str, Any]) -> dict[str, Any]:
    """Values the index keeps but compare must drop or count: out of range (|x| > 1e150),
    not numbers, huge integers."""
    if i % 97 == 0:
        entry["latency_ms"] = 1e200
    if i % 89 == 0:
        entry["cost_usd"] = "n/a"
    if i % 83 == 0:
        entry["latency_ms"] = -1e151
    if i % 79 == 0 and "scores" in entry:
        entry["scores"]["quality"] = 1e300
    if i % 73 == 0:
        entry["output_tokens"] = 2**63 - 1
    return entry


def _paired_items(i: int, entry: dict[str, Any]) -> dict[str, Any]:
    """Items under both versions (the versions were drawn per call): a paired design."""
    entry["item_id"] = f"item-{i % 1_500}"
    return _experiment(i, entry)


# name -> (entries, unit ids, rewrite or None, compare arguments)
CASES: dict[str, tuple[int, int, Any, list[str]]] = {
    "per-unit": (30_000, 6_000, None, ["v1", "v2"]),
    "per-unit, few calls per unit": (6_000, 4_000, None, ["v1", "v2"]),
    "per-call (no unit ids)": (30_000, 0, None, ["v1", "v2"]),
    "per-unit, every 7th call without unit id": (20_000, 4_000, _no_units_every_7th,
                                                 ["v1", "v2"]),
    "per-unit, odd values (out of range, not numbers)": (20_000, 4_000, _odd_values,
                                                          ["v1", "v2"]),
    "per-unit, time window": (20_000, 4_000, None,
                              ["v1", "v2", "--since", "2026-01-01T00:00:00.5Z",
                               "--until", "2026-01-08"]),
    "per-unit, metric subset": (20_000, 4_000, None,
                                ["v1", "v2", "--metric", "relevance", "--metric",
                                 "latency_ms"]),
    "per-unit, sequential, bh": (20_000, 4_000, None,
                                 ["v1", "v2", "--sequential", "--correction", "bh"]),
    "experiment variants, per-unit": (20_000, 4_000, _experiment,
                                      ["control", "treatment", "--experiment", "exp-1"]),
    "experiment paired by item": (12_000, 0, _paired_items,
                                  ["control", "treatment", "--experiment", "exp-1"]),
    "small per-unit (exact Mann-Whitney)": (120, 40, None, ["v1", "v2"]),
}


def run(tree: Path | None, log_dir: Path, args: list[str]) -> dict[str, Any]:
    env = {**os.environ, "PROMPTLAB_LOG_DIR": str(log_dir)}
    if tree is not None:
        env["PYTHONPATH"] = str(tree)
    else:
        env["PYTHONPATH"] = str(REPO)
    proc = subprocess.run([sys.executable, "-m", "promptlab", "compare", *args, "--json"],
                          capture_output=True, text=True, env=env, cwd=tempfile.gettempdir())
    if proc.returncode not in (0, 1):
        raise SystemExit(f"compare {' '.join(args)} failed ({proc.returncode}) with "
                         f"{tree or REPO}:\n{proc.stderr}")
    return json.loads(proc.stdout)


def differences(old: Any, new: Any, path: str = "") -> list[str]:
    """Where two JSON documents differ: floats compared as doubles (NaN never appears)."""
    if type(old) is not type(new):
        return [f"{path}: {old!r} -> {new!r}"]
    if isinstance(old, dict):
        out = []
        for key in sorted(set(old) | set(new), key=str):
            if key not in old or key not in new:
                out.append(f"{path}.{key}: only {'before' if key in old else 'now'}")
            else:
                out += differences(old[key], new[key], f"{path}.{key}")
        return out
    if isinstance(old, list):
        if len(old) != len(new):
            return [f"{path}: {len(old)} items -> {len(new)}"]
        return [d for i, (a, b) in enumerate(zip(old, new, strict=True))
                for d in differences(a, b, f"{path}[{i}]")]
    return [] if old == new else [f"{path}: {old!r} -> {new!r}"]


def count_numbers(doc: Any) -> int:
    if isinstance(doc, dict):
        return sum(count_numbers(v) for v in doc.values())
    if isinstance(doc, list):
        return sum(count_numbers(v) for v in doc)
    return int(isinstance(doc, int | float) and not isinstance(doc, bool))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--before", type=Path, required=True,
                        help="an earlier checkout (a folder holding its promptlab package)")
    parser.add_argument("--logs", type=Path, nargs="*", default=[],
                        help="existing log folders to compare too (`v1 v2`)")
    parser.add_argument("--keep", type=Path, help="generate the cases' logs here and keep them")
    args = parser.parse_args()
    root = args.keep or Path(tempfile.mkdtemp(prefix="diff-compare-"))
    failed = 0
    try:
        cases = [(name, root / re.sub(r"\W+", "-", name).strip("-"), spec)
                 for name, spec in CASES.items()]
        cases += [(str(d), d, None) for d in args.logs]
        for name, log_dir, spec in cases:
            cmd = ["v1", "v2"]
            if spec is not None:
                n, units, rewrite, cmd = spec
                if not (log_dir / "index.db").exists():
                    generate(log_dir, n, units=units)
                    if rewrite:
                        _rewrite(log_dir, rewrite)
            old, new = run(args.before, log_dir, cmd), run(None, log_dir, cmd)
            diff = differences(old, new)
            failed += bool(diff)
            metrics = old.get("metrics") or [m for p in old.get("pairs", []) for m in p["metrics"]]
            boot = sum("bootstrap_ci" in (m.get("robust") or {}) for m in metrics)
            print(f"{'DIFFERS' if diff else 'identical'}: {name} ({count_numbers(old)} numbers, "
                  f"{len(metrics)} metrics, {boot} bootstrap intervals)")
            for line in diff[:10]:
                print(f"    {line}")
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
