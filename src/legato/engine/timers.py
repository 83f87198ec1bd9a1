"""The loop's timers: one small typed record each, fired by the handler it names.

A retry's backoff, a call's timeout, a batch's max wait, a rate limit's refill and an item's
deadline are all a :class:`Timer`: when it is due, what to call, and with what. The loop asks
``next_due()`` how long it may block and ``fire(now)`` when time has come.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(order=True, slots=True)
class Timer:
    """``handler(payload)`` at clock time ``when``; ties fire in the order they were set."""

    when: float
    seq: int
    handler: Callable[[Any], None] = field(compare=False)
    payload: Any = field(compare=False, default=None)


class Timers:
    """A heap of :class:`Timer`; not thread-safe (the loop's own)."""

    def __init__(self) -> None:
        self._heap: list[Timer] = []
        self._seq = itertools.count()

    def __bool__(self) -> bool:
        return bool(self._heap)

    def __len__(self) -> int:
        return len(self._heap)

    def add(self, when: float, handler: Callable[[Any], None], payload: Any = None) -> None:
        heapq.heappush(self._heap, Timer(when, next(self._seq), handler, payload))

    def next_due(self) -> float | None:
        """When the earliest timer is due (None: no timer set)."""
        return self._heap[0].when if self._heap else None

    def fire(self, now: float) -> None:
        """Call every timer due at ``now``, earliest first."""
        heap = self._heap
        while heap and heap[0].when <= now:
            timer = heapq.heappop(heap)
            timer.handler(timer.payload)

    def clear(self) -> None:
        self._heap.clear()
