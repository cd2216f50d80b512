"""`echo`: answers with the rendered prompt itself — check prompts and scorers, no model.

A stand-in is not the model the prompt names: its calls are logged with the model
`echo` (whatever `[provider] model` or the front matter say), which has no price, so
they never carry a cost. Usage is counted as whitespace-separated words so token columns
are not empty.
"""

from __future__ import annotations

from promptlab.providers.base import Provider, Request, Response

MODEL = "echo"


class EchoProvider(Provider):
    type = "echo"
    cacheable = False  # answering is cheaper than a cache look-up
    model_from_response = True
    enforces_timeout = True

    def complete(self, request: Request) -> Response:
        text = request.text
        words = len(text.split())
        return Response(text=text, input_tokens=words, output_tokens=words, latency_ms=0.0,
                        model=MODEL)
