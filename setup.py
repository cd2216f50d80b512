"""Build hook for the optional C speed-up (metadata lives in pyproject.toml).

`promptlab.logs._speedups` is Logger.log's common case in C (entry building, ids, the
redaction pre-check, the append). It is optional: without a C compiler the build goes on
and promptlab does the same work in Python. `-ffp-contract=off` keeps the cost sums in the
same floating-point steps as Python's (no fused multiply-add).
"""

import sys

from setuptools import Extension, setup

flags = [] if sys.platform == "win32" else ["-ffp-contract=off"]
setup(ext_modules=[Extension("promptlab.logs._speedups", ["promptlab/logs/_speedups.c"],
                             extra_compile_args=flags, optional=True)])
