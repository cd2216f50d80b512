"""The README, run as a new user would: the main job, then every command of the tour.

The commands are read from README.md itself (the first set-up command, then each line of
the ```bash blocks and each ```python block after "## A tour", in order) and run through
the installed console script in a copy of the repository's example project, with its
own git history and its own log folder.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
README = (REPO / "README.md").read_text(encoding="utf-8")
BIN = Path(sys.executable).parent

# What a user must see from some tour commands (a substring of stdout).
EXPECTED = {
    "promptlab prompts": "code-review",
    "promptlab history code-review": "added v1",
    "promptlab diff code-review v1 v2 ": "+++",
    'promptlab logs search "off-by-one"': "off",
    "promptlab trace": "summarize-readme",
    "promptlab costs": "total",
    "promptlab experiment list": "code-review-ab",
    "promptlab experiment status": "v2",
    "promptlab experiment assign": "v",
    "promptlab experiment report": "finds_bug",
    "promptlab logs show last": "summarization@v1",
}


def setup_commands() -> list[str]:
    """The promptlab steps of the README's first set-up command (after the install)."""
    block = re.search(r"```bash\n# 1\..*?\n(python3 -m venv[^\n]+)\n", README, re.S)
    assert block, "README lost its first set-up command"
    steps = [s.strip() for s in block.group(1).split("&&")]
    return [s.replace(".venv/bin/promptlab", "promptlab") for s in steps
            if s.startswith(".venv/bin/promptlab")]


def tour_blocks() -> list[tuple[str, str]]:
    """(language, text) of every bash and python block after '## A tour', in order."""
    tour = README.split("## A tour", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```(bash|python)\n(.*?)```", tour, re.S)


def bash_lines(text: str) -> list[str]:
    lines = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        cut = _comment_start(line)  # a trailing comment, outside quotes
        lines.append(line[:cut].rstrip() if cut is not None else line)
    return lines


def _comment_start(line: str) -> int | None:
    quote = None
    for i, ch in enumerate(line):
        if quote:
            if ch == quote:
                quote = None
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (i == 0 or line[i - 1].isspace()):
            return i
    return None


@pytest.fixture
def example_project(console_script: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "promptlab-demo"
    root.mkdir()
    for name in ("prompts", "experiments", "examples"):
        shutil.copytree(REPO / name, root / name, symlinks=True,
                        ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", root / "pyproject.toml")
    git = ["git", "-C", str(root)]
    subprocess.run([*git, "init", "-q", "-b", "main"], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "the example project"], check=True)
    monkeypatch.chdir(root)
    monkeypatch.delenv("PROMPTLAB_LOG_DIR")  # the project's own log_dir, as for a new user
    assert Path(console_script).parent == BIN
    monkeypatch.setenv("PATH", f"{BIN}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("COLUMNS", "200")
    return root


def run_shell(command: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run one README line in bash; PATH starts with the installed console script's folder."""
    return subprocess.run(["bash", "-c", command], cwd=cwd, capture_output=True, text=True,
                          timeout=300, check=False)


def test_readme_main_job_and_tour(example_project: Path) -> None:
    # The main job: render, run the experiment, compare.
    render, run, compare = setup_commands()
    done = run_shell(render, example_project)
    assert done.returncode == 0, done.stderr
    assert "Review this Python function" in done.stdout and "range(1, len(values))" in done.stdout
    done = run_shell(run, example_project)
    assert done.returncode == 0, done.stderr
    assert re.search(r"v1\s+v1\s+42\s+0\s+0\.262", done.stdout), done.stdout
    assert re.search(r"v2\s+v2\s+42\s+0\s+0\.929", done.stdout), done.stdout
    assert "Next: promptlab compare v1 v2" in done.stdout
    done = run_shell(compare, example_project)
    assert done.returncode == 0, done.stderr
    assert re.search(r"finds_bug \(primary\).*mcnemar exact.*v2 better", done.stdout), done.stdout
    assert (example_project / ".promptlab" / "logs").is_dir()

    # The tour, in order.
    for language, text in tour_blocks():
        if language == "python":
            namespace = {"my_model": lambda messages: "A one-sentence summary.",
                         "__name__": "__readme__"}
            exec(compile(text, "README.md", "exec"), namespace)
            continue
        for command in bash_lines(text):
            done = run_shell(command, example_project)
            assert done.returncode == 0, f"{command}\n{done.stdout}\n{done.stderr}"
            assert "Traceback" not in done.stderr, f"{command}\n{done.stderr}"
            for prefix, expected in EXPECTED.items():
                if command.startswith(prefix):
                    assert expected in done.stdout, f"{command}\n{done.stdout}"
