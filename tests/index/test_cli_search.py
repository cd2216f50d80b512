"""`promptlab logs search`: literal words, phrases, prefixes, OR, exclusion, odd characters."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from promptlab.index.fts import SearchQueryError, parse_search

from .conftest import Sample, run
from .helpers import append, entry


def found(query: str, *options: str) -> list[str]:
    hits = json.loads(run("logs", "search", "--json", *options, "--", query).stdout)
    return sorted(h["entry"]["id"] for h in hits)


def ids(sample: Sample, *names: str) -> list[str]:
    return sorted(sample.e[n]["id"] for n in names)


def test_search_table_shows_snippets_with_the_match_marked(sample: Sample) -> None:
    out = run("logs", "search", "off-by-one").stdout.splitlines()
    assert out[0].split() == ["time", "(UTC)", "id", "model", "prompt", "match"]
    assert len(out) == 3
    assert sample.e["review_v1"]["id"] in out[2]
    assert "Found an **off**-**by**-**one** error: the slice skips the first item." in out[2]


def test_json_hits_carry_rank_snippet_and_entry(sample: Sample) -> None:
    hits = json.loads(run("logs", "search", "résumé", "--json").stdout)
    assert len(hits) == 1
    assert hits[0]["entry"] == sample.e["summary"]
    assert hits[0]["snippet"] == "The **résumé** parser failed; owners notified."
    assert isinstance(hits[0]["rank"], float)


@pytest.mark.parametrize(("query", "names"), [
    ("function", ["review_v1", "review_v2"]),
    ("FUNCTION review", ["review_v1", "review_v2"]),
    ("resume cafe", ["summary"]),  # accents ignored
    ('"empty list"', ["review_v2"]),
    ('"list empty"', []),
    ("div*", ["review_v2"]),
    ("slice OR division", ["review_v1", "review_v2"]),
    ("function -empty", ["review_v1"]),
    ("function NOT slice", ["review_v2"]),
    ("function AND slice", ["review_v1"]),
    ("mot de passe", ["chat"]),  # from `messages`
    ("password", ["chat"]),
])
def test_query_forms(sample: Sample, query: str, names: list[str]) -> None:
    assert found(query) == ids(sample, *names)


@pytest.mark.parametrize(("query", "names"), [
    ('"unbalanced quote', []),
    ('"division', ["review_v2"]),
    ("division\"", ["review_v2"]),
    ("09:00", ["summary"]),
    ("(UTC)", ["summary"]),
    ("(UTC", ["summary"]),
    ("sum(xs)", ["review_v1", "review_v2"]),
    ("xs[1:]", ["review_v1"]),
    ("def total(xs):", ["review_v1"]),
    ("off-by-one", ["review_v1"]),
    ("- division", ["review_v2"]),
    ("division *", ["review_v2"]),
    ("*division", ["review_v2"]),
    ("di*vision", []),
    ("OR", []),  # a lone operator word is a word
    ("empty OR", ["review_v2"]),  # a dangling one is ignored
    ("division OR", ["review_v2"]),
    ("AND division", ["review_v2"]),
    ("NEAR(division guard)", []),
    ("summary:parser", []),
    ("{user_message}: function", []),  # the phrase "user message", not a column filter
    ("^division", ["review_v2"]),
    ("division's", []),
    ("'division'", ["review_v2"]),
    ("division;", ["review_v2"]),
    ("divi\x00sion", []),
    ("division -- DROP TABLE entries", []),
    ("division --", ["review_v2"]),
])
def test_odd_characters_are_searched_literally(sample: Sample, query: str,
                                               names: list[str]) -> None:
    assert found(query) == ids(sample, *names)


@pytest.mark.parametrize(("query", "message"), [
    ("", "Error: nothing to search for in ''; give at least one word or number"),
    ("  ", "Error: nothing to search for in '  '; give at least one word or number"),
    ('"" () * - :', "Error: nothing to search for in '\"\" () * - :'; give at least one"),
    ("-division", "Error: search '-division' only excludes words; add at least one word to "
                  "find"),
    ("NOT division", "Error: search 'NOT division' only excludes words"),
])
def test_queries_with_nothing_to_find_are_refused(sample: Sample, query: str,
                                                  message: str) -> None:
    result = run("logs", "search", "--", query, ok=False)
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.startswith(message)
    assert len(result.stderr.splitlines()) == 1


def test_raw_fts_syntax(sample: Sample) -> None:
    assert found("NEAR(division guard, 10)", "--fts") == ids(sample, "review_v2")
    assert found("assistant_response: slice", "--fts") == ids(sample, "review_v1")
    result = run("logs", "search", "--fts", "division AND (", ok=False)
    assert result.exit_code == 2
    assert result.stderr.startswith(
        "Error: invalid full-text query 'division AND (': fts5: syntax error")
    assert result.stderr.rstrip().endswith("leave out --fts to search the words literally")


def test_search_one_field(sample: Sample) -> None:
    assert found("function", "--in", "user") == ids(sample, "review_v1", "review_v2")
    assert found("function", "--in", "response") == []
    assert found("engineers", "--in", "system") == ids(sample, "summary")


def test_search_with_filters(sample: Sample) -> None:
    assert found("function", "--prompt", "code-review@v2") == ids(sample, "review_v2")
    assert found("function", "--since", "2026-01-05T01:30") == ids(sample, "review_v2")
    assert found("function", "--tag", "eval") == ids(sample, "review_v2")


def test_rank_orders_best_matches_first_and_recent_newest_first(log_dir) -> None:
    weak = entry(seconds=1, assistant_response="timeout " + "filler " * 200)
    strong = entry(seconds=2, assistant_response="timeout timeout timeout")
    newest = entry(seconds=3, assistant_response="a timeout " + "filler " * 100)
    append(log_dir, weak, strong, newest)
    ranked = json.loads(run("logs", "search", "timeout", "--json").stdout)
    assert [h["entry"]["id"] for h in ranked] == [strong["id"], newest["id"], weak["id"]]
    recent = json.loads(run("logs", "search", "timeout", "--sort", "recent", "--json").stdout)
    assert [h["entry"]["id"] for h in recent] == [newest["id"], strong["id"], weak["id"]]
    assert all(h["rank"] is None for h in recent)
    # Ranking only the newest two matches leaves the oldest out of the running.
    window = json.loads(run("logs", "search", "timeout", "--window", "2", "--json").stdout)
    assert [h["entry"]["id"] for h in window] == [strong["id"], newest["id"]]


def test_no_match_says_so(sample: Sample) -> None:
    result = run("logs", "search", "zzzz")
    assert result.stdout == ""
    assert result.stderr == "No log entries match 'zzzz'.\n"


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(alphabet=st.sampled_from(list('ab "*-:()^{}[]+.,\'\\NOTRAD_é\t\x00')),
               max_size=30))
def test_any_text_is_a_valid_query_or_a_clear_refusal(text: str) -> None:
    import sqlite3

    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE VIRTUAL TABLE f USING fts5(system_prompt, user_message, "
                 "assistant_response, content='', tokenize='unicode61 remove_diacritics 2')")
    conn.execute("INSERT INTO f (rowid, system_prompt, user_message, assistant_response) "
                 "VALUES (1, 'a b', 'ab ba', 'NOT OR AND é')")
    try:
        query = parse_search(text)
    except SearchQueryError:
        return
    for field_name in (None, "user"):
        conn.execute("SELECT rowid FROM f WHERE f MATCH ?", (query.match(field_name),)).fetchall()


def test_search_after_a_file_was_replaced_finds_only_live_lines(log_dir) -> None:
    import os

    old = [entry(seconds=i, assistant_response="needle old") for i in range(30)]
    path = append(log_dir, *old)
    assert len(json.loads(run("logs", "search", "needle", "--json", "-n", "0").stdout)) == 30
    new = entry(seconds=99, assistant_response="needle new")
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(json.dumps(new).encode() + b"\n")
    os.replace(tmp, path)
    for sort in ("rank", "recent"):
        hits = json.loads(run("logs", "search", "needle", "--sort", sort, "--json", "-n", "5"
                              ).stdout)
        assert [h["entry"]["id"] for h in hits] == [new["id"]]
