"""Sticky traffic assignment: the same unit always gets the same variant, in any process.

The bucket of a unit is `int(sha256(f"{salt}:{unit_id}").hexdigest()[:15], 16) / 16**15`,
a number in [0, 1). Walking the variants' normalised cumulative weights in file order
picks the variant. Nothing is stored and Python's `hash()` is never used, so a service in
another language reproduces the split with ten lines of code.
"""

from __future__ import annotations

import hashlib
import math
from bisect import bisect_right
from collections.abc import Mapping

from promptlab.errors import ExperimentError

_SCALE = 16**15


def bucket(unit_id: object, salt: str) -> float:
    """The unit's position in [0, 1) for this salt."""
    digest = hashlib.sha256(f"{salt}:{unit_id}".encode()).hexdigest()
    return int(digest[:15], 16) / _SCALE


class Splitter:
    """Variants and their weights, prepared once so `assign` is one hash and a bisect."""

    def __init__(self, weights: Mapping[str, float], salt: str):
        for name, weight in weights.items():
            if (isinstance(weight, bool) or not isinstance(weight, int | float)
                    or not math.isfinite(weight) or weight < 0):
                raise ExperimentError(f"variant {name!r}: weight {weight!r} is not a finite "
                                      "number ≥ 0")
        names = [name for name, weight in weights.items() if weight > 0]
        # Normalised by the largest weight first, so that huge weights cannot sum to inf.
        top = max((float(weights[name]) for name in names), default=0.0)
        total = math.fsum(weights[name] / top for name in names) if top else 0.0
        if not names or total <= 0:
            raise ExperimentError("an experiment needs at least one variant with a weight > 0")
        self.salt = salt
        self.names = names
        self.bounds: list[float] = []
        running = 0.0
        for name in names:
            running += weights[name] / top
            self.bounds.append(running / total)
        self.bounds[-1] = 1.0  # guard against rounding: u < 1 always lands somewhere

    def assign(self, unit_id: object) -> str:
        """The variant of `unit_id` (a string or anything whose `str()` identifies it)."""
        u = bucket(unit_id, self.salt)
        return self.names[min(bisect_right(self.bounds, u), len(self.names) - 1)]


def assign(unit_id: object, weights: Mapping[str, float], salt: str) -> str:
    """One-off assignment; prefer `Splitter` (or `Experiment.assign`) in a loop."""
    return Splitter(weights, salt).assign(unit_id)
