"""Parsing JSONL chunks into rows for the index tables (the CPU-heavy half of a sync).

Pure functions over bytes: no SQL here, so a helper thread can parse the next chunk while
SQLite indexes the current one. Each line is decided by promptlab.logs.reader.parse_line, the
one parser the reader and `logs check` use too, so the index holds exactly the entries they
read (a torn fragment glued before an entry included). Column positions follow
index_schema.ENTRY_COLUMNS.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from promptlab.index.schema import ENTRY_COLUMNS
from promptlab.logs.reader import log_file_names, parse_line, stem_of

HEAD_BYTES = 256
CHUNK_BYTES = 16 * 1024 * 1024
MAX_PROBLEMS = 20


# -- reading entries ---------------------------------------------------------------------


def list_log_files(log_dir: Path) -> list[str]:
    """Names of the daily JSONL files in `log_dir`, oldest first (the reader's rule)."""
    return log_file_names(log_dir)


def parse_timestamp(value: Any) -> float | None:
    """Epoch seconds for an ISO 8601 timestamp (naive means UTC), or None."""
    if not isinstance(value, str):
        return None
    try:
        dt = datetime.fromisoformat(value)
    except ValueError:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.timestamp()


def content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # OpenAI/Anthropic content parts
        parts = []
        for part in content:
            if isinstance(part, str):
                parts.append(part)
            elif isinstance(part, dict) and isinstance(part.get("text"), str):
                parts.append(part["text"])
        return "\n".join(parts)
    return "" if content is None else str(content)


def entry_texts(entry: dict[str, Any]) -> tuple[str | None, str | None, str | None]:
    """(system, user, assistant) text to index: explicit fields, else from `messages`."""
    system = entry.get("system_prompt")
    user = entry.get("user_message")
    response = entry.get("assistant_response")
    messages = entry.get("messages")
    if isinstance(messages, list) and (system is None or user is None or response is None):
        by_role: dict[str, list[str]] = {"system": [], "user": [], "assistant": []}
        for message in messages:
            if isinstance(message, dict):
                role = message.get("role")
                role = "system" if role == "developer" else role
                if role in by_role:
                    text = content_text(message.get("content"))
                    if text:
                        by_role[role].append(text)
        if system is None and by_role["system"]:
            system = "\n".join(by_role["system"])
        if user is None and by_role["user"]:
            user = "\n".join(by_role["user"])
        if response is None and by_role["assistant"]:
            response = "\n".join(by_role["assistant"])
    return (
        system if isinstance(system, str) or system is None else content_text(system),
        user if isinstance(user, str) or user is None else content_text(user),
        response if isinstance(response, str) or response is None else content_text(response),
    )


def score_rows(scores: Any) -> list[tuple[str, float, int]]:
    """(name, value, is_bool) for each usable score: numbers and bools; others skipped."""
    if not isinstance(scores, dict):
        return []
    rows = []
    for name, value in scores.items():
        if value is True or value is False:
            rows.append((str(name), 1.0 if value else 0.0, 1))
        elif isinstance(value, int | float) and math.isfinite(value):
            rows.append((str(name), float(value), 0))
    return rows


def _opt_text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int | float):
        return str(value)
    return orjson.dumps(value).decode()


def _key_text(value: Any) -> str:
    if value is None:
        return ""
    return value if type(value) is str else (_opt_text(value) or "")


def _opt_num(value: Any) -> int | float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if isinstance(value, int) and not -(2**63) <= value < 2**63:
        return float(value)
    return value


# Columns bound as text / as numbers; used only when a batch has values SQLite cannot bind.
_NUMERIC = {"repeat", "input_tokens", "output_tokens", "cached_tokens", "reasoning_tokens",
            "latency_ms", "cost_usd"}
_FIXERS = [
    (lambda v: v) if c in ("rowid", "file_id", "offset", "length", "ts", "day")
    else _opt_num if c in _NUMERIC else _opt_text
    for c in ENTRY_COLUMNS
]


def sanitize(row: tuple[Any, ...]) -> tuple[Any, ...]:
    return tuple(fix(v) for fix, v in zip(_FIXERS, row, strict=True))


@dataclass
class Batch:
    """Whole lines parsed from one chunk of a file, ready to insert."""

    offset: int
    read_end: int  # file offset just past the bytes read (a torn tail is read, not consumed)
    consumed: int = 0
    lines: int = 0
    first_rowid: int = 0
    entries: list[tuple[Any, ...]] = field(default_factory=list)
    texts: list[tuple[int, str | None, str | None, str | None]] = field(default_factory=list)
    texts_json: bytes = b"[]"
    own_scores: list[tuple[Any, ...]] = field(default_factory=list)
    feedback: list[tuple[str, str, Any]] = field(default_factory=list)  # (id, target, scores)
    has_tags: bool = False
    tag_lists: dict[int, list[str]] = field(default_factory=dict)
    rollup: list[tuple[Any, ...]] = field(default_factory=list)
    rollup_tags: list[tuple[Any, ...]] = field(default_factory=list)
    malformed: int = 0
    problems: list[str] = field(default_factory=list)
    head: bytes = b""
    dev: int = 0
    ino: int = 0


def read_lines(fd: int, offset: int, size: int) -> tuple[bytes, int]:
    """(whole lines from `offset`, offset just past what was read), about CHUNK_BYTES."""
    want = CHUNK_BYTES
    while True:
        data = os.pread(fd, max(0, min(want, size - offset)), offset)
        cut = data.rfind(b"\n")
        if cut >= 0 or offset + len(data) >= size or len(data) < want:
            return data[: cut + 1], offset + len(data)
        want *= 2  # a single line longer than a chunk


def parse_lines(
    data: bytes, *, offset: int, read_end: int, start_line: int, file_id: int, file_name: str,
    first_rowid: int,
) -> Batch:
    """Parse whole lines (`data` ends with a newline) into rows for every table."""
    batch = Batch(offset=offset, read_end=read_end, consumed=len(data), first_rowid=first_rowid)
    if offset == 0:
        batch.head = data[:HEAD_BYTES]
    dumps = orjson.dumps
    entries_append = batch.entries.append
    texts_append = batch.texts.append
    rowid = first_rowid
    pos = 0
    line_no = start_line
    end = len(data)
    stem = stem_of(file_name)
    while pos < end:
        nl = data.find(b"\n", pos)
        line_no += 1
        line = data[pos:nl]
        line_offset = offset + pos
        pos = nl + 1
        if not line or line.isspace():  # no .strip(): it would copy every line
            continue
        e, start, problem, _ = parse_line(line, stem, line_no)
        if problem is not None:
            _problem(batch, f"{file_name}:{line_no}: {problem}")
        if e is None:
            continue
        g = e.get
        entry_id = e["id"]
        stamp = e["timestamp"]
        ts = parse_timestamp(stamp)
        kind = g("kind") or "llm"
        error = g("error")
        status = g("status") or ("error" if error else "ok")
        tags = g("tags")
        tags_json = None
        if tags:
            if type(tags) is str:
                tags = [tags]
            if type(tags) is list:
                tags = list(dict.fromkeys(tags))
                tags_json = dumps(tags).decode()
                batch.has_tags = True
                batch.tag_lists[rowid] = tags
        unit_id = g("unit_id")
        item_id = g("item_id")
        prompt_id = g("prompt_id")
        prompt_version = g("prompt_version")
        experiment = g("experiment")
        variant = g("variant")
        entries_append((
            rowid, entry_id, file_id, line_offset + start, len(line) - start, stamp, ts,
            int(ts // 86400), kind,
            g("model"), g("provider"),
            prompt_id, prompt_version, g("prompt_label"), g("prompt_sha"), g("prompt_commit"),
            experiment, variant,
            unit_id if unit_id is None or type(unit_id) is str else _opt_text(unit_id),
            item_id if item_id is None or type(item_id) is str else _opt_text(item_id),
            g("repeat"), g("run_id"),
            status, error,
            g("input_tokens"), g("output_tokens"), g("cached_tokens"), g("reasoning_tokens"),
            g("latency_ms"), g("cost_usd"),
            g("trace_id"), g("span_id"), g("parent_id"), g("name"), g("target"),
            tags_json,
        ))
        if kind == "feedback":
            target = g("target")
            if type(target) is str and target:
                batch.feedback.append((entry_id, target, g("scores")))
        else:
            scores = g("scores")
            if scores:
                for name, value, is_bool in score_rows(scores):
                    batch.own_scores.append((rowid, entry_id, name, value, is_bool, prompt_id,
                                             prompt_version, experiment, variant))
            system, user, response = g("system_prompt"), g("user_message"), g("assistant_response")
            if "messages" in e or not (
                (system is None or type(system) is str)
                and (user is None or type(user) is str)
                and (response is None or type(response) is str)
            ):
                system, user, response = entry_texts(e)
            if system or user or response:
                texts_append((rowid, system, user, response))
        rowid += 1
    batch.lines = line_no - start_line
    if batch.texts:
        batch.texts_json = dumps(batch.texts)
    batch.rollup, batch.rollup_tags = rollup_rows(batch.entries, batch.tag_lists)
    return batch


def _num(value: Any) -> int | float:
    return value if type(value) is int or type(value) is float else 0


def _measures(r: tuple[Any, ...]) -> tuple[Any, ...]:
    """One llm row's contribution to the ROLLUP_MEASURES."""
    cost = r[29]
    priced = type(cost) is int or type(cost) is float
    inp, out, cached = _num(r[24]), _num(r[25]), _num(r[26])
    if priced:
        return (1, r[22] == "error", inp, out, cached, _num(r[27]), _num(r[28]), cost, 1, 0,
                0, 0, 0)
    # Priced at read time from these sums: the cached tokens are capped at the input tokens
    # here, call by call, as Price.cost caps them, so that a total is the sum of its groups.
    return (1, r[22] == "error", inp, out, cached, _num(r[27]), _num(r[28]), 0, 0, 1,
            inp, out, min(cached, inp))


def rollup_rows(
    entries: list[tuple[Any, ...]], tag_lists: dict[int, list[str]],
) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """Roll-up rows (keys then measures, as index_schema.rollup_select_sql computes them)
    for the llm entries among `entries`: one list per key, one per key × tag."""
    groups: dict[tuple[Any, ...], list[tuple[Any, ...]]] = {}
    tag_groups: dict[tuple[Any, ...], list[tuple[Any, ...]]] = {}
    for r in entries:
        if r[8] != "llm":
            continue
        key = (r[7], _key_text(r[9]), _key_text(r[10]), _key_text(r[11]), _key_text(r[12]),
               _key_text(r[16]))
        m = _measures(r)
        found = groups.get(key)
        if found is None:
            groups[key] = [m]
        else:
            found.append(m)
        for tag in tag_lists.get(r[0]) or ("",):
            tkey = (*key, tag)
            found = tag_groups.get(tkey)
            if found is None:
                tag_groups[tkey] = [m]
            else:
                found.append(m)
    return (
        [(*k, *(ms[0] if len(ms) == 1 else map(sum, zip(*ms, strict=True))))
         for k, ms in groups.items()],
        [(*k, *(ms[0] if len(ms) == 1 else map(sum, zip(*ms, strict=True))))
         for k, ms in tag_groups.items()],
    )


def _problem(batch: Batch, text: str) -> None:
    batch.malformed += 1
    if len(batch.problems) < MAX_PROBLEMS:
        batch.problems.append(text)
