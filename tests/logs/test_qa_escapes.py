"""QA (#12/#14): logged text (a response, a model name, a tag, a span name) never reaches
the terminal with its control characters: an OSC sequence in a wrapped command's output
must not retitle the terminal or hide text. JSON output stays exact."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from promptlab.cli import main

OSC = "\x1b]0;pwned\x07"
CSI = "\x1b[31m"


def run(*args: str, input: str | None = None):
    result = CliRunner().invoke(main, list(args), input=input)
    assert result.exit_code == 0, (result.output, result.exception)
    return result


def _no_controls(text: str) -> None:
    bad = [c for c in text if (ord(c) < 0x20 and c not in "\n\t") or 0x7f <= ord(c) < 0xa0]
    assert not bad, repr(text)


def _logged(log_dir: Path) -> tuple[dict, str]:
    from promptlab.logs.logger import Logger

    logger = Logger(log_dir, prices=False)
    with logger.trace(f"root{OSC}") as root, logger.span(f"step{CSI}x"):
        call = logger.log(model=f"gpt{CSI}4", tags=[f"t{OSC}"], prompt_id="p",
                          user_message=f"line one\n\ta {OSC} b\x9b2J",
                          assistant_response=f"a {OSC} b zebra", error=None,
                          metadata={"note": f"c1\x9bx {OSC}"})
    logger.close()
    return call, root.id


def test_the_wrapper_logs_osc_and_logs_shows_it_escaped(log_dir: Path) -> None:
    run("log", "--", "cat", input=f"a {OSC} b\n")
    out = run("logs", "-n", "1").stdout
    _no_controls(out)
    assert "a \\x1b]0;pwned\\x07 b" in out
    shown = run("logs", "show", "last").stdout
    _no_controls(shown)
    assert "\\x1b]0;pwned\\x07" in shown
    # JSON stays exact
    data = json.loads(run("logs", "-n", "1", "--json").stdout)
    assert OSC in data[0]["assistant_response"]


def test_every_human_view_escapes_logged_text(log_dir: Path) -> None:
    call, root = _logged(log_dir)
    for args in (["logs"], ["logs", "show", call["id"]], ["logs", "search", "zebra"],
                 ["trace"], ["trace", root], ["costs", "--by", "model"],
                 ["costs", "--by", "tag"], ["logs", "--kind", "span"]):
        out = run(*args).stdout
        _no_controls(out)
    shown = run("logs", "show", call["id"]).stdout
    assert "gpt\\x1b[31m4" in shown and "t\\x1b]0;pwned\\x07" in shown
    assert "line one\n\ta \\x1b]0;pwned\\x07 b\\x9b2J" in shown  # newlines and tabs stay
    assert "\\x9bx" in shown  # C1 in metadata (json.dumps keeps it raw)
    tree = run("trace", root).stdout
    assert "root\\x1b]0;pwned\\x07" in tree and "step\\x1b[31mx" in tree
    assert "**zebra**" in run("logs", "search", "zebra").stdout
    data = json.loads(run("logs", "show", call["id"], "--json").stdout)
    assert data["entry"]["model"] == f"gpt{CSI}4" and data["entry"]["tags"] == [f"t{OSC}"]
    assert json.loads(run("trace", root, "--json").stdout)["name"] == f"root{OSC}"


def test_compare_escapes_names_from_the_log(log_dir: Path) -> None:
    from promptlab.logs.logger import Logger

    logger = Logger(log_dir, prices=False)
    for version in ("v1", "v2"):
        for i in range(6):
            logger.log(model="m", prompt_id="p", prompt_version=version,
                       scores={f"ok{OSC}": i % 2 == 0})
    logger.close()
    out = run("compare", "v1", "v2", "--prompt", "p").stdout
    _no_controls(out)
    assert "ok\\x1b]0;pwned\\x07" in out
    data = json.loads(run("compare", "v1", "v2", "--prompt", "p", "--json").stdout)
    assert any(m["name"] == f"ok{OSC}" for m in data["metrics"])
