"""Retry policy: exponential backoff with jitter, Retry-After honoured and capped, stops."""

from __future__ import annotations

import threading

import pytest

from promptlab.errors import ProviderError
from promptlab.experiments.retry import Interrupted, RetryPolicy, call_with_retries
from promptlab.providers.base import Provider, ProviderSpec, Request, Response


class Flaky(Provider):
    type = "flaky"

    def __init__(self, errors: list[Exception]):
        super().__init__(ProviderSpec("flaky"))
        self.errors = list(errors)
        self.calls = 0

    def complete(self, request: Request) -> Response:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return Response(text="ok")


class RecordingStop(threading.Event):
    """A stop event whose waits are recorded instead of slept."""

    def __init__(self, stop_after: int | None = None):
        super().__init__()
        self.waits: list[float] = []
        self.stop_after = stop_after

    def wait(self, timeout: float | None = None) -> bool:
        self.waits.append(timeout or 0.0)
        return self.stop_after is not None and len(self.waits) >= self.stop_after


REQUEST = Request(messages=[{"role": "user", "content": "hi"}])


def test_backoff_doubles_with_jitter_and_caps() -> None:
    policy = RetryPolicy(max_retries=6, backoff_s=1.0, max_backoff_s=10.0)
    for attempt, full in enumerate([1, 2, 4, 8, 10, 10]):
        for _ in range(50):
            assert full * 0.5 <= policy.delay(attempt, None) < full
    for _ in range(50):
        assert 7.0 <= policy.delay(0, 7.0) <= 7.7  # Retry-After plus at most 10%


def test_retries_until_success_and_counts_attempts() -> None:
    provider = Flaky([ProviderError("busy", retryable=True)] * 2)
    stop = RecordingStop()
    response, attempts = call_with_retries(provider, REQUEST, RetryPolicy(backoff_s=0.5), stop)
    assert (response.text, attempts, provider.calls) == ("ok", 3, 3)
    assert 0.25 <= stop.waits[0] < 0.5 and 0.5 <= stop.waits[1] < 1.0


def test_gives_up_and_says_so() -> None:
    provider = Flaky([ProviderError("HTTP 503", retryable=True)] * 5)
    with pytest.raises(ProviderError) as info:
        call_with_retries(provider, REQUEST, RetryPolicy(max_retries=2), RecordingStop())
    assert str(info.value) == "HTTP 503 (gave up after 3 attempts)"
    assert info.value.attempts == 3  # type: ignore[attr-defined]


def test_not_retryable_fails_at_once() -> None:
    provider = Flaky([ProviderError("HTTP 401: bad key")])
    with pytest.raises(ProviderError, match="^HTTP 401: bad key$"):
        call_with_retries(provider, REQUEST, RetryPolicy(), RecordingStop())
    assert provider.calls == 1


def test_retry_after_above_the_cap_fails_the_call() -> None:
    provider = Flaky([ProviderError("HTTP 429", retryable=True, retry_after=3600)])
    with pytest.raises(ProviderError) as info:
        call_with_retries(provider, REQUEST, RetryPolicy(max_retry_after_s=120), RecordingStop())
    assert str(info.value) == ("HTTP 429 (the server asked to wait 3600s, more than [run] "
                               "max_retry_after_s = 120)")
    provider = Flaky([ProviderError("HTTP 429", retryable=True, retry_after=1e308)])
    with pytest.raises(ProviderError, match=r"asked to wait 1e\+308s, more than"):  # not 309 digits
        call_with_retries(provider, REQUEST, RetryPolicy(max_retry_after_s=120), RecordingStop())


def test_a_provider_bug_becomes_an_error_on_the_cell() -> None:
    provider = Flaky([KeyError("choices")])
    with pytest.raises(ProviderError, match="^provider flaky failed: KeyError: 'choices'$"):
        call_with_retries(provider, REQUEST, RetryPolicy(), RecordingStop())


def test_stopping_interrupts_the_wait() -> None:
    provider = Flaky([ProviderError("busy", retryable=True)] * 3)
    with pytest.raises(Interrupted):
        call_with_retries(provider, REQUEST, RetryPolicy(), RecordingStop(stop_after=1))
    assert provider.calls == 1


class Hanging(Provider):
    """A third-party provider that never returns by itself."""

    type = "hanging"

    def __init__(self) -> None:
        super().__init__(ProviderSpec("hanging"))
        self.release = threading.Event()

    def complete(self, request: Request) -> Response:
        self.release.wait(30)
        return Response(text="late")


def test_a_provider_that_never_returns_times_out_at_its_limit() -> None:
    provider = Hanging()
    request = Request(messages=REQUEST.messages, timeout_s=0.2)
    try:
        with pytest.raises(ProviderError, match=r"provider 'hanging' timed out after 0.2s") as info:
            call_with_retries(provider, request, RetryPolicy(max_retries=0), threading.Event())
        assert info.value.retryable
    finally:
        provider.release.set()


def test_the_retry_sequence_has_a_deadline() -> None:
    provider = Flaky([ProviderError("busy", retryable=True, retry_after=5.0)] * 3)
    with pytest.raises(ProviderError, match=r"retrying would pass the 1s deadline") as info:
        call_with_retries(provider, REQUEST, RetryPolicy(max_retries=3, deadline_s=1.0),
                          RecordingStop())
    assert info.value.attempts == 1 and provider.calls == 1  # type: ignore[attr-defined]
