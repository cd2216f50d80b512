"""Sticky assignment: the documented hash, stable across processes, balanced, exposed in
the CLI and in `Experiment.assign/render` for apps splitting live traffic."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections import Counter

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from promptlab.cli import main
from promptlab.experiments import load_experiment
from promptlab.experiments.assign import Splitter, assign, bucket


def reference(unit: str, weights: dict[str, float], salt: str) -> str:
    """design.md's algorithm, written out independently."""
    u = int(hashlib.sha256(f"{salt}:{unit}".encode()).hexdigest()[:15], 16) / 16**15
    total = sum(w for w in weights.values() if w > 0)
    cumulative = 0.0
    names = [n for n, w in weights.items() if w > 0]
    for name in names:
        cumulative += weights[name] / total
        if u < cumulative:
            return name
    return names[-1]


def test_known_vectors_never_change() -> None:
    # Literal values: a service in any language must reproduce exactly these.
    assert bucket("user-1", "code-review-ab") == 0.47863203897239115
    assert bucket("42", "code-review-ab") == 0.8938192976308547
    weights = {"v1": 50, "v2": 50}
    got = {u: assign(u, weights, "code-review-ab") for u in ("user-1", "user-2", "u3", "42")}
    assert got == {"user-1": "v1", "user-2": "v2", "u3": "v2", "42": "v2"}
    assert got == {u: reference(u, weights, "code-review-ab") for u in got}
    assert assign("42", {"a": 1, "b": 2, "c": 1}, "exp") == "b"  # 0.4715 in [0.25, 0.75)


def test_bucket_matches_a_hand_computed_value() -> None:
    digest = hashlib.sha256(b"salt:abc").hexdigest()
    assert bucket("abc", "salt") == int(digest[:15], 16) / 16**15
    assert 0 <= bucket("abc", "salt") < 1


@given(unit=st.text(max_size=40), salt=st.text(min_size=1, max_size=20),
       weights=st.lists(st.integers(min_value=0, max_value=100), min_size=1, max_size=5)
       .filter(lambda ws: sum(ws) > 0))
@settings(max_examples=300, deadline=None)
def test_assignment_matches_the_documented_algorithm(unit: str, salt: str,
                                                     weights: list[int]) -> None:
    named = {f"v{i + 1}": float(w) for i, w in enumerate(weights)}
    variant = Splitter(named, salt).assign(unit)
    assert variant == reference(unit, named, salt)
    assert named[variant] > 0  # a zero-weight variant never gets traffic
    assert Splitter(named, salt).assign(unit) == variant  # sticky


def test_stable_across_processes_with_different_hash_seeds() -> None:
    units = [f"user-{i}" for i in range(200)]
    here = [assign(u, {"a": 1, "b": 2, "c": 1}, "exp") for u in units]
    code = ("import json,sys; from promptlab.experiments.assign import assign; "
            "print(json.dumps([assign(u, {'a': 1, 'b': 2, 'c': 1}, 'exp') "
            "for u in json.loads(sys.argv[1])]))")
    for seed in ("1", "12345"):
        out = subprocess.run([sys.executable, "-c", code, json.dumps(units)], text=True,
                             capture_output=True, check=True,
                             env={**os.environ, "PYTHONHASHSEED": seed}).stdout
        assert json.loads(out) == here


def test_split_is_within_sampling_error_of_the_weights_over_100k_units() -> None:
    from scipy.stats import chisquare

    weights = {"v1": 50, "v2": 30, "v3": 20}
    splitter = Splitter(weights, "traffic-test")
    n = 100_000
    counts = Counter(splitter.assign(f"unit-{i}") for i in range(n))
    expected = [n * w / 100 for w in weights.values()]
    observed = [counts[v] for v in weights]
    result = chisquare(observed, expected)
    assert result.pvalue > 0.001, (observed, expected)
    for obs, exp in zip(observed, expected, strict=True):
        assert abs(obs - exp) / exp < 0.02


def test_different_salts_reshuffle_units() -> None:
    units = [str(i) for i in range(1000)]
    a = [assign(u, {"x": 1, "y": 1}, "salt-a") for u in units]
    b = [assign(u, {"x": 1, "y": 1}, "salt-b") for u in units]
    agree = sum(x == y for x, y in zip(a, b, strict=True)) / len(units)
    assert 0.4 < agree < 0.6  # independent


def test_experiment_assign_uses_the_name_as_default_salt(exp_project, toml, rows) -> None:
    exp_project.write("ab", toml(), rows)
    exp = load_experiment("ab")
    assert exp.salt == "ab"
    assert exp.assign("user-7") == reference("user-7", {"v1": 50, "v2": 50}, "ab")
    exp_project.write("salted", 'salt = "s1"\n' + toml())
    assert load_experiment("salted").assign("user-7") == reference(
        "user-7", {"v1": 50, "v2": 50}, "s1")


def test_render_stamps_experiment_variant_and_unit(exp_project, toml, rows) -> None:
    from promptlab.logs.logger import Logger

    exp_project.write("ab", toml(), rows)
    exp = load_experiment("ab")
    rendered = exp.render("user-7", code="def f(): pass")
    variant = exp.assign("user-7")
    assert rendered.stamp["experiment"] == "ab"
    assert rendered.stamp["variant"] == variant
    assert rendered.stamp["unit_id"] == "user-7"
    assert rendered.stamp["prompt_version"] == variant
    assert "def f(): pass" in rendered.user
    logger = Logger(exp_project.log_dir)
    with logger.call(rendered) as call:
        call.finish(response="looks fine")
    entry = exp_project.entries()[-1]
    assert (entry["experiment"], entry["variant"], entry["unit_id"]) == ("ab", variant, "user-7")


def test_cli_assign_prints_the_variant(exp_project, toml, rows) -> None:
    exp_project.write("ab", toml(), rows)
    runner = CliRunner()
    result = runner.invoke(main, ["experiment", "assign", "ab", "user-1"])
    assert result.exit_code == 0
    assert result.output == reference("user-1", {"v1": 50, "v2": 50}, "ab") + "\n"
    result = runner.invoke(main, ["experiment", "assign", "ab", "-", "--json"],
                           input="user-1\nuser-2\n\n")
    assert json.loads(result.output) == [
        {"unit": u, "variant": reference(u, {"v1": 50, "v2": 50}, "ab")}
        for u in ("user-1", "user-2")]
    result = runner.invoke(main, ["experiment", "assign", "ab", "a", "b"])
    assert result.output.splitlines()[0].split() == ["unit", "variant"]
    assert len(result.output.splitlines()) == 4


def test_cli_assign_unknown_experiment_is_one_line(exp_project, toml, rows) -> None:
    exp_project.write("code-review-ab", toml(), rows)
    result = CliRunner().invoke(main, ["experiment", "assign", "code-review-a", "u1"])
    assert result.exit_code == 2
    assert result.stderr == ("Error: no experiment 'code-review-a' in experiments/; "
                             "did you mean 'code-review-ab'?\n")


def test_an_empty_unit_is_refused(exp_project, toml, rows) -> None:
    """An unset variable (`assign ab "$USER_ID"`, `render(None)`) would send every such
    request to one variant; it is refused, in the API and on the command line."""
    from promptlab.errors import ExperimentError

    exp_project.write("ab", toml(), rows)
    exp = load_experiment("ab")
    for unit in (None, "", "   "):
        with pytest.raises(ExperimentError, match="the unit to assign is empty"):
            exp.assign(unit)
        with pytest.raises(ExperimentError, match="the unit to assign is empty"):
            exp.render(unit, code="x")
    assert exp.assign(0) == reference("0", {"v1": 50, "v2": 50}, "ab")  # a falsy id is an id
    with pytest.raises(ExperimentError, match="the unit 'caf\\\\udce9' is not valid UTF-8"):
        exp.assign("caf\udce9")  # `printf 'caf\xe9'` read from stdin or argv
    for args in (["ab", ""], ["ab", "u1", " "]):
        result = CliRunner().invoke(main, ["experiment", "assign", *args])
        assert result.exit_code == 2
        assert result.stderr.startswith("Error: experiment 'ab': the unit to assign is empty")
        assert result.stdout == ""
