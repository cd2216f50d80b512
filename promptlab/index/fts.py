"""Turning what a user types into a safe FTS5 query, and snippets around the matches.

Search text is taken literally: every word becomes a quoted FTS5 string, so quotes,
`-`, `*`, `:`, parentheses and unbalanced syntax can never cause an SQL error. On top of
that, a few forms people expect from search boxes:

    timeout retry          both words (anywhere in the prompt or response)
    "rate limit"           the exact phrase
    retr*                  a word starting with `retr`
    timeout OR deadline    either word
    timeout -retry         timeout, but not retry   (also: timeout NOT retry)

Words are matched the way the index tokenizes them: case and accents are ignored, and
punctuation separates words (`foo-bar` finds the phrase "foo bar").
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from typing import Any

from promptlab.errors import LogIndexError

# FTS5's bm25 costs grow with the square of the number of terms (1,000 terms over 3,000
# entries took 69 s): repeated words count once, and a query has at most this many.
MAX_TERMS = 32
MAX_QUERY_CHARS = 2000
FIELDS = {"system": "system_prompt", "user": "user_message", "response": "assistant_response"}
_WORD = re.compile(r"[^\W_]+")
_CHUNK = re.compile(r'"([^"]*)"|(\S+)')


class SearchQueryError(LogIndexError):
    """A search that cannot be run as typed (nothing to search for, only exclusions)."""


@dataclass
class _Term:
    text: str  # FTS5 string body (already safe inside double quotes)
    prefix: bool = False

    def fts(self) -> str:
        return '"' + self.text.replace('"', '""') + '"' + ("*" if self.prefix else "")


@dataclass
class FtsQuery:
    """A search, ready for `entries_fts MATCH ?`. `raw` passes FTS5 syntax through."""

    text: str
    raw: bool = False
    groups: list[list[_Term]] = field(default_factory=list)  # AND of ORs
    excluded: list[_Term] = field(default_factory=list)

    def match(self, field_name: str | None = None) -> str:
        if self.raw:
            expr = self.text
        else:
            parts = [
                group[0].fts() if len(group) == 1
                else "(" + " OR ".join(t.fts() for t in group) + ")"
                for group in self.groups
            ]
            expr = " AND ".join(parts)
            if self.excluded:
                expr = f"({expr}) NOT (" + " OR ".join(t.fts() for t in self.excluded) + ")"
        if field_name:
            column = FIELDS.get(field_name)
            if column is None:
                raise SearchQueryError(
                    f"--in {field_name!r}: expected one of {', '.join(FIELDS)}")
            expr = f"{{{column}}} : ({expr})"
        return expr

    def highlight_terms(self) -> list[tuple[str, bool]]:
        """(normalised word, is prefix) for every word to highlight in snippets."""
        if self.raw:
            words = [w for w in _WORD.findall(self.text)
                     if w not in ("AND", "OR", "NOT", "NEAR") and w not in FIELDS.values()]
            return [(normalize(w), False) for w in words]
        terms = []
        for group in self.groups:
            for term in group:
                words = _WORD.findall(term.text)
                for i, word in enumerate(words):
                    terms.append((normalize(word), term.prefix and i == len(words) - 1))
        return terms


def check_size(text: str, *, terms: int | None = None) -> None:
    """Refuse a search longer than MAX_QUERY_CHARS or with more than MAX_TERMS terms."""
    if len(text) > MAX_QUERY_CHARS:
        raise SearchQueryError(
            f"search text is {len(text):,} characters long; the limit is {MAX_QUERY_CHARS:,} "
            "(search for a few distinctive words instead)")
    if terms is None:
        terms = len(set(_WORD.findall(text)))
    if terms > MAX_TERMS:
        raise SearchQueryError(
            f"search has {terms:,} different words; the limit is {MAX_TERMS} (each word makes "
            "ranking slower: search for a few distinctive ones)")


def parse_search(text: str) -> FtsQuery:
    """Parse search-box text (see the module docstring). Raises SearchQueryError."""
    check_size(text, terms=0)
    items: list[tuple[str, Any]] = []  # ("term", (_Term, negated)) | ("or", None)
    operators: list[str] = []  # operator words, searched as words when nothing else is left
    negate_next = False
    for phrase, bare in _CHUNK.findall(text.replace("\x00", " ")):  # FTS5 stops at a NUL
        if phrase or bare == '""':
            term: _Term | None = _Term(phrase) if _WORD.search(phrase) else None
            negated = negate_next
        elif bare in ("OR", "|"):
            items.append(("or", None))
            operators.append(bare)
            continue
        elif bare == "AND":
            operators.append(bare)
            continue
        elif bare == "NOT":
            negate_next = True
            operators.append(bare)
            continue
        else:
            negated = negate_next
            if bare.startswith("-") and _WORD.search(bare):
                negated, bare = True, bare.lstrip("-")
            prefix = bare.endswith("*")
            body = bare.rstrip("*") if prefix else bare
            term = _Term(body, prefix=prefix and bool(_WORD.search(body[-1:] or "-"))) \
                if _WORD.search(body) else None
        negate_next = False
        if term is not None:
            items.append(("term", (term, negated)))
    query = FtsQuery(text)
    pending_or = False
    seen: set[tuple[str, bool, bool]] = set()
    for kind, value in items:
        if kind == "or":
            pending_or = bool(query.groups)
            continue
        term, negated = value
        key = (term.text.casefold(), term.prefix, negated)
        if key in seen and not pending_or:  # `word word word` finds what `word` finds
            continue
        seen.add(key)
        if negated:
            query.excluded.append(term)
        elif pending_or:
            query.groups[-1].append(term)
        else:
            query.groups.append([term])
        pending_or = False
    if not query.groups and not query.excluded:
        query.groups = [[_Term(word)] for word in operators if _WORD.search(word)]
    check_size(text, terms=sum(map(len, query.groups)) + len(query.excluded))
    if not query.groups:
        if query.excluded:
            raise SearchQueryError(
                f"search {text!r} only excludes words; add at least one word to find")
        raise SearchQueryError(
            f"nothing to search for in {text!r}; give at least one word or number")
    return query


def normalize(word: str) -> str:
    """A word as the index's tokenizer sees it: case-folded, accents removed."""
    word = word.casefold()
    if word.isascii():
        return word
    return "".join(c for c in unicodedata.normalize("NFKD", word)
                   if not unicodedata.combining(c))


def snippet(entry: dict[str, Any], terms: list[tuple[str, bool]], *, width: int = 160,
            mark: tuple[str, str] = ("**", "**")) -> str:
    """A one-line extract of the entry around the first match, matches marked."""
    from promptlab.index.parse import entry_texts

    system, user, response = entry_texts(entry)
    texts = [t for t in (response, user, system) if t]
    exact = {w for w, p in terms if not p}
    prefixes = tuple(w for w, p in terms if p)

    def matches(word: str) -> bool:
        n = normalize(word)
        return n in exact or (bool(prefixes) and n.startswith(prefixes))

    for text in texts:
        spans = [m.span() for m in _WORD.finditer(text) if matches(m.group())]
        if spans:
            return _extract(text, spans, width, mark)
    return _flat(texts[0])[:width] if texts else ""


def _extract(text: str, spans: list[tuple[int, int]], width: int,
             mark: tuple[str, str]) -> str:
    first = spans[0][0]
    start = max(0, first - width // 3)
    end = min(len(text), start + width)
    start = max(0, min(start, end - width))
    out, pos = [], start
    for a, b in spans:
        if a < start or b > end:
            continue
        out.append(text[pos:a])
        out.append(mark[0] + text[a:b] + mark[1])
        pos = b
    out.append(text[pos:end])
    return ("…" if start > 0 else "") + _flat("".join(out)) + ("…" if end < len(text) else "")


def _flat(text: str) -> str:
    return " ".join(text.split())
