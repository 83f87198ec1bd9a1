"""Simulated time: a run in virtual time, exact, with no real waiting.

A :class:`SimulatedBackend` runs nothing. When the engine submits a call, it asks a function
of the call for its duration (``duration=lambda call: call.kwargs["cost"]``) and books the
call's completion on a :class:`SimulatedClock` at ``now + duration``. The engine's run loop
calls ``clock.idle(deadline)`` right before it would block; the clock then jumps to its next
event:

- the earliest booked event at or before ``deadline`` (any, when ``deadline`` is None): time
  becomes that event's time, and every event booked for that same instant fires, in booking
  order, so the loop sees all completions of one instant before it starts anything new;
- else, with a deadline (a timeout, a retry's backoff, a batch's max wait), time becomes the
  deadline and the loop fires its timer.

So a pipeline's makespan under a scheduling policy comes out exactly, however long its calls
would take: ``clock.now()`` after the run, or the latest end in ``backend.spans``. Drive one
run at a time from one thread; the simulation is then deterministic.

    clock = SimulatedClock()
    backend = SimulatedBackend(clock, duration=lambda call: call.kwargs["cost"],
                               resources={"slot": 4})
    with lg.Engine(backend, clock=clock) as engine:
        pipe.run(engine=engine, cost=1.0, check_outputs=False)  # simulated calls return None
    makespan = clock.now()
"""

from __future__ import annotations

import asyncio
import heapq
import inspect
import itertools
import math
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from legato.component import Instance
from legato.engine.backend import Call, Done, Outcome
from legato.engine.clock import ManualClock
from legato.engine.instances import instance_key
from legato.engine.resources import Gpu
from legato.errors import ConfigError, RunError
from legato.errors import SimulationStalled as SimulationStalled  # re-exported: raised here


class _Event:
    """One booked action; ``cancelled`` ones stay in the heap and are skipped when popped."""

    __slots__ = ("action", "cancelled", "time")

    def __init__(self, time: float, action: Callable[[], None]) -> None:
        self.time = time
        self.action = action
        self.cancelled = False


class SimulatedClock(ManualClock):
    """A clock that jumps from event to event whenever the run loop would block.

    A :class:`~legato.engine.clock.ManualClock` (the engine's ``Clock`` protocol) whose
    ``idle`` moves time itself, plus ``call_at``/``cancel`` to book events.
    """

    def __init__(self, start: float = 0.0) -> None:
        super().__init__(start)
        self._events: list[tuple[float, int, _Event]] = []
        self._seq = itertools.count()

    # -- the Clock protocol -------------------------------------------------------------------

    def idle(self, deadline: float | None) -> None:
        """Jump to the next event at or before ``deadline`` and fire every event of that
        instant; or, when none comes first, jump to ``deadline``."""
        with self._lock:
            self._drop_cancelled()
            events = self._events
            if events and (deadline is None or events[0][0] <= deadline):
                when = max(self._now, events[0][0])
                due = []
                while events and events[0][0] <= when:
                    event = heapq.heappop(events)[2]
                    if not event.cancelled:
                        due.append(event)
            elif deadline is not None:
                when, due = max(self._now, deadline), []
            else:
                raise SimulationStalled(
                    f"at t={self._now:g} the run waits for a completion, but no simulated call "
                    "is in flight and no timer is set")
            self._now = when
        for event in due:
            event.action()
        self._listeners.call()

    # -- booking ------------------------------------------------------------------------------

    def call_at(self, when: float, action: Callable[[], None]) -> _Event:
        """Book ``action`` to run when simulated time reaches ``when``; returns its handle."""
        if math.isnan(when):
            raise ConfigError("an event's time must be a number, got nan")
        event = _Event(when, action)
        with self._lock:
            heapq.heappush(self._events, (when, next(self._seq), event))
        return event

    def wait_until(self, deadline: float) -> None:
        """Block the calling thread until simulated time reaches ``deadline``: booked as an
        event, so the engine's loop jumps there when it has nothing sooner to do."""
        reached = threading.Event()
        self.call_at(deadline, reached.set)
        self._listeners.call()  # the loop looks again: it may be idle with nothing booked
        reached.wait()

    def cancel(self, event: _Event) -> None:
        """Unbook ``event``; cancelling one that already fired does nothing."""
        event.cancelled = True

    @property
    def pending(self) -> int:
        """How many booked events have not fired yet."""
        with self._lock:
            return sum(1 for _, _, event in self._events if not event.cancelled)

    def _drop_cancelled(self) -> None:
        while self._events and self._events[0][2].cancelled:
            heapq.heappop(self._events)


@dataclass(frozen=True, slots=True)
class Span:
    """When one simulated call ran: ``node`` is the component's name; ``size`` is the number of
    items in a batched call (1 otherwise)."""

    call: int
    node: str
    start: float
    end: float
    size: int = 1


class SimulatedBackend:
    """A backend whose calls take simulated time and run no code.

    ``duration(call)`` gives each call's length in the clock's seconds (it sees every call,
    legato's own ``collect`` nodes included, and a batched call's ``call.batch``).
    ``value(call)`` gives its result (default None); if it raises, the call fails with that
    error at the end of its duration. It is asked when the call starts, or with
    ``value_at="end"`` when it ends (a call cancelled before then never asks it).
    :class:`RunHere` is a ``value`` that runs the call's component here (give it with
    ``value_at="end"``, so that calls run in the order they end). ``resources`` is the
    simulated machine's capacity (by default unlimited ``cpus`` and ``memory``), ``gpus`` its
    GPU devices (default none). Every completed call is recorded in ``spans``.
    """

    def __init__(
        self,
        clock: SimulatedClock,
        duration: Callable[[Call], float],
        *,
        value: Callable[[Call], Any] | None = None,
        resources: Mapping[str, float] | None = None,
        gpus: Sequence[Gpu] = (),
        value_at: Literal["start", "end"] = "start",
    ) -> None:
        if value_at not in ("start", "end"):
            raise ConfigError(f"value_at must be 'start' or 'end', got {value_at!r}")
        self.clock = clock
        self.duration = duration
        self.value = value
        self.value_at = value_at
        self._capacity = {"cpus": math.inf, "memory": math.inf, "gpus": float(len(gpus))}
        self._capacity.update({k: float(v) for k, v in (resources or {}).items()})
        self._gpus = tuple(gpus)
        self._booked: dict[int, _Event] = {}
        self._closed = False
        self.spans: list[Span] = []

    # -- the Backend protocol -----------------------------------------------------------------

    def capacity(self) -> Mapping[str, float]:
        """The simulated machine's resources, as given."""
        return dict(self._capacity)

    def gpus(self) -> Sequence[Gpu]:
        """The simulated GPU devices, as given."""
        return self._gpus

    def submit(self, call: Call, done: Done) -> None:
        """Book the call's end at ``now + duration(call)``; ``done`` comes when the clock gets
        there."""
        if self._closed:
            raise RunError("the simulated backend is closed; create a new engine to run again")
        start = self.clock.now()
        length = float(self.duration(call))
        if not length >= 0:  # also refuses nan
            raise ConfigError(f"duration of a call to '{call.component.name}' must be >= 0 "
                              f"seconds, got {length}")
        end = start + length
        early = None if self.value_at == "end" else self._outcome(call, start, end)

        def finish() -> None:
            self._booked.pop(call.id, None)
            outcome = early if early is not None else self._outcome(call, start, end)
            size = 1 if call.batch is None else len(call.batch)
            self.spans.append(Span(call.id, call.component.name, start, end, size))
            done(call, outcome)

        self._booked[call.id] = self.clock.call_at(end, finish)

    def _outcome(self, call: Call, start: float, end: float) -> Outcome:
        try:
            result = None if self.value is None else self.value(call)
        except Exception as exc:
            return Outcome(error=exc, start=start, end=end, executor="simulated")
        return Outcome(value=result, start=start, end=end, executor="simulated")

    def cancel(self, call: Call) -> None:
        """Unbook the call: its ``done`` never comes (nor, with ``value_at="end"``, its value)."""
        event = self._booked.pop(call.id, None)
        if event is not None:
            self.clock.cancel(event)

    def evict(self, target: Instance, slot: int) -> None:
        """Costs nothing; a :class:`RunHere` ``value`` drops the slot's object."""
        if isinstance(self.value, RunHere):
            self.value.forget(target, slot)

    def close(self) -> None:
        """Unbook every call; later submissions are refused (RunError)."""
        self._closed = True
        for event in self._booked.values():
            self.clock.cancel(event)
        self._booked.clear()

    # -- results ------------------------------------------------------------------------------

    def makespan(self) -> float:
        """From the first call's start to the last call's end (0 when nothing ran)."""
        if not self.spans:
            return 0.0
        return max(s.end for s in self.spans) - min(s.start for s in self.spans)


class RunHere:
    """A :class:`SimulatedBackend` ``value`` that runs each call's component here, in this
    thread, when the call ends in simulated time: the results are real, the time is simulated.

    A class component's object is built on its slot's first call and kept for the slot's later
    calls (as a real backend keeps it warm); a batched call gets one list per port; an ``async``
    component's coroutine is run to its end. Calls are run in the order they end.
    """

    def __init__(self) -> None:
        self._objects: dict[tuple[str, int], Any] = {}

    def __call__(self, call: Call) -> Any:
        target = call.target
        function: Callable[..., Any]
        if isinstance(target, Instance):
            key = (instance_key(target), call.slot or 0)
            if key not in self._objects:
                self._objects[key] = target.build()
            function = self._objects[key]
        else:
            function = target.target
        if call.batch is None:
            kwargs = call.kwargs
        else:
            ports = [port.name for port in call.component.call_inputs]
            kwargs = {port: [item[port] for item in call.batch] for port in ports}
        value = function(**kwargs)
        if inspect.iscoroutine(value):
            value = asyncio.run(value)
        return value

    def forget(self, target: Instance, slot: int) -> None:
        """Drop the object of ``target``'s slot: the next call there builds it again."""
        self._objects.pop((instance_key(target), slot), None)


__all__ = ["RunHere", "SimulatedBackend", "SimulatedClock", "SimulationStalled", "Span"]
