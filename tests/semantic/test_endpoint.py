"""The OpenAI-compatible embedding endpoint, over a real socket to a server the test starts.
The server computes its vectors with the real local model, so search results mean something."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from promptlab.errors import EmbeddingError
from promptlab.semantic import OpenAIEmbedder, embed_log, semantic_search

from .conftest import SUPPORT, write


class Server:
    def __init__(self, model: Any):
        self.model = model
        self.requests: list[dict[str, Any]] = []
        self.fail: list[int] = []  # statuses to answer before succeeding
        self.body: bytes | None = None  # answer this instead
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers["Content-Length"])
                body = json.loads(self.rfile.read(length))
                server.requests.append({"path": self.path, "body": body,
                                        "auth": self.headers.get("Authorization")})
                if server.fail:
                    status = server.fail.pop(0)
                    payload = json.dumps({"error": {"message": f"failure {status}"}}).encode()
                elif server.body is not None:
                    status, payload = 200, server.body
                else:
                    vectors = server.model.embed(body["input"])
                    status = 200
                    payload = json.dumps({"object": "list", "model": body["model"], "data": [
                        {"object": "embedding", "index": i, "embedding": v.tolist()}
                        for i, v in reversed(list(enumerate(vectors)))]}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                if status == 429:
                    self.send_header("Retry-After", "0")
                self.end_headers()
                self.wfile.write(payload)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()


@pytest.fixture
def server(model: Any) -> Iterator[Server]:
    s = Server(model)
    yield s
    s.httpd.shutdown()
    s.httpd.server_close()


def test_embeds_and_searches_through_the_endpoint(log_dir: Path, server: Server,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EMBED_KEY", "secret-token")
    secret = "sk-proj-" + "x9Y8z7W6" * 5
    write(log_dir, [*SUPPORT, {"user_message": f"my key is {secret}",
                               "assistant_response": "Please rotate it."}])
    embedder = OpenAIEmbedder("nomic-embed-text", base_url=server.url, api_key_env="EMBED_KEY",
                              batch_size=4)
    stats = embed_log(log_dir=log_dir, embedder=embedder)
    assert stats.embedded == 6
    assert [r["path"] for r in server.requests] == ["/v1/embeddings"] * 2  # 4 + 2
    assert all(r["auth"] == "Bearer secret-token" for r in server.requests)
    assert server.requests[0]["body"]["model"] == "nomic-embed-text"
    sent = json.dumps([r["body"] for r in server.requests])
    assert "x9Y8z7W6" not in sent  # redacted before it left the machine
    hits = semantic_search("poem about fall", log_dir=log_dir, embedder=embedder, limit=1)
    assert hits.model == "openai:nomic-embed-text"
    assert hits.hits[0].entry["user_message"] == "Write a haiku about autumn leaves"


def test_no_key_is_sent_to_a_local_server_by_default(server: Server,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "hosted-key")
    embedder = OpenAIEmbedder("m", base_url=server.url)
    embedder.embed(["hello"])
    assert server.requests[0]["auth"] is None


def test_retries_then_succeeds_and_reports_failures(server: Server) -> None:
    server.fail = [429, 503]
    embedder = OpenAIEmbedder("m", base_url=server.url, retries=2)
    assert embedder.embed(["a", "b"]).shape == (2, 384)
    server.fail = [401]
    with pytest.raises(EmbeddingError, match=r"answered 401: failure 401"):
        embedder.embed(["a"])
    server.body = b'{"unexpected": true}'
    with pytest.raises(EmbeddingError, match="OpenAI-compatible"):
        embedder.embed(["a"])


def test_unreachable_endpoint_is_one_clear_error() -> None:
    embedder = OpenAIEmbedder("m", base_url="http://127.0.0.1:9/v1", retries=0)
    with pytest.raises(EmbeddingError, match=r"127.0.0.1:9/v1/embeddings.*is the server running"):
        embedder.embed(["a"])


@pytest.mark.parametrize(("answer", "message"), [
    ({"data": [{"index": 0, "embedding": [1.0, 0.0]}, {"index": 1, "embedding": [1.0]}]},
     "one list of numbers of one length per text"),
    ({"data": [{"index": 0, "embedding": ["a", "b"]}, {"index": 1, "embedding": ["c", "d"]}]},
     "one list of numbers of one length per text"),
    ({"data": [{"index": 0, "embedding": [1.0, 0.0]}, {"index": 0, "embedding": [0.0, 1.0]}]},
     r"numbered its 2 vectors \[0, 0\]; expected each index from 0 to 1 once"),
    ({"data": [{"index": 5, "embedding": [1.0, 0.0]}, {"index": 6, "embedding": [0.0, 1.0]}]},
     r"numbered its 2 vectors \[5, 6\]"),
    ({"data": [{"embedding": [1.0, 0.0]}, {"index": 1, "embedding": [0.0, 1.0]}]},
     r"numbered its 2 vectors \[None, 1\]"),
    ({"data": [{"index": 0, "embedding": [0.0, 0.0]}, {"index": 1, "embedding": [0.0, 1.0]}]},
     r"a vector of zeros \(text 1 of 2\)"),
    ({"data": [{"index": 0, "embedding": [1e300, 0.0]}, {"index": 1, "embedding": [0.0, 1.0]}]},
     "NaN or infinite values"),
    ({"data": {"0": [1.0, 0.0]}}, "without a `data` list"),
])
def test_a_malformed_answer_is_one_clear_error(server: Server, answer: Any, message: str,
                                               recwarn: pytest.WarningsRecorder) -> None:
    """Vectors that are not numbers of one length, numbered wrongly (which text is which?),
    without a direction, or out of float32's range: an EmbeddingError, never a traceback or
    a vector filed under the wrong text."""
    server.body = json.dumps(answer).encode()
    with pytest.raises(EmbeddingError, match=message):
        OpenAIEmbedder("m", base_url=server.url, retries=0).embed(["a", "b"])
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]


def test_vectors_are_put_back_in_the_order_of_their_index(server: Server) -> None:
    server.body = json.dumps({"data": [{"index": "1", "embedding": [0.0, 2.0]},
                                       {"index": 0, "embedding": [3.0, 0.0]}]}).encode()
    vectors = OpenAIEmbedder("m", base_url=server.url, retries=0).embed(["a", "b"])
    assert vectors.tolist() == [[1.0, 0.0], [0.0, 1.0]]
