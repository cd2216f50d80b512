"""The one interface every provider implements: a request in, a response out.

A provider turns rendered chat messages plus parameters into text, token usage, latency
and the raw payload. It raises `ProviderError` with `retryable=True` (and `retry_after`
when the server said how long to wait) for failures worth trying again: rate limits,
overload, timeouts, dropped connections. The runner owns retries; providers never retry.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from promptlab.errors import ExperimentError, ProviderError

COMMON_KEYS = frozenset({"type", "model", "params"})
USAGE_FIELDS = ("input_tokens", "output_tokens", "cached_tokens", "reasoning_tokens")
# A provider's answer is untrusted data: a token count outside 0..10^9 is not one (the
# same bound the log entry holds tokens to).
MAX_TOKENS = 10**9


def token_count(value: Any, name: str, where: str) -> int | None:
    """A token count a provider reported: None when absent, else an integer in
    0..MAX_TOKENS, or ProviderError naming the field (the cell becomes an error)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_TOKENS:
        shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:37] + "..."
        raise ProviderError(f"{where} reported {name} = {shown}, which is not a token count "
                            f"(an integer from 0 to {MAX_TOKENS:.0e})")
    return value


@dataclass(frozen=True)
class ProviderSpec:
    """A `[provider]` table: its type, model, params and the type's own options.

    `base_dir` is the folder relative paths (python files, commands) are resolved from —
    the experiment file's folder. `where` names the table in error messages.
    """

    type: str
    model: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)
    base_dir: Path = field(default_factory=Path.cwd)
    where: str = "[provider]"

    def option(self, key: str, default: Any = None) -> Any:
        return self.options.get(key, default)

    def replace(self, **changes: Any) -> ProviderSpec:
        from dataclasses import replace

        return replace(self, **changes)


@dataclass(frozen=True)
class Request:
    """What a provider is asked: messages, the model, parameters and the call's limits.

    `repeat` is the repeat index of the cell (0-based): a deterministic provider can use
    it to vary its answer the way sampling would; it is also part of the cache key.
    """

    messages: list[dict[str, str]]
    model: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    repeat: int = 0
    timeout_s: float = 60.0

    @property
    def system(self) -> str | None:
        parts = [m["content"] for m in self.messages if m["role"] == "system"]
        return "\n\n".join(parts) if parts else None

    @property
    def text(self) -> str:
        return "\n\n".join(m["content"] for m in self.messages)

    def to_dict(self) -> dict[str, Any]:
        return {"messages": self.messages, "model": self.model, "params": self.params,
                "repeat": self.repeat}


@dataclass(frozen=True)
class Response:
    """A provider's answer. Token counts are None when the provider does not report them.

    `input_tokens` counts every input token, cached ones included; `cached_tokens` is the
    part served from the provider's prompt cache.
    """

    text: str
    input_tokens: int | None = None
    output_tokens: int | None = None
    cached_tokens: int | None = None
    reasoning_tokens: int | None = None
    latency_ms: float = 0.0
    model: str | None = None
    raw: Any = None

    def usage(self) -> dict[str, int]:
        return {n: getattr(self, n) for n in USAGE_FIELDS if getattr(self, n) is not None}

    def check(self, where: str) -> None:
        """Raise ProviderError naming the first field that cannot be logged as is
        (`where` says who answered): text, token counts, latency, model."""
        if not isinstance(self.text, str):
            raise ProviderError(f"{where} returned text of type {type(self.text).__name__}")
        for name in USAGE_FIELDS:
            token_count(getattr(self, name), name, where)
        latency = self.latency_ms
        if (isinstance(latency, bool) or not isinstance(latency, int | float)
                or not math.isfinite(latency) or latency < 0):
            raise ProviderError(f"{where} reported latency_ms = {latency!r}, which is not a "
                                "duration")
        if self.model is not None and not isinstance(self.model, str):
            raise ProviderError(f"{where} reported model = {self.model!r}, which is not a name")

    def to_dict(self) -> dict[str, Any]:
        return {"text": self.text, **self.usage(), "latency_ms": self.latency_ms,
                "model": self.model}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Response:
        keys = ("text", "input_tokens", "output_tokens", "cached_tokens", "reasoning_tokens",
                "latency_ms", "model")
        return cls(**{k: data[k] for k in keys if k in data})


class Provider:
    """Base class. Subclasses set `type`, `keys` (their own config keys) and `complete`.

    `cacheable` says whether identical requests may be answered from the response cache;
    `endpoint` identifies where requests go (part of the cache key). When
    `model_from_response` is true the model the response names is logged (a function or
    program that is itself the model says which one it is); otherwise the model asked for.
    """

    type: ClassVar[str] = ""
    keys: ClassVar[frozenset[str]] = frozenset()
    cacheable: ClassVar[bool] = True
    model_from_response: ClassVar[bool] = False
    # True when `complete` itself never runs past `request.timeout_s` of wall-clock time;
    # otherwise the runner runs each call in a watchdog thread and stops waiting then.
    enforces_timeout: ClassVar[bool] = False

    def __init__(self, spec: ProviderSpec):
        self.spec = spec

    @classmethod
    def validate(cls, spec: ProviderSpec) -> None:
        """Check the config without side effects (called when the experiment file loads)."""
        from promptlab.errors import suggest

        allowed = COMMON_KEYS | cls.keys
        for key in spec.options:
            if key not in allowed:
                raise ExperimentError(f"{spec.where}: unknown key {key!r} for provider "
                                      f"type {cls.type!r}{suggest(key, allowed)}")

    @property
    def model(self) -> str | None:
        return self.spec.model

    @property
    def endpoint(self) -> str:
        return self.type

    def complete(self, request: Request) -> Response:
        raise NotImplementedError

    def close(self) -> None:
        """Release connections; called once at the end of a run."""


def elapsed_ms(start: float) -> float:
    return (time.perf_counter() - start) * 1000.0


def parse_retry_after(headers: Any) -> float | None:
    """Seconds to wait from `retry-after-ms`, `Retry-After: <seconds>` or an HTTP date."""
    value = headers.get("retry-after-ms")
    if value:
        try:
            return max(0.0, float(value) / 1000.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    from email.utils import parsedate_to_datetime

    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


__all__ = ["Provider", "ProviderError", "ProviderSpec", "Request", "Response"]
