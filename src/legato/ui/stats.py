"""One node's numbers on the run page, whether counted from the store or live from events.

A :class:`NodeTally` is fed one execution at a time (O(1) each) and turned into the API's
``NodeStats`` JSON by :meth:`NodeTally.to_json`. Its status follows these rules, first match:

1. ``running``: a call of the node is executing now (live runs only);
2. ``failed``: an attempt failed for good (no retry followed);
3. ``retried``: an attempt failed and was tried again, and none failed for good;
4. ``ok``: it ran, and nothing failed;
5. ``cached``: every execution was a cache hit;
6. ``pending``: nothing ran yet.

Durations are kept up to :data:`KEEP` per node (the most recent, for live runs): p50 and p95
are exact up to that count, and describe the recent calls past it.
"""

from __future__ import annotations

import collections
import math
from collections.abc import Iterable, Sequence
from typing import Any

KEEP = 20_000  # durations kept per node for its percentiles


def percentile(ordered: Sequence[float], fraction: float) -> float | None:
    """The ``fraction`` quantile (nearest rank) of values sorted ascending; None when empty."""
    if not ordered:
        return None
    rank = max(0, math.ceil(fraction * len(ordered)) - 1)
    return float(ordered[min(rank, len(ordered) - 1)])


def quantiles(values: Iterable[float], *fractions: float) -> list[float | None]:
    """Several quantiles of unsorted ``values`` (rounded to microseconds)."""
    ordered = sorted(values)
    found = [percentile(ordered, fraction) for fraction in fractions]
    return [None if value is None else round(value, 6) for value in found]


class NodeTally:
    """The executions of one node (one graph path) of one run, counted."""

    __slots__ = ("cached", "count", "durations", "failed", "ok", "retries",
                 "running", "sizes")

    def __init__(self) -> None:
        self.count = 0
        self.ok = 0
        self.failed = 0
        self.cached = 0
        self.retries = 0
        self.running = 0
        self.durations: collections.deque[float] = collections.deque(maxlen=KEEP)
        self.sizes: collections.Counter[int] = collections.Counter()  # batch members by size

    def add(self, status: str, duration: float, batch: int | None = None) -> None:
        """One recorded execution: ``status`` as the store writes it (``ok``, ``failed``,
        ``retried``, ``cached``); ``batch``: the size of its batch call, if it was one."""
        self.count += 1
        if status == "ok":
            self.ok += 1
        elif status == "failed":
            self.failed += 1
        elif status == "retried":
            self.retries += 1
        elif status == "cached":
            self.cached += 1
            return
        self.durations.append(duration)
        if batch:
            self.sizes[batch] += 1  # members; to_json turns them into calls

    def add_batch(self, size: int) -> None:
        """One batch call of ``size`` members (live: from the batch's event), counted as a call
        directly; its members are then added with ``batch=None``."""
        self.sizes[size] += size

    def status(self) -> str:
        if self.running:
            return "running"
        if self.failed:
            return "failed"
        if self.retries:
            return "retried"
        if self.ok:
            return "ok"
        if self.cached:
            return "cached"
        return "pending"

    def to_json(self) -> dict[str, Any]:
        p50, p95 = quantiles(self.durations, 0.5, 0.95)
        calls = {size: max(1, round(members / size)) for size, members in self.sizes.items()}
        total = sum(calls.values())
        return {
            "status": self.status(), "count": self.count, "ok": self.ok, "failed": self.failed,
            "cached": self.cached, "retries": self.retries, "running": self.running,
            "p50": p50, "p95": p95,
            "batch": {
                "count": total,
                "mean": round(sum(s * n for s, n in calls.items()) / total, 3) if total else None,
                "max": max(calls) if calls else None,
                "sizes": {str(size): calls[size] for size in sorted(calls)},
            },
        }


def pending() -> dict[str, Any]:
    """The stats of a node that has not run."""
    return NodeTally().to_json()


__all__ = ["KEEP", "NodeTally", "pending", "percentile", "quantiles"]
