"""The real `promptlab` console script, as a user runs it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import Sample

HEAVY = ("scipy", "numpy", "git", "jinja2", "httpx")


def promptlab(*args: str, env_extra: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).with_name("promptlab")
    cmd = [str(exe)] if exe.exists() else [shutil.which("promptlab") or "promptlab"]
    env = {**os.environ, **(env_extra or {})}
    return subprocess.run([*cmd, *args], capture_output=True, text=True, env=env, timeout=60,
                          check=False)


def test_logs_search_and_costs_as_processes(sample: Sample) -> None:
    listing = promptlab("logs", "-n", "2")
    assert listing.returncode == 0, listing.stderr
    assert sample.e["call_in_trace"]["id"] in listing.stdout
    found = promptlab("logs", "search", "résumé", "--json")
    assert [h["entry"]["id"] for h in json.loads(found.stdout)] == [sample.e["summary"]["id"]]
    costs = promptlab("costs", "--by", "model", "--json", "--prices", str(sample.prices))
    assert json.loads(costs.stdout)["total"]["calls"] == 6


def test_a_user_mistake_is_one_line_and_exit_2(sample: Sample) -> None:
    result = promptlab("logs", "--since", "someday")
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("args", [
    ["logs", "--help"], ["logs", "-n", "1"], ["logs", "search", "x"], ["costs"], ["trace"],
    ["logs", "show", "01KE8000000000000000000001"],
])
def test_log_commands_do_not_import_heavy_modules(sample: Sample, args: list[str]) -> None:
    code = (
        "import sys\n"
        "from promptlab.cli import main\n"
        "try:\n"
        f"    main({args!r}, standalone_mode=False)\n"
        "except SystemExit:\n"
        "    pass\n"
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=60, check=False)
    assert result.stdout.strip().splitlines()[-1] == "[]", result.stderr
