"""A STAND-IN MODEL for the example experiment: not an LLM, a keyword counter.

It lets `promptlab experiment run sentiment` work offline with no API key. It answers
"positive" or "negative" by counting cue words in the review, and answers "neutral" for
reviews without a clear lean, but only when the prompt mentions "neutral" (as a real
model follows the labels its prompt offers). Replace it with a real model in the
experiment's [provider] table.
"""

from __future__ import annotations

import re

POSITIVE = {"love", "great", "excellent", "perfect", "fast", "friendly", "recommend", "works"}
NEGATIVE = {"broke", "broken", "slow", "refund", "terrible", "rude", "late", "never", "worst"}


def classify(user: str) -> dict:
    review = user.rsplit("\n\n", 1)[-1].lower()
    words = re.findall(r"[a-z]+", review)
    lean = sum(w in POSITIVE for w in words) - sum(w in NEGATIVE for w in words)
    answer = "positive" if lean >= 0 else "negative"
    if lean == 0 and "neutral" in user.lower():
        answer = "neutral"
    # Logged as its own model (no price: its cost shows as unknown), with rough token counts.
    return {"output": answer, "model": "standin-sentiment",
            "usage": {"input_tokens": len(user) // 4, "output_tokens": 1}}
