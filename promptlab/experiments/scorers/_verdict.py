"""Reading a verdict (a number, or pass/fail) from a judge's or a program's text."""

from __future__ import annotations

import json
import re

from promptlab.errors import ScorerError

_PASS = re.compile(r"\b(pass|passed|yes|true|correct)\b", re.IGNORECASE)
_FAIL = re.compile(r"\b(fail|failed|no|false|incorrect)\b", re.IGNORECASE)
_NUMBER = re.compile(r"[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?")


def parse_verdict(text: str, mode: str, what: str) -> bool | float:
    """A number, or pass/fail, from a judge's or a command's output.

    `mode` "number" takes the first number; "pass_fail" the first PASS/FAIL-like word;
    "auto" accepts JSON `{"score"|"pass": …}`, a bare true/false/number, then pass/fail
    words, then the first number.
    """
    stripped = text.strip()
    if mode == "auto":
        try:
            data = json.loads(stripped)
        except ValueError:
            data = None
        if isinstance(data, dict):
            for key in ("score", "pass", "value"):
                if isinstance(data.get(key), bool | int | float):
                    return data[key]
        if isinstance(data, bool | int | float):
            return data
    if mode in ("auto", "pass_fail"):
        passed, failed = _PASS.search(stripped), _FAIL.search(stripped)
        if passed and (not failed or passed.start() < failed.start()):
            return True
        if failed:
            return False
        if mode == "pass_fail":
            raise ScorerError(f"{what} gave no PASS/FAIL verdict: {stripped[:80]!r}")
    m = _NUMBER.search(stripped)
    if m:
        return float(m.group(0))
    raise ScorerError(f"{what} gave no score: {stripped[:80]!r}")


