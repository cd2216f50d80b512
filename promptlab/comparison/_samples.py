"""Sufficient statistics of one metric: what SQL computes and the tests consume."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from promptlab.stats import Moments


@dataclass
class Agg:
    """Sufficient statistics of one arm's values: n, Σx, Σx², how many are 0 or 1."""

    n: int = 0
    total: float = 0.0
    total_sq: float = 0.0
    n01: int = 0
    n_bool: int | None = None  # booleans among the raw values, when counted
    raw_n: int | None = None  # raw values (entries) behind the n units, when they differ
    has_bool: bool = False  # a boolean was seen (when n_bool was not counted)

    @property
    def raw(self) -> int:
        return self.n if self.raw_n is None else self.raw_n

    @property
    def binary(self) -> bool:
        return self.n > 0 and self.n01 == self.n

    @property
    def moments(self) -> Moments:
        from promptlab.stats import Moments

        return Moments.from_sums(self.n, self.total, self.total_sq)


@dataclass
class PairAgg:
    """Sufficient statistics of matched items (per-item means va, vb)."""

    n: int = 0
    sa: float = 0.0
    sb: float = 0.0
    saa: float = 0.0
    sbb: float = 0.0
    sab: float = 0.0
    n01: int = 0  # items whose va and vb are both 0 or 1
    a_only: int = 0  # va = 1, vb = 0
    b_only: int = 0  # va = 0, vb = 1
    both: int = 0  # va = 1, vb = 1
