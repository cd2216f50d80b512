"""A generated project for the dashboard tests: the shipped code-review prompt and
experiment, a log of ordinary calls over ten days, traces, feedback, an error, and entries
whose texts are XSS payloads and secrets. Built once per session, served by a real server."""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(os.environ.get("PROMPTLAB_TEST_ARTIFACTS", REPO / "tests" / "dashboard" / "artifacts"))

PAYLOADS = [
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(2)>",
    '<a href="javascript:alert(3)">click me</a>',
    '{"x": "</script><script>alert(4)</script>"}',
    "<svg onload=alert(5)><b>bold?</b>",
]

# A small deterministic embedding function: a project's [embeddings] type = "python".
EMBEDDER = '''
import hashlib, math, re

def embed(texts):
    out = []
    for text in texts:
        v = [0.0] * 64
        for word in re.findall(r"[a-z]+", text.lower()):
            v[int(hashlib.sha256(word.encode()).hexdigest(), 16) % 64] += 1.0
        n = math.sqrt(sum(x * x for x in v)) or 1.0
        out.append([x / n for x in v])
    return out
'''

SECRET = "sk-proj-abcdefghijklmnopqrstuvwxyz0123456789ABCD"
_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def ulid(ts: float, n: int) -> str:
    value = (int(ts * 1000) << 80) | n
    return "".join(_CROCKFORD[(value >> (5 * i)) & 31] for i in reversed(range(26)))


def stamp(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class LogBuilder:
    """Writes entries straight into daily JSONL files, as the logger would."""

    def __init__(self, log_dir: Path):
        self.log_dir = log_dir
        self.n = 0
        self.files: dict[str, list[bytes]] = {}

    def add(self, ts: float, **fields: object) -> dict[str, object]:
        self.n += 1
        entry = {"v": 1, "id": ulid(ts, self.n), "timestamp": stamp(ts), "kind": "llm", **fields}
        day = entry["timestamp"][:10]  # type: ignore[index]
        self.files.setdefault(day, []).append(orjson.dumps(entry) + b"\n")
        return entry

    def write(self) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        for day, lines in self.files.items():
            (self.log_dir / f"{day}.jsonl").write_bytes(b"".join(lines))


def build_log(log_dir: Path, now: float) -> dict[str, object]:
    rng = random.Random(7)
    log = LogBuilder(log_dir)
    models = [("gpt-4o-mini", "openai"), ("claude-3-5-haiku-20241022", "anthropic"),
              ("local-llama", "openai")]
    for day in range(10, 0, -1):
        for i in range(12):
            model, provider = models[i % 3]
            ts = now - day * 86400 + i * 600
            inp, out = rng.randint(100, 900), rng.randint(20, 300)
            fields: dict[str, object] = {
                "model": model, "provider": provider, "input_tokens": inp,
                "output_tokens": out, "latency_ms": round(rng.uniform(200, 2500), 1),
                "user_message": f"question {day}-{i} about invoices",
                "assistant_response": f"answer {day}-{i}: the invoice total is {inp}",
                "tags": ["support"] if i % 2 else ["billing"], "status": "ok",
                "prompt_id": "summarization", "prompt_version": "v1"}
            if i == 5 and day == 3:
                fields.update(status="error", error="rate limited (429)")
            log.add(ts, **fields)
    # A paired experiment: finds_bug clearly better under v2.
    start = now - 2 * 86400
    for item in range(30):
        for variant, rate, lat in (("v1", 0.3, 900.0), ("v2", 0.85, 950.0)):
            log.add(start + item * 10 + (variant == "v2"), model="gpt-4o-mini", provider="openai",
                    prompt_id="code-review", prompt_version=variant, experiment="code-review-ab",
                    variant=variant, item_id=f"item-{item}", unit_id=f"item-{item}", repeat=0,
                    run_id="run-1", input_tokens=300, output_tokens=40 + item % 7,
                    latency_ms=lat + rng.uniform(-100, 100),
                    user_message=f"Review snippet {item}",
                    assistant_response=f"BUG: snippet {item}",
                    scores={"finds_bug": rng.random() < rate}, status="ok")
    # Traces: a root span, a nested span, LLM calls inside.
    traces = []
    for t in range(3):
        ts = now - 3600 * (t + 1)
        trace_id = f"trace{t:04d}aaaabbbbccccdddd"
        root = log.add(ts, kind="span", name=f"answer-question-{t}", trace_id=trace_id,
                       span_id=f"root{t}", latency_ms=1800.0, status="ok")
        log.add(ts + 0.05, kind="span", name="retrieve", trace_id=trace_id, span_id=f"ret{t}",
                parent_id=f"root{t}", latency_ms=300.0, status="ok")
        call = log.add(ts + 0.4, model="gpt-4o-mini", provider="openai", trace_id=trace_id,
                       span_id=f"call{t}", parent_id=f"root{t}", name="generate",
                       input_tokens=1200, output_tokens=200, latency_ms=1300.0,
                       user_message="What is in the invoice? (traced)",
                       assistant_response="The invoice lists three items.", status="ok",
                       prompt_id="summarization", prompt_version="v1")
        traces.append({"trace_id": trace_id, "root": root, "call": call})
    feedback_target = traces[0]["call"]
    log.add(now - 600, kind="feedback", target=feedback_target["id"], scores={"helpful": True})
    # Hostile texts and a secret, newest of all so they are on the first page.
    xss = []
    for i, payload in enumerate(PAYLOADS):
        xss.append(log.add(
            now - 60 + i, model=f"model-{i}<img src=x onerror=alert({10 + i})>", provider="openai",
            system_prompt=payload, user_message=f"please repeat: {payload}",
            assistant_response=payload + " " + payload, tags=[payload, "javascript:alert(9)"],
            metadata={"link": "javascript:alert(8)", "html": payload},
            input_tokens=10, output_tokens=10, latency_ms=100.0, status="ok",
            name=payload, trace_id="xsstrace0000111122223333", span_id=f"x{i}"))
    secret = log.add(now - 30, model="gpt-4o-mini", provider="openai",
                     user_message=f"my key is {SECRET} please keep it",
                     assistant_response="ok", input_tokens=5, output_tokens=1, latency_ms=50.0)
    long = log.add(now - 20, model="gpt-4o-mini", provider="openai",
                   user_message="long input\n" + "\n".join(f"line {k}" for k in range(200)),
                   assistant_response="short answer", input_tokens=5, output_tokens=2,
                   latency_ms=80.0)
    log.write()
    return {"traces": traces, "xss": xss, "secret": secret, "long": long,
            "feedback_target": feedback_target}


@pytest.fixture(scope="session")
def dash_project(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """The project folder, its settings and what was logged (built once)."""
    root = tmp_path_factory.mktemp("dash") / "project"
    root.mkdir()
    for name in ("prompts", "experiments"):
        shutil.copytree(REPO / name, root / name, symlinks=True)
    (root / "promptlab.toml").write_text('log_dir = "logs"\n')
    env = {**os.environ, "GIT_AUTHOR_NAME": "T", "GIT_AUTHOR_EMAIL": "t@example.com",
           "GIT_COMMITTER_NAME": "T", "GIT_COMMITTER_EMAIL": "t@example.com",
           "GIT_CONFIG_NOSYSTEM": "1"}
    for args in (["init", "-q"], ["add", "."], ["commit", "-qm", "prompts"]):
        subprocess.run(["git", *args], cwd=root, check=True, env=env)
    now = time.time()
    logged = build_log(root / "logs", now)
    from promptlab.config import load_settings

    settings = load_settings(root, env={})
    return {"root": root, "settings": settings, "now": now, **logged}


@pytest.fixture(scope="session")
def server(dash_project: dict[str, object]) -> Iterator[str]:
    """A real dashboard server on a free loopback port; yields its base URL."""
    from promptlab.dashboard import Dashboard, make_server

    app = Dashboard(dash_project["settings"])  # type: ignore[arg-type]
    app.warm().join(120)  # as `promptlab dashboard` does on start (then pages show results)
    httpd = make_server(app, "127.0.0.1", 0)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()
    app.close()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


@pytest.fixture
def log_builder() -> type[LogBuilder]:
    return LogBuilder


def _run_cli(project: dict, *args: str):  # type: ignore[no-untyped-def]
    """The CLI run in the project folder, as a user would (its own log_dir setting)."""
    from click.testing import CliRunner

    from promptlab.cli import main

    here = os.getcwd()
    os.chdir(project["root"])
    try:
        return CliRunner().invoke(main, list(args), env={"PROMPTLAB_LOG_DIR": None})
    finally:
        os.chdir(here)


def _cli_json(project: dict, *args: str) -> Any:
    result = _run_cli(project, *args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


@pytest.fixture
def run_cli() -> Any:
    return _run_cli


@pytest.fixture
def cli_json() -> Any:
    return _cli_json


@pytest.fixture
def payloads() -> list[str]:
    return PAYLOADS


@pytest.fixture
def secret() -> str:
    return SECRET


@pytest.fixture
def embedder_source() -> str:
    return EMBEDDER
