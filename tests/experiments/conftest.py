"""Fixtures for experiment tests: a temp project with experiments, and a local fake LLM
HTTP server speaking the OpenAI chat-completions and Anthropic Messages wire formats."""

from __future__ import annotations

import json
import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]


@dataclass
class Reply:
    """One scripted answer: status, headers, body (dict → JSON, str → raw), delay."""

    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0


class FakeLLM:
    """A real HTTP server on 127.0.0.1. Scripted replies are used in order; when none is
    left it answers like the real API, echoing the last user message."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.script: list[Reply] = []
        self.lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", 0))
                raw = self.rfile.read(length)
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = None
                with fake.lock:
                    fake.requests.append({"path": self.path, "headers": dict(self.headers),
                                          "json": body, "time": time.monotonic()})
                    reply = fake.script.pop(0) if fake.script else None
                if reply is None:
                    reply = Reply(body=fake.default_body(self.path, body))
                if reply.delay_s:
                    time.sleep(reply.delay_s)
                payload = (reply.body if isinstance(reply.body, str)
                           else json.dumps(reply.body)).encode()
                try:
                    self.send_response(reply.status)
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(payload)))
                    for k, v in reply.headers.items():
                        self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,),
                                       daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def default_body(self, path: str, body: Any) -> dict[str, Any]:
        messages = (body or {}).get("messages") or [{"content": ""}]
        text = f"echo: {messages[-1].get('content', '')}"
        if path.endswith("/messages"):
            return {"id": "msg_1", "type": "message", "role": "assistant",
                    "model": body.get("model"), "content": [{"type": "text", "text": text}],
                    "stop_reason": "end_turn",
                    "usage": {"input_tokens": 10, "output_tokens": 5,
                              "cache_read_input_tokens": 3, "cache_creation_input_tokens": 2}}
        return {"id": "chatcmpl-1", "object": "chat.completion", "model": body.get("model"),
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                             "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 12, "completion_tokens": 7, "total_tokens": 19,
                          "prompt_tokens_details": {"cached_tokens": 4},
                          "completion_tokens_details": {"reasoning_tokens": 2}}}

    def then(self, *replies: Reply) -> FakeLLM:
        with self.lock:
            self.script.extend(replies)
        return self

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def fake_llm() -> Iterator[FakeLLM]:
    server = FakeLLM()
    yield server
    server.close()


DATASET = [
    {"id": f"item-{i}", "vars": {"code": f"def f{i}(x):\n    return x + {i}\n"},
     "expected": f"f{i}"} for i in range(6)
]


@dataclass
class ExpProject:
    """A temporary promptlab project (cwd) with the shipped prompts and an experiments/."""

    root: Path
    log_dir: Path

    @property
    def experiments(self) -> Path:
        return self.root / "experiments"

    def write(self, name: str, body: str, rows: list[dict[str, Any]] | None = None,
              dataset: str = "data.jsonl") -> Path:
        """Write experiments/<name>.toml (and its dataset when rows are given)."""
        self.experiments.mkdir(exist_ok=True)
        if rows is not None:
            with (self.experiments / dataset).open("w", encoding="utf-8") as fh:
                for row in rows:
                    fh.write(json.dumps(row) + "\n")
        path = self.experiments / f"{name}.toml"
        path.write_text(body, encoding="utf-8")
        return path

    def entries(self) -> list[dict[str, Any]]:
        out = []
        for path in sorted(self.log_dir.glob("*.jsonl")):
            out.extend(json.loads(line) for line in path.read_text().splitlines() if line)
        return out


@pytest.fixture
def exp_project(project: Path, log_dir: Path) -> ExpProject:
    return ExpProject(project, log_dir)


def basic_toml(provider: str = 'type = "echo"', *, extra: str = "", scorers: str | None = None,
               variants: str = "v1 = 50\nv2 = 50", dataset: str = 'path = "data.jsonl"') -> str:
    scorer_text = scorers if scorers is not None else (
        '[[scorers]]\nname = "mentions"\ntype = "contains"\nvalue = "{{ expected }}"\n')
    return (f'prompt = "code-review"\n\n[variants]\n{variants}\n\n[dataset]\n{dataset}\n\n'
            f"[provider]\n{provider}\n\n{scorer_text}\n{extra}")


@pytest.fixture
def toml() -> Any:
    return basic_toml


@pytest.fixture
def rows() -> list[dict[str, Any]]:
    return [dict(r) for r in DATASET]


@pytest.fixture
def example_project(project: Path, log_dir: Path) -> ExpProject:
    """The shipped experiments/ folder copied into the temp project."""
    shutil.copytree(REPO / "experiments", project / "experiments",
                    ignore=shutil.ignore_patterns("__pycache__"))
    return ExpProject(project, log_dir)
