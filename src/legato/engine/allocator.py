"""What every run of one engine shares: resources, warm instance slots, rate-limit buckets, and
the duration estimates that rank ready nodes.

``Allocator.admit`` decides whether one call may start now; it holds everything the call needs
(a slot, resources, a rate-limit token) or nothing. ``Allocator.finish`` gives it back. See
:mod:`legato.engine.resources` for the packing rules and :mod:`legato.engine.instances` for
slots and eviction.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from legato.component import Component, Instance
from legato.engine.admission import Wait, decide
from legato.engine.clock import Clock
from legato.engine.frames import Plan
from legato.engine.instances import InstanceTable, Slot, held_by_call
from legato.engine.ratelimit import Bucket
from legato.engine.resources import Grant, ResourcePool
from legato.graph import Graph
from legato.options import Resources


@dataclass(slots=True)
class Admitted:
    """What an admitted call holds until it finishes."""

    grant: Grant | None
    slot: Slot | None
    bucket: Bucket | None

    @property
    def devices(self) -> tuple[int, ...]:
        if self.slot is not None and self.slot.grant is not None and self.slot.grant.devices:
            return self.slot.grant.gpu_ids
        return self.grant.gpu_ids if self.grant is not None else ()


@dataclass(slots=True)
class _Needs:
    """One component's needs per call: resources (None: nothing) and its rate-limit bucket."""

    component: Component
    request: Resources | None
    bucket: Bucket | None


FREE = Admitted(None, None, None)
"""What a call that holds nothing is admitted with (shared: it holds nothing to give back)."""


def _call_request(target: Component | Instance) -> Resources | None:
    """What one call of ``target`` holds while it runs; None for nothing at all.

    A class component's call holds only its cpus (its live instance holds the rest); an inline
    call holds no cpus, since it runs on the scheduler's own thread, which is already running.
    """
    request = target.component.options.requested
    if isinstance(target, Instance):
        request = held_by_call(request)
    return request if request.as_dict() else None


_NOTICEABLE = 1e-4  # seconds: a change smaller than this never re-ranks (it orders nothing)


class Estimates:
    """Per-node duration estimates: an exponential moving average of measured durations."""

    def __init__(self, weight: float = 0.3, default: float = 1.0) -> None:
        self.weight = weight
        self.default = default
        self._values: dict[str, float] = {}
        self._total = 0.0  # of the values, for the mean an unknown node is given
        self.version = 0  # moves when an estimate changes enough to re-rank (see ``add``)

    def get(self, key: str) -> float:
        value = self._values.get(key)
        if value is not None:
            return value
        if self._values:  # unknown nodes cost as much as a known one does on average
            return self._total / len(self._values)
        return self.default

    def add(self, key: str, seconds: float) -> None:
        # no lock: a lost update between two runs' threads only delays learning by one sample
        old = self._values.get(key)
        new = seconds if old is None else old + self.weight * (seconds - old)
        self._values[key] = new
        self._total += new - (old or 0.0)
        if old is None or abs(new - old) > max(0.25 * old, _NOTICEABLE):
            self.version += 1


class Allocator:
    """Admission for every run of one engine."""

    def __init__(self, pool: ResourcePool, instances: InstanceTable, clock: Clock) -> None:
        self.pool = pool
        self.instances = instances
        self.clock = clock
        self.estimates = Estimates()
        self._needs: dict[int, _Needs] = {}  # per component (held, so its id is not reused)
        self._plans: dict[int, tuple[int, Plan]] = {}  # by graph uid: estimates version, plan
        self._lock = threading.Lock()

    def plan(self, graph: Graph) -> Plan:
        """The plan of ``graph``, kept across runs; ranked again when estimates have moved."""
        cached = self._plans.get(graph.uid)
        if cached is not None and cached[0] == self.estimates.version:
            return cached[1]
        plan = Plan(graph, self.estimates.get, like=cached[1] if cached is not None else None)
        self._plans[graph.uid] = (self.estimates.version, plan)
        return plan

    def _needs_of(self, target: Component | Instance) -> _Needs:
        """What each call of ``target``'s component needs, worked out once per component."""
        component = target.component
        needs = self._needs.get(component.uid)
        if needs is None:
            with self._lock:
                limit = component.options.rate_limit
                bucket = Bucket(limit, self.clock.now()) if limit is not None else None
                needs = self._needs[component.uid] = _Needs(
                    component, _call_request(target), bucket)
        return needs

    def admit(self, target: Component | Instance) -> Admitted | float | None:
        """Hold what one call of ``target`` needs and return it; or hold nothing and return
        None (wait for something to come free) or the clock time at which a rate limit allows
        it (wait until then)."""
        needs = self._needs_of(target)
        request, bucket = needs.request, needs.bucket
        if request is None and bucket is None:
            return FREE if not isinstance(target, Instance) else self._admit_slot(target)
        if bucket is not None:  # look before holding anything: giving back would wake every run
            ready = bucket.ready_at(self.clock.now())
            if ready > self.clock.now():
                return ready
        slot = None
        if isinstance(target, Instance):
            slot = self.instances.take(target)
            if slot is None:
                return None
        grant = None
        if request is not None:
            grant = self.pool.acquire(request)
            if grant is None and self.instances.make_room(request):
                grant = self.pool.acquire(request)
            if grant is None:
                if slot is not None:
                    self.instances.untake(slot)
                return None
        if bucket is not None and not bucket.take(self.clock.now()):  # another run was first
            if grant is not None:
                self.pool.release(grant)
            if slot is not None:
                self.instances.give_back(slot)
            return bucket.ready_at(self.clock.now())
        return Admitted(grant, slot, bucket)

    def why(self, target: Component | Instance) -> Wait | None:
        """On what a call of ``target`` that was not admitted waits (see
        :func:`~legato.engine.admission.decide`); None if it would be admitted now."""
        needs = self._needs_of(target)
        usage = self.pool.usage()
        free = {name: cap - usage.used.get(name, 0.0) for name, cap in usage.capacity.items()}
        now = self.clock.now()
        decision = decide(
            needs=needs.request.as_dict() if needs.request is not None else {},
            free=free,
            slot_free=self.instances.available(target) if isinstance(target, Instance) else True,
            allowed_at=needs.bucket.ready_at(now) if needs.bucket is not None else None,
            now=now)
        return decision if isinstance(decision, Wait) else None

    def _admit_slot(self, target: Instance) -> Admitted | None:
        slot = self.instances.take(target)
        return None if slot is None else Admitted(None, slot, None)

    def finish(self, admitted: Admitted, *, abandoned: bool = False, tokens: float = 0.0) -> None:
        """Give back what a call held. An abandoned call's slot is dropped, not reused: its
        object may still be busy (a thread cannot be stopped)."""
        if admitted is FREE:
            return
        if admitted.bucket is not None and tokens:
            admitted.bucket.charge(tokens, self.clock.now())
        if admitted.grant is not None:
            self.pool.release(admitted.grant)
        if admitted.slot is not None:
            if abandoned:
                self.instances.drop(admitted.slot)
            else:
                self.instances.give_back(admitted.slot)
