"""The logger without its C speed-ups: the logging tests again, on the pure-Python path.

Users without a C compiler get that path (the extension is optional), so it has to pass
the same tests. One subprocess runs them with PROMPTLAB_NO_SPEEDUPS=1.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


def test_the_logging_tests_pass_on_the_pure_python_path() -> None:
    if os.environ.get("PROMPTLAB_NO_SPEEDUPS") == "1":
        pytest.skip("already on the pure-Python path")
    env = {**os.environ, "PROMPTLAB_NO_SPEEDUPS": "1", "PROMPTLAB_REQUIRE_SPEEDUPS": ""}
    tests = [str(HERE / name) for name in ("test_entry.py", "test_logger.py", "test_redact.py",
                                           "test_costs.py", "test_tracing.py", "test_writer.py")]
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", *tests],
        cwd=HERE.parent.parent, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert " passed" in done.stdout


def test_the_switch_really_turns_the_speedups_off() -> None:
    code = ("from promptlab.logs import entry, redact; "
            "print(entry.c_build is None, redact.maybe_secret is None, entry.new_id is entry._new_id_py)")
    env = {**os.environ, "PROMPTLAB_NO_SPEEDUPS": "1"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, check=True).stdout.split()
    assert out == ["True", "True", "True"]
