"""Load `module:function` or `path/to/file.py:function` for python providers and scorers."""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from promptlab.errors import ExperimentError

_lock = threading.Lock()


def load_function(ref: str, base_dir: Path, where: str) -> Callable[..., Any]:
    """Import the function `ref` names; files are resolved against `base_dir`."""
    module_part, sep, func_name = ref.rpartition(":")
    if not sep or not module_part or not func_name.isidentifier():
        raise ExperimentError(f"{where}: function {ref!r} must be 'module:function' or "
                              "'path/to/file.py:function'")
    if module_part.endswith(".py") or "/" in module_part or "\\" in module_part:
        path = Path(module_part).expanduser()
        path = path if path.is_absolute() else base_dir / path
        module = _load_file(path, where)
    else:
        try:
            module = importlib.import_module(module_part)
        except ImportError as exc:
            raise ExperimentError(f"{where}: cannot import module {module_part!r}: {exc}") from exc
        except Exception as exc:
            raise ExperimentError(f"{where}: importing {module_part!r} failed: "
                                  f"{type(exc).__name__}: {exc}") from exc
    func = getattr(module, func_name, None)
    if not callable(func):
        raise ExperimentError(f"{where}: {module_part} has no function {func_name!r}")
    return func


def _load_file(path: Path, where: str) -> Any:
    path = path.resolve()
    if not path.is_file():
        raise ExperimentError(f"{where}: file {path} not found")
    # One module per file path, shared by every thread and every load.
    name = "promptlab_user_" + hashlib.sha256(str(path).encode()).hexdigest()[:12]
    with _lock:
        module = sys.modules.get(name)
        if module is not None:
            return module
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            raise ExperimentError(f"{where}: cannot load {path} as Python")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        try:
            spec.loader.exec_module(module)
        except Exception as exc:
            del sys.modules[name]
            raise ExperimentError(f"{where}: loading {path} failed: "
                                  f"{type(exc).__name__}: {exc}") from exc
    return module


def call_with_accepted(func: Callable[..., Any], available: dict[str, Any]) -> Any:
    """Call `func` with the keyword arguments it declares (all of them if it takes **kw)."""
    return func(**accepted_kwargs(func, available))


def accepted_kwargs(func: Callable[..., Any], available: dict[str, Any]) -> dict[str, Any]:
    try:
        params = inspect.signature(func).parameters
    except (TypeError, ValueError):
        return dict(available)
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return dict(available)
    return {k: v for k, v in available.items() if k in params}
