"""`anthropic`: the Messages API (`POST /v1/messages`) over httpx.

    [provider]
    type = "anthropic"
    model = "claude-sonnet-4-5"
    api_key_env = "ANTHROPIC_API_KEY"   # the default for the default base_url
    params = {max_tokens = 1024}

The system prompt goes in the top-level `system` field; `max_tokens`, which the API
requires, defaults to 1024 when neither the prompt nor `params` sets it. Usage maps to
promptlab's fields as: input_tokens = input + cache reads + cache writes (every input
token), cached_tokens = cache reads.
"""

from __future__ import annotations

from typing import Any, ClassVar

from promptlab.errors import ExperimentError, ProviderError
from promptlab.providers._http import HttpProvider, shape_error
from promptlab.providers.base import ProviderSpec, Request, Response, token_count

DEFAULT_MAX_TOKENS = 1024


class AnthropicProvider(HttpProvider):
    type = "anthropic"
    keys = HttpProvider.keys | {"anthropic_version"}
    default_base_url = "https://api.anthropic.com"
    default_key_env = "ANTHROPIC_API_KEY"
    version: ClassVar[str] = "2023-06-01"

    @classmethod
    def validate(cls, spec: ProviderSpec) -> None:
        super().validate(spec)
        version = spec.option("anthropic_version")
        if version is not None and not isinstance(version, str):
            raise ExperimentError(f"{spec.where}: 'anthropic_version' must be a string")

    def complete(self, request: Request) -> Response:
        if not request.model:
            raise ProviderError("no model: set [provider] model or the prompt's front matter "
                                "model")
        path = "/messages" if self.base_url.endswith("/v1") else "/v1/messages"
        url = self.base_url + path
        headers = {"anthropic-version": self.spec.option("anthropic_version", self.version)}
        if self.api_key:
            headers["x-api-key"] = self.api_key
        params = dict(request.params)
        if "stop" in params:  # the OpenAI spelling, common in prompt front matter
            stop = params.pop("stop")
            params["stop_sequences"] = [stop] if isinstance(stop, str) else stop
        params.setdefault("max_tokens", DEFAULT_MAX_TOKENS)
        body: dict[str, Any] = {**params, "model": request.model,
                                "messages": [m for m in request.messages
                                             if m["role"] != "system"]}
        if request.system:
            body["system"] = request.system
        data, latency = self.post_json(url, body, headers, request.timeout_s)
        return parse_message(data, url, latency, request.model)


def parse_message(data: Any, url: str, latency_ms: float, model: str | None) -> Response:
    if not isinstance(data, dict) or not isinstance(data.get("content"), list):
        raise shape_error(url, "no 'content' list")
    text = "".join(block.get("text", "") for block in data["content"]
                   if isinstance(block, dict) and block.get("type") == "text")
    usage = data.get("usage") if isinstance(data.get("usage"), dict) else {}

    def count(key: str) -> int | None:
        return token_count(usage.get(key), f"usage.{key}", url)

    fresh = count("input_tokens")
    read = count("cache_read_input_tokens") or 0
    written = count("cache_creation_input_tokens") or 0
    return Response(
        text=text,
        input_tokens=None if fresh is None else fresh + read + written,
        output_tokens=count("output_tokens"),
        cached_tokens=read or None,
        latency_ms=latency_ms,
        model=data.get("model") if isinstance(data.get("model"), str) else model,
        raw=data,
    )
