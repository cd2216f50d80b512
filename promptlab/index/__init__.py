"""The SQLite index over the log: schema and migrations, sync, full-text search, queries,
cost roll-ups and traces. Derived from the JSONL files; deleting it loses nothing."""

from promptlab.index.core import Index, query

__all__ = ["Index", "query"]
