"""Hostile or odd input to the prompt commands: one line and exit 2, nothing half-written."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from promptlab.cli import main
from promptlab.registry import Registry


def run(*args: str, input: str | None = None):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(main, list(args), input=input)


@pytest.mark.parametrize("description", [
    "Note: hi", "[draft", "#1 prompt", "{x", "a\nb: c\n---\nbody", "'quoted'", '"dq"',
    "back\\slash", "p\u2028q\x85r\x01s\u2029", "héllo «ok»", "- item", "yes", "null", "",
])
def test_new_description_reads_back_exactly(project: Path, description: str) -> None:
    result = run("new", "fresh", "-d", description)
    assert result.exit_code == 0, result.output
    prompt = Registry(project / "prompts").get("fresh")
    assert prompt.description == (description or "fresh prompt")
    assert prompt.template.front.model == "gpt-4o-mini"  # the front matter was not cut short
    assert run("render", "fresh", "--var", "text=hi").exit_code == 0


def test_new_description_not_utf8_is_one_line_and_writes_nothing(project: Path) -> None:
    result = run("new", "fresh", "-d", "bad\udc85")
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "is not valid UTF-8" in result.stderr
    assert not (project / "prompts" / "fresh" / "v1.txt").exists()


def test_vars_file_nested_too_deep(project: Path, tmp_path: Path) -> None:
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000)
    result = run("render", "code-review", "--vars", str(deep))
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert f"--vars: {deep} nests JSON too deeply" in result.stderr
    result = run("render", "code-review", "--vars", "-", input="[" * 100_000)
    assert result.exit_code == 2 and "standard input nests JSON too deeply" in result.stderr


def test_var_file_without_end_is_refused_not_read_forever(project: Path) -> None:
    result = run("render", "code-review", "--var", "code=@/dev/zero")
    assert result.exit_code == 2
    assert "--var code: /dev/zero is larger than 64 MiB" in result.stderr
    result = run("render", "code-review", "--vars", "/dev/zero")
    assert result.exit_code == 2 and "--vars: /dev/zero is larger than 64 MiB" in result.stderr


def test_var_file_text_as_before(project: Path, tmp_path: Path) -> None:
    code = tmp_path / "app.py"
    code.write_bytes("x = 'café'\r\ny = 2\r\n".encode())
    result = run("render", "code-review", "--var", f"code=@{code}")
    assert result.exit_code == 0, result.output
    assert "x = 'café'\ny = 2\n" in result.stdout


def test_a_fifo_where_a_version_belongs_does_not_break_every_listing(project: Path) -> None:
    folder = project / "prompts" / "piped"
    folder.mkdir()
    os.mkfifo(folder / "v1.txt")
    listing = run("prompts")
    assert listing.exit_code == 0, listing.output  # was: unknown prompt 'piped'; did you mean piped?
    assert "code-review" in listing.output
    assert "piped" in listing.output and "no version file that is a regular file" in listing.output
    result = run("render", "piped")
    assert result.exit_code == 2 and "run 'promptlab check'" in result.stderr
    check = run("check", "--no-logs")
    assert check.exit_code == 1
    assert "v1.txt is not a regular file, where a version file belongs" in check.output


# -- init ---------------------------------------------------------------------------------------


def test_init_with_an_empty_folder_name_writes_nothing(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = run("init", "")  # `promptlab init "$DIR"` with DIR unset
    assert result.exit_code == 2 and "the folder name is empty" in result.stderr
    assert list(tmp_path.iterdir()) == []  # was: a project in the working directory


def test_init_never_writes_through_a_link_out_of_the_project(tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    root = tmp_path / "proj"
    (root / "prompts").mkdir(parents=True)
    os.symlink(outside, root / "prompts" / "sentiment")
    result = run("init", str(root))
    assert result.exit_code == 0, result.output
    assert list(outside.iterdir()) == []  # was: v1.txt and current written in elsewhere/
    assert "prompts/sentiment is a link out of the project" in result.output
    assert (root / "experiments" / "sentiment.toml").is_file()


def test_init_says_when_a_starter_path_is_not_a_file(tmp_path: Path) -> None:
    (tmp_path / "promptlab.toml").mkdir()
    result = run("init", str(tmp_path))
    assert "promptlab.toml (exists and is not a regular file; move it away" in result.output


# -- front matter ---------------------------------------------------------------------------------

LAUGHS = "---\ndescription: bomb\nconfig:\n  a: &a [" + ", ".join(['"x"'] * 10) + "]\n" + "".join(
    f"  {n}: &{n} [{', '.join([f'*{p}'] * 10)}]\n" for p, n in zip("abcdefgh", "bcdefghi", strict=True)
) + "---\nhello\n"


def test_front_matter_alias_bomb_is_refused_not_a_hang(project: Path) -> None:
    folder = project / "prompts" / "bomb"
    folder.mkdir()
    (folder / "v1.txt").write_text(LAUGHS)
    result = run("render", "bomb", "--json")  # was: hung, expanding 10**9 strings
    assert result.exit_code == 2
    assert "front matter expands to more than 100,000 values" in result.stderr
    check = run("check", "bomb", "--no-logs")
    assert check.exit_code == 1 and "expands to more than" in check.output


def test_front_matter_nested_too_deep(project: Path) -> None:
    folder = project / "prompts" / "deep"
    folder.mkdir()
    (folder / "v1.txt").write_text("---\nconfig: " + "[" * 20_000 + "]" * 20_000 + "\n---\nhi\n")
    result = run("render", "deep")
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "the front matter nests too deeply to read" in result.stderr


def test_ordinary_aliases_still_work(project: Path) -> None:
    folder = project / "prompts" / "alias"
    folder.mkdir()
    (folder / "v1.txt").write_text("---\nconfig: &c {temperature: 0}\nextra_cfg: *c\n---\nhi\n")
    result = run("render", "alias", "--json")
    assert result.exit_code == 0, result.output


def test_a_disk_full_new_leaves_no_half_written_version(project: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    import errno

    real_write = os.write
    calls = []

    def full(fd: int, data: bytes) -> int:  # the first chunk fits, then the disk is full
        calls.append(fd)
        if len(calls) == 1:
            return real_write(fd, bytes(data)[:10])
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    registry = Registry(project / "prompts")
    monkeypatch.setattr(os, "write", full)
    with pytest.raises(Exception, match="No space left on device; nothing was created"):
        registry.new("code-review")
    monkeypatch.undo()
    assert not (project / "prompts" / "code-review" / "v3.txt").exists()
    assert registry.new("code-review").name == "v3.txt"  # the next one is v3, whole
