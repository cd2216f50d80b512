"""Experiments: experiment files, sticky traffic assignment, scorers and the runner.

    from promptlab import load_experiment
    experiment = load_experiment("code-review-ab")
    variant = experiment.assign(user_id)            # sticky, stateless
    rendered = experiment.render(user_id, code=src) # stamped with experiment/variant/unit

`promptlab experiment run NAME` sends the dataset through every variant (see runner.py).
"""

from __future__ import annotations

from promptlab.experiments.spec import (
    DatasetSpec,
    Experiment,
    Metrics,
    RunSettings,
    list_experiments,
    load_experiment,
)

__all__ = ["DatasetSpec", "Experiment", "Metrics", "RunSettings", "list_experiments",
           "load_experiment"]
