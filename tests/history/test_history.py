"""`promptlab history`: one row per commit, described in prompt terms."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

from click.testing import CliRunner

from promptlab.cli import main
from promptlab.history import prompt_history
from promptlab.registry import Registry


def run(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def changes(g, prompt_id: str = "code-review") -> list[tuple[str, list[str]]]:
    history = prompt_history(Registry(g.prompts), prompt_id)
    return [(row.short, list(row.changes)) for row in history.rows]


def test_story_rows_name_each_change_in_prompt_terms(story, gitproject):
    assert changes(gitproject) == [
        (story["edit-v1"], ["edited v1 (!)"]),
        (story["promote"], ["current: v1 -> v2"]),
        (story["add-v2"], ["added v2"]),
        (story["add-v1"], ["added v1", "current: (none) -> v1"]),
    ]


def test_table_shows_sha_date_author_subject_changes(story, gitproject):
    result = run("history", "code-review")
    assert result.exit_code == 0, result.output
    cells = [re.split(r"\s{2,}", line.strip()) for line in result.output.splitlines()]
    assert cells[0] == ["commit", "date", "author", "subject", "changes"]
    assert cells[2:] == [
        [story["edit-v1"], "2026-01-01 04:00", "Test Author", "Tweak v1 wording",
         "edited v1 (!)"],
        [story["promote"], "2026-01-01 03:00", "Test Author", "Promote v2", "current: v1 -> v2"],
        [story["add-v2"], "2026-01-01 02:00", "Test Author", "Add v2 with a checklist",
         "added v2"],
        [story["add-v1"], "2026-01-01 01:00", "Test Author", "Add code-review v1",
         "added v1, current: (none) -> v1"],
    ]


def test_csv(story):
    result = run("history", "code-review", "--csv", "-n", "2")
    assert result.output == (
        "commit,date,author,subject,changes\n"
        f"{story['edit-v1']},2026-01-01 04:00,Test Author,Tweak v1 wording,edited v1 (!)\n"
        f"{story['promote']},2026-01-01 03:00,Test Author,Promote v2,current: v1 -> v2\n"
    )


def test_json_gives_the_same_rows(story, gitproject):
    result = run("history", "code-review", "--json")
    rows = json.loads(result.output)
    assert [r["short"] for r in rows] == [story[k] for k in ("edit-v1", "promote", "add-v2",
                                                              "add-v1")]
    assert rows[0] == {
        "commit": gitproject.sha(story["edit-v1"]),
        "short": story["edit-v1"],
        "date": "2026-01-01T04:00:00+00:00",
        "author": "Test Author",
        "email": "author@example.com",
        "subject": "Tweak v1 wording",
        "changes": ["edited v1 (!)"],
    }


def test_limit_and_rev(story, gitproject):
    rows = json.loads(run("history", "code-review", "-n", "1", "--json").output)
    assert [r["short"] for r in rows] == [story["edit-v1"]]
    rows = json.loads(run("history", "code-review", "--rev", story["add-v2"], "--json").output)
    assert [r["changes"] for r in rows] == [["added v2"], ["added v1", "current: (none) -> v1"]]


def test_restore_remove_readd_rename_and_other_files(story, gitproject):
    g = gitproject
    g.write("code-review/v1.txt", g.V1)
    restore = g.commit("Revert the v1 tweak")
    g.remove("code-review/v2.txt")
    g.link("code-review/current", "v1.txt")
    g.write("code-review/README", "notes about this prompt\n")
    remove = g.commit("Drop v2")
    g.write("code-review/v2.txt", "different text\n")
    readd = g.commit("Bring back a v2")
    g.remove("code-review/v1.txt")
    g.write("code-review/v1.j2", g.V1)
    rename = g.commit("v1 is Jinja")
    assert changes(g)[:4] == [
        (rename, ["renamed v1.txt -> v1.j2"]),
        (readd, ["re-added v2 with new text (!)"]),
        (remove, ["removed v2", "current: v2 -> v1", "added README"]),
        (restore, ["restored v1"]),
    ]


def test_plain_file_labels_and_escaping_targets(gitproject):
    g = gitproject
    g.write("p/v1.txt", "one\n")
    g.write("p/production", "v1\n")
    first = g.commit("start")
    g.write("p/v2.txt", "two\n")
    g.write("p/production", "v2\n")
    second = g.commit("ship v2")
    g.link("p/current", "../other/v1.txt")
    third = g.commit("odd label")
    assert changes(g, "p") == [
        (third, ["current: (none) -> '../other/v1.txt'"]),
        (second, ["added v2", "production: v1 -> v2"]),
        (first, ["added v1", "production: (none) -> v1"]),
    ]


def test_nested_ids_do_not_mix(gitproject):
    g = gitproject
    g.write("support/v1.txt", "parent\n")
    parent = g.commit("support v1")
    g.write("support/triage/v1.txt", "child\n")
    child = g.commit("triage v1")
    assert changes(g, "support") == [(parent, ["added v1"])]
    assert changes(g, "support/triage") == [(child, ["added v1"])]


def test_merge_commits_show_branch_commits(story, gitproject):
    g = gitproject
    g.git("checkout", "-q", "-b", "feature")
    g.write("code-review/v3.txt", "three\n")
    v3 = g.commit("Add v3")
    g.git("checkout", "-q", "main")
    g.write("elsewhere.txt", "x\n")
    g.commit("Unrelated")
    g._tick += 1
    g.git("merge", "-q", "--no-ff", "-m", "Merge feature", "feature")
    assert changes(g)[0] == (v3, ["added v3"])


def test_detached_head_works(story, gitproject):
    gitproject.git("checkout", "-q", "--detach", story["promote"])
    assert [short for short, _ in changes(gitproject)] == [story["promote"], story["add-v2"],
                                                           story["add-v1"]]


def test_never_committed_prompt_says_so(story, gitproject):
    gitproject.write("fresh/v1.txt", "new\n")
    result = run("history", "fresh")
    assert result.exit_code == 0
    assert result.stdout == ""
    assert result.stderr == ("No commit touches prompts/fresh/ yet; commit it "
                             "(git add prompts/fresh && git commit) to start its history.\n")
    assert json.loads(run("history", "fresh", "--json").output) == []


def test_deleted_prompt_still_has_history(story, gitproject):
    shutil.rmtree(gitproject.prompts / "code-review")
    gitproject.write("other/v1.txt", "x\n")
    gone = gitproject.commit("Remove code-review")
    rows = changes(gitproject)
    assert rows[0] == (gone, ["removed v1", "removed v2", "current: v2 -> (removed)"])


# -- bad input -----------------------------------------------------------------------------


def test_not_a_repository_exits_2(project):
    result = run("history", "code-review")
    assert result.exit_code == 2
    assert result.stderr == (f"Error: history: {project / 'prompts' / 'code-review'} is not "
                             "inside a git repository; run 'git init' and commit your prompts\n")


def test_no_commits_yet(gitproject):
    gitproject.write("code-review/v1.txt", gitproject.V1)
    result = run("history", "code-review")
    assert result.exit_code == 2
    assert result.stderr == (f"Error: history: the repository at {gitproject.root} has no "
                             "commits yet; commit your prompts first\n")


def test_unknown_prompt_outside_git_or_before_commits_names_the_prompt(project, tmp_path):
    """A typo is the first thing to say: git's state is beside the point for a prompt that
    does not exist in the folder (outside git, or before the first commit)."""
    result = run("history", "code-reveiw")
    assert result.exit_code == 2
    assert "unknown prompt 'code-reveiw'" in result.stderr, result.stderr
    assert "git" not in result.stderr
    subprocess.run(["git", "init", "-q", str(project)], check=True)
    result = run("history", "code-reveiw")
    assert result.exit_code == 2
    assert "unknown prompt 'code-reveiw'" in result.stderr, result.stderr
    assert "commits" not in result.stderr


def test_unknown_revision(story):
    result = run("history", "code-review", "--rev", "nope")
    assert result.exit_code == 2
    assert result.stderr == ("Error: history: unknown revision 'nope'; try a branch, tag or "
                             "commit id\n")


def test_unknown_prompt_suggests(story):
    result = run("history", "code-reveiw")
    assert result.exit_code == 2
    assert "unknown prompt 'code-reveiw'" in result.stderr
    assert "did you mean code-review?" in result.stderr


def test_a_version_reference_is_refused(story):
    result = run("history", "code-review/v2")
    assert result.exit_code == 2
    assert result.stderr == ("Error: history takes a prompt id, not 'code-review/v2'; try "
                             "'promptlab history code-review'\n")


def test_shallow_clone_says_what_is_missing(story, gitproject, tmp_path, monkeypatch):
    clone = tmp_path / "shallow"
    subprocess.run(["git", "clone", "-q", "--depth", "2", f"file://{gitproject.root}",
                    str(clone)], check=True)
    monkeypatch.chdir(clone)
    result = run("history", "code-review", "--json")
    rows = json.loads(result.stdout)
    assert [(r["short"], r["changes"]) for r in rows] == [
        (story["edit-v1"], ["edited v1 (!)"]),
        (story["promote"], ["history before this commit not fetched (shallow clone)"]),
    ]
    assert result.stderr == (f"Warning: shallow clone: history before {story['promote']} was "
                             "not fetched; run 'git fetch --unshallow' to see all of it\n")


def test_console_script(console_script: str, story, gitproject):
    done = subprocess.run([console_script, "history", "code-review", "--fmt", "plain"],
                          capture_output=True, text=True, cwd=gitproject.root, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[1].split()[0] == story["edit-v1"]
    assert done.stdout.splitlines()[1].endswith("edited v1 (!)")


def test_history_does_not_modify_files(story, gitproject):
    before = gitproject.git("status", "--porcelain", "--ignored")
    mtimes = {p: p.lstat().st_mtime_ns for p in Path(gitproject.prompts).rglob("*")}
    run("history", "code-review")
    assert gitproject.git("status", "--porcelain", "--ignored") == before
    assert {p: p.lstat().st_mtime_ns for p in Path(gitproject.prompts).rglob("*")} == mtimes


def test_two_branches_adding_the_same_version(gitproject):
    g = gitproject
    g.write("p/v1.txt", "one\n")
    g.commit("init")
    g.git("checkout", "-q", "-b", "feature")
    g.write("p/v2.txt", "feature text\n")
    feature = g.commit("v2 on feature")
    g.git("checkout", "-q", "main")
    g.write("p/v2.txt", "main text\n")
    main_v2 = g.commit("v2 on main")
    g.git("merge", "-q", "feature", "-m", "merge", check=False)  # add/add conflict
    g.write("p/v2.txt", "resolved text\n")
    merge = g.commit("Merge feature")
    # walked oldest first in topological order, main's v2 comes first, so the feature
    # branch's v2 is the one flagged; the merge then changed main's v2 again
    assert changes(g, "p") == [
        (merge, ["edited v2 (!)"]),
        (feature, [f"added v2 (!) (another v2 text was committed in {main_v2})"]),
        (main_v2, ["added v2"]),
        (g.short("HEAD~1~1"), ["added v1"]),
    ]
    result = CliRunner().invoke(main, ["check", "--no-logs"])
    assert result.exit_code == 1
    assert "p/v2.txt: v2 was edited after it was committed" in result.stdout
