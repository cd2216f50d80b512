"""`echo`: answers with the rendered prompt itself — check prompts and scorers, no model.

Usage is counted as whitespace-separated words so token columns are not empty.
"""

from __future__ import annotations

from promptlab.providers.base import Provider, Request, Response


class EchoProvider(Provider):
    type = "echo"
    cacheable = False  # answering is cheaper than a cache look-up

    def complete(self, request: Request) -> Response:
        text = request.text
        words = len(text.split())
        return Response(text=text, input_tokens=words, output_tokens=words, latency_ms=0.0,
                        model=request.model or "echo")
