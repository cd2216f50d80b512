"""The price table: USD per million tokens for each model, and the cost of one call.

`data/prices.toml` ships prices for common models; a user file (`prices = "…"` in the
project config, env PROMPTLAB_PRICES, or `promptlab costs --prices FILE`) overrides and
extends it. Both use the same format (see docs/prices.md):

    [models."gpt-4o"]
    input = 2.50           # per million input tokens
    output = 10.00         # per million output tokens
    cached_input = 1.25    # per million cached input tokens (default: input)
    checked = 2026-06-21   # when the price was last checked

A model name is looked up in the user file first, then in the shipped table; in each,
by (1) exact name, (2) the name without a provider prefix (`openai/gpt-4o`), (3) the name
without a dated snapshot suffix (`gpt-4o-2024-08-06`, `claude-sonnet-4-5-20250929`,
`…@20240620`, `…-latest`, `…-001`), (4) glob rows (`"llama-3.1-8b*"`) in file order.
Matching ignores case. An unknown model has no price, and its cost is None — never 0.
"""

from __future__ import annotations

import datetime as _dt
import fnmatch
import os
import re
import threading
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from promptlab.errors import ConfigError

BUILTIN_PRICES = Path(__file__).parent / "data" / "prices.toml"
_KEYS = {"input", "output", "cached_input", "checked", "provider", "note"}
_SNAPSHOT = re.compile(r"(?:[-@](?:\d{4}-\d{2}-\d{2}|\d{8})|-latest|-\d{3}|-\d{4})$")
_GLOB_CHARS = set("*?[")


class PricesError(ConfigError):
    """A prices file that cannot be used (missing, bad TOML, bad row)."""


@dataclass(frozen=True)
class Price:
    """One row of the price table. Amounts are USD per million tokens."""

    model: str
    input: float
    output: float
    cached_input: float | None = None
    checked: _dt.date | None = None
    provider: str | None = None
    note: str | None = None
    source: str = "builtin"

    def cost(self, input_tokens: int = 0, output_tokens: int = 0, cached_tokens: int = 0) -> float:
        """USD for one call. `input_tokens` includes `cached_tokens` (OpenAI's convention)."""
        it = input_tokens or 0
        ct = cached_tokens or 0
        if ct:
            if ct > it:
                ct = it
            elif ct < 0:
                ct = 0
            cached_rate = self.input if self.cached_input is None else self.cached_input
            total = (it - ct) * self.input + ct * cached_rate + (output_tokens or 0) * self.output
        else:  # the same sum without its zero terms
            total = it * self.input + (output_tokens or 0) * self.output
        return round(total / 1_000_000, 10)


@dataclass
class _Table:
    source: str
    exact: dict[str, Price] = field(default_factory=dict)
    globs: list[tuple[str, Price]] = field(default_factory=list)

    def find(self, name: str) -> Price | None:
        found = self.exact.get(name)
        if found is not None:
            return found
        for pattern, price in self.globs:
            if fnmatch.fnmatchcase(name, pattern):
                return price
        return None


class Prices:
    """A price table: the shipped rows, overridden and extended by a user file's rows."""

    def __init__(self, tables: list[_Table]):
        self._tables = tables  # highest priority first
        self._cache: dict[str, Price | None] = {}
        self._lock = threading.Lock()

    @property
    def rows(self) -> list[Price]:
        """Every row, user rows first, in file order."""
        out: list[Price] = []
        for table in self._tables:
            out.extend(table.exact.values())
            out.extend(p for _, p in table.globs)
        return out

    def lookup(self, model: str | None) -> Price | None:
        """The price row for `model`, or None when the model is unknown."""
        if not model or not isinstance(model, str):
            return None
        hit = self._cache.get(model, _MISS)
        if hit is not _MISS:
            return hit  # type: ignore[return-value]
        price = self._lookup(model)
        with self._lock:
            if len(self._cache) > 4096:
                self._cache.clear()
            self._cache[model] = price
        return price

    def _lookup(self, model: str) -> Price | None:
        names = _candidates(model)
        for table in self._tables:
            for name in names:
                found = table.exact.get(name)
                if found is not None:
                    return found
            for name in names:
                for pattern, price in table.globs:
                    if fnmatch.fnmatchcase(name, pattern):
                        return price
        return None

    def cost(self, model: str | None, input_tokens: int | None, output_tokens: int | None,
             cached_tokens: int | None = 0) -> float | None:
        """USD for one call, or None when the model has no price (never a made-up 0)."""
        price = self._cache.get(model, _MISS) if isinstance(model, str) else None
        if price is _MISS:
            price = self.lookup(model)
        if price is None or (input_tokens is None and output_tokens is None):
            return None
        return price.cost(input_tokens or 0, output_tokens or 0, cached_tokens or 0)


_MISS = object()


def _candidates(model: str) -> list[str]:
    """Names to try for `model`, most specific first."""
    name = model.strip().lower()
    names = [name]
    if "/" in name:  # provider prefix: openai/gpt-4o, anthropic/claude-…, meta-llama/Llama-…
        names.append(name.rsplit("/", 1)[1])
    for base in list(names):
        stripped = base
        while True:
            shorter = _SNAPSHOT.sub("", stripped)
            if shorter == stripped or not shorter:
                break
            stripped = shorter
            names.append(stripped)
    seen: list[str] = []
    for n in names:
        if n not in seen:
            seen.append(n)
    return seen


def parse_prices(data: dict[str, Any], source: str) -> _Table:
    """Validate a parsed prices file and build its table."""
    models = data.get("models")
    unknown_top = set(data) - {"models"}
    if unknown_top:
        raise PricesError(f"{source}: unknown table(s) {', '.join(sorted(unknown_top))}; "
                          'put each model under [models."NAME"]')
    if not isinstance(models, dict) or not models:
        raise PricesError(f'{source}: no [models."NAME"] tables; see docs/prices.md for the format')
    table = _Table(source=source)
    for name, row in models.items():
        where = f"{source}: model {name!r}"
        if not isinstance(row, dict):
            raise PricesError(f"{where}: expected a table with input and output prices")
        unknown = set(row) - _KEYS
        if unknown:
            raise PricesError(f"{where}: unknown key {sorted(unknown)[0]!r}; "
                              f"known keys: {', '.join(sorted(_KEYS))}")
        values: dict[str, float | None] = {}
        for key in ("input", "output", "cached_input"):
            value = row.get(key)
            if value is None:
                if key != "cached_input":
                    raise PricesError(f"{where}: missing {key!r} (USD per million tokens)")
                values[key] = None
                continue
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise PricesError(f"{where}: {key!r} must be a number >= 0 (USD per million "
                                  f"tokens), got {value!r}")
            values[key] = float(value)
        checked = row.get("checked")
        if isinstance(checked, str):
            try:
                checked = _dt.date.fromisoformat(checked)
            except ValueError:
                raise PricesError(f"{where}: 'checked' must be a date like 2026-11-01, "
                                  f"got {checked!r}") from None
        elif isinstance(checked, _dt.datetime):
            checked = checked.date()
        elif checked is not None and not isinstance(checked, _dt.date):
            raise PricesError(f"{where}: 'checked' must be a date like 2026-11-01, got {checked!r}")
        for key in ("provider", "note"):
            if row.get(key) is not None and not isinstance(row[key], str):
                raise PricesError(f"{where}: {key!r} must be a string")
        key_name = name.strip().lower()
        price = Price(model=name, input=values["input"], output=values["output"],  # type: ignore[arg-type]
                      cached_input=values["cached_input"], checked=checked,
                      provider=row.get("provider"), note=row.get("note"), source=source)
        if _GLOB_CHARS & set(key_name):
            table.globs.append((key_name, price))
        else:
            table.exact[key_name] = price
    return table


def _read_table(path: Path, source: str) -> _Table:
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        raise PricesError(f"prices file {path} not found; check the path (prices setting, "
                          "PROMPTLAB_PRICES or --prices)") from None
    except tomllib.TOMLDecodeError as exc:
        raise PricesError(f"{path}: invalid TOML: {exc}; fix the file") from exc
    except OSError as exc:
        raise PricesError(f"{path}: cannot read: {exc.strerror}") from exc
    return parse_prices(data, source)


_loaded: dict[tuple[str, int, int] | None, Prices] = {}
_load_lock = threading.Lock()
_builtin: _Table | None = None


def load_prices(user_file: str | os.PathLike[str] | None = None) -> Prices:
    """The shipped table, overridden by `user_file` when given. Cached until the file changes."""
    global _builtin
    key: tuple[str, int, int] | None = None
    path: Path | None = None
    if user_file is not None:
        path = Path(user_file).expanduser()
        try:
            st = path.stat()
        except FileNotFoundError:
            raise PricesError(f"prices file {path} not found; check the path (prices setting, "
                              "PROMPTLAB_PRICES or --prices)") from None
        except OSError as exc:
            raise PricesError(f"{path}: cannot read: {exc.strerror}") from exc
        key = (str(path.resolve()), st.st_mtime_ns, st.st_size)
    hit = _loaded.get(key)
    if hit is not None:
        return hit
    with _load_lock:
        if _builtin is None:
            _builtin = _read_table(BUILTIN_PRICES, "builtin")
        tables = [_builtin]
        if path is not None:
            tables.insert(0, _read_table(path, str(path)))
        prices = Prices(tables)
        _loaded[key] = prices
    return prices


def cost_usd(model: str | None, input_tokens: int | None, output_tokens: int | None,
             cached_tokens: int | None = 0, prices: Prices | None = None) -> float | None:
    """Shortcut: the cost of one call with the default table (None for unknown models)."""
    return (prices or load_prices()).cost(model, input_tokens, output_tokens, cached_tokens)
