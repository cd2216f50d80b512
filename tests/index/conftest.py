"""A small, known log for the command tests."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from promptlab.cli import main

from .helpers import append, entry

PRICES = """
[models."house-model"]
input = 1.00
output = 2.00
checked = 2026-01-01
"""


@dataclass
class Sample:
    log_dir: Path
    prices: Path
    e: dict[str, dict[str, Any]]  # named entries


@pytest.fixture
def sample(log_dir: Path, tmp_path: Path) -> Sample:
    """Six llm calls over two days, a feedback entry and a trace of two spans and a call."""
    e: dict[str, dict[str, Any]] = {}
    e["review_v1"] = entry(
        "2026-01-05", 3600, model="gpt-4o", prompt_id="code-review", prompt_version="v1",
        tags=["prod"], input_tokens=1000, output_tokens=200, cost_usd=0.0045,
        user_message="Review this function: def total(xs): return sum(xs[1:])",
        assistant_response="Found an off-by-one error: the slice skips the first item.",
        scores={"finds_bug": True})
    e["review_v2"] = entry(
        "2026-01-05", 7200, model="house-model", prompt_id="code-review", prompt_version="v2",
        tags=["prod", "eval"], experiment="cr-ab", variant="v2", unit_id="u1", item_id="7",
        input_tokens=2000, output_tokens=500,  # no stored cost: priced from the table
        user_message="Review this function: def mean(xs): return sum(xs) / len(xs)",
        assistant_response="Division by zero when xs is empty; guard the empty list.",
        scores={"finds_bug": True, "quality": 4})
    e["summary"] = entry(
        "2026-01-05", 10800, model="mystery-local", prompt_id="summarization",
        prompt_version="v1", input_tokens=300, output_tokens=80,
        system_prompt="You summarise documents for busy engineers.",
        user_message="Summarise: the café's naïve résumé parser failed at 09:00 (UTC).",
        assistant_response="The résumé parser failed; owners notified.")
    e["error"] = entry(
        "2026-01-06", 600, model="gpt-4o", prompt_id="code-review", prompt_version="v2",
        status="error", error="RateLimitError: 429 too many requests", input_tokens=None,
        output_tokens=None, assistant_response=None, tags=["prod"])
    e["chat"] = entry(
        "2026-01-06", 1200, model="house-model", system_prompt=None, user_message=None,
        assistant_response=None, input_tokens=50, output_tokens=10, cost_usd=0.25,
        messages=[{"role": "system", "content": "Answer in French."},
                  {"role": "user", "content": "How do I reset my password?"},
                  {"role": "assistant", "content": "Cliquez sur « mot de passe oublié »."}])
    root_id, child_id = "01KE8000000000000000000001", "01KE8000000000000000000002"
    e["call_in_trace"] = entry(
        "2026-01-06", 3601, model="gpt-4o", trace_id=root_id, span_id=None,
        parent_id=child_id, input_tokens=700, output_tokens=90, cost_usd=0.002,
        assistant_response="Here are the three matching documents.")
    e["call_in_trace"]["span_id"] = e["call_in_trace"]["id"]
    e["span_child"] = entry(
        "2026-01-06", 3600, kind="span", id=child_id, trace_id=root_id, span_id=child_id,
        parent_id=root_id, name="retrieve", latency_ms=1500.0, model=None, provider=None,
        system_prompt=None, user_message=None, assistant_response=None, input_tokens=None,
        output_tokens=None)
    e["span_root"] = entry(
        "2026-01-06", 3599, kind="span", id=root_id, trace_id=root_id, span_id=root_id,
        name="answer-question", latency_ms=2500.0, model=None, provider=None,
        system_prompt=None, user_message=None, assistant_response=None, input_tokens=None,
        output_tokens=None)
    e["feedback"] = entry(
        "2026-01-06", 4000, kind="feedback", target=e["review_v1"]["id"],
        scores={"finds_bug": False, "helpful": True}, metadata={"comment": "missed it"},
        model=None, provider=None, system_prompt=None, user_message=None,
        assistant_response=None, input_tokens=None, output_tokens=None, latency_ms=None)
    append(log_dir, e["review_v1"], e["review_v2"], e["summary"])
    append(log_dir, e["error"], e["chat"], e["call_in_trace"], e["span_child"], e["span_root"],
           e["feedback"])
    prices = tmp_path / "prices.toml"
    prices.write_text(PRICES)
    return Sample(log_dir=log_dir, prices=prices, e=e)


def run(*args: str, ok: bool = True) -> Result:
    """Invoke `promptlab ARGS`; with ok, fail the test with the output if it failed."""
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    if ok:
        assert result.exit_code == 0, result.output + (result.stderr or "")
    return result
