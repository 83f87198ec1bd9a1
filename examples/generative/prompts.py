"""The prompts: a requested digit and a style seed, one JSON object per line."""

from __future__ import annotations

import json
from pathlib import Path


def prompts(count: int) -> list[dict[str, int]]:
    """``count`` prompts: digits 0 to 9 in turn, each turn a new style seed."""
    return [{"digit": index % 10, "seed": index // 10} for index in range(count)]


def write(path: Path, count: int) -> Path:
    """Write ``count`` prompts to ``path`` (JSON lines); returns the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(prompt) + "\n" for prompt in prompts(count)))
    return path
