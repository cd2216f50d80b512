"""Project discovery and settings precedence."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from promptlab.cli import main
from promptlab.config import find_root, load_settings
from promptlab.errors import ConfigError


def test_root_is_nearest_folder_with_prompts(tmp_path: Path) -> None:
    (tmp_path / "prompts").mkdir()
    deep = tmp_path / "a" / "b"
    deep.mkdir(parents=True)
    assert find_root(deep) == (tmp_path, None)


def test_pyproject_with_tool_table_wins_and_sets_paths(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "x"\n\n[tool.promptlab]\nprompts_dir = "p"\nlog_dir = "logs"\n'
        'experiments_dir = "exp"\nprices = "my-prices.toml"\nredact = false\n'
    )
    sub = tmp_path / "src"
    sub.mkdir()
    settings = load_settings(sub, env={})
    assert settings.root == tmp_path
    assert settings.config_file == tmp_path / "pyproject.toml"
    assert settings.prompts_dir == tmp_path / "p"
    assert settings.log_dir == tmp_path / "logs"
    assert settings.experiments_dir == tmp_path / "exp"
    assert settings.prices == tmp_path / "my-prices.toml"
    assert settings.redact is False


def test_pyproject_without_tool_table_is_not_a_marker(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n')
    (tmp_path / "inner").mkdir()
    (tmp_path / "inner" / "promptlab.toml").write_text('log_dir = "l"\n')
    assert find_root(tmp_path / "inner") == (tmp_path / "inner", tmp_path / "inner" / "promptlab.toml")
    assert find_root(tmp_path)[1] is None


def test_env_overrides_file_and_explicit_overrides_env(tmp_path: Path) -> None:
    (tmp_path / "promptlab.toml").write_text('log_dir = "from-file"\n')
    env = {"PROMPTLAB_LOG_DIR": str(tmp_path / "from-env"),
           "PROMPTLAB_PROMPTS_DIR": str(tmp_path / "penv")}
    assert load_settings(tmp_path, env=env).log_dir == tmp_path / "from-env"
    assert load_settings(tmp_path, env=env).prompts_dir == tmp_path / "penv"
    assert load_settings(tmp_path, env={}).log_dir == tmp_path / "from-file"
    explicit = load_settings(tmp_path, env=env, log_dir=tmp_path / "explicit")
    assert explicit.log_dir == tmp_path / "explicit"


def test_default_log_dir_is_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert load_settings(tmp_path, env={}).log_dir == tmp_path / "home" / "llm-logs"


def test_unknown_or_mistyped_setting(tmp_path: Path) -> None:
    (tmp_path / "promptlab.toml").write_text('log_dri = "x"\n')
    with pytest.raises(ConfigError, match="unknown setting 'log_dri'; known settings: cache, "):
        load_settings(tmp_path, env={})
    (tmp_path / "promptlab.toml").write_text("redact = 'no'\n")
    with pytest.raises(ConfigError, match="setting 'redact' must be a bool"):
        load_settings(tmp_path, env={})
    # an empty path was the project folder itself (calls were logged into it)
    for key in ("log_dir", "prompts_dir", "experiments_dir", "prices"):
        (tmp_path / "promptlab.toml").write_text(f'{key} = " "\n')
        with pytest.raises(ConfigError, match=f"setting '{key}' is empty; give a path"):
            load_settings(tmp_path, env={})
    (tmp_path / "promptlab.toml").write_text('[otel]\nheaders = { a = 1 }\n')
    with pytest.raises(ConfigError, match="otel.headers must be a table of strings"):
        load_settings(tmp_path, env={})


def test_an_empty_folder_option_is_refused(tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """`--log-dir ""` was the current folder: an index.db appeared in it."""
    monkeypatch.chdir(tmp_path)
    for args in (["logs", "--log-dir", "", "-n", "1"], ["--log-dir", " ", "logs"],
                 ["render", "x", "--prompts-dir", ""]):
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 2 and "empty; give a folder" in result.output, args
    assert list(tmp_path.iterdir()) == []


def test_invalid_toml_is_one_clear_cli_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "promptlab.toml").write_text("log_dir = \n")
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["prompts"])
    assert result.exit_code == 2
    assert result.stderr.startswith(f"Error: {tmp_path / 'promptlab.toml'}: invalid TOML")
