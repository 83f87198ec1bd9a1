"""Clocks: the manual clock moves only when told and wakes whoever listens."""

from __future__ import annotations

import pytest

import legato as lg


def test_manual_clock_moves_only_when_advanced() -> None:
    clock = lg.ManualClock(start=10.0)
    assert clock.now() == 10.0
    clock.advance(0.5)
    assert clock.now() == 10.5


def test_manual_clock_says_wait_until_woken_for_a_future_deadline() -> None:
    clock = lg.ManualClock()
    assert clock.seconds_until(1.0) is None
    clock.advance(1.0)
    assert clock.seconds_until(1.0) == 0.0


def test_manual_clock_refuses_to_go_back() -> None:
    with pytest.raises(ValueError, match=r"a clock only moves forward; advance\(-1\)"):
        lg.ManualClock().advance(-1)


def test_manual_clock_wakes_listeners_until_they_stop() -> None:
    clock = lg.ManualClock()
    woken: list[float] = []
    stop = clock.on_advance(lambda: woken.append(clock.now()))
    clock.advance(1)
    clock.advance(2)
    stop()
    clock.advance(3)
    assert woken == [1, 3]
    stop()  # stopping twice is harmless


def test_monotonic_clock_counts_down_to_a_deadline() -> None:
    clock = lg.MonotonicClock()
    now = clock.now()
    assert clock.seconds_until(now - 1) == 0.0
    wait = clock.seconds_until(now + 100)
    assert wait is not None
    assert 0 < wait <= 100
    clock.on_advance(lambda: None)()  # nothing to stop, but callable
