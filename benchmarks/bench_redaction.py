"""Does redaction eat ordinary text? False positives on text that holds no secrets, and what
the pre-check costs on clean text.

    python benchmarks/bench_redaction.py            # ~5 MB generated + the real corpora
    python benchmarks/bench_redaction.py --show 20  # print up to 20 replacements per corpus

Corpora, each redacted line by line with promptlab.logs.redact.redact_text:
  repo          this repository's examples/, prompts/, docs/ and promptlab/ source
                (docs/security.md, docs/logging.md and promptlab/logs/redact.py are left
                out: they show example secrets on purpose)
  stdlib        the Python standard library's own modules (no tests), docstrings included
  prose         generated English-like prose (a fixed seed): the words of the stdlib's
                docstrings in random sentences, with hyphenated words, numbers, e-mail
                addresses, URLs without passwords, file paths and inline code
  code          generated Python-like code: snake_case and CamelCase names, string and
                hex literals, UUIDs, SHA-1/256 digests, base64 blobs, `# ----` rulers, and
                near misses: the rules' prefixes (gh, sk, xox, AKIA, AIza, eyJ, Bearer,
                secret_access …) in ordinary names and slugs, "Authorization: Basic auth"
                in comments, URLs with ports
Every replacement in these corpora is reported: there are no real secrets in them, so a
replacement is either a false positive or a deliberate example of a credential (a URL with
`user:password@` in the stdlib's documentation); the listing shows which.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import random
import re
import statistics
import sys
import sysconfig
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from promptlab.logs.redact import REDACTED, RULES, maybe_secret, redact_text  # noqa: E402

# Files that show secrets on purpose: the security page, the logging page's examples and
# the rule table itself (each rule carries a public example string).
SKIP_DOCS = {"security.md", "logging.md", "redact.py"}


def repo_texts() -> list[str]:
    texts = []
    for folder in ("examples", "prompts", "docs", "promptlab"):
        for path in sorted((ROOT / folder).rglob("*")):
            if (not path.is_file() or path.name in SKIP_DOCS or "__pycache__" in path.parts
                    or path.suffix in {".so", ".pyc", ".png", ".svg", ".onnx", ".db"}
                    or path.stat().st_size > 2_000_000):
                continue
            try:
                texts.append(path.read_text(encoding="utf-8"))
            except UnicodeDecodeError:
                continue
    return texts


def stdlib_texts(limit: int) -> list[str]:
    base = Path(sysconfig.get_paths()["stdlib"])
    texts, total = [], 0
    for path in sorted(base.rglob("*.py")):
        rel = path.relative_to(base).parts
        if rel[0] in {"test", "site-packages", "idlelib", "lib2to3"} or "tests" in rel:
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        texts.append(text)
        total += len(text)
        if total >= limit:
            break
    return texts


def vocabulary(texts: list[str]) -> list[str]:
    words = re.findall(r"\b[a-zA-Z][a-z]{1,14}\b", "\n".join(texts))
    return sorted(set(words))


def generated_prose(words: list[str], size: int, rng: random.Random) -> list[str]:
    out, total = [], 0
    tlds = ["com", "org", "io", "dev", "net"]
    while total < size:
        sentence = []
        for _ in range(rng.randint(6, 24)):
            r = rng.random()
            if r < 0.03:
                sentence.append(f"{rng.choice(words)}-{rng.choice(words)}")
            elif r < 0.05:
                sentence.append(str(rng.randint(0, 10**rng.randint(1, 7))))
            elif r < 0.055:
                sentence.append(f"{rng.choice(words).lower()}@{rng.choice(words).lower()}"
                                f".{rng.choice(tlds)}")
            elif r < 0.06:
                sentence.append(f"https://{rng.choice(words).lower()}.{rng.choice(tlds)}/"
                                f"{rng.choice(words)}/{rng.choice(words)}?page={rng.randint(1, 9)}")
            elif r < 0.065:
                sentence.append(f"/home/{rng.choice(words).lower()}/{rng.choice(words)}.txt")
            elif r < 0.07:
                sentence.append(f"`{rng.choice(words)}_{rng.choice(words)}()`")
            else:
                sentence.append(rng.choice(words))
        text = " ".join(sentence)
        line = text[0].upper() + text[1:] + rng.choice([".", ".", ".", "?", "!", ":"])
        out.append(line)
        total += len(line) + 1
    return out


def generated_code(words: list[str], size: int, rng: random.Random) -> list[str]:
    out, total = [], 0

    def name() -> str:
        parts = [rng.choice(words).lower() for _ in range(rng.randint(1, 4))]
        return "_".join(parts) if rng.random() < 0.7 else "".join(p.title() for p in parts)

    while total < size:
        r = rng.random()
        if r < 0.15:
            line = f"def {name()}({name()}, {name()}={rng.randint(0, 99)}):"
        elif r < 0.3:
            line = f"    {name()} = {name()}.{name()}({name()!r})"
        elif r < 0.4:
            line = f"    {name()} = 0x{rng.getrandbits(rng.choice([16, 32, 64])):x}"
        elif r < 0.47:
            line = f"    {name()} = '{uuid.UUID(int=rng.getrandbits(128))}'"
        elif r < 0.54:
            digest = hashlib.sha256(rng.randbytes(16)).hexdigest()
            line = f"    {name()} = \"{digest if rng.random() < 0.5 else digest[:40]}\""
        elif r < 0.6:
            blob = base64.b64encode(rng.randbytes(rng.randint(12, 90))).decode()
            line = f"    {name()} = b64decode(\"{blob}\")"
        elif r < 0.65:
            line = "# " + "-" * rng.randint(10, 90) + f" {name()} " + "-" * rng.randint(3, 20)
        elif r < 0.7:  # near misses: the rules' prefixes in ordinary names and slugs
            prefix = rng.choice(["gh", "hf", "sk", "rk", "xox", "AKIA", "AIza", "github",
                                 "eyJ", "Bearer", "secret_access"])
            slug = "-".join(rng.choice(words) for _ in range(3))
            line = (f"    {prefix}_{name()} = \"{prefix}-{slug}\"  # "
                    f"{rng.choice(['Authorization', 'authorization'])}: "
                    f"{rng.choice(['Basic', 'bearer', 'token'])} auth, see "
                    f"https://{rng.choice(words).lower()}.com:{rng.randint(80, 9000)}/")
        elif r < 0.75:
            line = f"    if {name()} is None or {name()} < {rng.randint(0, 9)}: return {name()}"
        elif r < 0.85:
            line = f"    # {' '.join(rng.choice(words) for _ in range(rng.randint(3, 12)))}"
        else:
            line = f"    {name()}.{name()}[{rng.randint(0, 9)}] += {name()}(*{name()})"
        out.append(line)
        total += len(line) + 1
    return out


def scan(name: str, texts: list[str], show: int) -> None:
    lines = [line for text in texts for line in text.splitlines()]
    size = sum(len(line) + 1 for line in lines)
    hits: dict[str, int] = {}
    examples: list[tuple[str, str, str]] = []
    changed = passed = 0
    cpu = time.process_time()
    for line in lines:
        if maybe_secret(line):
            passed += 1
        out = redact_text(line)
        if out is line:
            continue
        changed += 1
        for rule in RULES:
            if rule.sub(line) != line:
                hits[rule.name] = hits.get(rule.name, 0) + 1
                if len(examples) < show:
                    examples.append((rule.name, line.strip()[:110], out.strip()[:110]))
    seconds = time.process_time() - cpu
    mb = size / 1e6
    print(f"\n{name}: {len(lines):,} lines, {mb:.2f} MB")
    print(f"  lines changed: {changed} ({changed / max(len(lines), 1):.4%}); "
          f"{changed / mb:.2f} per MB")
    print(f"  lines passing the pre-check: {passed:,} ({passed / max(len(lines), 1):.2%})")
    print(f"  redaction CPU time: {seconds / mb:.2f} s per MB "
          f"({seconds / max(len(lines), 1) * 1e6:.2f} µs per line)")
    for rule, count in sorted(hits.items(), key=lambda kv: -kv[1]):
        print(f"    {rule:28} {count}")
    for rule, before, after in examples:
        print(f"    [{rule}] {before}\n    {'':{len(rule) + 2}} -> {after}")


def clean_text_cost() -> None:
    """µs to pass clean 1.5 KB of prose and of code (the logger's common case)."""
    prose = ("Review this Python function. Work through this checklist, one item at a time: "
             "off-by-one errors in ranges, wrong comparison operators, unhandled edge cases. ")
    code = "def average(xs):\n    total = 0\n    for i in range(1, len(xs)):\n    # ----\n"
    for label, unit in (("prose", prose), ("code", code)):
        text = (unit * (1500 // len(unit) + 1))[:1500]
        rounds = []
        for _ in range(9):
            start = time.process_time_ns()
            for _ in range(2000):
                redact_text(text)
            rounds.append((time.process_time_ns() - start) / 2000 / 1000)
        print(f"  clean 1.5 KB of {label}: {statistics.median(rounds):.2f} µs "
              f"(CPU, median of 9 rounds)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=float, default=2.5, help="MB of each generated corpus")
    parser.add_argument("--stdlib-mb", type=float, default=5.0, help="MB of the stdlib to read")
    parser.add_argument("--show", type=int, default=12, help="replacements listed per corpus")
    args = parser.parse_args()
    rng = random.Random(20261202)
    repo = repo_texts()
    stdlib = stdlib_texts(int(args.stdlib_mb * 1e6))
    words = vocabulary(stdlib)
    print(f"rules: {len(RULES)}; replacement marker {REDACTED}")
    scan("repo (examples, prompts, docs, promptlab/)", repo, args.show)
    scan("stdlib (no tests)", stdlib, args.show)
    scan("generated prose", generated_prose(words, int(args.size * 1e6), rng), args.show)
    scan("generated code", generated_code(words, int(args.size * 1e6), rng), args.show)
    print("\npre-check and rules on clean text:")
    clean_text_cost()


if __name__ == "__main__":
    main()
