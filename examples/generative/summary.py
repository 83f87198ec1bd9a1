"""What a run made: the figures of ``summary.json`` and the picture of the best candidates.

The figures come from the results file of ``legato map`` (one outcome per prompt) and from the
run's record in the store (``legato show RUN --json``: calls, cache hits and latency per node).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

GENERATORS = ("mixture", "kernel")


def read_results(path: Path) -> list[dict[str, Any]]:
    """The outcomes of a results file, by prompt index (failed prompts left out)."""
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [row["output"] for row in sorted(rows, key=lambda r: r["index"]) if "output" in row]


def stage(node: str) -> str:
    """The stage a node row belongs to: ``loop_refine[*]/map_scorer[*]/scorer`` ->
    ``refine/scorer`` (a map's wrapper and the loop's ``until`` left out)."""
    parts = [part.removesuffix("[*]") for part in node.split("/")]
    kept = [part.removeprefix("loop_") for part in parts[:-1]
            if not part.startswith("map_") and part != "until"]
    return "/".join([*kept, parts[-1]])


def latency(nodes: Iterable[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Per stage, its calls, cache hits, and the median and longest execution in ms (the
    largest median when a stage has several nodes)."""
    stages: dict[str, dict[str, float]] = defaultdict(
        lambda: {"calls": 0, "cached": 0, "p50_ms": 0.0, "max_ms": 0.0})
    for row in nodes:
        figures = stages[stage(row["node"])]
        figures["calls"] += row["calls"]
        figures["cached"] += row["cached"]
        figures["p50_ms"] = max(figures["p50_ms"], round(1000 * (row["p50"] or 0.0), 3))
        figures["max_ms"] = max(figures["max_ms"], round(1000 * (row["max"] or 0.0), 3))
    return dict(stages)


def summarise(outcomes: list[dict[str, Any]], shown: dict[str, Any], *, prompts: int,
              seconds: float) -> dict[str, Any]:
    """The run's figures: ``items``, ``seconds``, mean best score, each generator's mean best
    alone, acceptance, refinement rounds, cache hits and latency per stage."""
    nodes = shown.get("nodes", [])
    scores = [o["score"] for o in outcomes]
    return {
        "items": len(outcomes),
        "prompts": prompts,
        "seconds": round(seconds, 2),
        "items_per_s": round(len(outcomes) / seconds, 1) if seconds else None,
        "best_score_mean": _mean(scores),
        "generators": {g: _mean([o["alone"][g] for o in outcomes]) for g in GENERATORS},
        "started_from": {g: sum(o["generator"] == g for o in outcomes) for g in GENERATORS},
        "accept_rate": _mean([float(o["accepted"]) for o in outcomes]),
        "rounds_mean": _mean([o["rounds"] for o in outcomes]),
        "improved_rate": _mean([float(o["improved"] > 0) for o in outcomes]),
        "calls": sum(row["calls"] for row in nodes),
        "cache_hits": sum(row["cached"] for row in nodes),
        "run": shown.get("run", {}).get("id"),
        "latency": latency(nodes),
    }


def _mean(values: list[float]) -> float | None:
    return round(float(np.mean(values)), 4) if values else None


def draw(outcomes: list[dict[str, Any]], path: Path, *, styles: int = 6) -> Path:
    """A PNG grid: a row per digit, for each of the first ``styles`` style seeds the best
    candidate (its score above it) beside a random candidate of each generator alone."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    chosen = {(o["digit"], o["seed"]): o for o in outcomes if o["seed"] < styles}
    seeds = sorted({seed for _, seed in chosen})
    panels = ("best", *GENERATORS)
    figure, axes = plt.subplots(10, len(seeds) * len(panels), squeeze=False,
                                figsize=(len(seeds) * len(panels) * 0.75, 10 * 0.85))
    for axis in axes.ravel():
        axis.set_axis_off()
    for row in range(10):
        for column, seed in enumerate(seeds):
            found = chosen.get((row, seed))
            if found is None:
                continue
            images = (found["image"], *(found["samples"][g] for g in GENERATORS))
            for offset, (panel, image) in enumerate(zip(panels, images, strict=True)):
                axis = axes[row][column * len(panels) + offset]
                axis.imshow(np.asarray(image).reshape(8, 8), cmap="gray_r", vmin=0, vmax=255)
                if panel == "best":
                    axis.set_title(f"{found['score']:.3f}", fontsize=7, color="tab:green"
                                   if found["accepted"] else "tab:red")
                elif row == 0:
                    axis.set_title(panel, fontsize=6)
    figure.suptitle("best candidate (score) beside a random mixture and kernel candidate; "
                    "a row per digit, a triple per style seed", fontsize=8)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
