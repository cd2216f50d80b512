"""Warnings about the data behind a metric (small, one-sided, constant, mixed samples),
and the de-duplicated list of every warning of a comparison."""

from __future__ import annotations

from typing import TYPE_CHECKING

from promptlab.comparison import _limits
from promptlab.comparison._numbers import fmt_num

if TYPE_CHECKING:
    from promptlab.comparison._model import Comparison
    from promptlab.comparison._samples import Agg


def sample_warnings(name: str, agg_a: Agg, agg_b: Agg, a: str, b: str,
                    unit: str = "units") -> list[str]:
    out: list[str] = []
    na, nb = agg_a.n, agg_b.n
    if na == 0 and nb == 0:
        out.append(f"no values for `{name}` in either version")
        return out
    if na == 0 or nb == 0:
        has, lacks = (b, a) if na == 0 else (a, b)
        out.append(f"`{name}` was logged only for {has}, not for {lacks}")
        return out
    if min(na, nb) < 2:
        out.append(f"not enough data: {a} has {na} and {b} has {nb} {unit} with `{name}` "
                   "(a test needs 2 or more on each side)")
    elif min(na, nb) < _limits.SMALL_SAMPLE:
        out.append(f"small sample ({a} n={na}, {b} n={nb}): the verdict is fragile")
    ma, mb = agg_a.moments, agg_b.moments
    if (na >= 2 and nb >= 2 and ma.var == 0 and mb.var == 0 and ma.mean == mb.mean
            and not (name == "error_rate" and ma.mean == 0)):  # no errors: nothing to say
        out.append(f"every `{name}` value is {fmt_num(ma.mean)} in both versions")
    if all(agg.n_bool is not None for agg in (agg_a, agg_b)):
        bools = (agg_a.n_bool or 0) + (agg_b.n_bool or 0)
        raw = agg_a.raw + agg_b.raw
        if 0 < bools < raw:
            out.append(f"`{name}` mixes booleans and numbers ({bools} booleans, {raw - bools} "
                       "numbers); booleans count as 0 and 1")
    elif agg_a.has_bool or agg_b.has_bool:
        out.append(f"`{name}` mixes booleans and numbers; booleans count as 0 and 1")
    return out


def all_warnings(cmp: Comparison) -> list[str]:
    """Every warning of a comparison once; a metric's warning is prefixed by its name,
    unless several metrics share it word for word."""
    out = list(cmp.warnings)
    for pair in cmp.pairs:
        prefix = f"{pair.b}: " if len(cmp.pairs) > 1 else ""
        out.extend(prefix + w for w in pair.warnings)
        seen: dict[str, list[str]] = {}
        for m in pair.metrics:
            for w in m.warnings:
                seen.setdefault(w, []).append(m.name)
        for w, names in seen.items():
            out.append(prefix + (w if len(names) > 1 else f"{names[0]}: {w}"))
    return list(dict.fromkeys(out))
