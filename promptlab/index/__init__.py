"""The SQLite index over the log: schema and migrations, sync, full-text search, queries,
cost roll-ups and traces. Derived from the JSONL files; deleting it loses nothing.

Import `Index` and `query` from `promptlab` (or `promptlab.index.core`): once the module
`promptlab.index.query` is loaded, the name `promptlab.index.query` means that module.
The names are imported on first use, so that a submodule (`promptlab.index.vectors`, in
the search's helper process) does not import the rest of the index (~50 ms).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from promptlab._lazy import lazy_exports

_EXPORTS = {"Index": "promptlab.index.core", "query": "promptlab.index.core"}
__all__ = ["Index", "query"]

__getattr__, __dir__ = lazy_exports("promptlab.index", _EXPORTS, globals())

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from promptlab.index.core import Index, query
