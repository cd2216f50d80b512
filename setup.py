"""Build hook for the optional C speed-up (metadata lives in pyproject.toml).

`promptlab.logs._scan` is the redaction pre-check of the log hot path. It is optional:
without a C compiler the build goes on and promptlab uses the same check in Python.
"""

from setuptools import Extension, setup

setup(ext_modules=[Extension("promptlab.logs._scan", ["promptlab/logs/_scan.c"], optional=True)])
