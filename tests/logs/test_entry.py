"""The entry schema: ULIDs, timestamps, field validation, exact round-trips."""

from __future__ import annotations

import datetime as dt
import json
import multiprocessing
import tempfile
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from promptlab import Logger
from promptlab.logs.entry import (
    FIELDS,
    EntryError,
    _encode,
    build_entry,
    format_timestamp,
    is_ulid,
    new_id,
    normalize_timestamp,
    ulid_time,
)
from promptlab.logs.reader import read_entries

# -- ULIDs ----------------------------------------------------------------------------------


def test_ulid_shape_and_time() -> None:
    before = dt.datetime.now(dt.UTC)
    value = new_id()
    assert len(value) == 26 and is_ulid(value)
    assert set(value) <= set("0123456789ABCDEFGHJKMNPQRSTVWXYZ")
    assert abs((ulid_time(value) - before).total_seconds()) < 1


def test_ulids_are_strictly_increasing_within_a_process() -> None:
    ids = [new_id() for _ in range(20000)]  # many share a millisecond
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)


@given(st.lists(st.integers(min_value=0, max_value=253_402_300_799_999), min_size=2, max_size=20))
def test_ulid_time_prefix_sorts_like_the_time_it_encodes(stamps: list[int]) -> None:
    prefixes = {ms: _encode(ms, 10) for ms in stamps}
    assert sorted(prefixes, key=prefixes.__getitem__) == sorted(prefixes)
    for ms, prefix in prefixes.items():
        decoded = ulid_time(prefix + "0" * 16)
        assert round(decoded.timestamp() * 1000) == ms


def _ids(queue: multiprocessing.Queue, n: int) -> None:  # type: ignore[type-arg]
    queue.put([new_id() for _ in range(n)])


def test_ulids_are_unique_across_forked_processes() -> None:
    new_id()  # the parent has state to (wrongly) inherit
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_ids, args=(queue, 5000)) for _ in range(4)]
    for p in procs:
        p.start()
    ids = [i for _ in procs for i in queue.get(timeout=30)]
    for p in procs:
        p.join()
    ids += [new_id() for _ in range(5000)]
    assert len(set(ids)) == len(ids) == 25000


# -- timestamps ------------------------------------------------------------------------------


def test_timestamps_are_utc_with_microseconds_and_z() -> None:
    assert format_timestamp(1_795_000_000_123_456_789) == "2026-11-18T11:06:40.123456Z"
    now = format_timestamp()
    parsed = dt.datetime.strptime(now, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=dt.UTC)
    assert abs((parsed - dt.datetime.now(dt.UTC)).total_seconds()) < 2


@pytest.mark.parametrize(("given_value", "expected"), [
    ("2026-11-26T23:33:13.123456Z", "2026-11-26T23:33:13.123456Z"),
    ("2026-11-26T23:33:13Z", "2026-11-26T23:33:13.000000Z"),
    ("2026-11-27T01:33:13.5+02:00", "2026-11-26T23:33:13.500000Z"),
    (dt.datetime(2026, 11, 26, 23, 33, 13, tzinfo=dt.UTC), "2026-11-26T23:33:13.000000Z"),
    (dt.datetime(2026, 11, 26, 23, 33, 13), "2026-11-26T23:33:13.000000Z"),
])
def test_timestamp_inputs_are_normalised(given_value: object, expected: str) -> None:
    assert normalize_timestamp(given_value) == expected


def test_bad_timestamp_names_the_field() -> None:
    with pytest.raises(EntryError, match="log field 'timestamp': 'yesterday' is not an ISO 8601"):
        normalize_timestamp("yesterday")


# -- validation ------------------------------------------------------------------------------


def test_fields_come_out_in_schema_order_without_empty_values() -> None:
    entry = build_entry({"status": "ok", "tags": [], "metadata": {}, "model": "m",
                         "input_tokens": 3, "error": None, "user_message": "",
                         "prompt_label": None, "system_prompt": "s"})
    assert list(entry) == ["model", "system_prompt", "user_message", "input_tokens", "status"]
    assert list(entry) == [f for f in FIELDS if f in entry]


@pytest.mark.parametrize(("fields", "message"), [
    ({"input_tokens": -1},
     "log field 'input_tokens' must be an integer between 0 and 1,000,000,000, got int -1"),
    ({"input_tokens": True},
     "log field 'input_tokens' must be an integer between 0 and 1,000,000,000, got bool True"),
    ({"input_tokens": 10**30}, "log field 'input_tokens' must be an integer between 0 and"),
    ({"output_tokens": 1e30}, "log field 'output_tokens' must be an integer between 0 and"),
    ({"latency_ms": float("nan")},
     "log field 'latency_ms' must be a number between 0 and 10,000,000,000"),
    ({"latency_ms": 1e308}, "log field 'latency_ms' must be a number between 0 and"),
    ({"cost_usd": 1e19}, "log field 'cost_usd' must be a number between 0 and 1,000,000"),
    ({"latency_ms": "fast"}, "log field 'latency_ms' must be a number, got str 'fast'"),
    ({"tags": ["a", 1]}, "log field 'tags' must be a list of strings"),
    ({"metadata": "x"}, "log field 'metadata' must be a mapping (JSON object), got str 'x'"),
    ({"scores": {"ok": "yes"}}, "log field 'scores': score 'ok' must be a number or bool"),
    ({"scores": {"x": float("inf")}}, "score 'x' must be a finite number"),
    ({"kind": "chat"}, "log field 'kind' must be one of llm, span, feedback, got 'chat'"),
    ({"status": "failed"}, "log field 'status' must be 'ok' or 'error', got 'failed'"),
    ({"messages": [{"content": "hi"}]}, "log field 'messages': item 0 must be an object"),
    ({"model": 4}, "log field 'model' must be a string, got int 4"),
    ({"prompt_dirty": "no"}, "log field 'prompt_dirty' must be true or false"),
    ({"assistant_reponse": "x"}, "unknown log field 'assistant_reponse'; did you mean "
                                 "'assistant_response'"),
])
def test_invalid_fields_raise_one_clear_message(fields: dict, message: str) -> None:
    with pytest.raises(EntryError) as info:
        build_entry(fields)
    assert message in str(info.value)


def test_friendly_conversions() -> None:
    entry = build_entry({"tags": "one", "input_tokens": 12.0, "error": ValueError("bad"),
                         "item_id": 7})
    assert entry == {"input_tokens": 12, "tags": ["one"], "item_id": 7, "error": "ValueError: bad"}


# -- round trip ------------------------------------------------------------------------------

texts = st.text(max_size=300)
json_scalars = st.one_of(st.none(), st.booleans(), st.integers(-(2**53), 2**53),
                         st.floats(allow_nan=False, allow_infinity=False), texts)
json_values = st.recursive(json_scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=10), inner, max_size=4)),
    max_leaves=12)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    model=st.text(min_size=1, max_size=40),
    system=texts, user=texts, response=texts,
    tokens=st.tuples(st.integers(0, 10**9), st.integers(0, 10**9)),
    latency=st.floats(min_value=0, max_value=1e9, allow_nan=False),
    tags=st.lists(st.text(max_size=20), max_size=5),
    metadata=st.dictionaries(st.text(max_size=10), json_values, max_size=5),
    scores=st.dictionaries(st.text(min_size=1, max_size=10),
                           st.one_of(st.booleans(), st.integers(-1000, 1000),
                                     st.floats(allow_nan=False, allow_infinity=False)),
                           max_size=4),
)
def test_entries_round_trip_exactly(tmp_path: Path, model: str, system: str, user: str,
                                    response: str, tokens: tuple[int, int], latency: float,
                                    tags: list[str], metadata: dict, scores: dict) -> None:
    folder = Path(tempfile.mkdtemp(dir=tmp_path))  # one entry per folder and example
    logger = Logger(folder, redact=False, prices=False)
    written = logger.log(model=model, system_prompt=system, user_message=user,
                         assistant_response=response, input_tokens=tokens[0],
                         output_tokens=tokens[1], latency_ms=latency, tags=tags,
                         metadata=metadata, scores=scores)
    (read,) = read_entries(folder)
    assert read == written
    assert read["system_prompt"] == system and read["user_message"] == user
    assert read["assistant_response"] == response and read["model"] == model
    assert read["latency_ms"] == latency and read.get("tags", []) == tags
    assert read.get("metadata", {}) == metadata and read.get("scores", {}) == scores
    # one entry per physical line, whatever the text contained
    (path,) = folder.glob("*.jsonl")
    assert path.name == written["timestamp"][:10] + ".jsonl"
    (line,) = path.read_bytes().splitlines()
    assert json.loads(line) == written


def test_huge_text_round_trips(tmp_path: Path) -> None:
    text = ("line one\n\"quoted\" ✨ " * 200_000)[:3_000_000]
    entry = Logger(tmp_path, redact=False).log(model="m", assistant_response=text)
    (read,) = read_entries(tmp_path)
    assert read["assistant_response"] == text == entry["assistant_response"]


def test_lone_surrogates_do_not_break_the_call(tmp_path: Path) -> None:
    entry = Logger(tmp_path).log(model="m", user_message="bad \ud800 text")
    assert entry["user_message"] == "bad \ufffd text"
    assert list(read_entries(tmp_path)) == [entry]


def test_metadata_that_contains_itself_is_an_entry_error(tmp_path: Path) -> None:
    from promptlab.logs.entry import EntryError

    loop: list[object] = []
    loop.append(loop)
    cycle: dict[str, object] = {}
    cycle["self"] = cycle
    logger = Logger(tmp_path)
    for metadata in ({"a": loop}, cycle):  # with a lone surrogate too: the slow path
        for text in ("fine", "bad \ud800"):
            with pytest.raises(EntryError, match="a value that contains itself"):
                logger.log(model="m", user_message=text, metadata=metadata)
    logger.log(model="m")  # nothing half-written: the next call logs
    assert [e["model"] for e in read_entries(tmp_path)] == ["m"]


def test_non_json_metadata_values_are_written_as_text(tmp_path: Path) -> None:
    entry = Logger(tmp_path).log(model="m", metadata={"path": Path("/x"), "when": {1, 2},
                                                      "obj": object.__new__(object)})
    assert entry["metadata"]["path"] == "/x" and sorted(entry["metadata"]["when"]) == [1, 2]
    assert entry["metadata"]["obj"].startswith("<object object")
    assert list(read_entries(tmp_path)) == [entry]  # returned exactly as written


# -- the compiled fast path agrees with full validation ----------------------------------------

def _some_value(kind: str) -> st.SearchStrategy:
    """Values for a field of `kind`: canonical, friendly (converted), empty, None, or wrong."""
    wrong = st.sampled_from([None, True, -3, 2.5, "", "x", [], {}, ["a", 1], {"k": "v"},
                             float("nan"), float("inf"), ("t",), b"bytes"])
    canonical = {
        "str": st.text(max_size=8), "int": st.integers(0, 10**12),
        "num": st.one_of(st.integers(0, 10**9), st.floats(0, 1e9)),
        "bool": st.booleans(), "tags": st.lists(st.text(max_size=5), max_size=3),
        "obj": st.dictionaries(st.text(max_size=4), st.integers(), max_size=2),
        "msgs": st.lists(st.fixed_dictionaries({"role": st.sampled_from(["user", "tool"]),
                                                "content": st.text(max_size=5)}), max_size=2),
        "scores": st.dictionaries(st.text(min_size=1, max_size=4),
                                  st.one_of(st.booleans(), st.integers(-5, 5)), max_size=2),
        "id": st.one_of(st.text(max_size=5), st.integers(0, 99)),
    }[kind]
    return st.one_of(canonical, wrong)


_BODY = [f for f in FIELDS if f not in ("v", "id", "timestamp", "kind")]


@st.composite
def _field_sets(draw: st.DrawFn) -> dict:
    from promptlab.logs.entry import SCHEMA

    names = draw(st.lists(st.sampled_from(_BODY), unique=True, max_size=8))
    fields = {}
    for name in names:
        if name == "status":
            fields[name] = draw(st.one_of(st.sampled_from(["ok", "error", "failed"]),
                                          _some_value("str")))
        else:
            fields[name] = draw(_some_value(SCHEMA[name]))
    return fields


def _outcome(fn: object, *args: object) -> object:
    try:
        return ("entry", fn(*args))  # type: ignore[operator]
    except EntryError as exc:
        return ("error", str(exc))


@settings(max_examples=500, deadline=None)
@given(fields=_field_sets())
def test_compiled_builder_matches_full_validation(fields: dict) -> None:
    from promptlab.logs.entry import entry_builder

    built = _outcome(entry_builder(tuple(fields)), dict(fields), "ID", "llm")
    checked = _outcome(build_entry, dict(fields))
    if checked[0] == "entry":
        checked = ("entry", {"v": 1, "id": "ID", "timestamp": None, "kind": "llm", **checked[1]})
    assert built == checked  # same entry, or the same message naming the same field
    if built[0] == "entry":
        assert list(built[1]) == ["v", "id", "timestamp", "kind"] + [
            f for f in FIELDS if f in built[1] and f in fields]


def test_builder_keeps_its_own_lists_and_rejects_unknown_keys_up_front() -> None:
    from promptlab.logs.entry import entry_builder

    tags = ["a", "b"]
    entry = entry_builder(("model", "tags"))({"model": "m", "tags": tags}, "ID", "llm")
    tags.append("later")
    assert entry["tags"] == ["a", "b"]
    with pytest.raises(EntryError, match="unknown log field 'tokens'"):
        entry_builder(("model", "tokens"))


# -- cheap ids and timestamps ------------------------------------------------------------------


def test_ulids_stay_ordered_across_the_cached_stem_boundary() -> None:
    from promptlab.logs import entry as entry_module

    new_id = entry_module.new_id
    state = entry_module._ulid
    ms = max(state.last_ms, time.time_ns() // 1_000_000) + 1
    first = new_id(ms)  # a fresh millisecond: a new random part
    state.rand = (((state.rand >> 10) + 2) << 10) - 4  # four ids before the low 10 bits wrap
    state.stem = entry_module._stem(ms, state.rand)
    ids = [new_id(ms) for _ in range(8)] + [new_id(ms - 1000)]  # the last: clock set back
    assert [first, *ids] == sorted([first, *ids]) and len(set(ids)) == len(ids)
    assert all(is_ulid(i) for i in ids)
    assert {round(ulid_time(i).timestamp() * 1000) for i in ids} == {ms}  # never goes back
    rands = [int("".join(format(_CROCKFORD.index(c), "05b") for c in i[10:]), 2) for i in ids]
    assert rands == list(range(rands[0], rands[0] + len(ids)))
    assert rands[3] % 1024 == 0  # the fourth id crossed the boundary


_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def _random_part(ulid: str) -> int:
    return int("".join(format(_CROCKFORD.index(c), "05b") for c in ulid[10:]), 2)


def _seeded_ids(queue: multiprocessing.Queue, n: int) -> None:  # type: ignore[type-arg]
    import random

    random.seed(1234)  # an application that seeds the global generator in every worker
    queue.put([new_id() for _ in range(n)])


def test_ulids_stay_unique_when_workers_seed_the_global_random() -> None:
    new_id()
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_seeded_ids, args=(queue, 3000)) for _ in range(3)]
    for p in procs:
        p.start()
    ids = [i for _ in procs for i in queue.get(timeout=30)]
    for p in procs:
        p.join()
    assert len(set(ids)) == len(ids) == 9000


@given(st.integers(min_value=0, max_value=253_402_300_799_999_999_999))
def test_timestamps_match_datetime_formatting(ns: int) -> None:
    expected = dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(microseconds=ns // 1000)
    assert format_timestamp(ns) == expected.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def test_a_status_that_is_not_text_gets_the_usual_message() -> None:
    from promptlab.logs.entry import entry_builder

    class Weird:  # compares like an array: no single truth value
        def __eq__(self, other: object) -> object:
            raise ValueError("ambiguous")

    with pytest.raises(EntryError, match="log field 'status' must be a string, got Weird"):
        entry_builder(("model", "status"))({"model": "m", "status": Weird()}, "ID", "llm")


