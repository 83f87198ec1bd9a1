"""Warm instances: which live object of a class component serves the next call.

Each distinct :class:`~legato.component.Instance` (a class and its constructor arguments) has up
to ``instances`` slots. A slot is one live object on the backend, built on its first call and
kept warm across calls and runs. While alive, a slot holds its component's memory, GPU and
custom resources (a loaded model occupies them whether or not it computes); each call also
holds the component's ``cpus`` while it runs.

Taking a slot for a call, in order:

1. an idle live slot (the most recently used: the warmest caches);
2. else, below the maximum, a new slot, if its resources can be acquired; if not, idle slots
   of *other* instances are evicted, least recently used first (never below their
   ``min_instances``), until they can, or until nothing more can be evicted;
3. else nothing: the call waits, and is tried again when a slot or resources come free.

Eviction tells the backend to drop the object (a worker process is killed); the next call that
needs that instance builds it again. Slots are shared by every run of an engine, so this locks.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import replace

from legato.component import Instance
from legato.engine.clock import Clock
from legato.engine.resources import Grant, ResourcePool
from legato.options import Options, Resources


class Slot:
    """One live (or about to be built) object of a class component."""

    __slots__ = ("ahead", "busy", "calls", "grant", "index", "key", "last_used", "target")

    def __init__(self, target: Instance, index: int, grant: Grant | None, now: float) -> None:
        self.target = target
        self.key = instance_key(target)
        self.index = index
        self.grant = grant
        self.busy = True
        self.last_used = now
        self.calls = 0  # calls it has been handed (the first builds its object)
        self.ahead = 0  # a call queued behind the running one (batched thread components)


def instance_key(target: Instance) -> str:
    """Which slots can serve ``target``: the same class and arguments, and the same component
    object (a class redefined under the same name is another: its ``uid`` differs)."""
    return f"{target.key()}@{target.component.uid}"


def held_by_instance(request: Resources) -> Resources:
    """The part of a class component's request its live instance holds (all but cpus)."""
    return replace(request, cpus=0.0)


def held_by_call(request: Resources) -> Resources:
    """The part a call to a class component holds while it runs (its cpus only)."""
    return Resources(cpus=request.cpus)


class InstanceTable:
    """Live slots of every class component of one engine."""

    def __init__(
        self, pool: ResourcePool, evict: Callable[[Instance, int], None], clock: Clock
    ) -> None:
        self.pool = pool
        self._evict = evict
        self._clock = clock
        self._slots: dict[str, list[Slot]] = {}
        self._lock = threading.Lock()
        self.evictions = 0

    def take(self, target: Instance) -> Slot | None:
        """A slot to serve one call of ``target``, marked busy; None when the call must wait."""
        options = target.component.options
        key = instance_key(target)
        with self._lock:
            slots = self._slots.setdefault(key, [])
            idle = [slot for slot in slots if not slot.busy]
            if idle:
                slot = max(idle, key=lambda s: s.last_used)
                slot.busy = True
                return slot
            if len(slots) >= options.instances:
                return self._queue_ahead(slots, options)
            request = held_by_instance(options.resources)
            grant = self._acquire_making_room(request, key)
            if grant is None:
                return self._queue_ahead(slots, options)
            used = {slot.index for slot in slots}
            index = next(i for i in range(len(slots) + 1) if i not in used)
            slot = Slot(target, index, grant, self._clock.now())
            slots.append(slot)
            return slot

    @staticmethod
    def _queue_ahead(slots: list[Slot], options: Options) -> Slot | None:
        """Every slot is busy: a batched ``thread`` component's busy slot takes one more call,
        queued behind the running one where it runs, so the model starts its next batch the
        moment it finishes one, without a round trip through the engine (locked)."""
        if options.batch is None or options.executor != "thread":
            return None
        for slot in sorted(slots, key=lambda s: s.last_used, reverse=True):
            if slot.busy and slot.ahead == 0:
                slot.ahead = 1
                return slot
        return None

    def make_room(self, request: Resources, *, exclude: str = "") -> bool:
        """Evict idle instances until ``request`` could be acquired; True if it now can."""
        with self._lock:
            grant = self._acquire_making_room(request, exclude)
            if grant is None:
                return False
            self.pool.release(grant)
            return True

    def give_back(self, slot: Slot) -> None:
        """The call on ``slot`` finished; the slot is idle and warm (or serves the call queued
        behind it)."""
        with self._lock:
            if slot.ahead:
                slot.ahead -= 1
            else:
                slot.busy = False
            slot.last_used = self._clock.now()
        self.pool.notify()

    def untake(self, slot: Slot) -> None:
        """``slot`` was taken for a call that cannot start after all: idle again, as it was.
        No one is told: nothing came free that was free before (telling would wake the run
        that is trying, and it would try again at once, forever)."""
        with self._lock:
            if slot.ahead:
                slot.ahead -= 1
            else:
                slot.busy = False

    def drop(self, slot: Slot) -> None:
        """Forget ``slot`` (its call was abandoned): release what it held, evict its object."""
        with self._lock:
            slots = self._slots.get(slot.key, [])
            if slot in slots:
                slots.remove(slot)
        self._evict(slot.target, slot.index)
        if slot.grant is not None:
            self.pool.release(slot.grant)

    def available(self, target: Instance) -> bool:
        """Could a call of ``target`` get a slot now (an idle one, or room for a new one)?"""
        with self._lock:
            slots = self._slots.get(instance_key(target), [])
            options = target.component.options
            ahead = options.batch is not None and options.executor == "thread"
            return (any(not slot.busy or (ahead and not slot.ahead) for slot in slots)
                    or len(slots) < options.instances)

    def live(self, target: Instance) -> int:
        """How many slots ``target`` has now."""
        with self._lock:
            return len(self._slots.get(instance_key(target), []))

    def by_component(self) -> dict[str, int]:
        """How many slots are alive, by component name."""
        counts: dict[str, int] = {}
        with self._lock:
            for slots in self._slots.values():
                if slots:
                    name = slots[0].target.component.name
                    counts[name] = counts.get(name, 0) + len(slots)
        return counts

    def close(self) -> None:
        """Evict every slot and release what they held."""
        with self._lock:
            slots = [slot for group in self._slots.values() for slot in group]
            self._slots.clear()
        for slot in slots:
            self._evict(slot.target, slot.index)
            if slot.grant is not None:
                self.pool.release(slot.grant)

    def _acquire_making_room(self, request: Resources, key: str) -> Grant | None:
        """Acquire ``request``, evicting idle slots of other instances while needed (locked)."""
        while True:
            grant = self.pool.acquire(request)
            if grant is not None:
                return grant
            victim = self._least_recently_used(exclude=key, needs=_names(request))
            if victim is None:
                return None
            self._slots[victim.key].remove(victim)
            self.evictions += 1
            self._evict(victim.target, victim.index)
            if victim.grant is not None:
                self.pool.release(victim.grant)

    def _least_recently_used(self, *, exclude: str, needs: set[str]) -> Slot | None:
        """The idle slot used longest ago that holds something ``needs`` names."""
        candidates = []
        for key, slots in self._slots.items():
            if key == exclude:
                continue
            floor = slots[0].target.component.options.min_instances if slots else 0
            idle = [slot for slot in slots if not slot.busy and _holds(slot.grant, needs)]
            if len(slots) > floor and idle:
                candidates.append(min(idle, key=lambda s: s.last_used))
        return min(candidates, key=lambda s: s.last_used) if candidates else None


def _names(request: Resources) -> set[str]:
    names = {name for name, amount in request.custom if amount}
    if request.memory:
        names.add("memory")
    if request.gpus:
        names.add("gpus")
    if request.cpus:
        names.add("cpus")
    return names


def _holds(grant: Grant | None, names: set[str]) -> bool:
    if grant is None:
        return False
    if grant.devices and "gpus" in names:
        return True
    return any(name in names for name, _ in grant.amounts)


__all__ = ["InstanceTable", "Slot", "held_by_call", "held_by_instance", "instance_key"]
