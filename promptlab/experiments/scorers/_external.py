"""Scorers that run your code: a Python function or a program."""

from __future__ import annotations

import json
import shlex
import subprocess
from pathlib import Path

from promptlab.errors import ExperimentError, ScorerError
from promptlab.experiments.scorers._base import ScoreInput, Scorer, ScorerSpec
from promptlab.experiments.scorers._verdict import parse_verdict
from promptlab.providers.command import OutputTooLarge, run_process


class PythonScorer(Scorer):
    """`function = "module:func"` or `"file.py:func"`, called with the keyword arguments it
    declares among output, expected, vars, item_id, metadata, variant, latency_ms, usage,
    prompt, value. Returns a bool or a number."""

    type = "python"
    keys = frozenset({"function"})

    @classmethod
    def validate(cls, spec: ScorerSpec) -> None:
        super().validate(spec)
        ref = spec.options.get("function")
        if not isinstance(ref, str) or ":" not in ref:
            raise ExperimentError(f"{spec.where}: type 'python' needs function = "
                                  "\"module:function\" or \"path/to/file.py:function\"")

    def prepare(self) -> None:
        from promptlab.providers._loader import load_function

        base = self.runtime.base_dir if self.runtime else Path.cwd()
        self.func = load_function(self.spec.options["function"], base, self.spec.where)

    def score(self, inp: ScoreInput) -> bool | float:
        from promptlab.providers._loader import call_with_accepted

        available = {"output": inp.output, "expected": inp.expected, "vars": dict(inp.vars),
                     "item_id": inp.item_id, "metadata": dict(inp.metadata),
                     "variant": inp.variant, "latency_ms": inp.latency_ms,
                     "usage": dict(inp.usage), "prompt": inp.prompt,
                     "value": self.value.get(inp)}
        return call_with_accepted(self.func, available)


class CommandScorer(Scorer):
    """`command = ["prog", "arg"]` (no shell) reads JSON on stdin (output, expected, vars,
    item_id, variant, latency_ms, value) and prints a number, true/false, pass/fail, or
    JSON `{"score": …}` / `{"pass": …}`. A non-zero exit is a scorer error."""

    type = "command"
    keys = frozenset({"command", "timeout_s"})

    @classmethod
    def validate(cls, spec: ScorerSpec) -> None:
        super().validate(spec)
        cls._argv(spec)
        timeout = spec.options.get("timeout_s", 30)
        if (isinstance(timeout, bool) or not isinstance(timeout, int | float)
                or not 0 < timeout <= 86400):  # also NaN
            raise ExperimentError(f"{spec.where}: 'timeout_s' must be a number of seconds > 0 "
                                  f"and ≤ 86400, got {timeout!r}")

    @staticmethod
    def _argv(spec: ScorerSpec) -> list[str]:
        command = spec.options.get("command")
        if isinstance(command, str) and command.strip():
            return shlex.split(command)
        if isinstance(command, list) and command and all(isinstance(c, str) for c in command):
            return list(command)
        raise ExperimentError(f"{spec.where}: type 'command' needs command = [\"program\", "
                              "\"arg\", …] (run without a shell)")

    def score(self, inp: ScoreInput) -> bool | float:
        argv = self._argv(self.spec)
        payload = json.dumps({"output": inp.output, "expected": inp.expected,
                              "vars": dict(inp.vars), "item_id": inp.item_id,
                              "variant": inp.variant, "latency_ms": inp.latency_ms,
                              "value": self.value.get(inp)}, ensure_ascii=False, default=str)
        timeout = self.spec.options.get("timeout_s", 30)
        cwd = self.runtime.base_dir if self.runtime else None
        try:
            proc = run_process(argv, payload.encode(), timeout, cwd=str(cwd) if cwd else None)
        except FileNotFoundError as exc:
            raise ScorerError(f"command {argv[0]!r} not found") from exc
        except subprocess.TimeoutExpired as exc:
            raise ScorerError(f"command {argv[0]!r} timed out after {timeout:g}s") from exc
        except OutputTooLarge as exc:
            raise ScorerError(f"command {argv[0]!r} {exc} and was stopped; a scorer prints a "
                              "verdict or a number") from exc
        if proc.returncode != 0:
            lines = proc.stderr.decode("utf-8", "replace").strip().splitlines()
            detail = f": {lines[-1]}" if lines else ""
            raise ScorerError(f"command {argv[0]!r} exited with status {proc.returncode}"
                              f"{detail}")
        return parse_verdict(proc.stdout.decode("utf-8", "replace"), "auto",
                             f"command {argv[0]!r}")


