"""Dynamic batching: calls to a batched component from different items, grouped.

The policy: a batch is flushed when it holds ``max_size`` calls, or when its oldest call has
waited ``max_wait_ms``. With ``max_wait_ms="auto"`` the wait is what the next calls are expected
to take to fill the batch (the moving average gap between calls times the room left), capped
by the component's own estimated service time (never wait longer than a call takes) and by
50 ms. A flushed batch that cannot start yet (no free instance, no resources) is kept and keeps
growing, up to ``max_size`` per call, until the run's admission lets it start.

The :class:`Batcher` knows nothing of the loop: it is handed how to start a call and how to set
a timer, and the run calls ``timer_fired`` and ``flush_waiting`` back.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from legato.component import Component, Instance
from legato.engine.frames import PendingBatch, PendingCall, Task

AUTO_WAIT_CAP = 0.05  # seconds: the longest an "auto" batch ever waits


class Batcher:
    """The pending batches of one run, one per batched target."""

    def __init__(
        self,
        *,
        now: Callable[[], float],
        estimate: Callable[[str], float],
        start: Callable[[PendingCall], bool],
        set_timer: Callable[[float, tuple[int, int]], None],
    ) -> None:
        self._now = now
        self._estimate = estimate
        self._start = start
        self._set_timer = set_timer
        self._batches: dict[int, PendingBatch] = {}

    def __bool__(self) -> bool:
        """True while any batch holds calls or waits for room."""
        return bool(self._batches) and any(batch.tasks for batch in self._batches.values())

    @property
    def waiting(self) -> bool:
        """True when a flushed batch waits for an instance or resources."""
        return bool(self._batches) and any(b.waiting for b in self._batches.values())

    def add(self, task: Task, kwargs: dict[str, Any], target: Component | Instance) -> None:
        """One call of ``task``'s node joins its target's batch."""
        component = target.component if isinstance(target, Instance) else target
        policy = component.options.batch
        assert policy is not None
        key = id(target)
        batch = self._batches.get(key)
        if batch is None:
            batch = self._batches[key] = PendingBatch()
        now = self._now()
        if batch.last_arrival is not None:
            gap = now - batch.last_arrival
            previous = batch.arrival
            batch.arrival = gap if previous == 0.0 else previous + 0.2 * (gap - previous)
        batch.last_arrival = now
        batch.tasks.append((task, kwargs))
        if batch.waiting:
            return  # flushed when an instance frees up (flush_waiting)
        if len(batch.tasks) >= policy.max_size:
            self.flush(key)
        elif len(batch.tasks) == 1:
            if policy.max_wait_ms == "auto":
                service = self._estimate(task.frame.plan.keys[task.node.id])
                wait = min(batch.arrival * (policy.max_size - 1), service, AUTO_WAIT_CAP)
            else:
                wait = float(policy.max_wait_ms) / 1000.0
            self._set_timer(now + wait, (key, batch.generation))

    def timer_fired(self, token: tuple[int, int]) -> None:
        """A batch's max wait is over (unless it was flushed since)."""
        key, generation = token
        batch = self._batches.get(key)
        if batch is not None and batch.generation == generation:
            self.flush(key)

    def flush_waiting(self) -> None:
        """Room came free: start the batches that were waiting for it, if they fit now."""
        for key, batch in list(self._batches.items()):
            if batch.waiting and batch.tasks:
                self.flush(key)

    def flush(self, key: int) -> None:
        """Send the batch now (up to ``max_size`` calls a time), if admission allows."""
        batch = self._batches.get(key)
        if batch is None or not batch.tasks:
            return
        live = [(t, kw) for t, kw in batch.tasks if not t.frame.item.finished]
        if not live:
            batch.tasks = []
            return
        target = live[0][0].node.target
        assert isinstance(target, Component | Instance)
        component = target.component if isinstance(target, Instance) else target
        assert component.options.batch is not None
        size = component.options.batch.max_size
        entries, rest = live[:size], live[size:]
        pending = PendingCall([t for t, _ in entries], target, None, [kw for _, kw in entries])
        if not self._start(pending):
            batch.tasks = live  # keep growing until an instance is free
            batch.waiting = True
            return
        batch.tasks = rest
        batch.waiting = False
        batch.generation += 1
        if rest:
            self.flush(key)
