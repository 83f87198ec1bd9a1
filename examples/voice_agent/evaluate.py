"""Scoring the agent against the test set's ground truth, and reading legato's events file."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np


def word_errors(reference: str, hypothesis: str) -> tuple[int, int]:
    """Word-level edit distance (substitutions, insertions, deletions) and reference length."""
    ref, hyp = reference.lower().split(), hypothesis.lower().split()
    row = list(range(len(hyp) + 1))
    for i, ref_word in enumerate(ref, start=1):
        diagonal, row[0] = row[0], i
        for j, hyp_word in enumerate(hyp, start=1):
            diagonal, row[j] = row[j], min(
                row[j] + 1,  # deletion
                row[j - 1] + 1,  # insertion
                diagonal + (ref_word != hyp_word),  # substitution or match
            )
    return row[len(hyp)], len(ref)


def word_error_rate(references: Sequence[str], hypotheses: Sequence[str]) -> float:
    """Corpus word error rate: all word errors over all reference words."""
    if len(references) != len(hypotheses):
        raise ValueError(f"{len(references)} references but {len(hypotheses)} hypotheses")
    errors = words = 0
    for reference, hypothesis in zip(references, hypotheses, strict=True):
        e, n = word_errors(reference, hypothesis)
        errors, words = errors + e, words + n
    return errors / words if words else 0.0


def accuracy(expected: Sequence[str], predicted: Sequence[str]) -> float:
    """Share of exact matches."""
    if not expected:
        return 0.0
    return sum(e == p for e, p in zip(expected, predicted, strict=True)) / len(expected)


@dataclass(frozen=True)
class Latency:
    """Distribution of durations, in seconds."""

    count: int
    p50: float
    p95: float
    total: float

    @classmethod
    def of(cls, durations: Iterable[float]) -> Latency:
        """Summarise ``durations`` (an empty set gives zeros)."""
        values = np.asarray(list(durations), dtype=float)
        if values.size == 0:
            return cls(0, 0.0, 0.0, 0.0)
        return cls(
            count=int(values.size),
            p50=float(np.percentile(values, 50)),
            p95=float(np.percentile(values, 95)),
            total=float(values.sum()),
        )


def latency_by_node(events: Iterable[dict[str, Any]]) -> dict[str, Latency]:
    """Per node, the durations of its successful executions, in the order nodes first ran.

    ``events`` are the lines of ``legato map --events``: one per node execution (``node``,
    ``item``, ``start``, ``end``, ``duration``, ``status``), plus item and run lines (no ``node``).
    """
    durations: dict[str, list[float]] = defaultdict(list)
    for event in events:
        if "node" in event and event.get("status", "ok") == "ok":
            durations[event["node"]].append(float(event["duration"]))
    return {node: Latency.of(values) for node, values in durations.items()}


def end_to_end(events: Iterable[dict[str, Any]], items: Iterable[int] | None = None) -> Latency:
    """Per item, from the start of its first node to the end of its last one.

    ``items`` restricts this to some items (e.g. the ones that succeeded).
    """
    spans: dict[int, list[float]] = {}
    for event in events:
        if "node" not in event or "item" not in event:
            continue
        start, end = float(event["start"]), float(event["end"])
        span = spans.setdefault(int(event["item"]), [start, end])
        span[0], span[1] = min(span[0], start), max(span[1], end)
    keep = set(items) if items is not None else set(spans)
    return Latency.of(end - start for item, (start, end) in spans.items() if item in keep)


def work_per_item(events: Iterable[dict[str, Any]], items: Iterable[int] | None = None) -> Latency:
    """Per item, the sum of its node executions' durations: its latency on an idle agent.

    (The three stages after recognition run in parallel, so this slightly overstates it.)
    """
    totals: dict[int, float] = defaultdict(float)
    for event in events:
        if "node" in event and "item" in event and event.get("status", "ok") == "ok":
            totals[int(event["item"])] += float(event["duration"])
    keep = set(items) if items is not None else set(totals)
    return Latency.of(total for item, total in totals.items() if item in keep)
