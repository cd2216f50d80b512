"""The prompt registry: `prompts/<id>/vN.<ext>` version files and label symlinks.

A prompt id is a folder path under the prompts folder (`code-review`, `support/triage`);
a version is a file `v<N>.<ext>`; a label is a symlink (or, where symlinks are impossible,
a small plain file holding a version name) in the prompt folder. `current` is the label
used when neither a version nor a label is asked for.
"""

from __future__ import annotations

import contextlib
import difflib
import errno
import json
import os
import re
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from promptlab.errors import (
    InvalidPromptIdError,
    LabelError,
    PromptlabError,
    PromptNotFoundError,
    UsageError,
)
from promptlab.template import Rendered, RenderLimits, Template

# Where a version file's text came from: (last commit touching it, uncommitted changes?).
Provenance = Callable[[Path], tuple[str | None, bool | None]]

VERSION_EXTS = (".txt", ".j2", ".jinja", ".md")
DEFAULT_LABEL = "current"
# Always `fullmatch`: `$` would also match before a final newline ("evil\n").
_SEGMENT = re.compile(r"[a-z0-9][a-z0-9._-]*")
_VERSION_NAME = re.compile(r"v(0|[1-9][0-9]*)")
_VERSION_FILE = re.compile(r"v(0|[1-9][0-9]*)(\.txt|\.j2|\.jinja|\.md)")
_LABEL_NAME = _SEGMENT
# File names stay far below NAME_MAX (255 bytes) with a suffix or a temporary name added,
# and a nested id far below PATH_MAX.
MAX_NAME = 100
MAX_ID = 200
_PLAIN_LABEL_MAX = 64
NEW_TEMPLATE = """\
---
description: {description}
model: gpt-4o-mini
config: {{temperature: 0.2}}
input:
  schema: {{text: string}}
---
system:
You are a helpful assistant.
user:
{{{{ text }}}}
"""


def _yaml_string(text: str) -> str:
    """`text` as one line of YAML that reads back as exactly `text`.

    A description is user input: unquoted, `Note: hi` or `[draft` breaks the front matter
    and a newline could add keys or end it. A JSON string is a YAML double-quoted scalar;
    line and paragraph separators YAML would fold are escaped too.
    """
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:  # bytes that are not UTF-8 in argv (surrogate escapes)
        raise UsageError(f"description {text!r} is not valid UTF-8 text; "
                         "pass it in your terminal's UTF-8 encoding") from exc
    quoted = json.dumps(text, ensure_ascii=False)
    return quoted.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029").replace(
        "\x85", "\\x85")


def validate_id(prompt_id: str) -> str:
    """Return `prompt_id` if it is a valid id, else raise InvalidPromptIdError.

    Valid: one or more `/`-separated segments of `[a-z0-9][a-z0-9._-]*` (at most MAX_NAME
    characters each, MAX_ID in all), none of them a version name (`v2`) and none ending in
    `.` (so `..` and friends are impossible).
    """
    if not isinstance(prompt_id, str) or not prompt_id:
        raise InvalidPromptIdError("a prompt id must be a non-empty string")
    if len(prompt_id) > MAX_ID or any(len(seg) > MAX_NAME for seg in prompt_id.split("/")):
        raise InvalidPromptIdError(
            f"prompt id {_shorten(prompt_id)} is too long: at most {MAX_NAME} characters per "
            f"'/'-separated part and {MAX_ID} in all"
        )
    for seg in prompt_id.split("/"):
        if not _SEGMENT.fullmatch(seg) or seg.endswith(".") or _VERSION_NAME.fullmatch(seg):
            raise InvalidPromptIdError(
                f"invalid prompt id {_shorten(prompt_id)}: use lowercase letters, digits, '.', "
                "'_', '-' (starting with a letter or digit), '/' between nested ids, and no '..'"
            )
    return prompt_id


def validate_label(label: str) -> str:
    """Return `label` if it can name a label, else raise LabelError.

    A label is never a version name (`v1`, `v1.txt`) and never ends in a template suffix
    (`current.txt` would be a second `current`), so it can never take a version file's place.
    """
    if not isinstance(label, str) or not label:
        raise LabelError("a label must be a non-empty string")
    if len(label) > MAX_NAME:
        raise LabelError(f"label {_shorten(label)} is too long: at most {MAX_NAME} characters")
    if not _LABEL_NAME.fullmatch(label) or label.endswith("."):
        raise LabelError(f"invalid label name {_shorten(label)}: use lowercase letters, digits, "
                         "'.', '_', '-', starting with a letter or digit")
    stem, ext = _split_ext(label)
    if _VERSION_NAME.fullmatch(stem):
        raise LabelError(f"invalid label name {label!r}: {stem} is a version name, and a label "
                         "can never take a version's place; pick a name like 'production'")
    if ext:
        raise LabelError(f"invalid label name {label!r}: a label never ends in a template "
                         f"suffix ({', '.join(VERSION_EXTS)}); use {stem!r}")
    return label


def _split_ext(filename: str) -> tuple[str, str]:
    for ext in VERSION_EXTS:
        if filename.endswith(ext) and len(filename) > len(ext):
            return filename[: -len(ext)], ext
    return filename, ""


def _shorten(value: str, limit: int = 60) -> str:
    """`value` for an error message: repr, cut in the middle when long."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[:40]}…{text[-12:]} ({len(value)} characters)"


def is_version_name(name: str) -> bool:
    return bool(_VERSION_NAME.fullmatch(name))


def parse_ref(ref: str) -> tuple[str, str | None, str | None]:
    """Split `id`, `id@label` or `id/vN` into (id, version, label)."""
    if "@" in ref:
        prompt_id, _, label = ref.partition("@")
        if not label:
            raise UsageError(f"reference {ref!r} has an empty label after '@'")
        return prompt_id, None, label
    head, _, last = ref.rpartition("/")
    if head and _VERSION_NAME.fullmatch(last):
        return head, last, None
    return ref, None, None


@dataclass(frozen=True, order=True)
class Version:
    """One version file of a prompt."""

    number: int
    path: Path

    @property
    def name(self) -> str:
        return f"v{self.number}"

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True)
class Label:
    """A label in a prompt folder: its name, its file, and the version it points at."""

    name: str
    path: Path
    target: str  # what the symlink or plain file says, as written
    version: str | None  # resolved version name, or None when dangling/invalid
    problem: str | None = None  # why it does not resolve


class Prompt:
    """A prompt id with its versions and labels, resolved to one selected version."""

    def __init__(self, registry: Registry, prompt_id: str, version: Version, label: str | None):
        self.registry = registry
        self.id = prompt_id
        self.version = version
        self.label = label

    def __repr__(self) -> str:
        suffix = f"@{self.label}" if self.label else ""
        return f"<Prompt {self.id}/{self.version.name}{suffix}>"

    @property
    def dir(self) -> Path:
        return self.registry.prompt_dir(self.id)

    @property
    def path(self) -> Path:
        return self.version.path

    @property
    def versions(self) -> list[Version]:
        return self.registry.versions(self.id)

    @property
    def labels(self) -> dict[str, str | None]:
        """Label name -> version name it points at (None when dangling)."""
        return {lab.name: lab.version for lab in self.registry.labels(self.id)}

    @cached_property
    def template(self) -> Template:
        return Template.load(self.version.path)

    @property
    def description(self) -> str | None:
        return self.template.front.description

    @property
    def model(self) -> str | None:
        return self.template.front.model

    @property
    def config(self) -> dict[str, Any]:
        return self.template.front.config

    def stamp(self, template: Template | None = None) -> dict[str, Any]:
        """The fields a log entry carries to say which prompt text produced it.

        `prompt_commit` and `prompt_dirty` come from the registry's `provenance` hook
        (git, supplied by `promptlab.Registry`); without one they are None.
        """
        template = template or Template.load(self.version.path)
        hook = self.registry.provenance
        commit, dirty = hook(self.version.path) if hook is not None else (None, None)
        return {
            "prompt_id": self.id,
            "prompt_version": self.version.name,
            "prompt_label": self.label,
            "prompt_sha": template.sha256,
            "prompt_commit": commit,
            "prompt_dirty": dirty,
        }

    def render(self, variables: dict[str, Any] | None = None, /, **kwargs: Any) -> Rendered:
        """Render this version with `variables` (and/or keyword variables)."""
        values = {**(variables or {}), **kwargs}
        template = Template.load(self.version.path)
        messages = template.render_messages(values, self.registry.limits)
        return Rendered(
            messages=messages,
            model=template.front.model,
            config=dict(template.front.config),
            stamp=self.stamp(template),
        )


class Registry:
    """The prompts folder. `Registry("prompts").get("code-review").render(code=...)`.

    `provenance` says where a version file's text came from; it fills the stamp's
    `prompt_commit` and `prompt_dirty`. This class knows nothing of git: the public
    `promptlab.Registry` (from `promptlab.history`) passes the git look-up in.
    `limits` bound every render (default: the project's settings when `path` is not
    given, else `render_timeout_s` 2 s and `render_max_chars` 2,000,000).
    """

    def __init__(self, path: str | os.PathLike[str] | None = None, *,
                 provenance: Provenance | None = None, limits: RenderLimits | None = None):
        if path is None:
            from promptlab.config import load_settings

            settings = load_settings()
            path = settings.prompts_dir
            limits = limits or RenderLimits.from_settings(settings)
        self.path = Path(path).absolute()
        self.provenance = provenance
        self.limits = limits or RenderLimits()

    def __repr__(self) -> str:
        return f"<Registry {self.path}>"

    # -- locating ------------------------------------------------------------------------

    def _require_root(self) -> Path:
        if self.path.exists() and not self.path.is_dir():
            raise PromptNotFoundError(
                f"prompts folder {self.path} is a file, not a folder; point --prompts-dir "
                "(env PROMPTLAB_PROMPTS_DIR) at the folder holding the prompts"
            )
        if not self.path.is_dir():
            raise PromptNotFoundError(
                f"prompts folder {self.path} does not exist; run 'promptlab init' or pass "
                "--prompts-dir (env PROMPTLAB_PROMPTS_DIR)"
            )
        return self.path

    def prompt_dir(self, prompt_id: str) -> Path:
        """The folder of `prompt_id`, refusing ids that resolve outside the prompts folder."""
        validate_id(prompt_id)
        root = self._require_root()
        folder = root / prompt_id
        real_root = Path(os.path.realpath(root))
        real = Path(os.path.realpath(folder))
        if real != real_root and real_root not in real.parents:
            raise InvalidPromptIdError(
                f"prompt id {prompt_id!r} resolves to {real}, outside {root}; refusing it"
            )
        return folder

    def ids(self) -> list[str]:
        """Every prompt id (a folder holding at least one version file), sorted."""
        root = self._require_root()
        found: list[str] = []
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = sorted(d for d in dirnames if _SEGMENT.fullmatch(d) and not d.endswith("."))
            if any(_VERSION_FILE.fullmatch(f) for f in filenames):
                rel = Path(dirpath).relative_to(root).as_posix()
                if rel != ".":
                    try:
                        found.append(validate_id(rel))
                    except InvalidPromptIdError:
                        continue
        return sorted(found)

    def __iter__(self) -> Iterator[str]:
        return iter(self.ids())

    def exists(self, prompt_id: str) -> bool:
        try:
            folder = self.prompt_dir(prompt_id)
        except PromptlabError:
            return False
        return _has_versions(folder)

    def _require_prompt(self, prompt_id: str) -> Path:
        folder = self.prompt_dir(prompt_id)
        if not _has_versions(folder):
            known = self.ids()
            close = difflib.get_close_matches(prompt_id, known, n=3, cutoff=0.5)
            hint = (f"; did you mean {', '.join(close)}?" if close
                    else f"; known prompts: {', '.join(known)}" if known
                    else "; create it with 'promptlab new " + prompt_id + "'")
            raise PromptNotFoundError(f"unknown prompt {prompt_id!r} in {self.path}{hint}")
        return folder

    # -- versions and labels -------------------------------------------------------------

    def versions(self, prompt_id: str) -> list[Version]:
        """The versions of `prompt_id`, sorted by number (v2 before v10)."""
        folder = self._require_prompt(prompt_id)
        versions = []
        for entry in os.scandir(folder):
            m = _VERSION_FILE.fullmatch(entry.name)
            if m and not entry.is_symlink() and entry.is_file():
                versions.append(Version(int(m.group(1)), Path(entry.path)))
        versions.sort()
        return versions

    def newest(self, prompt_id: str) -> Version:
        """The highest-numbered version, or PromptNotFoundError when the folder holds no
        version file that is a regular file (only links where versions belong)."""
        versions = self.versions(prompt_id)
        if not versions:
            raise PromptNotFoundError(f"prompt {prompt_id!r} has no version file that is a "
                                      "regular file; run 'promptlab check' to see why")
        return versions[-1]

    def duplicate_versions(self, prompt_id: str) -> dict[str, list[Path]]:
        """Version names held by more than one file (`v2.txt` and `v2.j2`)."""
        by_name: dict[str, list[Path]] = {}
        for v in self.versions(prompt_id):
            by_name.setdefault(v.name, []).append(v.path)
        return {name: paths for name, paths in by_name.items() if len(paths) > 1}

    def version(self, prompt_id: str, name: str) -> Version:
        """The version called `name` (`v2`, or `v2.txt`)."""
        name = name.strip()
        stem = _VERSION_FILE.fullmatch(name)
        if stem:
            name = f"v{stem.group(1)}"
        if not _VERSION_NAME.fullmatch(name) or len(name) > MAX_NAME:
            raise UsageError(f"invalid version {_shorten(name)}: versions are named v1, v2, …")
        return self._version_in(self._require_prompt(prompt_id), prompt_id, name)

    def _version_in(self, folder: Path, prompt_id: str, name: str) -> Version:
        # Look the few possible file names up directly: no folder scan on the hot path.
        matches = [p for p in (folder / f"{name}{ext}" for ext in VERSION_EXTS)
                   if p.is_file() and not p.is_symlink()]
        if not matches:
            names = ", ".join(v.name for v in self.versions(prompt_id)) or "none"
            raise PromptNotFoundError(f"prompt {prompt_id!r} has no version {name}; "
                                      f"versions: {names}")
        if len(matches) > 1:
            files = " and ".join(p.name for p in matches)
            raise PromptNotFoundError(f"prompt {prompt_id!r} has {files} for {name}; "
                                      "remove one of them")
        return Version(int(name[1:]), matches[0])

    def labels(self, prompt_id: str) -> list[Label]:
        """Every label in the prompt folder, resolved or with the reason it does not resolve.

        A label defined twice (`current` and `current.txt`) is listed once, as the file
        `get` reads (`current` before `current.txt`, …); `problems` reports the other.
        """
        folder = self._require_prompt(prompt_id)
        labels: dict[str, Label] = {}
        for entry in sorted(os.scandir(folder), key=lambda e: _label_precedence(e.name)):
            if _VERSION_FILE.fullmatch(entry.name) and not entry.is_symlink():
                continue
            if entry.is_symlink():
                target = os.readlink(entry.path)
                name = label_of(entry.name)
            elif entry.is_file() and "." not in entry.name:
                target = _read_plain_label(Path(entry.path))
                if target is None:
                    continue
                name = entry.name
            else:
                continue
            if name is None or name in labels:
                continue
            labels[name] = self._resolve_label(folder, name, Path(entry.path), target)
        return sorted(labels.values(), key=lambda lab: lab.name)

    def _resolve_label(self, folder: Path, name: str, path: Path, target: str) -> Label:
        where = f"label {name!r} of {folder.name}"
        if os.path.isabs(target) or "/" in target.replace(os.sep, "/"):
            try:
                resolved = (folder / target).resolve()
            except (OSError, RuntimeError) as exc:  # a loop is a RuntimeError before 3.13
                looped = isinstance(exc, RuntimeError) or exc.errno == errno.ELOOP
                why = "loops back on itself" if looped else f"cannot be followed ({exc})"
                return Label(name, path, target, None, f"{where} points at {target}, which "
                             f"{why} (dangling label)")
            if resolved.parent != folder.resolve():
                return Label(name, path, target, None,
                             f"{where} points at {target}, outside the prompt folder")
            target_name = resolved.name
        else:
            target_name = target
        m = _VERSION_FILE.fullmatch(target_name) or _VERSION_NAME.fullmatch(target_name)
        if not m:
            return Label(name, path, target, None,
                         f"{where} points at {target!r}, which is not a version file (vN.txt)")
        if _VERSION_NAME.fullmatch(target_name):
            candidates = [folder / f"{target_name}{ext}" for ext in VERSION_EXTS]
            existing = [c for c in candidates if c.is_file() and not c.is_symlink()]
            if not existing:
                return Label(name, path, target, None, f"{where} points at {target_name}, "
                             "which does not exist")
            return Label(name, path, target, target_name)
        target_path = folder / target_name
        if not target_path.is_file() or target_path.is_symlink():
            return Label(name, path, target, None, f"{where} points at {target_name}, "
                         "which does not exist (dangling label)")
        return Label(name, path, target, f"v{m.group(1)}")

    def label(self, prompt_id: str, name: str) -> Label | None:
        """The label called `name` (file `name` or `name.<ext>`), or None when there is none."""
        return self._label_in(self._require_prompt(prompt_id), validate_label(name))

    def _label_in(self, folder: Path, name: str) -> Label | None:
        for filename in (name, *(f"{name}{ext}" for ext in VERSION_EXTS)):
            path = folder / filename
            if path.is_symlink():
                return self._resolve_label(folder, name, path, os.readlink(path))
            if filename == name and path.is_file():
                target = _read_plain_label(path)
                if target is not None:
                    return self._resolve_label(folder, name, path, target)
        return None

    # -- get -------------------------------------------------------------------------------

    def get(self, ref: str, version: str | None = None, label: str | None = None) -> Prompt:
        """Resolve a reference to one version.

        `ref` is an id, `id@label` or `id/vN`. Without a version or label, the `current`
        label is used, or the newest version when the prompt has no `current` label.
        """
        prompt_id, ref_version, ref_label = parse_ref(ref)
        for what, value, example in (("version", version, "v1"), ("label", label, "current")):
            if value is not None and not value.strip():
                raise UsageError(f"the {what} asked for of {prompt_id!r} is empty; name one "
                                 f"(e.g. {example})")
        if ref_version and version and ref_version != version:
            raise UsageError(f"{ref!r} names {ref_version} but --version says {version}")
        if ref_label and label and ref_label != label:
            raise UsageError(f"{ref!r} names label {ref_label} but --label says {label}")
        version = version or ref_version
        label = label or ref_label
        if version and label:
            raise UsageError(f"asked for both version {version} and label {label!r} of "
                             f"{prompt_id!r}; give one of them")
        folder = self._require_prompt(prompt_id)
        if version:
            return Prompt(self, prompt_id, self.version(prompt_id, version), None)
        wanted = validate_label(label) if label else DEFAULT_LABEL
        lab = self._label_in(folder, wanted)
        if lab is None:
            if label is None:
                return Prompt(self, prompt_id, self.newest(prompt_id), None)
            names = ", ".join(lab.name for lab in self.labels(prompt_id)) or "none"
            raise LabelError(f"prompt {prompt_id!r} has no label {wanted!r}; labels: {names}")
        if lab.version is None:
            raise LabelError(f"{lab.problem}; fix it with 'promptlab promote {prompt_id} vN "
                             f"--label {wanted}'")
        return Prompt(self, prompt_id, self._version_in(folder, prompt_id, lab.version), wanted)

    def render(self, ref: str, variables: dict[str, Any] | None = None, /, **kwargs: Any) -> Rendered:
        """Shortcut for `registry.get(ref).render(...)`."""
        return self.get(ref).render(variables, **kwargs)

    # -- changing things -----------------------------------------------------------------

    def new(self, prompt_id: str, from_version: str | None = None,
            description: str | None = None) -> Path:
        """Create the next version and return its path; never overwrites a file.

        An existing prompt gets a copy of `from_version`, else of the `current` label's
        version, else of the newest. A new prompt gets a starter template as v1 and a
        `current` label pointing at it.
        """
        validate_id(prompt_id)
        if not self.exists(prompt_id):
            if from_version:
                raise PromptNotFoundError(f"prompt {prompt_id!r} does not exist, so there is no "
                                          f"{from_version} to copy; omit --from to start it")
            return self._start(prompt_id, description)
        if from_version:
            source = self.version(prompt_id, from_version)
        else:
            lab = self.label(prompt_id, DEFAULT_LABEL)
            source = (self.version(prompt_id, lab.version) if lab and lab.version
                      else self.newest(prompt_id))
        number = self.newest(prompt_id).number + 1
        path = self.prompt_dir(prompt_id) / f"v{number}{source.path.suffix}"
        _write_new(path, source.path.read_bytes())
        return path

    def _start(self, prompt_id: str, description: str | None) -> Path:
        """A new prompt: v1 from the starter template and a `current` label. Everything
        that could refuse it is checked first; a failure after that removes what was made."""
        text = NEW_TEMPLATE.format(description=_yaml_string(description or f"{prompt_id} prompt"))
        folder = self.prompt_dir(prompt_id)
        missing = _missing_folders(self.path, folder, prompt_id)
        path = folder / "v1.txt"
        if not missing:
            self._label_slot(folder, DEFAULT_LABEL)
            if os.path.lexists(path):
                raise UsageError(f"{path} exists and is not a version file; move it away, "
                                 "then run 'promptlab new' again")
        try:
            for made in missing:
                made.mkdir()
        except OSError as exc:
            _remove_folders(missing)
            raise UsageError(f"cannot create {exc.filename or folder}: "
                             f"{exc.strerror or exc}; nothing was created") from exc
        try:
            _write_new(path, text.encode("utf-8"))
            try:
                self.promote(prompt_id, "v1", DEFAULT_LABEL)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(path)
                raise
        except BaseException:
            _remove_folders(missing)
            raise
        return path

    def promote(self, prompt_id: str, version: str, label: str = DEFAULT_LABEL) -> tuple[str | None, str]:
        """Point `label` at `version` atomically; return (previous version or None, version).

        Only a label is ever replaced: a label name is never a version's, and a file,
        folder or link of that name that is not a label is left alone (LabelError).
        """
        validate_label(label)
        target = self.version(prompt_id, version)
        folder = self.prompt_dir(prompt_id)
        existing, link = self._label_slot(folder, label)
        previous = existing.version if existing else None
        tmp = folder / f".{label}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
        plain = existing is not None and not existing.path.is_symlink()
        try:
            if plain:
                tmp.write_text(target.name + "\n", encoding="utf-8")
            else:
                try:
                    os.symlink(target.path.name, tmp)
                except (OSError, NotImplementedError):  # no symlinks here: plain-file label
                    tmp.write_text(target.name + "\n", encoding="utf-8")
            os.replace(tmp, link)
        finally:
            if os.path.lexists(tmp):
                os.unlink(tmp)
        return previous, target.name

    def _label_slot(self, folder: Path, label: str) -> tuple[Label | None, Path]:
        """The label `label` in `folder` (None when there is none) and the file a promote
        writes; LabelError when that name is taken by something that is not a label."""
        existing = self._label_in(folder, label)
        link = existing.path if existing else folder / label
        if existing is None and os.path.lexists(link):
            raise LabelError(f"{link} exists and is not a label; promptlab never replaces it: "
                             "move it away or pick another label name")
        return existing, link

    def problems(self, prompt_id: str) -> list[tuple[Path, str]]:
        """Files in the prompt folder that are not what their name says: a symlink (or
        anything but a regular file) where a version file belongs, a link or label file
        whose name cannot be a label, a label defined twice (`current` and `current.txt`)."""
        folder = self._require_prompt(prompt_id)
        real_folder = os.path.realpath(folder)
        found: list[tuple[Path, str]] = []
        label_files: dict[str, list[str]] = {}
        for entry in sorted(os.scandir(folder), key=lambda e: e.name):
            name, path = entry.name, Path(entry.path)
            if _VERSION_FILE.fullmatch(name):
                if entry.is_symlink():
                    target = os.readlink(entry.path)
                    inside = os.path.dirname(os.path.realpath(entry.path)) == real_folder
                    where = "in this folder" if inside else "outside the prompt folder"
                    found.append((path, f"{name} is a symlink to {target} ({where}) where a "
                                        "version file belongs; a version must be a regular "
                                        f"file: restore its text (git checkout -- {name})"))
                elif not entry.is_file():
                    found.append((path, f"{name} is not a regular file, where a version file "
                                        "belongs; move it away"))
                continue
            if entry.is_symlink():
                label = label_of(name)
                if label is None:
                    found.append((path, f"{name} is a link but cannot be a label (a label is "
                                        "never a version name nor ends in a template suffix); "
                                        "rename or remove it"))
                    continue
                label_files.setdefault(label, []).append(name)
            elif entry.is_file() and "." not in name and _read_plain_label(path) is not None:
                if label_of(name) is None:
                    found.append((path, f"{name} is a label file named like a version; "
                                        "rename or remove it"))
                    continue
                label_files.setdefault(name, []).append(name)
        for label, names in sorted(label_files.items()):
            if len(names) > 1:
                found.append((folder / names[0], f"label {label!r} is defined twice "
                                                 f"({' and '.join(names)}); remove one of them"))
        return found


def _missing_folders(root: Path, folder: Path, prompt_id: str) -> list[Path]:
    """The folders from `root` down to `folder` that do not exist yet, outermost first;
    UsageError naming the first part of the way that exists but is not a folder."""
    missing = []
    here = root
    for part in folder.relative_to(root).parts:
        here = here / part
        if missing or not os.path.lexists(here):
            missing.append(here)
        elif not here.is_dir():
            parent = here.parent.relative_to(root).as_posix()
            hint = (f" (to add a version of {parent!r}, run 'promptlab new {parent}')"
                    if parent != "." and _has_versions(here.parent) else "")
            raise UsageError(f"{here} exists and is not a folder, so it cannot hold prompt "
                             f"{prompt_id!r}; pick another id{hint}")
    return missing


def _remove_folders(folders: list[Path]) -> None:
    """Remove the folders `_start` made (innermost first), if they are still empty."""
    for made in reversed(folders):
        with contextlib.suppress(OSError):
            made.rmdir()


def _has_versions(folder: Path) -> bool:
    """A version-file name that is not a folder: what `ids()` lists as a prompt (os.walk's
    filenames), so a FIFO or a link where v1.txt belongs makes a prompt `check` reports on,
    not an 'unknown prompt' that breaks every listing."""
    try:
        with os.scandir(folder) as entries:
            return any(_VERSION_FILE.fullmatch(e.name) and not e.is_dir() for e in entries)
    except OSError:
        return False


def _label_precedence(filename: str) -> tuple[str, int]:
    """Sort key putting, for one label name, the file `_label_in` reads first: the bare
    name, then `name.txt`, `.j2`, `.jinja`, `.md`."""
    stem, ext = _split_ext(filename)
    return stem, VERSION_EXTS.index(ext) + 1 if ext else 0


def label_of(filename: str) -> str | None:
    """The label a file in a prompt folder stands for (`current` and `current.txt` are both
    the label `current`), or None when the name cannot be a label."""
    stem, _ = _split_ext(filename)
    try:
        return validate_label(stem)
    except LabelError:
        return None


def _read_plain_label(path: Path) -> str | None:
    try:
        if path.stat().st_size > _PLAIN_LABEL_MAX:
            return None
        text = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return text if (_VERSION_NAME.fullmatch(text) or _VERSION_FILE.fullmatch(text)) else None


def _write_new(path: Path, data: bytes) -> None:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError as exc:
        raise UsageError(f"{path} already exists; promptlab never overwrites a version") from exc
    try:
        try:
            view = memoryview(data)
            while view:  # os.write may write less than asked
                view = view[os.write(fd, view):]
        finally:
            os.close(fd)
    except OSError as exc:  # disk full, quota: no half-written version is left behind
        with contextlib.suppress(OSError):
            os.unlink(path)
        raise UsageError(f"cannot write {path}: {exc.strerror or exc}; nothing was created"
                         ) from exc
