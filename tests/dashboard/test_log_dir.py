"""A mistyped log folder: the commands that only read the logs refuse it, and create nothing
(`report` used to create the folder and an empty index, and say it wrote an empty report)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest


@pytest.fixture
def no_serving(monkeypatch: pytest.MonkeyPatch) -> None:
    """`promptlab dashboard` stops at once, as if Ctrl-C was pressed, should it start."""
    from http.server import ThreadingHTTPServer

    def stop(self: Any, *args: Any, **kwargs: Any) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(ThreadingHTTPServer, "serve_forever", stop)


@pytest.mark.parametrize("command", [["report", "--html", "{out}"],
                                     ["dashboard", "--port", "0"]])
def test_a_missing_log_folder_is_refused_and_not_created(dash_project: dict, tmp_path: Path,
                                                         run_cli: Any, no_serving: None,
                                                         command: list[str]) -> None:
    typo = tmp_path / "llm-lgos"
    out = tmp_path / "report.html"
    args = [a.format(out=out) for a in command]
    result = run_cli(dash_project, "--log-dir", str(typo), *args)
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.output, result.output
    assert f"log folder {typo} does not exist" in lines[0] and "--log-dir" in lines[0]
    assert not typo.exists() and not out.exists()


def test_a_file_as_log_folder_is_refused_by_the_api(dash_project: dict, tmp_path: Path) -> None:
    from dataclasses import replace

    from promptlab.dashboard.report import write_report
    from promptlab.errors import UsageError

    afile = tmp_path / "logs.jsonl"
    afile.write_text("")
    settings = replace(dash_project["settings"], log_dir=afile)
    with pytest.raises(UsageError, match=f"log folder {afile} is not a folder"):
        write_report(settings, tmp_path / "r.html")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["logs.jsonl"]


def test_the_project_log_folder_still_reports(dash_project: dict, tmp_path: Path,
                                              run_cli: Any) -> None:
    out = tmp_path / "r.html"
    result = run_cli(dash_project, "report", "--html", str(out))
    assert result.exit_code == 0, result.output
    assert out.stat().st_size > 0
