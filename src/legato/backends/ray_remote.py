"""What runs inside Ray's worker processes for the Ray backend (:mod:`legato.backends.ray`).

Nothing here imports Ray: the driver wraps these functions and this class with ``ray.remote``.

A call travels as ``(layout, *args)``, every argument value at the top level, because Ray
resolves the object refs among a task's top-level arguments before it runs (a ref inside a list
would arrive as a ref). The layout, a short string (:func:`layout`; cheaper for Ray to send than
any structure), says how to rebuild the keyword arguments, for one item or for a batch. A call
returns ``1 + items x ports`` objects, each its own entry in Ray's object store: first a small
:class:`Report` as a plain tuple (when it ran, its error, what it reported using, where it ran,
the length of each list it returned), then each item's outputs, port by port (see
:func:`output_ports`). The driver fetches the report only; the outputs stay in the cluster and
go, ref by ref, to the calls that take them.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import os
import time
import traceback
from collections.abc import Callable, Coroutine
from typing import Any, NamedTuple

from legato.component import WHOLE, Component, Instance, output_fields
from legato.engine.backend import adrain, split_returned
from legato.usage import recording


def layout(names: tuple[str, ...], size: int | None) -> str:
    """How a call's positional arguments become keyword arguments: ``names`` in order, once
    per item; ``size``: the items of a batch (each port then gets a list), None for a plain
    call. ``("x", "k"), 3`` -> ``"x,k|3"``."""
    joined = ",".join(names)
    return joined if size is None else f"{joined}|{size}"


@functools.lru_cache(maxsize=4096)
def parse_layout(text: str) -> tuple[tuple[str, ...], int | None]:
    """The inverse of :func:`layout`."""
    joined, bar, size = text.partition("|")
    return tuple(joined.split(",")) if joined else (), int(size) if bar else None


class Report(NamedTuple):
    """What the driver learns of a finished call (the outputs themselves stay in the cluster).

    ``shapes``: per returned output, its length when it is a list or tuple, else its type's
    name (so ``legato.map`` over it needs no round trip). ``misfits``: items whose value did
    not fit the declared outputs, with the error (see ``split_returned``).
    """

    start: float
    end: float
    error: BaseException | None
    traceback: str
    usage: dict[str, float] | None
    worker: str
    shapes: tuple[int | str, ...]
    misfits: tuple[tuple[int, Exception], ...]


def output_ports(component: Component) -> tuple[str, ...]:
    """The ports one item's outputs are returned as, in order (``split_outputs``' keys)."""
    fields = output_fields(component.output_annotation)
    if fields is None:
        return ("out",)
    return (WHOLE, *(name for name, _ in fields))


def shape(value: Any) -> int | str:
    """A list's or tuple's length, else the name of the value's type."""
    if isinstance(value, list | tuple):
        return len(value)
    return type(value).__name__


def arguments(names: tuple[str, ...], size: int | None, args: tuple[Any, ...]) -> dict[str, Any]:
    """The keyword arguments of a call (see :func:`layout`); a batch's ports get lists."""
    if size is None:
        return dict(zip(names, args, strict=True))
    width = len(names)
    return {name: list(args[column::width]) for column, name in enumerate(names)}


def run_call(
    component: Component,
    target: Callable[..., Any],
    layout: str,
    args: tuple[Any, ...],
    *,
    worker: str,
    run_coroutine: Callable[[Coroutine[Any, Any, Any]], Any] = asyncio.run,
) -> tuple[Any, ...]:
    """Run one call here and return its report (a plain tuple) and its outputs (see the module
    docstring)."""
    ports = output_ports(component)
    names, size = parse_layout(layout)
    start = time.monotonic()
    with recording() as usage:
        try:
            value = target(**arguments(names, size, args))
            if inspect.iscoroutine(value) or inspect.isasyncgen(value):
                value = run_coroutine(adrain(value, None))
            elif inspect.isgenerator(value):  # a generator component: its chunks, listed
                value = list(value)
        except BaseException as exc:  # SystemExit too: it must come back as the call's error
            end = time.monotonic()
            failed = (start, end, _sendable(exc), traceback.format_exc(), usage or None,
                      worker, (), ())
            return (failed, *([None] * ((size or 1) * len(ports))))
    end = time.monotonic()
    values: list[Any] = []
    misfits: list[tuple[int, Exception]] = []
    for index, outputs in enumerate(split_returned(component, value, size)):
        if isinstance(outputs, Exception):
            misfits.append((index, outputs))
            values += [None] * len(ports)
        else:
            values += [outputs[port] for port in ports]
    report = (start, end, None, "", usage or None, worker, tuple(shape(v) for v in values),
              tuple(misfits))
    return (report, *values)


def _sendable(exc: BaseException) -> BaseException:
    """``exc`` if it survives pickling, else a RuntimeError that says what it was."""
    import cloudpickle

    try:
        cloudpickle.loads(cloudpickle.dumps(exc))
    except Exception:
        return RuntimeError(f"{type(exc).__name__}: {exc}")
    return exc


def task_body(component: Component) -> Callable[..., tuple[Any, ...]]:
    """The function a stateless component's Ray task runs (one per component, named after it
    so that Ray's dashboard and logs say which component a task is)."""
    target = component.target

    def body(layout: str, *args: Any) -> tuple[Any, ...]:
        return run_call(component, target, layout, args, worker=f"ray-worker-{os.getpid()}")

    body.__name__ = body.__qualname__ = component.name
    return body


class Host:
    """A Ray actor's body: one live object of a class component (one engine slot).

    The object is built on the first call, not when the actor starts, so a constructor that
    raises fails that call (retried like any other) instead of killing the actor. An async
    component's calls share one event loop, kept for the actor's life.
    """

    def __init__(self, instance: Instance) -> None:
        self._instance = instance
        self._object: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._worker = f"ray-actor-{os.getpid()}"

    def call(self, layout: str, *args: Any) -> tuple[Any, ...]:
        """Serve one call (or one batch) with the live object."""
        return run_call(self._instance.component, self._serve, layout, args,
                        worker=self._worker, run_coroutine=self._run)

    def close(self) -> None:
        """Close the object (its ``close()``, if it has one), then end the actor."""
        close = getattr(self._object, "close", None)
        if callable(close):
            try:
                close()
            except Exception:  # a user's close() failing must not keep the actor alive
                traceback.print_exc()
        import ray

        ray.actor.exit_actor()  # type: ignore[no-untyped-call]  # Ray's own, untyped

    def _serve(self, **kwargs: Any) -> Any:
        if self._object is None:
            self._object = self._instance.build()
        return self._object(**kwargs)

    def _run(self, coroutine: Coroutine[Any, Any, Any]) -> Any:
        if self._loop is None:
            self._loop = asyncio.new_event_loop()
        return self._loop.run_until_complete(coroutine)


def elements(value: Any, count: int) -> Any:
    """A list's ``count`` elements, each returned as its own object (for ``legato.map``)."""
    items = list(value)
    if len(items) != count:
        raise ValueError(f"expected a list of {count} elements, got {len(items)}")
    return items[0] if count == 1 else tuple(items)


def gather(*values: Any) -> list[Any]:
    """One list of the values (a map's results), made where they are."""
    return list(values)


__all__ = ["Host", "Report", "arguments", "elements", "gather", "layout", "output_ports",
           "parse_layout", "run_call", "shape", "task_body"]
