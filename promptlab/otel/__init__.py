"""OpenTelemetry both ways (the `promptlab[otel]` extra; docs/otel.md).

Out:  `export_otlp(log_dir, endpoint=…)` sends the log over OTLP/HTTP with the GenAI
      semantic conventions (`promptlab export otlp`); a `Logger` with an `[otel]` endpoint
      or OTEL_EXPORTER_OTLP_ENDPOINT also exports each entry live (`LiveExporter`).
In:   `SpanExporter` writes spans of an OpenTelemetry-instrumented app to the log;
      `promptlab otlp serve` does the same for OTLP/HTTP from any language.

Names are loaded on first use: importing promptlab.otel does not import the SDK.
"""

from __future__ import annotations

from typing import Any

from promptlab.errors import ConfigError

__all__ = ["ExportSummary", "LiveExporter", "SpanExporter", "export_otlp", "require_sdk"]

_NAMES = {
    "SpanExporter": "promptlab.otel.entries",
    "export_otlp": "promptlab.otel.export",
    "ExportSummary": "promptlab.otel.export",
    "LiveExporter": "promptlab.otel.live",
}


def require_sdk() -> None:
    """Raise a ConfigError saying what to install when the OpenTelemetry SDK is missing."""
    try:
        import opentelemetry.exporter.otlp.proto.http
        import opentelemetry.sdk.trace  # noqa: F401
    except ImportError as exc:
        raise ConfigError(f"OpenTelemetry support needs the otel extra ({exc.name} is not "
                          "installed): pip install 'promptlab[otel]'") from None


def __getattr__(name: str) -> Any:
    module = _NAMES.get(name)
    if module is None:
        raise AttributeError(f"module 'promptlab.otel' has no attribute {name!r}")
    if name != "ExportSummary":
        require_sdk()
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
