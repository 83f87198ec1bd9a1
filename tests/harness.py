"""The test harness: an observable manual clock, an event recorder and background runs.

Timing tests never sleep: they inject a :class:`WatchedClock` (a ``ManualClock`` that also tells
the test when the engine has looked at the time and gone back to waiting), drive the run on a
background thread, and advance the clock only once the engine is observed to be waiting.
"""

from __future__ import annotations

import contextlib
import os
import threading
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import legato as lg
from legato.engine.events import Event, NodeFailed, NodeFinished, NodeStarted

WAIT = 10.0  # seconds any cross-thread wait may take before the test fails (never reached)


class WatchedClock(lg.ManualClock):
    """A ManualClock that records when the engine last blocked waiting for its next deadline.

    The run loop asks ``seconds_until(deadline)`` right before it blocks; this clock answers
    like ManualClock and notes the time at which it answered "not yet" (None).
    """

    def __init__(self) -> None:
        super().__init__()
        self._idle = threading.Condition()
        self._idle_at: float | None = None

    def seconds_until(self, deadline: float) -> float | None:
        now = self.now()
        if deadline <= now:
            return 0.0
        with self._idle:
            self._idle_at = now
            self._idle.notify_all()
        return None

    def wait_idle(self, timeout: float = WAIT) -> None:
        """Block until the engine has seen the current time and gone back to waiting."""
        now = self.now()
        with self._idle:
            ok = self._idle.wait_for(
                lambda: self._idle_at is not None and self._idle_at >= now, timeout
            )
        assert ok, f"the engine never waited on the clock at t={now}"


class Events:
    """Every event of an engine's bus, in publication order (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Condition()
        self.all: list[Event] = []

    def __call__(self, event: Event) -> None:
        with self._lock:
            self.all.append(event)
            self._lock.notify_all()

    def of(self, kind: type) -> list[Any]:
        with self._lock:
            return [e for e in self.all if isinstance(e, kind)]

    def wait_for(self, predicate: Callable[[Event], bool], timeout: float = WAIT) -> Event:
        """The first event matching ``predicate``, waiting for it to be published."""
        with self._lock:
            found: list[Event] = []

            def seen() -> bool:
                found[:] = [e for e in self.all if predicate(e)]
                return bool(found)

            assert self._lock.wait_for(seen, timeout), "expected event was never published"
            return found[0]

    def started(self, node: str | None = None) -> list[NodeStarted]:
        return [e for e in self.of(NodeStarted) if node is None or e.node == node]

    def finished(self, node: str | None = None) -> list[NodeFinished]:
        return [e for e in self.of(NodeFinished) if node is None or e.node == node]

    def failed(self, node: str | None = None) -> list[NodeFailed]:
        return [e for e in self.of(NodeFailed) if node is None or e.node == node]


class Background:
    """Run ``fn`` on a daemon thread; ``result()`` joins it and returns or re-raises."""

    def __init__(self, fn: Callable[[], Any]) -> None:
        self._value: Any = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._main, args=(fn,), daemon=True)
        self._thread.start()

    def _main(self, fn: Callable[[], Any]) -> None:
        try:
            self._value = fn()
        except BaseException as exc:
            self._error = exc

    @property
    def done(self) -> bool:
        return not self._thread.is_alive()

    def result(self, timeout: float = WAIT) -> Any:
        self._thread.join(timeout)
        assert not self._thread.is_alive(), "the background run did not finish"
        if self._error is not None:
            raise self._error
        return self._value


MakeEngine = Callable[..., lg.Engine]
"""``make(clock, cpus=2, resources={...})``: an engine over a local backend, closed after the
test (the ``make_engine`` fixture)."""


def alive(pid: int) -> bool:
    """Is process ``pid`` still running?"""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


POSTGRES = os.environ.get("LEGATO_TEST_POSTGRES")  # a server's URL (scripts/postgres.sh)


@contextlib.contextmanager
def postgres_schema() -> Iterator[str]:
    """The URL of a fresh schema on the test PostgreSQL server, dropped afterwards; the test is
    skipped, saying how to run it, when ``LEGATO_TEST_POSTGRES`` is not set (CI sets it)."""
    import pytest

    if not POSTGRES:
        pytest.skip("set LEGATO_TEST_POSTGRES=postgresql://... (scripts/postgres.sh starts one)")
    import psycopg

    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(POSTGRES, autocommit=True) as admin:
        admin.execute(f"CREATE SCHEMA {name}")
    try:
        yield f"{POSTGRES}?options=-csearch_path%3D{name}"
    finally:
        with psycopg.connect(POSTGRES, autocommit=True) as admin:
            admin.execute(f"DROP SCHEMA {name} CASCADE")
