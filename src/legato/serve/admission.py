"""Admission: how many requests of one pipeline are let in, and when a refused one may retry.

Policy. Each pipeline admits at most ``max_queue`` items at once (running or waiting in the
engine). A request past that is refused at once with 429, not queued: its ``Retry-After`` is
the time the items ahead of it take at the observed service rate,
``ceil(queue_ahead / rate)`` seconds, at least 1, where ``rate`` is the completions per second
over the last ``window`` seconds (1 s when nothing has completed yet: no rate to go by).

Everything here runs on the server's event loop thread; time comes from an injected clock.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass


def retry_after(queue_ahead: int, rate: float | None) -> int:
    """Seconds a refused request should wait: ``ceil(queue_ahead / rate)``, at least 1 (1 when
    the rate is unknown)."""
    if rate is None or rate <= 0:
        return 1
    return max(1, math.ceil(queue_ahead / rate))


class ServiceRate:
    """Completions per second over a sliding window (at most ``keep`` completions kept)."""

    def __init__(self, *, window: float = 10.0, keep: int = 4096,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.window = window
        self.clock = clock
        self._times: deque[float] = deque(maxlen=keep)

    def completed(self) -> None:
        self._times.append(self.clock())

    def rate(self) -> float | None:
        """Completions per second in the window; None before two completions."""
        now = self.clock()
        times = self._times
        while times and now - times[0] > self.window:
            times.popleft()
        if len(times) < 2:
            return None
        span = max(now - times[0], 1e-3)
        return len(times) / span


@dataclass(frozen=True)
class Refusal:
    """Why a request was not admitted: the queue ahead of it and when to retry."""

    queue_ahead: int
    retry_after: int


class Gate:
    """One pipeline's admission: ``admit()`` a request (None) or refuse it (a Refusal);
    ``release(completed=)`` when its item has ended."""

    def __init__(self, max_queue: int, *, rate: ServiceRate | None = None) -> None:
        self.max_queue = max_queue
        self.rate = rate or ServiceRate()
        self.admitted = 0
        self.refused = 0

    def admit(self) -> Refusal | None:
        if self.admitted >= self.max_queue:
            self.refused += 1
            return Refusal(self.admitted, retry_after(self.admitted, self.rate.rate()))
        self.admitted += 1
        return None

    def release(self, *, completed: bool) -> None:
        self.admitted -= 1
        if completed:
            self.rate.completed()


__all__ = ["Gate", "Refusal", "ServiceRate", "retry_after"]
