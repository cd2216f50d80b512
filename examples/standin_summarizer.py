"""A STAND-IN for a command-line LLM tool (`llm -m …`, `ollama run …`) in the README tour.

It reads the rendered prompt on stdin and "summarizes" the text after the last blank line
by keeping its first sentence. It is not a model; it lets `promptlab log -- CMD` run offline.
"""

import re
import sys

prompt = sys.stdin.read()
text = " ".join(prompt.strip().rsplit("\n\n", 1)[-1].split())
first = re.split(r"(?<=[.!?])\s", text, maxsplit=1)[0]
print(first)
