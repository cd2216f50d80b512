"""Scorers, one by one, with `not_`, weights and Jinja values; judge prompts from the
registry; and a scorer failing on one output is recorded on that cell, not fatal."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from promptlab.cli import main
from promptlab.errors import ExperimentError, ScorerError
from promptlab.experiments.scorers import (
    ScoreInput,
    ScorerRuntime,
    build_scorers,
    overall,
    parse_scorer,
    parse_verdict,
)


def scorer(table: dict[str, Any], runtime: ScorerRuntime | None = None):  # type: ignore[no-untyped-def]
    spec = parse_scorer(table, 1, "exp.toml")
    return build_scorers([spec], runtime or ScorerRuntime(base_dir=Path.cwd()))[0]


def inp(output: str, expected: Any = None, **kw: Any) -> ScoreInput:
    return ScoreInput(output=output, item_id=kw.pop("item_id", "i1"),
                      vars=kw.pop("vars", {"code": "def f(): pass", "lang": "Python"}),
                      expected=expected, **kw)


def test_equals() -> None:
    s = scorer({"name": "eq", "type": "equals", "value": "{{ expected }}"})
    assert s(inp("  42\n", expected="42")) is True
    assert s(inp("42.0", expected="42")) is False
    s = scorer({"type": "equals", "value": "yes", "ignore_case": True})
    assert s(inp("YES")) is True


def test_contains_any_all_and_case() -> None:
    s = scorer({"type": "contains", "value": "{{ expected }}"})
    assert s(inp("an off-by-one bug", expected=["off by one", "off-by-one"])) is True
    assert s(inp("an Off-By-One bug", expected=["off-by-one"])) is False
    assert scorer({"type": "icontains", "value": "{{ expected }}"})(
        inp("an Off-By-One bug", expected=["off-by-one"])) is True
    both = scorer({"type": "contains", "value": ["line 3", "fix"], "all": True})
    assert both(inp("line 3: fix it")) is True
    assert both(inp("line 3 only")) is False
    # Jinja sees the variables directly and through vars
    assert scorer({"type": "contains", "value": "{{ lang }} {{ vars.lang }}"})(
        inp("Python Python")) is True


def test_not_negates_bools_and_unit_numbers() -> None:
    s = scorer({"type": "contains", "value": "TODO", "not_": True})
    assert s(inp("all done")) is True
    assert s(inp("TODO: later")) is False
    s = scorer({"type": "contains", "value": "x", "not": True})  # the plain spelling works too
    assert s(inp("y")) is True


def test_regex_and_flags() -> None:
    s = scorer({"type": "regex", "value": r"line \d+"})
    assert s(inp("bug on line 12")) is True
    assert s(inp("bug on LINE 12")) is False
    assert scorer({"type": "regex", "value": r"line \d+", "flags": "i"})(inp("LINE 1")) is True
    dynamic = scorer({"type": "regex", "value": "^{{ expected }}$"})
    assert dynamic(inp("v2", expected="v2")) is True


def test_a_regex_that_backtracks_forever_is_a_scorer_error_not_a_hang() -> None:
    """`(a|aa)+b` against 60 a's takes the standard `re` longer than anyone waits (and
    holds off Ctrl-C); the regex scorer gives up after its time limit, for that cell."""
    import time

    from promptlab.experiments.scorers._match import Regex

    s = scorer({"name": "r", "type": "regex", "value": "(a|aa)+b"})
    started = time.monotonic()
    with pytest.raises(ScorerError, match=r"ran past 1s on this output \(it backtracks"):
        s(inp("a" * 60))
    assert time.monotonic() - started < Regex.TIME_LIMIT_S + 10
    assert s(inp("aaab")) is True  # the same pattern on an output it can decide


def test_broken_regex_fails_at_load_time_and_dynamic_one_per_cell() -> None:
    with pytest.raises(ScorerError) as info:
        parse_scorer({"name": "r", "type": "regex", "value": "[a-"}, 2, "exp.toml")
    assert str(info.value) == ("exp.toml: [[scorers]] 'r': invalid regular expression '[a-': "
                               "unterminated character set at position 3")
    dynamic = scorer({"name": "r", "type": "regex", "value": "{{ expected }}"})
    with pytest.raises(ScorerError, match="invalid regular expression"):
        dynamic(inp("x", expected="(("))


def test_json_valid() -> None:
    s = scorer({"type": "json_valid"})
    assert s(inp('{"bug": "off-by-one"}')) is True
    assert s(inp('```json\n{"a": 1}\n```')) is True
    assert s(inp("{'a': 1}")) is False
    assert scorer({"type": "json_valid", "not_": True})(inp("plain text")) is True


def test_max_latency() -> None:
    s = scorer({"type": "max_latency_ms", "value": 100})
    assert s(inp("x", latency_ms=99.5)) is True
    assert s(inp("x", latency_ms=150)) is False
    for bad in ("fast", float("nan"), float("inf"), -5, True):  # nan scored 0, inf 1, -5 0
        with pytest.raises(ExperimentError,
                           match="'value' must be a finite number of milliseconds ≥ 0"):
            parse_scorer({"type": "max_latency_ms", "value": bad}, 1, "exp.toml")


def test_python_scorer(tmp_path: Path) -> None:
    (tmp_path / "checks.py").write_text(textwrap.dedent("""
        def mentions_line(output, expected, vars):
            return f"line {expected}" in output and vars["lang"] == "Python"

        def length_score(output):
            return min(1.0, len(output) / 10)

        def broken(output):
            return {"not": "a score"}
    """))
    runtime = ScorerRuntime(base_dir=tmp_path)
    s = scorer({"type": "python", "function": "checks.py:mentions_line"}, runtime)
    assert s(inp("bug on line 3", expected=3)) is True
    length = scorer({"type": "python", "function": "checks.py:length_score", "not_": True},
                    runtime)
    assert length(inp("12345")) == 0.5
    broken = scorer({"name": "b", "type": "python", "function": "checks.py:broken"}, runtime)
    with pytest.raises(ScorerError, match="scorer 'b' returned dict"):
        broken(inp("x"))


def test_a_scorer_that_exits_or_returns_an_endless_number_fails_its_cell(tmp_path: Path) -> None:
    """sys.exit() in a scorer ended the whole run silently (exit 3, nothing logged), and
    10**400 was an OverflowError traceback: each is now that cell's scorer failure."""
    (tmp_path / "checks.py").write_text(textwrap.dedent("""
        def leave(output):
            raise SystemExit(3)

        def endless(output):
            return 10**5000
    """))
    runtime = ScorerRuntime(base_dir=tmp_path)
    leave = scorer({"name": "l", "type": "python", "function": "checks.py:leave"}, runtime)
    with pytest.raises(ScorerError, match="SystemExit: 3"):
        leave(inp("x"))
    endless = scorer({"name": "e", "type": "python", "function": "checks.py:endless"}, runtime)
    with pytest.raises(ScorerError, match="scorer 'e' returned an integer of 5001 digits"):
        endless(inp("x"))


def test_command_scorer(tmp_path: Path) -> None:
    path = tmp_path / "judge.py"
    path.write_text(textwrap.dedent("""
        import json, sys
        data = json.load(sys.stdin)
        if data["output"] == "crash":
            print("cannot judge", file=sys.stderr)
            sys.exit(2)
        print("PASS" if data["expected"] in data["output"] else "FAIL")
    """))
    s = scorer({"name": "cmd", "type": "command", "command": [sys.executable, str(path)]})
    assert s(inp("has bug", expected="bug")) is True
    assert s(inp("nothing", expected="bug")) is False
    with pytest.raises(ScorerError) as info:
        s(inp("crash", expected="bug"))
    assert str(info.value) == (f"command {sys.executable!r} exited with status 2: "
                               "cannot judge")


@pytest.mark.parametrize(("text", "mode", "expected"), [
    ("PASS", "auto", True), ("Verdict: fail", "auto", False), ("8/10", "auto", 8.0),
    ('{"score": 0.75}', "auto", 0.75), ("true", "auto", True), ("Score: 4", "number", 4.0),
    ("yes, it is correct", "pass_fail", True),
])
def test_parse_verdict(text: str, mode: str, expected: Any) -> None:
    assert parse_verdict(text, mode, "judge") == expected


def test_parse_verdict_without_a_verdict() -> None:
    with pytest.raises(ScorerError, match="judge gave no PASS/FAIL verdict: 'maybe'"):
        parse_verdict("maybe", "pass_fail", "judge")
    with pytest.raises(ScorerError, match="judge gave no score"):
        parse_verdict("hmm", "auto", "judge")


def test_overall_is_the_weighted_mean() -> None:
    specs = [parse_scorer({"name": "a", "type": "json_valid", "weight": 3}, 1, "f"),
             parse_scorer({"name": "b", "type": "json_valid", "weight": 1}, 2, "f"),
             parse_scorer({"name": "c", "type": "json_valid", "weight": 0}, 3, "f")]
    assert overall({"a": True, "b": False, "c": True}, specs) == 0.75
    assert overall({"a": True, "c": True}, specs) is None  # b failed to score
    assert overall({"a": True, "b": False}, specs) == 0.75  # c (weight 0) failing: no matter


# -- through the runner ----------------------------------------------------------------------


def test_llm_judge_uses_a_versioned_prompt_and_a_provider(exp_project, toml, rows) -> None:
    judge_dir = exp_project.root / "prompts" / "judge"
    judge_dir.mkdir()
    (judge_dir / "v1.txt").write_text("Expected {{ expected }}.\nAnswer: {{ output }}\n")
    (exp_project.experiments).mkdir()
    (exp_project.experiments / "judge_model.py").write_text(textwrap.dedent("""
        import re
        def judge(text):
            expected = re.search(r"Expected (\\w+)", text).group(1)
            answer = text.split("Answer:", 1)[1]
            return "PASS" if expected in answer else "FAIL"
    """))
    exp_project.write("ab", toml(scorers='''
[[scorers]]
name = "judged"
type = "llm_judge"
prompt = "judge"
provider = {type = "python", function = "judge_model.py:judge"}

[[scorers]]
name = "long"
type = "regex"
value = ".{5000}"
'''), rows)
    result = CliRunner().invoke(main, ["experiment", "run", "ab", "-q"])
    assert result.exit_code == 0, result.output
    entries = [e for e in exp_project.entries() if "judge" not in e.get("tags", [])]
    judged = [e for e in exp_project.entries() if "judge" in e.get("tags", [])]
    assert len(entries) == 12
    # echo repeats the prompt, which contains the code, which contains f{i} = expected
    assert all(e["scores"] == {"judged": True, "long": False, "overall": 0.5} for e in entries)
    assert all(e["metadata"]["judges"] == {"judged": "judge/v1"} for e in entries)
    # every judge call is logged too, stamped with the judge prompt, never as a cell
    assert len(judged) == 12
    first = judged[0]
    assert (first["prompt_id"], first["prompt_version"], first["assistant_response"]) == (
        "judge", "v1", "PASS")
    assert "experiment" not in first and first["run_id"] == entries[0]["run_id"]
    assert first["metadata"]["judge_for"]["scorer"] == "judged"
    assert {(j["metadata"]["judge_for"]["item_id"], j["metadata"]["judge_for"]["variant"])
            for j in judged} == {(e["item_id"], e["variant"]) for e in entries}


def test_a_failing_scorer_is_recorded_on_the_cell(exp_project, toml, rows) -> None:
    exp_project.experiments.mkdir()
    (exp_project.experiments / "checks.py").write_text(textwrap.dedent("""
        def picky(output, item_id):
            if item_id == "item-1":
                raise ValueError("cannot score item-1")
            return True
    """))
    exp_project.write("ab", toml(scorers='''
[[scorers]]
name = "picky"
type = "python"
function = "checks.py:picky"
'''), rows)
    result = CliRunner().invoke(main, ["experiment", "run", "ab", "-q"])
    assert result.exit_code == 0, result.output
    entries = {(e["item_id"], e["variant"]): e for e in exp_project.entries()}
    bad = entries[("item-1", "v1")]
    assert bad["status"] == "ok" and "scores" not in bad
    assert bad["metadata"]["scorer_errors"] == {"picky": "ValueError: cannot score item-1"}
    assert entries[("item-2", "v2")]["scores"] == {"picky": True}


def test_third_party_scorer_via_entry_point(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    site = tmp_path / "site"
    (site / "acme_checks").mkdir(parents=True)
    (site / "acme_checks" / "__init__.py").write_text(textwrap.dedent("""
        from promptlab.experiments.scorers import Scorer

        class Shouty(Scorer):
            type = "shouty"
            keys = frozenset({"min_ratio"})

            def score(self, inp):
                letters = [c for c in inp.output if c.isalpha()]
                upper = sum(c.isupper() for c in letters) / max(1, len(letters))
                return upper >= self.spec.options.get("min_ratio", 0.5)
    """))
    dist = site / "acme_checks-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-checks\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[promptlab.scorers]\nshouty = acme_checks:Shouty\n")
    monkeypatch.syspath_prepend(str(site))
    s = scorer({"name": "loud", "type": "shouty", "min_ratio": 0.8})
    assert s(inp("HELLO THERE")) is True
    assert s(inp("Hello there")) is False
    with pytest.raises(ExperimentError, match="unknown key 'ratio' for scorer type 'shouty'"):
        parse_scorer({"type": "shouty", "ratio": 1}, 1, "exp.toml")


def test_a_runaway_value_template_is_a_scorer_error_not_a_hang() -> None:
    """A scorer's `value` renders within the same limits as prompts (time and size)."""
    import time

    from promptlab.errors import ScorerError
    from promptlab.experiments.scorers._base import ScoreInput, Value
    from promptlab.template import DEFAULT_LIMITS

    value = Value("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
                  "scorer 'x'")
    started = time.monotonic()
    with pytest.raises(ScorerError, match="scorer 'x'"):
        value.get(ScoreInput(output="o", item_id="1", vars={}))
    assert time.monotonic() - started < DEFAULT_LIMITS.timeout_s + 5
