"""End to end: calls written through the logger, `promptlab compare --json`, the numbers."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from promptlab import stats as S

SLEEP_1 = [0.7, -1.6, -0.2, -1.2, -0.1, 3.4, 3.7, 0.8, 0.0, 2.0]
SLEEP_2 = [1.9, 0.8, 1.1, 0.1, -0.1, 4.4, 5.5, 1.6, 4.6, 3.4]


def metric(data: dict, name: str) -> dict:
    return next(m for m in data["metrics"] if m["name"] == name)


def calls(version: str, scores: list[dict], prompt: str = "qa", **extra) -> list[dict]:
    return [{"prompt_id": prompt, "prompt_version": version, "model": "m", "scores": s,
             **extra} for s in scores]


def no_nan(data) -> bool:
    json.dumps(data, allow_nan=False)  # raises on NaN or infinity
    return True


# -- unpaired ----------------------------------------------------------------------------


def test_unpaired_binary_matches_the_two_proportion_test(write_calls, cli):
    write_calls(calls("v1", [{"correct": i < 40} for i in range(100)]))
    write_calls(calls("v2", [{"correct": i < 60} for i in range(100)]))
    run = cli("compare", "v1", "v2", "--json")
    assert run.code == 0, run.err
    data = run.json
    assert (data["prompt"], data["a"], data["b"], data["design"]) == ("qa", "v1", "v2",
                                                                      "unpaired")
    assert data["experiment"] is None and data["srm"] is None and data["alpha"] == 0.05
    m = metric(data, "correct")
    ref = S.two_proportion_z_test(40, 100, 60, 100)
    assert (m["kind"], m["test"]) == ("binary", "two_proportion_z")
    assert m["a"] == {"n": 100, "mean": 0.4, "ci": pytest.approx(list(S.wilson_interval(40, 100)))}
    assert m["b"]["mean"] == 0.6
    assert m["diff"] == pytest.approx(0.2)
    assert m["diff_ci"] == pytest.approx(list(S.newcombe_interval(40, 100, 60, 100)))
    assert m["p_value"] == pytest.approx(ref.p_value)
    assert m["lift"] == pytest.approx(0.5)
    assert m["significant"] is True and m["verdict"] == "v2 better"
    assert m["mde"] == pytest.approx(S.mde_two_proportions(0.4, 100))
    assert m["n_needed"] == math.ceil(S.n_two_proportions(0.4, 0.6))
    assert m["chance_b_better"] == pytest.approx(S.chance_b_beats_a_binary(40, 100, 60, 100))
    # error_rate is always there; nothing failed here.
    assert metric(data, "error_rate")["a"]["mean"] == 0.0
    assert set(m) >= {"name", "kind", "test", "a", "b", "diff", "diff_ci", "lift", "lift_ci",
                      "p_value", "p_adjusted", "significant", "verdict", "mde", "n_needed",
                      "warnings"}


def test_unpaired_numeric_is_welch_t_like_r(write_calls, cli):
    # R: t.test(1:10, 7:20): t = -5.4349, df = 21.982, p = 1.855e-05, CI (-11.0528, -4.9472)
    write_calls(calls("v1", [{"quality": x} for x in range(1, 11)]))
    write_calls(calls("v2", [{"quality": x} for x in range(7, 21)]))
    data = cli("compare", "v1", "v2", "--metric", "quality", "--json").json
    m = metric(data, "quality")
    assert (m["kind"], m["test"]) == ("numeric", "welch_t")
    assert m["diff"] == pytest.approx(8.0)
    assert m["diff_ci"] == pytest.approx([4.947198, 11.052802], abs=5e-6)
    assert m["p_value"] == pytest.approx(1.855e-05, rel=5e-4)
    assert m["p_adjusted"] == m["p_value"]  # a single test: nothing to adjust
    assert m["a"]["mean"] == 5.5 and m["a"]["n"] == 10 and m["b"]["n"] == 14
    assert m["robust"]["test"] == "mann_whitney"
    expected = S.mann_whitney_test(list(range(1, 11)), list(range(7, 21))).p_value
    assert m["robust"]["p_value"] == pytest.approx(expected)
    assert [x["name"] for x in data["metrics"]] == ["quality"]


def test_latency_tokens_cost_and_errors_are_lower_is_better(write_calls, cli):
    fast = [{"latency_ms": 100 + i % 7, "output_tokens": 50, "cost_usd": 0.001} for i in range(30)]
    slow = [{"latency_ms": 150 + i % 7, "output_tokens": 50, "cost_usd": 0.001} for i in range(30)]
    write_calls([{"prompt_id": "qa", "prompt_version": "v1", "model": "m", **f} for f in slow])
    write_calls([{"prompt_id": "qa", "prompt_version": "v2", "model": "m", **f} for f in fast])
    write_calls([{"prompt_id": "qa", "prompt_version": "v2", "model": "m", "status": "error",
                  "error": "timeout", "latency_ms": 5000}] * 10)
    data = cli("compare", "v1", "v2", "--json").json
    names = [m["name"] for m in data["metrics"]]
    assert names == ["latency_ms", "output_tokens", "cost_usd", "error_rate"]
    lat = metric(data, "latency_ms")
    assert lat["direction"] == "lower" and lat["verdict"] == "v2 better"
    assert lat["b"]["n"] == 30  # the failed calls' latency is not mixed in
    assert lat["diff"] == pytest.approx(-50.0)
    err = metric(data, "error_rate")
    assert err["b"]["mean"] == pytest.approx(10 / 40) and err["verdict"] == "v2 worse"
    assert err["test"] == "fisher_exact"  # v1 has no errors: expected cells below 5
    same = metric(data, "output_tokens")
    assert same["p_value"] == 1.0 and same["verdict"] == "no significant difference"
    assert "every `output_tokens` value is 50 in both versions" in same["warnings"]
    assert any("v2: 25% of calls failed (10 of 40)" in w for w in data["warnings"])


def test_units_with_several_calls_are_averaged_first(write_calls, cli):
    rows, per_user = [], {}
    for user in range(12):
        for k in range(1 + user % 4):
            value = 100.0 + user * 3 + k
            rows.append({"prompt_id": "qa", "prompt_version": "v1", "model": "m",
                         "unit_id": f"u{user}", "latency_ms": value})
            per_user.setdefault(user, []).append(value)
    write_calls(rows)
    write_calls([{"prompt_id": "qa", "prompt_version": "v2", "model": "m", "unit_id": f"w{i}",
                  "latency_ms": 90.0 + i} for i in range(12)])
    data = cli("compare", "v1", "v2", "--metric", "latency_ms", "--json").json
    m = metric(data, "latency_ms")
    means = [sum(v) / len(v) for v in per_user.values()]
    assert m["a"]["n"] == 12  # users, not calls (30 calls)
    assert m["a"]["mean"] == pytest.approx(sum(means) / 12)
    ref = S.welch_t_test(S.Moments.of(means), S.Moments.of([90.0 + i for i in range(12)]))
    assert m["p_value"] == pytest.approx(ref.p_value)


# -- paired ------------------------------------------------------------------------------


def sleep_rows(skip_b: set[int] = frozenset()) -> list[dict]:
    rows = []
    for i, (x, y) in enumerate(zip(SLEEP_1, SLEEP_2, strict=True)):
        for variant, value in (("v1", x), ("v2", y)):
            if variant == "v2" and i in skip_b:
                continue
            for repeat, delta in ((0, -0.05), (1, 0.05)):  # two repeats average to value
                rows.append({"prompt_id": "sleepy", "prompt_version": variant, "model": "m",
                             "experiment": "sleep-ab", "variant": variant,
                             "item_id": f"item-{i}", "repeat": repeat, "run_id": "r1",
                             "scores": {"extra": value + delta}})
    return rows


def test_paired_design_averages_repeats_and_matches_r_paired_t(write_calls, cli):
    # R: t.test(extra ~ group, data = sleep, paired = TRUE): t = -4.0621, df = 9,
    # p = 0.002833, CI (-2.45989, -0.70011); here B − A, so the signs flip.
    write_calls(sleep_rows())
    data = cli("compare", "v1", "v2", "--json").json  # experiment inferred from the logs
    assert data["experiment"] == "sleep-ab" and data["design"] == "paired"
    m = metric(data, "extra")
    assert (m["kind"], m["test"]) == ("numeric", "paired_t")
    assert m["a"]["n"] == 10 and m["b"]["n"] == 10  # items, not 40 calls
    assert m["diff"] == pytest.approx(1.58)
    assert m["diff_ci"] == pytest.approx([0.70011, 2.45989], abs=5e-6)
    assert m["p_value"] == pytest.approx(0.002833, rel=2e-4)
    d = [y - x for x, y in zip(SLEEP_1, SLEEP_2, strict=True)]
    assert m["robust"]["test"] == "wilcoxon_pratt"
    assert m["robust"]["p_value"] == pytest.approx(S.wilcoxon_signed_rank_test(d).p_value)
    assert m["n_needed"] == math.ceil(S.n_t(1.58, S.Moments.of(d).sd, paired=True))
    assert data["warnings"] == []


def test_paired_drops_unmatched_items_with_a_warning(write_calls, cli):
    write_calls(sleep_rows(skip_b={0, 3}))
    data = cli("compare", "v1", "v2", "--experiment", "sleep-ab", "--json").json
    assert data["design"] == "paired"
    assert metric(data, "extra")["a"]["n"] == 8
    assert ("paired on 8 items logged under both versions; dropped 2 item(s) logged only "
            "for v1 and 0 only for v2") in data["warnings"]


def test_paired_binary_is_exact_mcnemar(write_calls, cli):
    # 20 items both pass, 3 only A passes, 12 only B passes, 5 neither.
    outcomes = [(1, 1)] * 20 + [(1, 0)] * 3 + [(0, 1)] * 12 + [(0, 0)] * 5
    rows = []
    for i, (a, b) in enumerate(outcomes):
        for variant, ok in (("v1", a), ("v2", b)):
            rows.append({"prompt_id": "qa", "prompt_version": variant, "model": "m",
                         "experiment": "mc", "variant": variant, "item_id": str(i),
                         "scores": {"ok": bool(ok)}})
    write_calls(rows)
    data = cli("compare", "v1", "v2", "--experiment", "mc", "--metric", "ok", "--json").json
    m = metric(data, "ok")
    assert (m["kind"], m["test"]) == ("binary", "mcnemar_exact")
    assert m["p_value"] == pytest.approx(S.mcnemar_test(3, 12).p_value)
    assert m["diff"] == pytest.approx(9 / 40)
    assert m["diff_ci"] == pytest.approx(list(S.paired_proportions_interval(20, 3, 12, 5)))
    assert m["a"]["mean"] == pytest.approx(23 / 40) and m["b"]["mean"] == pytest.approx(32 / 40)
    assert m["mde"] == pytest.approx(S.mde_mcnemar(15 / 40, 40))


# -- experiments: SRM, configured metrics, fail-if-worse ---------------------------------


SPLIT_TOML = """
prompt = "code-review"
[variants]
v1 = 50
v2 = 50
[[scorers]]
name = "ok"
type = "equals"
value = "x"
[[scorers]]
name = "mistakes"
type = "equals"
value = "y"
direction = "lower"
[metrics]
primary = "ok"
guardrails = ["latency_ms", "mistakes"]
"""


def split_rows(n1: int, n2: int, ok1: float, ok2: float) -> list[dict]:
    rows = []
    for variant, n, rate in (("v1", n1, ok1), ("v2", n2, ok2)):
        for i in range(n):
            rows.append({"prompt_id": "code-review", "prompt_version": variant, "model": "m",
                         "experiment": "split", "variant": variant, "unit_id": f"{variant}-{i}",
                         "item_id": f"{variant}-{i}", "latency_ms": 100.0 + i % 5,
                         "scores": {"ok": i < rate * n, "mistakes": i % 3}})
    return rows


@pytest.fixture
def split_experiment(project: Path) -> Path:
    (project / "experiments").mkdir()
    (project / "experiments" / "split.toml").write_text(SPLIT_TOML)
    return project


def test_srm_is_flagged_against_the_configured_weights(split_experiment, write_calls, cli):
    write_calls(split_rows(60, 20, 0.5, 0.5))
    run = cli("compare", "v1", "v2", "--experiment", "split", "--json")
    data = run.json
    assert data["design"] == "unpaired"
    srm = data["srm"]
    assert srm["observed"] == [60, 20] and srm["expected"] == [40.0, 40.0]
    assert srm["flag"] is True
    assert srm["p_value"] == pytest.approx(S.srm_test([60, 20], [50, 50]).p_value)
    assert any(w.startswith("sample ratio mismatch: 60 / 20 units against 40 / 40")
               for w in data["warnings"])
    table = cli("compare", "v1", "v2", "--experiment", "split")
    assert "SAMPLE RATIO MISMATCH: units 60 / 20 vs 40 / 40 expected" in table.out
    assert "Warning: sample ratio mismatch" in table.err


def test_srm_ok_and_configured_metrics_with_roles(split_experiment, write_calls, cli):
    write_calls(split_rows(40, 41, 0.3, 0.7))
    data = cli("compare", "v1", "v2", "--experiment", "split", "--json").json
    assert data["srm"]["flag"] is False and data["srm"]["p_value"] > 0.5
    assert [(m["name"], m["role"]) for m in data["metrics"]] == [
        ("ok", "primary"), ("latency_ms", "guardrail"), ("mistakes", "guardrail")]
    assert metric(data, "mistakes")["direction"] == "lower"
    assert metric(data, "ok")["verdict"] == "v2 better"


def test_fail_if_worse_exits_1_on_the_primary_metric(split_experiment, write_calls, cli):
    write_calls(split_rows(40, 40, 0.8, 0.3))
    run = cli("compare", "v1", "v2", "--experiment", "split", "--fail-if-worse")
    assert run.code == 1
    assert "Failed: v2 is significantly worse than v1 on ok (primary)" in run.err
    assert "v2 worse" in run.out  # the table is still printed
    assert cli("compare", "v1", "v2", "--experiment", "split").code == 0


def test_fail_if_worse_passes_when_not_worse(split_experiment, write_calls, cli):
    write_calls(split_rows(40, 40, 0.3, 0.8))
    run = cli("compare", "v1", "v2", "--experiment", "split", "--fail-if-worse", "--json")
    assert run.code == 0, run.err
    assert metric(run.json, "ok")["verdict"] == "v2 better"


def test_fail_if_worse_without_configuration_watches_every_metric(write_calls, cli):
    write_calls(calls("v1", [{"correct": i < 70} for i in range(100)]))
    write_calls(calls("v2", [{"correct": i < 40} for i in range(100)]))
    run = cli("compare", "v1", "v2", "--fail-if-worse")
    assert run.code == 1
    assert "Failed: v2 is significantly worse than v1 on correct" in run.err


def test_experiment_report_uses_the_experiment_file(split_experiment, write_calls, cli):
    write_calls(split_rows(40, 40, 0.3, 0.8))
    report = cli("experiment", "report", "split", "--json")
    direct = cli("compare", "v1", "v2", "--experiment", "split", "--json")
    assert report.code == 0, report.err
    assert report.json == direct.json
    assert cli("experiment", "report", "--json").json == direct.json  # the only experiment


def test_experiment_report_unknown_experiment(split_experiment, cli):
    run = cli("experiment", "report", "nope")
    assert run.code == 2
    assert run.err.startswith("Error: no experiment 'nope' in ")
    assert len(run.err.strip().splitlines()) == 1


# -- several metrics and versions ------------------------------------------------------------


def three_versions(write_calls):
    for version, rate, q in (("v1", 40, 3.0), ("v2", 55, 3.2), ("v3", 70, 3.1)):
        write_calls(calls(version, [{"correct": i < rate, "quality": q + (i % 5) / 2}
                                    for i in range(100)]))


def test_holm_adjusts_across_metrics_and_versions(write_calls, cli):
    three_versions(write_calls)
    run = cli("compare", "v1", "v2", "v3", "--metric", "correct", "--metric", "quality",
              "--json")
    data = run.json
    assert data["a"] == "v1" and data["b"] == ["v2", "v3"]
    assert [c["b"] for c in data["comparisons"]] == ["v2", "v3"]
    ms = [m for c in data["comparisons"] for m in c["metrics"]]
    raw = [m["p_value"] for m in ms]
    assert [m["p_adjusted"] for m in ms] == pytest.approx(S.holm_adjust(raw))
    assert all(m["significant"] == (m["p_adjusted"] < 0.05) for m in ms)
    bh = cli("compare", "v1", "v2", "v3", "--metric", "correct", "--metric", "quality",
             "--correction", "bh", "--json").json
    ms_bh = [m for c in bh["comparisons"] for m in c["metrics"]]
    assert [m["p_adjusted"] for m in ms_bh] == pytest.approx(S.bh_adjust(raw))
    table = cli("compare", "v1", "v2", "v3", "--metric", "correct")
    assert "v1 → v2" in table.out and "v1 → v3" in table.out
    assert "Holm-adjusted over 2 tests" in table.out


def test_sequential_gives_wider_always_valid_intervals(write_calls, cli):
    three_versions(write_calls)
    fixed = metric(cli("compare", "v1", "v3", "--metric", "correct", "--json").json, "correct")
    seq = cli("compare", "v1", "v3", "--metric", "correct", "--sequential", "--json").json
    m = metric(seq, "correct")
    assert seq["sequential"] is True
    assert m["test"] == "two_proportion_z (sequential)"
    assert m["diff_ci"][0] < fixed["diff_ci"][0] and m["diff_ci"][1] > fixed["diff_ci"][1]
    ci, p = S.sequential_test(0.3, math.sqrt(0.4 * 0.6 / 100 + 0.7 * 0.3 / 100), 200)
    assert m["diff_ci"] == pytest.approx(list(ci)) and m["p_value"] == pytest.approx(p)


def test_alpha_sets_the_interval_level(write_calls, cli):
    three_versions(write_calls)
    data = cli("compare", "v1", "v3", "--metric", "quality", "--alpha", "0.1", "--json").json
    m = metric(data, "quality")
    a = S.Moments.of([3.0 + (i % 5) / 2 for i in range(100)])
    b = S.Moments.of([3.1 + (i % 5) / 2 for i in range(100)])
    assert m["diff_ci"] == pytest.approx(list(S.welch_t_test(a, b, alpha=0.1).ci))
    table = cli("compare", "v1", "v3", "--metric", "quality", "--alpha", "0.1")
    assert "v3 − v1 [90% CI]" in table.out


# -- finding the prompt --------------------------------------------------------------------


def test_ambiguous_prompt_lists_the_candidates(write_calls, cli):
    for prompt in ("alpha", "beta"):
        write_calls(calls("v1", [{"ok": True}] * 3, prompt=prompt))
        write_calls(calls("v2", [{"ok": False}] * 2, prompt=prompt))
    run = cli("compare", "v1", "v2")
    assert run.code == 2
    assert run.err.strip() == (
        "Error: v1 and v2 are logged for several prompts: alpha (v1: 3 calls, v2: 2 calls); "
        "beta (v1: 3 calls, v2: 2 calls); choose one with --prompt ID")
    chosen = cli("compare", "v1", "v2", "--prompt", "beta", "--json")
    assert chosen.code == 0 and chosen.json["prompt"] == "beta"


def test_no_prompt_has_both_versions(write_calls, cli):
    write_calls(calls("v1", [{"ok": True}] * 3, prompt="alpha"))
    write_calls(calls("v2", [{"ok": True}] * 3, prompt="beta"))
    run = cli("compare", "v1", "v2")
    assert run.code == 2
    assert run.err.strip() == ("Error: no prompt has entries for all of v1, v2 (v1 is logged "
                               "for alpha; v2 is logged for beta); choose the prompt with "
                               "--prompt ID")


def test_no_entries_for_a_version_names_it(write_calls, cli, log_dir):
    write_calls(calls("v1", [{"ok": True}] * 3))
    write_calls(calls("v2", [{"ok": True}] * 3))
    run = cli("compare", "v1", "v3")
    assert run.code == 2
    assert run.err.strip() == (f"Error: no entries for version v3 in {log_dir}; versions "
                               "logged: v1, v2")
    run = cli("compare", "v1", "v3", "--prompt", "qa")
    assert run.err.strip() == (f"Error: no entries for v3 of prompt 'qa' in {log_dir}; "
                               "versions logged: v1 (3 calls), v2 (3 calls)")
    run = cli("compare", "v1", "v2", "--since", "2999-01-01")
    assert run.code == 2
    assert run.err.strip() == ("Error: no entries for v1 of prompt 'qa' in the chosen time "
                               f"window (--since/--until) in {log_dir}")


def test_labels_work_as_versions(write_calls, cli):
    write_calls(calls("v1", [{"ok": i < 5} for i in range(10)], prompt_label="production"))
    write_calls(calls("v2", [{"ok": i < 8} for i in range(10)]))
    data = cli("compare", "production", "v2", "--json").json
    assert data["a"] == "production" and metric(data, "ok")["a"]["n"] == 10


def test_usage_mistakes_exit_2_with_one_line(log_dir, write_calls, cli):
    write_calls(calls("v1", [{"ok": True}] * 3))
    for args, message in [
        (["v1"], "Error: compare needs two or more versions: promptlab compare v1 v2"),
        (["v1", "v1"], "Error: version 'v1' is given twice; compare distinct versions"),
        (["v1", "v2", "--alpha", "1.5"],
         "Error: --alpha must be at least 1e-10 and below 1, got 1.5"),
        (["v1", "v2", "--alpha", "1e-17"],  # once an endless loop in the power line
         "Error: --alpha must be at least 1e-10 and below 1, got 1e-17"),
        (["v1", "v2", "--alpha", "nan"], "Error: --alpha must be at least 1e-10"),
        # bytes that are not UTF-8 (`printf 'v\xff'`) reach Python as lone surrogates
        (["v\udcff", "v2"], "Error: version 'v\\udcff' is not valid UTF-8 text"),
        (["v1", "v2", "--prompt", "x\udcff"], "Error: --prompt 'x\\udcff' is not valid UTF-8"),
        (["v1", "v2", "--metric", "\udcff"], "Error: --metric '\\udcff' is not valid UTF-8"),
        (["v1", "v2", "--since", "yesterday-ish"], "Error: time 'yesterday-ish' is not a date"),
        (["v1", "v2", "--metric", "nope", "--prompt", "qa"],
         "Error: no entries for v2 of prompt 'qa'"),
    ]:
        run = cli("compare", *args)
        assert run.code == 2, (args, run.out, run.err)
        assert run.err.startswith(message), (args, run.err)
        assert len(run.err.strip().splitlines()) == 1 and run.out == ""


def test_unknown_metric(write_calls, cli):
    write_calls(calls("v1", [{"ok": True}] * 3))
    write_calls(calls("v2", [{"ok": True}] * 3))
    run = cli("compare", "v1", "v2", "--metric", "accuracy")
    assert run.code == 2
    assert run.err.strip() == ("Error: no metric 'accuracy' in these entries; metrics logged: "
                               "error_rate, ok")


def test_no_logs_at_all(log_dir, cli):
    run = cli("compare", "v1", "v2")
    assert run.code == 2
    assert run.err.strip() == (f"Error: no logged calls in {log_dir}; log some calls first, or "
                               "point --log-dir (or PROMPTLAB_LOG_DIR) at your logs")


# -- bad data --------------------------------------------------------------------------------


def test_one_call_is_not_enough_data(write_calls, cli):
    write_calls(calls("v1", [{"score": 0.5}]))
    write_calls(calls("v2", [{"score": 0.7}, {"score": 0.9}]))
    data = cli("compare", "v1", "v2", "--metric", "score", "--json").json
    m = metric(data, "score")
    assert m["verdict"] == "not enough data"
    assert m["p_value"] is None and m["p_adjusted"] is None and m["diff"] is None
    assert m["significant"] is False
    assert ("not enough data: v1 has 1 and v2 has 2 units with `score` (a test needs 2 or "
            "more on each side)") in m["warnings"]
    assert no_nan(data)


def test_all_identical_values_give_no_nan(write_calls, cli):
    write_calls(calls("v1", [{"ok": True, "q": 3}] * 12))
    write_calls(calls("v2", [{"ok": True, "q": 3}] * 12))
    data = cli("compare", "v1", "v2", "--json").json
    assert no_nan(data)
    for name, shown in (("ok", "1"), ("q", "3")):
        m = metric(data, name)
        assert m["p_value"] == 1.0 and m["verdict"] == "no significant difference"
        assert f"every `{name}` value is {shown} in both versions" in m["warnings"]
        assert "small sample (v1 n=12, v2 n=12): the verdict is fragile" in m["warnings"]
    table = cli("compare", "v1", "v2")
    assert "nan" not in table.out.lower()
    assert "Warning: ok: every `ok` value is 1 in both versions" in table.err


def test_metric_logged_for_one_version_only(write_calls, cli):
    write_calls(calls("v1", [{"ok": True}] * 5))
    write_calls(calls("v2", [{"ok": True, "rubric": 4}] * 5))
    data = cli("compare", "v1", "v2", "--json").json
    m = metric(data, "rubric")
    assert m["verdict"] == "not enough data" and m["a"]["n"] == 0 and m["b"]["n"] == 5
    assert m["warnings"][:2] == ["`rubric` was logged only for v2, not for v1",
                                 "dropped 5 of 5 call(s) under v1: 5 missing"]
    assert no_nan(data)


def test_mixed_booleans_and_numbers_are_reported(write_calls, cli):
    write_calls(calls("v1", [{"q": True}] * 4 + [{"q": 0.5}] * 6))
    write_calls(calls("v2", [{"q": 0.9}] * 10))
    m = metric(cli("compare", "v1", "v2", "--json").json, "q")
    assert m["kind"] == "numeric"
    assert ("`q` mixes booleans and numbers (4 booleans, 16 numbers); booleans count as 0 "
            "and 1") in m["warnings"]


def test_non_numeric_scores_are_skipped_and_counted(write_lines, cli):
    entries = []
    for i in range(10):
        entries.append({"prompt_id": "qa", "prompt_version": "v1",
                        "scores": {"q": "great" if i < 3 else 0.5, "verdict": "good"}})
        entries.append({"prompt_id": "qa", "prompt_version": "v2",
                        "scores": {"q": 0.8, "verdict": "bad"}})
    write_lines(entries)
    data = cli("compare", "v1", "v2", "--json").json
    m = metric(data, "q")
    assert m["a"]["n"] == 7 and m["b"]["n"] == 10
    assert "dropped 3 of 10 call(s) under v1: 3 not a number" in m["warnings"]
    assert m["dropped"]["a"] == {"failed": 0, "missing": 0, "non_numeric": 3, "out_of_range": 0}
    assert ("score `verdict` has no numeric values (20 non-numeric value(s) skipped)"
            in data["warnings"])


# -- output forms and the API ----------------------------------------------------------------


def test_table_output(write_calls, cli):
    write_calls(calls("v1", [{"correct": i < 40} for i in range(100)]))
    write_calls(calls("v2", [{"correct": i < 60} for i in range(100)]))
    run = cli("compare", "v1", "v2", "--metric", "correct")
    assert run.code == 0
    lines = run.out.splitlines()
    assert lines[0] == ("qa: v1 → v2 · unpaired, 100 vs 100 units (live traffic: one value "
                        "per unit_id, else per call) · α = 0.05")
    header = lines[2].split()
    assert header[:3] == ["metric", "v1", "v2"]
    row = next(line for line in lines if line.startswith("correct"))
    assert "40.0% (n=100)" in row and "60.0% (n=100)" in row
    assert "+20.0 pp [+6.1, +32.8]" in row and "+50.0%" in row
    assert "two proportion z" in row and row.rstrip().endswith("v2 better")
    assert any(line.startswith("Power (80%, α = 0.05) on correct: detectable difference ±")
               for line in lines)
    assert lines[-1].startswith("* Bayesian posterior probability")


def test_csv_and_nl_rows(write_calls, cli):
    write_calls(calls("v1", [{"correct": i < 40} for i in range(100)]))
    write_calls(calls("v2", [{"correct": i < 60} for i in range(100)]))
    csv = cli("compare", "v1", "v2", "--metric", "correct", "--csv").out.splitlines()
    assert csv[0].startswith("prompt,experiment,a,b,design,metric,kind")
    assert csv[1].startswith("qa,,v1,v2,unpaired,correct,binary")
    nl = cli("compare", "v1", "v2", "--nl").out.splitlines()
    assert [json.loads(x)["metric"] for x in nl] == ["correct", "error_rate"]


def test_python_api(write_calls, log_dir):
    import promptlab

    write_calls(calls("v1", [{"correct": i < 40} for i in range(100)]))
    write_calls(calls("v2", [{"correct": i < 60} for i in range(100)]))
    result = promptlab.compare("v1", "v2", metrics=["correct"], log_dir=log_dir)
    assert isinstance(result, promptlab.Comparison)
    assert result.design == "unpaired" and result.prompt == "qa"
    assert result.metrics[0].verdict == "v2 better"
    assert result.to_dict()["metrics"][0]["name"] == "correct"
    assert "v2 better" in result.table()
    with pytest.raises(promptlab.PromptlabError, match="compare needs two or more versions"):
        promptlab.compare("v1", log_dir=log_dir)


def test_large_data_path_gives_the_same_numbers(write_calls, cli, monkeypatch):
    from promptlab.comparison import _query

    three_versions(write_calls)
    small = cli("compare", "v1", "v2", "--json").json
    monkeypatch.setattr(_query, "VALUES_LIMIT", 0)
    large = cli("compare", "v1", "v2", "--json").json
    for a, b in zip(small["metrics"], large["metrics"], strict=True):
        for key in ("diff", "diff_ci", "p_value", "p_adjusted", "lift", "lift_ci", "mde"):
            assert a[key] == pytest.approx(b[key]), key
    q = metric(large, "quality")["robust"]
    assert q == {"test": "mann_whitney", "p_value": None, "skipped": "more than 0 units"}


def test_since_until_window(write_calls, cli):
    old = calls("v1", [{"ok": False}] * 5) + calls("v2", [{"ok": False}] * 5)
    write_calls(old)
    data = cli("compare", "v1", "v2", "--until", "2000-01-01T00:00:00Z", "--json")
    assert data.code == 2
    recent = cli("compare", "v1", "v2", "--since", "1d", "--json").json
    assert metric(recent, "ok")["a"]["n"] == 5


# -- where the scores and versions come from ---------------------------------------------------


def test_feedback_scores_are_compared_like_any_score(write_calls, cli, log_dir):
    from promptlab.logs.logger import Logger

    written = write_calls(calls("v1", [{}] * 30) + calls("v2", [{}] * 30))
    logger = Logger(log_dir, prices=False, strict=True)
    for i, entry in enumerate(written):
        helpful = i % 30 < (9 if entry["prompt_version"] == "v1" else 24)
        logger.feedback(entry["id"], helpful=helpful)
    m = metric(cli("compare", "v1", "v2", "--json").json, "helpful")
    assert m["a"]["mean"] == pytest.approx(0.3) and m["b"]["mean"] == pytest.approx(0.8)
    assert m["verdict"] == "v2 better"


def test_experiment_alone_compares_its_variants_in_file_order(split_experiment, write_calls,
                                                              cli):
    write_calls(split_rows(30, 30, 0.3, 0.8))
    data = cli("compare", "--experiment", "split", "--json").json
    assert (data["a"], data["b"], data["experiment"]) == ("v1", "v2", "split")


def test_variants_that_are_not_versions_find_their_experiment(write_calls, cli):
    rows = [{"prompt_id": "qa", "prompt_version": "v7", "model": "m", "experiment": "tone",
             "variant": variant, "unit_id": f"{variant}{i}", "scores": {"ok": i < k}}
            for variant, k in (("control", 10), ("friendly", 20)) for i in range(30)]
    write_calls(rows)
    data = cli("compare", "control", "friendly", "--json").json
    assert data["experiment"] == "tone" and data["prompt"] == "qa"
    assert metric(data, "ok")["b"]["mean"] == pytest.approx(20 / 30)


def test_mixed_experiment_and_live_entries_are_flagged(write_calls, cli):
    write_calls(calls("v1", [{"ok": True}] * 5) + calls("v2", [{"ok": False}] * 5))
    write_calls(calls("v1", [{"ok": True}] * 5, experiment="e1", variant="v1", item_id="a")
                + calls("v2", [{"ok": True}] * 5, experiment="e1", variant="v2", item_id="a"))
    data = cli("compare", "v1", "v2", "--json").json
    assert data["experiment"] is None and data["design"] == "unpaired"
    assert ("these entries come from experiment(s) e1 and live traffic; they are compared "
            "together, unpaired; pass --experiment NAME to compare one experiment"
            ) in data["warnings"]
    assert metric(data, "ok")["a"]["n"] + metric(data, "ok")["b"]["n"] == 12  # units


def test_a_broken_experiment_file_is_an_error_even_when_inferred(project, write_calls, cli):
    """The file found through the logs decides the design, the metrics, the tolerances and
    the sample-ratio check: a typo in it must not quietly change what a gate judges."""
    (project / "experiments").mkdir()
    (project / "experiments" / "sleep-ab.toml").write_text("prompt = [unclosed\n")
    write_calls(sleep_rows())
    run = cli("compare", "v1", "v2", "--fail-if-worse")
    assert run.code == 2 and run.out == "" and "invalid TOML" in run.err
    assert "(the experiment file of the calls compared; fix it, or move it out" in run.err
    assert len(run.err.strip().splitlines()) == 1
    run = cli("compare", "v1", "v2", "--experiment", "sleep-ab")
    assert run.code == 2 and "invalid TOML" in run.err
    assert len(run.err.strip().splitlines()) == 1


def test_the_shipped_example_end_to_end(project, cli):
    import shutil

    repo = Path(__file__).resolve().parents[2]
    shutil.copytree(repo / "experiments", project / "experiments")
    run = cli("experiment", "run", "code-review-ab")
    assert run.code == 0, run.err
    data = cli("compare", "v1", "v2", "--json").json
    assert (data["prompt"], data["experiment"], data["design"]) == (
        "code-review", "code-review-ab", "paired")
    finds = metric(data, "finds_bug")
    assert finds["role"] == "primary" and finds["test"] == "mcnemar_exact"
    assert finds["verdict"] == "v2 better"
    assert data == cli("experiment", "report", "code-review-ab", "--json").json
