"""The pure sample → verdict step: any sufficient statistics give a JSON-safe verdict."""

from __future__ import annotations

import json

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from promptlab.comparison import MetricResult, PairComparison
from promptlab.comparison._analyse import Agg, PairAgg, paired_result, unpaired_result
from promptlab.comparison._verdict import adjust

values = st.lists(st.sampled_from([0.0, 1.0, 0.5, 3.0, 3.0, 250.0, -2.0, -0.7]), max_size=25)


def agg_of(xs: list[float]) -> Agg:
    arr = np.array(xs, dtype=float)
    return Agg(len(xs), float(arr.sum()), float((arr * arr).sum()),
               int(np.isin(arr, (0.0, 1.0)).sum()), n_bool=0)


def check(result: MetricResult, b: str = "v2", nonnegative: bool = False) -> None:
    """`nonnegative`: every value of both arms is ≥ 0 (then B can never be below −100 %)."""
    adjust([PairComparison("v1", b, "unpaired", [result])], 0.05, "holm")
    data = result.to_dict()
    json.dumps(data, allow_nan=False)
    assert data["p_value"] is None or 0 <= data["p_value"] <= 1
    if data["p_value"] is None:
        assert data["verdict"] == "not enough data" and data["significant"] is False
    else:
        assert data["verdict"] in ("v2 better", "v2 worse", "no significant difference")
        assert data["significant"] == (data["verdict"] != "no significant difference")
        if data["significant"]:
            better = (data["diff"] > 0) == (data["direction"] == "higher")
            assert data["verdict"] == ("v2 better" if better else "v2 worse")
    assert data["chance_b_better"] is None or 0 <= data["chance_b_better"] <= 1
    # Every direction shown agrees, for negative baselines too.
    if data["lift"] is not None and data["diff"]:
        assert (data["lift"] > 0) == (data["diff"] > 0)
    if data["lift_ci"] is not None:
        assert data["lift_ci"][0] <= data["lift"] <= data["lift_ci"][1]
        if nonnegative and data["a"]["mean"] > 0:
            assert data["lift_ci"][0] >= -1  # non-negative data: never below -100 %
    if data["chance_b_better"] is not None and data["significant"] and data["diff"]:
        better = data["verdict"] == "v2 better"
        assert (data["chance_b_better"] > 0.5) == better


@settings(max_examples=200, deadline=None)
@given(a=values, b=values, direction=st.sampled_from(["higher", "lower"]),
       sequential=st.booleans())
def test_unpaired_verdicts_are_always_json_safe(a, b, direction, sequential):
    values_ = (a, b) if len(a) >= 2 and len(b) >= 2 else None
    # A mean ≥ 0 is not enough: B = [1, 0.5, 0.5, -2] has mean 0 and can be far below A.
    check(unpaired_result("m", direction, agg_of(a), agg_of(b), values_, "v1", "v2", 0.05,
                          sequential), nonnegative=min(a + b, default=0) >= 0)


@settings(max_examples=200, deadline=None)
@given(pairs=st.lists(st.tuples(st.sampled_from([0.0, 1.0, 0.5, 4.0]),
                                st.sampled_from([0.0, 1.0, 0.5, 4.0])), max_size=25),
       sequential=st.booleans())
def test_paired_verdicts_are_always_json_safe(pairs, sequential):
    va = np.array([p[0] for p in pairs])
    vb = np.array([p[1] for p in pairs])
    both01 = np.isin(va, (0, 1)) & np.isin(vb, (0, 1))
    agg = PairAgg(len(pairs), float(va.sum()), float(vb.sum()), float((va * va).sum()),
                  float((vb * vb).sum()), float((va * vb).sum()), int(both01.sum()),
                  int(((va == 1) & (vb == 0)).sum()), int(((va == 0) & (vb == 1)).sum()),
                  int(((va == 1) & (vb == 1)).sum()))
    diffs = list(vb - va) if len(pairs) >= 2 else None
    result = paired_result("m", "higher", agg, diffs, "v1", "v2", 0.05, sequential)
    check(result, nonnegative=True)  # every value here is ≥ 0
    if len(pairs) >= 2 and both01.all():
        assert result.test.startswith("mcnemar")


def test_lower_is_better_flips_the_verdict_and_the_chance():
    fast, slow = [100.0 + i % 3 for i in range(30)], [130.0 + i % 3 for i in range(30)]
    result = unpaired_result("latency_ms", "lower", agg_of(slow), agg_of(fast),
                             None, "v1", "v2", 0.05, False)
    adjust([PairComparison("v1", "v2", "unpaired", [result])], 0.05, "holm")
    assert result.diff < 0 and result.verdict == "v2 better"
    assert result.chance_b_better > 0.99
