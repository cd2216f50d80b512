"""Export the log to any OTLP/HTTP backend: `promptlab export otlp`, idempotent and resumable.

    from promptlab.otel import export_otlp
    summary = export_otlp("~/llm-logs", endpoint="http://localhost:4318")
    summary.sent, summary.skipped, summary.failed

What was sent is recorded by position, like the index's sync: per endpoint and file, the byte
offset up to which every line is settled, in `<log_dir>/otel-export.db` (a small SQLite file
of its own). A run reads each file from its offset, so running it again sends only what is
new. A filtered run (`--prompt`, `--since`, …) leaves the offsets alone and records the ids
it sent, which a later full run skips. `all_=True` sends everything again. Spans go out in
batches through the SDK's `OTLPSpanExporter`, which retries 429/502/503/504 with exponential
backoff (honouring Retry-After) within its timeout; a batch that still fails stops the run,
and what was sent before it stays recorded.
"""

from __future__ import annotations

import itertools
import logging
import os
import re
import sqlite3
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from promptlab.errors import ConfigError, UsageError

__all__ = ["ExportSummary", "OtlpTarget", "export_otlp", "resolve_target"]

STATE_NAME = "otel-export.db"
DEFAULT_BATCH = 512
_READ_CHUNK = 4 << 20


# -- where to send ------------------------------------------------------------------------


@dataclass(frozen=True)
class OtlpTarget:
    """An OTLP/HTTP traces endpoint (full URL, `…/v1/traces`) with its headers."""

    endpoint: str
    headers: dict[str, str] = field(default_factory=dict)
    service_name: str | None = None
    content: bool = False
    timeout: float | None = None  # seconds; None: OTEL_EXPORTER_OTLP_(TRACES_)TIMEOUT, else 10

    def exporter(self) -> Any:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter(endpoint=self.endpoint, headers=dict(self.headers),
                                timeout=self.timeout)


_NO_ID = "\x00no id"  # what parse_line names an entry that has no id of its own
_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")  # a daily file's name


def _traces_url(url: str, option: str) -> str:
    from promptlab.providers._http import valid_url

    # (valid_url: a host, a port in range; not an unclosed IPv6 bracket, no spaces)
    parts = urlsplit(url) if valid_url(url) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
        raise UsageError(f"{option} {url!r}: expected an http(s) URL such as "
                         "http://localhost:4318 (the OTLP/HTTP port)")
    if parts.path in ("", "/"):
        return url.rstrip("/") + "/v1/traces"
    return url


def _parse_header(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise UsageError(f"--header {text!r}: expected KEY=VALUE, e.g. --header "
                         "'x-api-key=secret'")
    return key.strip(), value.strip()


def resolve_target(endpoint: str | None = None, headers: Mapping[str, str] | list[str] = (),
                   *, otel: Mapping[str, Any] | None = None, env: Mapping[str, str] | None = None,
                   content: bool | None = None, timeout: float | None = None,
                   required: bool = True) -> OtlpTarget | None:
    """The endpoint to send to: `endpoint`, else OTEL_EXPORTER_OTLP_TRACES_ENDPOINT (full
    URL), else OTEL_EXPORTER_OTLP_ENDPOINT (base URL + /v1/traces), else `endpoint` in the
    project's `[otel]` settings. Headers: OTEL_EXPORTER_OTLP_(TRACES_)HEADERS, the config's
    `headers`, then `headers` (KEY=VALUE strings or a mapping), later ones winning."""
    env = os.environ if env is None else env
    otel = otel or {}
    for name in ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"):
        protocol = env.get(name, "").strip().lower()
        if protocol and protocol != "http/protobuf":
            raise UsageError(f"{name}={protocol}: promptlab sends OTLP over HTTP with protobuf; "
                             "unset it or set http/protobuf, and use the HTTP port (4318)")
        if protocol:
            break
    if endpoint:
        url = _traces_url(endpoint, "--endpoint")
    elif env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        url = _traces_url(env["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"],
                          "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    elif env.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        base = env["OTEL_EXPORTER_OTLP_ENDPOINT"]
        _traces_url(base, "OTEL_EXPORTER_OTLP_ENDPOINT")
        url = base.rstrip("/") + "/v1/traces"
    elif otel.get("endpoint"):
        url = _traces_url(str(otel["endpoint"]), "[otel] endpoint")
    elif required:
        raise UsageError("no OTLP endpoint: pass --endpoint URL (e.g. http://localhost:4318), "
                         "set OTEL_EXPORTER_OTLP_ENDPOINT, or set endpoint in the project's "
                         "[otel] settings")
    else:
        return None
    merged: dict[str, str] = {}
    for name in ("OTEL_EXPORTER_OTLP_HEADERS", "OTEL_EXPORTER_OTLP_TRACES_HEADERS"):
        if env.get(name):
            from opentelemetry.util.re import parse_env_headers

            merged.update(parse_env_headers(env[name], liberal=True))
    merged.update({str(k): str(v) for k, v in (otel.get("headers") or {}).items()})
    if isinstance(headers, Mapping):
        merged.update(headers)
    else:
        merged.update(_parse_header(h) for h in headers)
    return OtlpTarget(endpoint=url, headers=merged,
                      service_name=otel.get("service_name") or None,
                      content=bool(otel.get("content", False)) if content is None else content,
                      timeout=timeout)


# -- state: what was sent -------------------------------------------------------------------


class ExportState:
    """`<log_dir>/otel-export.db`: per endpoint, the settled offset of each file, and the ids
    a filtered run sent beyond it."""

    def __init__(self, log_dir: Path, endpoint: str):
        import fcntl

        self.endpoint = endpoint
        path = log_dir / STATE_NAME
        self._lock_fd = -1
        try:
            log_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            from promptlab.index.safety import refuse_unsafe_database

            refuse_unsafe_database(path, "the export state", "remove it (promptlab then "
                                   "forgets what it sent) and run the command again")
            # One export of a log folder at a time: two would read the same offsets.
            self._lock_fd = os.open(log_dir / (STATE_NAME + ".lock"), os.O_RDWR | os.O_CREAT
                                    | os.O_NOFOLLOW | os.O_NONBLOCK, 0o600)
            try:
                fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(self._lock_fd)
                raise UsageError(f"another `promptlab export otlp` is running on {log_dir}; "
                                 "wait for it to finish") from None
            if not path.exists():
                os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK,
                                 0o600))
            self.conn = sqlite3.connect(path, timeout=60, isolation_level=None)
            self.conn.execute("PRAGMA journal_mode = WAL")
            self.conn.executescript(
                "CREATE TABLE IF NOT EXISTS positions (endpoint TEXT NOT NULL, file TEXT NOT NULL,"
                " inode INTEGER, offset INTEGER NOT NULL, updated REAL,"
                " PRIMARY KEY (endpoint, file)) WITHOUT ROWID;"
                "CREATE TABLE IF NOT EXISTS sent (endpoint TEXT NOT NULL, id TEXT NOT NULL,"
                " PRIMARY KEY (endpoint, id)) WITHOUT ROWID;"
                "PRAGMA user_version = 1;")
        except (OSError, sqlite3.Error) as exc:
            if self._lock_fd >= 0:
                os.close(self._lock_fd)
            raise ConfigError(f"cannot use the export state {path}: {exc}; check the log "
                              "folder's permissions") from exc

    def positions(self) -> dict[str, tuple[int | None, int]]:
        return {name: (inode, offset) for name, inode, offset in self.conn.execute(
            "SELECT file, inode, offset FROM positions WHERE endpoint = ?", (self.endpoint,))}

    def sent_ids(self) -> set[str]:
        return {row[0] for row in self.conn.execute(
            "SELECT id FROM sent WHERE endpoint = ?", (self.endpoint,))}

    def commit(self, marks: Mapping[str, tuple[int, int]], ids: list[str],
               settled: list[str]) -> None:
        """Record offsets (name -> (inode, offset)), ids sent beyond them, and drop ids the
        offsets now cover."""
        now = time.time()
        with self.conn:
            self.conn.execute("BEGIN IMMEDIATE")
            self.conn.executemany(
                "INSERT INTO positions VALUES (?, ?, ?, ?, ?) ON CONFLICT (endpoint, file) DO "
                "UPDATE SET inode = excluded.inode, offset = excluded.offset, "
                "updated = excluded.updated",
                [(self.endpoint, name, inode, offset, now)
                 for name, (inode, offset) in marks.items()])
            self.conn.executemany("INSERT OR IGNORE INTO sent VALUES (?, ?)",
                                  [(self.endpoint, i) for i in ids])
            self.conn.executemany("DELETE FROM sent WHERE endpoint = ? AND id = ?",
                                  [(self.endpoint, i) for i in settled])

    def close(self) -> None:
        self.conn.close()
        if self._lock_fd >= 0:
            os.close(self._lock_fd)  # releases the lock
            self._lock_fd = -1


# -- selecting entries ----------------------------------------------------------------------


@dataclass(frozen=True)
class Selection:
    """Which entries to send. Empty = everything (a full run that moves the offsets)."""

    since: str | None = None  # canonical timestamps (comparable as strings)
    until: str | None = None
    prompt: str | None = None
    version: str | None = None
    experiment: str | None = None

    @property
    def filtered(self) -> bool:
        return any(v is not None for v in (self.since, self.until, self.prompt,
                                           self.experiment))

    def matches(self, entry: Mapping[str, Any]) -> bool:
        if self.since is not None and entry.get("timestamp", "") < self.since:
            return False
        if self.until is not None and entry.get("timestamp", "") >= self.until:
            return False
        if self.prompt is not None and entry.get("prompt_id") != self.prompt:
            return False
        if self.version is not None and entry.get("prompt_version") != self.version:
            return False
        return self.experiment is None or entry.get("experiment") == self.experiment


def make_selection(since: Any = None, until: Any = None, prompt: str | None = None,
                   experiment: str | None = None) -> Selection:
    from promptlab.logs.reader import parse_bound

    version = None
    if prompt:
        from promptlab.index.query import split_prompt_ref

        prompt, version = split_prompt_ref(prompt)
    lo, hi = parse_bound(since), parse_bound(until, end=True)
    if lo is not None and hi is not None and lo >= hi:
        raise UsageError(f"--since ({lo}) is not before --until ({hi})")
    return Selection(since=lo, until=hi, prompt=prompt or None, version=version,
                     experiment=experiment or None)


# -- the run ----------------------------------------------------------------------------------


@dataclass
class ExportSummary:
    """What a run did. `failed` > 0 means the endpoint refused or could not be reached."""

    endpoint: str
    sent: int = 0
    skipped: int = 0  # already sent earlier
    unmatched: int = 0  # outside the filters
    failed: int = 0  # in a batch the endpoint did not take
    not_attempted: int = 0  # after the failed batch
    malformed: int = 0
    seconds: float = 0.0
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.failed == 0

    def line(self) -> str:
        text = (f"{self.sent} span(s) sent to {self.endpoint}, {self.skipped} skipped "
                f"(already sent), {self.failed} failed")
        if self.unmatched:
            text += f"; {self.unmatched} entr{'y' if self.unmatched == 1 else 'ies'} did not " \
                    "match the filters"
        if self.not_attempted:
            text += f"; {self.not_attempted} not attempted after the failure (run again to resume)"
        if self.malformed:
            text += f"; {self.malformed} unreadable line(s) skipped"
        if self.error:
            text += f"; last error: {self.error}"
        return text


class _LastError(logging.Handler):
    """Keeps the SDK exporter's last error message (it logs instead of raising)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.message: str | None = None

    def emit(self, record: logging.LogRecord) -> None:
        self.message = record.getMessage()


def _lines(path: Path, start: int) -> Iterator[tuple[bytes, int]]:
    """(line, offset after it) for every complete line of `path` from byte `start`."""
    with open(path, "rb") as fh:
        fh.seek(start)
        offset = start
        rest = b""
        while True:
            chunk = fh.read(_READ_CHUNK)
            if not chunk:
                return
            data = rest + chunk
            end = data.rfind(b"\n")
            if end < 0:
                rest = data
                continue
            rest = data[end + 1:]
            pos = 0
            while pos <= end:
                nl = data.index(b"\n", pos)
                offset += nl + 1 - pos
                yield data[pos:nl], offset
                pos = nl + 1


def export_otlp(log_dir: str | os.PathLike[str] | None = None, *, endpoint: str | None = None,
                headers: Mapping[str, str] | list[str] = (), since: Any = None,
                until: Any = None, prompt: str | None = None, experiment: str | None = None,
                all_: bool = False, content: bool | None = None,
                batch_size: int = DEFAULT_BATCH, service_name: str | None = None,
                target: OtlpTarget | None = None, exporter: Any = None,
                progress: Callable[[int, int], None] | None = None) -> ExportSummary:
    """Send the logged traces, spans and LLM calls to an OTLP/HTTP endpoint.

    Returns an `ExportSummary`; a batch the endpoint does not take stops the run (what
    was sent before stays recorded, so running again resumes). `progress(done, total)` is
    called with bytes read. `exporter` replaces the OTLP exporter (any SDK SpanExporter).
    """
    from promptlab.config import require_log_dir
    from promptlab.logs.reader import log_files
    from promptlab.otel.spans import SpanMaker, make_resource, span_id_of, trace_id_of

    settings_otel: dict[str, Any] = {}
    if log_dir is None or target is None:
        from promptlab.config import load_settings

        settings = load_settings()
        settings_otel = dict(getattr(settings, "otel", None) or {})
        log_dir = log_dir if log_dir is not None else settings.log_dir
    log_dir = Path(log_dir).expanduser()
    if batch_size < 1:
        raise UsageError(f"--batch-size {batch_size}: expected a number >= 1")
    if target is None:
        target = resolve_target(endpoint, headers, otel=settings_otel, content=content)
    selection = make_selection(since, until, prompt, experiment)
    require_log_dir(log_dir, "nothing to export")
    files = log_files(log_dir, since=selection.since and selection.since[:10],
                      until=selection.until and selection.until[:10])

    state = ExportState(log_dir, target.endpoint)
    summary = ExportSummary(endpoint=target.endpoint)
    seen: dict[str, tuple[int, int]] = {}  # entry id -> (trace id, span id), for feedback
    index_lookup: list[Any] = []

    def parent_of(target_id: str) -> tuple[int, int | None] | None:
        known = seen.get(target_id)
        if known is not None:
            return known
        if _is_derived_id(log_dir, target_id):
            # an entry written without an id is not sent: feedback on it is a trace of
            # its own rather than a child of a span no backend will ever see
            return trace_id_of(target_id), None
        return _indexed_ids(log_dir, target_id, index_lookup)

    maker = SpanMaker(make_resource(service_name, target.service_name),
                      content=target.content, parent_of=parent_of)
    own_exporter = exporter is None
    if own_exporter:
        exporter = target.exporter()
    handler = _LastError()
    sdk_logger = logging.getLogger("opentelemetry.exporter")
    sdk_logger.addHandler(handler)
    previous_propagate = sdk_logger.propagate
    sdk_logger.propagate = False  # the summary says what failed, once
    started = time.perf_counter()
    try:
        _run(files, state, selection, all_, batch_size, maker, exporter, summary, seen,
             progress, trace_id_of, span_id_of, handler)
    finally:
        sdk_logger.removeHandler(handler)
        sdk_logger.propagate = previous_propagate
        if own_exporter:
            exporter.shutdown()
        state.close()
        for index in index_lookup:
            index.close()
    summary.seconds = time.perf_counter() - started
    return summary


def _is_derived_id(log_dir: Path, entry_id: str) -> bool:
    """Whether `entry_id` is the id a reader gives an entry written without one
    (`<day>:<line>`, promptlab.logs.reader), naming a daily file of `log_dir`."""
    day, colon, line = entry_id.rpartition(":")
    return bool(colon and line.isdigit() and line.isascii() and _DAY.fullmatch(day)
                and (log_dir / f"{day}.jsonl").is_file())


def _indexed_ids(log_dir: Path, entry_id: str, holder: list[Any]) -> tuple[int, int] | None:
    """The (trace id, span id) of an entry from the index, for feedback on an entry exported
    in an earlier run; None when it is unknown."""
    from promptlab.otel.spans import entry_span_ids

    try:
        if not holder:
            from promptlab.index.core import Index

            index = Index(log_dir)
            index.sync()
            holder.append(index)
        row = holder[0].conn.execute(
            "SELECT id, trace_id, span_id, parent_id FROM entries WHERE id = ?",
            (entry_id,)).fetchone()
    except Exception:  # no usable index: feedback falls back to "a call outside a trace"
        return None
    if row is None:
        return None
    trace_id, span_id, _ = entry_span_ids(
        {"id": row[0], "trace_id": row[1], "span_id": row[2], "parent_id": row[3]})
    return trace_id, span_id


def _run(files: list[Path], state: ExportState, selection: Selection, all_: bool,
         batch_size: int, maker: Any, exporter: Any, summary: ExportSummary,
         seen: dict[str, tuple[int, int]], progress: Callable[[int, int], None] | None,
         trace_id_of: Any, span_id_of: Any, handler: _LastError) -> None:
    from opentelemetry.sdk.trace.export import SpanExportResult

    from promptlab.logs.reader import parse_line

    filtered = selection.filtered
    positions = {} if all_ else state.positions()
    already = set() if all_ else state.sent_ids()
    plan: list[tuple[Path, int, int]] = []  # (file, inode, start offset)
    total = 0
    for path in files:
        try:
            st = path.stat()
        except FileNotFoundError:
            continue
        inode, offset = positions.get(path.name, (None, 0))
        if inode is not None and (inode != st.st_ino or st.st_size < offset):
            offset = 0  # the file was replaced or truncated since: read it again
        plan.append((path, st.st_ino, offset))
        total += max(st.st_size - offset, 0)

    marks: dict[str, tuple[int, int]] = {}
    batch: list[Any] = []
    batch_ids: list[str] = []
    settled: list[str] = []
    done = lines = 0

    def flush() -> bool:
        nonlocal batch, batch_ids, settled
        if batch:
            result = exporter.export(batch)
            if result != SpanExportResult.SUCCESS:
                summary.failed += len(batch)
                summary.error = handler.message or "the endpoint did not accept the batch"
                return False
            summary.sent += len(batch)
        state.commit({} if filtered else marks, batch_ids if filtered else [],
                     [] if filtered else settled)
        batch, batch_ids, settled = [], [], []
        return True

    for path, inode, start in plan:
        try:
            lines_of = _lines(path, start)
            first = next(lines_of, None)
        except OSError as exc:  # removed or unreadable since it was listed
            summary.error = f"cannot read {path}: {exc.strerror}"
            continue
        if first is None:
            continue
        for raw, end in itertools.chain((first,), lines_of):
            done += len(raw) + 1
            lines += 1
            if progress is not None and not lines % 1024:
                progress(done, total)
            marks[path.name] = (inode, end)
            if not raw.strip():
                continue
            # The reader's own parser, so the export takes exactly the lines `logs check` and
            # the index take (a torn fragment's glued entry too; a timestamp missing from
            # a ULID-named entry is derived). An entry without an id is not sent: its
            # derived id (`<day>:<line>`) needs a line number a resumed export does not know.
            entry, _, problem, _ = parse_line(raw, path.stem, 0, derived_id=_NO_ID)
            summary.malformed += problem is not None
            if entry is None or entry["id"] == _NO_ID:
                summary.malformed += entry is not None
                continue
            entry_id = entry["id"]
            if entry.get("kind") != "feedback":
                trace = entry.get("trace_id")
                seen[entry_id] = (
                    (trace_id_of(trace), span_id_of(entry.get("span_id") or entry_id)) if trace
                    else (trace_id_of(entry_id), span_id_of(entry_id)))
            if entry_id in already:
                summary.skipped += 1
                settled.append(entry_id)
                continue
            if filtered and not selection.matches(entry):
                summary.unmatched += 1
                continue
            try:
                span = maker.make(entry)
            except (KeyError, TypeError, ValueError, AttributeError):
                summary.malformed += 1
                continue
            batch.append(span)
            batch_ids.append(entry_id)
            if len(batch) >= batch_size and not flush():
                summary.not_attempted = _count_rest(plan, path, end)
                return
        if progress is not None:
            progress(done, total)
    if not flush():
        summary.not_attempted = 0


def _count_rest(plan: list[tuple[Path, int, int]], path: Path, end: int) -> int:
    """Lines left after a failure (an estimate for the summary: newlines not yet read)."""
    count = 0
    after = False
    for p, _, start in plan:
        if p == path:
            after = True
            with open(p, "rb") as fh:
                fh.seek(end)
                count += fh.read().count(b"\n")
        elif after:
            with open(p, "rb") as fh:
                fh.seek(start)
                count += fh.read().count(b"\n")
    return count
