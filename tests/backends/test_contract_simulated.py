"""The backend contract (legato.testing.BackendContract) on the simulated backend: calls run
here (RunHere) at the end of their simulated duration; time is the simulated clock's."""

from __future__ import annotations

from collections.abc import Callable

from legato.engine.backend import Backend, Call
from legato.engine.clock import Clock
from legato.testing import BackendContract
from legato.testing.simulate import RunHere, SimulatedBackend, SimulatedClock


def duration(call: Call) -> float:
    """A call lasts its ``seconds`` input (``naps``), else a millisecond."""
    if call.batch is None and "seconds" in call.kwargs:
        return float(call.kwargs["seconds"])
    return 0.001


class TestSimulatedBackend(BackendContract):
    # components of every executor run (here, in the thread driving the run)
    workers_can_die = False  # it has no worker to lose

    def make_backend(self) -> SimulatedBackend:
        return SimulatedBackend(SimulatedClock(), duration, value=RunHere(), value_at="end")

    def make_clock(self, backend: Backend) -> Clock:
        assert isinstance(backend, SimulatedBackend)
        return backend.clock

    def settle(self, backend: Backend, until: Callable[[], bool], timeout: float = 0.0) -> None:
        """Move simulated time from event to event until ``until()`` holds."""
        assert isinstance(backend, SimulatedBackend)
        while not until():
            backend.clock.idle(None)
