"""What a file name in a prompt folder stands for: a version (`v2.txt`) or a label."""

from __future__ import annotations

from promptlab.registry import VERSION_EXTS, is_version_name
from promptlab.registry import _label_name as label_of

__all__ = ["label_of", "version_of"]


def version_of(filename: str) -> str | None:
    """`v2.txt` -> `v2`; None for anything that is not a version file name."""
    stem, dot, ext = filename.partition(".")
    return stem if dot and f".{ext}" in VERSION_EXTS and is_version_name(stem) else None


def version_named(text: str) -> str | None:
    """The version a label's text names (`v2` or `v2.txt`), or None."""
    return text if is_version_name(text) else version_of(text)
