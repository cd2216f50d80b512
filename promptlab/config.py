"""Project discovery and settings.

The project root is the nearest folder, from the working directory upward, that holds a
`promptlab.toml`, a `pyproject.toml` with a `[tool.promptlab]` table, or a `prompts/`
folder. Settings come from (highest first) explicit arguments (CLI options), environment
variables, the project file, then defaults.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from promptlab.errors import ConfigError

ENV_PROMPTS_DIR = "PROMPTLAB_PROMPTS_DIR"
ENV_EXPERIMENTS_DIR = "PROMPTLAB_EXPERIMENTS_DIR"
ENV_LOG_DIR = "PROMPTLAB_LOG_DIR"
ENV_PRICES = "PROMPTLAB_PRICES"

DEFAULT_LOG_DIR = "~/llm-logs"
# Render limits (docs/security.md "Template limits"): seconds, and characters of output.
RENDER_TIMEOUT_S = 2.0
RENDER_MAX_CHARS = 2_000_000

# Keys accepted in [tool.promptlab] / promptlab.toml, with the type each must have.
KNOWN_KEYS: dict[str, type | tuple[type, ...]] = {
    "prompts_dir": str,
    "experiments_dir": str,
    "log_dir": str,
    "prices": str,
    "redact": bool,
    "cache": bool,
    "otel": dict,
    "embeddings": dict,  # semantic search (see promptlab.semantic.embedders, docs/search.md)
    "render_timeout_s": (int, float),  # one render's time limit
    "render_max_chars": int,  # one render's output limit
}

# Keys of the [otel] table (OpenTelemetry export, see docs/otel.md), with their types.
OTEL_KEYS: dict[str, type] = {
    "endpoint": str,  # OTLP/HTTP base URL (http://localhost:4318) or full …/v1/traces URL
    "headers": dict,  # sent with every export request
    "service_name": str,  # service.name of exported spans (OTEL_SERVICE_NAME wins)
    "content": bool,  # also export prompts and responses (redacted); off by default
    "live": bool,  # a Logger exports each entry as it is written (default: on with an endpoint)
}


@dataclass(frozen=True)
class Settings:
    """Resolved paths and options for one project. Paths are absolute."""

    root: Path
    prompts_dir: Path
    experiments_dir: Path
    log_dir: Path
    prices: Path | None = None
    redact: bool = True
    cache: bool = True
    otel: dict[str, Any] = field(default_factory=dict)
    render_timeout_s: float = RENDER_TIMEOUT_S
    render_max_chars: int = RENDER_MAX_CHARS
    config_file: Path | None = None
    raw: dict[str, Any] = field(default_factory=dict)


def find_root(start: Path | None = None) -> tuple[Path, Path | None]:
    """Return (project root, config file or None), searching upward from `start`.

    With no marker anywhere above, the root is `start` itself.
    """
    start = (start or Path.cwd()).resolve()
    for folder in (start, *start.parents):
        own = folder / "promptlab.toml"
        if own.is_file():
            return folder, own
        pyproject = folder / "pyproject.toml"
        if pyproject.is_file() and _has_tool_table(pyproject):
            return folder, pyproject
        if (folder / "prompts").is_dir():
            return folder, None
    return start, None


def _has_tool_table(pyproject: Path) -> bool:
    try:
        text = pyproject.read_text(encoding="utf-8")
    except OSError:
        return False
    # Cheap pre-check so unrelated pyproject files are not parsed.
    return "[tool.promptlab]" in text and "promptlab" in _read_toml(pyproject).get("tool", {})


def _read_toml(path: Path) -> dict[str, Any]:
    import tomllib  # only where a config file exists (its import and regexes: ~4 ms)

    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}; fix the file") from exc
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from exc


def read_config_file(path: Path) -> dict[str, Any]:
    """The promptlab table of a config file, validated against KNOWN_KEYS."""
    data = _read_toml(path)
    if path.name == "pyproject.toml":
        data = data.get("tool", {}).get("promptlab", {})
        where = f"{path} [tool.promptlab]"
    else:
        where = str(path)
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a table of settings")
    for key, value in data.items():
        expected = KNOWN_KEYS.get(key)
        if expected is None:
            known = ", ".join(sorted(KNOWN_KEYS))
            raise ConfigError(f"{where}: unknown setting {key!r}; known settings: {known}")
        if not isinstance(value, expected):
            name = expected.__name__ if isinstance(expected, type) else "/".join(
                t.__name__ for t in expected
            )
            raise ConfigError(f"{where}: setting {key!r} must be a {name}, got {value!r}")
    for key in ("prompts_dir", "experiments_dir", "log_dir", "prices"):
        if key in data and not data[key].strip():
            raise ConfigError(f"{where}: setting {key!r} is empty; give a path, or remove the "
                              "line for the default")
    for key in ("render_timeout_s", "render_max_chars"):
        value = data.get(key)
        if value is not None and (isinstance(value, bool) or not 0 < value < float("inf")):
            raise ConfigError(f"{where}: setting {key!r} must be a positive number, "
                              f"got {value!r}")
    for key, value in data.get("otel", {}).items():
        expected = OTEL_KEYS.get(key)
        if expected is None:
            raise ConfigError(f"{where}: unknown setting otel.{key}; known: "
                              f"{', '.join(sorted(OTEL_KEYS))}")
        if not isinstance(value, expected):
            raise ConfigError(f"{where}: setting otel.{key} must be a {expected.__name__}, "
                              f"got {value!r}")
    headers = data.get("otel", {}).get("headers", {})
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in headers.items()):
        raise ConfigError(f"{where}: setting otel.headers must be a table of strings, e.g. "
                          f"headers = {{ \"x-api-key\" = \"…\" }}, got {headers!r}")
    return data


def _resolve(root: Path, value: str | os.PathLike[str]) -> Path:
    path = Path(os.path.expandvars(str(value))).expanduser()
    return path if path.is_absolute() else (root / path)


def load_settings(
    start: Path | None = None,
    *,
    prompts_dir: str | os.PathLike[str] | None = None,
    experiments_dir: str | os.PathLike[str] | None = None,
    log_dir: str | os.PathLike[str] | None = None,
    prices: str | os.PathLike[str] | None = None,
    env: dict[str, str] | None = None,
) -> Settings:
    """Discover the project and resolve every setting.

    Explicit arguments are relative to the working directory; values from the config file
    are relative to the project root.
    """
    env = os.environ if env is None else env
    cwd = Path.cwd()
    root, config_file = find_root(start)
    raw = read_config_file(config_file) if config_file else {}

    def pick(explicit: Any, env_name: str | None, key: str, default: str | None) -> Path | None:
        if explicit is not None:
            return _resolve(cwd, explicit).absolute()
        if env_name and env.get(env_name):
            return _resolve(cwd, env[env_name]).absolute()
        if key in raw:
            return _resolve(root, raw[key]).absolute()
        return None if default is None else _resolve(root, default).absolute()

    return Settings(
        root=root,
        prompts_dir=pick(prompts_dir, ENV_PROMPTS_DIR, "prompts_dir", "prompts"),  # type: ignore[arg-type]
        experiments_dir=pick(experiments_dir, ENV_EXPERIMENTS_DIR, "experiments_dir", "experiments"),  # type: ignore[arg-type]
        log_dir=pick(log_dir, ENV_LOG_DIR, "log_dir", DEFAULT_LOG_DIR),  # type: ignore[arg-type]
        prices=pick(prices, ENV_PRICES, "prices", None),
        redact=bool(raw.get("redact", True)),
        cache=bool(raw.get("cache", True)),
        otel=dict(raw.get("otel", {})),
        render_timeout_s=float(raw.get("render_timeout_s", RENDER_TIMEOUT_S)),
        render_max_chars=int(raw.get("render_max_chars", RENDER_MAX_CHARS)),
        config_file=config_file,
        raw=raw,
    )


def cache_dir() -> Path:
    """Where promptlab keeps what it can rebuild (the built model, the index of a read-only
    log folder): $PROMPTLAB_CACHE_DIR, else $XDG_CACHE_HOME/promptlab, else
    ~/.cache/promptlab."""
    explicit = os.environ.get("PROMPTLAB_CACHE_DIR")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "promptlab"


def require_log_dir(log_dir: Path, doing: str) -> None:
    """UsageError unless `log_dir` is an existing folder: a command that only reads the
    logs (`report`, `dashboard`, `export`) never creates one, so that a mistyped --log-dir
    is not answered with an empty report. `doing` ends the message: "nothing to export"."""
    from promptlab.errors import UsageError

    if log_dir.is_dir():
        return
    what = "is not a folder" if log_dir.exists() else "does not exist"
    raise UsageError(f"log folder {log_dir} {what}: {doing}; point --log-dir (or "
                     "PROMPTLAB_LOG_DIR, or log_dir in the project config) at the folder "
                     "holding the .jsonl files")


def default_log_dir(env: dict[str, str] | None = None) -> Path:
    """The log folder for library use without a CLI: env var, project config, ~/llm-logs."""
    return load_settings(env=env).log_dir
