"""What a stream pulls: any iterable, a fixed-rate :class:`Tick`, or a recorded stream replayed.

A stream stamps each item with the time its data was made, on the engine's clock (``max_age``
counts from it). A plain iterable's item is stamped when it is pulled. A *timed* source
(:class:`Tick`, :func:`~legato.streaming.record.replay`) knows when each of its items is due:
its :class:`Schedule` says when, the stream waits for that time on the engine's clock, and the
item is stamped with it, not with the moment it was pulled.

The tick policy, drift-free and never bunched: tick ``k`` is due at ``start + k / hz`` (never
at "the last tick plus a period", so errors do not add up). When the source is asked for its
next tick it waits until that tick is due; if the tick is already more than ``slack`` late
(the stream stalled: its window was full, a ``block`` queue held the source, the machine was
busy), it is skipped and counted as an *overrun*, and so is every later tick that is also
that late: the next tick emitted is the first one still on time, never a burst of late ones.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from legato.errors import ConfigError


@dataclass(frozen=True, slots=True)
class Timed:
    """One item of a timed source: its inputs, and ``at``, the time its data was made."""

    at: float
    inputs: Any


@dataclass(frozen=True, slots=True)
class Interrupt:
    """A source item that barges in: the stream interrupts every open item (each ends as
    ``Dropped(reason="interrupted")``, its running calls cancelled where they can be), then
    submits ``inputs`` (None: submits nothing)."""

    inputs: Any = None


class Schedule(Protocol):
    """A timed source bound to a clock. The stream asks ``next_due(now)`` for when its next
    item is due (None: the source has ended), waits until then, and asks ``take(now)`` for it
    (None: it came too late, and was counted as an overrun). Neither call waits."""

    overruns: int

    def next_due(self, now: float) -> float | None: ...

    def take(self, now: float) -> Timed | None: ...


@runtime_checkable
class TimedSource(Protocol):
    """A source whose items are due at given times on the engine's clock."""

    def schedule(self) -> Schedule:
        """A fresh schedule of the items (times on the clock of the stream that asks)."""
        ...


def _positive(name: str, value: Any, *, allow_none: bool = False) -> float | None:
    if value is None and allow_none:
        return None
    if (isinstance(value, bool) or not isinstance(value, int | float) or not value > 0
            or math.isinf(value)):
        raise ConfigError(f"{name} must be a finite number > 0, got {value!r}")
    return float(value)


@dataclass(frozen=True)
class Tick:
    """A fixed-rate source: ``hz`` ticks a second on the engine's clock, each item the tick's
    scheduled time (a float, seconds). It ends after ``duration`` seconds or ``count`` ticks
    (the first to come; neither: never). ``slack`` (default: half a period): how late a tick may
    be emitted; a later one is skipped and counted as an overrun (see the module docstring).

        for command in control.stream(lg.Tick(100, duration=10)): ...
    """

    hz: float
    duration: float | None = None
    count: int | None = None
    slack: float | None = None

    def __post_init__(self) -> None:
        _positive("Tick hz", self.hz)
        _positive("Tick duration", self.duration, allow_none=True)
        if self.count is not None and (isinstance(self.count, bool)
                                       or not isinstance(self.count, int) or self.count < 0):
            raise ConfigError(f"Tick count must be an int >= 0, got {self.count!r}")
        _positive("Tick slack", self.slack, allow_none=True)

    @property
    def period(self) -> float:
        """Seconds between ticks."""
        return 1.0 / self.hz

    def schedule(self) -> Ticks:
        """The ticks, the first due when the stream first asks."""
        return Ticks(self)


@dataclass(eq=False)
class Ticks:
    """A :class:`Tick` on a clock, a :class:`Schedule` (see the module docstring): tick ``k``
    is due at ``start + k / hz``, ``start`` being the time of the first ``next_due`` call;
    ``overruns`` counts the ticks skipped because they came too late, ``emitted`` the others."""

    tick: Tick
    overruns: int = 0
    emitted: int = 0
    _next: int = 0
    _start: float | None = field(default=None, repr=False)

    def _ticks(self) -> float:
        """How many ticks are scheduled (inf: endless)."""
        tick = self.tick
        limits = [math.inf]
        if tick.count is not None:
            limits.append(tick.count)
        if tick.duration is not None:  # ticks at start + k / hz < start + duration
            limits.append(math.ceil(tick.duration * tick.hz - 1e-9))
        return min(limits)

    def _due(self, now: float) -> float | None:
        if self._start is None:
            self._start = now
        if self._next >= self._ticks():
            return None
        return self._start + self._next / self.tick.hz

    def _late(self, due: float, now: float) -> bool:
        slack = self.tick.period / 2 if self.tick.slack is None else self.tick.slack
        return now - due > slack

    def next_due(self, now: float) -> float | None:
        """When the next tick still on time at ``now`` is due; earlier ones are overruns."""
        while (due := self._due(now)) is not None and self._late(due, now):
            self.overruns += 1
            self._next += 1
        return due

    def take(self, now: float) -> Timed | None:
        """The tick due (its item: its scheduled time), or None if it is too late by now."""
        due = self._due(now)
        if due is None:
            return None
        self._next += 1
        if self._late(due, now):
            self.overruns += 1
            return None
        self.emitted += 1
        return Timed(due, due)
