"""promptlab: prompts under version control, every LLM call logged, experiments with real
statistics. Everything works offline from plain files.

    from promptlab import Registry, Logger, Experiment, compare

Public names are imported on first use so that `import promptlab` stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from promptlab._lazy import lazy_exports

__version__ = "0.1.0"

# Public name -> module that defines it.
_EXPORTS: dict[str, str] = {
    # errors
    "PromptlabError": "promptlab.errors",
    # config
    "Settings": "promptlab.config",
    "load_settings": "promptlab.config",
    # prompts
    "Registry": "promptlab.history",  # the registry with git provenance passed in
    "Prompt": "promptlab.registry",
    "Version": "promptlab.registry",
    "Template": "promptlab.template",
    "Rendered": "promptlab.template",
    # logging
    "Logger": "promptlab.logs.logger",
    "Call": "promptlab.logs.logger",
    "get_logger": "promptlab.logs.logger",
    "log": "promptlab.logs.logger",
    "log_llm_call": "promptlab.logs.logger",
    "feedback": "promptlab.logs.logger",
    "trace": "promptlab.logs.logger",
    "span": "promptlab.logs.logger",
    "traced": "promptlab.logs.logger",
    "read_entries": "promptlab.logs.reader",
    # index
    "Index": "promptlab.index.core",
    "query": "promptlab.index.core",  # not promptlab.index: its module query shadows it
    # semantic search (the semantic extra; models are loaded only when used)
    "semantic_search": "promptlab.semantic",
    "similar": "promptlab.semantic",
    "embed_log": "promptlab.semantic",
    # experiments
    "Experiment": "promptlab.experiments",
    "load_experiment": "promptlab.experiments",
    # compare
    "compare": "promptlab.comparison",
    "Comparison": "promptlab.comparison",
    # OpenTelemetry (the otel extra; the SDK is imported only when used)
    "export_otlp": "promptlab.otel.export",
}

__all__ = ["__version__", *_EXPORTS]


__getattr__, __dir__ = lazy_exports("promptlab", _EXPORTS, globals())


if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from promptlab.comparison import Comparison, compare
    from promptlab.config import Settings, load_settings
    from promptlab.errors import PromptlabError
    from promptlab.experiments import Experiment, load_experiment
    from promptlab.history import Registry
    from promptlab.index.core import Index, query
    from promptlab.logs.logger import (
        Call,
        Logger,
        feedback,
        get_logger,
        log,
        log_llm_call,
        span,
        trace,
        traced,
    )
    from promptlab.logs.reader import read_entries
    from promptlab.otel.export import export_otlp
    from promptlab.registry import Prompt, Version
    from promptlab.semantic import embed_log, semantic_search, similar
    from promptlab.template import Rendered, Template
