"""Test data for the index tests: entries written straight to daily JSONL files."""

from __future__ import annotations

import itertools
import os
from pathlib import Path
from typing import Any

import orjson

_counter = itertools.count(1)
CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def make_id(ms: int, n: int | None = None) -> str:
    """A valid ULID at `ms` (epoch milliseconds); `n` makes it unique and ordered."""
    n = next(_counter) if n is None else n
    value = (ms << 80) | (n << 40) | int.from_bytes(os.urandom(5), "big")
    return "".join(CROCKFORD[(value >> (5 * i)) & 31] for i in range(25, -1, -1))


def stamp(day: str, seconds: int = 0) -> str:
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{day}T{h:02d}:{m:02d}:{s:02d}.000000Z"


def entry(day: str = "2026-01-05", seconds: int = 0, **fields: Any) -> dict[str, Any]:
    """An llm entry of `day` at `seconds` after midnight, with `fields` on top."""
    from datetime import UTC, datetime

    ts = datetime.fromisoformat(stamp(day, seconds))
    base: dict[str, Any] = {
        "v": 1,
        "id": make_id(int(ts.replace(tzinfo=UTC).timestamp() * 1000)),
        "timestamp": stamp(day, seconds),
        "kind": "llm",
        "model": "gpt-4o-mini",
        "provider": "openai",
        "system_prompt": "You are a helpful assistant.",
        "user_message": "Say hello",
        "assistant_response": "Hello there",
        "input_tokens": 10,
        "output_tokens": 5,
        "latency_ms": 120.5,
        "status": "ok",
    }
    base.update(fields)
    return {k: v for k, v in base.items() if v is not None}


def random_unit(rng: Any, fields: dict[str, Any]) -> dict[str, Any]:
    """Half the calls get a unit id (13 users), a fifth an item id (6 items), the rest
    neither (each its own randomisation unit): the mix the roll-up tests generate."""
    kind = rng.random()
    if kind < 0.5:
        fields["unit_id"] = f"user-{rng.randint(0, 12)}"
    elif kind < 0.7:
        fields["item_id"] = f"item-{rng.randint(0, 5)}"
    return fields


def line(e: dict[str, Any]) -> bytes:
    return orjson.dumps(e) + b"\n"


def append(log_dir: Path, *entries: dict[str, Any], day: str | None = None,
           raw: bytes = b"") -> Path:
    """Append entries (to the file of their own day, or `day`) and raw bytes after them."""
    log_dir.mkdir(parents=True, exist_ok=True)
    day = day or (entries[0]["timestamp"][:10] if entries else "2026-01-05")
    path = log_dir / f"{day}.jsonl"
    with open(path, "ab") as fh:
        for e in entries:
            fh.write(line(e))
        fh.write(raw)
    return path
