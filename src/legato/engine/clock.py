"""Time, injected: the engine never calls ``time`` directly.

The run loop asks its clock two things: ``now()`` and, when it has nothing to do until a
deadline (a retry's backoff, a timeout, a batch's max wait), ``seconds_until(deadline)``: how long
to block waiting for a completion before looking again. ``MonotonicClock`` answers in real
seconds. ``ManualClock`` moves only when a test calls ``advance()``; until then the loop blocks
(``None``), and ``advance`` wakes every loop that listens, so timing tests are exact and never
sleep.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Protocol


class Clock(Protocol):
    """Where the engine's time comes from."""

    def now(self) -> float:
        """Seconds on a monotonic scale (the origin is arbitrary)."""
        ...

    def seconds_until(self, deadline: float) -> float | None:
        """How long the loop may block waiting for ``deadline``; None: until woken."""
        ...

    def on_advance(self, wake: Callable[[], None]) -> Callable[[], None]:
        """Call ``wake`` whenever time jumps; returns a function that stops doing so."""
        ...

    def wait_until(self, deadline: float) -> None:
        """Block the calling thread (never the engine's) until the clock reads ``deadline``: a
        fixed-rate source waits for its next tick here."""
        ...

    def idle(self, deadline: float | None) -> None:
        """The loop is about to block until a completion arrives or ``deadline`` passes (None:
        no timer is set). Real and manual clocks do nothing; a simulated clock jumps here to
        its next event (a simulated call finishing, or the deadline)."""
        ...


class Listeners:
    """Functions to call when something happens (time jumps, resources come free). Thread-safe;
    ``add`` returns the function that removes what it added."""

    def __init__(self) -> None:
        self._items: list[Callable[[], None]] = []
        self._lock = threading.Lock()

    def add(self, listener: Callable[[], None]) -> Callable[[], None]:
        with self._lock:
            self._items.append(listener)

        def remove() -> None:
            with self._lock:
                if listener in self._items:
                    self._items.remove(listener)

        return remove

    def call(self) -> None:
        """Call every listener, outside the lock (a listener may add or remove one)."""
        with self._lock:
            items = list(self._items)
        for listener in items:
            listener()


class MonotonicClock:
    """Real time from ``time.monotonic``."""

    def now(self) -> float:
        return time.monotonic()

    def seconds_until(self, deadline: float) -> float | None:
        return max(0.0, deadline - time.monotonic())

    def on_advance(self, wake: Callable[[], None]) -> Callable[[], None]:
        return _nothing

    def wait_until(self, deadline: float) -> None:
        while (left := deadline - time.monotonic()) > 0:
            time.sleep(min(left, 0.05))

    def idle(self, deadline: float | None) -> None:
        return None


def _nothing() -> None:
    return None


class ManualClock:
    """A clock that only a test moves: ``clock.advance(0.005)``."""

    def __init__(self, start: float = 0.0) -> None:
        self._now = start
        self._lock = threading.Lock()
        self._listeners = Listeners()
        self._moved = threading.Condition()

    def now(self) -> float:
        return self._now

    def seconds_until(self, deadline: float) -> float | None:
        return 0.0 if deadline <= self._now else None

    def advance(self, seconds: float) -> None:
        """Move time forward and wake every loop waiting on this clock."""
        if seconds < 0:
            raise ValueError(f"a clock only moves forward; advance({seconds})")
        with self._lock:
            self._now += seconds
        with self._moved:
            self._moved.notify_all()
        self._listeners.call()

    def wait_until(self, deadline: float) -> None:
        """Block until a test has advanced the clock to ``deadline``."""
        with self._moved:
            self._moved.wait_for(lambda: self._now >= deadline)

    def idle(self, deadline: float | None) -> None:
        return None

    def on_advance(self, wake: Callable[[], None]) -> Callable[[], None]:
        return self._listeners.add(wake)
