"""The cut-off between the engine and where calls execute: the Backend protocol.

The engine decides what runs next; a backend only executes. It is handed one :class:`Call` at a
time through ``submit`` and reports each back exactly once, from any thread, through the
``done`` callable given with it. That is the whole contract (after Dask's single ``submit``):

- ``capacity()``: what the backend has, by resource name (``cpus``, ``gpus``, ``memory`` in
  bytes, custom names), for the check and for admission; ``gpus()``: its GPU devices.
- ``submit(call, done)``: start the call; later ``done(call, Outcome)``, exactly once.
- ``cancel(call)``: best effort; a process worker is killed, an async task cancelled, a thread
  abandoned (its late result is dropped). ``done`` may still arrive and is ignored by the engine.
- ``evict(target, slot)``: drop the live object of a class component's slot (the engine chose
  it to make room, or gave up on it); the next call on that slot builds it again.
- ``close()``: stop everything, leave no worker process or thread behind.

The engine decides which slot of a class component serves a call (``Call.slot``) and which GPU
devices it may use (``Call.devices``): a backend never queues calls of its own.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from legato.component import Component, Instance
from legato.engine.resources import Gpu


@dataclass(eq=False, slots=True)
class Call:
    """One attempt at one node for one item (or for a batch of items)."""

    id: int
    target: Component | Instance
    kwargs: dict[str, Any] = field(default_factory=dict)
    batch: list[dict[str, Any]] | None = None
    slot: int | None = None
    devices: tuple[int, ...] = ()

    @property
    def component(self) -> Component:
        return self.target.component if isinstance(self.target, Instance) else self.target


@dataclass(slots=True)
class Outcome:
    """What came of a call: ``value`` or ``error``, and when it ran on its worker."""

    value: Any = None
    error: BaseException | None = None
    start: float = 0.0
    end: float = 0.0
    executor: str = ""
    usage: Mapping[str, float] | None = None
    worker: str = ""  # which worker ran it ("legato-worker-1", "process-4242"): for timelines


Done = Callable[[Call, Outcome], None]


class Backend(Protocol):
    """Executes calls; see the module docstring for the contract."""

    def capacity(self) -> Mapping[str, float]: ...

    def submit(self, call: Call, done: Done) -> None: ...

    def gpus(self) -> Sequence[Gpu]: ...

    def cancel(self, call: Call) -> None: ...

    def evict(self, target: Instance, slot: int) -> None: ...

    def close(self) -> None: ...
