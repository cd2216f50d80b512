"""One error family. Library code raises these; the CLI prints the message and exits.

`exit_code` 2 marks a user mistake (bad input, unknown name, invalid file); 1 marks any
other failure (a provider that is down, a disk that is full). Messages are one line that
names the file, value or option and says what to do next.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable


class PromptlabError(Exception):
    """Base of every error promptlab raises on purpose."""

    exit_code = 2


class ConfigError(PromptlabError):
    """Invalid project configuration (pyproject/promptlab.toml, env vars, options)."""


class UsageError(PromptlabError):
    """A command-line value that cannot be used as given (`--var` without `=`, …)."""


class OptionError(UsageError):
    """A value of a named option that cannot be used. The command line calls the option
    `--since`, the dashboard's form and query `since`: `say(prefix)` writes the message
    with either prefix ("--" or ""); `str()` is the command line's, `field_message` the
    form's."""

    def __init__(self, say: Callable[[str], str] | str, field_message: str = ""):
        if callable(say):  # (the two strings: what pickling passes back)
            say, field_message = say("--"), say("")
        super().__init__(say, field_message)
        self.field_message = field_message

    def __str__(self) -> str:
        return str(self.args[0])


class PromptNotFoundError(PromptlabError):
    """An unknown prompt id, version or label."""


class InvalidPromptIdError(PromptlabError):
    """A prompt id that is malformed or resolves outside the prompts folder."""


class LabelError(PromptlabError):
    """A dangling, escaping or malformed label."""


class TemplateError(PromptlabError):
    """A version file that cannot be parsed: front matter YAML, Jinja syntax."""


class RenderError(PromptlabError):
    """A template that parses but cannot be rendered with the given variables."""


class SandboxError(RenderError):
    """A template tried something the sandbox refuses (`''.__class__`, …)."""


class GitError(PromptlabError):
    """A git operation that cannot be done here (not a repository, unknown revision, …)."""


class LogError(PromptlabError):
    """Writing or reading the call log failed."""

    exit_code = 1


class LogIndexError(PromptlabError):
    """The SQLite index cannot be used (locked, corrupt, bad query)."""


class LogsUnavailableError(LogIndexError):
    """The logs or their index cannot be read or written as they stand: permissions, a full
    disk, a lock held too long, a file where a folder should be, an index that is damaged,
    newer, or was removed meanwhile. Nothing in what was asked is wrong (the dashboard
    answers 503, not 400); the command line says it in one line like any error. It exits
    2, not 1, although it is seldom the user's mistake: `compare --fail-if-worse` exits 1
    for "worse", and a log it cannot read must never pass for a verdict."""


class MissingLogDirError(LogsUnavailableError):
    """The log folder to read does not exist: a mistyped log_dir, nothing logged yet, or
    (to a running dashboard: a 503) a folder removed meanwhile."""


class ExperimentError(PromptlabError):
    """An invalid experiment file, dataset or run option."""


class ProviderError(PromptlabError):
    """A model provider call failed. `retryable` says whether trying again may help."""

    exit_code = 1

    def __init__(self, message: str, *, retryable: bool = False, retry_after: float | None = None):
        super().__init__(message)
        self.retryable = retryable
        self.retry_after = retry_after


class ScorerError(PromptlabError):
    """A scorer that is misconfigured (at load time) or failed on one output."""


class CompareError(PromptlabError):
    """A comparison that cannot be made from the logs as asked."""


def suggest(word: str, choices: Iterable[str]) -> str:
    """'; did you mean X?' or '; known: a, b, c' (empty when there is nothing to say), for
    the end of an error message about an unknown name."""
    import difflib

    choices = sorted(choices)
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    if close:
        return f"; did you mean {close[0]!r}?"
    return f"; known: {', '.join(choices)}" if choices else ""


class EmbeddingError(PromptlabError):
    """Semantic search cannot run as asked: no or a mismatched embedding model, a model
    file that fails its check, an embedding endpoint that refuses (see promptlab.semantic)."""

    retry_helps = True  # whether running `logs embed` again can carry on after it


def not_utf8(text: str) -> bool:
    """Whether `text` holds bytes that were not UTF-8: Python reads them from the command
    line as lone surrogates (`printf 'v\\xff'`), which SQLite and hashing cannot take."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False
