"""The cut-off between the engine and where calls execute: the Backend protocol.

The engine decides what runs next; a backend only executes. It is handed one :class:`Call` at a
time through ``submit`` and reports each back exactly once, from any thread, through the
``done`` callable given with it. That is the whole contract (after Dask's single ``submit``):

- ``capacity()``: what the backend has, by resource name (``cpus``, ``gpus``, ``memory`` in
  bytes, custom names), for the check and for admission; ``gpus()``: its GPU devices.
- ``submit(call, done)``: start the call; later ``done(call, Outcome)``, exactly once.
- ``cancel(call)``: best effort; a process worker is killed, an async task cancelled, a thread
  abandoned (its late result is dropped). ``done`` may still arrive and is ignored by the engine.
  Returns False when the call runs on (a thread): the engine then keeps what it holds (its
  cpus, its instance slot) until ``done`` arrives; True or None: it stopped, all is given back.
- ``build(target, slot, devices)`` (optional): build a class component slot's object now,
  blocking, where its calls will run (``Engine.warm``: a service is ready once its models are
  loaded).
- ``evict(target, slot)``: drop the live object of a class component's slot (the engine chose
  it to make room, or gave up on it); the next call on that slot builds it again.
- ``close()``: stop everything, leave no worker process or thread behind.

The engine decides which slot of a class component serves a call (``Call.slot``) and which GPU
devices it may use (``Call.devices``): a backend never queues calls of its own.

Values. The engine passes what one call returned to the next calls without looking into it,
except in four places: splitting a returned value into its output ports, listing the elements
of a list for ``legato.map``, gathering a map's results into one list, and reading an item's
outputs (and a branch's condition). A backend whose values stay where they were made (Ray's
object store) implements :class:`Values` for the last three (and for a value's digest, which
cache keys are made of) and fills ``Outcome.outputs`` (split
where the call ran, with :func:`split_returned`); for any other backend values are plain Python
objects in this process (:data:`IN_PROCESS`).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from legato.component import Component, Instance, split_outputs
from legato.engine.resources import Gpu
from legato.values import fingerprint


@dataclass(eq=False, slots=True)
class Call:
    """One attempt at one node for one item (or for a batch of items)."""

    id: int
    target: Component | Instance
    kwargs: dict[str, Any] = field(default_factory=dict)
    batch: list[dict[str, Any]] | None = None
    slot: int | None = None
    devices: tuple[int, ...] = ()
    on_chunk: Callable[[Any], None] | None = None  # a generator component's chunks, live

    @property
    def component(self) -> Component:
        return self.target.component


def drain(value: Any, on_chunk: Callable[[Any], None] | None) -> Any:
    """A generator component's return value, run to its end: its chunks as a list, each
    handed to ``on_chunk`` as it is yielded (from the executing thread). Other values as they
    are."""
    if not inspect.isgenerator(value):
        return value
    chunks = []
    for chunk in value:
        chunks.append(chunk)
        if on_chunk is not None:
            on_chunk(chunk)
    return chunks


async def adrain(value: Any, on_chunk: Callable[[Any], None] | None) -> Any:
    """``drain`` for an ``async def`` generator (and a coroutine: awaited)."""
    if inspect.iscoroutine(value):
        value = await value
    if not inspect.isasyncgen(value):
        return drain(value, on_chunk)
    chunks = []
    async for chunk in value:
        chunks.append(chunk)
        if on_chunk is not None:
            on_chunk(chunk)
    return chunks


@dataclass(slots=True)
class Outcome:
    """What came of a call: ``value`` or ``error``, and when it ran on its worker.

    ``outputs``, set by a backend that splits values where the call ran (``value`` is then
    unused): one entry per item of the call (one for a plain call), that item's outputs by
    port, or the error its returned value gave (see :func:`split_returned`).
    """

    value: Any = None
    error: BaseException | None = None
    start: float = 0.0
    end: float = 0.0
    executor: str = ""
    usage: Mapping[str, float] | None = None
    worker: str = ""  # which worker ran it ("legato-worker-1", "process-4242"): for timelines
    outputs: list[dict[str, Any] | Exception] | None = None


Done = Callable[[Call, Outcome], None]


class Backend(Protocol):
    """Executes calls; see the module docstring for the contract."""

    def capacity(self) -> Mapping[str, float]: ...

    def submit(self, call: Call, done: Done) -> None: ...

    def gpus(self) -> Sequence[Gpu]: ...

    def cancel(self, call: Call) -> bool | None: ...

    def evict(self, target: Instance, slot: int) -> None: ...

    # optional: ``build(target, slot, devices)`` builds a slot's object now, blocking (for
    # Engine.warm); a backend without it is warmed by its first call

    def close(self) -> None: ...


# ---------------------------------------------------------------------------------------------
# Values: what a call returned, as the engine passes it along


def split_value(component: Component, value: Any) -> dict[str, Any] | TypeError:
    """One item's returned value as its outputs by port; a TypeError (returned, not raised)
    when it lacks the declared outputs."""
    try:
        return split_outputs(component.output_annotation, value)
    except (AttributeError, KeyError, TypeError) as exc:
        return TypeError(
            f"returned {type(value).__name__}, which lacks the declared outputs "
            f"{', '.join(p.name for p in component.outputs)}: {exc}")


def split_returned(
    component: Component, value: Any, count: int | None
) -> list[dict[str, Any] | Exception]:
    """What one call returned, as each item's outputs by port (``count``: the batch's size;
    None for a plain call). An item whose value does not fit gets the error in its place (a
    batched call that did not return one result per item: every item). Such errors are not
    retried: the same inputs would return the same."""
    if count is None:
        return [split_value(component, value)]
    if not isinstance(value, list | tuple) or len(value) != count:
        size = len(value) if isinstance(value, list | tuple) else type(value).__name__
        error = ValueError(
            f"batched component returned {size} results for a batch of {count}; it must "
            "return a list with one result per input, in order")
        return [error] * count
    return [split_value(component, v) for v in value]


@runtime_checkable
class Values(Protocol):
    """How a backend's values are looked into by the engine (see the module docstring)."""

    def fetch(self, values: Mapping[str, Any]) -> Mapping[str, Any]:
        """The values themselves, here: an item's outputs, a branch's condition."""
        ...

    def elements(self, value: Any) -> list[Any]:
        """The elements of a list value, each as the backend holds it (for ``legato.map``);
        TypeError when the value is not a list."""
        ...

    def gather(self, values: list[Any]) -> Any:
        """One list value made of ``values`` (a map's results, in order)."""
        ...

    def digest(self, value: Any) -> str | None:
        """The value's :func:`legato.values.fingerprint`, computed where the value lives (a
        cache key's part; the value itself does not travel). None: it has no stored form."""
        ...


class InProcess:
    """Values are plain Python objects in this process: looked into directly."""

    def fetch(self, values: Mapping[str, Any]) -> Mapping[str, Any]:
        return values

    def elements(self, value: Any) -> list[Any]:
        try:
            return list(value)
        except TypeError:
            raise TypeError(f"legato.map needs a list, got {type(value).__name__}") from None

    def gather(self, values: list[Any]) -> Any:
        return values

    def digest(self, value: Any) -> str | None:
        return fingerprint(value)


IN_PROCESS = InProcess()


def values_of(backend: Backend) -> Values:
    """The backend's own :class:`Values` if it has them, else :data:`IN_PROCESS`."""
    return backend if isinstance(backend, Values) else IN_PROCESS
