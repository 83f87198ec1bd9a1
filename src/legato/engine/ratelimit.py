"""Rate limits as resources: a token bucket per rate-limited component, checked at admission.

A bucket of ``calls`` (or ``tokens``) refills continuously at ``capacity / per`` a second and
starts full. A call is admitted only when the bucket holds at least one call (or any token); a
call-limited bucket loses one call at admission. A token-limited bucket loses what the call
reports it used (``legato.report_usage(tokens=n)``) when it finishes, and may go into debt by
that amount: later calls wait until it has refilled past zero. Time is the engine's clock.
"""

from __future__ import annotations

import threading

from legato.options import RateLimit


class Bucket:
    """One component's token bucket."""

    def __init__(self, limit: RateLimit, now: float) -> None:
        self.limit = limit
        self.capacity = float(limit.calls if limit.calls is not None else limit.tokens or 0)
        self.rate = self.capacity / limit.per
        self.level = self.capacity
        self.updated = now
        self._lock = threading.Lock()

    def _refill(self, now: float) -> None:
        self.level = min(self.capacity, self.level + (now - self.updated) * self.rate)
        self.updated = now

    def take(self, now: float) -> bool:
        """Admit one call now, if the bucket allows; a call limit is charged at once."""
        with self._lock:
            self._refill(now)
            if self.limit.calls is not None:
                if self.level >= 1.0 - 1e-9:
                    self.level -= 1.0
                    return True
                return False
            return self.level > 0.0

    def charge(self, used: float, now: float) -> None:
        """Take ``used`` tokens after a call reported them (may go below zero)."""
        with self._lock:
            self._refill(now)
            self.level -= used

    def refund(self, now: float) -> None:
        """Give back a call taken by ``take`` for a call that was not started after all."""
        with self._lock:
            self._refill(now)
            if self.limit.calls is not None:
                self.level = min(self.capacity, self.level + 1.0)

    def ready_at(self, now: float) -> float:
        """When the next call could be admitted."""
        with self._lock:
            self._refill(now)
            need = 1.0 if self.limit.calls is not None else 1e-6
            if self.level >= need:
                return now
            return now + (need - self.level) / self.rate
