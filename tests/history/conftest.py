"""Real temporary git repositories for the history tests."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from promptlab.history import clear_provenance_cache

V1 = """\
---
description: Review code
input:
  schema: {code: string}
---
system:
You review code.
user:
Find the bug:
{{ code }}
"""

V2 = """\
---
description: Review code with a checklist
input:
  schema: {code: string, language?: string}
  default: {language: Python}
---
system:
You review code. Check bounds, None and types.
user:
Find the bug in this {{ language }}:
{{ code }}
"""


class GitProject:
    """A project folder that is a git repository, with deterministic commit dates."""

    V1 = V1
    V2 = V2

    def __init__(self, root: Path):
        self.root = root
        self.prompts = root / "prompts"
        self.prompts.mkdir(parents=True, exist_ok=True)
        self._tick = 0
        self.git("init", "-q", "-b", "main")

    def git(self, *args: str, check: bool = True, cwd: Path | None = None) -> str:
        env = dict(os.environ)
        env["GIT_AUTHOR_DATE"] = env["GIT_COMMITTER_DATE"] = f"2026-01-0{1 + self._tick // 24}T" \
            f"{self._tick % 24:02d}:00:00+00:00"
        done = subprocess.run(["git", *args], cwd=cwd or self.root, env=env, text=True,
                              capture_output=True, check=False)
        if check and done.returncode != 0:
            raise AssertionError(f"git {' '.join(args)} failed: {done.stderr}")
        return done.stdout.strip()

    def write(self, rel: str, text: str) -> Path:
        path = self.prompts / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return path

    def link(self, rel: str, target: str) -> Path:
        path = self.prompts / rel
        if os.path.lexists(path):
            path.unlink()
        os.symlink(target, path)
        return path

    def remove(self, rel: str) -> None:
        (self.prompts / rel).unlink()

    def commit(self, message: str, *paths: str) -> str:
        """Stage `paths` (default: everything) and commit; return the short sha."""
        self.git("add", "-A", *(paths or ["."]))
        self._tick += 1
        self.git("commit", "-q", "-m", message)
        return self.short("HEAD")

    def short(self, rev: str) -> str:
        return self.git("rev-parse", "--short=7", rev)

    def sha(self, rev: str) -> str:
        return self.git("rev-parse", rev)

    def date(self, rev: str) -> str:
        return self.git("log", "-1", "--format=%aI", rev)


@pytest.fixture
def gitproject(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> GitProject:
    """An empty git repository with a prompts/ folder; the working directory."""
    clear_provenance_cache()
    project = GitProject(tmp_path / "proj")
    monkeypatch.chdir(project.root)
    yield project
    clear_provenance_cache()


@pytest.fixture
def story(gitproject: GitProject) -> dict[str, str]:
    """The issue's sequence: add v1, add v2, move current, edit v1 illegally.

    Returns the short sha of each commit by step name.
    """
    g = gitproject
    shas = {}
    g.write("code-review/v1.txt", V1)
    g.link("code-review/current", "v1.txt")
    shas["add-v1"] = g.commit("Add code-review v1")
    g.write("code-review/v2.txt", V2)
    shas["add-v2"] = g.commit("Add v2 with a checklist")
    g.link("code-review/current", "v2.txt")
    shas["promote"] = g.commit("Promote v2")
    g.write("code-review/v1.txt", V1.replace("Find the bug", "Find every bug"))
    shas["edit-v1"] = g.commit("Tweak v1 wording")
    return shas
