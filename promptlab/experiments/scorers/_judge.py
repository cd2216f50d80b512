"""`llm_judge`: a versioned judge prompt from the registry, run through a provider."""

from __future__ import annotations

from typing import Any

from promptlab.errors import ExperimentError, PromptlabError, ScorerError
from promptlab.experiments.scorers._base import ScoreInput, Scorer, ScorerSpec
from promptlab.experiments.scorers._verdict import parse_verdict


class LlmJudge(Scorer):
    """A judge prompt from the registry (versioned like any prompt), rendered with the
    item's variables plus `output`, `expected` and `input` (the prompt sent), run through
    a provider (`provider = {…}`, default: the experiment's), its answer parsed as a
    number (`parse = "number"`, `scale` divides it), pass/fail (`"pass_fail"`) or either
    (`"auto"`). `threshold` turns a number into pass (≥ threshold) / fail."""

    type = "llm_judge"
    keys = frozenset({"prompt", "provider", "parse", "scale", "threshold"})

    @classmethod
    def validate(cls, spec: ScorerSpec) -> None:
        super().validate(spec)
        if not isinstance(spec.options.get("prompt"), str):
            raise ExperimentError(f"{spec.where}: type 'llm_judge' needs prompt = "
                                  "\"<judge prompt id>\" (a prompt in the registry)")
        if spec.options.get("parse", "auto") not in ("auto", "number", "pass_fail"):
            raise ExperimentError(f"{spec.where}: 'parse' must be \"auto\", \"number\" or "
                                  f"\"pass_fail\", got {spec.options.get('parse')!r}")
        for key in ("scale", "threshold"):
            value = spec.options.get(key)
            if value is not None and (isinstance(value, bool)
                                      or not isinstance(value, int | float)):
                raise ExperimentError(f"{spec.where}: {key!r} must be a number")
        if spec.options.get("scale") == 0:
            raise ExperimentError(f"{spec.where}: 'scale' must not be 0")
        provider = spec.options.get("provider")
        if provider is not None and not isinstance(provider, dict):
            raise ExperimentError(f"{spec.where}: 'provider' must be a table like "
                                  "{type = \"openai\", model = \"gpt-4o\"}")

    def prepare(self) -> None:
        if self.runtime is None or self.runtime.registry is None or not self.runtime.complete:
            raise ScorerError(f"{self.spec.where}: llm_judge needs a prompt registry and a "
                              "provider")
        try:
            self.prompt = self.runtime.registry.get(self.spec.options["prompt"])
            self.prompt.template  # noqa: B018 - parse now so a broken judge prompt fails early
        except PromptlabError as exc:
            raise ScorerError(f"{self.spec.where}: judge prompt: {exc}") from exc
        table = self.spec.options.get("provider")
        self.provider_spec = (self.runtime.make_provider_spec(table, self.spec.where)
                              if table is not None and self.runtime.make_provider_spec
                              else None)
        self.last: dict[str, Any] = {}

    def score(self, inp: ScoreInput) -> bool | float:
        variables = {**inp.context(), "input": inp.prompt}
        rendered = self.prompt.render(variables)
        text = self.runtime.complete(self.provider_spec, rendered)  # type: ignore[union-attr]
        verdict = parse_verdict(text, self.spec.options.get("parse", "auto"),
                                f"judge {self.prompt.id}/{self.prompt.version.name}")
        if not isinstance(verdict, bool):
            scale = self.spec.options.get("scale")
            if scale:
                verdict = verdict / scale
            threshold = self.spec.options.get("threshold")
            if threshold is not None:
                verdict = verdict >= threshold
        return verdict

    @property
    def judge_ref(self) -> str:
        return f"{self.prompt.id}/{self.prompt.version.name}"


