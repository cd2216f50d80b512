"""What to compare: the prompt, the experiment and the arms that the user's version
names (versions, labels, experiment variants) match in the index — or an error that
lists what is logged instead."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from promptlab.comparison._scope import Arm
from promptlab.errors import CompareError

if TYPE_CHECKING:
    from promptlab.comparison._reader import Reader
    from promptlab.config import Settings


@dataclass
class Target:
    prompt: str | None
    experiment: str | None
    arms: list[Arm]
    spec: Any = None  # promptlab.experiments.Experiment, when its file was read
    warnings: list[str] = field(default_factory=list)


class Resolver:
    """Turns `compare`'s arguments into a `Target` by asking the index."""

    def __init__(self, reader: Reader, settings: Settings, where_dir: str):
        self.reader = reader
        self.settings = settings
        self.where_dir = where_dir

    def resolve(self, versions: list[str], prompt: str | None,
                experiment: str | None) -> Target:
        if experiment:
            return self._experiment(versions, prompt, experiment, explicit=True)
        return self._versions(versions, prompt)

    def _experiment(self, versions: list[str], prompt: str | None, experiment: str,
                    explicit: bool) -> Target:
        rows = self.reader.all(
            "SELECT variant, count(*) FROM entries WHERE experiment = ? GROUP BY variant",
            (experiment,))
        variants = {v: n for v, n in rows if v is not None}
        if not rows:
            known = [r[0] for r in self.reader.all(
                "SELECT DISTINCT experiment FROM rollup WHERE experiment != '' ORDER BY 1")]
            hint = (f"experiments logged: {', '.join(known)}" if known else
                    f"run it first: promptlab experiment run {experiment}")
            raise CompareError(f"no entries for experiment {experiment!r} in "
                               f"{self.where_dir}; {hint}")
        prompt_rows = self.reader.all(
            "SELECT prompt_id, prompt_version, sum(calls) FROM rollup WHERE experiment = ? "
            "GROUP BY 1, 2", (experiment,))
        prompts = sorted({p for p, _, _ in prompt_rows if p})
        spec, warnings = self._load_spec(experiment, explicit)
        if prompt is not None:
            if prompt not in prompts:
                raise CompareError(f"experiment {experiment!r} has no entries for prompt "
                                   f"{prompt!r}; its prompts: {', '.join(prompts) or 'none'}")
        elif len(prompts) == 1:
            prompt = prompts[0]
        elif spec is not None and spec.prompt in prompts:
            prompt = spec.prompt
        elif len(prompts) > 1:
            raise CompareError(f"experiment {experiment!r} logged several prompts "
                               f"({', '.join(prompts)}); choose one with --prompt ID")
        if not versions:
            if spec is not None:
                versions = [v for v in spec.active_variants if v in variants]
            else:
                versions = sorted(variants)
            if len(versions) < 2:
                raise CompareError(f"experiment {experiment!r} has entries for "
                                   f"{len(versions)} variant(s) only "
                                   f"({', '.join(versions) or 'none'}); nothing to compare")
        logged_versions = {v for p, v, _ in prompt_rows if v and (prompt is None or p == prompt)}
        arms = []
        for name in versions:
            if name in variants:
                arms.append(Arm(name, "variant"))
            elif name in logged_versions:
                arms.append(Arm(name, "prompt_version"))
            else:
                shown = ", ".join(f"{v} ({n} calls)" for v, n in sorted(variants.items()))
                raise CompareError(f"no entries for {name} in experiment {experiment!r} "
                                   f"(variants logged: {shown or 'none'})")
        return Target(prompt, experiment, arms, spec, warnings)

    def _versions(self, versions: list[str], prompt: str | None) -> Target:
        sql, params = _matching(
            "SELECT prompt_id, prompt_version, experiment, sum(calls) FROM rollup WHERE",
            "prompt_version", versions, "prompt_id", prompt)
        rows = self.reader.all(sql + " GROUP BY 1, 2, 3", params)
        by_prompt: dict[str, dict[str, int]] = {}
        for p, v, _, calls in rows:
            if p:
                by_prompt.setdefault(p, {})
                by_prompt[p][v] = by_prompt[p].get(v, 0) + int(calls)
        labels = self._label_matches(versions, prompt)
        for p, found in labels.items():
            for v in found:
                by_prompt.setdefault(p, {}).setdefault(v, 0)
        if prompt is not None:
            have = by_prompt.get(prompt, {})
            missing = [v for v in versions if v not in have]
            if missing:
                self._explain_missing_for_prompt(prompt, missing)
        else:
            complete = sorted(p for p, have in by_prompt.items()
                              if all(v in have for v in versions))
            if len(complete) > 1:
                listed = "; ".join(
                    f"{p} ({', '.join(f'{v}: {by_prompt[p][v]} calls' for v in versions)})"
                    for p in complete)
                raise CompareError(f"{' and '.join(versions)} are logged for several prompts: "
                                   f"{listed}; choose one with --prompt ID")
            if not complete:
                experiment = self._experiment_with_variants(versions)
                if experiment is not None:
                    return self._experiment(versions, None, experiment, explicit=False)
                self._explain_missing(versions, by_prompt)
            prompt = complete[0]
        logged = {pv for p, pv, _, _ in rows if p == prompt}
        arms = [Arm(v, "prompt_version" if v in logged or v not in labels.get(prompt, ())
                    else "prompt_label") for v in versions]
        target = Target(prompt, None, arms)
        experiments = sorted({e for p, v, e, _ in rows if p == prompt})
        if experiments and all(a.column == "prompt_version" for a in arms):
            if len(experiments) == 1 and experiments[0]:
                return self._experiment(versions, prompt, experiments[0], explicit=False)
            if len(experiments) > 1:
                named = [e for e in experiments if e]
                live = " and live traffic" if "" in experiments else ""
                target.warnings.append(
                    f"these entries come from experiment(s) {', '.join(named)}{live}; they are "
                    "compared together, unpaired; pass --experiment NAME to compare one "
                    "experiment")
        return target

    def _label_matches(self, versions: list[str], prompt: str | None) -> dict[str, set[str]]:
        """Versions given as labels (`production`): prompt id -> the names found as labels."""
        candidates = [v for v in versions if not _looks_like_version(v)]
        if not candidates:
            return {}
        sql, params = _matching(
            "SELECT DISTINCT e.prompt_id, e.prompt_label FROM entries e WHERE e.kind = 'llm' AND",
            "e.prompt_label", candidates, "e.prompt_id", prompt)
        found: dict[str, set[str]] = {}
        for p, label in self.reader.all(sql, params):
            if p:
                found.setdefault(p, set()).add(label)
        return found

    def _experiment_with_variants(self, versions: list[str]) -> str | None:
        sql, params = _matching(
            "SELECT experiment, variant FROM entries WHERE experiment IS NOT NULL AND",
            "variant", versions)
        rows = self.reader.all(sql + " GROUP BY 1, 2", params)
        have: dict[str, set[str]] = {}
        for experiment, variant in rows:
            have.setdefault(experiment, set()).add(variant)
        complete = sorted(e for e, vs in have.items() if set(versions) <= vs)
        if len(complete) > 1:
            raise CompareError(f"{' and '.join(versions)} are variants of several experiments: "
                               f"{', '.join(complete)}; choose one with --experiment NAME")
        return complete[0] if complete else None

    def _explain_missing_for_prompt(self, prompt: str, missing: list[str]) -> None:
        rows = self.reader.all(
            "SELECT prompt_version, sum(calls) FROM rollup WHERE prompt_id = ? GROUP BY 1 "
            "ORDER BY 1", (prompt,))
        if not rows:
            prompts = [r[0] for r in self.reader.all(
                "SELECT DISTINCT prompt_id FROM rollup WHERE prompt_id != '' ORDER BY 1")]
            raise CompareError(f"no entries for prompt {prompt!r} in {self.where_dir}; "
                               f"prompts logged: {', '.join(prompts) or 'none'}")
        logged = ", ".join(f"{v or '(no version)'} ({n} calls)" for v, n in rows)
        raise CompareError(f"no entries for {missing[0]} of prompt {prompt!r} in "
                           f"{self.where_dir}; versions logged: {logged}")

    def _explain_missing(self, versions: list[str], by_prompt: dict[str, dict[str, int]]
                         ) -> None:
        logged = {v: sorted(p for p, have in by_prompt.items() if v in have) for v in versions}
        absent = [v for v, ps in logged.items() if not ps]
        if absent:
            all_versions = sorted(
                {r[0] for r in self.reader.all(
                    "SELECT DISTINCT prompt_version FROM rollup WHERE prompt_version != ''")},
                key=_version_key)
            raise CompareError(f"no entries for version {absent[0]} in {self.where_dir}; "
                               f"versions logged: {', '.join(all_versions) or 'none'}")
        where = "; ".join(f"{v} is logged for {', '.join(ps)}" for v, ps in logged.items())
        raise CompareError(f"no prompt has entries for all of {', '.join(versions)} ({where}); "
                           "choose the prompt with --prompt ID")

    def _load_spec(self, experiment: str, explicit: bool) -> tuple[Any, list[str]]:
        path = self.settings.experiments_dir / f"{experiment}.toml"
        if not path.is_file():
            return None, []
        from promptlab.errors import PromptlabError
        from promptlab.experiments import load_experiment

        try:
            return load_experiment(path, self.settings), []
        except PromptlabError as exc:
            if explicit:
                raise
            return None, [f"ignoring {path.name}: {exc}"]


def _matching(select: str, column: str, names: list[str], prompt_column: str = "",
              prompt: str | None = None) -> tuple[str, list[Any]]:
    """`SELECT … WHERE column IN (names) [AND prompt_column = prompt]` and its parameters."""
    sql = f"{select} {column} IN ({', '.join('?' * len(names))})"
    params: list[Any] = list(names)
    if prompt is not None:
        sql += f" AND {prompt_column} = ?"
        params.append(prompt)
    return sql, params


def _looks_like_version(name: str) -> bool:
    return len(name) > 1 and name[0] == "v" and name[1:].isdigit()


def _version_key(name: str) -> tuple[int, str]:
    return (int(name[1:]), name) if _looks_like_version(name) else (1 << 30, name)
