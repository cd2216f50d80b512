"""Semantic search over the log: embedders, embedding the log incrementally, and search by
meaning (alone, or fused with full-text ranks), with the vectors stored in the index
(promptlab.index.vectors, sqlite-vec).

    from promptlab.semantic import embed_log, semantic_search, similar

    embed_log()                                               # what is new since last time
    for hit in semantic_search("customer wants their money back", limit=5):
        print(hit.entry["id"], hit.distance, hit.snippet)
    semantic_search("refund policy", mode="hybrid", prompt="support", since="7d")
    similar("01JD3Z6X0M")
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from promptlab._lazy import lazy_exports

# Imported on first use: the search's helper process (promptlab.semantic.worker) needs
# neither the search nor the log reader behind these (~40 ms).
_EXPORTS = {
    **dict.fromkeys(("RECIPE", "EmbedStats", "entry_text"), "promptlab.semantic.embed"),
    **dict.fromkeys(("Embedder", "EmbedderSpec", "FunctionEmbedder", "LocalEmbedder",
                     "OpenAIEmbedder", "load_embedder"), "promptlab.semantic.embedders"),
    **dict.fromkeys(("SemanticHit", "SemanticResults", "embed_log", "resolve_embedder",
                     "semantic_search", "similar"), "promptlab.semantic.search"),
}
__all__ = [
    "RECIPE", "EmbedStats", "Embedder", "EmbedderSpec", "FunctionEmbedder", "LocalEmbedder",
    "OpenAIEmbedder", "SemanticHit", "SemanticResults", "embed_log", "entry_text",
    "load_embedder", "resolve_embedder", "semantic_search", "similar",
]

__getattr__, __dir__ = lazy_exports("promptlab.semantic", _EXPORTS, globals())

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from promptlab.semantic.embed import RECIPE, EmbedStats, entry_text
    from promptlab.semantic.embedders import (
        Embedder,
        EmbedderSpec,
        FunctionEmbedder,
        LocalEmbedder,
        OpenAIEmbedder,
        load_embedder,
    )
    from promptlab.semantic.search import (
        SemanticHit,
        SemanticResults,
        embed_log,
        resolve_embedder,
        semantic_search,
        similar,
    )
