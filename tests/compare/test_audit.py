"""The audit's cases (issue 15), end to end through `promptlab compare`: each one misled
the verdict before; each asserts what the user now sees."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from promptlab import stats as S


def metric(data: dict, name: str) -> dict:
    return next(m for m in data["metrics"] if m["name"] == name)


def rows(version: str, values: list, name: str = "q", **extra) -> list[dict]:
    return [{"prompt_id": "qa", "prompt_version": version, "model": "m",
             "scores": {name: v}, **extra} for v in values]


# -- 2. negative baselines and the declared direction ----------------------------------------


def test_a_negative_baseline_does_not_invert_lift_or_tolerance(write_calls, cli):
    # v2 about twice as bad on a higher-is-better log-probability: -0.98 -> -1.99.
    a = [-0.98 + 0.01 * ((i % 5) - 2) for i in range(40)]
    b = [-1.99 + 0.01 * ((i % 5) - 2) for i in range(40)]
    write_calls(rows("v1", a, "logprob") + rows("v2", b, "logprob"))
    run = cli("compare", "v1", "v2", "--metric", "logprob", "--json")
    m = metric(run.json, "logprob")
    assert m["diff"] < 0 and m["lift"] < 0 and m["lift_ci"][1] < 0  # all say: lower
    assert m["lift"] == pytest.approx((-1.99 + 0.98) / 0.98, rel=1e-3)
    assert m["verdict"] == "v2 worse" and m["chance_b_better"] < 0.01
    gate = cli("compare", "v1", "v2", "--metric", "logprob", "--fail-if-worse",
               "--tolerance", "logprob=0.10")
    assert gate.code == 1, gate.out
    assert "v2 worse beyond tolerance (-10%)" in gate.out
    up = cli("compare", "v2", "v1", "--metric", "logprob", "--json").json
    m = metric(up, "logprob")
    assert m["diff"] > 0 and m["lift"] > 0 and m["verdict"] == "v1 better"


# -- 3. zero variance is not infinite evidence ------------------------------------------------


def test_constant_arms_get_an_exact_test_not_p_zero(write_calls, cli):
    write_calls(rows("v1", [5, 5]) + rows("v2", [6, 6]))
    m = metric(cli("compare", "v1", "v2", "--metric", "q", "--json").json, "q")
    assert m["test"] == "permutation_exact"
    assert m["p_value"] == pytest.approx(1 / 3)
    assert m["verdict"] == "no significant difference" and m["diff_ci"] is None
    assert any("exact permutation test" in w and "cannot go below 0.33" in w
               for w in m["warnings"])


def test_identical_paired_differences_get_a_sign_flip_test(write_calls, cli):
    entries = []
    for i in range(4):
        for v, x in (("v1", 10.0 + i), ("v2", 11.0 + i)):
            entries.append({"prompt_id": "qa", "prompt_version": v, "model": "m",
                            "experiment": "p", "variant": v, "item_id": f"i{i}",
                            "unit_id": f"i{i}", "scores": {"q": x}})
    write_calls(entries)
    data = cli("compare", "v1", "v2", "--experiment", "p", "--metric", "q", "--json").json
    m = metric(data, "q")
    assert data["design"] == "paired" and m["test"] == "sign_flip_exact"
    assert m["p_value"] == pytest.approx(2 / 16)
    assert m["verdict"] == "no significant difference"


def test_tiny_relative_spread_keeps_its_real_variance(write_calls, cli):
    from scipy.stats import ttest_ind

    a = [1e7 + 0.001 * ((i * 7) % 11 - 5) / 5 for i in range(20)]
    b = [1e7 + 0.001 * ((i * 5) % 11 - 5) / 5 + 0.0002 for i in range(20)]
    write_calls(rows("v1", a) + rows("v2", b))
    m = metric(cli("compare", "v1", "v2", "--metric", "q", "--json").json, "q")
    assert m["test"] == "welch_t"
    assert m["p_value"] == pytest.approx(ttest_ind(b, a, equal_var=False).pvalue, rel=1e-3)


# -- 4. dropped observations -----------------------------------------------------------------


def test_failed_calls_and_missing_scores_are_counted_and_named(write_calls, cli):
    write_calls(rows("v1", [0.5 + 0.01 * i for i in range(40)]))
    write_calls(rows("v2", [0.6 + 0.01 * i for i in range(30)])
                + [{"prompt_id": "qa", "prompt_version": "v2", "model": "m", "status": "error",
                    "error": "timeout"}] * 8
                + [{"prompt_id": "qa", "prompt_version": "v2", "model": "m"}] * 2)
    data = cli("compare", "v1", "v2", "--metric", "q", "--metric", "latency_ms",
               "--json").json
    m = metric(data, "q")
    assert (m["n_a"], m["n_b"]) == (40, 30)
    assert m["dropped"]["b"] == {"failed": 8, "missing": 2, "non_numeric": 0,
                                 "out_of_range": 0}
    assert "dropped 10 of 40 call(s) under v2: 8 failed call(s) without a value, 2 missing" \
        in m["warnings"]
    assert any(w.startswith("v2 lost more `q` values (25%) than v1 (0%)") for w in m["warnings"])


def test_the_paired_header_counts_items_and_each_row_its_own_n(write_calls, cli):
    entries = []
    for i in range(20):
        for v in ("v1", "v2"):
            scores = {"q": float(i % 4) + (v == "v2")}
            if v == "v2" and i < 5:
                scores = {}
            entries.append({"prompt_id": "qa", "prompt_version": v, "model": "m",
                            "experiment": "p", "variant": v, "item_id": f"i{i}",
                            "unit_id": f"i{i}", "scores": scores})
    write_calls(entries)
    run = cli("compare", "v1", "v2", "--experiment", "p", "--metric", "q")
    assert "paired on 20 items" in run.out.splitlines()[0]
    data = cli("compare", "v1", "v2", "--experiment", "p", "--metric", "q", "--json").json
    m = metric(data, "q")
    assert m["n_a"] == 15
    assert ("15 of the 20 paired items have a `q` value under both versions; the other 5 "
            "are left out") in m["warnings"]


# -- 5. power under multiplicity -----------------------------------------------------------------


def test_uninformative_tests_stay_out_of_the_family_and_power_uses_the_adjusted_alpha(
        write_calls, cli):
    a = [{"prompt_id": "qa", "prompt_version": "v1", "model": "m", "output_tokens": 50,
          "latency_ms": 100.0 + i % 7, "scores": {"ok": i < 12}} for i in range(40)]
    b = [{"prompt_id": "qa", "prompt_version": "v2", "model": "m", "output_tokens": 50,
          "latency_ms": 100.0 + i % 7, "scores": {"ok": i < 22}} for i in range(40)]
    write_calls(a + b)
    data = cli("compare", "v1", "v2", "--json").json
    ok, tokens, errors = (metric(data, n) for n in ("ok", "output_tokens", "error_rate"))
    assert tokens["in_family"] is False and errors["in_family"] is False
    assert tokens["p_adjusted"] == 1.0 and errors["p_adjusted"] == 1.0
    family = [metric(data, n) for n in ("ok", "latency_ms")]
    assert [m["p_adjusted"] for m in family] == pytest.approx(
        S.holm_adjust([m["p_value"] for m in family]))
    assert ok["power_alpha"] == pytest.approx(0.025)
    assert ok["mde"] == pytest.approx(S.mde_two_proportions(0.3, 40, alpha=0.025))
    assert data["power"]["alpha"] == pytest.approx(0.025) and data["power"]["metric"] == "ok"
    table = cli("compare", "v1", "v2").out
    assert "Holm-adjusted over 2 tests" in table and "1.00 (excl.)" in table
    assert "Power (80%, α = 0.05/2 = 0.025) on ok" in table


# -- 6. intervals that cannot be ---------------------------------------------------------------


def test_rate_lift_interval_stays_above_minus_100_percent(write_calls, cli):
    write_calls(rows("v1", [i < 3 for i in range(30)], "ok")
                + rows("v2", [i < 9 for i in range(30)], "ok"))
    m = metric(cli("compare", "v1", "v2", "--metric", "ok", "--json").json, "ok")
    assert m["lift"] == pytest.approx(2.0) and m["lift_method"] == "log_ratio"
    assert m["lift_ci"][0] > -1 and m["lift_ci"][0] < m["lift"] < m["lift_ci"][1]


def test_full_rates_have_a_lift_interval_of_some_width(write_calls, cli):
    write_calls(rows("v1", [True] * 30, "ok") + rows("v2", [True] * 30, "ok"))
    m = metric(cli("compare", "v1", "v2", "--metric", "ok", "--json").json, "ok")
    assert m["lift"] == 0.0 and m["lift_ci"][0] < 0 < m["lift_ci"][1]


def test_fisher_and_its_interval_disagreeing_is_said(write_calls, cli):
    write_calls(rows("v1", [i < 2 for i in range(8)], "ok")
                + rows("v2", [i < 6 for i in range(8)], "ok"))
    m = metric(cli("compare", "v1", "v2", "--metric", "ok", "--json").json, "ok")
    assert m["test"] == "fisher_exact" and m["p_value"] > 0.05
    assert m["diff_ci"][0] > 0  # Newcombe's interval excludes 0 ...
    assert m["verdict"] == "no significant difference"  # ... the test decides, and says so
    assert any(w.startswith("the Newcombe hybrid score interval excludes 0 while the fisher "
                            "exact test gives p = ") for w in m["warnings"])


def test_sequential_interval_stays_in_range_and_agrees_with_its_p(write_calls, cli):
    write_calls(rows("v1", [i < 6 for i in range(18)], "ok")
                + rows("v2", [i < 12 for i in range(18)], "ok"))
    m = metric(cli("compare", "v1", "v2", "--metric", "ok", "--sequential", "--json").json,
               "ok")
    low, high = m["diff_ci"]
    assert low >= -1 and high <= 1
    assert (low > 0 or high < 0) == (m["p_value"] < 0.05)
    assert m["chance_b_better"] is None
    assert m["lift_ci"][0] > -1


# -- 7. values the logger accepts ---------------------------------------------------------------


def test_huge_and_subnormal_scores_never_crash_and_answer_alike_at_any_size(
        write_calls, cli, monkeypatch):
    from promptlab.comparison import _query

    a = [1e308, -1e308, 0.5, 0.6, 0.7, 0.55] + [5e-324, 1e-320] + [0.6] * 4
    b = [0.8, 0.9, 0.85, 1e308, 0.95, 0.7] + [2e-323, 0.0] + [0.9] * 4
    write_calls(rows("v1", a) + rows("v2", b))
    run = cli("compare", "v1", "v2", "--metric", "q", "--json")
    assert run.code == 0, run.err
    small = metric(run.json, "q")
    assert small["dropped"]["a"]["out_of_range"] == 2 and small["dropped"]["b"]["out_of_range"] == 1
    assert (small["n_a"], small["n_b"]) == (10, 11)
    json.dumps(run.json, allow_nan=False)
    monkeypatch.setattr(_query, "VALUES_LIMIT", 0)
    monkeypatch.setattr(_query, "CHECK_LIMIT", 0)
    large = metric(cli("compare", "v1", "v2", "--metric", "q", "--json").json, "q")
    for key in ("n_a", "n_b", "diff", "diff_ci", "p_value", "lift", "lift_ci", "dropped"):
        assert large[key] == small[key], key
    tiny = rows("v1", [5e-324, 1e-320, 2e-322]) + rows("v2", [1e-321, 3e-321, 4e-320])
    write_calls([{**r, "prompt_id": "tiny"} for r in tiny])
    run = cli("compare", "v1", "v2", "--prompt", "tiny", "--metric", "q", "--json")
    assert run.code == 0, run.err
    json.dumps(run.json, allow_nan=False)


def test_non_numeric_latency_lines_never_crash_compare(write_lines, cli):
    entries = [{"prompt_id": "qa", "prompt_version": v, "latency_ms": 100.0 + i,
                "scores": {"ok": i % 2 == 0}} for v in ("v1", "v2") for i in range(10)]
    entries += [{"prompt_id": "qa", "prompt_version": "v2", "latency_ms": bad}
                for bad in ("slow", "5000", True)]
    write_lines(entries)
    run = cli("compare", "v1", "v2", "--metric", "latency_ms", "--json")
    assert run.code == 0, run.err
    lat = metric(run.json, "latency_ms")
    assert lat["n_b"] == 10  # none of "slow", "5000" or true counts as a latency
    assert lat["b"]["mean"] == pytest.approx(104.5)


# -- 8. SRM is a stop sign; no SRM check is said -------------------------------------------------


SPLIT_TOML = """
prompt = "qa"
[variants]
v1 = 50
v2 = 50
[metrics]
primary = "ok"
guardrails = []
"""


def test_srm_gives_no_verdict_and_fails_the_gate(project: Path, write_calls, cli):
    (project / "experiments").mkdir()
    (project / "experiments" / "split.toml").write_text(SPLIT_TOML)
    write_calls([{"prompt_id": "qa", "prompt_version": v, "model": "m", "experiment": "split",
                  "variant": v, "unit_id": f"{v}{i}", "scores": {"ok": i < k}}
                 for v, n, k in (("v1", 60, 20), ("v2", 20, 15)) for i in range(n)])
    data = cli("compare", "v1", "v2", "--experiment", "split", "--json").json
    assert data["srm_status"] == "mismatch"
    assert metric(data, "ok")["verdict"] == "not trustworthy: sample ratio mismatch"
    gate = cli("compare", "v1", "v2", "--experiment", "split", "--fail-if-worse")
    assert gate.code == 1
    assert "not trustworthy: sample ratio mismatch" in gate.err


def test_without_an_experiment_file_the_report_says_there_is_no_srm_check(write_calls, cli):
    write_calls(rows("v1", [i < 10 for i in range(30)], "ok")
                + rows("v2", [i < 20 for i in range(30)], "ok"))
    run = cli("compare", "v1", "v2", "--metric", "ok")
    assert "SRM check: not checked: no experiment, so no traffic weights to check against." \
        in run.out
    assert cli("compare", "v1", "v2", "--json").json["srm_status"].startswith("not checked")


# -- issue 12: a gate that could not judge does not pass ----------------------------------------


def test_fail_if_worse_with_no_data_exits_3_unless_allowed(write_calls, cli):
    write_calls(rows("v1", [0.5]) + rows("v2", [0.7]))
    run = cli("compare", "v1", "v2", "--metric", "q", "--fail-if-worse")
    assert run.code == 3
    assert "Undecided: not enough data to judge v2 against v1 (q: no p-value)" in run.err
    allowed = cli("compare", "v1", "v2", "--metric", "q", "--fail-if-worse", "--allow-no-data")
    assert allowed.code == 0
    assert cli("compare", "v1", "v2", "--metric", "q").code == 0  # no gate: just a report


def test_every_summing_path_drops_the_same_out_of_range_values(write_calls, cli, monkeypatch):
    from promptlab.comparison import _query

    write_calls(rows("v1", [1e200] + [i * 0.37 for i in range(59)])
                + rows("v2", [i * 0.37 + 1 for i in range(60)]))
    grouped = metric(cli("compare", "v1", "v2", "--metric", "q", "--json").json, "q")
    monkeypatch.setattr(_query, "DISTINCT_LIMIT", 5)  # many distinct values: SQL aggregates
    summed = metric(cli("compare", "v1", "v2", "--metric", "q", "--json").json, "q")
    assert grouped["dropped"]["a"]["out_of_range"] == summed["dropped"]["a"]["out_of_range"] == 1
    for key in ("n_a", "n_b", "p_value", "diff", "diff_ci"):
        assert summed[key] == pytest.approx(grouped[key]), key
