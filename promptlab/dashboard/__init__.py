"""The dashboard: a local, read-only web UI (`promptlab dashboard`) and the same views as
one self-contained HTML file (`promptlab report --html FILE`).

    from promptlab.dashboard import Dashboard, make_server, write_report

Server-rendered HTML (Jinja, autoescaped) with charts drawn as SVG in Python: no
JavaScript, no chart library, no CDN — see docs/dashboard.md for why.
"""

from __future__ import annotations

from promptlab.dashboard.report import build_report, write_report
from promptlab.dashboard.server import Dashboard, Response, make_server, new_token

__all__ = ["Dashboard", "Response", "build_report", "make_server", "new_token", "write_report"]
