"""A STAND-IN MODEL for the shipped example — not an LLM, and not a code reviewer.

`code-review-ab.toml` calls `review()` through the `python` provider so that the example
runs offline, in a few seconds, with no API key — and still gives `promptlab compare` a
real difference to find. Swap it for a real model by replacing the two lines of the
`[provider]` table (see docs/experiments.md).

How it behaves, deterministically:

- It recognises the planted bug of each snippet in `data/code-review.jsonl` with a table
  of patterns (`PATTERNS`). That part stands for a model's knowledge of code; it knows
  nothing about bugs outside this dataset.
- Whether it *reports* the bug depends on the prompt, like a real model's attention: when
  the prompt mentions the bug's category (v2's checklist does, v1 does not), it reports it
  with probability `ATTENTIVE` (0.92); otherwise with the category's lower base rate in
  `UNPROMPTED` (obvious bugs are noticed more often than subtle ones).
- The randomness is seeded by a hash of the prompt text (and of the repeat index when
  temperature > 0), so every run gives the same answers.
- Token counts are estimated as characters / 4, and the call sleeps a few milliseconds,
  growing with the tokens, so latency and token guardrails have something to measure.
  The output format follows the prompt: v2 asks for a one-line "BUG: …" answer first.
"""

from __future__ import annotations

import hashlib
import random
import re
import time

MODEL = "standin-reviewer-1"
ATTENTIVE = 0.92

# category -> words in a prompt that draw attention to it (matched case-insensitively)
CATEGORY_CUES: dict[str, tuple[str, ...]] = {
    "off_by_one": ("off-by-one", "off by one", "loop bounds"),
    "operator": ("comparison", "boolean operator"),
    "edge_case": ("edge case", "empty input"),
    "mutable": ("mutable default", "shared state"),
    "resource": ("resource", "never closed"),
    "numeric": ("integer division", "rounding", "float comparison"),
    "exceptions": ("swallowed", "exception"),
}

# Chance of reporting a bug whose category the prompt does not mention.
UNPROMPTED: dict[str, float] = {
    "off_by_one": 0.6, "operator": 0.5, "edge_case": 0.45, "mutable": 0.4,
    "resource": 0.3, "numeric": 0.4, "exceptions": 0.35,
}

# (category, pattern over the code, finding, what goes wrong, fix)
PATTERNS: list[tuple[str, str, str, str, str]] = [
    ("off_by_one", r"range\(1,\s*len\(", "off-by-one",
     "the loop starts at index 1, so the first element is skipped",
     "iterate over every element (`for v in values`)"),
    ("off_by_one", r"len\(\w+\)\s*-\s*\w+\s*-\s*1\s*:", "off-by-one",
     "the slice starts one element early and returns n + 1 items", "use `items[-n:]`"),
    ("off_by_one", r"start = number \* size", "off-by-one",
     "pages count from 1, so page 1 starts at `size` and the first page is skipped",
     "use `(number - 1) * size`"),
    ("off_by_one", r"range\(\w+,\s*1,\s*-1\)", "off-by-one",
     "the range stops before 1, so 1 is missing", "use `range(n, 0, -1)`"),
    ("off_by_one", r"<=\s*len\(", "off-by-one",
     "the loop reads `items[len(items)]` and raises IndexError", "loop while `i < len(items)`"),
    ("off_by_one", r"range\(len\(\w+\)\s*-\s*\w+\)", "off-by-one",
     "the last window is never summed", "use `range(len(xs) - k + 1)`"),
    ("operator", r"return age > 18", "wrong comparison operator",
     "an 18-year-old is not counted as an adult", "use `age >= 18`"),
    ("operator", r">=\s*\w+\s+or\s+\w+\s*<=", "wrong boolean operator",
     "`or` makes every number in range", "use `and` (or `low <= x <= high`)"),
    ("operator", r"\bis\s+(\"\"|''|\d)", "wrong comparison operator",
     "`is` compares identity, not value", "use `==`"),
    ("operator", r"==\s*\d+\s+and\s+\w+\s*>=", "wrong boolean operator",
     "no status is both 429 and >= 500, so nothing is retried", "use `or`"),
    ("operator", r"\.id\s+is\s+\w+\.id", "wrong comparison operator",
     "`is` compares object identity; equal ids can be different objects", "use `==`"),
    ("operator", r"return score > threshold", "wrong comparison operator",
     "a score equal to the threshold fails", "use `>=`"),
    ("edge_case", r"sum\((\w+)\)\s*/\s*len\(\1\)", "unhandled edge case",
     "an empty list raises ZeroDivisionError", "return 0.0 (or raise) when the list is empty"),
    ("edge_case", r"\.split\(\)\[0\]", "unhandled edge case",
     "empty or blank text raises IndexError", "check for an empty split first"),
    ("edge_case", r"\.nickname\.strip\(\)", "unhandled edge case",
     "a None nickname raises AttributeError", "use `(user.nickname or '').strip()`"),
    ("edge_case", r"/\s*whole\b", "unhandled edge case",
     "whole == 0 raises ZeroDivisionError", "handle a zero total"),
    ("edge_case", r"\*\*\s*0\.5", "unhandled edge case",
     "a negative n gives a complex number and int() raises TypeError",
     "reject negative input"),
    ("edge_case", r"^\s*\w+\s*=\s*\w+\[0\]\s*$", "unhandled edge case",
     "an empty list raises IndexError", "handle the empty list"),
    ("mutable", r"def \w+\([^)]*=\s*(\[\]|\{\}|set\(\)|dict\(\)|list\(\))", "mutable default argument",
     "the default object is created once and shared by every call",
     "default to None and create a new object inside"),
    ("mutable", r"^\s+\w+\s*=\s*\[\]\s*$(?s:.*)self\.\w+\.append", "mutable class attribute (shared state)",
     "the list belongs to the class, so every cart shares the same items",
     "create the list in __init__"),
    ("resource", r"=\s*(open|sqlite3\.connect|urllib\.request\.urlopen)\(", "resource never closed",
     "the handle is never closed and leaks until garbage collection",
     "use a `with` block"),
    ("resource", r"\.acquire\(\)", "lock never released",
     "the early return leaves the lock held forever", "use `with lock:`"),
    ("numeric", r"//", "integer division",
     "`//` floors the result, dropping the fractional part", "use `/`"),
    ("numeric", r"==\s*(0\.0|1\s*/\s*3)", "float comparison",
     "floating-point results are rarely exactly equal", "compare with math.isclose"),
    ("numeric", r"int\(\w+\s*\*\s*100\)", "rounding error",
     "int() truncates, so 0.29 becomes 28 cents", "use round() or Decimal"),
    ("numeric", r"round\(\w+\s*/\s*\w+,\s*2\)", "rounding error",
     "the rounded shares do not add up to the total", "give the remainder cents to one share"),
    ("exceptions", r"except\s*:\s*\n\s*pass", "swallowed exception",
     "a bare except hides every error, even KeyboardInterrupt", "catch the specific error"),
    ("exceptions", r"except Exception:\s*\n\s*return None", "swallowed exception",
     "every error becomes None and the cause is lost", "catch ValueError only"),
    ("exceptions", r"raise Exception\(", "wrong exception type",
     "callers cannot catch a plain Exception specifically", "raise KeyError"),
    ("exceptions", r"isinstance\([^)]*\):\s*\n\s*raise ValueError", "wrong exception type",
     "a wrong type should raise TypeError, not ValueError", "raise TypeError"),
    ("exceptions", r"except Exception as \w+:\s*\n\s*print\(", "swallowed exception",
     "the failure is printed and then ignored; the caller thinks it worked", "re-raise"),
    ("exceptions", r"except IndexError", "wrong exception type",
     "a dict lookup raises KeyError, which this does not catch", "catch KeyError"),
]
_COMPILED = [(c, re.compile(p, re.MULTILINE), f, d, x) for c, p, f, d, x in PATTERNS]

MISSES = (
    "No bugs found. The function is short and readable; consider adding type hints.",
    "Looks correct to me. A docstring describing the return value would help.",
    "The logic looks right. Variable names could be more descriptive.",
    "I don't see a bug here. Consider adding unit tests for typical inputs.",
)

_CODE_START = re.compile(r"^(def |class |async def |import |from |@)", re.MULTILINE)


def extract_code(text: str) -> str:
    """The code in a review prompt: from the first `def`/`class` line to a closing fence."""
    m = _CODE_START.search(text)
    if not m:
        return ""
    code = text[m.start():]
    end = code.find("\n```")
    return code if end < 0 else code[: end + 1]


def find_bug(code: str) -> tuple[str, int, str, str, str] | None:
    """(category, line, finding, detail, fix) of the first pattern that matches."""
    for category, pattern, finding, detail, fix in _COMPILED:
        m = pattern.search(code)
        if m:
            line = code.count("\n", 0, m.start()) + 1
            if code[m.start()] == "\n":
                line += 1
            return category, line, finding, detail, fix
    return None


def attends_to(instructions: str, category: str) -> bool:
    """Whether the prompt's instructions (the code left out) mention the category."""
    lowered = instructions.lower()
    return any(cue in lowered for cue in CATEGORY_CUES[category])


def review(messages: list[dict[str, str]], params: dict, repeat: int = 0) -> dict:
    """The `python` provider entry point: messages in, a review and token usage out."""
    prompt = "\n\n".join(m["content"] for m in messages)
    code = extract_code(prompt)
    seed_text = prompt + (f"\x00{repeat}" if params.get("temperature", 0) > 0 else "")
    rng = random.Random(int(hashlib.sha256(seed_text.encode()).hexdigest()[:16], 16))
    bug = find_bug(code)
    noticed = False
    if bug is not None:
        category = bug[0]
        instructions = prompt.replace(code, "") if code else prompt
        chance = ATTENTIVE if attends_to(instructions, category) else UNPROMPTED[category]
        noticed = rng.random() < chance
    one_line = "BUG:" in prompt
    if noticed:
        _, line, finding, detail, fix = bug  # type: ignore[misc]
        if one_line:
            output = f"BUG: {finding} on line {line}: {detail}.\nFix: {fix}."
        else:
            output = (f"I read the function carefully. There is a bug on line {line}: "
                      f"{finding} — {detail}.\n\nSuggested fix: {fix}. Apart from that, "
                      "the function is easy to follow.")
    else:
        miss = rng.choice(MISSES)
        output = f"BUG: none found. {miss}" if one_line else miss
    input_tokens = max(1, len(prompt) // 4)
    output_tokens = max(1, len(output) // 4)
    # Prefill is cheap, decoding is not: a few ms per call, more for longer answers.
    time.sleep((4 + input_tokens * 0.01 + output_tokens * 0.12 + rng.random() * 3) / 1000)
    return {"output": output, "model": MODEL,
            "usage": {"input_tokens": input_tokens, "output_tokens": output_tokens}}
