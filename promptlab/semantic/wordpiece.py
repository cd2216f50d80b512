"""A search query's word pieces without the tokenizers library, for the built-in model.

The `tokenizers` library takes ~20 ms of CPU to import and ~55 ms to build the built-in
tokenizer (all-MiniLM-L6-v2's BERT uncased WordPiece: 30,522 word pieces into a Rust hash
map), most of what a semantic search's parent process does before its helper can embed the
query (promptlab.semantic.worker). For the texts a query usually is -- printable ASCII,
tabs and line breaks, no special token such as "[MASK]" written out -- BERT's rules are
short:

  1. whitespace separates words, and every punctuation character is a word of its own (in
     ASCII: everything printable that is neither a letter, a digit nor a space);
  2. letters are lowercased (accents: ASCII has none);
  3. each word is cut into the longest pieces the vocabulary holds, left to right, a
     piece after the first written with "##"; a word that cannot be cut that way, or that
     is longer than 100 characters, is one [UNK];
  4. [CLS] and [SEP] go around the pieces, which are cut to leave room for them.

`encode` applies them and returns None for every other text (any other character, or a
special token in the text), which the library then encodes. The vocabulary comes from
minilm-vocab.txt, the tokenizer file's vocabulary one word piece per line in id order
(~5-10 ms to read and hash). tests/semantic/test_wordpiece.py checks that both agree with the library,
id for id, on the retrieval set and on texts written to hit each rule.
"""

from __future__ import annotations

import re
from pathlib import Path

VOCAB = Path(__file__).parent / "data" / "minilm-vocab.txt"
MAX_WORD = 100  # the tokenizer's max_input_chars_per_word
# Printable ASCII with tab and line breaks
_PLAIN = re.compile(r"[\t\n\r\x20-\x7e]*\Z")
# The tokenizer's special tokens, which it recognises in the text itself
_SPECIAL = re.compile(r"\[(?:PAD|UNK|CLS|SEP|MASK)\]")
# A word: letters and digits; or any other printable character alone (BERT's ASCII
# punctuation: "_" included)
_WORDS = re.compile(r"[0-9a-z]+|[^0-9a-z\s]")


class QueryPieces:
    """BERT uncased WordPiece for plain ASCII texts (see the module docstring)."""

    def __init__(self, vocab: list[str]):
        self._ids = dict(zip(vocab, range(len(vocab)), strict=True))
        self._unk, self._cls, self._sep = (self._ids["[UNK]"], self._ids["[CLS]"],
                                           self._ids["[SEP]"])

    @classmethod
    def builtin(cls) -> QueryPieces:
        """The built-in tokenizer's (raises OSError when the file cannot be read)."""
        return cls(VOCAB.read_text(encoding="utf-8").split("\n"))

    def encode(self, text: str, max_tokens: int) -> list[int] | None:
        """[CLS], the word pieces of `text` (at most max_tokens - 2), [SEP]; or None when
        the text is not plain ASCII or writes out a special token: the library's case."""
        if not _PLAIN.match(text) or _SPECIAL.search(text):
            return None
        room = max(max_tokens - 2, 0)
        ids: list[int] = []
        for word in _WORDS.findall(text.lower()):
            if len(ids) >= room:
                break
            ids += self._word(word)
        return [self._cls, *ids[:room], self._sep]

    def _word(self, word: str) -> list[int]:
        if len(word) > MAX_WORD:
            return [self._unk]
        pieces, start = [], 0
        while start < len(word):
            for end in range(len(word), start, -1):
                piece = self._ids.get(word[start:end] if not start else "##" + word[start:end])
                if piece is not None:
                    pieces.append(piece)
                    start = end
                    break
            else:  # no piece fits here: the whole word is unknown
                return [self._unk]
        return pieces
