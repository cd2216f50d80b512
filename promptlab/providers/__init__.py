"""Model providers: the built-in ones, and third-party ones registered by entry point.

A package adds a provider with an entry point in the `promptlab.providers` group whose
object is a `Provider` subclass (see `promptlab.providers.base`):

    [project.entry-points."promptlab.providers"]
    mymodel = "my_package.provider:MyProvider"

Then `[provider] type = "mymodel"` in an experiment file uses it.
"""

from __future__ import annotations

import importlib
from functools import lru_cache

from promptlab.errors import ExperimentError
from promptlab.providers.base import Provider, ProviderSpec, Request, Response

ENTRY_POINT_GROUP = "promptlab.providers"

BUILTIN: dict[str, str] = {
    "openai": "promptlab.providers.openai:OpenAIProvider",
    "anthropic": "promptlab.providers.anthropic:AnthropicProvider",
    "command": "promptlab.providers.command:CommandProvider",
    "python": "promptlab.providers.python:PythonProvider",
    "echo": "promptlab.providers.echo:EchoProvider",
}


@lru_cache(maxsize=1)
def _entry_points() -> dict[str, object]:
    from importlib.metadata import entry_points

    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def provider_types() -> list[str]:
    """Every provider type usable in `[provider] type`, built-in first."""
    return [*BUILTIN, *sorted(set(_entry_points()) - set(BUILTIN))]


def get_provider_class(type_name: str, where: str = "[provider]") -> type[Provider]:
    """The class for `type_name`, or ExperimentError listing the known types."""
    target = BUILTIN.get(type_name)
    if target is not None:
        module_name, attr = target.split(":")
        return getattr(importlib.import_module(module_name), attr)
    ep = _entry_points().get(type_name)
    if ep is None:
        from promptlab.errors import suggest

        raise ExperimentError(f"{where}: unknown provider type {type_name!r}"
                              f"{suggest(type_name, provider_types())}")
    try:
        cls = ep.load()  # type: ignore[attr-defined]
    except Exception as exc:
        raise ExperimentError(f"{where}: provider {type_name!r} (entry point {ep.value}) "  # type: ignore[attr-defined]
                              f"failed to load: {type(exc).__name__}: {exc}") from exc
    if not (isinstance(cls, type) and issubclass(cls, Provider)):
        raise ExperimentError(f"{where}: entry point {type_name!r} is not a "
                              "promptlab.providers.base.Provider subclass")
    return cls


def validate_provider(spec: ProviderSpec) -> None:
    """Check a `[provider]` table at load time: known type, known keys, well-formed values."""
    get_provider_class(spec.type, spec.where).validate(spec)


def create_provider(spec: ProviderSpec) -> Provider:
    """A ready provider for `spec` (validated again; may check credentials)."""
    cls = get_provider_class(spec.type, spec.where)
    cls.validate(spec)
    return cls(spec)


__all__ = ["BUILTIN", "Provider", "ProviderSpec", "Request", "Response", "create_provider",
           "get_provider_class", "provider_types", "validate_provider"]
