"""The percentile bootstrap: `stats.bootstrap_intervals` (several samples at once, sharing
resamples between samples of the same sizes) gives each sample the very interval it got
alone, and `compare` reports that interval for skewed metrics — per unit and paired."""

from __future__ import annotations

import random
from collections import defaultdict

import numpy as np
import pytest

from promptlab import stats as S

from .conftest import metric


def reference_interval(a, b=None, *, statistic="mean", alpha=0.05, n_boot=2000, seed=0,
                       max_cells=4_000_000):
    """One sample at a time, as stats.bootstrap_interval computed it before samples shared
    their resamples: A's resamples, then B's, from one generator seeded per sample."""
    stat = {"mean": np.mean, "median": np.median}[statistic]
    rng = np.random.default_rng(seed)

    def draws(x):
        out = np.empty(n_boot)
        chunk = max(1, max_cells // max(1, x.size))
        for start in range(0, n_boot, chunk):
            k = min(chunk, n_boot - start)
            out[start:start + k] = stat(x[rng.integers(0, x.size, size=(k, x.size))], axis=1)
        return out

    xa = np.asarray(a, dtype=float)
    if xa.size < 2:
        return None
    boots = draws(xa)
    if b is not None:
        xb = np.asarray(b, dtype=float)
        if xb.size < 2:
            return None
        boots = draws(xb) - boots
    lo, hi = np.quantile(boots, [alpha / 2, 1 - alpha / 2])
    return (float(lo), float(hi))


@pytest.mark.parametrize("statistic", ["mean", "median"])
@pytest.mark.parametrize("max_cells", [4_000_000, 1_000, 1])
def test_intervals_drawn_together_equal_each_drawn_alone(statistic, max_cells):
    rng = np.random.default_rng(4)
    samples = [
        (rng.lognormal(0, 1, 120), rng.lognormal(0, 1, 90)),
        (rng.lognormal(5, 2, 120), rng.lognormal(5, 2, 90)),  # the same sizes: shared draws
        (rng.lognormal(0, 1, 90), rng.lognormal(0, 1, 120)),  # swapped sizes: drawn apart
        (rng.lognormal(0, 1, 120), None),  # one sample (paired differences)
        (rng.lognormal(0, 1, 120), rng.lognormal(0, 1, 1)),  # too small: None
        ([1.0], [2.0, 3.0]),
        (list(rng.lognormal(0, 1, 120)), None),
    ]
    kwargs = {"statistic": statistic, "alpha": 0.1, "n_boot": 300, "seed": 7,
              "max_cells": max_cells}
    expected = [reference_interval(a, b, **kwargs) for a, b in samples]
    assert S.bootstrap_intervals(samples, **kwargs) == expected
    assert [S.bootstrap_interval(a, b, **kwargs) for a, b in samples] == expected
    assert expected[4] is None and expected[5] is None and expected[0] != expected[1]
    assert S.bootstrap_intervals([]) == []


def _dyadic(x: float) -> float:
    """Rounded to a quarter: sums of these are exact in any order, so a unit's mean is the
    same double however SQLite adds its calls up."""
    return round(x * 4) / 4


def test_compare_reports_the_bootstrap_of_the_per_unit_means(write_lines, cli):
    rng = random.Random(5)
    rows, calls = [], defaultdict(list)
    for i in range(600):
        version = "v1" if i % 2 else "v2"
        unit = f"{version}-user-{rng.randrange(60)}"
        latency, cost = _dyadic(rng.lognormvariate(6, 1.2)), rng.paretovariate(1.5) / 1024
        cost = round(cost * 1024 * 64) / (1024 * 64)
        rows.append({"v": 1, "kind": "llm", "model": "m", "prompt_id": "qa",
                     "prompt_version": version, "unit_id": unit, "status": "ok",
                     "latency_ms": latency, "cost_usd": cost, "output_tokens": 10 + i % 7})
        calls[unit].append((latency, cost))
    write_lines(rows)
    run = cli("compare", "v1", "v2", "--json", "--metric", "latency_ms", "--metric",
              "cost_usd", "--metric", "output_tokens")
    assert run.code in (0, 1), run.err

    def unit_means(version: str, column: int) -> list[float]:
        return sorted(sum(c[column] for c in cs) / len(cs) for unit, cs in calls.items()
                      if unit.startswith(version))

    for column, name in enumerate(("latency_ms", "cost_usd")):
        expected = S.bootstrap_interval(unit_means("v1", column), unit_means("v2", column))
        assert metric(run.json, name)["robust"]["bootstrap_ci"] == list(expected)
    assert "bootstrap_ci" not in metric(run.json, "output_tokens")["robust"]  # not skewed


def test_compare_reports_the_bootstrap_of_paired_differences(write_lines, cli):
    rng = random.Random(6)
    rows, diffs = [], {}
    for item in range(50):
        base = _dyadic(rng.lognormvariate(6, 0.3))
        extra = _dyadic(rng.lognormvariate(5, 1.5))  # B is sometimes much slower: skewed
        for variant, latency in (("control", base), ("treatment", base + extra)):
            rows.append({"v": 1, "kind": "llm", "model": "m", "prompt_id": "qa",
                         "prompt_version": "v1", "experiment": "e", "variant": variant,
                         "item_id": f"item-{item}", "status": "ok", "latency_ms": latency})
        diffs[f"item-{item}"] = extra
    write_lines(rows)
    run = cli("compare", "control", "treatment", "--experiment", "e", "--json", "--metric",
              "latency_ms")
    assert run.code in (0, 1), run.err
    assert run.json["design"] == "paired"
    expected = S.bootstrap_interval([diffs[item] for item in sorted(diffs)])
    assert metric(run.json, "latency_ms")["robust"]["bootstrap_ci"] == list(expected)
