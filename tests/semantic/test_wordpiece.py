"""A query's word pieces without the tokenizers library (promptlab.semantic.wordpiece): the
same ids as the library, id for id, on every text it takes; every other text left to the
library; and a search's query encoded without importing it."""

from __future__ import annotations

import json
import random
import string
import subprocess
import sys

import pytest

from promptlab.semantic import LocalEmbedder, entry_text
from promptlab.semantic.embedders import TOKENIZER
from promptlab.semantic.wordpiece import VOCAB, QueryPieces

from .retrieval_set import NEEDLES, build_log


@pytest.fixture(scope="module")
def pieces() -> QueryPieces:
    return QueryPieces.builtin()


def _library(max_tokens: int):  # type: ignore[no-untyped-def]
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(TOKENIZER))
    tokenizer.no_padding()
    tokenizer.enable_truncation(max_tokens)
    return tokenizer


# Texts written to hit each rule: case, punctuation of every kind (with "_" and "#"), tabs and
# line breaks, digits inside words, a piece that must be split ("##" continuations), a word
# with no piece that fits, words of 100 and 101 characters, "##" typed by the user, special
# tokens' names in lower case (not special), empty and blank texts.
RULES = [
    "customer wants their money back", "Customer WANTS their MoNeY back!!",
    "error E4821 on export_csv() -- see https://example.com/a?b=1&c=2#frag",
    "tab\there\nnew line\r\ncarriage   spaces", "don't won't y'all's", "snake_case and kebab-case",
    "supercalifragilisticexpialidocious unbelievably", "qzxqzxqzx", "a" * 100, "a" * 101,
    "##ing ## #hashtag", "[mask] [cls] and [ SEP ]", "[PADDING] [UNKNOWN]", "", " ", "\t\n",
    "~`!@#$%^&*()-_=+[]{}\\|;:'\",.<>/?", "v1.2.3-rc4 x86_64 0x1F 3.14159 1e-9",
    "GPT-4o gpt4 GPT4 claude-3.5-sonnet", "the " * 200,
]


def test_the_vocabulary_is_the_tokenizer_files() -> None:
    vocab = json.loads(TOKENIZER.read_text(encoding="utf-8"))["model"]["vocab"]
    assert VOCAB.read_text(encoding="utf-8").split("\n") == sorted(vocab, key=vocab.__getitem__)


def test_same_ids_as_the_library(pieces: QueryPieces) -> None:
    """The retrieval set's calls (as embedded) and queries, the rule texts, and 20,000 random
    texts of printable ASCII (half of them with some non-ASCII, which must be declined)."""
    entries, queries = build_log(300, seed=3)
    rng = random.Random(5)
    texts = [entry_text(e, 512) for e in entries] + [q for q, _ in queries] + RULES
    plain = string.printable.replace("\x0b", "").replace("\x0c", "")  # (both declined)
    for alphabet in (plain, string.printable + "éü中—’\x00\x7f"):
        texts += ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 80)))
                  for _ in range(10_000)]
    library = _library(128)
    taken = 0
    for text in texts:
        ids = pieces.encode(text, 128)
        if ids is not None:
            taken += 1
            assert ids == library.encode(text).ids, repr(text)
    assert taken > 10_000  # most of them, so the comparison means something


@pytest.mark.parametrize("max_tokens", [2, 3, 8, 128])
def test_cut_as_the_library_cuts(pieces: QueryPieces, max_tokens: int) -> None:
    library = _library(max_tokens)
    for text in ("refund " * 300, "unbelievably " * 50, "a, b. c! " * 40):
        ids = pieces.encode(text, max_tokens)
        assert ids == library.encode(text).ids
        assert len(ids) == max_tokens  # type: ignore[arg-type]


@pytest.mark.parametrize("text", [
    "café", "naïve résumé", "日本語", "smart ’quotes’", "em — dash", "nul\x00byte",
    "vertical\x0btab", "del\x7f", "bell\x07", "[MASK] is special", "say [CLS]", "x[SEP]y",
    "[UNK]", "[PAD]",
])
def test_declines_what_only_the_library_knows(pieces: QueryPieces, text: str) -> None:
    assert pieces.encode(text, 128) is None


def test_an_embedder_encodes_queries_without_the_library() -> None:
    """A few ASCII texts never import tokenizers; a non-ASCII one loads it and gets its ids;
    a batch of calls (logs embed) uses the library."""
    code = (
        "import sys\n"
        "from promptlab.semantic import LocalEmbedder\n"
        "e = LocalEmbedder(verify=False)\n"
        "ids = e.encode(['customer wants their money back'])\n"
        "print(ids[0][:3], 'tokenizers' in sys.modules)\n"
        "e.encode(['café au lait'])\n"
        "print('tokenizers' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split("\n")
    assert out[:2] == ["[101, 8013, 4122] False", "True"]

    library = _library(128)
    embedder = LocalEmbedder(verify=False)
    mixed = ["customer wants their money back", "café au lait"]
    assert embedder.encode(mixed) == [library.encode(t).ids for t in mixed]
    batch = [q for q, _, _ in NEEDLES[:10]]
    assert embedder.encode(batch) == [library.encode(t).ids for t in batch]


def test_another_tokenizer_never_takes_this_path(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A tokenizer of the user's own (here: the built-in file under another name, with a
    vocabulary that maps differently) is always the library's."""
    data = json.loads(TOKENIZER.read_text(encoding="utf-8"))
    vocab = data["model"]["vocab"]
    vocab["money"], vocab["back"] = vocab["back"], vocab["money"]
    own = tmp_path / "tokenizer.json"
    own.write_text(json.dumps(data), encoding="utf-8")
    embedder = LocalEmbedder(tokenizer=own, verify=False)
    assert embedder.encode(["money back"]) == [[101, vocab["money"], vocab["back"], 102]]
