"""Dynamic batching: calls to a batched component from different items, grouped.

The policy: a batch is flushed when it holds ``max_size`` calls, or when its oldest call has
waited ``max_wait_ms``. With ``max_wait_ms="auto"`` the wait is what the next calls are expected
to take to fill the batch (the moving average gap between calls times the room left), capped
by the component's own estimated service time (never wait longer than a call takes) and by
50 ms. A flushed batch that cannot start yet (no free instance, no resources) is kept and keeps
growing, up to ``max_size`` per call, until the run's admission lets it start.

A batch is flushed early when waiting longer would miss its oldest call's deadline: each call
with a deadline sets the batch's latest start (deadline less the component's estimated service
time). When more calls wait than fit, higher-priority items go first, then older ones.

The :class:`Batcher` knows nothing of the loop: it is handed how to start a call and how to set
a timer, and the run calls ``timer_fired`` and ``flush_waiting`` back.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any

from legato.component import Component, Instance
from legato.engine.frames import PendingBatch, PendingCall, Task
from legato.engine.instances import instance_key

AUTO_WAIT_CAP = 0.05  # seconds: the longest an "auto" batch ever waits


class Batcher:
    """The pending batches of one engine, one per batched target: calls from every run and item
    to the same warm instance (or the same stateless batched component) meet in one batch."""

    def __init__(
        self,
        *,
        now: Callable[[], float],
        estimate: Callable[[str], float],
        start: Callable[[PendingCall, str], bool],
        set_timer: Callable[[float, tuple[Hashable, int]], None],
    ) -> None:
        self._now = now
        self._estimate = estimate
        self._start = start
        self._set_timer = set_timer
        self._batches: dict[Hashable, PendingBatch] = {}

    def __bool__(self) -> bool:
        """True while any batch holds calls or waits for room."""
        return bool(self._batches) and any(batch.tasks for batch in self._batches.values())

    @property
    def waiting(self) -> bool:
        """True when a flushed batch waits for an instance or resources."""
        return bool(self._batches) and any(b.waiting for b in self._batches.values())

    def pending(self) -> list[list[Task]]:
        """The calls waiting in every batch (for a snapshot)."""
        return [[task for task, _ in batch.tasks] for batch in self._batches.values()]

    def queued(self, target: Component | Instance) -> list[tuple[Task, dict[str, Any]]]:
        """The calls waiting in ``target``'s batch (the list itself: a queue policy trims it)."""
        batch = self._batches.get(batch_key(target))
        return batch.tasks if batch is not None else []

    def add(self, task: Task, kwargs: dict[str, Any], target: Component | Instance) -> None:
        """One call of ``task``'s node joins its target's batch."""
        policy = target.component.options.batch
        assert policy is not None
        key = batch_key(target)
        batch = self._batches.get(key)
        if batch is None:
            batch = self._batches[key] = PendingBatch()
        now = self._now()
        if batch.last_arrival is not None:
            gap = now - batch.last_arrival
            previous = batch.arrival
            batch.arrival = gap if previous == 0.0 else previous + 0.2 * (gap - previous)
        batch.last_arrival = now
        if batch.tasks and task.frame.item.priority != batch.tasks[0][0].frame.item.priority:
            batch.mixed = True
        batch.tasks.append((task, kwargs))
        if batch.waiting:
            return  # flushed when an instance frees up (flush_waiting)
        if len(batch.tasks) >= policy.max_size:
            self.flush(key, "full")
            return
        service = self._estimate(task.frame.plan.keys[task.node.id])
        deadline = task.frame.item.deadline
        if deadline is not None:  # waiting past this would miss the call's deadline
            latest = deadline - service
            if latest <= now:
                self.flush(key, "deadline")
                return
            if batch.flush_at is None or latest < batch.flush_at:
                batch.flush_at = latest
                batch.flush_reason = "deadline"
                self._set_timer(latest, (key, batch.generation))
        if len(batch.tasks) == 1:
            if policy.max_wait_ms == "auto":
                wait = min(batch.arrival * (policy.max_size - 1), service, AUTO_WAIT_CAP)
            else:
                wait = float(policy.max_wait_ms) / 1000.0
            if batch.flush_at is None or now + wait < batch.flush_at:
                batch.flush_at = now + wait
                batch.flush_reason = "wait"
            self._set_timer(now + wait, (key, batch.generation))

    def timer_fired(self, token: tuple[Hashable, int]) -> None:
        """A batch's max wait (or its deadline's latest start) is here, unless it was flushed
        since."""
        key, generation = token
        batch = self._batches.get(key)
        if batch is not None and batch.generation == generation:
            if batch.flush_at is not None and batch.flush_at > self._now():
                return  # an earlier timer of this batch; a later one is set
            self.flush(key, batch.flush_reason)

    def flush_waiting(self) -> None:
        """Room came free: start the batches that were waiting for it, if they fit now."""
        for key, batch in list(self._batches.items()):
            if batch.waiting and batch.tasks:
                self.flush(key, "room")

    def flush(self, key: Hashable, reason: str) -> None:
        """Send the batch now (up to ``max_size`` calls a time, highest priority first), if
        admission allows."""
        batch = self._batches.get(key)
        if batch is None or not batch.tasks:
            return
        queued = batch.tasks
        target = queued[0][0].node.target
        assert isinstance(target, Component | Instance)
        policy = target.component.options.batch
        assert policy is not None
        if batch.mixed and len(queued) > policy.max_size:  # higher priority first, then age
            queued.sort(key=lambda entry: (-entry[0].frame.item.priority,
                                           entry[0].frame.item.seq))
        entries, taken = [], 0  # the first max_size live calls; finished items' are dropped
        for entry in queued:
            taken += 1
            if not entry[0].frame.item.finished:
                entries.append(entry)
                if len(entries) == policy.max_size:
                    break
        rest = queued[taken:]
        if not entries:
            self._reset(batch, [])
            return
        pending = PendingCall([t for t, _ in entries], target, None, [kw for _, kw in entries])
        if not self._start(pending, reason):
            batch.tasks = entries + rest  # keep growing until an instance is free
            batch.waiting = True
            return
        self._reset(batch, rest)
        if rest:
            self.flush(key, "full" if len(rest) >= policy.max_size else reason)

    @staticmethod
    def _reset(batch: PendingBatch, rest: list[tuple[Task, dict[str, Any]]]) -> None:
        batch.tasks = rest
        batch.waiting = False
        batch.generation += 1
        batch.flush_at = None
        batch.flush_reason = "wait"
        if not rest:
            batch.mixed = False


def batch_key(target: Component | Instance) -> Hashable:
    """Which batch a call joins: its live instance's (same class and arguments), or its
    stateless component's."""
    if isinstance(target, Instance):
        return ("instance", instance_key(target))
    return ("call", target.uid)
