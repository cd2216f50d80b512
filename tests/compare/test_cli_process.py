"""The real `promptlab` console script, as a user runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path


def run(console_script: str, args: list[str], log_dir: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PROMPTLAB_LOG_DIR": str(log_dir)}
    return subprocess.run([console_script, *args], capture_output=True, text=True, env=env,
                          cwd=cwd, timeout=60)


def test_compare_json_from_the_console_script(console_script, write_calls, log_dir, tmp_path):
    rows = [{"prompt_id": "qa", "prompt_version": v, "model": "m", "latency_ms": 100.0 + i,
             "scores": {"correct": i < k}} for v, k in (("v1", 10), ("v2", 25)) for i in range(40)]
    write_calls(rows)
    proc = run(console_script, ["compare", "v1", "v2", "--json"], log_dir, tmp_path)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    correct = next(m for m in data["metrics"] if m["name"] == "correct")
    assert correct["verdict"] == "v2 better" and correct["a"]["n"] == 40
    table = run(console_script, ["compare", "v1", "v2"], log_dir, tmp_path)
    assert "correct" in table.stdout and "v2 better" in table.stdout


def test_console_script_user_mistake_is_one_line_exit_2(console_script, write_calls, log_dir, tmp_path):
    write_calls([{"prompt_id": p, "prompt_version": v, "model": "m", "scores": {"ok": True}}
                 for p in ("alpha", "beta") for v in ("v1", "v2")])
    proc = run(console_script, ["compare", "v1", "v2"], log_dir, tmp_path)
    assert proc.returncode == 2
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr
    assert lines[0].startswith("Error: v1 and v2 are logged for several prompts: alpha")


def test_the_command_module_imports_nothing_heavy():
    code = ("import sys; import promptlab.cli.compare, promptlab.comparison; "
            "print(sorted(m for m in ('numpy', 'scipy', 'tabulate', 'git', 'jinja2') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60)
    assert out.stdout.strip() == "[]", out.stderr
