"""Sample ratio mismatch: units per variant against the experiment's traffic weights."""

from __future__ import annotations

from typing import TYPE_CHECKING

from promptlab.comparison._numbers import fmt_p

if TYPE_CHECKING:
    from promptlab.comparison._model import PairComparison
    from promptlab.comparison._resolve import Target


def check_srm(target: Target, pairs: list[PairComparison]) -> None:
    """χ² of units per variant against the experiment's weights (split traffic only);
    sets `pair.srm` and warns on the target when the split is broken."""
    spec = target.spec
    if spec is None or any(p.design == "paired" for p in pairs):
        return
    if not all(arm.column == "variant" and spec.variants.get(arm.name, 0) > 0
               for arm in target.arms):
        return
    from promptlab.stats import srm_test

    units = [pairs[0].units[0], *(p.units[1] for p in pairs)]
    weights = [spec.variants[arm.name] for arm in target.arms]
    res = srm_test(units, weights)
    srm = {"p_value": res.p_value, "flag": res.flag, "observed": res.observed,
           "expected": [round(e, 3) for e in res.expected]}
    if res.reason:
        srm["skipped"] = res.reason
    for pair in pairs:
        pair.srm = srm
    if res.flag:
        target.warnings.append(
            f"sample ratio mismatch: {' / '.join(map(str, res.observed))} units against "
            f"{' / '.join(f'{e:.0f}' for e in res.expected)} expected from the weights "
            f"(p = {fmt_p(res.p_value)}); the split is broken, do not trust these results "
            "until you find why")
