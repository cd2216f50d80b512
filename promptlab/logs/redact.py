"""Secret redaction: one rule table, applied to everything promptlab writes.

    from promptlab.logs.redact import redact_text, redact_value

    redact_text("key sk-proj-Ab3d…")          # -> "key sk-[REDACTED]"
    redact_value({"headers": {"Authorization": "Bearer eyJ…"}, "n": 3})

`redact_text(str) -> str` and `redact_value(obj) -> obj` (every string inside dicts,
lists and tuples, dict keys included) are the two functions every writer uses: the log,
the experiment cache, embeddings, exports and reports. Both return their argument itself
when nothing was redacted.

The rules (`RULES`, documented in docs/security.md) follow gitleaks' and detect-secrets'
definitions: OpenAI/Anthropic keys, GitHub, Google, Slack, Stripe, Hugging Face and AWS
credentials, JWTs, private-key blocks (PEM, OpenSSH, PGP), bearer tokens, `Authorization:
Basic` credentials and passwords in URLs. A rule keeps the part that says what the secret
was (`sk-[REDACTED]`, `AKIA[REDACTED]`, `Bearer [REDACTED]`, `https://ann:[REDACTED]@host`).
Tokens that must start a word (an `sk-` inside `task-…` is not a key) may follow a space,
punctuation, a control character, NUL or a terminal colour code (`\\x1b[32msk-…`).

Cost. Almost no text holds a secret, so what matters is how fast clean text is passed.
`maybe_secret` answers that on the encoded log line (or any str) without running the rules:
memchr (`find`) for a few rare characters that pin rule families (`I` for AKIA/AIza/BEGIN/
AUTHORIZATION, `J` for JWTs, `@` for URLs with a password, `z` for Authorization, `B` for
Bearer and Slack webhooks, `K` for AccessKey), each followed by one regular expression only
where the character occurs, and two literal-prefix scans (`-` for sk- and xox?- keys, `_`
for GitHub, Hugging Face and Stripe keys) that `re` runs as a tight C loop. Only text that
passes the check goes through the rules. A property test checks that every rule match
passes the check.

Users add rules for the whole process with `add_rule` (they then apply to everything
promptlab writes), or per logger with a function or a `Redactor`:

    add_rule("employee-id", r"\\bEMP-(?P<secret>\\d{6})\\b", anchors=["EMP-"])
    Logger(redactor=Redactor(patterns=[r"[\\w.]+@[\\w.]+"]))
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

REDACTED = "[REDACTED]"

__all__ = ["REDACTED", "RULES", "Redactor", "Rule", "add_rule", "maybe_secret", "redact_line",
           "redact_text", "redact_value", "remove_rule", "rules"]


@dataclass(frozen=True)
class Rule:
    """One kind of secret: `pattern` finds it, its group `secret` (or the whole match) is
    replaced with [REDACTED].

    word_start: the match must begin a word: not right after a letter, digit, `_` or `-`
                (a terminal colour code right before it is fine).
    anchors:    for user rules, literal strings one of which every match contains; text
                holding none of them skips the rule. Empty: the rule runs on every string.
    """

    name: str
    pattern: re.Pattern[str]
    description: str = ""
    source: str = ""
    example: str = ""
    word_start: bool = False
    anchors: tuple[str, ...] = field(default=())
    # The secret must hold a digit: a random key of this shape almost always does, while
    # words that happen to follow the prefix ("sk-associating-sock-claims") do not.
    digit: bool = False
    # ... or, for keys of letters only, this many capitals (random case, not CamelCase words)
    capitals: int = 0
    # For JSON-like values: a dict item whose key `key` finds and whose string value
    # `value` matches in full has its value redacted (the name and the secret are split
    # between key and value, where the text pattern cannot see them together).
    key: re.Pattern[str] | None = None
    value: re.Pattern[str] | None = None

    def sub(self, text: str) -> str:
        return self.pattern.sub(self._replace, text)

    def _replace(self, m: re.Match[str]) -> str:
        if self.word_start and not _word_start(m.string, m.start()):
            return m.group(0)
        if "secret" not in self.pattern.groupindex or m.group("secret") is None:
            return REDACTED
        if self.digit and _DIGIT.search(m.group("secret")) is None:
            return m.group(0)
        if self.capitals and sum(c.isupper() for c in m.group("secret")) < self.capitals:
            return m.group(0)
        start, end = m.span("secret")
        whole, offset = m.group(0), m.start()
        return whole[: start - offset] + REDACTED + whole[end - offset:]


_DIGIT = re.compile(r"[0-9]")
_TOKEN_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")
# The end of a terminal escape sequence: CSI (`\x1b[1;32m`) or OSC (`\x1b]8;;url\x07`).
_ESCAPE_TAIL = re.compile(r"(?:\x1b\[[0-9;:?<=>]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\))\Z")


def _word_start(text: str, i: int) -> bool:
    if i == 0 or text[i - 1] not in _TOKEN_CHARS:
        return True
    return _ESCAPE_TAIL.search(text, max(0, i - 64), i) is not None


def _rule(name: str, pattern: str, description: str, source: str, example: str, *,
          word_start: bool = False, digit: bool = False, capitals: int = 0,
          key: str | None = None, value: str | None = None) -> Rule:
    return Rule(name, re.compile(pattern), description, source, example, word_start,
                digit=digit, capitals=capitals, key=None if key is None else re.compile(key),
                value=None if value is None else re.compile(value))


_AWS_SECRET_NAME = r"(?:[Ss]ecret_?[Aa]ccess_?Key|[Ss]ecret_access_key|SECRET_ACCESS_KEY)"


# The built-in table. Patterns are ASCII; each is covered by the pre-check below (tested).
RULES: tuple[Rule, ...] = (
    _rule("private-key",
          r"-----BEGIN[ A-Z0-9_-]{0,100}PRIVATE KEY(?: BLOCK)?-----"
          r"(?s:.*?-----END[ A-Z0-9_-]{0,100}PRIVATE KEY(?: BLOCK)?-----|.*)",
          "PEM, OpenSSH and PGP private-key blocks, to their END line (or the end of the text)",
          "gitleaks private-key; detect-secrets PrivateKeyDetector",
          "-----BEGIN RSA PRIVATE KEY-----\\nMIIE…\\n-----END RSA PRIVATE KEY-----"),
    _rule("openai-anthropic-api-key", r"sk-(?P<secret>[A-Za-z0-9_-]{20,})",
          "OpenAI (sk-, sk-proj-, sk-svcacct-) and Anthropic (sk-ant-…) API keys",
          "gitleaks openai-api-key, anthropic-api-key; detect-secrets OpenAIDetector",
          "sk-proj-Xi8tdMjHV6pmbBbwilTeT3BlbkFJ3UDnpdEwNNm6wVBpYM0o", word_start=True, digit=True),
    _rule("github-token", r"gh[pousr]_(?P<secret>[A-Za-z0-9]{30,255})(?![A-Za-z0-9])",
          "GitHub personal (ghp_), OAuth (gho_), app (ghu_, ghs_) and refresh (ghr_) tokens",
          "gitleaks github-pat, github-oauth, github-app-token, github-refresh-token",
          "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", word_start=True, digit=True),
    _rule("github-fine-grained-pat", r"github_pat_(?P<secret>[A-Za-z0-9_]{22,255})",
          "GitHub fine-grained personal access tokens", "gitleaks github-fine-grained-pat",
          "github_pat_11ABCDEFG0abcdefghijkl_…", word_start=True, digit=True),
    _rule("google-api-key", r"AIza(?P<secret>[A-Za-z0-9_-]{35})(?![A-Za-z0-9_-])",
          "Google Cloud / Gemini API keys", "gitleaks gcp-api-key; detect-secrets GcpkeyDetector",
          "AIzaSyDaGmWKa4JsXZ-HjGw7ISLn_3namBGewQe", word_start=True, digit=True),
    _rule("slack-token", r"xox[abeoprs]-(?P<secret>[A-Za-z0-9-]{10,250})",
          "Slack bot, user, app and legacy tokens (xoxb-, xoxp-, xoxa-, xoxe-, xoxr-, xoxs-)",
          "gitleaks slack-bot-token, slack-user-token, slack-legacy-token; detect-secrets "
          "SlackDetector", "xoxb-34532454-e039d02840a0b9379c", word_start=True, digit=True),
    _rule("slack-webhook",
          r"hooks\.slack\.com/services/(?P<secret>T[A-Za-z0-9_]+/B[A-Za-z0-9_]{4,}/"
          r"[A-Za-z0-9_]{16,})",
          "Slack incoming-webhook URLs (the path is the secret)",
          "gitleaks slack-webhook-url; detect-secrets SlackDetector",
          "https://hooks.slack.com/services/T0000/B0000/XXXXXXXXXXXXXXXXXXXXXXXX"),
    _rule("stripe-key", r"[sr]k_(?:live|test|prod)_(?P<secret>[A-Za-z0-9]{10,99})",
          "Stripe secret (sk_live_, sk_test_) and restricted (rk_live_, rk_test_) keys",
          "gitleaks stripe-access-token; detect-secrets StripeDetector",
          "sk_live_ReTllpYQYfIZu2Jnf2lAPFjD", word_start=True, digit=True),
    _rule("huggingface-token", r"hf_(?P<secret>[A-Za-z]{34})(?![A-Za-z0-9])",
          "Hugging Face access tokens", "gitleaks huggingface-access-token",
          "hf_AbCdEfGhIjKlMnOpQrStUvWxYzAbCdEfGh", word_start=True, capitals=8),
    _rule("aws-access-key-id",
          r"(?:AKIA|ASIA|ABIA)(?P<secret>[A-Z0-9]{16})(?![A-Za-z0-9])",
          "AWS access key ids (long-term AKIA…, temporary ASIA…, ABIA…)",
          "gitleaks aws-access-token; detect-secrets AWSKeyDetector", "AKIAIOSFODNN7EXAMPLE",
          word_start=True),
    _rule("aws-secret-access-key",
          _AWS_SECRET_NAME +
          r"[\"']?[ \t]*[:=]?[ \t]*[\"']?[ \t]*(?P<secret>[A-Za-z0-9/+]{40})(?![A-Za-z0-9/+])",
          "AWS secret access keys after their name (aws_secret_access_key = …, "
          "\"SecretAccessKey\": \"…\", also as a key and its value)",
          "detect-secrets AWSKeyDetector",
          "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
          key=_AWS_SECRET_NAME, value=r"[ \t]*[A-Za-z0-9/+]{40}[ \t]*"),
    _rule("jwt",
          r"eyJ[A-Za-z0-9_-]{10,}={0,2}\.[A-Za-z0-9_-]{10,}={0,2}(?:\.[A-Za-z0-9_-]{10,}={0,2})?",
          "JSON Web Tokens (header.claims[.signature], base64url)",
          "gitleaks jwt; detect-secrets JwtTokenDetector",
          "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.SflKxwRJSMeKKF2QT4",
          word_start=True),
    _rule("bearer-token",
          r"B(?i:earer)(?P<sp>[ \t]+)(?P<secret>[A-Za-z0-9._~+/-]{16,}=*)",
          "Bearer tokens (Bearer, BEARER; a lowercase bearer after Authorization: below)",
          "gitleaks curl-auth-header", "Bearer 0123456789abcdefXYZ", word_start=True),
    _rule("authorization-header",
          r"(?:[Aa]uthorization|AUTHORIZATION)[\"']?[ \t]*[:=][ \t]*[\"']?[ \t]*"
          r"(?i:basic|bearer|token|digest)[ \t]+(?P<secret>[A-Za-z0-9._~+/-]{8,}=*)",
          "the credentials of an Authorization header (Basic, Bearer, Token; any case)",
          "gitleaks curl-auth-header", "Authorization: Basic dXNlcjpwYXNzd29yZA=="),
    _rule("url-password",
          r"://[^\s/:@'\"<>]{0,200}:(?P<secret>[^\s/@'\"<>]{1,200})@",
          "passwords in URLs (scheme://user:password@host keeps user and host)",
          "detect-secrets BasicAuthDetector", "https://username:password@yelp.com"),
)

# -- the pre-check ------------------------------------------------------------------------------
# Every rule match contains a match of one of the patterns below. They are written for the
# text and, as they only look at ASCII letters, digits and `-_:./@ `, hold for the encoded
# JSON line too (whose escapes never fall inside them). None of them can match inside the
# log entry's head (its ULID and timestamp), which the logger skips with `start`.
#
# What it costs on a clean 1.5 KB line is what matters. `re` finds a literal first
# character in a tight loop (a fraction of a ns per byte); a character class or an
# alternation at the start makes it try every position (10x slower), so each pattern
# starts with one literal. The two scans run over the whole text. The pivots are
# characters rare in ordinary text: bytes.find (memchr) skips texts without them, and a
# match is tried only where one occurs.
# sk- and xox?- keys: one scan of every "-". Dashes are few in prose; a "# -----" ruler in
# code costs a few µs (counting them first, to choose two narrower scans, costs more on
# every other text).
_SCAN_DASH = r"-(?<=[kabeoprs]-)(?:(?<=sk-)[A-Za-z0-9_-]{20}|(?<=xox[abeoprs]-))"
_SCAN_UNDERSCORE = (  # the lookbehind on the letter before "_" skips the entry's own keys
    r"_(?<=[pousrbfk]_)(?:[A-Za-z0-9]{16}(?:(?<=gh[pousr]_.{16})|(?<=hf_.{16}))"
    r"|(?<=github_)pat_|(?<=[sr]k_)(?:live|test|prod)_|(?<=ccess_)key)")
# (character, pattern anchored at it, try every occurrence (True) or search from the first)
_PIVOTS: tuple[tuple[str, str, bool], ...] = (
    ("I", r"I(?:A(?<=AKIA)|A(?<=ASIA)|A(?<=ABIA)|za(?<=AIza)"
          r"|N(?<=BEGIN)[ A-Z0-9_-]{0,100}PRIVATE KEY|ZATION(?<=AUTHORIZATION))", False),
    ("J", r"J(?<=eyJ)[A-Za-z0-9_-]{10}", True),
    ("z", r"z(?<=[Aa]uthoriz)ation", True),
    ("B", r"B(?:(?i:earer)|(?<=/B)[A-Za-z0-9_]{4,}/)", True),
    ("K", r"K(?:(?<=ccessK)ey|(?<=CCESS_K)EY|(?<=ccess_K)ey)", True),
)
# "@" is rare, but the URL rule's "://" comes before it: searched from the start.
_URL = r"://[^\s/:@]{0,400}:[^\s/@]{1,400}@"


def _compile_check(kind: type) -> Callable[[Any, int], bool]:
    """The pre-check for `kind` (str or bytes) as one straight-line function: the patterns
    and characters are its constants, so a clean text pays for the scans, not for loops
    and look-ups around them."""
    enc: Callable[[str], Any] = (lambda t: t.encode()) if kind is bytes else (lambda t: t)
    namespace: dict[str, Any] = {
        "at": enc("@"), "url": re.compile(enc(_URL)).search,
        "dash": re.compile(enc(_SCAN_DASH)).search,
        "underscore": re.compile(enc(_SCAN_UNDERSCORE)).search,
    }
    lines = ["def check(d, s):", "    f = d.find"]
    for n, (char, pattern, each) in enumerate(_PIVOTS):
        compiled = re.compile(enc(pattern))
        namespace[f"c{n}"] = enc(char)
        namespace[f"p{n}"] = compiled.match if each else compiled.search
        lines.append(f"    i = f(c{n}, s)")
        if each:  # try the pattern at every occurrence
            lines += ["    while i >= 0:",
                      f"        if p{n}(d, i) is not None: return True",
                      f"        i = f(c{n}, i + 1)"]
        else:  # search from the first occurrence
            lines.append(f"    if i >= 0 and p{n}(d, i) is not None: return True")
    lines += ["    if f(at, s) >= 0 and url(d, s) is not None: return True",
              "    return dash(d, s) is not None or underscore(d, s) is not None"]
    exec("\n".join(lines), namespace)  # built from the fixed tables above only
    return namespace["check"]


_check_str = _compile_check(str)
_check_bytes = _compile_check(bytes)

# User rules added with add_rule: (rules, anchors as str, anchors as bytes, any rule
# without anchors). Replaced whole under the lock, read without it.
_user: tuple[tuple[Rule, ...], tuple[str, ...], tuple[bytes, ...], bool] = ((), (), (), False)
_user_lock = threading.Lock()


def maybe_secret(data: str | bytes, start: int = 0) -> bool:
    """Whether `data` (text or an encoded JSON line) may hold a secret a rule would redact,
    looking from `start` on.

    False means no rule would change it; True means the rules must run (most True answers
    are real secrets, a few are near misses).
    """
    if (_check_bytes if type(data) is bytes else _check_str)(data, start):
        return True
    user = _user
    if user[0]:
        if user[3]:
            return True
        for anchor in (user[2] if type(data) is bytes else user[1]):
            if anchor in data:  # type: ignore[operator]
                return True
    return False


def rules() -> tuple[Rule, ...]:
    """The rules in force: the built-in table, then the ones added with `add_rule`."""
    return RULES + _user[0]


def add_rule(name: str, pattern: str | re.Pattern[str], *, description: str = "",
             anchors: Iterable[str] = (), word_start: bool = False) -> Rule:
    """Redact matches of `pattern` everywhere promptlab writes, for this process.

    The group named `secret`, if any, is what is replaced (the rest of the match stays);
    otherwise the whole match. `anchors`: literal strings one of which every match
    contains, so that text without any skips the rule (strongly advised: without anchors
    the rule runs on every string written). Adding a name again replaces that rule.
    """
    compiled = re.compile(pattern) if isinstance(pattern, str) else pattern
    if not isinstance(compiled.pattern, str):
        raise TypeError("redaction rules match text: give a str pattern, not bytes")
    anchor_list = tuple(anchors)
    if any(not isinstance(a, str) or not a for a in anchor_list):
        raise ValueError(f"anchors of rule {name!r} must be non-empty strings")
    rule = Rule(name, compiled, description, "user", "", word_start, anchor_list)
    global _user
    with _user_lock:
        kept = (*(r for r in _user[0] if r.name != name), rule)
        _user = _pack(kept)
    return rule


def remove_rule(name: str) -> None:
    """Remove a rule added with `add_rule` (built-in rules stay)."""
    global _user
    with _user_lock:
        _user = _pack(tuple(r for r in _user[0] if r.name != name))


def _pack(user_rules: tuple[Rule, ...]) -> tuple[tuple[Rule, ...], tuple[str, ...],
                                                  tuple[bytes, ...], bool]:
    anchors = tuple(a for r in user_rules for a in r.anchors)
    unanchored = any(not r.anchors for r in user_rules)
    return user_rules, anchors, tuple(a.encode() for a in anchors), unanchored


# -- applying the rules ------------------------------------------------------------------------


def redact_text(text: str) -> str:
    """`text` with every secret replaced (see the module documentation); `text` itself
    when it holds none."""
    if not maybe_secret(text):
        return text
    out = text
    for rule in RULES:
        out = rule.sub(out)
    for rule in _user[0]:
        if not rule.anchors or any(a in out for a in rule.anchors):
            out = rule.sub(out)
    return text if out == text else out


def redact_value(value: Any) -> Any:
    """`value` with `redact_text` applied to every string in it: dict keys and values,
    list and tuple items, nested (tuples come back as lists). Other values are returned
    as they are; so is `value` itself when nothing was redacted."""
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, Mapping):
        changed = False
        out: dict[Any, Any] = {}
        for k, v in value.items():
            if isinstance(k, str):
                if isinstance(v, str) and _keyed(k, v):
                    v2: Any = REDACTED
                else:
                    v2 = redact_value(v)
                k2 = redact_text(k)
            else:
                k2, v2 = k, redact_value(v)
            changed = changed or k2 is not k or v2 is not v
            out[k2] = v2
        return out if changed else value
    if isinstance(value, list | tuple):
        items = [redact_value(v) for v in value]
        if any(a is not b for a, b in zip(items, value, strict=True)):
            return items
        return value
    return value


def _keyed(key: str, value: str) -> bool:
    """Whether a rule names `key` as a secret's name and `value` as its secret."""
    for rule in RULES:
        if (rule.key is not None and rule.key.search(key) is not None
                and rule.value is not None and rule.value.fullmatch(value) is not None):
            return True
    return False


def redact_line(line: bytes) -> bytes:
    """`line` (one encoded JSON entry ending in a newline) with every secret redacted;
    `line` itself when it holds none."""
    if not maybe_secret(line):
        return line
    import orjson

    entry = orjson.loads(line)
    redacted = redact_value(entry)
    if redacted is entry:
        return line
    return orjson.dumps(redacted, option=orjson.OPT_APPEND_NEWLINE)


# -- per-logger extra redaction -----------------------------------------------------------------


class Redactor:
    """Extra redaction rules for one logger: regular expressions and/or a function on
    each string value.

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
