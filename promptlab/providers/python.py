"""`python`: a Python function as the model — `module:function` or `file.py:function`.

    [provider]
    type = "python"
    model_from_response = True
    function = "standin_reviewer.py:review"   # relative to the experiment file

The function is called with the keyword arguments it declares among `messages`, `text`
(all messages joined), `system`, `user`, `model`, `params`, `repeat`. It returns the
response text, or a dict `{"output": text, "usage": {"input_tokens": …, "output_tokens":
…}, "model": …}` (the same shape as the `command` provider). Raising an exception makes
that call an error; raise `ProviderError(..., retryable=True)` for a transient one.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from promptlab.errors import ExperimentError, ProviderError
from promptlab.providers._loader import accepted_kwargs, load_function
from promptlab.providers.base import (
    USAGE_FIELDS,
    Provider,
    ProviderSpec,
    Request,
    Response,
    elapsed_ms,
    token_count,
)


class PythonProvider(Provider):
    type = "python"
    model_from_response = True
    keys = frozenset({"function"})
    enforces_timeout = True

    @classmethod
    def validate(cls, spec: ProviderSpec) -> None:
        super().validate(spec)
        ref = spec.option("function")
        if not isinstance(ref, str) or ":" not in ref:
            raise ExperimentError(f"{spec.where}: type 'python' needs function = "
                                  "\"module:function\" or \"path/to/file.py:function\"")

    def __init__(self, spec: ProviderSpec):
        super().__init__(spec)
        self.ref = spec.option("function")
        self.func = load_function(self.ref, spec.base_dir, spec.where)

    @property
    def endpoint(self) -> str:
        return f"python:{self.ref}"

    def complete(self, request: Request) -> Response:
        user = [m["content"] for m in request.messages if m["role"] == "user"]
        available = {"messages": request.messages, "text": request.text,
                     "system": request.system, "user": "\n\n".join(user) if user else None,
                     "model": request.model, "params": request.params,
                     "repeat": request.repeat}
        kwargs = accepted_kwargs(self.func, available)
        start = time.perf_counter()
        result = _run_with_timeout(self.func, kwargs, request.timeout_s, self.ref)
        latency = elapsed_ms(start)
        return parse_output(result, latency, request.model, f"function {self.ref}")


def _run_with_timeout(func: Any, kwargs: dict[str, Any], timeout_s: float, ref: str) -> Any:
    """Run in a daemon thread so a hung function cannot hang the run past its timeout."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["result"] = func(**kwargs)
        except BaseException as exc:  # reported to the caller below
            box["error"] = exc

    thread = threading.Thread(target=target, daemon=True, name="promptlab-python-provider")
    thread.start()
    thread.join(timeout_s)
    if thread.is_alive():
        raise ProviderError(f"function {ref} timed out after {timeout_s:g}s", retryable=True)
    if "error" in box:
        exc = box["error"]
        if isinstance(exc, ProviderError):
            raise exc
        raise ProviderError(f"function {ref} raised {type(exc).__name__}: {exc}") from exc
    return box.get("result")


def parse_output(result: Any, latency_ms: float, model: str | None, what: str) -> Response:
    """A str, or `{"output": str, "usage": {...}, "model": str}`, as a Response."""
    if isinstance(result, str):
        return Response(text=result, latency_ms=latency_ms, model=model)
    if isinstance(result, dict) and isinstance(result.get("output"), str):
        usage = result.get("usage") or {}
        if not isinstance(usage, dict):
            raise ProviderError(f"{what} returned 'usage' that is not an object")
        counts = {key: token_count(usage.get(key), f"usage.{key}", what)
                  for key in USAGE_FIELDS}
        named = result.get("model")
        if named is not None and not isinstance(named, str):
            raise ProviderError(f"{what} returned model = {named!r}; expected a name")
        return Response(text=result["output"], latency_ms=latency_ms,
                        model=named or model, raw=result, **counts)  # type: ignore[arg-type]
    raise ProviderError(f"{what} returned {type(result).__name__}; expected a string or "
                        "{\"output\": ..., \"usage\": {...}}")
