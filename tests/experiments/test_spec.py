"""Experiment files and datasets: every mistake is one line naming the file and the key."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from promptlab.cli import main
from promptlab.errors import ExperimentError, PromptlabError
from promptlab.experiments import load_experiment
from promptlab.experiments.dataset import load_dataset


def error_of(name: str = "ab") -> str:
    with pytest.raises(PromptlabError) as info:
        load_experiment(name)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_full_file_loads_with_every_part(exp_project, rows) -> None:
    exp_project.write("ab", '''
prompt = "code-review"
description = "checklist or not"
tags = ["t1"]

[variants]
v1 = 30
current = 70

[dataset]
path = "data.jsonl"
design = "split"
repeat = 2

[provider]
type = "openai"
model = "gpt-4o-mini"
base_url = "http://localhost:11434/v1"
params = {temperature = 0.2}

[[scorers]]
name = "finds_bug"
type = "icontains"
value = "{{ expected }}"
weight = 2

[[scorers]]
name = "short"
type = "max_latency_ms"
value = 2000
direction = "higher"
not_ = false

[[scorers]]
name = "verbose"
type = "regex"
value = "\\\\n\\\\n"
direction = "lower"

[metrics]
primary = "finds_bug"
guardrails = ["latency_ms", "cost_usd", "overall"]

[run]
concurrency = 3
max_retries = 5
timeout_s = 10
max_error_rate = 0.2
''', rows)
    exp = load_experiment("ab")
    assert exp.name == "ab" and exp.prompt == "code-review"
    assert exp.path == exp_project.experiments / "ab.toml"
    assert exp.description == "checklist or not"
    assert list(exp.variants.items()) == [("v1", 30.0), ("current", 70.0)]
    assert exp.shares == {"v1": 0.3, "current": 0.7}
    assert exp.salt == "ab"
    assert exp.dataset.path == exp_project.experiments / "data.jsonl"
    assert (exp.dataset.design, exp.dataset.repeat) == ("split", 2)
    assert (exp.provider.type, exp.provider.model) == ("openai", "gpt-4o-mini")
    assert exp.provider.params == {"temperature": 0.2}
    assert exp.provider.options == {"base_url": "http://localhost:11434/v1"}
    assert [(s.name, s.type, s.direction, s.weight) for s in exp.scorers] == [
        ("finds_bug", "icontains", "higher", 2.0), ("short", "max_latency_ms", "higher", 1.0),
        ("verbose", "regex", "lower", 1.0)]
    assert exp.metrics.primary == "finds_bug"
    assert exp.metrics.guardrails == ("latency_ms", "cost_usd", "overall")
    assert (exp.run.concurrency, exp.run.max_retries, exp.run.timeout_s,
            exp.run.max_error_rate) == (3, 5, 10.0, 0.2)
    assert exp.prompt_for("current").version.name == "v2"
    assert exp.to_dict()["scorers"][2] == {"name": "verbose", "type": "regex",
                                           "direction": "lower", "weight": 1.0, "not_": False}


def test_defaults(exp_project, toml, rows) -> None:
    exp_project.write("ab", toml(), rows)
    exp = load_experiment("ab")
    assert exp.dataset.design == "paired" and exp.dataset.repeat == 1
    assert exp.metrics.primary is None  # no [metrics] table: compare judges every metric
    assert exp.metrics.guardrails == ()
    assert exp.run.concurrency == 4 and exp.run.max_retries == 3 and exp.run.cache is True


def test_load_by_path(exp_project, toml, rows, tmp_path: Path) -> None:
    path = exp_project.write("ab", toml(), rows)
    assert load_experiment(str(path)).name == "ab"
    assert load_experiment(path).name == "ab"


@pytest.mark.parametrize(("body", "message"), [
    ('prompt = "code-review"\n[variants]\nv1 = \n',
     "experiments/ab.toml:3: invalid TOML: Invalid value (column 6)"),
    ('[variants]\nv1 = 1\n', "experiments/ab.toml: missing key 'prompt'"),
    ('prompt = "Code Review!"\n[variants]\nv1 = 1\n',
     "experiments/ab.toml: 'prompt': invalid prompt id 'Code Review!'"),
    ('prompt = "code-review"\n', "experiments/ab.toml: missing [variants] table"),
    ('prompt = "code-review"\nvariant = {v1 = 1}\n',
     "experiments/ab.toml: unknown key 'variant'; did you mean 'variants'?"),
    ('prompt = "code-review"\n[variants]\nv1 = "half"\n',
     "experiments/ab.toml [variants]: 'v1' must be a number, got 'half'"),
    ('prompt = "code-review"\n[variants]\nv1 = -1\n',
     "experiments/ab.toml [variants]: 'v1' must be ≥ 0, got -1"),
    ('prompt = "code-review"\n[variants]\nv1 = 0\nv2 = 0\n',
     "experiments/ab.toml [variants]: every weight is 0"),
    ('prompt = "code-review"\n[variants]\n"V 1" = 1\n',
     "experiments/ab.toml [variants]: 'V 1' is not a version"),
    ('prompt = "code-review"\n[variants]\nv1 = 1\n[dataset]\ndesign = "pairs"\n',
     "experiments/ab.toml [dataset]: 'design' must be \"paired\""),
    ('prompt = "code-review"\n[variants]\nv1 = 1\n[dataset]\nrepeat = 0\n',
     "experiments/ab.toml [dataset]: 'repeat' must be ≥ 1, got 0"),
    ('prompt = "code-review"\n[variants]\nv1 = 1\n[dataset]\nfile = "x.jsonl"\n',
     "experiments/ab.toml [dataset]: unknown key 'file'"),
    ('prompt = "code-review"\n[variants]\nv1 = 1\n[provider]\ntype = "opnai"\n',
     "experiments/ab.toml [provider]: unknown provider type 'opnai'; did you mean 'openai'?"),
    ('prompt = "code-review"\n[variants]\nv1 = 1\n[provider]\nmodel = "x"\n',
     "experiments/ab.toml [provider]: missing key 'type'"),
    ('prompt = "code-review"\n[variants]\nv1 = 1\n[provider]\ntype = "openai"\nbaseurl = "x"\n',
     "experiments/ab.toml [provider]: unknown key 'baseurl' for provider type 'openai'; "
     "did you mean 'base_url'?"),
    ('prompt = "code-review"\n[variants]\nv1 = 1\n[provider]\ntype = "openai"\n'
     'base_url = "localhost:8080"\n',
     "experiments/ab.toml [provider]: base_url 'localhost:8080' must start with http://"),
    ('prompt = "code-review"\n[variants]\nv1 = 1\n[provider]\ntype = "python"\n',
     "experiments/ab.toml [provider]: type 'python' needs function ="),
    ('prompt = "code-review"\n[variants]\nv1 = 1\n[provider]\ntype = "command"\n',
     "experiments/ab.toml [provider]: type 'command' needs command ="),
    ('prompt = "code-review"\n[variants]\nv1 = 1\n[[scorers]]\ntype = "contain"\nvalue = "x"\n',
     "experiments/ab.toml: [[scorers]] 'contain': unknown scorer type 'contain'; "
     "did you mean 'contains'?"),
    ('prompt = "code-review"\n[variants]\nv1 = 1\n[[scorers]]\nname = "a"\ntype = "regex"\n'
     'value = "(unclosed"\n',
     "experiments/ab.toml: [[scorers]] 'a': invalid regular expression '(unclosed': "
     "missing ) at position 9"),
    ('prompt = "code-review"\n[variants]\nv1 = 1\n[[scorers]]\nname = "a"\ntype = "regex"\n'
     'value = "x"\nflags = "q"\n',
     "experiments/ab.toml: [[scorers]] 'a': 'flags' must be letters from 'imsx', got 'q'"),
    ('prompt = "code-review"\n[variants]\nv1 = 1\n[[scorers]]\nname = "a"\ntype = "contains"\n',
     "experiments/ab.toml: [[scorers]] 'a': scorer type 'contains' needs a 'value'"),
    ('prompt = "code-review"\n[variants]\nv1 = 1\n[[scorers]]\nname = "a"\ntype = "contains"\n'
     'value = "{{ expected "\n',
     "experiments/ab.toml: [[scorers]] 'a': 'value' has a Jinja syntax error"),
    ('prompt = "code-review"\n[variants]\nv1 = 1\n[[scorers]]\nname = "a"\ntype = "contains"\n'
     'value = "x"\nignorecase = true\n',
     "experiments/ab.toml: [[scorers]] 'a': unknown key 'ignorecase' for scorer type "
     "'contains'; did you mean 'ignore_case'?"),
    ('prompt = "code-review"\n[variants]\nv1 = 1\n[[scorers]]\nname = "a"\ntype = "contains"\n'
     'value = "x"\ndirection = "up"\n',
     "experiments/ab.toml: [[scorers]] 'a': 'direction' must be \"higher\" or \"lower\""),
    ('prompt = "code-review"\n[variants]\nv1 = 1\n[[scorers]]\nname = "a"\ntype = "contains"\n'
     'value = "x"\nweight = -2\n', "experiments/ab.toml: [[scorers]] 'a': 'weight' must be ≥ 0"),
    ('prompt = "code-review"\n[variants]\nv1 = 1\n[[scorers]]\nname = "a"\ntype = "json_valid"\n'
     '[[scorers]]\nname = "a"\ntype = "json_valid"\n',
     "experiments/ab.toml: two scorers are named 'a'"),
    ('prompt = "code-review"\n[variants]\nv1 = 1\n[[scorers]]\nname = "latency_ms"\n'
     'type = "json_valid"\n',
     "experiments/ab.toml: the scorer name 'latency_ms' is a built-in metric (latency_ms, "
     "cost_usd, input_tokens, output_tokens, error_rate); give the scorer another name"),
    ('prompt = "code-review"\n[variants]\nv1 = 1\n[[scorers]]\nname = "a"\ntype = "python"\n',
     "experiments/ab.toml: [[scorers]] 'a': type 'python' needs function ="),
    ('prompt = "code-review"\n[variants]\nv1 = 1\n[[scorers]]\nname = "j"\ntype = "llm_judge"\n',
     "experiments/ab.toml: [[scorers]] 'j': type 'llm_judge' needs prompt ="),
    ('prompt = "code-review"\n[variants]\nv1 = 1\n[[scorers]]\nname = "a"\ntype = "json_valid"\n'
     '[metrics]\nprimary = "b"\n',
     "experiments/ab.toml [metrics]: primary 'b' is not a scorer or a built-in metric"),
    ('prompt = "code-review"\n[variants]\nv1 = 1\n[[scorers]]\nname = "a"\ntype = "json_valid"\n'
     '[metrics]\nguardrails = ["latency"]\n',
     "experiments/ab.toml [metrics]: guardrails 'latency' is not a scorer or a built-in metric; "
     "did you mean 'latency_ms'?"),
    ('prompt = "code-review"\n[variants]\nv1 = 1\n[run]\nconcurrency = 0\n',
     "experiments/ab.toml [run]: 'concurrency' must be ≥ 1, got 0"),
    ('prompt = "code-review"\n[variants]\nv1 = 1\n[run]\nmax_error_rate = 2\n',
     "experiments/ab.toml [run]: 'max_error_rate' must be ≤ 1, got 2"),
    ('prompt = "code-review"\n[variants]\nv1 = 1\n[run]\ntimeout_s = 0\n',
     "experiments/ab.toml [run]: 'timeout_s' must be > 0, got 0"),
    ('prompt = "code-review"\n[variants]\nv1 = 1\n[run]\nconcurency = 4\n',
     "experiments/ab.toml [run]: unknown key 'concurency'; did you mean 'concurrency'?"),
])
def test_invalid_files_name_the_file_and_key(exp_project, body: str, message: str) -> None:
    exp_project.write("ab", body)
    assert error_of().startswith(message)


def test_unknown_experiment_lists_the_known_ones(exp_project, toml, rows) -> None:
    exp_project.write("first", toml(), rows)
    exp_project.write("second", toml(), rows)
    assert error_of("third") == "no experiment 'third' in experiments/; known: first, second"
    assert error_of("bad name!") == ("invalid experiment name 'bad name!': use letters, "
                                     "digits, '.', '_', '-'")
    assert error_of("missing/file.toml") == "experiment file missing/file.toml not found"


def test_variant_that_does_not_exist_fails_before_any_call(exp_project, toml, rows) -> None:
    exp_project.write("ab", toml(variants="v1 = 50\nv9 = 50"), rows)
    result = CliRunner().invoke(main, ["experiment", "run", "ab", "--dry-run"])
    assert result.exit_code == 2
    assert result.stderr.splitlines()[-1] == (
        "Error: experiments/ab.toml [variants] v9: prompt 'code-review' has no version v9; "
        "versions: v1, v2")
    assert exp_project.entries() == []


def test_missing_label_variant(exp_project, toml, rows) -> None:
    exp_project.write("ab", toml(variants="v1 = 50\nproduction = 50"), rows)
    exp = load_experiment("ab")
    with pytest.raises(ExperimentError, match=r"\[variants\] production: prompt 'code-review' "
                                              r"has no label 'production'"):
        exp.prompt_for("production")


# -- datasets -------------------------------------------------------------------------------


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_dataset_jsonl_rows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    path = write(tmp_path / "d.jsonl",
                 '{"id": "a", "vars": {"code": "x"}, "expected": ["p", "q"], "category": "c"}\n'
                 "\n"
                 '{"id": 7, "code": "y", "unit_id": "user-1", "metadata": {"m": 1}}\n'
                 '{"code": "z"}\n')
    items = load_dataset(path)
    assert [(i.id, i.vars, i.expected, i.unit_id, i.metadata, i.line) for i in items] == [
        ("a", {"code": "x"}, ["p", "q"], "a", {"category": "c"}, 1),
        ("7", {"code": "y"}, None, "user-1", {"m": 1}, 3),
        ("3", {"code": "z"}, None, "3", {}, 4),
    ]


def test_dataset_json_and_csv(tmp_path: Path) -> None:
    items = load_dataset(write(tmp_path / "d.json", json.dumps(
        {"items": [{"id": "a", "vars": {"x": 1}}]})))
    assert items[0].vars == {"x": 1}
    items = load_dataset(write(tmp_path / "d.csv", "id,code,expected\na,print(1),1\nb,x,2\n"))
    assert [(i.id, i.vars, i.expected) for i in items] == [
        ("a", {"code": "print(1)"}, "1"), ("b", {"code": "x"}, "2")]


@pytest.mark.parametrize(("name", "text", "message"), [
    ("d.jsonl", '{"id": "a"}\n{"id": "b", oops}\n', "d.jsonl:2: invalid JSON"),
    ("d.jsonl", '{"id": "a"}\n\n{"id": "a"}\n',
     "d.jsonl:3: duplicate id 'a' (first on line 1); ids must be unique"),
    ("d.jsonl", '{"id": "a", "vars": [1]}\n', "d.jsonl:1: 'vars' must be an object"),
    ("d.jsonl", '["a"]\n', "d.jsonl:1: each row must be an object"),
    ("d.jsonl", '{"id": true}\n', "d.jsonl:1: 'id' must be a non-empty string or an integer"),
    ("d.jsonl", "\n\n", "d.jsonl: the dataset has no rows"),
    ("d.json", '{"a": 1}', "d.json: expected a JSON list of rows"),
    ("d.csv", "id,code\na,1,2\n", "d.csv:2: more cells than header columns"),
    ("d.yaml", "- a", "d.yaml: unknown dataset format '.yaml'"),
])
def test_dataset_errors_name_file_and_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                           name: str, text: str, message: str) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ExperimentError) as info:
        load_dataset(write(tmp_path / name, text))
    assert str(info.value).startswith(message)


def test_missing_dataset_is_reported_by_the_cli(exp_project, toml) -> None:
    exp_project.write("ab", toml(dataset='path = "nope.jsonl"'))
    result = CliRunner().invoke(main, ["experiment", "run", "ab"])
    assert result.exit_code == 2
    assert result.stderr == ("Error: dataset experiments/nope.jsonl not found; check [dataset] "
                             "path (it is relative to the experiment file)\n")


def test_row_that_cannot_render_names_the_line(exp_project, toml) -> None:
    exp_project.write("ab", toml(), [{"id": "a", "vars": {"code": "x"}},
                                     {"id": "b", "vars": {"language": "Go"}}])
    result = CliRunner().invoke(main, ["experiment", "run", "ab"])
    assert result.exit_code == 2
    assert result.stderr.startswith("Error: experiments/data.jsonl:2: item 'b' cannot be "
                                    "rendered with v1: ")
    assert "missing variable 'code'" in result.stderr
    assert exp_project.entries() == []


# -- [metrics] tolerance -------------------------------------------------------------------


def test_tolerance_loads_as_fractions(exp_project, toml, rows) -> None:
    exp_project.write("ab", toml(extra='[metrics]\nguardrails = ["latency_ms", "cost_usd"]\n'
                                       'tolerance = {latency_ms = 0.25, cost_usd = 0, '
                                       'mentions = 1}\n'), rows)
    exp = load_experiment("ab")
    assert exp.metrics.tolerance == {"latency_ms": 0.25, "cost_usd": 0.0, "mentions": 1.0}
    assert all(type(v) is float for v in exp.metrics.tolerance.values())
    assert exp.to_dict()["metrics"] == {"primary": "mentions",
                                        "guardrails": ["latency_ms", "cost_usd"],
                                        "tolerance": {"latency_ms": 0.25, "cost_usd": 0.0,
                                                      "mentions": 1.0}}


def test_tolerance_as_a_subtable_and_default(exp_project, toml, rows) -> None:
    exp_project.write("ab", toml(extra='[metrics]\nguardrails = ["latency_ms"]\n'
                                       '[metrics.tolerance]\nlatency_ms = 0.5\n'), rows)
    assert load_experiment("ab").metrics.tolerance == {"latency_ms": 0.5}
    exp_project.write("ab", toml(), rows)
    assert load_experiment("ab").metrics.tolerance == {}


def test_the_shipped_example_has_a_latency_tolerance(example_project) -> None:
    exp = load_experiment("code-review-ab")
    assert exp.metrics.tolerance == {"latency_ms": 0.5}


@pytest.mark.parametrize("metrics, message", [
    ('guardrails = ["latency_ms"]\ntolerance = 0.25',
     "experiments/ab.toml [metrics]: 'tolerance' must be a table like {latency_ms = 0.25} "
     "(up to 25% worse), got 0.25"),
    ('guardrails = ["latency_ms"]\ntolerance = {latency = 0.25}',
     "experiments/ab.toml [metrics]: tolerance 'latency' is not the primary metric or a "
     "guardrail; did you mean 'latency_ms'?"),
    ('guardrails = ["latency_ms"]\ntolerance = {cost_usd = 0.1}',
     "experiments/ab.toml [metrics]: tolerance 'cost_usd' is not the primary metric or a "
     "guardrail; known: latency_ms, mentions"),
    ('guardrails = ["latency_ms"]\ntolerance = {latency_ms = -0.1}',
     "experiments/ab.toml [metrics]: tolerance 'latency_ms' must be a number ≥ 0 (a fraction: "
     "0.25 = up to 25% worse), got -0.1"),
    ('guardrails = ["latency_ms"]\ntolerance = {latency_ms = "25%"}',
     "experiments/ab.toml [metrics]: tolerance 'latency_ms' must be a number ≥ 0 (a fraction: "
     "0.25 = up to 25% worse), got '25%'"),
    ('guardrails = ["latency_ms"]\ntolerance = {latency_ms = true}',
     "experiments/ab.toml [metrics]: tolerance 'latency_ms' must be a number ≥ 0"),
    ('guardrails = ["latency_ms"]\ntolerance = {latency_ms = inf}',
     "experiments/ab.toml [metrics]: tolerance 'latency_ms' must be a number ≥ 0 (a fraction: "
     "0.25 = up to 25% worse), got inf"),
    ('guardrails = ["latency_ms"]\ntolerance = {latency_ms = nan}',
     "experiments/ab.toml [metrics]: tolerance 'latency_ms' must be a number ≥ 0"),
    ('guardrails = ["latency_ms"]\ntolerances = {latency_ms = 0.2}',
     "experiments/ab.toml [metrics]: unknown key 'tolerances'; did you mean 'tolerance'?"),
])
def test_invalid_tolerance_names_the_file_and_key(exp_project, toml, rows, metrics: str,
                                                 message: str) -> None:
    exp_project.write("ab", toml(extra=f"[metrics]\n{metrics}\n"), rows)
    assert error_of().startswith(message)


def test_tolerance_without_scorers_or_guardrails_says_what_to_do(exp_project) -> None:
    exp_project.write("ab", 'prompt = "code-review"\n[variants]\nv1 = 1\n'
                            '[metrics]\ntolerance = {latency_ms = 0.2}\n')
    assert error_of() == ("experiments/ab.toml [metrics]: tolerance 'latency_ms' is not the "
                          "primary metric or a guardrail; add it to guardrails first")
    result = CliRunner().invoke(main, ["experiment", "run", "ab"])
    assert result.exit_code == 2
    assert result.stderr.strip() == f"Error: {error_of()}"
