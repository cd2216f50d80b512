"""What the HTTP providers share: one pooled httpx client, status → error mapping, keys.

httpx is imported when the first request is made, never at import time.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any, ClassVar

from promptlab.errors import ExperimentError, ProviderError
from promptlab.providers.base import Provider, ProviderSpec, elapsed_ms, parse_retry_after

# 408 timeout, 409 conflict, 425 too early, 429 rate limit, 5xx, 529 Anthropic "overloaded".
RETRYABLE_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504, 529})


class HttpProvider(Provider):
    """Base of `openai` and `anthropic`: `base_url`, `api_key_env`, extra `headers`."""

    keys = frozenset({"base_url", "api_key_env", "headers"})
    default_base_url: ClassVar[str] = ""
    default_key_env: ClassVar[str] = ""

    @classmethod
    def validate(cls, spec: ProviderSpec) -> None:
        super().validate(spec)
        for key in ("base_url", "api_key_env"):
            value = spec.option(key)
            if value is not None and (not isinstance(value, str) or not value.strip()):
                raise ExperimentError(f"{spec.where}: {key!r} must be a non-empty string")
        base_url = spec.option("base_url")
        if base_url is not None and not base_url.startswith(("http://", "https://")):
            raise ExperimentError(f"{spec.where}: base_url {base_url!r} must start with "
                                  "http:// or https://")
        headers = spec.option("headers", {})
        if not isinstance(headers, dict) or not all(isinstance(v, str) for v in headers.values()):
            raise ExperimentError(f"{spec.where}: 'headers' must be a table of strings")

    def __init__(self, spec: ProviderSpec):
        super().__init__(spec)
        self.base_url = (spec.option("base_url") or self.default_base_url).rstrip("/")
        self.api_key = self._api_key(spec)
        self.extra_headers = dict(spec.option("headers", {}))
        self._client: Any = None
        self._lock = threading.Lock()

    def _api_key(self, spec: ProviderSpec) -> str | None:
        """The key from `api_key_env`. The default variable is only sent to the default
        endpoint, so a local server never receives your hosted-API key by accident."""
        configured = spec.option("api_key_env")
        default_endpoint = self.base_url == self.default_base_url
        env_name = configured or (self.default_key_env if default_endpoint else None)
        if env_name is None:
            return None
        key = os.environ.get(env_name)
        if not key:
            raise ExperimentError(f"{spec.where}: environment variable {env_name} is not set; "
                                  f"export {env_name}=… or point api_key_env at the variable "
                                  "holding your key")
        return key

    @property
    def endpoint(self) -> str:
        return self.base_url

    def _http(self) -> Any:
        if self._client is None:
            with self._lock:
                if self._client is None:
                    import httpx

                    limits = httpx.Limits(max_connections=256, max_keepalive_connections=64)
                    self._client = httpx.Client(limits=limits, follow_redirects=True)
        return self._client

    def post_json(self, url: str, body: dict[str, Any], headers: dict[str, str],
                  timeout_s: float) -> tuple[Any, float]:
        """POST `body`; return (decoded JSON, latency ms) or raise ProviderError."""
        import httpx

        client = self._http()
        start = time.perf_counter()
        try:
            response = client.post(url, json=body, headers={**headers, **self.extra_headers},
                                   timeout=timeout_s)
        except httpx.TimeoutException as exc:
            raise ProviderError(f"{url} timed out after {timeout_s:g}s", retryable=True) from exc
        except httpx.ConnectError as exc:
            raise ProviderError(f"cannot connect to {url}: {exc}; is the server running?",
                                retryable=True) from exc
        except httpx.TransportError as exc:
            raise ProviderError(f"{url}: {type(exc).__name__}: {exc}", retryable=True) from exc
        latency = elapsed_ms(start)
        status = response.status_code
        if status >= 400:
            detail = _error_detail(response)
            raise ProviderError(f"HTTP {status} from {url}{': ' + detail if detail else ''}",
                                retryable=status in RETRYABLE_STATUS,
                                retry_after=parse_retry_after(response.headers))
        try:
            return response.json(), latency
        except ValueError as exc:
            snippet = response.text[:80].replace("\n", " ")
            raise ProviderError(f"invalid JSON in the response from {url}: {snippet!r}") from exc

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


def _error_detail(response: Any) -> str:
    """The API's own error message (`{"error": {"message": …}}`), else the body's start."""
    try:
        data = response.json()
    except ValueError:
        return response.text[:200].strip().replace("\n", " ")
    if isinstance(data, dict):
        error = data.get("error")
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return error["message"]
        if isinstance(error, str):
            return error
        if isinstance(data.get("message"), str):
            return data["message"]
    return str(data)[:200]


def shape_error(url: str, what: str) -> ProviderError:
    return ProviderError(f"unexpected response from {url}: {what}")
