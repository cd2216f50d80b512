"""The SQLite log index schema (`<log_dir>/index.db`) and its ordered, named migrations.

The index is derived from the JSONL files and can be deleted at any time
(`promptlab logs reindex` rebuilds it). Other modules may read these tables with plain
SQL through `Index(log_dir).conn` after `.sync()`; the columns below are a contract —
add columns in a new migration, never rename or reorder the existing ones.

Tables
------
entries      one row per log line (every kind: llm, span, feedback).
    rowid INTEGER PRIMARY KEY   ingest order; also the FTS rowid; never reused
    id TEXT UNIQUE              the entry's ULID
    file_id, offset, length     where the JSON line lives (files.file_id, byte offset, bytes)
                                — the full entry is read from the JSONL, texts are not copied
    timestamp TEXT              as logged (UTC ISO 8601, `Z`) — the START of the call/span
    ts REAL                     the same instant as Unix epoch seconds (UTC)
    day INTEGER                 days since 1970-01-01 UTC (= ts // 86400)
    kind TEXT                   'llm' | 'span' | 'feedback' ('llm' when absent)
    model, provider TEXT
    prompt_id, prompt_version, prompt_label, prompt_sha, prompt_commit TEXT
    experiment, variant, unit_id, item_id TEXT   (unit_id/item_id stored as text: 7 -> '7')
    repeat INTEGER, run_id TEXT
    status TEXT                 'ok' | 'error' — 'error' when absent but `error` is set,
                                'ok' when both are absent
    error TEXT
    input_tokens, output_tokens, cached_tokens, reasoning_tokens INTEGER
    latency_ms REAL, cost_usd REAL (NULL = not stored in the entry)
    trace_id, span_id, parent_id, name TEXT    tracing
    target TEXT                 feedback entries: the id they score
    tags TEXT                   JSON array of strings, or NULL

entry_tags   (tag, entry_rowid) one row per tag of an entry, for `--tag` filters.
             WITHOUT ROWID, key (tag, entry_rowid).

scores       one row per (scored entry, score name). WITHOUT ROWID, key (entry_rowid, name).
    entry_rowid INTEGER         entries.rowid of the scored entry
    entry_id TEXT               entries.id of the scored entry
    name TEXT, value REAL       bools are stored as 0/1 with is_bool = 1
    is_bool INTEGER
    source TEXT                 'entry' (the entry's own `scores`) or 'feedback'
    feedback_id TEXT            id of the feedback entry that set the value (NULL for 'entry')
    prompt_id, prompt_version, experiment, variant TEXT   copied from the scored entry, so
                                per-version and per-variant aggregates need no join
    unit TEXT                   the scored entry's randomisation unit,
                                COALESCE(unit_id, item_id, id) (migration 007)
    own INTEGER                 1 when the entry's own `scores` hold this name — also after
                                feedback replaced the value (source 'feedback'); 0 for a
                                name only feedback gave (migration 010)
    Feedback entries are folded onto their target: a feedback score replaces the entry's own
    score of the same name, and among feedback entries the latest (greatest feedback id,
    ULIDs sort by time) wins. Feedback whose target is not indexed yet waits in
    pending_feedback and is folded when the target arrives.
    Indexes: scores_by_prompt (prompt_id, prompt_version, name, value) and
    scores_by_experiment (experiment, variant, name, value) WHERE experiment IS NOT NULL
    and scores_by_unit (prompt_id, prompt_version, name, unit, value, is_bool)
    — all covering for count / sum(value) / sum(value*value) per group.

pending_feedback  feedback entries whose target is not in the index yet.

entries_fts  FTS5, contentless (content=''): columns system_prompt, user_message,
    assistant_response; rowid = entries.rowid. Texts are stored once — in the JSONL — and
    the index only holds the inverted lists. Entries that carry only `messages` are indexed
    from them (system / user turns / assistant turns). Rows of entries removed because their
    file was deleted or replaced stay in the FTS index until `logs reindex`; always join on
    entries.rowid (meta 'fts_stale' counts them).

rollup       cost roll-up kept at sync time, one row per
    (day, model, provider, prompt_id, prompt_version, experiment) with
    calls, errors, input/output/cached/reasoning tokens, latency_ms_sum,
    cost_usd (sum of stored costs), cost_calls (calls that stored a cost) and the
    tokens of calls without a stored cost (unpriced_calls, unpriced_input_tokens,
    unpriced_output_tokens, unpriced_cached_tokens) so they can be priced at query time.
    Only kind = 'llm' entries are rolled up. Group-by columns are '' instead of NULL.
rollup_tags  the same measures per tag as well (tag '' = untagged); an entry with two tags
    counts under both.
unit_rollup  the built-in metrics per (prompt_id, prompt_version, keyed, unit) of the llm
    entries with a prompt id and version (migration 008), kept at sync time: unit is the
    entry's unit id, else item id (keyed = 1); the calls with neither share one row (keyed 0,
    unit ''). Columns calls, errors and, for each of latency_ms, output_tokens, input_tokens,
    cost_usd: _n (values with |x| <= 1e150 on calls that did not fail), _mean and _m2 (their
    mean and sum of squared deviations from it, merged exactly batch by batch), _n01 (those
    equal to 0 or 1), _big (values out of that range), _bad (values that are not numbers).
    `compare` reads a prompt version's per-unit means and per-call sums from it instead of
    grouping its calls. Feedback never changes it; removing a file recomputes the versions
    it held.
score_unit_rollup  each score per (prompt_id, prompt_version, name, unit) of the score rows
    with a prompt id and version, for the units of calls with a unit or item id (some row
    of the unit has unit != entry_id; a call with neither is a unit of its own: rolling it
    up would copy its row) — migration 009, kept at sync time: rows (the unit's score rows),
    n (values with |x| <= 1e150), mean (their mean, NULL when none: SQLite's avg over the
    unit's rows in scores_by_unit order — the same double `compare` would compute),
    n_bool (booleans), big (values out of range). Every key a sync batch touches (new
    scores, feedback folded or refolded, removed rows) is recomputed from `scores` in the
    same transaction — never adjusted by adding or subtracting — so it stays exact. A bulk
    load of an empty index rebuilds it once its indexes are back (meta
    'score_unit_rollup_stale' is set meanwhile).

files        one row per JSONL file: name, dev, inode, size, mtime_ns, offset (bytes ingested,
             always at a line end), head (first bytes, to notice a rewritten file), lines,
             malformed.
meta         key/value: 'next_rowid', 'fts_stale', 'reindex_needed', 'score_unit_rollup_stale',
             'own_scores_unread' (migration 010 could not tell from the index whether a
             feedback row replaced an own score: the next sync reads those entries' lines).

Indexes on entries: id (unique), ts, (prompt_id, prompt_version, ts), (model, ts),
(experiment, variant, run_id, prompt_version, kind, status, timestamp, unit_id, item_id)
— covering for `experiment status` (migration 006 put it in place of (experiment,
variant)), trace_id, target, ts of errors, ts of root spans (partial indexes
where a column is mostly NULL).
migrations   name, applied_at — one row per applied migration, in order.

PRAGMA user_version = number of applied migrations.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass

from promptlab.errors import LogsUnavailableError

ENTRY_COLUMNS: tuple[str, ...] = (
    "rowid", "id", "file_id", "offset", "length", "timestamp", "ts", "day", "kind",
    "model", "provider", "prompt_id", "prompt_version", "prompt_label", "prompt_sha",
    "prompt_commit", "experiment", "variant", "unit_id", "item_id", "repeat", "run_id",
    "status", "error", "input_tokens", "output_tokens", "cached_tokens", "reasoning_tokens",
    "latency_ms", "cost_usd", "trace_id", "span_id", "parent_id", "name", "target", "tags",
)

ROLLUP_KEYS: tuple[str, ...] = (
    "day", "model", "provider", "prompt_id", "prompt_version", "experiment",
)
ROLLUP_MEASURES: tuple[str, ...] = (
    "calls", "errors", "input_tokens", "output_tokens", "cached_tokens", "reasoning_tokens",
    "latency_ms_sum", "cost_usd", "cost_calls", "unpriced_calls", "unpriced_input_tokens",
    "unpriced_output_tokens", "unpriced_cached_tokens",
)

FTS_COLUMNS: tuple[str, ...] = ("system_prompt", "user_message", "assistant_response")

# Secondary indexes. Sync may drop them for a bulk load of an empty index and create them
# again afterwards (sorting once beats updating them row by row). Migrations create them
# first; this list is every index an up-to-date schema has.
_M001_INDEXES: dict[str, str] = {
    "entries_by_ts": "CREATE INDEX IF NOT EXISTS entries_by_ts ON entries(ts)",
    "entries_by_prompt": (
        "CREATE INDEX IF NOT EXISTS entries_by_prompt ON entries(prompt_id, prompt_version, ts)"
    ),
    "entries_by_model": "CREATE INDEX IF NOT EXISTS entries_by_model ON entries(model, ts)",
    "entries_by_experiment": (
        "CREATE INDEX IF NOT EXISTS entries_by_experiment ON entries(experiment, variant)"
        " WHERE experiment IS NOT NULL"
    ),
    "entries_by_trace": (
        "CREATE INDEX IF NOT EXISTS entries_by_trace ON entries(trace_id)"
        " WHERE trace_id IS NOT NULL"
    ),
    "entries_by_target": (
        "CREATE INDEX IF NOT EXISTS entries_by_target ON entries(target)"
        " WHERE target IS NOT NULL"
    ),
    "entries_errors": (
        "CREATE INDEX IF NOT EXISTS entries_errors ON entries(ts) WHERE status = 'error'"
    ),
    "scores_by_prompt": (
        "CREATE INDEX IF NOT EXISTS scores_by_prompt"
        " ON scores(prompt_id, prompt_version, name, value)"
    ),
    "scores_by_experiment": (
        "CREATE INDEX IF NOT EXISTS scores_by_experiment"
        " ON scores(experiment, variant, name, value) WHERE experiment IS NOT NULL"
    ),
}
_M004_INDEXES: dict[str, str] = {
    "entries_trace_roots": (
        "CREATE INDEX IF NOT EXISTS entries_trace_roots ON entries(ts)"
        " WHERE kind = 'span' AND parent_id IS NULL"
    ),
}
# An experiment's cells with every column `experiment status` counts (covering: no table
# row is read), grouped by variant, run and version in index order and, within a group, in
# time order (≈ ingest order, so the scores it looks up are near each other). It replaces
# entries_by_experiment, whose (experiment, variant) prefix it keeps.
_M006_INDEXES: dict[str, str] = {
    "entries_by_experiment_cells": (
        "CREATE INDEX IF NOT EXISTS entries_by_experiment_cells ON entries(experiment, variant,"
        " run_id, prompt_version, kind, status, timestamp, unit_id, item_id)"
        " WHERE experiment IS NOT NULL"
    ),
}
# A score's rows of one prompt version by randomisation unit, with value and boolean flag
# (covering): per-unit means for `compare` without joining the entries.
_M007_INDEXES: dict[str, str] = {
    "scores_by_unit": (
        "CREATE INDEX IF NOT EXISTS scores_by_unit"
        " ON scores(prompt_id, prompt_version, name, unit, value, is_bool)"
    ),
}
# Every entry of a trace by start time, with its trace (covering): `promptlab trace` lists
# the traces that started last, whether or not their root span was ever written (a crashed
# request's spans are written, its root never is). Replaces entries_trace_roots.
_M011_INDEXES: dict[str, str] = {
    "entries_traced": (
        "CREATE INDEX IF NOT EXISTS entries_traced ON entries(ts, trace_id)"
        " WHERE trace_id IS NOT NULL AND kind != 'feedback'"
    ),
}
ENTRY_INDEXES: dict[str, str] = {
    **{k: v for k, v in _M001_INDEXES.items() if k != "entries_by_experiment"},
    **_M006_INDEXES, **_M007_INDEXES, **_M011_INDEXES,
}


def _execute_script(conn: sqlite3.Connection, script: str) -> None:
    # Not conn.executescript(): it commits first, and migrations run inside a transaction.
    for statement in script.split(";"):
        if statement.strip():
            conn.execute(statement)


def _m001_core(conn: sqlite3.Connection) -> None:
    """Files, entries, tags, scores and feedback folding."""
    _execute_script(
        conn,
        """
        CREATE TABLE meta (key TEXT PRIMARY KEY, value) WITHOUT ROWID;
        CREATE TABLE files (
            file_id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            dev INTEGER, inode INTEGER, size INTEGER, mtime_ns INTEGER,
            offset INTEGER NOT NULL DEFAULT 0,
            head BLOB,
            lines INTEGER NOT NULL DEFAULT 0,
            malformed INTEGER NOT NULL DEFAULT 0
        );
        CREATE TABLE entries (
            rowid INTEGER PRIMARY KEY,
            id TEXT NOT NULL UNIQUE,
            file_id INTEGER NOT NULL,
            offset INTEGER NOT NULL,
            length INTEGER NOT NULL,
            timestamp TEXT NOT NULL,
            ts REAL NOT NULL,
            day INTEGER NOT NULL,
            kind TEXT NOT NULL,
            model TEXT, provider TEXT,
            prompt_id TEXT, prompt_version TEXT, prompt_label TEXT, prompt_sha TEXT,
            prompt_commit TEXT,
            experiment TEXT, variant TEXT, unit_id TEXT, item_id TEXT, repeat INTEGER,
            run_id TEXT,
            status TEXT NOT NULL, error TEXT,
            input_tokens INTEGER, output_tokens INTEGER, cached_tokens INTEGER,
            reasoning_tokens INTEGER,
            latency_ms REAL, cost_usd REAL,
            trace_id TEXT, span_id TEXT, parent_id TEXT, name TEXT, target TEXT,
            tags TEXT
        );
        CREATE TABLE entry_tags (
            tag TEXT NOT NULL,
            entry_rowid INTEGER NOT NULL,
            PRIMARY KEY (tag, entry_rowid)
        ) WITHOUT ROWID;
        CREATE TABLE scores (
            entry_rowid INTEGER NOT NULL,
            entry_id TEXT NOT NULL,
            name TEXT NOT NULL,
            value REAL NOT NULL,
            is_bool INTEGER NOT NULL,
            source TEXT NOT NULL,
            feedback_id TEXT,
            prompt_id TEXT, prompt_version TEXT, experiment TEXT, variant TEXT,
            PRIMARY KEY (entry_rowid, name)
        ) WITHOUT ROWID;
        CREATE TABLE pending_feedback (
            feedback_id TEXT PRIMARY KEY,
            target TEXT NOT NULL,
            scores TEXT NOT NULL
        ) WITHOUT ROWID;
        CREATE INDEX pending_feedback_by_target ON pending_feedback(target);
        """
    )
    for sql in _M001_INDEXES.values():
        conn.execute(sql)


def _m002_fts(conn: sqlite3.Connection) -> None:
    """Contentless FTS5 over the three texts. Existing rows need their texts: reindex."""
    conn.execute(
        "CREATE VIRTUAL TABLE entries_fts USING fts5("
        + ", ".join(FTS_COLUMNS)
        + ", content='', tokenize='unicode61 remove_diacritics 2')"
    )
    # Measured on 1.6 KB entries: merging up to 16 segments at a time and a 64 MB pending-term
    # hash make bulk inserts ~2.5x faster than the defaults (4, 1 MB) at no cost to queries.
    for option, value in (("automerge", 16), ("hashsize", 64 * 1024 * 1024)):
        conn.execute("INSERT INTO entries_fts (entries_fts, rank) VALUES (?, ?)", (option, value))
    if conn.execute("SELECT 1 FROM entries LIMIT 1").fetchone():
        conn.execute("INSERT OR REPLACE INTO meta VALUES ('reindex_needed', 1)")


def _rollup_table_sql(name: str, extra_keys: tuple[str, ...] = ()) -> str:
    keys = (*ROLLUP_KEYS, *extra_keys)
    key_cols = ", ".join(
        f"{k} INTEGER NOT NULL" if k == "day" else f"{k} TEXT NOT NULL" for k in keys
    )
    measures = ", ".join(
        f"{m} REAL NOT NULL DEFAULT 0" if m in ("latency_ms_sum", "cost_usd")
        else f"{m} INTEGER NOT NULL DEFAULT 0"
        for m in ROLLUP_MEASURES
    )
    return (f"CREATE TABLE {name} ({key_cols}, {measures}, PRIMARY KEY ({', '.join(keys)}))"
            " WITHOUT ROWID")


def rollup_select_sql(*, per_tag: bool, where: str = "1") -> str:
    """SELECT computing rollup rows from `entries` (to backfill, to add a batch of rows, and
    to recompute days). Columns: ROLLUP_KEYS (+ tag), then ROLLUP_MEASURES."""
    keys = [f"COALESCE(e.{k}, '')" if k != "day" else "e.day" for k in ROLLUP_KEYS]
    source = "entries e"
    if per_tag:
        keys.append("COALESCE(t.value, '')")
        source = "entries e LEFT JOIN json_each(e.tags) t"
    nocost = "e.cost_usd IS NULL"
    measures = [
        "count(*)",
        "COALESCE(sum(e.status = 'error'), 0)",
        "COALESCE(sum(e.input_tokens), 0)",
        "COALESCE(sum(e.output_tokens), 0)",
        "COALESCE(sum(e.cached_tokens), 0)",
        "COALESCE(sum(e.reasoning_tokens), 0)",
        "COALESCE(sum(e.latency_ms), 0)",
        "COALESCE(sum(e.cost_usd), 0)",
        "count(e.cost_usd)",
        f"COALESCE(sum({nocost}), 0)",
        f"COALESCE(sum(CASE WHEN {nocost} THEN e.input_tokens END), 0)",
        f"COALESCE(sum(CASE WHEN {nocost} THEN e.output_tokens END), 0)",
        # capped per call, as Price.cost caps them (parse._measures does the same)
        f"COALESCE(sum(CASE WHEN {nocost} THEN min(e.cached_tokens, COALESCE(e.input_tokens, 0))"
        " END), 0)",
    ]
    group = ", ".join(str(i + 1) for i in range(len(keys)))
    names = [*ROLLUP_KEYS, *(("tag",) if per_tag else ()), *ROLLUP_MEASURES]
    columns = ", ".join(f"{expr} AS {name}"
                        for expr, name in zip([*keys, *measures], names, strict=True))
    return (f"SELECT {columns} FROM {source}"
            f" WHERE e.kind = 'llm' AND ({where}) GROUP BY {group}")


def _m003_rollup(conn: sqlite3.Connection) -> None:
    """Cost roll-ups by day × model × provider × prompt × version × experiment (× tag)."""
    conn.execute(_rollup_table_sql("rollup"))
    conn.execute(_rollup_table_sql("rollup_tags", ("tag",)))
    # Backfill from the rows an older index already holds.
    conn.execute(f"INSERT INTO rollup {rollup_select_sql(per_tag=False)}")
    conn.execute(f"INSERT INTO rollup_tags {rollup_select_sql(per_tag=True)}")


def _m004_trace_roots(conn: sqlite3.Connection) -> None:
    """Root spans by start time, for listing recent traces without a scan."""
    for sql in _M004_INDEXES.values():
        conn.execute(sql)


def _m006_experiment_cells(conn: sqlite3.Connection) -> None:
    """A covering index of experiment cells for `experiment status`, replacing the
    narrower entries_by_experiment."""
    conn.execute("DROP INDEX IF EXISTS entries_by_experiment")
    for sql in _M006_INDEXES.values():
        conn.execute(sql)


# The randomisation unit of an entry: its unit id, else its item id, else the entry itself
# (the unit `compare` averages over in unpaired designs).
UNIT_SQL = "COALESCE({p}unit_id, {p}item_id, {p}id)"


def _m007_score_units(conn: sqlite3.Connection) -> None:
    """Each score row carries its entry's randomisation unit, indexed per prompt version."""
    conn.execute("ALTER TABLE scores ADD COLUMN unit TEXT")
    conn.execute(f"UPDATE scores SET unit = (SELECT {UNIT_SQL.format(p='')} FROM entries "
                 f"WHERE rowid = scores.entry_rowid)")
    for sql in _M007_INDEXES.values():
        conn.execute(sql)


# -- migration 008: per-unit roll-up of the built-in metrics -------------------------------

# The numeric entry fields `compare` tests, and the largest |value| it counts (the same
# bound as promptlab.comparison's MAX_ABS: larger values are counted apart, never summed).
UNIT_METRICS: tuple[str, ...] = ("latency_ms", "output_tokens", "input_tokens", "cost_usd")
UNIT_MAX_ABS = 1e150
# Per metric: values in range on calls that did not fail (n), their mean and sum of squared
# deviations from it (m2, Welford/Chan: exact to merge), how many of them are 0 or 1 (n01),
# and the values left out: out of range (big), not numbers (bad).
UNIT_MEASURES: tuple[str, ...] = ("n", "mean", "m2", "n01", "big", "bad")
UNIT_ROLLUP_KEYS: tuple[str, ...] = ("prompt_id", "prompt_version", "keyed", "unit")


def _unit_rollup_table_sql() -> str:
    cols = ", ".join(
        f"{m}_{k} {'REAL' if k in ('mean', 'm2') else 'INTEGER'} NOT NULL DEFAULT 0"
        for m in UNIT_METRICS for k in UNIT_MEASURES)
    return ("CREATE TABLE unit_rollup (prompt_id TEXT NOT NULL, prompt_version TEXT NOT NULL,"
            " keyed INTEGER NOT NULL, unit TEXT NOT NULL, calls INTEGER NOT NULL DEFAULT 0,"
            f" errors INTEGER NOT NULL DEFAULT 0, {cols},"
            f" PRIMARY KEY ({', '.join(UNIT_ROLLUP_KEYS)})) WITHOUT ROWID")


def unit_rollup_select_sql(where: str = "1") -> str:
    """SELECT computing unit_rollup rows from the llm entries matching `where` (columns of
    `entries`, no alias): one row per (prompt, version, unit) — `keyed` 1 and the unit id
    (else item id) — plus one row (`keyed` 0, unit '') pooling the calls with neither.
    Two passes: the group means, then each value's squared deviation from its mean."""
    number = "typeof({c}) IN ('integer', 'real')"
    ok = "status != 'error'"
    per_value, first, second, out = [], [], [], []
    for i, m in enumerate(UNIT_METRICS):
        num = number.format(c=m)
        per_value.append(
            f"CASE WHEN {ok} AND {num} AND abs({m}) <= {UNIT_MAX_ABS!r} THEN {m} END AS x{i}, "
            f"({ok} AND {num} AND abs({m}) > {UNIT_MAX_ABS!r}) AS g{i}, "
            f"({ok} AND {m} IS NOT NULL AND NOT {num}) AS b{i}")
        first.append(f"count(x{i}) AS n{i}, avg(x{i}) AS a{i}, total(x{i} IN (0, 1)) AS z{i}, "
                     f"total(g{i}) AS g{i}, total(b{i}) AS b{i}")
        second.append(f"total((x.x{i} - g.a{i}) * (x.x{i} - g.a{i})) AS m{i}")
        out.append(f"g.n{i}, COALESCE(g.a{i}, 0.0), m{i}, g.z{i}, g.g{i}, g.b{i}")
    keys = "p, v, k, u"
    return (
        f"WITH x AS MATERIALIZED (SELECT prompt_id AS p, prompt_version AS v, "
        f"COALESCE(unit_id, item_id) IS NOT NULL AS k, COALESCE(unit_id, item_id, '') AS u, "
        f"status = 'error' AS err, {', '.join(per_value)} FROM entries WHERE kind = 'llm' "
        f"AND prompt_id IS NOT NULL AND prompt_version IS NOT NULL AND ({where})), "
        f"g AS MATERIALIZED (SELECT {keys}, count(*) AS calls, total(err) AS errors, "
        f"{', '.join(first)} FROM x GROUP BY {keys}) "
        f"SELECT g.p, g.v, g.k, g.u, g.calls, g.errors, {', '.join(out)} FROM "
        f"(SELECT {keys}, {', '.join(second)} FROM x JOIN g USING ({keys}) "
        f"GROUP BY {keys}) AS d JOIN g USING ({keys}) WHERE 1")


def unit_rollup_columns() -> list[str]:
    return [*UNIT_ROLLUP_KEYS, "calls", "errors",
            *(f"{m}_{k}" for m in UNIT_METRICS for k in UNIT_MEASURES)]


def unit_rollup_upsert_sql(where: str | None = None) -> str:
    """Add the roll-up of the entries matching `where` — without `where`, rows given as
    parameters (unit_rollup_columns) — to unit_rollup, merging each metric's mean and m2
    with a row already there (Chan et al.'s pairwise update)."""
    sets = ["calls = calls + excluded.calls", "errors = errors + excluded.errors"]
    for m in UNIT_METRICS:
        n, n2, mean, mean2 = f"{m}_n", f"excluded.{m}_n", f"{m}_mean", f"excluded.{m}_mean"
        total = f"({n} + {n2})"
        sets += [
            f"{m}_mean = CASE WHEN {n2} = 0 THEN {mean} WHEN {n} = 0 THEN {mean2} "
            f"ELSE {mean} + ({mean2} - {mean}) * {n2} / {total} END",
            f"{m}_m2 = CASE WHEN {n2} = 0 THEN {m}_m2 WHEN {n} = 0 THEN excluded.{m}_m2 "
            f"ELSE {m}_m2 + excluded.{m}_m2 + ({mean2} - {mean}) * ({mean2} - {mean}) "
            f"* {n} * {n2} / {total} END",
            f"{n} = {n} + {n2}",
            *(f"{m}_{k} = {m}_{k} + excluded.{m}_{k}" for k in ("n01", "big", "bad")),
        ]
    columns = unit_rollup_columns()
    source = (f"VALUES ({', '.join('?' * len(columns))})" if where is None
              else unit_rollup_select_sql(where))
    return (f"INSERT INTO unit_rollup ({', '.join(columns)}) {source} "
            f"ON CONFLICT DO UPDATE SET {', '.join(sets)}")


def _m008_unit_rollup(conn: sqlite3.Connection) -> None:
    """The built-in metrics rolled up per (prompt, version, randomisation unit), kept by
    sync: `compare` reads a unit's calls, errors and means without grouping the entries."""
    conn.execute(_unit_rollup_table_sql())
    conn.execute(f"INSERT INTO unit_rollup ({', '.join(unit_rollup_columns())}) "
                 f"{unit_rollup_select_sql()}")


# -- migration 009: per-unit roll-up of the scores -------------------------------------------

SCORE_UNIT_KEYS: tuple[str, ...] = ("prompt_id", "prompt_version", "name", "unit")
SCORE_UNIT_MEASURES: tuple[str, ...] = ("rows", "n", "mean", "n_bool", "big")


def _score_unit_rollup_table_sql() -> str:
    return ("CREATE TABLE score_unit_rollup (prompt_id TEXT NOT NULL, prompt_version TEXT "
            "NOT NULL, name TEXT NOT NULL, unit TEXT NOT NULL, rows INTEGER NOT NULL, "
            "n INTEGER NOT NULL, mean REAL, n_bool INTEGER NOT NULL, big INTEGER NOT NULL, "
            f"PRIMARY KEY ({', '.join(SCORE_UNIT_KEYS)})) WITHOUT ROWID")


def score_unit_rollup_select_sql(touched: str | None = None) -> str:
    """SELECT computing score_unit_rollup rows (SCORE_UNIT_KEYS, SCORE_UNIT_MEASURES) from
    `scores` along scores_by_unit — every row of a key in index order, so each mean is the
    very double `compare`'s GROUP BY unit over that index computes. `touched`: a table of
    keys (p, v, n, u) to recompute; without it, every key."""
    value = f"CASE WHEN abs(s.value) <= {UNIT_MAX_ABS!r} THEN s.value END"
    measures = (f"count(*), count({value}), avg({value}), total(s.is_bool), "
                f"total(abs(s.value) > {UNIT_MAX_ABS!r})")
    keys = "s.prompt_id, s.prompt_version, s.name, s.unit"
    # The units of calls with a unit or item id only (a call with neither is its own unit:
    # its row would be a copy; `compare` falls back to the index for a version with those):
    # one look at the table per unit (entry_id is not in the index), not per row.
    keyed = ("EXISTS (SELECT 1 FROM scores k INDEXED BY scores_by_unit WHERE "
             "k.prompt_id = {p} AND k.prompt_version = {v} AND k.name = {n} AND k.unit = {u} "
             "AND k.unit != k.entry_id)")
    if touched is None:
        return (f"SELECT {keys}, {measures} FROM scores s INDEXED BY scores_by_unit "
                "WHERE s.prompt_id IS NOT NULL AND s.prompt_version IS NOT NULL "
                f"AND s.unit IS NOT NULL GROUP BY {keys} HAVING "
                + keyed.format(p="s.prompt_id", v="s.prompt_version", n="s.name", u="s.unit"))
    # One key at a time (the outer loop, in key order): its rows are a range of the index.
    return (f"SELECT {keys}, {measures} FROM {touched} t CROSS JOIN scores s "
            "INDEXED BY scores_by_unit ON s.prompt_id = t.p AND s.prompt_version = t.v "
            "AND s.name = t.n AND s.unit = t.u GROUP BY t.p, t.v, t.n, t.u HAVING "
            + keyed.format(p="t.p", v="t.v", n="t.n", u="t.u"))


def _m009_score_unit_rollup(conn: sqlite3.Connection) -> None:
    """Each score rolled up per (prompt, version, randomisation unit), kept by sync:
    `compare` reads a unit's mean of a score without grouping its rows."""
    for sql in _M007_INDEXES.values():  # (an interrupted bulk load may have dropped it)
        conn.execute(sql)
    conn.execute(_score_unit_rollup_table_sql())
    conn.execute(f"INSERT INTO score_unit_rollup {score_unit_rollup_select_sql()}")


def _m010_own_scores(conn: sqlite3.Connection) -> None:
    """Which score names an entry's own line carries, whatever feedback did to the values:
    `experiment status` counts a runner cell without its own score as a scorer failure."""
    conn.execute("ALTER TABLE scores ADD COLUMN own INTEGER NOT NULL DEFAULT 0")
    conn.execute("UPDATE scores SET own = 1 WHERE source = 'entry'")
    # A 'feedback' row may have replaced an own score: only the entry's line can tell, and
    # the JSONL files are the sync's business (Syncer reads them while the flag is up).
    if conn.execute("SELECT 1 FROM scores WHERE source = 'feedback' LIMIT 1").fetchone():
        conn.execute("INSERT OR REPLACE INTO meta VALUES ('own_scores_unread', 1)")


def _m011_traced_entries(conn: sqlite3.Connection) -> None:
    """Traces listed by their first entry, root span or not (see _M011_INDEXES)."""
    conn.execute("DROP INDEX IF EXISTS entries_trace_roots")
    for sql in _M011_INDEXES.values():
        conn.execute(sql)


def _m012_capped_cached_rollup(conn: sqlite3.Connection) -> None:
    """The cost roll-ups again where a call priced at read time has more cached tokens
    than input tokens: they are now capped call by call (before, on the group's sums)."""
    if conn.execute("SELECT 1 FROM entries WHERE kind = 'llm' AND cost_usd IS NULL AND "
                    "cached_tokens > COALESCE(input_tokens, 0) LIMIT 1").fetchone():
        for table, per_tag in (("rollup", False), ("rollup_tags", True)):
            conn.execute(f"DELETE FROM {table}")
            conn.execute(f"INSERT INTO {table} {rollup_select_sql(per_tag=per_tag)}")


@dataclass(frozen=True)
class Migration:
    name: str
    apply: Callable[[sqlite3.Connection], None]


MIGRATIONS: tuple[Migration, ...] = (
    Migration("001_core", _m001_core),
    Migration("002_fts", _m002_fts),
    Migration("003_rollup", _m003_rollup),
    Migration("004_trace_roots", _m004_trace_roots),
    Migration("006_experiment_cells", _m006_experiment_cells),
    Migration("007_score_units", _m007_score_units),
    Migration("008_unit_rollup", _m008_unit_rollup),
    Migration("009_score_unit_rollup", _m009_score_unit_rollup),
    Migration("010_own_scores", _m010_own_scores),
    Migration("011_traced_entries", _m011_traced_entries),
    Migration("012_capped_cached_rollup", _m012_capped_cached_rollup),
)


def applied_migrations(conn: sqlite3.Connection) -> list[str]:
    """Names of the migrations already applied to `conn`, in order."""
    exists = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'migrations'"
    ).fetchone()
    if not exists:
        return []
    return [r[0] for r in conn.execute("SELECT name FROM migrations ORDER BY rowid")]


def migrate(conn: sqlite3.Connection, *, upto: int | None = None, where: str = "") -> list[str]:
    """Apply every pending migration (or only the first `upto`), each in its own transaction.

    Returns the names applied now. Safe when several processes open a new index at once:
    the check and the migration happen under the write lock.
    """
    known = [m.name for m in MIGRATIONS]
    wanted = MIGRATIONS[:upto] if upto is not None else MIGRATIONS
    if conn.execute("PRAGMA user_version").fetchone()[0] == len(wanted):
        done = applied_migrations(conn)
        if done == [m.name for m in wanted]:
            return []
    applied_now: list[str] = []
    for migration in wanted:
        conn.execute("BEGIN IMMEDIATE")
        try:
            done = applied_migrations(conn)
            unknown = [name for name in done if name not in known]
            if unknown:
                raise LogsUnavailableError(
                    f"{where or 'the log index'} was built by a newer promptlab (migration "
                    f"{unknown[0]!r} is unknown here); upgrade promptlab, or delete the index "
                    "file to rebuild it from the JSONL logs"
                )
            if not done:
                conn.execute(
                    "CREATE TABLE IF NOT EXISTS migrations "
                    "(name TEXT PRIMARY KEY, applied_at REAL NOT NULL)"
                )
            if migration.name not in done:
                migration.apply(conn)
                conn.execute(
                    "INSERT INTO migrations (name, applied_at) VALUES (?, ?)",
                    (migration.name, time.time()),
                )
                conn.execute(f"PRAGMA user_version = {len(done) + 1}")
                applied_now.append(migration.name)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    return applied_now
