"""Guardrail tolerance (a relative non-inferiority margin): the verdict at the margin, the
experiment file's `[metrics] tolerance`, `--tolerance`, `--fail-if-worse` and the JSON."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from promptlab.comparison import ArmSummary, MetricResult, PairComparison
from promptlab.comparison._verdict import adjust


def metric(data: dict, name: str) -> dict:
    return next(m for m in data["metrics"] if m["name"] == name)


def judged(lift_ci: tuple[float, float] | None, tolerance: float | None,
           direction: str = "lower", p_value: float = 0.001) -> MetricResult:
    """A significantly different metric (diff in the direction of the lift) after adjust."""
    lift = None if lift_ci is None else sum(lift_ci) / 2
    diff = 1.0 if lift is None or lift > 0 else -1.0
    m = MetricResult("latency_ms", "numeric", "paired_t", direction,
                     ArmSummary(40, 10.0, (9.0, 11.0)), ArmSummary(40, 12.0, (11.0, 13.0)),
                     diff=diff, diff_ci=(diff - 0.5, diff + 0.5), lift=lift, lift_ci=lift_ci,
                     p_value=p_value, tolerance=tolerance)
    adjust([PairComparison("v1", "v2", "paired", [m])], 0.05, "holm")
    return m


# -- the verdict at the margin -------------------------------------------------------------


@pytest.mark.parametrize("lift_ci, verdict, worse", [
    ((0.26, 0.40), "v2 worse beyond tolerance (+25%)", True),
    ((0.25, 0.40), "v2 worse, not clearly beyond tolerance (+25%)", False),  # low = margin
    ((0.10, 0.30), "v2 worse, not clearly beyond tolerance (+25%)", False),
    ((0.10, 0.25), "v2 worse, within tolerance (≤ +25%)", False),  # high = margin
    ((0.01, 0.05), "v2 worse, within tolerance (≤ +25%)", False),
])
def test_lower_is_better_margin(lift_ci, verdict, worse):
    m = judged(lift_ci, 0.25)
    assert (m.verdict, m.worse, m.significant) == (verdict, worse, True)


@pytest.mark.parametrize("lift_ci, verdict, worse", [
    ((-0.40, -0.11), "v2 worse beyond tolerance (-10%)", True),
    ((-0.40, -0.10), "v2 worse, not clearly beyond tolerance (-10%)", False),
    ((-0.10, -0.02), "v2 worse, within tolerance (≥ -10%)", False),
])
def test_higher_is_better_margin(lift_ci, verdict, worse):
    m = judged(lift_ci, 0.10, direction="higher")
    assert (m.verdict, m.worse) == (verdict, worse)


def test_without_a_tolerance_or_when_better_nothing_changes():
    plain = judged((0.01, 0.05), None)
    assert (plain.verdict, plain.worse, plain.to_dict()["tolerance"]) == ("v2 worse", True, None)
    better = judged((-0.40, -0.30), 0.25)
    assert (better.verdict, better.worse) == ("v2 better", False)
    unsure = judged((0.30, 0.40), 0.25, p_value=0.2)  # not significant: the margin is moot
    assert (unsure.verdict, unsure.worse) == ("no significant difference", False)


def test_zero_tolerance_fails_only_when_the_lift_interval_excludes_zero():
    assert judged((0.01, 0.05), 0.0).verdict == "v2 worse beyond tolerance (+0%)"
    assert judged((0.0, 0.05), 0.0).worse is False


def test_no_lift_over_a_zero_baseline_keeps_worse_and_says_why():
    m = judged(None, 0.25)
    assert (m.verdict, m.worse) == ("v2 worse", True)
    assert m.warnings == ["the +25% tolerance cannot be applied (no relative lift over a zero "
                          "baseline): any significant worsening counts as worse"]


@settings(max_examples=300, deadline=None)
@given(low=st.floats(-2, 2), width=st.floats(0, 2), tolerance=st.floats(0, 3),
       direction=st.sampled_from(["higher", "lower"]), p=st.floats(0, 1))
def test_a_tolerance_only_softens_and_fails_exactly_beyond_the_margin(low, width, tolerance,
                                                                    direction, p):
    ci = (low, low + width)
    with_margin, without = judged(ci, tolerance, direction, p), judged(ci, None, direction, p)
    assert not with_margin.worse or without.worse
    bad = [x if direction == "lower" else -x for x in ci]
    if without.worse:
        assert with_margin.worse == (min(bad) > tolerance)
    json.dumps(with_margin.to_dict(), allow_nan=False)


# -- end to end: experiment file, --tolerance, --fail-if-worse, JSON -----------------------


def slower(write_calls, lift: float = 0.2) -> None:
    """v2 is 20 ms slower on latency of 100–104 ms (a +19.6 % lift, CI about ±0.7 %)."""
    for version, base in (("v1", 100.0), ("v2", 100.0 * (1 + lift))):
        write_calls([{"prompt_id": "qa", "prompt_version": version, "model": "m",
                      "latency_ms": base + i % 5, "scores": {"ok": i % 2 == 0}}
                     for i in range(40)])


@pytest.mark.parametrize("option, code, verdict", [
    ("latency_ms=0.1", 1, "v2 worse beyond tolerance (+10%)"),
    ("latency_ms=10%", 1, "v2 worse beyond tolerance (+10%)"),
    ("latency_ms=0.2", 0, "v2 worse, not clearly beyond tolerance (+20%)"),
    ("latency_ms=0.3", 0, "v2 worse, within tolerance (≤ +30%)"),
])
def test_tolerance_option_and_fail_if_worse(write_calls, cli, option, code, verdict):
    slower(write_calls)
    run = cli("compare", "v1", "v2", "--metric", "latency_ms", "--tolerance", option,
              "--fail-if-worse")
    assert run.code == code, run.err
    assert verdict in run.out
    margin = verdict.split("(")[1].rstrip(")").lstrip("≤ ")
    assert (f"Tolerance (relative): latency_ms {margin}; such a metric counts as worse only "
            "when its whole lift interval lies beyond the margin.") in run.out
    if code:
        assert run.err.startswith(
            "Failed: v2 is significantly worse than v1 on latency_ms: v2 − v1 = +20, ")
        assert run.err.strip().endswith(
            "; lift +19.6% [+18.9%, +20.3%] lies beyond the +10% tolerance")
    else:
        assert "Failed" not in run.err


def test_json_has_the_tolerance_per_metric(write_calls, cli):
    slower(write_calls)
    data = cli("compare", "v1", "v2", "--tolerance", "latency_ms=0.5", "--json").json
    lat = metric(data, "latency_ms")
    assert lat["tolerance"] == 0.5 and lat["verdict"] == "v2 worse, within tolerance (≤ +50%)"
    assert lat["significant"] is True
    assert [(m["name"], m["tolerance"]) for m in data["metrics"]] == [
        ("ok", None), ("latency_ms", 0.5), ("error_rate", None)]
    rows = cli("compare", "v1", "v2", "--tolerance", "latency_ms=0.5", "--nl").out
    assert {json.loads(r)["metric"]: json.loads(r)["tolerance"]
            for r in rows.splitlines()}["latency_ms"] == 0.5


def test_without_tolerance_the_gate_fails_as_before(write_calls, cli):
    slower(write_calls)
    run = cli("compare", "v1", "v2", "--metric", "latency_ms", "--fail-if-worse")
    assert run.code == 1
    assert "  v2 worse\n" in run.out and "Tolerance" not in run.out
    assert run.err.startswith("Failed: v2 is significantly worse than v1 on latency_ms: "
                              "v2 − v1 = +20, adjusted p = ")
    assert "tolerance" not in run.err


@pytest.mark.parametrize("args, message", [
    (["--tolerance", "latency_ms"],
     "Error: --tolerance 'latency_ms': use METRIC=FRACTION, e.g. --tolerance latency_ms=0.25 "
     "(up to 25% worse)"),
    (["--tolerance", "latency_ms=fast"],
     "Error: --tolerance 'latency_ms=fast': use METRIC=FRACTION"),
    (["--tolerance", "=0.2"], "Error: --tolerance '=0.2': use METRIC=FRACTION"),
    (["--tolerance", "latency_ms=-0.1"],
     "Error: --tolerance latency_ms=-0.1: the tolerance must be a number ≥ 0 (a fraction: "
     "0.25 = up to 25% worse)"),
    (["--tolerance", "latency_ms=inf"], "Error: --tolerance latency_ms=inf: the tolerance"),
    (["--tolerance", "latency_ms=0.1", "--tolerance", "latency_ms=0.2"],
     "Error: --tolerance latency_ms is given twice; give each metric once"),
    (["--tolerance", "latency=0.2"],
     "Error: --tolerance latency: no metric 'latency' in this comparison; compared: ok, "
     "latency_ms, error_rate"),
])
def test_bad_tolerance_options_are_one_line(write_calls, cli, args, message):
    slower(write_calls)
    run = cli("compare", "v1", "v2", *args)
    assert run.code == 2 and run.out == ""
    assert run.err.startswith(message)
    assert len(run.err.strip().splitlines()) == 1


SPLIT_TOML = """
prompt = "qa"
[variants]
v1 = 50
v2 = 50
[metrics]
primary = "ok"
guardrails = ["latency_ms"]
tolerance = {latency_ms = 0.3}
"""


@pytest.fixture
def guarded(project: Path, write_calls) -> None:
    (project / "experiments").mkdir(exist_ok=True)
    (project / "experiments" / "split.toml").write_text(SPLIT_TOML)
    for version, base in (("v1", 100.0), ("v2", 120.0)):
        write_calls([{"prompt_id": "qa", "prompt_version": version, "model": "m",
                      "experiment": "split", "variant": version, "unit_id": f"{version}-{i}",
                      "latency_ms": base + i % 5, "scores": {"ok": i % 2 == 0}}
                     for i in range(40)])


def test_the_experiment_files_tolerance_is_used_and_the_option_overrides_it(guarded, cli):
    run = cli("compare", "v1", "v2", "--experiment", "split", "--fail-if-worse", "--json")
    assert run.code == 0, run.err
    lat = metric(run.json, "latency_ms")
    assert (lat["role"], lat["tolerance"]) == ("guardrail", 0.3)
    assert lat["verdict"] == "v2 worse, within tolerance (≤ +30%)"
    assert metric(run.json, "ok")["tolerance"] is None
    strict = cli("compare", "v1", "v2", "--experiment", "split", "--fail-if-worse",
                 "--tolerance", "latency_ms=0.05")
    assert strict.code == 1
    assert "Failed: v2 is significantly worse than v1 on latency_ms (guardrail)" in strict.err
    report = cli("experiment", "report", "split", "--fail-if-worse", "--tolerance",
                 "latency_ms=0.05", "--json")
    assert report.code == 1
    assert metric(report.json, "latency_ms")["verdict"] == "v2 worse beyond tolerance (+5%)"


def test_the_python_api_takes_a_tolerance(guarded, log_dir):
    import promptlab

    result = promptlab.compare("v1", "v2", experiment="split", tolerance={"latency_ms": 0.05},
                               log_dir=log_dir)
    assert [(p.b, m.name) for p, m in result.worse()] == [("v2", "latency_ms")]
    with pytest.raises(promptlab.PromptlabError, match="the tolerance must be a number ≥ 0"):
        promptlab.compare("v1", "v2", tolerance={"latency_ms": "0.1"}, log_dir=log_dir)


def test_the_shipped_example_passes_its_gate(project, cli):
    import shutil

    repo = Path(__file__).resolve().parents[2]
    shutil.copytree(repo / "experiments", project / "experiments")
    assert cli("experiment", "run", "code-review-ab").code == 0
    run = cli("compare", "v1", "v2", "--fail-if-worse", "--json")
    assert run.code == 0, run.err
    lat = metric(run.json, "latency_ms")
    assert lat["tolerance"] == 0.5 and lat["lift_ci"][0] <= 0.5
    assert metric(run.json, "finds_bug")["verdict"] == "v2 better"


UNCONFIGURED_TOML = """
prompt = "qa"
[variants]
v1 = 50
v2 = 50
[[scorers]]
name = "correct"
type = "equals"
value = "yes"
[[scorers]]
name = "polite"
type = "equals"
value = "please"
"""


@pytest.fixture
def unconfigured(project: Path, write_calls) -> None:
    """Two scorers, no [metrics] table: v2 is as correct as v1 but much less polite."""
    (project / "experiments").mkdir(exist_ok=True)
    (project / "experiments" / "two.toml").write_text(UNCONFIGURED_TOML)
    for version in ("v1", "v2"):
        write_calls([{"prompt_id": "qa", "prompt_version": version, "model": "m",
                      "experiment": "two", "variant": version, "unit_id": f"{version}-{i}",
                      "latency_ms": 100.0 + i % 3,
                      "scores": {"correct": i % 2 == 0,
                                 "polite": i % 10 != 0 if version == "v1" else i % 10 == 0}}
                     for i in range(60)])


def test_without_a_metrics_table_every_metric_is_compared_and_watched(unconfigured, cli):
    """docs/compare.md: only a [metrics] table narrows what is compared; without one every
    score and the built-in metrics are, and --fail-if-worse watches them all (the first
    scorer used to be taken as the only primary metric, hiding 'polite')."""
    for args in (["compare", "v1", "v2"], ["experiment", "report", "two"]):
        run = cli(*args, "--fail-if-worse", "--json")
        assert run.code == 1, (args, run.err)
        names = [m["name"] for m in run.json["metrics"]]
        assert {"correct", "polite", "latency_ms", "error_rate"} <= set(names), names
        assert metric(run.json, "polite")["verdict"] == "v2 worse"
        assert metric(run.json, "correct")["role"] is None
        assert "on polite" in run.err


def test_the_gate_watches_the_metrics_asked_for(unconfigured, guarded, cli):
    """With --metric, --fail-if-worse judges exactly those metrics: a worse one fails the
    gate (it said "not enough data", exit 3, when the metric was not a configured one)."""
    run = cli("compare", "v1", "v2", "--experiment", "two", "--metric", "polite",
              "--fail-if-worse")
    assert run.code == 1 and "on polite" in run.err, run.err
    run = cli("compare", "v1", "v2", "--experiment", "two", "--metric", "correct",
              "--fail-if-worse")
    assert run.code == 0, run.err
    # A configured experiment (primary 'ok', guardrail latency_ms): a metric outside them.
    run = cli("compare", "v1", "v2", "--experiment", "split", "--metric", "error_rate",
              "--fail-if-worse")
    assert run.code == 0, run.err
    run = cli("compare", "v1", "v2", "--experiment", "split", "--metric", "latency_ms",
              "--fail-if-worse", "--tolerance", "latency_ms=0.05")
    assert run.code == 1 and "on latency_ms (guardrail)" in run.err, run.err


def test_weights_changed_mid_experiment_are_named_and_since_is_the_remedy(project, write_lines,
                                                                          cli):
    """Ramping v2 from 10 % to 50 % moves the boundary: units between the old and the new
    one change variant and count in both arms, and the sample-ratio check against today's
    weights fails. Both are said, with the remedy; after the change all is well."""
    from promptlab.experiments import load_experiment

    (project / "experiments").mkdir(exist_ok=True)
    path = project / "experiments" / "ramp.toml"
    text = 'prompt = "qa"\n[variants]\nv1 = 90\nv2 = 10\n[metrics]\nprimary = "ok"\n'

    def phase(day: str) -> None:
        exp = load_experiment("ramp")
        write_lines([{"kind": "llm", "model": "m", "prompt_id": "qa", "experiment": "ramp",
                      "prompt_version": (v := exp.assign(f"user-{i}")), "variant": v,
                      "unit_id": f"user-{i}", "scores": {"ok": i % 2 == 0},
                      "id": f"01JRAMP{day[-2:]}{i:019d}", "timestamp": f"{day}T12:00:00Z"}
                     for i in range(400)], day=day)

    path.write_text(text)
    phase("2026-11-01")
    path.write_text(text.replace("v1 = 90", "v1 = 50").replace("v2 = 10", "v2 = 50"))
    phase("2026-11-02")
    run = cli("compare", "v1", "v2", "--json")
    assert 100 < run.json["shared_units"] < 200  # those with a bucket in [0.5, 0.9)
    assert run.json["srm_status"] == "mismatch"
    warnings = " ".join(run.json["warnings"])
    assert "had calls under both v1 and v2, and count in both arms" in warnings
    assert "suggest the weights changed during the experiment" in warnings
    after = cli("compare", "v1", "v2", "--since", "2026-11-02", "--json").json
    assert after["shared_units"] is None or after["shared_units"] == 0
    assert after["srm_status"] == "ok"
