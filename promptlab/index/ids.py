"""Entry and trace ids as people type them: whole, or a unique prefix, the way `git` takes
short hashes.

Any prefix of at least MIN_PREFIX characters that matches one id resolves to it (case does
not matter for ULIDs). A prefix matching several ids is an error that lists them; a shorter
one is an error that says the minimum. ULIDs start with their time, so ids logged in the
same millisecond share their first 10 characters and need a few more to tell apart.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from promptlab.errors import LogIndexError

MIN_PREFIX = 4
SHOWN = 5  # candidates listed for an ambiguous prefix
_MAX_ID = 200
_TOP = "\U0010ffff"


class EntryNotFoundError(LogIndexError):
    """No entry (or more than one) matches the id given."""


def resolve_id(conn: sqlite3.Connection, ref: str, *, column: str = "id", what: str = "entry",
               where: str = "1", hint: str = "", place: str = "the log index") -> str:
    """The one value of `column` in `entries` that `ref` is, or is a unique prefix of.

    `where` narrows the rows considered (SQL over `entries`); `place` names the index and
    `hint` ends the not-found message with what to run to list candidates.
    """
    ref = ref.strip()
    if not ref or len(ref) > _MAX_ID or any(c.isspace() or not c.isprintable() for c in ref):
        shown = ref if len(ref) <= 40 else ref[:37] + "..."
        raise EntryNotFoundError(f"{shown!r} is not {_an(what)} id (ids look like "
                                 "01KE80AX2V7F4R1S9M3QWT6YZB; a unique prefix of at least "
                                 f"{MIN_PREFIX} characters will do)")
    forms = list(dict.fromkeys((ref, ref.upper())))
    for form in forms:
        if conn.execute(f"SELECT 1 FROM entries WHERE {column} = ? AND {where} LIMIT 1",
                        (form,)).fetchone():
            return form
    if len(ref) < MIN_PREFIX:
        raise EntryNotFoundError(f"{what} id prefix {ref!r} is too short: give at least "
                                 f"{MIN_PREFIX} characters of the id")
    found: dict[str, Any] = {}
    for form in forms:
        for value, stamp in conn.execute(
            f"SELECT {column}, min(timestamp) FROM entries WHERE {column} >= ? AND {column} < ?"
            f" AND {where} GROUP BY {column} ORDER BY {column} LIMIT ?",
            (form, form + _TOP, SHOWN + 1),
        ):
            found[value] = stamp
    if len(found) == 1:
        return next(iter(found))
    if found:
        listed = sorted(found.items())[:SHOWN]
        more = " and more" if len(found) > SHOWN else ""
        from promptlab.logs.reader import utc_time

        candidates = "; ".join(f"{value} ({utc_time(str(stamp)) if stamp else '?'})"
                               for value, stamp in listed)
        raise EntryNotFoundError(f"{what} id prefix {ref!r} is ambiguous: it matches "
                                 f"{candidates}{more}; give more characters")
    raise EntryNotFoundError(f"no {what} {ref!r} in {place}" + (f"; {hint}" if hint else ""))


def _an(word: str) -> str:
    return ("an " if word[:1] in "aeiou" else "a ") + word
