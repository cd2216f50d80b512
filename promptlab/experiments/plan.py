"""Cells: what a run will do. One cell = one item × one variant × one repeat index.

`paired`: every item goes through every active variant (the comparison pairs them by
item). `split`: every item goes through the one variant its unit is assigned (like live
traffic). Cells are ordered item by item, so a run stopped early stays balanced.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from promptlab.errors import ExperimentError, PromptlabError
from promptlab.experiments._validate import display_path
from promptlab.experiments.dataset import Item
from promptlab.experiments.spec import Experiment
from promptlab.template import Rendered


@dataclass(frozen=True)
class Cell:
    """One call to make. `rendered` is already stamped with experiment, variant, unit_id."""

    index: int
    item: Item
    variant: str
    repeat: int
    rendered: Rendered

    @property
    def key(self) -> tuple[str, str, int]:
        return (self.variant, self.item.id, self.repeat)


def plan_cells(experiment: Experiment, items: list[Item]) -> list[Cell]:
    """Every cell of the run, rendered (a render error names the dataset line).

    Each variant's template and stamp are resolved once: a run uses one prompt text per
    variant from start to finish, even if a label moves meanwhile.
    """
    variants = experiment.active_variants
    prompts = {v: _Renderer(experiment.prompt_for(v), experiment.name, v) for v in variants}
    repeat = experiment.dataset.repeat
    shown = display_path(experiment.dataset.path) if experiment.dataset.path else "dataset"
    cells: list[Cell] = []
    for item in items:
        chosen = variants if experiment.dataset.design == "paired" else [
            experiment.assign(item.unit_id)]
        for variant in chosen:
            try:
                rendered = prompts[variant].render(item)
            except PromptlabError as exc:
                raise ExperimentError(f"{shown}:{item.line}: item {item.id!r} cannot be "
                                      f"rendered with {variant}: {exc}") from exc
            for r in range(repeat):
                cells.append(Cell(len(cells), item, variant, r, rendered))
    return cells


class _Renderer:
    """A variant's template, model, config and stamp, looked up once for the whole run."""

    def __init__(self, prompt: Any, experiment: str, variant: str):
        self.template = prompt.template
        self.stamp = {**prompt.stamp(), "experiment": experiment, "variant": variant}

    def render(self, item: Item) -> Rendered:
        front = self.template.front
        return Rendered(messages=self.template.render_messages(item.vars), model=front.model,
                        config=dict(front.config),
                        stamp={**self.stamp, "unit_id": item.unit_id})
