"""`promptlab diff`: two versions' sources, rendered messages, or a version against a revision."""

from __future__ import annotations

import json
import subprocess

from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from promptlab.cli import main
from promptlab.history import unified_diff

V1 = "system:\nHi {{ name }}.\nuser:\nSay {{ word }}"  # no newline at the end
V2 = "system:\nHello {{ name }}!\nuser:\nSay {{ word }}\n"


def run(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def make_prompt(root):
    folder = root / "prompts" / "p"
    folder.mkdir(parents=True)
    (folder / "v1.txt").write_text(V1)
    (folder / "v2.txt").write_text(V2)
    (folder / "current").symlink_to("v2.txt")
    return folder


def test_two_versions_unified_diff(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    make_prompt(tmp_path)
    result = run("diff", "p", "v1", "current")
    assert result.exit_code == 0
    assert result.stdout == (
        "--- p/v1.txt\n"
        "+++ p/v2.txt (current)\n"
        "@@ -1,4 +1,4 @@\n"
        " system:\n"
        "-Hi {{ name }}.\n"
        "+Hello {{ name }}!\n"
        " user:\n"
        "-Say {{ word }}\n"
        "\\ No newline at end of file\n"
        "+Say {{ word }}\n"
    )


def test_context_lines_option(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    make_prompt(tmp_path)
    result = run("diff", "p", "v1", "v2", "-U", "0")
    assert result.stdout.splitlines()[2:5] == ["@@ -2 +2 @@", "-Hi {{ name }}.",
                                               "+Hello {{ name }}!"]


def test_identical_versions_say_so_on_stderr(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    make_prompt(tmp_path)
    result = run("diff", "p", "v2", "current")
    assert result.exit_code == 0
    assert result.stdout == ""
    assert result.stderr == "No differences: p v2 and current are identical.\n"


def test_rendered_diff_uses_vars_file_and_var(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    make_prompt(tmp_path)
    (tmp_path / "vars.json").write_text(json.dumps({"name": "Ann", "word": "hi"}))
    result = run("diff", "p", "v1", "v2", "--rendered", "--vars", "vars.json", "--var",
                 "word=yo")
    assert result.exit_code == 0, result.output
    assert result.stdout == (
        "--- p/v1.txt (rendered)\n"
        "+++ p/v2.txt (rendered)\n"
        "@@ -2,7 +2,7 @@\n"
        " config: {}\n"
        " \n"
        " system:\n"
        "-Hi Ann.\n"
        "+Hello Ann!\n"
        " \n"
        " user:\n"
        " Say yo\n"
    )


def test_rendered_shows_model_and_config_changes(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    folder = tmp_path / "prompts" / "q"
    folder.mkdir(parents=True)
    (folder / "v1.txt").write_text("---\nmodel: a\nconfig: {temperature: 0}\n---\nHi\n")
    (folder / "v2.txt").write_text("---\nmodel: b\nconfig: {temperature: 0}\n---\nHi\n")
    result = run("diff", "q", "v1", "v2", "--rendered")
    assert result.stdout.splitlines()[2:6] == ["@@ -1,4 +1,4 @@", "-model: a", "+model: b",
                                               ' config: {"temperature": 0}']


def test_colour_only_when_asked_or_on_a_tty(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    make_prompt(tmp_path)
    assert "\x1b[" not in run("diff", "p", "v1", "v2").stdout  # CliRunner is not a TTY
    coloured = run("diff", "p", "v1", "v2", "--color", "always").stdout.splitlines()
    assert coloured[0] == "\x1b[1m--- p/v1.txt\x1b[0m"
    assert coloured[4] == "\x1b[31m-Hi {{ name }}.\x1b[0m"
    assert coloured[5] == "\x1b[32m+Hello {{ name }}!\x1b[0m"


def test_rev_compares_a_version_with_its_committed_text(story, gitproject):
    result = run("diff", "code-review", "v1", "--rev", story["add-v2"])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        f"--- code-review/v1.txt @ {story['add-v2']} ({story['add-v2']})",
        "+++ code-review/v1.txt (working tree)",
        "@@ -6,5 +6,5 @@",
        " system:",
        " You review code.",
        " user:",
        "-Find the bug:",
        "+Find every bug:",
        " {{ code }}",
    ]


def test_rev_with_a_label_and_rendered(story, gitproject):
    gitproject.write("code-review/v2.txt", gitproject.V2.replace("Check bounds", "Check types"))
    result = run("diff", "code-review", "current", "--rev", "HEAD", "--rendered", "--var",
                 "code=x = 1")
    assert result.exit_code == 0, result.output
    assert "-You review code. Check bounds, None and types.\n" in result.stdout
    assert "+You review code. Check types, None and types.\n" in result.stdout
    assert result.stdout.startswith(f"--- code-review/v2.txt @ HEAD ({story['edit-v1']}) "
                                    "(rendered)\n")


def test_rev_no_change(story):
    result = run("diff", "code-review", "v2", "--rev", "HEAD")
    assert result.exit_code == 0
    assert result.stderr == "No differences: code-review v2 at HEAD and now are identical.\n"


# -- bad input -----------------------------------------------------------------------------


def test_rev_outside_git_exits_2(project):
    result = run("diff", "code-review", "v1", "--rev", "HEAD")
    assert result.exit_code == 2
    path = project / "prompts" / "code-review" / "v1.txt"
    assert result.stderr == (f"Error: diff --rev: {path} is not inside a git repository; run "
                             "'git init' and commit your prompts\n")


def test_plain_diff_works_outside_git(project):
    result = run("diff", "code-review", "v1", "v2")
    assert result.exit_code == 0
    assert result.stdout.startswith("--- code-review/v1.txt\n+++ code-review/v2.txt\n")


def test_unknown_revision(story):
    result = run("diff", "code-review", "v1", "--rev", "no-such-branch")
    assert result.exit_code == 2
    assert result.stderr == ("Error: diff --rev: unknown revision 'no-such-branch'; try a "
                             "branch, tag or commit id\n")


def test_version_never_committed(story, gitproject):
    gitproject.write("code-review/v3.txt", "draft\n")
    result = run("diff", "code-review", "v3", "--rev", "HEAD")
    assert result.exit_code == 2
    assert result.stderr == ("Error: diff --rev: prompts/code-review/v3.txt was never committed; "
                             "commit it before comparing it with a revision\n")


def test_version_missing_at_that_revision(story):
    result = run("diff", "code-review", "v2", "--rev", story["add-v1"])
    assert result.exit_code == 2
    assert result.stderr == (f"Error: diff --rev: prompts/code-review/v2.txt does not exist at "
                             f"{story['add-v1']} ({story['add-v1']}); pick a revision that has "
                             "it (see 'git log -- prompts/code-review/v2.txt')\n")


def test_no_commits_yet(gitproject):
    gitproject.write("p/v1.txt", "x\n")
    result = run("diff", "p", "v1", "--rev", "HEAD")
    assert result.exit_code == 2
    assert result.stderr == (f"Error: diff --rev: the repository at {gitproject.root} has no "
                             "commits yet; commit your prompts first\n")


def test_shallow_clone_hints_at_unshallow(story, gitproject, tmp_path, monkeypatch):
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", "--depth", "1", f"file://{gitproject.root}",
                    str(clone)], check=True)
    monkeypatch.chdir(clone)
    result = run("diff", "code-review", "v1", "--rev", "HEAD~2")
    assert result.exit_code == 2
    assert result.stderr == ("Error: diff --rev: unknown revision 'HEAD~2' (this is a shallow "
                             "clone: 'git fetch --unshallow' fetches older commits)\n")


def test_argument_mistakes(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    make_prompt(tmp_path)
    cases = {
        ("diff", "p", "v1"): "diff needs two versions or labels (promptlab diff p v1 v2), or "
                             "one with --rev REV",
        ("diff", "p", "v1", "v2", "--rev", "HEAD"): "--rev compares one version with its own "
                                                     "content at HEAD; give one version "
                                                     "(promptlab diff p v1 --rev HEAD)",
        ("diff", "p", "v1", "v2", "--vars", "x.json"): "--vars/--var only apply with --rendered",
        ("diff", "p", "v1", "v9"): "prompt 'p' has no version v9; versions: v1, v2",
        ("diff", "p", "v1", "nope"): "prompt 'p' has no label 'nope'; labels: current",
        ("diff", "p/v1", "v1", "v2"): "diff takes a prompt id, not 'p/v1'; try 'promptlab diff "
                                      "p v1 v2'",
        # The version written into the id is the first side: what the user meant.
        ("diff", "p/v1", "v2"): "diff takes a prompt id, not 'p/v1'; try 'promptlab diff p v1 v2'",
        ("diff", "p@current", "v2"): "diff takes a prompt id, not 'p@current'; try 'promptlab "
                                     "diff p current v2'",
        ("diff", "p", "v1", ""): "diff: a version or label is empty; give two, e.g. 'promptlab "
                                 "diff p v1 v2'",
    }
    for args, message in cases.items():
        result = run(*args)
        assert (result.exit_code, result.stderr) == (2, f"Error: {message}\n"), args


def test_rendered_missing_variable_is_one_line(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    make_prompt(tmp_path)
    result = run("diff", "p", "v1", "v2", "--rendered")
    assert result.exit_code == 2
    assert result.stderr.startswith("Error: ")
    assert "missing variable 'name'" in result.stderr
    assert result.stderr.count("\n") == 1


# -- the diff itself -----------------------------------------------------------------------

texts = st.lists(st.sampled_from(["a", "b", "c", "", "d e", "{{ x }}"]), max_size=12).map(
    "\n".join)


@given(texts, texts, st.booleans(), st.booleans())
def test_unified_diff_holds_both_texts(a, b, a_nl, b_nl):
    a += "\n" if a_nl and a else ""
    b += "\n" if b_nl and b else ""
    lines = unified_diff(a, b, "a", "b", context=10**6)
    if a == b:
        assert lines == []
        return
    body = lines[3:] if lines[0].startswith("---") else lines
    old, new = [], []
    prev = ""
    for line in body:
        if line.startswith("\\"):  # "\ No newline at end of file" after the line it marks
            if prev[0] in " -":
                old.append("<no-eol>")
            if prev[0] in " +":
                new.append("<no-eol>")
            continue
        prev = line
        if line[0] in " -":
            old.append(line[1:])
        if line[0] in " +":
            new.append(line[1:])

    def expected(text: str) -> list[str]:
        parts = text.split("\n")
        if text.endswith("\n"):
            return parts[:-1]
        return [*parts, "<no-eol>"] if text else []

    assert old == expected(a)
    assert new == expected(b)
