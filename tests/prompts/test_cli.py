"""`promptlab prompts | render | new | promote`, as a user sees them."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from promptlab.cli import main

from .helpers import one_line_error


def run(*args: str, input: str | None = None):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(main, list(args), input=input)


def test_prompts_table(project: Path) -> None:
    result = run("prompts")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split() == ["id", "versions", "labels", "description"]
    assert any(line.startswith("code-review") and "v1, v2" in line and "current -> v2" in line
               for line in lines)
    assert any(line.startswith("summarization") and "current -> v1" in line for line in lines)


def test_prompts_json(project: Path) -> None:
    result = run("prompts", "--json")
    data = json.loads(result.output)
    assert data[0] == {"id": "code-review", "versions": ["v1", "v2"], "labels": {"current": "v2"},
                       "description": "Review a code change for bugs, with an explicit checklist"}


def test_prompts_csv_and_fmt(project: Path) -> None:
    assert run("prompts", "--csv").output.splitlines()[0] == "id,versions,labels,description"
    assert run("prompts", "--fmt", "github").output.startswith("| id")
    bad = run("prompts", "--fmt", "nope")
    assert bad.exit_code == 2 and "unknown table format 'nope'" in bad.output


def test_render_plain_shows_roles_and_stamp_on_stderr(project: Path) -> None:
    result = CliRunner().invoke(main, ["render", "code-review", "--var", "code=print(1)"])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("system:\nYou are a meticulous code reviewer.")
    assert "\n\nuser:\nReview this Python function." in result.stdout
    assert "print(1)" in result.stdout
    assert result.stderr.startswith("# code-review v2 @current sha256:")


def test_render_single_message_has_no_role_header(project: Path) -> None:
    (project / "prompts" / "plain").mkdir()
    (project / "prompts" / "plain" / "v1.txt").write_text("Hello {{ who }}!\n")
    result = run("render", "plain", "--var", "who=world")
    assert result.stdout == "Hello world!\n"


def test_render_json(project: Path) -> None:
    result = run("render", "code-review/v1", "--var", "code=x=1", "--var", "language=Go", "--json")
    data = json.loads(result.stdout)
    assert set(data) == {"messages", "model", "config", "stamp"}
    assert data["messages"][1]["content"].startswith("Review this Go function")
    assert data["stamp"]["prompt_version"] == "v1" and data["stamp"]["prompt_label"] is None
    assert len(data["stamp"]["prompt_sha"]) == 64
    assert data["config"] == {"temperature": 0.2, "max_tokens": 800}


def test_render_vars_file_stdin_and_at_file(project: Path) -> None:
    (project / "snippet.py").write_text("def f():\n    return 'é'\n", encoding="utf-8")
    result = run("render", "code-review", "--vars", "-", "--var", "code=@snippet.py",
                 "--json", input='{"language": "Rust", "code": "ignored"}')
    content = json.loads(result.stdout)["messages"][1]["content"]
    assert "Review this Rust function" in content and "return 'é'" in content


def test_render_label_and_version_options(project: Path) -> None:
    assert json.loads(run("render", "code-review", "--version", "v1", "--var", "code=1",
                          "--json").stdout)["stamp"]["prompt_version"] == "v1"
    assert json.loads(run("render", "code-review", "--label", "current", "--var", "code=1",
                          "--json").stdout)["stamp"]["prompt_version"] == "v2"


def test_render_coerces_cli_strings_to_declared_types(project: Path) -> None:
    result = run("render", "summarization", "--var", "text=abc", "--var", "sentences=2", "--json")
    assert "at most 2 sentences" in json.loads(result.stdout)["messages"][1]["content"]
    bad = run("render", "summarization", "--var", "text=abc", "--var", "sentences=two")
    assert bad.exit_code == 2 and "--var sentences: value 'two' is not a valid integer" in bad.stderr


def test_render_warns_about_unused_variables(project: Path) -> None:
    result = run("render", "summarization", "--var", "text=abc", "--var", "colour=red")
    assert result.exit_code == 0
    assert "Warning: variable(s) not used by summarization/v1: colour" in result.stderr


@pytest.mark.parametrize(("args", "message"), [
    (["render", "nope"], "Error: unknown prompt 'nope'"),
    (["render", "code-reviw", "--var", "code=1"], "did you mean code-review?"),
    (["render", "../x"], "Error: invalid prompt id '../x'"),
    (["render", "/etc"], "Error: invalid prompt id '/etc'"),
    (["render", "a/../../b"], "Error: invalid prompt id 'a/../../b'"),
    (["render", "code-review", "--version", "v1", "--label", "current"],
     "asked for both version v1 and label 'current'"),
    (["render", "code-review"], "missing variable 'code' (required by input.schema)"),
    (["render", "code-review", "--var", "code"], "--var 'code': expected NAME=VALUE"),
    (["render", "code-review", "--vars", "missing.json"], "--vars: file missing.json not found"),
    (["render", "code-review", "--var", "code=@missing.py"], "--var code: file missing.py not found"),
    (["render", "code-review@nolabel"], "has no label 'nolabel'"),
    (["render", "code-review/v9"], "has no version v9"),
])
def test_render_bad_input(project: Path, args: list[str], message: str) -> None:
    result = run(*args)
    assert result.exit_code == 2, result.output
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert result.stdout == ""


def test_render_invalid_vars_json(project: Path) -> None:
    (project / "bad.json").write_text("{oops")
    result = run("render", "code-review", "--vars", "bad.json")
    assert result.exit_code == 2
    assert "--vars: bad.json is not valid JSON (line 1, column 2" in result.stderr


def test_render_bad_templates(project: Path) -> None:
    folder = project / "prompts" / "broken"
    folder.mkdir()
    (folder / "v1.txt").write_text("---\nmodel: [x\n---\nhi")
    (folder / "v2.txt").write_text("Hello {% if %}")
    (folder / "v3.txt").write_text("{{ ''.__class__.__mro__ }}")
    os.symlink("v9.txt", folder / "dangling")
    (folder / "notes.md").write_text("notes")
    os.symlink("notes.md", folder / "odd")
    cases = {
        "broken/v1": "v1.txt: line 2: invalid front matter YAML",
        "broken/v2": "v2.txt:1: Jinja syntax error",
        "broken/v3": "refused by the sandbox",
        "broken@dangling": "label 'dangling' of broken points at v9.txt, which does not exist",
        "broken@odd": "points at 'notes.md', which is not a version file",
    }
    for ref, message in cases.items():
        result = run("render", ref)
        assert result.exit_code == 2, (ref, result.output)
        assert message in result.stderr, (ref, result.stderr)
        assert "Traceback" not in result.output


def test_label_escaping_prompts_folder(project: Path, tmp_path: Path) -> None:
    (tmp_path / "secret.txt").write_text("secret")
    os.symlink(str(tmp_path / "secret.txt"), project / "prompts" / "code-review" / "leak")
    result = run("render", "code-review@leak")
    assert result.exit_code == 2 and "outside the prompt folder" in result.stderr


def test_new_and_promote(project: Path) -> None:
    result = run("new", "code-review")
    assert result.exit_code == 0
    path = Path(result.stdout.strip())
    assert path == project / "prompts" / "code-review" / "v3.txt"
    assert path.read_bytes() == (project / "prompts/code-review/v2.txt").read_bytes()
    result = run("promote", "code-review", "v3")
    assert result.stdout.strip() == "code-review: current v2 -> v3"
    assert os.readlink(project / "prompts/code-review/current") == "v3.txt"
    result = run("promote", "code-review", "v1", "--label", "production")
    assert result.stdout.strip() == "code-review: production (none) -> v1"
    assert run("render", "code-review@production", "--var", "code=1", "--json").exit_code == 0


def test_new_prompt_from_scratch(project: Path) -> None:
    result = run("new", "support/triage", "-d", "Route tickets")
    assert result.stdout.strip().endswith("prompts/support/triage/v1.txt")
    listing = run("prompts").output
    assert "support/triage" in listing and "Route tickets" in listing


def test_new_and_promote_bad_input(project: Path) -> None:
    assert "invalid prompt id 'Bad Id'" in run("new", "Bad Id").stderr
    assert "no version v7" in run("new", "code-review", "--from", "v7").stderr
    result = run("promote", "code-review", "v9")
    assert result.exit_code == 2 and "has no version v9; versions: v1, v2" in result.stderr
    assert os.readlink(project / "prompts/code-review/current") == "v2.txt"


def test_prompts_dir_option_and_env(project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    other = tmp_path / "elsewhere"
    shutil.copytree(project / "prompts", other, symlinks=True)
    shutil.rmtree(other / "summarization")
    monkeypatch.chdir(tmp_path)
    assert "summarization" not in run("--prompts-dir", str(other), "prompts").output
    assert "summarization" not in run("prompts", "--prompts-dir", str(other)).output
    monkeypatch.setenv("PROMPTLAB_PROMPTS_DIR", str(other))
    assert "summarization" not in run("prompts").output


def test_no_prompts_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = run("prompts")
    assert result.exit_code == 2
    assert "prompts folder" in result.stderr and "run 'promptlab init'" in result.stderr


def test_console_script_and_module(console_script: str, project: Path) -> None:
    exe = console_script
    done = subprocess.run([exe, "render", "summarization", "--var", "text=Hi"],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert "Summarize the following text in at most 3 sentences." in done.stdout
    done = subprocess.run([sys.executable, "-m", "promptlab", "render", "nope"],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 2
    assert done.stderr.startswith("Error: unknown prompt 'nope'")
    assert "Traceback" not in done.stderr
    done = subprocess.run([sys.executable, "-m", "promptlab", "--version"],
                          capture_output=True, text=True, check=False)
    assert done.stdout.strip() == "promptlab, version 0.1.0"


# -- `new` leaves nothing behind when it fails (issue 15, items 6 and 7) ----------------------


def test_new_prompt_refused_by_its_label_writes_nothing(project: Path) -> None:
    folder = project / "prompts" / "fresh"
    (folder / "current").mkdir(parents=True)
    one_line_error(run("new", "fresh"), f"{folder / 'current'} exists and is not a label")
    assert sorted(p.name for p in folder.iterdir()) == ["current"]
    (folder / "current").rmdir()
    made = run("new", "fresh")
    assert made.exit_code == 0, made.output
    assert made.stdout.strip() == str(folder / "v1.txt")
    assert os.readlink(folder / "current") == "v1.txt"


def test_new_prompt_rolls_back_when_the_label_cannot_be_written(
        project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from promptlab.errors import LabelError
    from promptlab.registry import Registry

    def refuse(*args: object, **kwargs: object) -> None:
        raise LabelError("no label today")

    monkeypatch.setattr(Registry, "promote", refuse)
    one_line_error(run("new", "deep/fresh"), "no label today")
    assert not (project / "prompts" / "deep").exists()


@pytest.mark.parametrize(("prompt_id", "blocker", "hint"), [
    ("code-review/v1.txt", "code-review/v1.txt", "run 'promptlab new code-review'"),
    ("code-review/current", "code-review/current", "run 'promptlab new code-review'"),
    ("notes/x", "notes", ""),
])
def test_new_where_a_file_is_in_the_way_is_one_line(project: Path, prompt_id: str,
                                                     blocker: str, hint: str) -> None:
    (project / "prompts" / "notes").write_text("hi\n", encoding="utf-8")
    before = sorted(str(p) for p in (project / "prompts").rglob("*"))
    line = one_line_error(run("new", prompt_id),
                          f"{project / 'prompts' / blocker} exists and is not a folder",
                          f"prompt {prompt_id!r}", hint)
    assert "Traceback" not in line
    assert sorted(str(p) for p in (project / "prompts").rglob("*")) == before


@pytest.mark.parametrize("option", ["--version", "--label"])
@pytest.mark.parametrize("value", ["", " "])
def test_render_refuses_an_empty_version_or_label(project: Path, option: str, value: str) -> None:
    one_line_error(run("render", "code-review", option, value, "--var", "code=x"),
                   f"{option} is empty")


def test_registry_refuses_an_empty_version_or_label(project: Path) -> None:
    from promptlab.errors import UsageError
    from promptlab.registry import Registry

    registry = Registry(project / "prompts")
    with pytest.raises(UsageError, match="the version asked for of 'code-review' is empty"):
        registry.get("code-review", version="")
    with pytest.raises(UsageError, match="the label asked for of 'code-review' is empty"):
        registry.get("code-review", label="")


def test_prompts_dir_that_is_a_file_says_so(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (project / "notes.txt").write_text("hi\n", encoding="utf-8")
    monkeypatch.setenv("PROMPTLAB_PROMPTS_DIR", str(project / "notes.txt"))
    one_line_error(run("prompts"), f"prompts folder {project / 'notes.txt'} is a file, not a "
                   "folder", "PROMPTLAB_PROMPTS_DIR")
