"""QA (#12): a window reaching back before year 1000 is the whole log, never a traceback."""

from __future__ import annotations

from click.testing import CliRunner

from promptlab.cli import main


def _calls(version: str, n: int, **extra) -> list[dict]:
    return [{"prompt_id": "qa", "prompt_version": version, "model": "m",
             "scores": {"ok": i % 2 == 0}, **extra} for i in range(n)]


def _logged(log_dir, rows):
    from promptlab.logs.logger import Logger

    logger = Logger(log_dir, prices=False, strict=True)
    for row in rows:
        logger.log(**row)


def test_compare_since_before_year_one_is_everything(log_dir):
    import json

    _logged(log_dir, _calls("v1", 4) + _calls("v2", 4))
    for since in ("9999999999d", "0001-01-01", "0001-01-01T00:00:00+00:00", "0999-06-01T00:00:00Z"):
        run = CliRunner().invoke(main, ["compare", "v1", "v2", "--since", since, "--json"])
        assert run.exit_code == 0, (since, run.output, run.exception)
        data = json.loads(run.stdout)
        ok = next(m for m in data["metrics"] if m["name"] == "ok")
        assert ok["a"]["n"] == 4 and ok["b"]["n"] == 4, since


def test_report_since_before_year_one_with_an_experiment(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    assert runner.invoke(main, ["init"]).exit_code == 0
    run = runner.invoke(main, ["experiment", "run", "--limit", "3"])
    assert run.exit_code == 0, (run.output, run.exception)
    out = tmp_path / "r.html"
    run = runner.invoke(main, ["report", "--html", str(out), "--since", "9999999999d"])
    assert run.exit_code == 0, (run.output, run.exception)
    html = out.read_text(encoding="utf-8")
    assert "sentiment" in html and "Invalid isoformat" not in html
