"""`openai`: any OpenAI-compatible chat-completions endpoint over httpx.

OpenAI, Ollama (`http://localhost:11434/v1`), vLLM, llama.cpp server, LM Studio, …

    [provider]
    type = "openai"
    model = "gpt-4o-mini"
    base_url = "https://api.openai.com/v1"   # the default
    api_key_env = "OPENAI_API_KEY"            # the default for the default base_url
    params = {temperature = 0.2}

Usage includes cached prompt tokens (`prompt_tokens_details.cached_tokens`) and
reasoning tokens (`completion_tokens_details.reasoning_tokens`) when reported.
"""

from __future__ import annotations

from typing import Any

from promptlab.errors import ProviderError
from promptlab.providers._http import HttpProvider, shape_error
from promptlab.providers.base import Request, Response, token_count


class OpenAIProvider(HttpProvider):
    type = "openai"
    default_base_url = "https://api.openai.com/v1"
    default_key_env = "OPENAI_API_KEY"

    def complete(self, request: Request) -> Response:
        if not request.model:
            raise ProviderError("no model: set [provider] model or the prompt's front matter "
                                "model")
        url = f"{self.base_url}/chat/completions"
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        body = {**request.params, "model": request.model, "messages": request.messages,
                "stream": False}
        data, latency = self.post_json(url, body, headers, request.timeout_s)
        return parse_chat_completion(data, url, latency, request.model)


def parse_chat_completion(data: Any, url: str, latency_ms: float, model: str | None) -> Response:
    if not isinstance(data, dict):
        raise shape_error(url, "expected a JSON object")
    choices = data.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise shape_error(url, "no 'choices'")
    message = choices[0].get("message")
    if not isinstance(message, dict):  # (a completions-style `text`, or a bare string)
        raise shape_error(url, "choices[0].message is not an object (expected a chat "
                               "completion: {'message': {'role': …, 'content': …}})")
    content = message.get("content")
    if isinstance(content, list):  # content parts
        content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
    if content is not None and not isinstance(content, str):
        raise shape_error(url, "choices[0].message.content is not text")
    usage = data.get("usage") if isinstance(data.get("usage"), dict) else {}
    prompt_details = usage.get("prompt_tokens_details") or {}
    completion_details = usage.get("completion_tokens_details") or {}

    def count(table: Any, key: str, path: str) -> int | None:
        return token_count(table.get(key), path, url) if isinstance(table, dict) else None

    input_tokens = count(usage, "prompt_tokens", "usage.prompt_tokens")
    cached_tokens = count(prompt_details, "cached_tokens",
                          "usage.prompt_tokens_details.cached_tokens")
    if input_tokens is not None and cached_tokens is not None and cached_tokens > input_tokens:
        # OpenAI's prompt_tokens include the cached ones: these counts contradict each other
        raise shape_error(url, f"usage.prompt_tokens_details.cached_tokens = {cached_tokens} "
                               f"is more than usage.prompt_tokens = {input_tokens}, which "
                               "includes them")
    return Response(
        text=content or "",
        input_tokens=input_tokens,
        output_tokens=count(usage, "completion_tokens", "usage.completion_tokens"),
        cached_tokens=cached_tokens,
        reasoning_tokens=count(completion_details, "reasoning_tokens",
                               "usage.completion_tokens_details.reasoning_tokens"),
        latency_ms=latency_ms,
        model=data.get("model") if isinstance(data.get("model"), str) else model,
        raw=data,
    )
