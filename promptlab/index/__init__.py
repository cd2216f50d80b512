"""The SQLite index over the log: schema and migrations, sync, full-text search, queries,
cost roll-ups and traces. Derived from the JSONL files; deleting it loses nothing.

Import `Index` and `query` from `promptlab` (or `promptlab.index.core`): once the module
`promptlab.index.query` is loaded, the name `promptlab.index.query` means that module.
"""

from promptlab.index.core import Index, query

__all__ = ["Index", "query"]
