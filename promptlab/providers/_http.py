"""What the HTTP providers share: one pooled httpx client, status → error mapping, keys.

`timeout_s` is a wall-clock limit on the whole request — connecting, sending, and reading
the status line, headers and body. httpx's own timeouts apply to each network operation
(a server trickling one byte every half second never trips them), so every socket of the
pool goes through a deadline backend, which gives each read and write only the time left
before the calling thread's deadline and fails the request once it has passed.

httpx is imported when the first request is made, never at import time.
"""

from __future__ import annotations

import contextlib
import functools
import os
import threading
import time
from collections.abc import Iterator
from typing import Any, ClassVar

from promptlab.errors import ExperimentError, ProviderError
from promptlab.providers.base import Provider, ProviderSpec, elapsed_ms, parse_retry_after

# 408 timeout, 409 conflict, 425 too early, 429 rate limit, 5xx, 529 Anthropic "overloaded".
RETRYABLE_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504, 529})


class HttpProvider(Provider):
    """Base of `openai` and `anthropic`: `base_url`, `api_key_env`, extra `headers`."""

    keys = frozenset({"base_url", "api_key_env", "headers"})
    enforces_timeout = True
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
        if base_url is not None and not valid_url(base_url):
            raise ExperimentError(f"{spec.where}: base_url {base_url!r} is not a valid URL; "
                                  "write it like http://localhost:8000/v1")
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
        key = key.strip()  # a newline or CR from `KEY=$(cat file)` or a .env file is no part
        bad = next((i for i, c in enumerate(key) if not " " < c < "\x7f"), None)
        if bad is not None or not key:
            # Never shown: the value is a secret. An HTTP header cannot carry it, so every
            # call would fail (with the key in the error message).
            where = f"at position {bad + 1}" if bad is not None else "(only spaces)"
            raise ExperimentError(f"{spec.where}: environment variable {env_name} holds a "
                                  f"character an API key cannot have {where}; check how it "
                                  "was set (a quote, a space or a non-ASCII letter?)")
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
                    # Never follow a redirect: httpx drops only `Authorization` on the way
                    # to another host, so `x-api-key` and the prompt would go along.
                    client = httpx.Client(limits=limits, follow_redirects=False)
                    _install_deadlines(client)
                    self._client = client
        return self._client

    def post_json(self, url: str, body: dict[str, Any], headers: dict[str, str],
                  timeout_s: float) -> tuple[Any, float]:
        """POST `body`; return (decoded JSON, latency ms) or raise ProviderError."""
        import httpx

        client = self._http()
        start = time.perf_counter()
        try:
            with _deadline(timeout_s):
                response = client.post(url, json=body,
                                       headers={**headers, **self.extra_headers},
                                       timeout=timeout_s)
        except httpx.TimeoutException as exc:
            raise ProviderError(f"{url} timed out after {timeout_s:g}s",
                                retryable=True) from exc
        except httpx.ConnectError as exc:
            raise ProviderError(f"cannot connect to {url}: {exc}; is the server running?",
                                retryable=True) from exc
        except httpx.TransportError as exc:
            raise ProviderError(f"{url}: {type(exc).__name__}: {exc}", retryable=True) from exc
        latency = elapsed_ms(start)
        status = response.status_code
        if 300 <= status < 400:
            where = response.headers.get("location", "")[:200]
            raise ProviderError(f"HTTP {status} from {url}: redirected to {where or '(nowhere)'}; "
                                "promptlab does not follow redirects (your API key would go "
                                "along): set base_url to the address that answers")
        if status >= 400:
            detail = _error_detail(response)
            raise ProviderError(f"HTTP {status} from {url}{': ' + detail if detail else ''}",
                                retryable=status in RETRYABLE_STATUS,
                                retry_after=parse_retry_after(response.headers))
        try:
            return response.json(), latency
        except RecursionError:
            raise ProviderError(f"the response from {url} is JSON nested too deeply to "
                                "read") from None
        except ValueError as exc:
            snippet = response.text[:80].replace("\n", " ")
            raise ProviderError(f"invalid JSON in the response from {url}: {snippet!r}") from exc

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


def valid_url(url: str) -> bool:
    """A host, a port that is a number in range, and no spaces or control characters:
    anything else fails every call of a run, each with the same error."""
    from urllib.parse import urlsplit

    if any(c <= " " or c == "\x7f" for c in url):
        return False
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError when out of range or not a number
    except ValueError:
        return False
    return bool(parts.hostname)


def _error_detail(response: Any) -> str:
    """The API's own error message (`{"error": {"message": …}}`), else the body's start."""
    try:
        data = response.json()
    except (ValueError, RecursionError):  # not JSON, or nested too deep to read
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


# -- wall-clock deadlines --------------------------------------------------------------------

_local = threading.local()


@contextlib.contextmanager
def _deadline(seconds: float) -> Iterator[None]:
    """Every socket operation of this thread ends by `seconds` from now."""
    _local.deadline = time.monotonic() + seconds
    try:
        yield
    finally:
        _local.deadline = None


def _time_left(timeout: float | None, what: str) -> float | None:
    """`timeout` shortened to the calling thread's deadline (which raises once passed)."""
    deadline = getattr(_local, "deadline", None)
    if deadline is None:
        return timeout
    left = deadline - time.monotonic()
    if left <= 0:
        import httpcore

        raise (httpcore.ConnectTimeout if what == "connect" else
               httpcore.WriteTimeout if what == "write" else httpcore.ReadTimeout)(
            "deadline passed")
    return left if timeout is None else min(timeout, left)


def _install_deadlines(client: Any) -> None:
    """Route every connection pool of `client` (direct and through proxies) through
    `_deadline_backend()`. httpx does not expose the pool's network backend, hence the
    attribute: tests/experiments/test_providers.py checks it over a real socket."""
    transports = [client._transport, *client._mounts.values()]
    for transport in transports:
        pool = getattr(transport, "_pool", None)
        inner = getattr(pool, "_network_backend", None)
        if inner is None:
            raise RuntimeError("httpx's transport has no connection pool to bound: "
                               "promptlab cannot enforce timeout_s with this httpx version")
        pool._network_backend = _deadline_backend()(inner)


@functools.lru_cache(maxsize=1)
def _deadline_backend() -> type:
    """The httpcore network backend (built on first use: httpcore is imported lazily)."""
    import httpcore

    class DeadlineStream(httpcore.NetworkStream):
        def __init__(self, inner: Any):
            self.inner = inner

        def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
            return self.inner.read(max_bytes, _time_left(timeout, "read"))

        def write(self, buffer: bytes, timeout: float | None = None) -> None:
            self.inner.write(buffer, _time_left(timeout, "write"))

        def close(self) -> None:
            self.inner.close()

        def start_tls(self, ssl_context: Any, server_hostname: str | None = None,
                      timeout: float | None = None) -> Any:
            return DeadlineStream(self.inner.start_tls(ssl_context, server_hostname,
                                                       _time_left(timeout, "connect")))

        def get_extra_info(self, info: str) -> Any:
            return self.inner.get_extra_info(info)

    class DeadlineBackend(httpcore.NetworkBackend):
        def __init__(self, inner: Any):
            self.inner = inner

        def connect_tcp(self, host: str, port: int, timeout: float | None = None,
                        local_address: str | None = None, socket_options: Any = None) -> Any:
            return DeadlineStream(self.inner.connect_tcp(
                host, port, _time_left(timeout, "connect"), local_address, socket_options))

        def connect_unix_socket(self, path: str, timeout: float | None = None,
                                socket_options: Any = None) -> Any:
            return DeadlineStream(self.inner.connect_unix_socket(
                path, _time_left(timeout, "connect"), socket_options))

        def sleep(self, seconds: float) -> None:
            self.inner.sleep(seconds)

    return DeadlineBackend
