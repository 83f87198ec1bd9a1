"""Resources: what the machine has, what is held, and whether a request fits now.

A :class:`ResourcePool` is built from a backend's capacity: ``cpus``, ``memory`` (bytes),
custom names (``{"asr": 1}``), and a list of GPUs, each with its memory. A request is a
:class:`~legato.component.Resources`. The rules:

- Every named amount must fit in what is free; nothing is ever held beyond capacity.
- GPUs are placed on devices. A fractional request (``gpus=0.5``) goes to one device with that
  fraction free and, with ``gpu_memory``, that much of its memory free; the device chosen is the
  fullest one that still fits (best fit, so whole devices stay free for whole-device requests).
  A request of ``gpus=n >= 1`` takes ``n`` devices that are entirely free.
- ``acquire`` either grants the whole request (a :class:`Grant`, with the devices chosen) or
  nothing; ``release`` gives a grant back exactly once.

The pool is shared by every run of an engine, so it locks; subscribers are told after each
release, so runs waiting for room look again.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from legato.engine.clock import Listeners
from legato.options import Resources

_EPS = 1e-9


@dataclass(frozen=True)
class Gpu:
    """One GPU device: its index (as CUDA numbers it) and its memory in bytes (0: unknown)."""

    index: int
    memory: int = 0


@dataclass(frozen=True)
class Grant:
    """Resources held by one call or one live instance, with the GPU devices chosen."""

    amounts: tuple[tuple[str, float], ...]
    devices: tuple[tuple[int, float, int], ...] = ()  # (device, fraction, gpu memory bytes)

    @property
    def gpu_ids(self) -> tuple[int, ...]:
        return tuple(device for device, _, _ in self.devices)


@dataclass(frozen=True)
class Usage:
    """A snapshot: amount in use and capacity, by resource name."""

    used: Mapping[str, float]
    capacity: Mapping[str, float]


class ResourcePool:
    """Capacity and holdings; ``acquire`` grants whole requests only."""

    def __init__(self, capacity: Mapping[str, float], gpus: tuple[Gpu, ...] = ()) -> None:
        self.capacity = {k: float(v) for k, v in capacity.items() if k != "gpus"}
        self.gpus = gpus
        self.capacity["gpus"] = float(len(gpus)) if gpus else float(capacity.get("gpus", 0.0))
        self._free = dict(self.capacity)
        if gpus:  # placed on devices one by one; GPUs only counted are an amount like cpus
            self._free.pop("gpus")
        self._gpu_free = {gpu.index: 1.0 for gpu in gpus}
        self._gpu_memory_free = {gpu.index: gpu.memory for gpu in gpus}
        self._lock = threading.Lock()
        self._listeners = Listeners()

    # -- questions ------------------------------------------------------------------------------

    def possible(self, request: Resources) -> str | None:
        """Why ``request`` can never fit on this pool, or None when it could (when idle)."""
        for name, amount in _amounts(request):
            have = self.capacity.get(name)
            if have is None:
                return f"resource '{name}' is not declared"
            if amount > have + _EPS:
                return f"{name}={amount:g} is more than the capacity of {have:g}"
        if request.gpus > 0:
            if not self.gpus and request.gpus <= self.capacity["gpus"] + _EPS:
                return None  # GPUs counted but not enumerated: amounts only
            if request.gpus > len(self.gpus) + _EPS:
                return f"gpus={request.gpus:g} is more than the {len(self.gpus)} GPUs here"
            biggest = max((gpu.memory for gpu in self.gpus), default=0)
            if request.gpu_memory and biggest and request.gpu_memory > biggest:
                return (f"gpu_memory={request.gpu_memory / 2**30:.1f}GiB is more than the "
                        f"largest GPU's {biggest / 2**30:.1f}GiB")
            needed = max(1, int(request.gpus))
            roomy = sum(1 for gpu in self.gpus if gpu.memory >= request.gpu_memory)
            if roomy < needed:
                return (f"gpus={request.gpus:g} with gpu_memory="
                        f"{request.gpu_memory / 2**30:.1f}GiB needs {needed} with that much "
                        f"memory; only {roomy} of the {len(self.gpus)} GPUs here have it")
        return None

    def usage(self) -> Usage:
        with self._lock:
            used = {name: self.capacity[name] - free for name, free in self._free.items()}
            if self.gpus:
                used["gpus"] = sum(1.0 - free for free in self._gpu_free.values())
            return Usage(used=used, capacity=dict(self.capacity))

    # -- holding --------------------------------------------------------------------------------

    def acquire(self, request: Resources) -> Grant | None:
        """Hold ``request`` and return its grant, or return None and hold nothing."""
        amounts = _amounts(request)
        if request.gpus and not self.gpus:  # counted, not enumerated: held as an amount
            amounts += (("gpus", float(request.gpus)),)
        with self._lock:
            for name, amount in amounts:
                if self._free.get(name, 0.0) + _EPS < amount:
                    return None
            devices = self._place(request)
            if devices is None:
                return None
            for name, amount in amounts:
                self._free[name] -= amount
            for device, fraction, memory in devices:
                self._gpu_free[device] -= fraction
                self._gpu_memory_free[device] -= memory
            return Grant(amounts, devices)

    def release(self, grant: Grant) -> None:
        """Give back what ``grant`` held, then tell the subscribers."""
        with self._lock:
            for name, amount in grant.amounts:
                self._free[name] += amount
            for device, fraction, memory in grant.devices:
                self._gpu_free[device] += fraction
                self._gpu_memory_free[device] += memory
        self._listeners.call()

    def notify(self) -> None:
        """Tell the subscribers that something came free (a slot, not only resources)."""
        self._listeners.call()

    def declare(self, resources: Mapping[str, float]) -> None:
        """Add or raise capacity: ``{"asr": 2}`` (also ``cpus``, ``memory``, and ``gpus`` where
        GPUs are counted, not enumerated). Amounts already held stay held; nothing shrinks."""
        with self._lock:
            for name, amount in resources.items():
                if name == "gpus" and self.gpus:
                    continue  # enumerated devices: the backend says how many
                old = self.capacity.get(name, 0.0)
                if amount > old:
                    self.capacity[name] = float(amount)
                    self._free[name] = self._free.get(name, 0.0) + float(amount) - old

    def subscribe(self, wake: Callable[[], None]) -> Callable[[], None]:
        """Call ``wake`` after every release; returns the function that stops it."""
        return self._listeners.add(wake)

    def _place(self, request: Resources) -> tuple[tuple[int, float, int], ...] | None:
        """Choose GPU devices for ``request`` (lock held); None when none fit."""
        if request.gpus <= 0 or not self.gpus:  # none, or counted only (held as an amount)
            return ()
        if request.gpus >= 1:
            whole = [i for i, free in self._gpu_free.items() if free >= 1.0 - _EPS
                     and self._gpu_memory_free[i] >= request.gpu_memory]
            count = int(request.gpus)
            if len(whole) < count:
                return None
            share = request.gpu_memory // count if request.gpu_memory else 0
            return tuple((i, 1.0, share) for i in whole[:count])
        fits = [i for i, free in self._gpu_free.items()
                if free + _EPS >= request.gpus
                and self._gpu_memory_free[i] >= request.gpu_memory]
        if not fits:
            return None
        best = min(fits, key=lambda i: (self._gpu_free[i], i))  # the fullest that fits
        return ((best, request.gpus, request.gpu_memory),)


def _amounts(request: Resources) -> tuple[tuple[str, float], ...]:
    """Every non-GPU amount of a request."""
    out = []
    if request.cpus:
        out.append(("cpus", float(request.cpus)))
    if request.memory:
        out.append(("memory", float(request.memory)))
    out.extend((name, float(amount)) for name, amount in request.custom if amount)
    return tuple(out)


__all__ = ["Gpu", "Grant", "ResourcePool", "Usage"]
