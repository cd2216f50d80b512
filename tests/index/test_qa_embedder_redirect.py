"""QA (#14): the embedding endpoint is never followed through a redirect (it would carry
the API key, and the texts, to another host): a 3xx is an error naming the status."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest


def _serve(handler: type[BaseHTTPRequestHandler]) -> ThreadingHTTPServer:
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def test_a_redirect_is_not_followed(monkeypatch):
    from promptlab.errors import PromptlabError
    from promptlab.semantic.embedders import OpenAIEmbedder

    received: list[dict] = []

    class Other(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            received.append({"auth": self.headers.get("Authorization"), "body": body})
            data = json.dumps({"data": [{"index": 0, "embedding": [1.0, 0.0]}]}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    other = _serve(Other)
    target = f"http://127.0.0.1:{other.server_address[1]}/embeddings"

    class Redirect(BaseHTTPRequestHandler):
        def do_POST(self):
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.send_response(307)
            self.send_header("Location", target)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    first = _serve(Redirect)
    monkeypatch.setenv("EMBED_KEY", "sk-test-secret")
    try:
        embedder = OpenAIEmbedder("m", base_url=f"http://127.0.0.1:{first.server_address[1]}",
                                  api_key_env="EMBED_KEY", retries=0, timeout_s=5)
        with pytest.raises(PromptlabError, match="answered 307"):
            embedder.embed(["private text"])
        assert received == []
    finally:
        first.shutdown()
        other.shutdown()
