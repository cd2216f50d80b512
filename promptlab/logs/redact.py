"""Secret redaction before anything reaches the log.

Built-in rules replace OpenAI/Anthropic-style API keys (`sk-…`), bearer tokens, AWS access
key ids and secret keys, and private-key blocks with `[REDACTED]` (keeping the marker that
says what it was: `sk-[REDACTED]`, `AKIA[REDACTED]`, `Bearer [REDACTED]`). They run on the encoded
JSON line, so one pass per rule covers every field (prompt, response, messages, metadata,
error), and can only consume characters that never sit at the edge of a JSON escape
sequence, so a replacement always leaves valid JSON.

Cost: the common line holds no secret, so what matters is how fast a clean line is
passed. Every rule needs one of a few literal anchors (`sk-`, `AKIA`/`ASIA`, `-----BEGIN `,
`ccess`, `earer`); the C pre-check in `_speedups.c` (built at install when a compiler is
there) finds them with memchr/memmem in a fraction of one regex pass, and a line without
any is returned untouched. Without it, each scan below starts with a literal whose first
character `re` looks for in a tight C loop (about one byte per cycle), chosen to be rare
in text: `k-` (sk- keys), `ccess` (AWS secret keys), `rer` (bearer tokens). AWS key ids
and private-key blocks both contain a capital `I`, which ids, timestamps and field names
never do: `bytes.find` (memchr) skips them unless the text has one. Substring tests
(`b"sk-" in line`) would cost more than these scans: CPython 3.11 finds short needles at
about a nanosecond per byte.

Users add rules as regular expressions or as a function `str -> str`; both are applied to
every string value of the entry before it is encoded:

    Logger(redactor=lambda text: text.replace(customer_email, "[EMAIL]"))
    Logger(redactor=Redactor(patterns=[r"\\b\\d{3}-\\d{2}-\\d{4}\\b"]))
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

REDACTED = "[REDACTED]"
_R = REDACTED.encode()
_TOKEN = rb"A-Za-z0-9_\-"

# Patterns on the encoded line. In the line a newline inside text is the two bytes `\n`, so
# "a token starts here" means: no token character before it, or an escape.

# sk-… API keys (OpenAI sk-/sk-proj-, Anthropic sk-ant-…): keep "sk-", redact the rest.
_API_KEY = re.compile(
    rb"k-(?:(?<![" + _TOKEN + rb"]sk-)|(?<=\\[nrt]sk-))(?<=sk-)[" + _TOKEN + rb"]{20,}"
)
# AWS access key ids: AKIA… (long-term) and ASIA… (temporary), 20 characters.
_AWS_KEY_ID = re.compile(
    rb"IA(?<=AKIA|ASIA)(?:(?<![A-Za-z0-9]..IA)|(?<=\\[nrt]..IA))[A-Z0-9]{16}(?![A-Za-z0-9])"
)
# -----BEGIN … PRIVATE KEY----- blocks, to their END line or the end of the text.
_PRIVATE_KEY = re.compile(
    rb"-----BEGIN [A-Z0-9 ]{0,40}PRIVATE KEY-----(?:(?:[^\"\\]|\\.)*?"
    rb"-----END [A-Z0-9 ]{0,40}PRIVATE KEY-----|(?:[^\"\\]|\\.)*)"
)
# Both of the above, found from their capital I: a detector (a match of either rule
# matches here too), so the precise rules run only on lines that need them.
_CAPITAL_I = re.compile(
    rb"I(?:A(?<=AKIA|ASIA)(?:(?<![A-Za-z0-9]..IA)|(?<=\\[nrt]..IA))[A-Z0-9]{16}(?![A-Za-z0-9])"
    rb"|N(?<=-----BEGIN) [A-Z0-9 ]{0,40}PRIVATE KEY-----)"
)
# AWS secret access keys: aws_secret_access_key = …, "SecretAccessKey": "…".
_AWS_SECRET = re.compile(
    rb"ccess(?:(?<=[Ss]ecret_access)_key|(?<=[Ss]ecretAccess)Key)"
    rb"(?P<sep>(?:\\\"|[\"' :=])+)[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+])"
)
# Authorization: Bearer <token> (also "bearer"): keep the word, redact the token.
_BEARER = re.compile(rb"rer(?<=[Bb]earer)(?P<sp>(?: |\\t)+)[A-Za-z0-9._~+/\-]{16,}=*")

_CAPITAL_I_BYTE = ord("I")


def _key(m: re.Match[bytes]) -> bytes:
    return b"k-" + _R


def _key_id(m: re.Match[bytes]) -> bytes:
    return b"IA" + _R  # keeps "AKIA"/"ASIA" visible, like "sk-"


def _private_key(m: re.Match[bytes]) -> bytes:
    return _R


def _secret(m: re.Match[bytes]) -> bytes:
    return m.group(0)[: m.start("sep") - m.start()] + m.group("sep") + _R


def _bearer(m: re.Match[bytes]) -> bytes:
    return b"rer" + m.group("sp") + _R


# Every built-in rule as (pattern, replacement), in the order redact_line applies them.
RULES: list[tuple[re.Pattern[bytes], Callable[[re.Match[bytes]], bytes]]] = [
    (_API_KEY, _key),
    (_PRIVATE_KEY, _private_key),
    (_AWS_KEY_ID, _key_id),
    (_AWS_SECRET, _secret),
    (_BEARER, _bearer),
]


def maybe_secret_py(line: bytes) -> bool:
    """The pure-Python `maybe_secret`: whether any built-in rule's anchor is in `line`."""
    return (b"sk-" in line or b"AKIA" in line or b"ASIA" in line or b"-----BEGIN " in line
            or b"ccess" in line or b"earer" in line)


maybe_secret = maybe_secret_py


def redact_line(line: bytes) -> bytes:
    """`line` (an encoded JSON entry) with built-in secrets replaced by [REDACTED].

    Returns `line` itself when it holds no secret.
    """
    if not maybe_secret(line):
        return line
    return redact_rules(line)


def redact_rules(line: bytes) -> bytes:
    """`redact_line` without the pre-check: every rule's regular expression runs."""
    if _API_KEY.search(line) is not None:
        line = _API_KEY.sub(_key, line)
    first_i = line.find(_CAPITAL_I_BYTE)
    if first_i >= 0 and _CAPITAL_I.search(line, first_i) is not None:
        line = _PRIVATE_KEY.sub(_private_key, line)
        line = _AWS_KEY_ID.sub(_key_id, line)
    if _AWS_SECRET.search(line) is not None:
        line = _AWS_SECRET.sub(_secret, line)
    if _BEARER.search(line) is not None:
        line = _BEARER.sub(_bearer, line)
    return line


def redact_text(text: str) -> str:
    """Plain text with built-in secrets replaced (same rules as the log line)."""
    import orjson

    encoded = orjson.dumps(text)
    redacted = redact_line(encoded)
    return text if redacted is encoded else orjson.loads(redacted)


class Redactor:
    """Extra redaction rules: regular expressions and/or a function on each string value.

    `patterns` are replaced by `replacement`; a pattern with a named group `secret`
    replaces only that group. `hook(text) -> text` runs after the patterns. Built-in rules
    always run too unless the logger is created with `redact=False`.
    """

    def __init__(
        self,
        patterns: Iterable[str | re.Pattern[str]] = (),
        hook: Callable[[str], str] | None = None,
        replacement: str = REDACTED,
    ):
        self.patterns = [re.compile(p) if isinstance(p, str) else p for p in patterns]
        self.hook = hook
        self.replacement = replacement

    def __call__(self, text: str) -> str:
        for pattern in self.patterns:
            if "secret" in pattern.groupindex:
                text = pattern.sub(self._replace_group, text)
            else:
                text = pattern.sub(self.replacement, text)
        if self.hook is not None:
            text = self.hook(text)
            if not isinstance(text, str):
                raise TypeError(f"redaction hook returned {type(text).__name__}, not str")
        return text

    def _replace_group(self, m: re.Match[str]) -> str:
        start, end = m.span("secret")
        whole = m.group(0)
        offset = m.start()
        return whole[: start - offset] + self.replacement + whole[end - offset :]


def apply_to_strings(value: Any, fn: Callable[[str], str]) -> Any:
    """`value` with `fn` applied to every string inside it (dict keys are left alone)."""
    if isinstance(value, str):
        return fn(value)
    if isinstance(value, Mapping):
        return {k: apply_to_strings(v, fn) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [apply_to_strings(v, fn) for v in value]
    return value
