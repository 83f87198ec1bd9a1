"""What an engine is doing now, per component: calls waiting, calls running, warm instances.

Metrics (queue depth and live instances per component) and the web UI read it at scrape time
rather than counting events: a count kept from events drifts whenever a path forgets one (a
dropped item, a withdrawn batch), a snapshot cannot. It is taken on the engine's loop thread,
which owns this state, and costs one pass over what is queued and in flight.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from legato.engine.resources import Usage

if TYPE_CHECKING:
    from legato.engine.frames import Task
    from legato.engine.loop import Scheduler


@dataclass(slots=True)
class ComponentState:
    """One component's calls now: ``queued`` (ready, waiting for admission, or in a batch not
    yet sent), ``running`` (in flight: each call of a batch counts) and ``instances`` (warm)."""

    queued: int = 0
    running: int = 0
    instances: int = 0


@dataclass(slots=True)
class EngineSnapshot:
    """Per component name, its :class:`ComponentState`; ``usage``: resources held and capacity.
    ``complete`` is False when the loop did not answer in time (then ``components`` has only
    the warm instances)."""

    components: dict[str, ComponentState] = field(default_factory=dict)
    usage: Usage = field(default_factory=lambda: Usage({}, {}))
    complete: bool = True


def take(scheduler: Scheduler, live: dict[str, int], usage: Usage,
         timeout: float = 1.0) -> EngineSnapshot:
    """The snapshot, counted on the loop's thread (directly when the loop is not running, or
    when called from it). ``live``: warm instances by component name."""
    snapshot = EngineSnapshot(usage=usage)
    for name, alive in live.items():
        snapshot.components.setdefault(name, ComponentState()).instances = alive
    if scheduler.on_loop() or not scheduler.running:
        _count(scheduler, snapshot)
        return snapshot
    done = threading.Event()

    def count() -> None:
        _count(scheduler, snapshot)
        done.set()

    scheduler.post(count)
    if not done.wait(timeout):
        snapshot.complete = False
    return snapshot


def _count(scheduler: Scheduler, snapshot: EngineSnapshot) -> None:
    components = snapshot.components

    def add(tasks: Iterable[Task], *, running: bool = False) -> None:
        for task in tasks:
            name = task.component_name
            if not name:
                continue
            state = components.get(name)
            if state is None:
                state = components[name] = ComponentState()
            if running:
                state.running += 1
            else:
                state.queued += 1

    add(entry[-1] for entry in scheduler.ready)
    calls = scheduler.calls
    for group in calls.blocked.values():
        for _, pending in group:
            add(pending.tasks if isinstance(pending.tasks, list) else [pending.tasks])
    add(task for tasks in scheduler.batches.pending() for task in tasks)
    add((task for tasks in calls.inflight.values() for task in tasks), running=True)
