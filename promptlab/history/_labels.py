"""What a label file said at a commit, read from its blob (symlink target or plain text)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from promptlab.history._gitlog import SYMLINK_MODE
from promptlab.history._names import label_of, version_named

if TYPE_CHECKING:  # pragma: no cover
    from git import Repo


class Blobs:
    """Reads small blobs (label targets) through GitPython's persistent cat-file."""

    def __init__(self, repo: Repo):
        self.repo = repo
        self.cache: dict[str, bytes] = {}

    def read(self, sha: str | None, limit: int = 4096) -> bytes | None:
        if sha is None:
            return None
        if sha not in self.cache:
            stream = self.repo.odb.stream(bytes.fromhex(sha))
            self.cache[sha] = stream.read() if stream.size <= limit else b""
        return self.cache[sha]


def label_target(blob: str | None, blobs: Blobs) -> str | None:
    """What a label file said at one commit: a version name, or the raw target in quotes."""
    data = blobs.read(blob)
    if data is None:
        return None
    text = data.decode("utf-8", "replace").strip()
    return version_named(text[2:] if text.startswith("./") else text) or repr(text)


def is_label(name: str, mode: str, blob: str | None, blobs: Blobs) -> bool:
    if mode == SYMLINK_MODE:
        return label_of(name) is not None
    if "." in name or label_of(name) is None or blob is None:
        return False
    data = blobs.read(blob, limit=64) or b""
    return version_named(data.decode("utf-8", "replace").strip()) is not None
