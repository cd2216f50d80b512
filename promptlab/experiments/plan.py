"""Cells: what a run will do. One cell = one item × one variant × one repeat index.

`paired`: every item goes through every active variant (the comparison pairs them by
item). `split`: every item goes through the one variant its unit is assigned (like live
traffic). Cells are ordered item by item, so a run stopped early stays balanced.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from promptlab.errors import ExperimentError, PromptlabError, TemplateError
from promptlab.experiments._validate import display_path
from promptlab.experiments.dataset import Item
from promptlab.experiments.spec import Experiment
from promptlab.template import Rendered


@dataclass(frozen=True)
class Cell:
    """One call to make. `rendered` is already stamped with experiment, variant, unit_id.

    `error` is set when the prompt could not be rendered for this item within the
    template's limits (time, output size, recursion, memory): the runner logs the cell as
    an error without calling anything, and goes on.
    """

    index: int
    item: Item
    variant: str
    repeat: int
    rendered: Rendered
    error: str | None = None

    @property
    def key(self) -> tuple[str, str, int]:
        return (self.variant, self.item.id, self.repeat)


def plan_cells(experiment: Experiment, items: list[Item]) -> list[Cell]:
    """Every cell of the run, rendered. A mistake in the dataset (a missing variable)
    stops the run before any call, naming the dataset line; a render that hits the
    template's limits becomes an error cell.

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
            error = None
            try:
                rendered = prompts[variant].render(item)
            except TemplateError as exc:  # a limit (time, output size), not the item's fault
                rendered, error = prompts[variant].unrendered(item), str(exc)
            except RecursionError:
                rendered = prompts[variant].unrendered(item)
                error = f"{prompts[variant].path}: rendering recursed too deeply"
            except MemoryError:
                rendered = prompts[variant].unrendered(item)
                error = f"{prompts[variant].path}: rendering ran out of memory"
            except PromptlabError as exc:
                raise ExperimentError(f"{shown}:{item.line}: item {item.id!r} cannot be "
                                      f"rendered with {variant}: {exc}") from exc
            if error is not None:
                error = f"item {item.id!r} cannot be rendered with {variant}: {error}"
            for r in range(repeat):
                cells.append(Cell(len(cells), item, variant, r, rendered, error))
    return cells


class _Renderer:
    """A variant's template, model, config and stamp, looked up once for the whole run."""

    def __init__(self, prompt: Any, experiment: str, variant: str):
        self.template = prompt.template
        self.limits = prompt.registry.limits  # the project's render limits
        self.path = display_path(self.template.path)
        self.stamp = {**prompt.stamp(), "experiment": experiment, "variant": variant}

    def render(self, item: Item) -> Rendered:
        return self._rendered(self.template.render_messages(item.vars, self.limits), item)

    def unrendered(self, item: Item) -> Rendered:
        """The stamp and config without messages: what an error cell logs."""
        return self._rendered([], item)

    def _rendered(self, messages: list[dict[str, str]], item: Item) -> Rendered:
        front = self.template.front
        return Rendered(messages=messages, model=front.model, config=dict(front.config),
                        stamp={**self.stamp, "unit_id": item.unit_id})
