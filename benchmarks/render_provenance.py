"""How much git provenance and the render limits cost a render.

Builds a temporary git repository holding the shipped prompts, then prints medians for:
provenance() warm and cold, and a full warm `Prompt.render` inside git vs the same render
outside git (the baseline, measured in the same run). Then the render limits: the same
templates rendered by promptlab's limited sandbox vs Jinja's plain immutable sandbox
(the baseline, same run), for the shipped prompt and for a loop-heavy few-shot template.

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

from promptlab import Registry  # noqa: E402
from promptlab.history import clear_provenance_cache, provenance  # noqa: E402


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
    limits_overhead()


FEW_SHOT = """system:
Classify the sentiment.
{% for ex in examples %}
user:
{{ ex.text }}
assistant:
{{ ex.label }}
{% endfor %}
user:
{{ text }}
"""


def limits_overhead() -> None:
    """Limited render (loops guarded, clock checked) vs Jinja's plain sandbox, same run;
    both check the variables against input.schema and split the messages."""
    from jinja2 import StrictUndefined
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    from promptlab.template import _MARKER_LINE, _TOKEN, Template

    plain_env = ImmutableSandboxedEnvironment(undefined=StrictUndefined, autoescape=False,
                                              keep_trailing_newline=True)
    shipped = Template.load(REPO / "prompts" / "code-review" / "v2.txt")
    few = Template.from_bytes(FEW_SHOT.encode(), "few-shot.txt")
    cases = [
        ("code-review v2", shipped, {"code": "def f(x):\n    return x[1:]\n"}),
        ("few-shot, 50 examples", few,
         {"text": "Great kettle", "examples": [{"text": f"review {i}", "label": "positive"}
                                               for i in range(50)]}),
    ]
    for name, template, values in cases:
        merged = template.check_vars(values)
        source = _MARKER_LINE.sub(lambda m: _TOKEN.format(role=m.group(1)),
                                  template.body)
        plain = plain_env.from_string(source)
        limited, baseline = medians_us(lambda t=template, v=merged: t.render_messages(v),
                                       lambda p=plain, t=template, v=merged: t._split(p.render(t.check_vars(v))))
        print(f"{name:24s} limited {limited:8.2f} µs   plain sandbox {baseline:8.2f} µs  "
              f"(x{limited / baseline:.2f})")


if __name__ == "__main__":
    main()
