"""The engine: scheduling, batching, retries and timeouts over a pluggable backend.

It imports no backend, store or interface: a :class:`~legato.engine.backend.Backend` is handed
in, time comes from an injected :class:`~legato.engine.clock.Clock`, and state changes go out as
events on an :class:`~legato.engine.events.EventBus`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from legato.engine.backend import Backend, Call, Outcome
from legato.engine.clock import Clock, ManualClock, MonotonicClock
from legato.engine.events import EventBus
from legato.engine.run import Failure, OnError, Run, RunStats, bind_inputs, ranks
from legato.graph import Graph


class Engine:
    """A long-lived executor of graphs: one backend (with its warm instances), one event bus.

    Close it explicitly (or use it as a context manager) to stop its workers.
    """

    def __init__(
        self, backend: Backend, *, clock: Clock | None = None, bus: EventBus | None = None
    ) -> None:
        self.backend = backend
        self.clock = clock or MonotonicClock()
        self.bus = bus or EventBus()

    def start(
        self,
        graph: Graph,
        items: Iterable[Mapping[str, Any]],
        *,
        window: int = 256,
        ordered: bool = True,
        on_error: OnError = "raise",
    ) -> Run:
        """A run of ``graph`` over ``items``; iterate ``run.results()`` to drive it."""
        return Run(graph, items, backend=self.backend, bus=self.bus, clock=self.clock,
                   window=window, ordered=ordered, on_error=on_error)

    def close(self) -> None:
        self.backend.close()

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


__all__ = [
    "Backend",
    "Call",
    "Clock",
    "Engine",
    "EventBus",
    "Failure",
    "ManualClock",
    "MonotonicClock",
    "OnError",
    "Outcome",
    "Run",
    "RunStats",
    "bind_inputs",
    "ranks",
]
