"""A label can never destroy a version (issue 14, item 1), and names too long for the file
system are one-line errors (issue 12, item 6): the issue's trials, replayed."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from promptlab.cli import main
from promptlab.errors import InvalidPromptIdError, LabelError
from promptlab.registry import Registry, validate_id, validate_label

from .helpers import one_line_error


def run(*args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(main, list(args))


# -- a label never takes a version's place -----------------------------------------------


@pytest.mark.parametrize("label", ["v1.txt", "v1", "v1.j2", "v1.md", "v1.jinja", "v3.txt"])
def test_label_named_like_a_version_is_refused(project: Path, label: str) -> None:
    folder = project / "prompts" / "code-review"
    before = (folder / "v1.txt").read_bytes()
    one_line_error(run("promote", "code-review", "v2", "--label", label), "invalid label name")
    assert not (folder / "v1.txt").is_symlink()
    assert (folder / "v1.txt").read_bytes() == before
    rendered = run("render", "code-review/v1", "--var", "code=x")
    assert rendered.exit_code == 0, rendered.output
    assert run("check", "--no-logs").exit_code == 0


def test_uncommitted_new_version_survives_a_label_named_after_it(project: Path) -> None:
    assert run("new", "code-review").exit_code == 0
    v3 = project / "prompts" / "code-review" / "v3.txt"
    v3.write_text("draft that exists nowhere else\n", encoding="utf-8")
    one_line_error(run("promote", "code-review", "v2", "--label", "v3.txt"), "v3")
    assert v3.read_text(encoding="utf-8") == "draft that exists nowhere else\n"
    assert not v3.is_symlink()


def test_label_with_template_suffix_makes_no_second_current(project: Path) -> None:
    folder = project / "prompts" / "code-review"
    one_line_error(run("promote", "code-review", "v1", "--label", "current.txt"),
                   "template suffix", "'current'")
    assert not os.path.lexists(folder / "current.txt")
    assert os.readlink(folder / "current") == "v2.txt"


def test_trailing_newline_in_ids_and_labels_is_refused(project: Path) -> None:
    one_line_error(run("new", "evil\n"), "invalid prompt id")
    assert not any("\n" in p.name for p in (project / "prompts").iterdir())
    one_line_error(run("promote", "code-review", "v1", "--label", "prod\n"), "invalid label")
    assert sorted(p.name for p in (project / "prompts" / "code-review").iterdir()) == [
        "current", "v1.txt", "v2.txt"]
    with pytest.raises(InvalidPromptIdError):
        validate_id("evil\n")
    with pytest.raises(LabelError):
        validate_label("prod\n")


@pytest.mark.parametrize("kind", ["file", "folder"])
def test_promote_never_replaces_something_that_is_not_a_label(project: Path, kind: str) -> None:
    folder = project / "prompts" / "code-review"
    notes = folder / "notes"
    if kind == "file":
        notes.write_text("my notes, not a label\n", encoding="utf-8")
    else:
        notes.mkdir()
    one_line_error(run("promote", "code-review", "v1", "--label", "notes"), "is not a label")
    if kind == "file":
        assert notes.read_text(encoding="utf-8") == "my notes, not a label\n"
    else:
        assert notes.is_dir()


def test_a_dangling_label_link_is_fixed_by_promote(project: Path) -> None:
    folder = project / "prompts" / "code-review"
    os.symlink("v9.txt", folder / "staging")
    assert run("check", "--no-logs").exit_code == 1
    assert run("promote", "code-review", "v1", "--label", "staging").exit_code == 0
    assert os.readlink(folder / "staging") == "v1.txt"


def test_plain_file_label_can_still_be_moved(project: Path) -> None:
    folder = project / "prompts" / "code-review"
    (folder / "production").write_text("v1\n", encoding="utf-8")
    result = run("promote", "code-review", "v2", "--label", "production")
    assert result.exit_code == 0, result.output
    assert result.output == "code-review: production v1 -> v2\n"
    assert (folder / "production").read_text(encoding="utf-8") == "v2\n"


def test_label_lookups_refuse_paths(project: Path) -> None:
    one_line_error(run("render", "code-review", "--label", "../summarization/current"),
                   "invalid label name")


# -- check reports what a label or version file should not be -------------------------------


def check_lines(*args: str) -> list[str]:
    result = run("check", "--no-logs", *args)
    assert result.exit_code == 1, result.output
    return result.stdout.splitlines()


def test_check_reports_a_symlink_where_a_version_file_belongs(project: Path) -> None:
    folder = project / "prompts" / "code-review"
    (folder / "v1.txt").unlink()
    os.symlink("v2.txt", folder / "v1.txt")  # what `promote --label v1.txt` used to do
    assert check_lines() == [
        "prompts/code-review/v1.txt: v1.txt is a symlink to v2.txt (in this folder) where a "
        "version file belongs; a version must be a regular file: restore its text "
        "(git checkout -- v1.txt)"]


def test_check_reports_a_version_file_linked_out_of_the_folder(project: Path) -> None:
    folder = project / "prompts" / "code-review"
    os.symlink("../summarization/v1.txt", folder / "v3.txt")
    assert check_lines("code-review") == [
        "prompts/code-review/v3.txt: v3.txt is a symlink to ../summarization/v1.txt (outside "
        "the prompt folder) where a version file belongs; a version must be a regular file: "
        "restore its text (git checkout -- v3.txt)"]


def test_a_prompt_whose_only_version_is_a_link_is_an_error_not_a_crash(project: Path) -> None:
    folder = project / "prompts" / "linked"
    folder.mkdir()
    os.symlink("../summarization/v1.txt", folder / "v1.txt")
    one_line_error(run("render", "linked"), "no version file that is a regular file")
    one_line_error(run("new", "linked"), "no version file that is a regular file")
    one_line_error(run("promote", "linked", "v1"), "has no version v1; versions: none")
    assert check_lines("linked") == [
        "prompts/linked/v1.txt: v1.txt is a symlink to ../summarization/v1.txt (outside the "
        "prompt folder) where a version file belongs; a version must be a regular file: "
        "restore its text (git checkout -- v1.txt)"]


def test_check_reports_a_duplicate_label(project: Path) -> None:
    folder = project / "prompts" / "code-review"
    os.symlink("v1.txt", folder / "current.txt")
    assert check_lines("code-review") == [
        "prompts/code-review/current: label 'current' is defined twice (current and "
        "current.txt); remove one of them"]


def test_check_reports_links_and_label_files_that_cannot_be_labels(project: Path) -> None:
    folder = project / "prompts" / "code-review"
    os.symlink("v1.txt", folder / "prod.md.txt")
    (folder / "v7").write_text("v1\n", encoding="utf-8")
    lines = check_lines("code-review")
    assert lines == [
        "prompts/code-review/prod.md.txt: prod.md.txt is a link but cannot be a label (a label "
        "is never a version name nor ends in a template suffix); rename or remove it",
        "prompts/code-review/v7: v7 is a label file named like a version; rename or remove it",
    ]


# -- names too long for the file system (issue 12, item 6) ----------------------------------

LONG = "a" * 300


@pytest.mark.parametrize("args", [
    ("render", LONG),
    ("render", f"code-review@{LONG}"),
    ("render", "code-review", "--label", LONG),
    ("new", LONG),
    ("new", f"team/{LONG}"),
    ("promote", LONG, "v1"),
    ("promote", "code-review", "v1", "--label", LONG),
    ("history", LONG),
    ("diff", LONG, "v1", "v2"),
    ("diff", "code-review", "v1", LONG),
    ("check", LONG),
    ("render", "code-review/v" + "9" * 300),
    ("promote", "code-review", "v" + "9" * 300),
    ("new", "code-review", "--from", "v" + "9" * 300),
])
def test_names_too_long_are_one_line_errors(project: Path, args: tuple[str, ...]) -> None:
    one_line_error(run(*args), "characters")
    assert sorted(p.name for p in (project / "prompts").iterdir()) == [
        "code-review", "summarization"]


@pytest.mark.parametrize("option", ["--prompts-dir", "--log-dir"])
def test_folder_options_too_long_are_one_line_errors(project: Path, option: str) -> None:
    args = ["check", option, "/tmp/" + LONG] if option == "--log-dir" else ["prompts", option,
                                                                           "/tmp/" + LONG]
    one_line_error(run(*args), "name too long")


def test_init_folder_too_long_is_a_one_line_error(tmp_path: Path) -> None:
    one_line_error(run("init", str(tmp_path / LONG)), "name too long")


def test_init_under_a_file_is_a_one_line_error(tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("x")
    one_line_error(run("init", str(tmp_path / "afile" / "sub")), "init: cannot write",
                   "Not a directory")


def test_registry_refuses_long_ids_before_touching_disk(tmp_path: Path) -> None:
    registry = Registry(tmp_path / "prompts")
    with pytest.raises(InvalidPromptIdError, match="too long"):
        registry.new(LONG)
    assert not (tmp_path / "prompts").exists()


# -- properties ---------------------------------------------------------------------------


@given(st.text(max_size=30))
def test_accepted_ids_and_labels_are_plain_names(text: str) -> None:
    for validate, error in ((validate_id, InvalidPromptIdError), (validate_label, LabelError)):
        try:
            validate(text)
        except error:
            continue
        assert "\n" not in text and text == text.strip()
        assert all(c.isascii() and (c.isalnum() or c in "._-/") for c in text)


@given(st.integers(min_value=0, max_value=10**6),
       st.sampled_from(["", ".txt", ".j2", ".jinja", ".md"]),
       st.sampled_from(["", ".txt", ".j2", ".jinja", ".md"]))
def test_no_label_can_name_a_version_file(n: int, ext: str, more: str) -> None:
    with pytest.raises(LabelError):
        validate_label(f"v{n}{ext}{more}")


# -- a label through a symlink loop (issue 15, item 1) ----------------------------------------


@pytest.mark.parametrize("loop", ["self", "via-link"])
def test_label_through_a_symlink_loop_is_a_dangling_label(project: Path, loop: str) -> None:
    folder = project / "prompts" / "code-review"
    (folder / "current").unlink()
    if loop == "self":
        os.symlink("current/v1.txt", folder / "current")
    else:
        os.symlink("loop", folder / "loop")
        os.symlink("loop/v1.txt", folder / "current")
    one_line_error(run("render", "code-review", "--var", "code=x"), "label 'current' of "
                   "code-review points at", "loops back on itself", "promptlab promote")
    listed = run("prompts")
    assert listed.exit_code == 0, listed.output
    assert "current -> DANGLING" in listed.output
    assert "summarization" in listed.output and "current -> v1" in listed.output
    checked = run("check", "--no-logs", "code-review")
    assert checked.exit_code == 1
    assert "prompts/code-review/current: label 'current' of code-review points at" in checked.stdout
    promoted = run("promote", "code-review", "v2")
    assert promoted.exit_code == 0, promoted.output
    assert os.readlink(folder / "current") == "v2.txt"
    assert run("render", "code-review", "--var", "code=x").exit_code == 0


# -- a label defined twice (issue 15, item 9) --------------------------------------------------


def test_label_defined_twice_is_listed_as_render_reads_it(project: Path) -> None:
    import json

    folder = project / "prompts" / "code-review"
    assert os.readlink(folder / "current") == "v2.txt"
    os.symlink("v1.txt", folder / "current.txt")
    rendered = run("render", "code-review", "--var", "code=x", "--json")
    assert json.loads(rendered.stdout)["stamp"]["prompt_version"] == "v2"
    listed = json.loads(run("prompts", "--json").stdout)
    assert listed[0]["labels"] == {"current": "v2"}
    row = next(line for line in run("prompts").stdout.splitlines()
               if line.startswith("code-review"))
    assert "current -> v2" in row and "current -> v1" not in row
    assert [lab.name for lab in Registry(project / "prompts").labels("code-review")] == ["current"]
