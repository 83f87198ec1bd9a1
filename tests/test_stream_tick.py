"""Streams fed by ``lg.Tick``: each scheduled time emitted on the engine's clock, drift-free;
late ticks skipped and counted as overruns, never bunched; the rate and jitter on real time.

Timing is the test's (a ``WatchedClock``), except in the real-time test, whose bounds are
generous (the machine is shared).
"""

from __future__ import annotations

import itertools
import statistics
import threading
import time
from collections.abc import Iterator

import pytest

import legato as lg
from harness import WAIT, Events, MakeEngine, WatchedClock
from legato.engine.events import NodeStarted


@pytest.fixture
def gate() -> Iterator[threading.Event]:
    event = threading.Event()
    yield event
    event.set()  # never leave a worker thread waiting


def _echo() -> lg.Pipeline:
    @lg.component(executor="inline")
    def stamp(t: float) -> float:
        return t

    @lg.pipeline
    def p(t: float) -> float:
        return stamp(t)

    return p


def test_tick_emits_each_scheduled_time_on_the_engine_clock(make_engine: MakeEngine) -> None:
    clock = WatchedClock()
    stream = _echo().stream(lg.Tick(8, count=3), engine=make_engine(clock))
    assert next(stream) == 0.0  # the first tick is due at once
    clock.advance(0.125)
    assert next(stream) == 0.125
    clock.advance(0.125)
    assert next(stream) == 0.25
    assert list(stream) == []  # count=3: the stream ends
    stats = stream.stats()
    assert (stats.items_in, stats.done, stats.overruns) == (3, 3, 0)


def test_tick_after_a_stall_skips_the_late_ticks_as_overruns_and_never_bunches(
    make_engine: MakeEngine,
) -> None:
    clock = WatchedClock()  # 8 Hz: a tick every 0.125 s, emitted if at most 0.0625 s late
    stream = _echo().stream(lg.Tick(8, count=6), engine=make_engine(clock))
    assert next(stream) == 0.0
    clock.advance(0.125)
    assert next(stream) == 0.125
    clock.advance(0.46875)  # a stall: now 0.59375; the ticks of 0.25, 0.375 and 0.5 are late
    clock.advance(0.03125)  # 0.625: the next tick, on time
    assert next(stream) == 0.625
    assert list(stream) == []
    stats = stream.stats()
    assert stats.overruns == 3
    assert stats.items_in == 3  # the three late ticks were never emitted


def test_ticks_held_back_by_a_full_window_are_counted_as_overruns(
    make_engine: MakeEngine, gate: threading.Event
) -> None:
    clock = WatchedClock()
    engine = make_engine(clock)
    events = Events()
    engine.bus.subscribe(events)

    @lg.component(cpus=0)
    def plan(t: float) -> float:
        if t == 0.0:
            gate.wait(WAIT)  # the first tick's call holds the only room in the window
        return t

    @lg.pipeline
    def p(t: float) -> float:
        return plan(t)

    stream = p.stream(lg.Tick(8, count=4), engine=engine, window=1)
    events.wait_for(lambda e: isinstance(e, NodeStarted))
    clock.advance(0.40625)  # 0.125 and 0.25 are due and late, 0.375 due and still on time
    gate.set()
    assert list(stream) == [0.0, 0.375]
    assert stream.stats().overruns == 2


def test_tick_ends_after_its_duration(make_engine: MakeEngine) -> None:
    clock = WatchedClock()
    stream = _echo().stream(lg.Tick(4, duration=0.5), engine=make_engine(clock))
    assert next(stream) == 0.0
    clock.advance(0.25)
    assert next(stream) == 0.25  # ticks at 0 and 0.25 only: 0.5 is the end
    assert list(stream) == []


def test_tick_rejects_bad_rates() -> None:
    with pytest.raises(lg.ConfigError, match="Tick hz must be a finite number > 0, got 0"):
        lg.Tick(0)
    with pytest.raises(lg.ConfigError, match="Tick count must be an int >= 0"):
        lg.Tick(10, count=-1)


def test_tick_rate_and_jitter_on_real_time(engine: lg.Engine) -> None:
    late: list[float] = []

    @lg.component(executor="inline")
    def sense(t: float) -> float:
        late.append(time.monotonic() - t)  # how long after its scheduled time it ran
        return t

    @lg.pipeline
    def p(t: float) -> float:
        return sense(t)

    stream = p.stream(lg.Tick(100, duration=1.0), engine=engine)
    ticks = list(stream)
    stats = stream.stats()
    assert stats.items_in + stats.overruns == 100  # every tick is emitted or counted
    assert stats.items_in >= 70  # a shared, noisy machine: most ticks on time
    gaps = [b - a for a, b in itertools.pairwise(ticks)]
    assert all(abs(g / 0.01 - round(g / 0.01)) < 1e-6 for g in gaps)  # on the grid: no drift
    assert statistics.median(late) < 0.02  # sleep overshoot and a thread hop, not a period
