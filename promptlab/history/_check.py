"""`promptlab check`: every check over a set of prompts, plus the ones that need only the
files (duplicate versions, template syntax and `input.schema` variables, labels)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from promptlab.errors import TemplateError
from promptlab.history._findings import CheckReport, Finding
from promptlab.history._immutable import check_git
from promptlab.history._logged import check_logged_shas
from promptlab.history._logscan import read_log_entries
from promptlab.registry import Registry

_ORDER = {"immutable": 0, "duplicate": 1, "template": 2, "schema": 3, "label": 4, "logs": 5}
_LOCATED = re.compile(r"^:(?:\s*line\s*)?(\d+):\s*")


def check_prompts(registry: Registry, prompt_ids: Sequence[str] | None = None, *,
                  base: str | None = None, log_dir: Path | None = None,
                  entries: Iterable[dict[str, Any]] | None = None) -> CheckReport:
    """Run every check over `prompt_ids` (default: all prompts).

    `base`: only versions present at this revision count as released (a pull request's
    target branch); default: every committed version. Log entries come from `entries`, or
    are read from `log_dir` when it exists.
    """
    ids = list(prompt_ids) if prompt_ids else registry.ids()
    for prompt_id in ids:
        registry.versions(prompt_id)  # unknown ids fail here, before any output
    report = CheckReport(prompt_ids=ids)
    for prompt_id in ids:
        report.versions += len(registry.versions(prompt_id))
        report.labels += len(registry.labels(prompt_id))
        report.findings.extend(check_duplicates(registry, prompt_id))
        report.findings.extend(check_templates(registry, prompt_id))
        report.findings.extend(check_labels(registry, prompt_id))
    report.findings.extend(check_git(registry, ids, base, report.notes))
    skipped: list[str] = []
    if entries is None and log_dir is not None:
        if log_dir.is_dir():
            entries = read_log_entries(log_dir, skipped)
        else:
            report.notes.append(f"no log folder at {log_dir}: skipped the logged-sha check")
    if entries is not None:
        counted = _Counted(entries)
        report.findings.extend(check_logged_shas(registry, ids, counted))
        report.log_entries = counted.n
    if skipped:
        more = f" and {len(skipped) - 5} more" if len(skipped) > 5 else ""
        report.notes.append(f"skipped {len(skipped)} unreadable log line(s) in {log_dir} "
                            f"({', '.join(skipped[:5])}{more})")
    report.findings.sort(key=lambda f: (f.prompt_id, str(f.path), _ORDER.get(f.check, 9),
                                        f.line or 0))
    return report


class _Counted:
    def __init__(self, entries: Iterable[dict[str, Any]]):
        self.entries = entries
        self.n = 0

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for entry in self.entries:
            self.n += 1
            yield entry


def check_duplicates(registry: Registry, prompt_id: str) -> list[Finding]:
    return [
        Finding(paths[0], prompt_id, "duplicate",
                f"{' and '.join(p.name for p in paths)} both define {name}; keep one of them",
                version=name)
        for name, paths in sorted(registry.duplicate_versions(prompt_id).items())
    ]


def check_templates(registry: Registry, prompt_id: str) -> list[Finding]:
    """Syntax (front matter, Jinja) and variables against `input.schema`."""
    from promptlab.template import Template

    findings = []
    for version in registry.versions(prompt_id):
        try:
            template = Template.load(version.path)
        except TemplateError as exc:
            message, line = str(exc), None
            if message.startswith(str(version.path)):
                message = message[len(str(version.path)):]
                m = _LOCATED.match(message)
                if m:
                    line, message = int(m.group(1)), message[m.end():]
                else:
                    message = message.lstrip(": ")
            findings.append(Finding(version.path, prompt_id, "template", message, line,
                                    version.name))
            continue
        schema = template.front.schema
        if schema is None:
            continue
        used = template.variables()
        for name in sorted(used - set(schema)):
            findings.append(Finding(version.path, prompt_id, "schema",
                                    f"variable {name!r} is used but not declared in "
                                    f"input.schema; add '{name}: string' (or '{name}?: …')",
                                    version=version.name))
        for name in sorted(set(schema) - used):
            findings.append(Finding(version.path, prompt_id, "schema",
                                    f"variable {name!r} is declared in input.schema but never "
                                    "used; use it or remove it", version=version.name))
    return findings


def check_labels(registry: Registry, prompt_id: str) -> list[Finding]:
    return [
        Finding(label.path, prompt_id, "label",
                f"{label.problem}; fix it with 'promptlab promote {prompt_id} vN "
                f"--label {label.name}'")
        for label in registry.labels(prompt_id) if label.problem
    ]
