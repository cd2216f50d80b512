"""How much git provenance costs a render.

Builds a temporary git repository holding the shipped prompts, then prints medians for:
provenance() warm and cold, and a full warm `Prompt.render` inside git vs the same render
outside git (the baseline, measured in the same run).

    python benchmarks/render_provenance.py
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from promptlab.history import clear_provenance_cache, provenance  # noqa: E402
from promptlab import Registry  # noqa: E402


def medians_us(*fns, batches: int = 31, per_batch: int = 300) -> list[float]:
    """Median over batches of the mean time per call, in microseconds, for each function.

    Batches of the functions are interleaved so that load from other processes hits all of
    them alike.
    """
    for fn in fns:
        fn()
    samples: list[list[float]] = [[] for _ in fns]
    for _ in range(batches):
        for fn, out in zip(fns, samples, strict=True):
            start = time.perf_counter_ns()
            for _ in range(per_batch):
                fn()
            out.append((time.perf_counter_ns() - start) / per_batch / 1000)
    return [statistics.median(out) for out in samples]


def make_project(root: Path, *, git: bool) -> Path:
    shutil.copytree(REPO / "prompts", root / "prompts", symlinks=True)
    if git:
        env = {**os.environ, "GIT_AUTHOR_NAME": "b", "GIT_AUTHOR_EMAIL": "b@x",
               "GIT_COMMITTER_NAME": "b", "GIT_COMMITTER_EMAIL": "b@x"}
        for args in (["init", "-q"], ["add", "."], ["commit", "-q", "-m", "prompts"]):
            subprocess.run(["git", *args], cwd=root, env=env, check=True)
    return root / "prompts"


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        inside = make_project(Path(tmp) / "git", git=True)
        outside = make_project(Path(tmp) / "plain", git=False)
        vars_ = {"code": "def f(x):\n    return x[1:]\n"}
        p_in = Registry(inside).get("code-review")
        p_out = Registry(outside).get("code-review")
        path = p_in.path

        cold = []
        for _ in range(15):
            clear_provenance_cache()
            start = time.perf_counter_ns()
            provenance(path)
            cold.append((time.perf_counter_ns() - start) / 1e6)
        template = p_in.template
        warm_prov, warm_prov_out, render_in, render_out, render_bare = medians_us(
            lambda: provenance(path),
            lambda: provenance(p_out.path),
            lambda: p_in.render(vars_),
            lambda: p_out.render(vars_),
            lambda: template.render_messages(vars_),
        )
        stamp = p_in.render(vars_).stamp

    print(f"stamp: commit={stamp['prompt_commit'][:7]} dirty={stamp['prompt_dirty']}")
    print(f"provenance cold (2 git calls)     median {statistics.median(cold):8.2f} ms")
    print(f"provenance warm, in git           median {warm_prov:8.2f} µs")
    print(f"provenance warm, outside git      median {warm_prov_out:8.2f} µs")
    print(f"template.render_messages only     median {render_bare:8.2f} µs")
    print(f"Prompt.render warm, outside git   median {render_out:8.2f} µs  (baseline)")
    print(f"Prompt.render warm, in git        median {render_in:8.2f} µs  "
          f"(x{render_in / render_out:.2f} of baseline)")
    print(f"GitPython imported: {'git' in sys.modules}")


if __name__ == "__main__":
    main()
