"""A/A calibration: with no true difference, each design's test says "significant" at the
rate α — inside the binomial 99 % interval around α over a few hundred seeded runs.

The split design goes through the whole path (JSONL → index → `promptlab.compare`), since
that is where the pairing is chosen; the others call the per-metric analysis on samples.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import orjson
import pytest

from promptlab.comparison._analyse import Agg, PairAgg, paired_result, unpaired_result

ALPHA = 0.05
RUNS = 300


def inside_99(hits: int, runs: int = RUNS, alpha: float = ALPHA) -> bool:
    from scipy.stats import binom

    low, high = binom.interval(0.99, runs, alpha)
    return low <= hits <= high


def agg_of(x: np.ndarray) -> Agg:
    return Agg(int(x.size), float(x.sum()), float((x * x).sum()),
               int(np.isin(x, (0.0, 1.0)).sum()), n_bool=0)


def significant(result) -> bool:
    return result.p_value is not None and result.p_value < ALPHA


def test_unpaired_binary_a_a():
    rng = np.random.default_rng(11)
    draws = rng.random((RUNS, 2, 60)) < 0.3
    hits = sum(significant(unpaired_result("ok", "higher", agg_of(a.astype(float)),
                                           agg_of(b.astype(float)), None, "v1", "v2",
                                           ALPHA, False))
               for a, b in draws)
    assert inside_99(hits), hits


def test_unpaired_skewed_numeric_a_a():
    rng = np.random.default_rng(12)
    draws = rng.lognormal(0.0, 1.0, size=(RUNS, 2, 60))
    hits = sum(significant(unpaired_result("latency_ms", "lower", agg_of(a), agg_of(b),
                                           (list(a), list(b)), "v1", "v2", ALPHA, False))
               for a, b in draws)
    assert inside_99(hits), hits


def test_paired_a_a():
    rng = np.random.default_rng(13)
    item = rng.normal(0, 2, size=(RUNS, 30))  # items differ a lot; pairing removes that
    va = item + rng.normal(0, 1, size=(RUNS, 30))
    vb = item + rng.normal(0, 1, size=(RUNS, 30))
    hits = 0
    for a, b in zip(va, vb, strict=True):
        agg = PairAgg(a.size, float(a.sum()), float(b.sum()), float((a * a).sum()),
                      float((b * b).sum()), float((a * b).sum()))
        hits += significant(paired_result("q", "higher", agg, list(b - a), "v1", "v2", ALPHA,
                                          False))
    assert inside_99(hits), hits


def split_entries(rng: np.random.Generator, experiment: str, users: int = 40,
                  pool: int = 8) -> list[bytes]:
    """Live traffic: users randomised to v1/v2, each asking 1–6 items from a shared pool;
    a rating with a strong user effect and no version effect."""
    lines = []
    user_effect = rng.normal(0, 1.5, size=users)
    item_effect = rng.normal(0, 0.5, size=pool)
    arm = rng.integers(0, 2, size=users)
    for u in range(users):
        for k in range(int(rng.integers(1, 7))):
            item = int(rng.integers(0, pool))
            rating = user_effect[u] + item_effect[item] + rng.normal(0, 0.3)
            variant = f"v{arm[u] + 1}"
            lines.append(orjson.dumps({
                "v": 1, "id": f"{experiment}-{u}-{k}", "timestamp": "2026-11-20T12:00:00Z",
                "prompt_id": "qa", "prompt_version": variant, "experiment": experiment,
                "variant": variant, "unit_id": f"user-{u}", "item_id": f"item-{item}",
                "scores": {"rating": float(rating)}}))
    return lines


def test_split_with_recurring_items_and_a_user_effect_a_a(tmp_path: Path):
    """Pairing by the recurring item ids (what the engine used to do) gave a 55 % false
    positive rate here; analysed by user, the unit of randomisation, it is α."""
    import promptlab
    from promptlab.index.core import Index

    rng = np.random.default_rng(14)
    log_dir = tmp_path / "logs"
    log_dir.mkdir()
    runs = 200
    with open(log_dir / "2026-11-20.jsonl", "wb") as fh:
        for r in range(runs):
            fh.write(b"\n".join(split_entries(rng, f"aa-{r}")) + b"\n")
    hits = 0
    with Index(log_dir) as index:
        index.sync()
        for r in range(runs):
            result = promptlab.compare("v1", "v2", experiment=f"aa-{r}", metrics=["rating"],
                                       log_dir=log_dir, index=index)
            pair = result.pairs[0]
            assert (pair.design, pair.unit) == ("unpaired", "unit_id")
            hits += significant(result.metrics[0])
    assert inside_99(hits, runs), hits


@pytest.mark.parametrize("design, expected", [("split", "unpaired"), ("paired", "paired")])
def test_the_experiment_files_design_decides(project: Path, log_dir: Path, design, expected):
    import promptlab

    (project / "experiments").mkdir()
    (project / "data.jsonl").write_text("")
    (project / "experiments" / "e.toml").write_text(
        f'prompt = "qa"\n[variants]\nv1 = 50\nv2 = 50\n[dataset]\npath = "../data.jsonl"\n'
        f'design = "{design}"\n')
    rng = np.random.default_rng(1)
    log_dir.mkdir(parents=True, exist_ok=True)
    lines = split_entries(rng, "e")
    if design == "paired":  # every item through both versions
        lines = [orjson.dumps({**orjson.loads(x), "id": f"{v}{i}", "variant": v,
                               "prompt_version": v})
                 for i, x in enumerate(lines) for v in ("v1", "v2")]
    (log_dir / "2026-11-20.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    result = promptlab.compare("v1", "v2", experiment="e", metrics=["rating"],
                               log_dir=log_dir)
    pair = result.to_dict()
    assert pair["design"] == expected
    assert pair["unit"] == ("item_id" if expected == "paired" else "unit_id")
    assert pair["design_reason"] == ("experiment design: paired by item" if expected == "paired"
                                     else "split design, randomised by unit_id")
    assert pair["design_reason"] in result.table()
