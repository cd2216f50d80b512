"""`promptlab check`: the CI gate for prompts."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from promptlab.cli import main
from promptlab.history import check_prompts, read_log_entries
from promptlab.registry import Registry


def run(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_log(log_dir: Path, *entries: dict, extra: str = "") -> None:
    log_dir.mkdir(parents=True, exist_ok=True)
    lines = "".join(json.dumps({"v": 1, **e}) + "\n" for e in entries)
    (log_dir / "2026-01-02.jsonl").write_text(lines + extra)


# -- clean projects --------------------------------------------------------------------------


def test_shipped_prompts_pass_outside_git(project):
    result = run("check")
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        f"Note: {project / 'prompts'} is not inside a git repository: skipped the immutability "
        "check",
        f"Note: no log folder at {Path.home() / 'llm-logs'}: skipped the logged-sha check",
        "OK: 2 prompts, 3 versions, 2 labels checked.",
    ]


def test_clean_repository_passes(gitproject):
    g = gitproject
    g.write("code-review/v1.txt", g.V1)
    g.link("code-review/current", "v1.txt")
    g.commit("v1")
    result = run("check", "--no-logs")
    assert (result.exit_code, result.stdout) == (0, "")
    assert result.stderr == "OK: 1 prompt, 1 version, 1 label checked.\n"


def test_no_commits_yet_skips_immutability_with_a_note(gitproject):
    gitproject.write("code-review/v1.txt", gitproject.V1)
    result = run("check", "--no-logs")
    assert result.exit_code == 0
    assert result.stderr.splitlines()[0] == ("Note: the repository has no commits yet: no "
                                             "version is released, skipped the immutability check")


# -- immutability ----------------------------------------------------------------------------


def test_committed_illegal_edit_fails(story, gitproject):
    result = run("check", "--no-logs")
    assert result.exit_code == 1
    assert result.stdout == (
        f"prompts/code-review/v1.txt: v1 was edited after it was committed (committed in "
        f"{story['add-v1']}, changed in {story['edit-v1']}); restore it (git checkout "
        f"{story['add-v1']} -- prompts/code-review/v1.txt) and put the new text in v3\n"
    )
    assert result.stderr == ("Warning: 1 problem in code-review (1 prompt, 2 versions, 1 label "
                             "checked)\n")


def test_restoring_the_text_fixes_it(story, gitproject):
    gitproject.write("code-review/v1.txt", gitproject.V1)
    assert run("check", "--no-logs").exit_code == 0  # fixed in the working tree already
    gitproject.commit("Restore v1")
    assert run("check", "--no-logs").exit_code == 0


def test_uncommitted_edit_of_a_committed_version_fails(story, gitproject):
    g = gitproject
    g.write("code-review/v1.txt", g.V1)
    g.commit("Restore v1")
    g.write("code-review/v2.txt", g.V2 + "Be brief.\n")
    result = run("check", "--no-logs")
    assert result.exit_code == 1
    assert result.stdout == (
        f"prompts/code-review/v2.txt: v2 was edited after it was committed (in "
        f"{story['add-v2']}); create v3 ('promptlab new code-review --from v2') and restore v2 "
        f"(git checkout {story['add-v2']} -- prompts/code-review/v2.txt)\n"
    )


def test_new_uncommitted_versions_are_fine(story, gitproject):
    g = gitproject
    g.write("code-review/v1.txt", g.V1)
    g.write("code-review/v3.txt", g.V2)
    result = run("check", "--no-logs")
    assert result.exit_code == 0, result.output


def test_removed_and_readded_with_other_text_fails(story, gitproject):
    g = gitproject
    g.write("code-review/v1.txt", g.V1)
    g.remove("code-review/v2.txt")
    g.link("code-review/current", "v1.txt")
    g.commit("Drop v2")
    g.write("code-review/v2.txt", g.V2.replace("checklist", "list"))
    readd = g.commit("New v2")
    result = run("check", "--no-logs", "code-review")
    assert result.exit_code == 1
    assert f"v2 was edited after it was committed (committed in {story['add-v2']}, changed in " \
           f"{readd})" in result.stdout


def test_base_treats_only_versions_at_the_fork_point_as_released(story, gitproject):
    g = gitproject
    g.write("code-review/v1.txt", g.V1)
    g.commit("Restore v1")
    g.git("checkout", "-q", "-b", "feature")
    g.write("code-review/v3.txt", "draft one\n")
    g.commit("Add v3")
    g.write("code-review/v3.txt", "draft two\n")
    g.commit("Polish v3")
    g.git("checkout", "-q", "main")
    g.write("elsewhere.txt", "main moves on\n")
    g.commit("Unrelated work on main")
    g.git("checkout", "-q", "feature")
    assert run("check", "--no-logs").exit_code == 1  # v3 changed after its first commit
    result = run("check", "--no-logs", "--base", "main")
    assert result.exit_code == 0, result.output  # …but v3 is not released on main yet
    g.write("code-review/v2.txt", "changed on the branch\n")
    g.commit("Edit v2 on the branch")
    result = run("check", "--no-logs", "--base", "main")
    assert result.exit_code == 1
    assert result.stdout.startswith("prompts/code-review/v2.txt: v2 was edited after it was "
                                    "committed")


def test_base_errors(story, gitproject):
    result = run("check", "--base", "nope")
    assert (result.exit_code, result.stderr) == (
        2, "Error: check --base: unknown revision 'nope'; try a branch, tag or commit id\n")


def test_base_outside_git(project):
    result = run("check", "--base", "main")
    assert result.exit_code == 2
    assert result.stderr == (f"Error: check: {project / 'prompts'} is not inside a git "
                             "repository; run 'git init' and commit your prompts\n")


def test_shallow_clone_notes_the_limit(story, gitproject, tmp_path, monkeypatch):
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", "--depth", "1", f"file://{gitproject.root}",
                    str(clone)], check=True)
    monkeypatch.chdir(clone)
    result = run("check", "--no-logs")
    assert result.exit_code == 0  # the illegal edit happened at the boundary: cannot be seen
    assert result.stderr.splitlines()[0] == (
        "Note: shallow clone: edits made before the oldest fetched commit cannot be seen; run "
        "'git fetch --unshallow' for a complete check")


# -- templates, labels, duplicates -------------------------------------------------------------


def test_template_label_and_duplicate_findings(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    folder = tmp_path / "prompts" / "bad"
    folder.mkdir(parents=True)
    schema = "---\ninput:\n  schema: {a: string, b?: string}\n---\n"
    (folder / "v1.txt").write_text(schema + "Hello {{ a }} {% if %}\n")
    (folder / "v2.txt").write_text(schema + "Hello {{ a }} {{ c }}\n")
    (folder / "v2.j2").write_text(schema + "Hello {{ a }} {{ b }}\n")
    (folder / "v3.txt").write_text("---\ninput: [1\n---\nx\n")
    (folder / "current").symlink_to("v9.txt")
    (folder / "production").symlink_to("../elsewhere/v1.txt")
    result = run("check", "--no-logs")
    assert result.exit_code == 1
    fix = "fix it with 'promptlab promote bad vN --label"
    assert result.stdout.splitlines() == [
        f"prompts/bad/current: label 'current' of bad points at v9.txt, which does not exist "
        f"(dangling label); {fix} current'",
        f"prompts/bad/production: label 'production' of bad points at ../elsewhere/v1.txt, "
        f"outside the prompt folder; {fix} production'",
        "prompts/bad/v1.txt:5: Jinja syntax error: Expected an expression, got 'end of "
        "statement block'",
        "prompts/bad/v2.j2: v2.j2 and v2.txt both define v2; keep one of them",
        "prompts/bad/v2.txt: variable 'c' is used but not declared in input.schema; add "
        "'c: string' (or 'c?: …')",
        "prompts/bad/v2.txt: variable 'b' is declared in input.schema but never used; use it "
        "or remove it",
        "prompts/bad/v3.txt:2: invalid front matter YAML: expected ',' or ']', but got "
        "'<stream end>'",
    ]
    assert result.stderr.endswith("Warning: 7 problems in bad (1 prompt, 4 versions, 2 labels "
                                  "checked)\n")


def test_prompts_without_schema_skip_the_variable_check(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    folder = tmp_path / "prompts" / "plain"
    folder.mkdir(parents=True)
    (folder / "v1.txt").write_text("Summarize {{ text }}\n")
    assert run("check", "--no-logs").exit_code == 0


def test_json_output(story, gitproject):
    result = run("check", "--json", "--no-logs")
    assert result.exit_code == 1
    data = json.loads(result.stdout)
    assert data["ok"] is False
    assert data["prompts"] == ["code-review"]
    assert data["checked"] == {"prompts": 1, "versions": 2, "labels": 1, "log_entries": 0}
    assert data["notes"] == []
    [finding] = data["findings"]
    assert finding["file"] == "prompts/code-review/v1.txt"
    assert (finding["check"], finding["version"], finding["line"]) == ("immutable", "v1", None)
    assert finding["message"].startswith("v1 was edited after it was committed")


def test_unknown_prompt_and_version_reference(project):
    result = run("check", "nope")
    assert result.exit_code == 2
    assert result.stderr.startswith("Error: unknown prompt 'nope' in ")
    result = run("check", "code-review@current")
    assert result.stderr == ("Error: check takes a prompt id, not 'code-review@current'; try "
                             "'promptlab check code-review'\n")


# -- logged shas -------------------------------------------------------------------------------


def test_logged_sha_that_no_longer_matches(story, gitproject, log_dir):
    g = gitproject
    v1 = g.prompts / "code-review" / "v1.txt"
    v2 = g.prompts / "code-review" / "v2.txt"
    old = hashlib.sha256(g.V1.encode()).hexdigest()
    write_log(
        log_dir,
        {"id": "a", "timestamp": "2026-01-02T10:00:00.000000Z", "prompt_id": "code-review",
         "prompt_version": "v1", "prompt_sha": old, "prompt_dirty": False},
        {"id": "b", "timestamp": "2026-01-02T11:00:00.000000Z", "prompt_id": "code-review",
         "prompt_version": "v1", "prompt_sha": old},
        {"id": "c", "timestamp": "2026-01-02T12:00:00.000000Z", "prompt_id": "code-review",
         "prompt_version": "v1", "prompt_sha": "f" * 64, "prompt_dirty": True},  # a draft
        {"id": "d", "prompt_id": "code-review", "prompt_version": "v2",
         "prompt_sha": sha256(v2)},
        {"id": "e", "prompt_id": "other", "prompt_version": "v1", "prompt_sha": "0" * 64},
        {"id": "f", "kind": "feedback", "target": "a", "scores": {"ok": True}},
        extra="{not json\n",
    )
    result = run("check")
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert lines[1] == (
        f"prompts/code-review/v1.txt: 2 logged calls used v1 with sha256 {old[:12]}, last "
        f"2026-01-02, but the file now hashes to {sha256(v1)[:12]}; restore v1's text and put "
        "the change in v3"
    )
    assert len(lines) == 2  # the immutability finding, then the log finding
    assert "6 log entries" in result.stderr
    assert (f"Note: skipped 1 unreadable log line(s) in {log_dir} (2026-01-02.jsonl:7)"
            in result.stderr)


def test_log_check_passes_when_shas_match(story, gitproject, log_dir):
    g = gitproject
    g.write("code-review/v1.txt", g.V1)
    g.commit("Restore v1")
    v1 = g.prompts / "code-review" / "v1.txt"
    write_log(log_dir, {"id": "a", "prompt_id": "code-review", "prompt_version": "v1",
                        "prompt_sha": sha256(v1)})
    result = run("check")
    assert result.exit_code == 0, result.output
    assert result.stderr == "OK: 1 prompt, 2 versions, 1 label, 1 log entry checked.\n"


def test_log_check_outside_git(project, log_dir):
    v1 = project / "prompts" / "code-review" / "v1.txt"
    write_log(log_dir, {"id": "a", "timestamp": "2026-01-02T10:00:00Z", "prompt_id": "code-review",
                        "prompt_version": "v1", "prompt_sha": "ab" * 32})
    result = run("check", "code-review")
    assert result.exit_code == 1
    assert result.stdout == (
        f"prompts/code-review/v1.txt: 1 logged call used v1 with sha256 abababababab, last "
        f"2026-01-02, but the "
        f"file now hashes to {sha256(v1)[:12]}; restore v1's text and put the change in v3\n"
    )


def test_no_logs_option_skips_the_log_check(project, log_dir):
    write_log(log_dir, {"id": "a", "prompt_id": "code-review", "prompt_version": "v1",
                        "prompt_sha": "ab" * 32})
    assert run("check", "--no-logs").exit_code == 0


def test_log_entries_come_through_the_log_reader(tmp_path):
    write_log(tmp_path, {"id": "a"}, {"id": "b"},
              extra='not json\n[1, 2]\n{"v": 1, "id": "torn\x00{"v": 1, "id": "c"}\n{"v": 1')
    skipped: list[str] = []
    assert [e["id"] for e in read_log_entries(tmp_path, skipped)] == ["a", "b", "c"]
    assert {"2026-01-02.jsonl:3", "2026-01-02.jsonl:4", "2026-01-02.jsonl:6"} <= set(skipped)


def test_library_entries_argument(project):
    registry = Registry(project / "prompts")
    report = check_prompts(registry, ["summarization"], entries=[
        {"prompt_id": "summarization", "prompt_version": "v1", "prompt_sha": "0" * 64}])
    assert [f.check for f in report.findings] == ["logs"]
    assert report.log_entries == 1


def test_console_script_exit_codes(console_script: str, story, gitproject):
    done = subprocess.run([console_script, "check", "--no-logs"], cwd=gitproject.root,
                          capture_output=True, text=True, check=False)
    assert done.returncode == 1
    assert done.stdout.startswith("prompts/code-review/v1.txt: v1 was edited after it was "
                                  "committed")


# -- the suggested restore command works as printed (issue 15, item 8) ------------------------


V1 = "user:\nFind the bug:\n{{ code }}\n"


def _git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, text=True,
                          capture_output=True).stdout.strip()


def _restore_command(stdout: str) -> str:
    import re

    commands = re.findall(r"\((git [^()]*)\)", stdout)
    assert len(commands) == 1, stdout
    return commands[0]


def _monorepo(tmp_path: Path, name: str = "v1.txt") -> tuple[Path, Path]:
    """`mono/` is the repository holding one commit; the project is `mono/app`."""
    root = tmp_path / "mono"
    folder = root / "app" / "prompts" / "code-review"
    folder.mkdir(parents=True)
    (folder / name).write_text(V1, encoding="utf-8")
    _git(root, "init", "-q")
    _git(root, "add", "-A")
    _git(root, "commit", "-qm", "add v1")
    return root, folder


@pytest.mark.parametrize("where", ["app", "app/prompts/code-review"])
def test_restore_advice_works_from_a_subfolder_of_the_repository(tmp_path, monkeypatch, where):
    root, folder = _monorepo(tmp_path)
    (folder / "v1.txt").write_text("edited\n", encoding="utf-8")
    _git(root, "commit", "-qam", "edit v1")
    monkeypatch.chdir(root / where)
    args = ["check", "--no-logs"] + (["--prompts-dir", "../.."] if where != "app" else [])
    result = run(*args)
    assert result.exit_code == 1
    command = _restore_command(result.stdout)
    shown = "prompts/code-review/v1.txt" if where == "app" else "v1.txt"
    assert command.endswith(f" -- {shown}"), command
    subprocess.run(command, shell=True, check=True, cwd=root / where)
    assert run(*args).exit_code == 0


def test_restore_advice_from_outside_the_repository_names_it(tmp_path, monkeypatch):
    root, folder = _monorepo(tmp_path)
    (folder / "v1.txt").write_text("edited\n", encoding="utf-8")
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    monkeypatch.chdir(outside)
    args = ["check", "--no-logs", "--prompts-dir", str(root / "app" / "prompts")]
    result = run(*args)
    assert result.exit_code == 1
    command = _restore_command(result.stdout)
    assert command.startswith(f"git -C {root.resolve()} checkout "), command
    subprocess.run(command, shell=True, check=True, cwd=outside)
    assert run(*args).exit_code == 0


def test_restore_advice_after_a_rename_uses_the_name_in_that_commit(tmp_path, monkeypatch):
    root, folder = _monorepo(tmp_path)
    _git(root, "mv", "app/prompts/code-review/v1.txt", "app/prompts/code-review/v1.md")
    (folder / "v1.md").write_text(V1 + "edited\n", encoding="utf-8")
    _git(root, "commit", "-qam", "rename and edit v1")
    monkeypatch.chdir(root / "app")
    result = run("check", "--no-logs")
    assert result.exit_code == 1
    command = _restore_command(result.stdout)
    first = _git(root, "rev-list", "--max-parents=0", "--abbrev-commit", "HEAD")
    assert command == (f"git show {first}:app/prompts/code-review/v1.txt > "
                       "prompts/code-review/v1.md")
    subprocess.run(command, shell=True, check=True, cwd=root / "app")
    assert not (folder / "v1.txt").exists()
    assert run("check", "--no-logs").exit_code == 0
