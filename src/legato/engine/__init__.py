"""The engine: scheduling, batching, retries and timeouts over a pluggable backend.

It imports no backend, store or interface: a :class:`~legato.engine.backend.Backend` is handed
in, time comes from an injected :class:`~legato.engine.clock.Clock`, and state changes go out as
events on an :class:`~legato.engine.events.EventBus`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from legato.component import Instance
from legato.engine import snapshot
from legato.engine.allocator import Allocator
from legato.engine.backend import Backend, Call, Outcome
from legato.engine.clock import Clock, ManualClock, MonotonicClock
from legato.engine.events import EventBus, InstanceBuilt, InstanceEvicted
from legato.engine.frames import Failure, RunStats, bind_inputs, ranks
from legato.engine.handles import Chunk, Dropped, ItemHandle, NodeDone, Updates
from legato.engine.instances import InstanceTable
from legato.engine.loop import Scheduler
from legato.engine.memo import Memo, Reuse
from legato.engine.resources import Gpu, ResourcePool, Usage
from legato.engine.run import OnDrop, OnError, Run
from legato.engine.snapshot import ComponentState, EngineSnapshot
from legato.graph import Graph


class Engine:
    """A long-lived executor of graphs: one backend, its resources and warm instances (shared by
    every run, so a model loaded for one run serves the next), one event bus.

    ``resources`` declares custom capacity (``{"asr": 1}``) on top of the backend's. Close the
    engine explicitly (or use it as a context manager) to stop its workers.
    """

    def __init__(
        self,
        backend: Backend,
        *,
        clock: Clock | None = None,
        bus: EventBus | None = None,
        resources: Mapping[str, float] | None = None,
    ) -> None:
        self.backend = backend
        self.clock = clock or MonotonicClock()
        self.bus = bus or EventBus()
        self.pool = ResourcePool(backend.capacity(), tuple(backend.gpus()))
        if resources:
            self.pool.declare(resources)
        self.instances = InstanceTable(self.pool, self._evict, self.clock)
        self.allocator = Allocator(self.pool, self.instances, self.clock)
        self.scheduler = Scheduler(backend, self.allocator, self.bus, self.clock)

    def _evict(self, target: Instance, slot: int) -> None:
        self.backend.evict(target, slot)
        if self.bus.active:
            self.bus.publish(InstanceEvicted(component=target.component.name, slot=slot,
                                             time=self.clock.now()))

    def capacity(self) -> dict[str, float]:
        """Everything this engine can hand out, by resource name; ``gpu_memory`` is the
        largest GPU's memory (what one placement can get)."""
        capacity = dict(self.pool.capacity)
        memories = [gpu.memory for gpu in self.pool.gpus if gpu.memory]
        if memories:
            capacity["gpu_memory"] = float(max(memories))
        return capacity

    def declare(self, resources: Mapping[str, float]) -> None:
        """Add custom capacity, e.g. ``{"asr": 1}`` for a licence or a device of your own."""
        self.pool.declare(resources)

    def usage(self) -> Usage:
        """What is held now, and the capacity, by resource name."""
        return self.pool.usage()

    def snapshot(self, timeout: float = 1.0) -> EngineSnapshot:
        """What the engine does now, per component (calls queued and running, warm
        instances) and its resources held vs capacity; see :mod:`legato.engine.snapshot`.
        Safe from any thread; waits at most ``timeout`` for the loop."""
        return snapshot.take(self.scheduler, self.instances.by_component(), self.usage(),
                             timeout)

    def start(
        self,
        graph: Graph,
        items: Iterable[Mapping[str, Any]] | None = None,
        *,
        window: int = 256,
        ordered: bool = True,
        on_error: OnError = "raise",
        on_drop: OnDrop = "skip",
        indexed: bool = False,
        feed: bool = False,
        run_id: str | None = None,
        memo: Memo | None = None,
        deadline: float | None = None,
        priority: int = 0,
        check_outputs: bool = True,
        mode: str = "run",
    ) -> Run:
        """A run of ``graph``. With ``items``, iterate ``run.results()``: it feeds them (at
        most ``window`` at a time) and yields results; without, the run is open: ``submit``
        items to it from any thread, then ``close()`` it. ``feed``: pull ``items`` on a feeder
        thread (for sources that block between items). ``memo``: what the run may reuse instead
        of computing (the run store's cache and resume). ``deadline`` (seconds from each item's
        submission) and ``priority``: the defaults of its items. ``check_outputs``: fail an item
        whose outputs do not fit their declared types (:mod:`legato.outputs`). ``mode``: how
        the run is driven (``run``, ``map``, ``stream``, ``serve``), told to observers."""
        return Run(self.scheduler, graph, items=items, window=window, ordered=ordered,
                   on_error=on_error, on_drop=on_drop, indexed=indexed, feed=feed,
                   run_id=run_id, memo=memo, deadline=deadline, priority=priority,
                   check_outputs=check_outputs, mode=mode)

    def warm(self, graph: Graph) -> int:
        """Build the first instance of every class component of ``graph`` (nested bodies
        included) now, where its calls will run, so the first request finds its models loaded.
        Blocks; raises :class:`~legato.errors.BuildError` when a constructor fails. Instances
        already alive, or with no room now, are left as they are. Returns how many were built.
        A backend without ``build`` is warmed by its first calls instead (0 here)."""
        build = getattr(self.backend, "build", None)
        if build is None:
            return 0
        built = 0
        seen: set[str] = set()
        for _, node in graph.walk():
            target = node.target
            if not isinstance(target, Instance) or target.key() in seen:
                continue
            seen.add(target.key())
            admitted = self.allocator.admit(target)
            if admitted is None or isinstance(admitted, float) or admitted.slot is None:
                continue
            try:
                if admitted.slot.calls == 0:
                    build(target, admitted.slot.index, admitted.devices)
                    admitted.slot.calls += 1
                    built += 1
                    if self.bus.active:
                        self.bus.publish(InstanceBuilt(component=target.component.name,
                                                       slot=admitted.slot.index,
                                                       time=self.clock.now()))
            finally:
                self.allocator.finish(admitted)
        return built

    def close(self) -> None:
        """Stop the loop (open runs are cancelled), evict every warm instance and stop the
        backend's workers."""
        self.scheduler.stop()
        self.instances.close()
        self.backend.close()

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


__all__ = [
    "Backend",
    "Call",
    "Chunk",
    "Clock",
    "ComponentState",
    "Dropped",
    "Engine",
    "EngineSnapshot",
    "EventBus",
    "Failure",
    "Gpu",
    "ItemHandle",
    "ManualClock",
    "Memo",
    "MonotonicClock",
    "NodeDone",
    "OnDrop",
    "OnError",
    "Outcome",
    "ResourcePool",
    "Reuse",
    "Run",
    "RunStats",
    "Updates",
    "bind_inputs",
    "ranks",
]
