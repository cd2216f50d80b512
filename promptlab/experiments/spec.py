"""Experiment files: `experiments/<name>.toml`, loaded and validated into `Experiment`.

    prompt = "code-review"
    description = "Does v2's checklist find more bugs?"
    [variants]            # version or label -> traffic weight, in this order
    v1 = 50
    v2 = 50
    [dataset]             # path relative to this file; design "paired" or "split"
    path = "data/code-review.jsonl"
    [provider]            # openai | anthropic | command | python | echo | entry point
    type = "openai"
    [[scorers]]
    name = "finds_bug"
    type = "icontains"
    value = "{{ expected }}"
    [metrics]
    primary = "finds_bug"
    guardrails = ["latency_ms", "cost_usd"]
    tolerance = {latency_ms = 0.25}    # v2 may be up to 25% slower
    [run]
    concurrency = 8

Every mistake is reported when the file loads, naming the file and the key (and the
line, for TOML syntax). `Experiment` is also what an app uses to split live traffic:
`experiment.assign(user_id)` and `experiment.render(user_id, **vars)`.
"""

from __future__ import annotations

import math
import re
import threading
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from promptlab.config import Settings, load_settings
from promptlab.errors import ExperimentError, PromptlabError, not_utf8
from promptlab.experiments._validate import (
    check_keys,
    display_path,
    get_bool,
    get_number,
    get_str,
    get_str_list,
    get_table,
    resolve_path,
    suggest,
)
from promptlab.experiments.assign import Splitter
from promptlab.experiments.scorers import OVERALL, ScorerSpec, parse_scorer
from promptlab.providers.base import ProviderSpec
from promptlab.template import Rendered

TOP_KEYS = ("prompt", "description", "salt", "tags", "variants", "dataset", "provider",
            "scorers", "metrics", "run")
DESIGNS = ("paired", "split")
# Metrics every logged call has, besides the scorers' names.
BUILTIN_METRICS = ("latency_ms", "cost_usd", "input_tokens", "output_tokens", "error_rate")
_VARIANT = re.compile(r"^(v(0|[1-9][0-9]*)|[a-z0-9][a-z0-9._-]*)$")
_VERSION = re.compile(r"^v(0|[1-9][0-9]*)$")
# Weights are relative shares: any finite number from 0 (off) to a billion; larger ones
# would only invite overflow when they are summed.
MAX_WEIGHT = 1e9
# Seconds: a day is far beyond any call, and keeps waits within what the OS accepts.
MAX_SECONDS = 86400.0
MAX_CONCURRENCY = 1024


@dataclass(frozen=True)
class DatasetSpec:
    """`[dataset]`: the file (absolute), the design and how often each cell repeats."""

    path: Path | None = None
    design: str = "paired"
    repeat: int = 1


@dataclass(frozen=True)
class Metrics:
    """`[metrics]`: the metric that decides, the ones that must not get worse, and how
    much worse (relative: 0.25 = up to 25 %) each of those may get before it counts."""

    primary: str | None = None
    guardrails: tuple[str, ...] = ()
    tolerance: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class RunSettings:
    """`[run]`: how the runner calls the provider.

    Retries wait `backoff_s * 2**attempt` seconds (capped at `max_backoff_s`, with jitter),
    or what the server's Retry-After says (up to `max_retry_after_s`). The run stops early
    when more than `max_error_rate` of the cells finished so far failed (checked once
    `min_cells_for_error_rate` cells have finished).
    """

    concurrency: int = 4
    max_retries: int = 3
    timeout_s: float = 60.0
    max_error_rate: float = 0.5
    min_cells_for_error_rate: int = 10
    backoff_s: float = 1.0
    max_backoff_s: float = 30.0
    max_retry_after_s: float = 120.0
    cache: bool = True


class Experiment:
    """A loaded experiment file. See the module docstring for the format.

    Attributes other parts rely on: `name`, `path`, `prompt` (prompt id), `description`,
    `variants` (name -> weight, file order), `salt`, `dataset` (DatasetSpec), `provider`
    (ProviderSpec or None), `scorers` (list of ScorerSpec with name, type, direction,
    weight, not_), `metrics` (Metrics), `run` (RunSettings), `tags`, `settings`.
    """

    def __init__(self, *, name: str, path: Path, prompt: str, variants: dict[str, float],
                 description: str | None = None, salt: str | None = None,
                 dataset: DatasetSpec | None = None, provider: ProviderSpec | None = None,
                 scorers: list[ScorerSpec] | None = None, metrics: Metrics | None = None,
                 run: RunSettings | None = None, tags: list[str] | None = None,
                 settings: Settings | None = None):
        self.name = name
        self.path = path
        self.prompt = prompt
        self.description = description
        self.variants = dict(variants)
        self.salt = salt if salt is not None else name
        self.dataset = dataset or DatasetSpec()
        self.provider = provider
        self.scorers = list(scorers or [])
        self.metrics = metrics or Metrics()
        self.run = run or RunSettings()
        self.tags = list(tags or [])
        self._settings = settings
        self._splitter = Splitter(self.variants, self.salt)
        self._prompts: dict[str, Any] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"<Experiment {self.name} {self.prompt} {list(self.variants)}>"

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = load_settings()
        return self._settings

    @property
    def base_dir(self) -> Path:
        """The experiment file's folder: relative paths inside the file start here."""
        return self.path.parent

    @property
    def active_variants(self) -> list[str]:
        """Variants with a weight > 0, in file order (a weight of 0 switches one off)."""
        return list(self._splitter.names)

    @property
    def shares(self) -> dict[str, float]:
        """Each variant's configured share of traffic (weights normalised to sum to 1)."""
        total = sum(self.variants.values())
        return {name: weight / total for name, weight in self.variants.items()}

    # -- live traffic ----------------------------------------------------------------------

    def assign(self, unit: object) -> str:
        """The variant for `unit` (a user id, session id, …): sticky, stateless, and the
        same in every process — `promptlab experiment assign NAME UNIT` agrees.

        An empty unit (None, or a string of only spaces) is refused: every such request
        would land in one variant, which is an unset variable, not a user."""
        if unit is None or (isinstance(unit, str) and not unit.strip()):
            raise ExperimentError(f"experiment {self.name!r}: the unit to assign is empty "
                                  f"({unit!r}); give a user id, session id or other id that "
                                  "stays the same for one user")
        if not_utf8(str(unit)):
            raise ExperimentError(f"experiment {self.name!r}: the unit {unit!r} is not valid "
                                  "UTF-8 text")
        return self._splitter.assign(unit)

    def render(self, unit: object, variables: dict[str, Any] | None = None, /,
               **kwargs: Any) -> Rendered:
        """Render the prompt version assigned to `unit`. The stamp also carries
        `experiment`, `variant` and `unit_id`, so `logger.call(rendered)` logs them."""
        variant = self.assign(unit)
        rendered = self.prompt_for(variant).render({**(variables or {}), **kwargs})
        return rendered.with_stamp(experiment=self.name, variant=variant, unit_id=str(unit))

    def prompt_for(self, variant: str) -> Any:
        """The registry Prompt a variant names (`v2` is a version, anything else a label).

        Resolved on first use and kept; labels therefore stay put for this object's life.
        """
        prompt = self._prompts.get(variant)
        if prompt is None:
            if variant not in self.variants:
                raise ExperimentError(f"{display_path(self.path)}: no variant {variant!r}"
                                      f"{suggest(variant, self.variants)}")
            from promptlab.history import Registry  # stamps git provenance
            from promptlab.template import RenderLimits

            registry = Registry(self.settings.prompts_dir,
                                limits=RenderLimits.from_settings(self.settings))
            try:
                if _VERSION.match(variant):
                    prompt = registry.get(self.prompt, version=variant)
                else:
                    prompt = registry.get(self.prompt, label=variant)
            except PromptlabError as exc:
                raise ExperimentError(f"{display_path(self.path)} [variants] {variant}: "
                                      f"{exc}") from exc
            with self._lock:
                self._prompts[variant] = prompt
        return prompt

    # -- runs ------------------------------------------------------------------------------

    def load_items(self, limit: int | None = None) -> list[Any]:
        """The dataset's rows (the first `limit` of them)."""
        from promptlab.experiments.dataset import load_dataset

        if self.dataset.path is None:
            raise ExperimentError(f"{display_path(self.path)}: no [dataset] path; add one to "
                                  "run this experiment")
        items = load_dataset(self.dataset.path)
        return items[:limit] if limit is not None else items

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready summary (for `experiment list --json`)."""
        provider = None
        if self.provider is not None:
            provider = {"type": self.provider.type, "model": self.provider.model}
        return {
            "name": self.name, "path": str(self.path), "prompt": self.prompt,
            "description": self.description, "variants": self.variants, "salt": self.salt,
            "dataset": {"path": str(self.dataset.path) if self.dataset.path else None,
                        "design": self.dataset.design, "repeat": self.dataset.repeat},
            "provider": provider,
            "scorers": [{"name": s.name, "type": s.type, "direction": s.direction,
                         "weight": s.weight, "not_": s.not_} for s in self.scorers],
            "metrics": {"primary": self.metrics.primary,
                        "guardrails": list(self.metrics.guardrails),
                        "tolerance": dict(self.metrics.tolerance)},
        }


# -- loading ------------------------------------------------------------------------------


def experiment_path(name_or_path: str | Path, settings: Settings) -> Path:
    """`name` -> `<experiments_dir>/<name>.toml`; a path (with / or .toml) is used as is."""
    text = str(name_or_path)
    if text.endswith(".toml") or "/" in text or "\\" in text:
        path = Path(text).expanduser()
        if not path.is_file():
            raise ExperimentError(f"experiment file {text} not found")
        return path.absolute()
    if not re.match(r"^[A-Za-z0-9][A-Za-z0-9._-]*$", text):
        raise ExperimentError(f"invalid experiment name {text!r}: use letters, digits, '.', "
                              "'_', '-'")
    path = settings.experiments_dir / f"{text}.toml"
    if not path.is_file():
        known = list_experiments(settings)
        where = display_path(settings.experiments_dir)
        hint = suggest(text, known) if known else f"; {where}/ has no experiment files"
        raise ExperimentError(f"no experiment {text!r} in {where}/{hint}")
    return path


def list_experiments(settings: Settings) -> list[str]:
    """Names of the experiment files in the experiments folder, sorted."""
    folder = settings.experiments_dir
    if not folder.is_dir():
        return []
    return sorted(p.stem for p in folder.glob("*.toml") if p.is_file())


def load_experiment(name_or_path: str | Path, settings: Settings | None = None) -> Experiment:
    """Load and validate an experiment by name (`code-review-ab`) or by path."""
    settings = settings or load_settings()
    path = experiment_path(name_or_path, settings)
    return parse_experiment(path, settings)


def parse_experiment(path: Path, settings: Settings | None = None) -> Experiment:
    file = display_path(path)
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        m = re.search(r"\(at line (\d+), column (\d+)\)$", message)
        if m:
            message = message[: m.start()].strip()
            raise ExperimentError(f"{file}:{m.group(1)}: invalid TOML: {message} "
                                  f"(column {m.group(2)})") from exc
        raise ExperimentError(f"{file}: invalid TOML: {message}") from exc
    except OSError as exc:
        raise ExperimentError(f"{file}: cannot read: {exc.strerror}") from exc
    except RecursionError:
        raise ExperimentError(f"{file}: invalid TOML: nested too deeply to read") from None
    except (ValueError, UnicodeDecodeError) as exc:  # e.g. an integer of 5,000 digits
        raise ExperimentError(f"{file}: invalid TOML: {exc}") from None
    check_keys(data, TOP_KEYS, file)
    prompt = get_str(data, "prompt", file, required=True)
    from promptlab.registry import validate_id

    try:
        validate_id(prompt)  # type: ignore[arg-type]
    except Exception as exc:
        raise ExperimentError(f"{file}: 'prompt': {exc}") from exc
    description = get_str(data, "description", file)
    salt = get_str(data, "salt", file)
    tags = get_str_list(data, "tags", file)
    variants = _variants(data, file)
    dataset = _dataset(get_table(data, "dataset", file), path.parent, f"{file} [dataset]")
    provider = _provider(data, path.parent, file)
    scorers = _scorers(data, file)
    metrics = _metrics(get_table(data, "metrics", file), scorers, f"{file} [metrics]")
    run = _run(get_table(data, "run", file), f"{file} [run]")
    return Experiment(name=path.stem, path=path.absolute(), prompt=prompt,  # type: ignore[arg-type]
                      variants=variants, description=description, salt=salt, dataset=dataset,
                      provider=provider, scorers=scorers, metrics=metrics, run=run, tags=tags,
                      settings=settings)


def _variants(data: dict[str, Any], file: str) -> dict[str, float]:
    where = f"{file} [variants]"
    table = data.get("variants")
    if table is None:
        raise ExperimentError(f"{file}: missing [variants] table (version or label = weight, "
                              "e.g. v1 = 50)")
    if not isinstance(table, dict) or not table:
        raise ExperimentError(f"{where}: list at least one version or label = weight")
    variants: dict[str, float] = {}
    for name in table:
        if not _VARIANT.match(name):
            raise ExperimentError(f"{where}: {name!r} is not a version (v1, v2, …) or a label "
                                  "name")
        variants[name] = float(get_number(table, name, where, None, minimum=0,
                                          maximum=MAX_WEIGHT))
    if not any(w > 0 for w in variants.values()):
        raise ExperimentError(f"{where}: every weight is 0; give at least one variant traffic")
    return variants


def _dataset(table: dict[str, Any], base: Path, where: str) -> DatasetSpec:
    check_keys(table, ("path", "design", "repeat"), where)
    path = get_str(table, "path", where)
    design = get_str(table, "design", where, default="paired")
    if design not in DESIGNS:
        raise ExperimentError(f"{where}: 'design' must be \"paired\" (every item through every "
                              f"variant) or \"split\" (one variant per item), got {design!r}")
    repeat = get_number(table, "repeat", where, 1, minimum=1, maximum=10_000, integer=True)
    return DatasetSpec(path=resolve_path(base, path).absolute() if path else None,
                       design=design, repeat=repeat)  # type: ignore[arg-type]


def _provider(data: dict[str, Any], base: Path, file: str) -> ProviderSpec | None:
    if "provider" not in data:
        return None
    where = f"{file} [provider]"
    table = get_table(data, "provider", file)
    spec = provider_spec(table, base, where)
    from promptlab.providers import validate_provider

    validate_provider(spec)
    return spec


def provider_spec(table: dict[str, Any], base: Path, where: str) -> ProviderSpec:
    """A ProviderSpec from a `[provider]`-shaped table (also judges' inline tables)."""
    type_name = get_str(table, "type", where, required=True)
    model = get_str(table, "model", where)
    params = table.get("params", {})
    if not isinstance(params, dict):
        raise ExperimentError(f"{where}: 'params' must be a table like {{temperature = 0.2}}")
    options = {k: v for k, v in table.items() if k not in ("type", "model", "params")}
    return ProviderSpec(type=type_name, model=model, params=dict(params),  # type: ignore[arg-type]
                        options=options, base_dir=base, where=where)


def _scorers(data: dict[str, Any], file: str) -> list[ScorerSpec]:
    tables = data.get("scorers", [])
    if not isinstance(tables, list):
        raise ExperimentError(f"{file}: 'scorers' must be an array of tables ([[scorers]])")
    specs: list[ScorerSpec] = []
    for index, table in enumerate(tables, start=1):
        spec = parse_scorer(table, index, file)
        if spec.name in BUILTIN_METRICS:  # compare could never tell the two apart
            raise ExperimentError(f"{file}: the scorer name {spec.name!r} is a built-in metric "
                                  f"({', '.join(BUILTIN_METRICS)}); give the scorer another "
                                  "name")
        if any(s.name == spec.name for s in specs):
            raise ExperimentError(f"{file}: two scorers are named {spec.name!r}; give each a "
                                  "distinct name")
        specs.append(spec)
    if len(specs) > 1 and any(s.name == OVERALL for s in specs):
        raise ExperimentError(f"{file}: the scorer name {OVERALL!r} is reserved for the "
                              "weighted mean of several scorers; rename it")
    return specs


def _metrics(table: dict[str, Any], scorers: list[ScorerSpec], where: str) -> Metrics:
    check_keys(table, ("primary", "guardrails", "tolerance"), where)
    known = [s.name for s in scorers] + list(BUILTIN_METRICS)
    if len(scorers) > 1:
        known.append(OVERALL)
    primary = get_str(table, "primary", where)
    if primary is None and scorers and table:  # no table at all: every metric is compared
        primary = scorers[0].name
    guardrails = get_str_list(table, "guardrails", where)
    # Without scorers the metrics may be feedback scores logged by an app: anything goes.
    if scorers:
        for key, name in [("primary", primary), *(("guardrails", g) for g in guardrails)]:
            if name is not None and name not in known:
                raise ExperimentError(f"{where}: {key} {name!r} is not a scorer or a built-in "
                                      f"metric{suggest(name, known)}")
    tolerance = _tolerance(table, [*([primary] if primary else []), *guardrails], where)
    return Metrics(primary=primary, guardrails=tuple(guardrails), tolerance=tolerance)


def _tolerance(table: dict[str, Any], watched: list[str], where: str) -> dict[str, float]:
    """`tolerance = {latency_ms = 0.25}`: how much worse (relative) the primary metric or a
    guardrail may get before compare calls it worse; each a finite number ≥ 0."""
    value = table.get("tolerance", {})
    if not isinstance(value, dict):
        raise ExperimentError(f"{where}: 'tolerance' must be a table like "
                              f"{{latency_ms = 0.25}} (up to 25% worse), got {value!r}")
    out: dict[str, float] = {}
    for name, margin in value.items():
        if name not in watched:
            hint = suggest(name, watched) or "; add it to guardrails first"
            raise ExperimentError(f"{where}: tolerance {name!r} is not the primary metric or "
                                  f"a guardrail{hint}")
        if (isinstance(margin, bool) or not isinstance(margin, int | float)
                or not -1 < margin < 1e9 or not math.isfinite(margin) or margin < 0):
            raise ExperimentError(f"{where}: tolerance {name!r} must be a number ≥ 0 (a "
                                  f"fraction: 0.25 = up to 25% worse), got {margin!r}")
        out[name] = float(margin)
    return out


def _run(table: dict[str, Any], where: str) -> RunSettings:
    check_keys(table, RunSettings.__dataclass_fields__, where)
    d = RunSettings()
    return RunSettings(
        concurrency=get_number(table, "concurrency", where, d.concurrency, minimum=1,
                               maximum=MAX_CONCURRENCY, integer=True),
        max_retries=get_number(table, "max_retries", where, d.max_retries, minimum=0,
                               maximum=100, integer=True),
        timeout_s=float(get_number(table, "timeout_s", where, d.timeout_s, minimum=0,
                                   exclusive_min=True, maximum=MAX_SECONDS)),
        max_error_rate=float(get_number(table, "max_error_rate", where, d.max_error_rate,
                                        minimum=0, maximum=1)),
        min_cells_for_error_rate=get_number(table, "min_cells_for_error_rate", where,
                                            d.min_cells_for_error_rate, minimum=1,
                                            maximum=10**9, integer=True),
        backoff_s=float(get_number(table, "backoff_s", where, d.backoff_s, minimum=0,
                                   maximum=MAX_SECONDS)),
        max_backoff_s=float(get_number(table, "max_backoff_s", where, d.max_backoff_s,
                                       minimum=0, maximum=MAX_SECONDS)),
        max_retry_after_s=float(get_number(table, "max_retry_after_s", where,
                                           d.max_retry_after_s, minimum=0,
                                           maximum=MAX_SECONDS)),
        cache=get_bool(table, "cache", where, d.cache),
    )
