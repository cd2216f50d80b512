"""Secrets never reach the log file; ordinary text is left alone.

Positive and negative examples are the public test strings of gitleaks' and detect-secrets'
rules (fake credentials published for exactly this purpose), plus the holes found in
promptlab's earlier rules (issue 14.2).
"""

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
from promptlab.logs.redact import (
    RULES,
    Redactor,
    add_rule,
    maybe_secret,
    redact_line,
    redact_text,
    redact_value,
    remove_rule,
)

OPENAI = "sk-proj-Ab3dEf5hIj7kLm9nOp1qRs3tUv5wXy7z0123456789"
ANTHROPIC = "sk-ant-api03-ZZ9x8w7v6u5t4s3r2q1p0o9n8m7l6k5j4i3h2g1f-AbCdEf"
AWS_ID = "AKIAIOSFODNN7EXAMPLE"
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
JWT = ("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwia"
       "WF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c")
PEM = ("-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA7bq\n\"x\"+/=abc\n"
       "-----END RSA PRIVATE KEY-----")
GITHUB = "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"
GITHUB_FINE = "github_pat_11ABCDEFG0123456789abcde_" + "x" * 59
GOOGLE = "AIzaSyDaGmWKa4JsXZ-HjGw7ISLn_3namBGewQe"
SLACK_BOT = "xoxb-34532454-e039d02840a0b9379c"
SLACK_USER = "xoxp-523423-234243-234233-e039d02840a0b9379c"
STRIPE = "sk_live_ReTllpYQYfIZu2Jnf2lAPFjD"
STRIPE_RESTRICTED = "rk_live_5TcWfjKmJgpql9hjpRnwRXbT"
HF = "hf_AbCdEfGhIjKlMnOpQrStUvWxYzAbCdEfGh"
PGP = ("-----BEGIN PGP PRIVATE KEY BLOCK-----\n\nlQOYBF0bFDgBCADTk2vg\n=Q1bE\n"
       "-----END PGP PRIVATE KEY BLOCK-----")
SLACK_HOOK = "https://hooks.slack.com/services/Txxxxxxxx/Bxxxxxxxx/xxxxxxxxxxxxxxxxxxxxxxxx"


@pytest.mark.parametrize(("text", "expected"), [
    # OpenAI / Anthropic (detect-secrets OpenAIDetector's examples, gitleaks' key shapes)
    (f"my key is {OPENAI}, thanks", "my key is sk-[REDACTED], thanks"),
    ("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", "sk-[REDACTED]"),
    (f"key:\n{ANTHROPIC}\n", "key:\nsk-[REDACTED]\n"),
    (f"export OPENAI_API_KEY='{OPENAI}'", "export OPENAI_API_KEY='sk-[REDACTED]'"),
    # GitHub (detect-secrets GitHubTokenDetector, gitleaks github-*)
    (f"token={GITHUB}", "token=ghp_[REDACTED]"),
    ("gho_16C7e42F292c6912E7710c838347Ae178B4a", "gho_[REDACTED]"),
    ("ghs_16C7e42F292c6912E7710c838347Ae178B4a and ghu_16C7e42F292c6912E7710c838347Ae178B4a",
     "ghs_[REDACTED] and ghu_[REDACTED]"),
    (GITHUB_FINE, "github_pat_[REDACTED]"),
    # Google (detect-secrets GcpkeyDetector)
    (f"?key={GOOGLE}&q=1", "?key=AIza[REDACTED]&q=1"),
    # Slack (detect-secrets SlackDetector)
    (SLACK_BOT, "xoxb-[REDACTED]"),
    (SLACK_USER, "xoxp-[REDACTED]"),
    ("xoxa-2-511111111-31111111111-3111111111111-e039d02840a0b9379c", "xoxa-[REDACTED]"),
    ("xoxs-523423-234243-234233-e039d02840a0b9379c", "xoxs-[REDACTED]"),
    (SLACK_HOOK, "https://hooks.slack.com/services/[REDACTED]"),
    # Stripe (detect-secrets StripeDetector): secret and restricted keys, not publishable ones
    (f"{STRIPE} {STRIPE_RESTRICTED}", "sk_live_[REDACTED] rk_live_[REDACTED]"),
    ("sk_test_4eC39HqLyjWDarjtT1zdp7dc", "sk_test_[REDACTED]"),
    # Hugging Face
    (f"HF_TOKEN={HF}", "HF_TOKEN=hf_[REDACTED]"),
    # AWS (detect-secrets AWSKeyDetector, gitleaks aws-access-token)
    (f"aws_access_key_id={AWS_ID}", "aws_access_key_id=AKIA[REDACTED]"),
    ("AKIAZZZZZZZZZZZZZZZZ", "AKIA[REDACTED]"),
    ("temporary: ASIAY34FZKBOKMUTVV7A\n", "temporary: ASIA[REDACTED]\n"),
    (f"aws_secret_access_key = {AWS_SECRET}", "aws_secret_access_key = [REDACTED]"),
    (f"export AWS_SECRET_ACCESS_KEY={AWS_SECRET}", "export AWS_SECRET_ACCESS_KEY=[REDACTED]"),
    (f'{{"SecretAccessKey": "{AWS_SECRET}"}}', '{"SecretAccessKey": "[REDACTED]"}'),
    (f"secretAccessKey: '{AWS_SECRET}'", "secretAccessKey: '[REDACTED]'"),
    # JWTs (detect-secrets JwtTokenDetector's valid examples)
    (f"token {JWT}.", "token [REDACTED]."),
    ("eyJ0eXAiOiJKV1QiLA0KImFsZyI6IkhTMjU2In0.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwi"
     "aWF0IjoxNTE2MjM5MDIyfQ", "[REDACTED]"),
    # private keys (detect-secrets PrivateKeyDetector; PGP blocks)
    (f"before\n{PEM}\nafter", "before\n[REDACTED]\nafter"),
    ("-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXk (cut off)", "[REDACTED]"),
    (f"{PGP}\nthanks", "[REDACTED]\nthanks"),
    ("-----BEGIN PRIVATE KEY-----\nc3VwZXIgZHVwZXIgc2VjcmV0\n-----END PRIVATE KEY-----", "[REDACTED]"),
    # bearer tokens and Authorization headers, any case
    (f"Authorization: Bearer {JWT}", "Authorization: Bearer [REDACTED]"),
    (f"curl -H 'authorization: bearer {JWT}'", "curl -H 'authorization: bearer [REDACTED]'"),
    ("AUTHORIZATION: BEARER 0123456789abcdefXYZ0", "AUTHORIZATION: BEARER [REDACTED]"),
    ("BEARER 0123456789abcdefXYZ0", "BEARER [REDACTED]"),
    ("Authorization: Basic dXNlcm5hbWU6cGFzc3dvcmQ=", "Authorization: Basic [REDACTED]"),
    ('headers = {"authorization": "basic dXNlcm5hbWU6cGFzc3dvcmQ="}',
     'headers = {"authorization": "basic [REDACTED]"}'),
    # passwords in URLs keep the user and the host (detect-secrets BasicAuthDetector)
    ("https://username:password@yelp.com", "https://username:[REDACTED]@yelp.com"),
    ("DATABASE_URL=postgres://app:s3cr%3Et@db.internal:5432/app",
     "DATABASE_URL=postgres://app:[REDACTED]@db.internal:5432/app"),
])
def test_builtin_rules(text: str, expected: str) -> None:
    assert redact_text(text) == expected


@pytest.mark.parametrize(("text", "expected"), [
    (f"\x1b[32m{OPENAI}\x1b[0m", "\x1b[32msk-[REDACTED]\x1b[0m"),  # a terminal colour code
    (f"\x1b[1;38;5;208m{GITHUB}", "\x1b[1;38;5;208mghp_[REDACTED]"),
    (f"\x0c {OPENAI}", "\x0c sk-[REDACTED]"),  # form feed
    (f"\x0c{OPENAI}", "\x0csk-[REDACTED]"),
    (f"\x00{AWS_ID}", "\x00AKIA[REDACTED]"),  # NUL
    (f"\x07{STRIPE}", "\x07sk_live_[REDACTED]"),
    (f"\x1b]8;;https://x\x07{OPENAI}", "\x1b]8;;https://x\x07sk-[REDACTED]"),  # a hyperlink
])
def test_keys_after_control_characters_and_colour_codes(text: str, expected: str) -> None:
    assert redact_text(text) == expected


@pytest.mark.parametrize("text", [
    "task-management-system-overview and a risk-averse-approach-for-everyone",
    "the desk-organisation-guidelines-for-new-hires document",
    "ASIAN markets and AKIA (too short)",
    "xAKIAIOSFODNN7EXAMPLE is glued to a word",
    "a bearer of bad news; Bearer short; bearer instruments",
    "-----BEGIN PUBLIC KEY----- is not secret",
    "sk- alone, and sk-short",
    # detect-secrets' negative examples
    "pk_live_j5krY8XTgIcDaHDb3YrsAfCl",
    "sk_live_",
    "akiazzzzzzzzzzzzzzzz",
    "AKIAZZZ",
    "foo_wWPw5k4aXcaT4fNP0UcnZwJUVFk6LO0pINUx",
    "http://localhost:5000/<%= @variable %>",
    "AIZA SNDSAUDHS ASASA DSIAOSIA",
    "eyJAAAA.eyJBBB",
    "eyJBB.eyJCC.eyJDDDD",
    "jwt",
    # everyday text that looks a little like the rules
    "mail ann@example.com or https://example.com/path?q=a:b",
    "see https://docs.python.org:443/3/ and user@host:~/src",
    "my_secret_access_key_rotation_policy is documented",
    "Authorization is required; the basic idea is simple",
    "ghp_ is GitHub's prefix for personal tokens",
    "the github_pat_ prefix",
    "hf_hub_download(repo_id=...)",
    # words after a rule's prefix (benchmarks/bench_redaction.py's near misses)
    'sk_logged = "sk-circumstances-weakcontainer-aaabbc"',
    "sk-associating-sock-claims and sk-independence-Computes-scenario",
    "hf_DiscoversRetrievedWriteheaderIslink = 1",
    "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",  # 34 letters, but CamelCase words
    "AIza_concreteness_fire_ZeroDivisionErr",  # 35 characters, no digit
    "ghp_ThisIsJustAVeryLongIdentifierNameOk",
    "# authorization: Basic auth, see https://example.com:8080/",
])
def test_ordinary_text_is_untouched(text: str) -> None:
    assert redact_text(text) == text
    assert redact_text(text) is text


def test_every_field_is_covered_and_the_file_never_sees_the_secret(tmp_path: Path) -> None:
    entry = Logger(tmp_path).log(
        model="gpt-4o", system_prompt=f"use {OPENAI}", user_message=f"id {AWS_ID}",
        assistant_response=PEM, error=f"401 for Bearer {JWT}",
        messages=[{"role": "tool", "content": f"key {ANTHROPIC}"}],
        tags=[f"t {GITHUB}"],
        metadata={"headers": {"Authorization": f"Bearer {JWT}"},
                  "aws_secret_access_key": AWS_SECRET, GOOGLE: "a key as a key",
                  "url": "https://ann:hunter22@db.example.com/x"},
    )
    raw = next(tmp_path.glob("*.jsonl")).read_text()
    for secret in (OPENAI, ANTHROPIC, AWS_ID, AWS_SECRET, JWT, "MIIEowIBAAKCAQEA", GITHUB,
                   GOOGLE, "hunter22"):
        assert secret not in raw
    assert json.loads(raw) == entry  # the returned entry is what was written
    assert entry["metadata"] == {"headers": {"Authorization": "Bearer [REDACTED]"},
                                 "aws_secret_access_key": "[REDACTED]",
                                 "AIza[REDACTED]": "a key as a key",
                                 "url": "https://ann:[REDACTED]@db.example.com/x"}
    assert entry["messages"][0]["content"] == "key sk-[REDACTED]"
    assert entry["tags"] == ["t ghp_[REDACTED]"]


@pytest.mark.parametrize("prefix", ["\x1b[32m", "\x0c", "\x00", "\t", "\x1b[0m\x1b[1m"])
def test_terminal_output_through_the_logger(tmp_path: Path, prefix: str) -> None:
    # What `promptlab log` wraps: a tool's coloured output. The JSON line escapes the
    # control characters (\u001b, \f, \u0000): the key must still be found and replaced.
    secrets = [OPENAI, AWS_ID, GITHUB, SLACK_BOT, STRIPE, GOOGLE]
    text = " ".join(prefix + s for s in secrets)
    entry = Logger(tmp_path).log(model="m", assistant_response=text)
    raw = next(tmp_path.glob("*.jsonl")).read_bytes()
    for secret in secrets:
        assert secret.encode() not in raw
    assert entry["assistant_response"].count("[REDACTED]") == len(secrets)


def test_redact_value_walks_json_like_values_and_keeps_clean_ones() -> None:
    clean = {"a": [1, "two", {"b": None}], "c": 3.5}
    assert redact_value(clean) is clean
    value = {"x": (OPENAI, 1), "y": [{"z": f"Bearer {JWT}"}], OPENAI: True, 7: "seven"}
    assert redact_value(value) == {"x": ["sk-[REDACTED]", 1], "y": [{"z": "Bearer [REDACTED]"}],
                                   "sk-[REDACTED]": True, 7: "seven"}
    assert value["x"] == (OPENAI, 1)  # never changed in place
    assert redact_value(OPENAI) == "sk-[REDACTED]"
    assert redact_value(12) == 12 and redact_value(None) is None


def test_redact_line_keeps_a_clean_line_as_it_is() -> None:
    line = b'{"v":1,"user_message":"hello world"}\n'
    assert redact_line(line) is line
    dirty = json.dumps({"user_message": f"key {OPENAI}"}).encode() + b"\n"
    assert json.loads(redact_line(dirty)) == {"user_message": "key sk-[REDACTED]"}


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


def test_add_rule_extends_the_table_for_everything_written(tmp_path: Path) -> None:
    try:
        add_rule("employee-id", r"\bEMP-(?P<secret>\d{6})\b", anchors=["EMP-"],
                 description="internal employee numbers")
        add_rule("codename", r"Project Falcon")  # no anchors: runs on every string
        assert redact_text("badge EMP-123456, EMP-12") == "badge EMP-[REDACTED], EMP-12"
        assert redact_value({"k": ["Project Falcon"]}) == {"k": ["[REDACTED]"]}
        entry = Logger(tmp_path).log(model="m", user_message="EMP-654321 on Project Falcon")
        assert entry["user_message"] == "EMP-[REDACTED] on [REDACTED]"
        assert [r.name for r in redact_module.rules()][-2:] == ["employee-id", "codename"]
        add_rule("codename", r"Project Heron")  # the same name replaces the rule
        assert redact_text("Project Falcon, Project Heron") == "Project Falcon, [REDACTED]"
    finally:
        remove_rule("employee-id")
        remove_rule("codename")
    assert redact_text("EMP-123456") == "EMP-123456"
    assert redact_module.rules() == RULES
    with pytest.raises(TypeError, match="str pattern"):
        add_rule("bytes", re.compile(rb"x"))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="anchors"):
        add_rule("empty-anchor", r"x", anchors=[""])


def test_every_rule_documents_itself() -> None:
    names = [rule.name for rule in RULES]
    assert len(names) == len(set(names))
    for rule in RULES:
        assert rule.description and rule.source and rule.example
    doc = (Path(__file__).resolve().parents[2] / "docs" / "security.md").read_text()
    for name in names:  # the table in docs/security.md lists every rule
        assert f"`{name}`" in doc, name


# -- the pre-check never hides a secret ----------------------------------------------------------

# (text holding a secret, the part of it that must not survive)
_CASES = [
    (OPENAI, OPENAI[3:]), (ANTHROPIC, ANTHROPIC[3:]), (AWS_ID, AWS_ID[4:]),
    ("ASIAY34FZKBOKMUTVV7A", "Y34FZKBOKMUTVV7A"), (JWT, JWT[3:]), (PEM, "MIIEowIBAAKCAQEA"),
    (PGP, "lQOYBF0bFDgBCADTk2vg"), (GITHUB, GITHUB[4:]), (GITHUB_FINE, GITHUB_FINE[11:]),
    (GOOGLE, GOOGLE[4:]), (SLACK_BOT, SLACK_BOT[5:]), (SLACK_USER, SLACK_USER[5:]),
    (SLACK_HOOK, "Txxxxxxxx/Bxxxxxxxx"), (STRIPE, STRIPE[8:]),
    (STRIPE_RESTRICTED, STRIPE_RESTRICTED[8:]), (HF, HF[3:]),
    (f"Bearer {JWT}", JWT[3:]), ("BEARER 0123456789abcdefXYZ0", "0123456789abcdefXYZ0"),
    ("BeArEr 0123456789abcdefXYZ0", "0123456789abcdefXYZ0"),
    ("authorization: basic dXNlcm5hbWU6cGFzc3dvcmQ=", "dXNlcm5hbWU6cGFzc3dvcmQ="),
    ("AUTHORIZATION=Token abcdefgh12", "abcdefgh12"),
    (f"aws_secret_access_key={AWS_SECRET}", AWS_SECRET), (f"SecretAccessKey: {AWS_SECRET}", AWS_SECRET),
    (f"SECRET_ACCESS_KEY='{AWS_SECRET}'", AWS_SECRET), ("https://u:p4ssw0rd@h", "p4ssw0rd"),
    ("ftp://:pw12@h.example", "pw12"),
]
_secrets = st.sampled_from([text for text, _ in _CASES])
# Near misses and glue: prefixes cut short, case changed, other separators.
_noise = st.one_of(
    st.text(max_size=12),
    st.sampled_from(["sk-", "sk_live_", "ghp_", "xoxb-", "AKIA", "AIza", "eyJ", "Bearer ",
                     "bearer ", "://", ":", "@", "-----BEGIN ", "PRIVATE KEY-----",
                     "\x1b[32m", "\x1b[0m", "\x00", "\x0c", "\n", "\t", '"', "\\", "é", "✨",
                     "Authorization: ", "authorization=", "_", "-", "K", "secret_access_key",
                     "bEaReR 0123456789abcdefXYZ0"]),
)


@settings(max_examples=800, deadline=None)
@given(parts=st.lists(st.one_of(_secrets, _noise), min_size=1, max_size=8))
def test_the_pre_check_passes_everything_a_rule_would_change(parts: list[str]) -> None:
    text = "".join(parts)
    line = json.dumps({"v": 1, "id": "01KC3ZQ8P4S2ZB3NVJ5WA7XK4M", "kind": "llm",
                       "user_message": text, "metadata": {"k": [text]}},
                      ensure_ascii=False).encode() + b"\n"
    for rule in RULES:
        if rule.sub(text) != text:  # the rule changes this text: every check must see it
            assert maybe_secret(text), rule.name
            assert maybe_secret(line), rule.name
            assert maybe_secret(line, line.index(b'"kind"')), rule.name
    redacted = redact_line(line)
    decoded = json.loads(redacted)  # still one valid JSON line
    assert redacted.count(b"\n") == 1
    assert decoded["user_message"] == redact_text(text) == decoded["metadata"]["k"][0]
    if redact_text(text) == text:
        assert redacted is line


@settings(max_examples=300, deadline=None)
@given(before=st.text(max_size=40), case=st.sampled_from(_CASES), after=st.text(max_size=40))
def test_redaction_removes_the_secret_wherever_it_sits(before: str, case: tuple[str, str],
                                                       after: str) -> None:
    secret, core = case
    out = redact_text(f"{before} {secret} {after}")
    assert "[REDACTED]" in out
    if core not in before + after:
        assert core not in out
