"""Provenance in the stamp: `prompt_commit` and `prompt_dirty`, cached per process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

import promptlab.history.stamp as history
from promptlab import Registry
from promptlab.cli import main
from promptlab.history import clear_provenance_cache, provenance


def stamp(root: Path, ref: str = "code-review") -> dict:
    registry = Registry(root / "prompts")
    return registry.get(ref).stamp()


def fields(root: Path, ref: str = "code-review") -> tuple:
    s = stamp(root, ref)
    return s["prompt_commit"], s["prompt_dirty"]


def test_outside_git_both_are_null(project):
    assert fields(project) == (None, None)
    result = CliRunner().invoke(main, ["render", "code-review", "--var", "code=x", "--json"])
    assert result.exit_code == 0
    data = json.loads(result.output)["stamp"]
    assert data["prompt_commit"] is None and data["prompt_dirty"] is None


def test_committed_clean_file_stamps_its_last_commit(story, gitproject):
    commit, dirty = fields(gitproject.root)  # current -> v2
    assert (commit, dirty) == (gitproject.sha(story["add-v2"]), False)
    # v1's last commit is the (illegal) edit, not the one that added it
    assert fields(gitproject.root, "code-review/v1") == (gitproject.sha(story["edit-v1"]), False)


def test_edit_in_working_tree_is_dirty_and_cache_notices(story, gitproject):
    assert fields(gitproject.root)[1] is False
    path = gitproject.write("code-review/v2.txt", gitproject.V2 + "one more line\n")
    assert fields(gitproject.root) == (gitproject.sha(story["add-v2"]), True)
    gitproject.git("add", str(path))  # staged, still differs from HEAD
    assert fields(gitproject.root) == (gitproject.sha(story["add-v2"]), True)
    gitproject.write("code-review/v2.txt", gitproject.V2)  # back to HEAD's text, index differs
    assert fields(gitproject.root) == (gitproject.sha(story["add-v2"]), False)


def test_new_commit_invalidates_the_cache(story, gitproject):
    assert fields(gitproject.root, "code-review/v1")[0] == gitproject.sha(story["edit-v1"])
    gitproject.write("code-review/v1.txt", gitproject.V1)
    assert fields(gitproject.root, "code-review/v1") == (gitproject.sha(story["edit-v1"]), True)
    restore = gitproject.commit("restore v1")
    assert fields(gitproject.root, "code-review/v1") == (gitproject.sha(restore), False)


def test_untracked_and_ignored_files_are_dirty_without_commit(story, gitproject):
    gitproject.write("code-review/v3.txt", "new\n")
    assert fields(gitproject.root, "code-review/v3") == (None, True)
    (gitproject.root / ".gitignore").write_text("prompts/secret/\n")
    gitproject.write("secret/v1.txt", "hidden\n")
    assert fields(gitproject.root, "secret") == (None, True)


def test_staged_but_never_committed(story, gitproject):
    gitproject.write("code-review/v3.txt", "new\n")
    gitproject.git("add", "prompts/code-review/v3.txt")
    assert fields(gitproject.root, "code-review/v3") == (None, True)


def test_untracked_after_rm_cached(story, gitproject):
    assert fields(gitproject.root)[1] is False
    gitproject.git("rm", "-q", "--cached", "prompts/code-review/v2.txt")
    # the text is still HEAD's, but the file is untracked now: dirty (and the index changed)
    assert fields(gitproject.root) == (gitproject.sha(story["add-v2"]), True)


def test_removed_then_recreated_file_has_no_commit(story, gitproject):
    gitproject.remove("code-review/v1.txt")
    gitproject.commit("drop v1")
    gitproject.write("code-review/v1.txt", gitproject.V1)
    assert fields(gitproject.root, "code-review/v1") == (None, True)


def test_no_commits_yet(gitproject):
    gitproject.write("code-review/v1.txt", gitproject.V1)
    assert fields(gitproject.root) == (None, True)


def test_detached_head(story, gitproject):
    gitproject.git("checkout", "-q", "--detach", story["promote"])
    assert fields(gitproject.root, "code-review/v1") == (gitproject.sha(story["add-v1"]), False)


def test_packed_refs(story, gitproject):
    gitproject.git("pack-refs", "--all", "--prune")
    assert not (gitproject.root / ".git/refs/heads/main").exists()
    assert fields(gitproject.root) == (gitproject.sha(story["add-v2"]), False)
    newer = gitproject.write("code-review/v2.txt", gitproject.V2 + "x\n")
    del newer
    commit = gitproject.commit("edit v2")  # writes a loose ref again
    assert fields(gitproject.root) == (gitproject.sha(commit), False)


def test_linked_worktree(story, gitproject, tmp_path):
    tree = tmp_path / "tree"
    gitproject.git("worktree", "add", "-q", "-b", "side", str(tree), story["add-v2"])
    assert (tree / ".git").is_file()
    assert fields(tree, "code-review/v1") == (gitproject.sha(story["add-v1"]), False)
    (tree / "prompts/code-review/v1.txt").write_text("changed on the side\n")
    assert fields(tree, "code-review/v1") == (gitproject.sha(story["add-v1"]), True)
    gitproject.git("commit", "-q", "-am", "side edit", cwd=tree)
    side = gitproject.git("rev-parse", "HEAD", cwd=tree)
    assert fields(tree, "code-review/v1") == (side, False)
    # the main checkout is not affected by the worktree's commit
    assert fields(gitproject.root, "code-review/v1") == (gitproject.sha(story["edit-v1"]), False)


def test_shallow_clone_commit_is_null_before_the_boundary(story, gitproject, tmp_path):
    clone = tmp_path / "shallow"
    subprocess.run(["git", "clone", "-q", "--depth", "1", f"file://{gitproject.root}",
                    str(clone)], check=True)
    # v1 changed in HEAD itself, but HEAD is the boundary: what came before is unknown
    assert fields(clone, "code-review/v1") == (None, False)
    (clone / "prompts/code-review/v1.txt").write_text("after clone\n")
    subprocess.run(["git", "commit", "-q", "-am", "edit after clone"], cwd=clone, check=True)
    after = subprocess.run(["git", "rev-parse", "HEAD"], cwd=clone, capture_output=True,
                           text=True, check=True).stdout.strip()
    assert fields(clone, "code-review/v1") == (after, False)


def test_warm_lookups_do_not_run_git(story, gitproject, monkeypatch):
    calls = []
    real = history._lookup
    monkeypatch.setattr(history, "_lookup", lambda *a: calls.append(a) or real(*a))
    registry = Registry(gitproject.prompts)
    prompt = registry.get("code-review")
    for _ in range(50):
        prompt.render(code="x")
    assert len(calls) == 1


def test_git_missing_gives_nulls(story, gitproject, monkeypatch):
    clear_provenance_cache()
    monkeypatch.setenv("PATH", "/nonexistent")
    path = gitproject.prompts / "code-review" / "v2.txt"
    assert provenance(path) == (None, None)


def test_render_never_imports_gitpython(story, gitproject):
    code = (
        "import sys\n"
        "from promptlab import Registry\n"
        "r = Registry('prompts')\n"
        "s = r.get('code-review').render(code='x').stamp\n"
        "print(s['prompt_commit'], s['prompt_dirty'], 'git' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=gitproject.root,
                          capture_output=True, text=True, check=True)
    assert done.stdout.split() == [gitproject.sha(story["add-v2"]), "False", "False"]


@pytest.mark.parametrize("dirty", [False, True])
def test_render_cli_shows_uncommitted_changes(story, gitproject, dirty):
    if dirty:
        gitproject.write("code-review/v2.txt", gitproject.V2 + "more\n")
    result = CliRunner().invoke(main, ["render", "code-review", "--var", "code=x"])
    assert result.exit_code == 0
    assert result.stderr.rstrip().endswith("(uncommitted changes)") is dirty


def test_the_registry_knows_nothing_of_git_provenance_is_passed_in(story, gitproject):
    import promptlab.registry

    plain = promptlab.registry.Registry(gitproject.prompts).get("code-review").render(code="x")
    assert (plain.stamp["prompt_commit"], plain.stamp["prompt_dirty"]) == (None, None)
    seen = []
    hooked = promptlab.registry.Registry(
        gitproject.prompts, provenance=lambda path: seen.append(path.name) or ("c0ffee", True))
    assert hooked.get("code-review").render(code="x").stamp["prompt_commit"] == "c0ffee"
    assert seen == ["v2.txt"]
    # the public Registry is the plain one with git provenance passed in
    assert issubclass(Registry, promptlab.registry.Registry)
    public = Registry(gitproject.prompts).get("code-review").render(code="x").stamp
    assert public["prompt_commit"] == gitproject.sha(story["add-v2"])
