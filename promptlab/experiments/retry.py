"""Calling a provider with retries: exponential backoff with jitter, honouring Retry-After.

A retryable `ProviderError` (rate limit, overload, timeout, dropped connection) is tried
again up to `max_retries` times. Without a Retry-After the wait is
`min(max_backoff_s, backoff_s * 2**attempt)` times a random factor in [0.5, 1) ("equal
jitter", so many workers do not retry in lockstep); with one, the server's wait plus up to
10%. A server asking for more than `max_retry_after_s` fails the call at once. With a
`deadline_s`, the whole sequence (attempts and waits) ends by then: each attempt's
`timeout_s` shrinks to the time left, and a wait that would pass it is not taken. Waiting
stops as soon as the run is stopped (`Interrupted`): such a cell is not logged, and
`--resume` runs it again.
"""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass, replace
from typing import Any

from promptlab.errors import PromptlabError, ProviderError
from promptlab.providers.base import Provider, Request, Response

_rng = random.Random()
_rng_lock = threading.Lock()


class Interrupted(PromptlabError):
    """The run was stopped while a call waited to be retried."""


@dataclass(frozen=True)
class RetryPolicy:
    max_retries: int = 3
    backoff_s: float = 1.0
    max_backoff_s: float = 30.0
    max_retry_after_s: float = 120.0
    deadline_s: float | None = None  # for one call and all its retries

    def delay(self, attempt: int, retry_after: float | None) -> float:
        """Seconds to wait before retry number `attempt + 1` (attempt counts from 0)."""
        with _rng_lock:
            r = _rng.random()
        if retry_after is not None:
            return retry_after * (1 + 0.1 * r)
        return min(self.max_backoff_s, self.backoff_s * 2**attempt) * (0.5 + 0.5 * r)


def call_with_retries(provider: Provider, request: Request, policy: RetryPolicy,
                      stop: threading.Event) -> tuple[Response, int]:
    """(response, attempts made), or the last ProviderError with `.attempts` set."""
    attempt = 0
    deadline = None if policy.deadline_s is None else time.monotonic() + policy.deadline_s
    while True:
        asked = request
        if deadline is not None and attempt:
            left = deadline - time.monotonic()
            if left < request.timeout_s:
                asked = replace(request, timeout_s=max(left, 0.001))
        try:
            return _complete(provider, asked), attempt + 1
        except ProviderError as exc:
            error = exc
        except PromptlabError as exc:
            error = ProviderError(str(exc))
        except Exception as exc:  # a provider bug: an error on this cell, not a crash
            error = ProviderError(f"provider {provider.type} failed: "
                                  f"{type(exc).__name__}: {exc}")
        if not error.retryable or attempt >= policy.max_retries or stop.is_set():
            if error.retryable and attempt >= policy.max_retries and attempt > 0:
                error = ProviderError(f"{error} (gave up after {attempt + 1} attempts)")
            error.attempts = attempt + 1  # type: ignore[attr-defined]
            raise error
        if error.retry_after is not None and error.retry_after > policy.max_retry_after_s:
            final = ProviderError(f"{error} (the server asked to wait {error.retry_after:.4g}s, "
                                  f"more than [run] max_retry_after_s = "
                                  f"{policy.max_retry_after_s:g})")
            final.attempts = attempt + 1  # type: ignore[attr-defined]
            raise final
        wait = policy.delay(attempt, error.retry_after)
        if deadline is not None and time.monotonic() + wait >= deadline:
            final = ProviderError(f"{error} (gave up after {attempt + 1} attempts: retrying "
                                  f"would pass the {policy.deadline_s:g}s deadline of this "
                                  "call and its retries)")
            final.attempts = attempt + 1  # type: ignore[attr-defined]
            raise final
        if stop.wait(wait):
            raise Interrupted("stopped while waiting to retry")
        attempt += 1


def _complete(provider: Provider, request: Request) -> Response:
    """`provider.complete(request)`, never waited on past `request.timeout_s`.

    Built-in providers bound their own calls; for any other the call runs in a daemon
    thread that is abandoned (and its answer dropped) once the time is up.
    """
    if provider.enforces_timeout:
        return provider.complete(request)
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["response"] = provider.complete(request)
        except BaseException as exc:  # handed to the caller below
            box["error"] = exc

    thread = threading.Thread(target=target, daemon=True, name="promptlab-call")
    thread.start()
    thread.join(request.timeout_s)
    if thread.is_alive():
        raise ProviderError(f"provider {provider.type!r} timed out after "
                            f"{request.timeout_s:g}s", retryable=True)
    if "error" in box:
        raise box["error"]
    return box["response"]
