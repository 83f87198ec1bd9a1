"""The cut-off between the engine and where calls execute: the Backend protocol.

The engine decides what runs next; a backend only executes. It is handed one :class:`Call` at a
time through ``submit`` and reports each back exactly once, from any thread, through the
``done`` callable given with it. That is the whole contract (after Dask's single ``submit``):

- ``capacity()``: what the backend has, by resource name (``cpus``, ``gpus``, ``memory`` in
  bytes, custom names), for the check and for admission.
- ``submit(call, done)``: start the call; later ``done(call, Outcome)``, exactly once.
- ``cancel(call)``: best effort; a process worker is killed, an async task cancelled, a thread
  abandoned (its late result is dropped). ``done`` may still arrive and is ignored by the engine.
- ``close()``: stop everything, leave no worker process or thread behind.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from legato.component import Component, Instance


@dataclass(eq=False, slots=True)
class Call:
    """One attempt at one node for one item (or for a batch of items)."""

    id: int
    target: Component | Instance
    kwargs: dict[str, Any] = field(default_factory=dict)
    batch: list[dict[str, Any]] | None = None

    @property
    def component(self) -> Component:
        return self.target.component if isinstance(self.target, Instance) else self.target


@dataclass(frozen=True, slots=True)
class Outcome:
    """What came of a call: ``value`` or ``error``, and when it ran on its worker."""

    value: Any = None
    error: BaseException | None = None
    start: float = 0.0
    end: float = 0.0
    executor: str = ""


Done = Callable[[Call, Outcome], None]


class Backend(Protocol):
    """Executes calls; see the module docstring for the contract."""

    def capacity(self) -> Mapping[str, float]: ...

    def submit(self, call: Call, done: Done) -> None: ...

    def cancel(self, call: Call) -> None: ...

    def close(self) -> None: ...
