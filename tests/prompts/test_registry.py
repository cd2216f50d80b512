"""The registry: ids, versions, labels, references, new and promote."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from promptlab.errors import (
    InvalidPromptIdError,
    LabelError,
    PromptNotFoundError,
    UsageError,
)
from promptlab.registry import Registry, parse_ref, validate_id


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def reg(tmp_path: Path) -> Registry:
    root = tmp_path / "prompts"
    for n in (1, 2, 10):
        write(root / "greet" / f"v{n}.txt", f"Hello v{n} {{{{ name }}}}")
    os.symlink("v2.txt", root / "greet" / "current")
    os.symlink("v1.txt", root / "greet" / "production.txt")
    return Registry(root)


def test_versions_sort_numerically(reg: Registry) -> None:
    assert [v.name for v in reg.versions("greet")] == ["v1", "v2", "v10"]


def test_default_is_current_label(reg: Registry) -> None:
    prompt = reg.get("greet")
    assert prompt.version.name == "v2"
    assert prompt.label == "current"
    assert prompt.render(name="Ada").text == "Hello v2 Ada"


def test_label_reference_and_label_with_extension(reg: Registry) -> None:
    prompt = reg.get("greet@production")
    assert (prompt.version.name, prompt.label) == ("v1", "production")
    assert reg.get("greet", label="production").version.name == "v1"
    assert prompt.labels == {"current": "v2", "production": "v1"}


def test_version_reference(reg: Registry) -> None:
    prompt = reg.get("greet/v10")
    assert (prompt.version.name, prompt.label) == ("v10", None)
    assert reg.get("greet", version="v1").version.name == "v1"
    assert reg.get("greet", version="v1.txt").version.name == "v1"


def test_without_current_label_newest_version_is_used(tmp_path: Path) -> None:
    root = tmp_path / "prompts"
    write(root / "x" / "v1.txt", "one")
    write(root / "x" / "v3.md", "three")
    prompt = Registry(root).get("x")
    assert (prompt.version.name, prompt.label) == ("v3", None)


def test_version_and_label_together_is_an_error(reg: Registry) -> None:
    with pytest.raises(UsageError, match="both version v1 and label 'current'"):
        reg.get("greet", version="v1", label="current")
    with pytest.raises(UsageError, match="both version v1 and label 'production'"):
        reg.get("greet@production", version="v1")


def test_unknown_prompt_lists_close_matches(reg: Registry) -> None:
    with pytest.raises(PromptNotFoundError, match="unknown prompt 'gret'.*did you mean greet"):
        reg.get("gret")


def test_unknown_version_and_label(reg: Registry) -> None:
    with pytest.raises(PromptNotFoundError, match="no version v7; versions: v1, v2, v10"):
        reg.get("greet/v7")
    with pytest.raises(LabelError, match="no label 'staging'; labels: current, production"):
        reg.get("greet@staging")


@pytest.mark.parametrize("bad", ["../x", "/etc", "a/../../b", "A", "x/", "", "x/v2", ".hidden", "a..", "a b"])
def test_invalid_ids_are_refused(reg: Registry, bad: str) -> None:
    with pytest.raises(InvalidPromptIdError):
        reg.prompt_dir(bad)


def test_id_folder_symlinked_outside_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "prompts"
    outside = tmp_path / "outside"
    write(outside / "v1.txt", "secret")
    root.mkdir()
    os.symlink(outside, root / "sneaky")
    with pytest.raises(InvalidPromptIdError, match="outside"):
        Registry(root).get("sneaky")


def test_dangling_label(reg: Registry) -> None:
    os.symlink("v9.txt", reg.path / "greet" / "staging")
    with pytest.raises(LabelError, match="label 'staging' of greet points at v9.txt, which does "
                                          "not exist.*promptlab promote greet vN --label staging"):
        reg.get("greet@staging")


def test_label_escaping_the_prompt_folder(reg: Registry, tmp_path: Path) -> None:
    write(tmp_path / "evil.txt", "evil")
    os.symlink(str(tmp_path / "evil.txt"), reg.path / "greet" / "evil")
    os.symlink("../../evil.txt", reg.path / "greet" / "evil2")
    for label in ("evil", "evil2"):
        with pytest.raises(LabelError, match="outside the prompt folder"):
            reg.get(f"greet@{label}")


def test_label_pointing_at_a_non_version_file(reg: Registry) -> None:
    write(reg.path / "greet" / "notes.txt", "notes")
    os.symlink("notes.txt", reg.path / "greet" / "odd")
    with pytest.raises(LabelError, match="not a version file"):
        reg.get("greet@odd")


def test_plain_file_label_fallback(tmp_path: Path) -> None:
    root = tmp_path / "prompts"
    write(root / "x" / "v1.txt", "one")
    write(root / "x" / "v2.txt", "two")
    write(root / "x" / "current", "v1\n")
    write(root / "x" / "README", "this is not a label at all, it is far too long to be one")
    registry = Registry(root)
    assert registry.get("x").version.name == "v1"
    assert registry.get("x").labels == {"current": "v1"}
    previous, new = registry.promote("x", "v2")
    assert (previous, new) == ("v1", "v2")
    assert (root / "x" / "current").read_text() == "v2\n"
    assert not (root / "x" / "current").is_symlink()


def test_duplicate_version_numbers(tmp_path: Path) -> None:
    root = tmp_path / "prompts"
    write(root / "x" / "v2.txt", "a")
    write(root / "x" / "v2.j2", "b")
    registry = Registry(root)
    assert set(registry.duplicate_versions("x")) == {"v2"}
    with pytest.raises(PromptNotFoundError, match=r"has v2\.(j2|txt) and v2\.(j2|txt) for v2; remove one"):
        registry.get("x/v2")


def test_nested_ids(tmp_path: Path) -> None:
    root = tmp_path / "prompts"
    write(root / "support" / "triage" / "v1.txt", "triage {{ t }}")
    write(root / "support" / "reply" / "v1.txt", "reply")
    registry = Registry(root)
    assert registry.ids() == ["support/reply", "support/triage"]
    assert registry.get("support/triage/v1").render(t="x").text == "triage x"


def test_missing_prompts_folder(tmp_path: Path) -> None:
    with pytest.raises(PromptNotFoundError, match="prompts folder .* does not exist; run 'promptlab init'"):
        Registry(tmp_path / "nowhere").ids()


def test_promote_is_atomic_and_keeps_label_file_name(reg: Registry) -> None:
    folder = reg.path / "greet"
    assert reg.promote("greet", "v10", "production") == ("v1", "v10")
    assert os.readlink(folder / "production.txt") == "v10.txt"
    assert not (folder / "production").exists()
    assert reg.promote("greet", "v1", "canary") == (None, "v1")
    assert os.readlink(folder / "canary") == "v1.txt"
    assert [p.name for p in folder.iterdir() if p.name.endswith(".tmp")] == []


def test_promote_refuses_bad_input(reg: Registry) -> None:
    with pytest.raises(PromptNotFoundError, match="no version v99"):
        reg.promote("greet", "v99")
    with pytest.raises(LabelError, match="invalid label name 'v3'"):
        reg.promote("greet", "v1", "v3")
    with pytest.raises(UsageError, match="invalid version 'latest'"):
        reg.promote("greet", "latest")
    assert os.readlink(reg.path / "greet" / "current") == "v2.txt"


def test_new_copies_current_and_never_overwrites(reg: Registry) -> None:
    path = reg.new("greet")
    assert path.name == "v11.txt"
    assert path.read_text() == "Hello v2 {{ name }}"
    path = reg.new("greet", from_version="v1")
    assert path.name == "v12.txt"
    assert path.read_text() == "Hello v1 {{ name }}"


def test_new_prompt_gets_starter_and_current(tmp_path: Path) -> None:
    registry = Registry(tmp_path / "prompts")
    (tmp_path / "prompts").mkdir()
    path = registry.new("fresh", description="A fresh one")
    assert path == tmp_path / "prompts" / "fresh" / "v1.txt"
    prompt = registry.get("fresh")
    assert prompt.label == "current" and prompt.description == "A fresh one"
    assert prompt.render(text="hi").messages[-1] == {"role": "user", "content": "hi"}
    with pytest.raises(PromptNotFoundError, match="there is no v3 to copy"):
        registry.new("other", from_version="v3")


def test_parse_ref() -> None:
    assert parse_ref("a") == ("a", None, None)
    assert parse_ref("a@prod") == ("a", None, "prod")
    assert parse_ref("a/v3") == ("a", "v3", None)
    assert parse_ref("a/b") == ("a/b", None, None)
    assert parse_ref("a/b/v12") == ("a/b", "v12", None)
    with pytest.raises(UsageError, match="empty label"):
        parse_ref("a@")


segment = st.from_regex(r"[a-z0-9][a-z0-9._-]{0,12}", fullmatch=True).filter(
    lambda s: not s.endswith(".") and not (s[0] == "v" and s[1:].isdigit())
)


@given(st.lists(segment, min_size=1, max_size=3))
def test_valid_ids_are_accepted(segments: list[str]) -> None:
    prompt_id = "/".join(segments)
    assert validate_id(prompt_id) == prompt_id


@given(st.text(max_size=20))
def test_accepted_ids_never_escape(text: str) -> None:
    try:
        validate_id(text)
    except InvalidPromptIdError:
        return
    parts = text.split("/")
    assert ".." not in parts and "." not in parts and not text.startswith("/")
    assert all(p and p[0].isalnum() and p == p.lower() for p in parts)


@given(st.lists(st.integers(min_value=0, max_value=10**6), min_size=1, max_size=15, unique=True))
def test_version_sorting_is_numeric(tmp_path_factory: pytest.TempPathFactory, numbers: list[int]) -> None:
    root = tmp_path_factory.mktemp("p") / "prompts"
    for n in numbers:
        write(root / "x" / f"v{n}.txt", str(n))
    assert [v.number for v in Registry(root).versions("x")] == sorted(numbers)
