"""Secrets never reach the log file; ordinary text is left alone."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from promptlab import Logger
from promptlab.logs import redact as redact_module
from promptlab.logs.reader import read_entries
from promptlab.logs.redact import Redactor, redact_line, redact_rules, redact_text

# The redaction pre-check must let through every line a rule would change.
PRECHECKS = {"python": redact_module.maybe_secret}

OPENAI = "sk-proj-Ab3dEf5hIj7kLm9nOp1qRs3tUv5wXy7z0123456789"
ANTHROPIC = "sk-ant-api03-ZZ9x8w7v6u5t4s3r2q1p0o9n8m7l6k5j4i3h2g1f-AbCdEf"
AWS_ID = "AKIAIOSFODNN7EXAMPLE"
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"
PEM = ("-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA7bq\n\"x\"+/=abc\n"
       "-----END RSA PRIVATE KEY-----")


@pytest.mark.parametrize(("text", "expected"), [
    (f"my key is {OPENAI}, thanks", "my key is sk-[REDACTED], thanks"),
    (f"key:\n{ANTHROPIC}\n", "key:\nsk-[REDACTED]\n"),
    (f"export OPENAI_API_KEY='{OPENAI}'", "export OPENAI_API_KEY='sk-[REDACTED]'"),
    (f"Authorization: Bearer {JWT}", "Authorization: Bearer [REDACTED]"),
    (f"curl -H 'authorization: bearer {JWT}'", "curl -H 'authorization: bearer [REDACTED]'"),
    (f"aws_access_key_id={AWS_ID}", "aws_access_key_id=AKIA[REDACTED]"),
    ("temporary: ASIAY34FZKBOKMUTVV7A\n", "temporary: ASIA[REDACTED]\n"),
    (f"aws_secret_access_key = {AWS_SECRET}", "aws_secret_access_key = [REDACTED]"),
    (f'{{"SecretAccessKey": "{AWS_SECRET}"}}', '{"SecretAccessKey": "[REDACTED]"}'),
    (f"before\n{PEM}\nafter", "before\n[REDACTED]\nafter"),
    ("-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXk (cut off)", "[REDACTED]"),
])
def test_builtin_rules(text: str, expected: str) -> None:
    assert redact_text(text) == expected


@pytest.mark.parametrize("text", [
    "task-management-system-overview and a risk-averse-approach-for-everyone",
    "the desk-organisation-guidelines-for-new-hires document",
    "ASIAN markets and AKIA (too short)",
    "xAKIAIOSFODNN7EXAMPLE is glued to a word",
    "a bearer of bad news; Bearer short; bearer instruments",
    "-----BEGIN PUBLIC KEY----- is not secret",
    "sk- alone, and sk-short",
])
def test_ordinary_text_is_untouched(text: str) -> None:
    assert redact_text(text) == text


def test_every_field_is_covered_and_the_file_never_sees_the_secret(tmp_path: Path) -> None:
    entry = Logger(tmp_path).log(
        model="gpt-4o", system_prompt=f"use {OPENAI}", user_message=f"id {AWS_ID}",
        assistant_response=PEM, error=f"401 for Bearer {JWT}",
        messages=[{"role": "tool", "content": f"key {ANTHROPIC}"}],
        metadata={"headers": {"Authorization": f"Bearer {JWT}"},
                  "aws_secret_access_key": AWS_SECRET},
    )
    raw = next(tmp_path.glob("*.jsonl")).read_text()
    for secret in (OPENAI, ANTHROPIC, AWS_ID, AWS_SECRET, JWT, "MIIEowIBAAKCAQEA"):
        assert secret not in raw
    assert json.loads(raw) == entry  # the returned entry is what was written
    assert entry["metadata"] == {"headers": {"Authorization": "Bearer [REDACTED]"},
                                 "aws_secret_access_key": "[REDACTED]"}
    assert entry["messages"][0]["content"] == "key sk-[REDACTED]"


def test_redact_false_keeps_text_verbatim(tmp_path: Path) -> None:
    entry = Logger(tmp_path, redact=False).log(model="m", user_message=OPENAI)
    assert entry["user_message"] == OPENAI
    assert [e["user_message"] for e in read_entries(tmp_path)] == [OPENAI]


def test_project_setting_turns_redaction_off(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "promptlab.toml").write_text("redact = false\nlog_dir = 'logs'\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PROMPTLAB_LOG_DIR")
    entry = Logger().log(model="m", user_message=OPENAI)
    assert entry["user_message"] == OPENAI
    assert (tmp_path / "logs").is_dir()


def test_user_hook_and_patterns_add_rules(tmp_path: Path) -> None:
    email = re.compile(r"[\w.]+@[\w.]+")
    redactor = Redactor(patterns=[email, r"ssn (?P<secret>\d{3}-\d{2}-\d{4})"],
                        hook=lambda text: text.replace("Project Falcon", "[CODENAME]"))
    entry = Logger(tmp_path, redactor=redactor).log(
        model="m", user_message="mail ann@example.com about Project Falcon, ssn 123-45-6789",
        metadata={"note": "cc bob@example.org"}, tags=["Project Falcon"])
    assert entry["user_message"] == "mail [REDACTED] about [CODENAME], ssn [REDACTED]"
    assert entry["metadata"] == {"note": "cc [REDACTED]"}
    assert entry["tags"] == ["[CODENAME]"]
    plain = Logger(tmp_path, redactor=lambda t: t.replace("x", "y")).log(
        model="m", user_message=f"x {OPENAI}")
    assert plain["user_message"] == "y sk-[REDACTED]"  # built-in rules still run after the hook


secrets = st.sampled_from([OPENAI, ANTHROPIC, AWS_ID, f"Bearer {JWT}", PEM,
                           f"aws_secret_access_key={AWS_SECRET}"])


@settings(max_examples=200, deadline=None)
@given(before=st.text(max_size=40), secret=secrets, after=st.text(max_size=40))
def test_redaction_keeps_the_line_valid_json(before: str, secret: str, after: str) -> None:
    text = f"{before} {secret} {after}"
    line = json.dumps({"user_message": text, "metadata": {"k": [text]}},
                      ensure_ascii=False).encode() + b"\n"
    out = redact_line(line)
    decoded = json.loads(out)  # still one valid JSON line
    assert out.count(b"\n") == 1
    core = secret.split()[-1].split("=")[-1]
    assert core[8:30] not in decoded["user_message"] or core[8:30] in before + after
    assert decoded["metadata"]["k"][0] == decoded["user_message"]


# -- the fast scans redact exactly what the plain rules do -------------------------------------
# The rules as first written: one scan per rule over the whole line, no skipping. redact_line
# reorders and anchors them for speed and skips two of them when the line has no capital I;
# these properties check it never misses (or adds) anything they would catch.

_T = rb"A-Za-z0-9_\-"
_PLAIN_RULES = [
    (re.compile(rb"-(?:(?P<key>(?:(?<![" + _T + rb"]sk-)|(?<=\\[nrt]sk-))(?<=sk-)[" + _T + rb"]{20,})"
                rb"|----BEGIN [A-Z0-9 ]{0,40}PRIVATE KEY-----(?:(?:[^\"\\]|\\.)*?"
                rb"-----END [A-Z0-9 ]{0,40}PRIVATE KEY-----|(?:[^\"\\]|\\.)*))"),
     lambda m: b"-[REDACTED]" if m.group("key") else b"[REDACTED]"),
    (re.compile(rb"IA(?<=AKIA|ASIA)(?:(?<![A-Za-z0-9]..IA)|(?<=\\[nrt]..IA))[A-Z0-9]{16}"
                rb"(?![A-Za-z0-9])"), lambda m: b"IA[REDACTED]"),
    (re.compile(rb"ccess(?:(?<=[Ss]ecret_access)_key|(?<=[Ss]ecretAccess)Key)"
                rb"(?P<sep>(?:\\\"|[\"' :=])+)[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+])"),
     lambda m: m.group(0)[: m.start("sep") - m.start()] + m.group("sep") + b"[REDACTED]"),
    (re.compile(rb"earer(?<=[Bb]earer)(?P<sp>(?: |\\t)+)[A-Za-z0-9._~+/\-]{16,}=*"),
     lambda m: b"earer" + m.group("sp") + b"[REDACTED]"),
]


def _plain_redact(line: bytes) -> bytes:
    for pattern, replace in _PLAIN_RULES:
        line = pattern.sub(replace, line)
    return line


_upper_digits = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
_token = _upper_digits + "abcdefghijklmnopqrstuvwxyz_-"
# Secrets, and near misses: too short, glued to a word, other case, split by an escape.
_pieces = st.one_of(
    st.builds(lambda p, body: p + body, st.sampled_from(["sk-", "sk-proj-", "sk-ant-api03-",
                                                         "xsk-", "SK-", "sk_"]),
              st.text(_token, min_size=15, max_size=30)),
    st.builds(lambda p, body, after: p + body + after,
              st.sampled_from(["AKIA", "ASIA", "AKIa", "xAKIA", "\nASIA", "IA"]),
              st.text(_upper_digits, min_size=14, max_size=18),
              st.sampled_from(["", " ", "x", "9", "\n"])),
    st.builds(lambda word, sep, body: word + sep + body,
              st.sampled_from(["Bearer", "bearer", "BEARER", "Bear", "bearers"]),
              st.sampled_from([" ", "  ", "\t", "\n", ": "]),
              st.text(_token + "./+~=", min_size=12, max_size=24)),
    st.builds(lambda key, sep, body: key + sep + body,
              st.sampled_from(["aws_secret_access_key", "Secret_access_key",
                               "SecretAccessKey", "secretAccessKey", "secret_accesskey"]),
              st.sampled_from(["=", " = ", '": "', "'", ": ", "\t"]),
              st.text(_upper_digits + "abcxyz/+", min_size=38, max_size=42)),
    st.builds(lambda kind, body, end: f"-----BEGIN {kind}PRIVATE KEY-----{body}{end}",
              st.sampled_from(["", "RSA ", "OPENSSH ", "EC ", "rsa "]),
              st.text(max_size=30),
              st.sampled_from(["", "\n-----END RSA PRIVATE KEY-----", "-----END PRIVATE KEY-----"])),
    st.sampled_from(["-----BEGIN PUBLIC KEY-----", "In", "I ", "IAM", "-", "k-", "--", "\\",
                     '"', "é", "✨"]),
    st.text(max_size=12),
)


@settings(max_examples=600, deadline=None)
@given(parts=st.lists(_pieces, min_size=1, max_size=6), key=st.sampled_from(
    ["user_message", "assistant_response", "error"]))
def test_fast_scans_redact_exactly_like_the_plain_rules(parts: list[str], key: str) -> None:
    text = "".join(parts)
    line = json.dumps({"v": 1, "id": "01KC3ZQ8P4S2ZB3NVJ5WA7XK4M", "kind": "llm", key: text,
                       "metadata": {"k": [text]}}, ensure_ascii=False).encode() + b"\n"
    out = redact_line(line)
    expected = _plain_redact(line)
    assert out == expected
    if out == line:
        assert out is line  # "nothing found" costs the caller no copy and no re-read
    json.loads(out)
    for name, check in PRECHECKS.items():  # each pre-check alone, whichever is in use
        assert (redact_rules(line) if check(line) else line) == expected, name


@settings(max_examples=300, deadline=None)
@given(before=st.text(max_size=60), secret=st.sampled_from(
    [AWS_ID, "ASIAY34FZKBOKMUTVV7A", PEM, "-----BEGIN EC PRIVATE KEY-----\nabc"]),
    after=st.text(max_size=60))
def test_the_capital_i_check_never_skips_an_aws_key_id_or_a_private_key(
        before: str, secret: str, after: str) -> None:
    # Both rules are skipped when the line has no "I"; each of their matches contains one.
    line = json.dumps({"user_message": f"{before} {secret} {after}"}).encode()
    out = redact_line(line)
    assert out == _plain_redact(line)
    message = json.loads(out)["user_message"]
    assert secret not in message and "[REDACTED]" in message


@pytest.mark.parametrize("secret", [OPENAI, ANTHROPIC, AWS_ID, f"Bearer {JWT}", PEM,
                                    f"aws_secret_access_key={AWS_SECRET}",
                                    f'"SecretAccessKey": "{AWS_SECRET}"', "ASIAY34FZKBOKMUTVV7A"])
def test_every_precheck_lets_each_secret_through(secret: str) -> None:
    line = json.dumps({"user_message": f"see {secret} here"}).encode() + b"\n"
    for name, check in PRECHECKS.items():
        assert check(line), name
