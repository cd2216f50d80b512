"""The price table: lookups, cost arithmetic, user overrides, bad files."""

from __future__ import annotations

import datetime as dt
import tomllib
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from promptlab import Logger
from promptlab.costs import BUILTIN_PRICES, PricesError, load_prices


@pytest.mark.parametrize(("model", "row"), [
    ("gpt-4o", "gpt-4o"),
    ("GPT-4o", "gpt-4o"),
    ("gpt-4o-2024-08-06", "gpt-4o"),            # dated snapshot
    ("gpt-4o-2024-05-13", "gpt-4o-2024-05-13"),  # a snapshot with its own row wins
    ("openai/gpt-4o-mini", "gpt-4o-mini"),      # provider prefix
    ("claude-sonnet-4-5-20250929", "claude-sonnet-4-5"),
    ("claude-3-7-sonnet-latest", "claude-3-7-sonnet"),
    ("claude-3-5-sonnet@20240620", "claude-3-5-sonnet"),
    ("gpt-3.5-turbo-0125", "gpt-3.5-turbo"),
    ("gemini-1.5-pro-002", "gemini-1.5-pro"),
    ("meta-llama/Llama-3.3-70B-Instruct-Turbo", "llama-3.3-70b*"),  # glob row
    ("gemini-3-flash-preview", "gemini-3-flash*"),
])
def test_lookup_rules(model: str, row: str) -> None:
    price = load_prices().lookup(model)
    assert price is not None and price.model == row


@pytest.mark.parametrize("model", ["my-finetune", "", "gpt-4o-mini-ft:acme", None])
def test_unknown_models_have_no_price_and_no_cost(model: str | None) -> None:
    prices = load_prices()
    assert prices.lookup(model) is None
    assert prices.cost(model, 1000, 1000) is None


def test_cost_arithmetic_per_million_tokens() -> None:
    prices = load_prices()
    # gpt-4o: input 2.50, cached 1.25, output 10.00 per million
    assert prices.cost("gpt-4o", 1_000_000, 0) == 2.5
    assert prices.cost("gpt-4o", 0, 1_000_000) == 10.0
    assert prices.cost("gpt-4o", 1000, 500, 400) == pytest.approx(
        (600 * 2.5 + 400 * 1.25 + 500 * 10.0) / 1e6)
    assert prices.cost("gpt-4o", 100, 0, 500) == pytest.approx(100 * 1.25 / 1e6)  # capped
    assert prices.cost("gpt-4o", None, None) is None
    assert prices.cost("gpt-4o", 10, None) == pytest.approx(10 * 2.5 / 1e6)
    # no cached price: cached tokens cost the input price
    assert prices.cost("gpt-4-turbo", 1000, 0, 500) == pytest.approx(1000 * 10.0 / 1e6)


def test_every_shipped_row_is_dated_and_sane() -> None:
    data = tomllib.loads(BUILTIN_PRICES.read_text())["models"]
    assert len(data) >= 50
    providers = {row["provider"] for row in data.values()}
    assert {"openai", "anthropic", "google"} <= providers and len(providers) >= 5
    for name, row in data.items():
        assert isinstance(row["checked"], dt.date), name
        assert row["input"] >= 0 and row["output"] >= 0, name
        assert row.get("cached_input", 0) <= row["input"], name


def test_user_file_overrides_and_extends(tmp_path: Path) -> None:
    user = tmp_path / "prices.toml"
    user.write_text('[models."gpt-4o"]\ninput = 1.0\noutput = 2.0\nchecked = 2026-11-20\n\n'
                    '[models."acme-*"]\ninput = 0.5\noutput = 0.5\n')
    prices = load_prices(user)
    assert prices.lookup("gpt-4o").source == str(user)
    assert prices.cost("gpt-4o-2024-08-06", 1_000_000, 1_000_000) == 3.0
    assert prices.cost("acme-small-v2", 2_000_000, 0) == 1.0
    assert prices.lookup("gpt-4o-mini").source == "builtin"
    # cached until the file changes
    assert load_prices(user) is prices
    user.write_text('[models."gpt-4o"]\ninput = 9.0\noutput = 9.0\n')
    assert load_prices(user).cost("gpt-4o", 1_000_000, 0) == 9.0


@pytest.mark.parametrize(("text", "message"), [
    ('[models."x"]\noutput = 1\n', "model 'x': missing 'input'"),
    ('[models."x"]\ninput = "cheap"\noutput = 1\n', "'input' must be a number >= 0"),
    ('[models."x"]\ninput = -1\noutput = 1\n', "'input' must be a number >= 0"),
    ('[models."x"]\ninput = 1\noutput = 1\nprice = 3\n', "unknown key 'price'"),
    ('[models."x"]\ninput = 1\noutput = 1\nchecked = "soon"\n', "'checked' must be a date"),
    ("[prices]\nx = 1\n", "unknown table(s) prices"),
    ("models = [", "invalid TOML"),
])
def test_bad_user_files_name_the_problem(tmp_path: Path, text: str, message: str) -> None:
    user = tmp_path / "prices.toml"
    user.write_text(text)
    with pytest.raises(PricesError) as info:
        load_prices(user)
    assert message in str(info.value) and str(user) in str(info.value)


def test_missing_user_file(tmp_path: Path) -> None:
    with pytest.raises(PricesError, match="prices file .*nope.toml not found"):
        load_prices(tmp_path / "nope.toml")


def test_logger_uses_env_prices_file(log_dir: Path, tmp_path: Path,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    user = tmp_path / "mine.toml"
    user.write_text('[models."house-model"]\ninput = 1.0\noutput = 3.0\n')
    monkeypatch.setenv("PROMPTLAB_PRICES", str(user))
    entry = Logger().log(model="house-model", input_tokens=1_000_000, output_tokens=1_000_000)
    assert entry["cost_usd"] == 4.0
    assert Logger(prices=False).log(model="gpt-4o", input_tokens=5).get("cost_usd") is None
    given = Logger().log(model="gpt-4o", input_tokens=5, cost_usd=0.5)
    assert given["cost_usd"] == 0.5  # an explicit cost is kept


def test_bad_prices_file_warns_once_and_logging_goes_on(log_dir: Path, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    user = tmp_path / "bad.toml"
    user.write_text("not toml [")
    monkeypatch.setenv("PROMPTLAB_PRICES", str(user))
    with pytest.warns(UserWarning, match=r"costs are not computed: .*bad.toml: invalid TOML"):
        entry = Logger().log(model="gpt-4o", input_tokens=10)
    assert "cost_usd" not in entry and entry["input_tokens"] == 10
    with pytest.raises(PricesError):
        Logger(strict=True).log(model="gpt-4o", input_tokens=10)


@given(it=st.integers(0, 10**7), ot=st.integers(0, 10**6), ct=st.integers(-5, 10**7),
       rates=st.tuples(st.floats(0, 100), st.floats(0, 100),
                       st.one_of(st.none(), st.floats(0, 100))))
def test_price_cost_is_the_documented_sum(it: int, ot: int, ct: int,
                                          rates: tuple[float, float, float | None]) -> None:
    from promptlab.costs import Price

    price = Price(model="m", input=rates[0], output=rates[1], cached_input=rates[2])
    cached = min(max(ct, 0), it)
    cached_rate = rates[0] if rates[2] is None else rates[2]
    total = (it - cached) * rates[0] + cached * cached_rate + ot * rates[1]
    assert price.cost(it, ot, ct) == round(total / 1_000_000, 10)


def test_logger_prices_each_model_once_and_matches_the_table(log_dir: Path) -> None:
    logger = Logger()
    prices = load_prices()
    for model, tokens in [("gpt-4o-mini", (1000, 500)), ("my-local-model", (10, 5)),
                          ("gpt-4o-mini", (7, 0)), ("openai/gpt-4o-2024-08-06", (120, 30)),
                          ("gpt-4o-mini", (2, 1))]:
        entry = logger.log(model=model, input_tokens=tokens[0], output_tokens=tokens[1],
                           cached_tokens=3)
        assert entry.get("cost_usd") == prices.cost(model, *tokens, 3)
    assert logger._price_of.keys() == {"gpt-4o-mini", "my-local-model",
                                       "openai/gpt-4o-2024-08-06"}
    assert logger._price_of["my-local-model"] is None
