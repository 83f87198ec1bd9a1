"""Item handles: what ``run.submit`` returns, a future usable from threads and from asyncio.

A handle is finished once, on the engine's thread, with a result, an error, or a
:class:`Dropped` marker. Waiting costs nothing until someone waits: the event a thread blocks on
is made on the first ``result()`` call, and asyncio awaits through a done-callback that hops
onto the awaiting loop with ``call_soon_threadsafe``.
"""

from __future__ import annotations

import contextlib
import threading
import weakref
from collections import deque
from collections.abc import AsyncIterator, Callable, Generator, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from legato.engine.run import Run


@dataclass(frozen=True, slots=True)
class Dropped:
    """Stands in for the result of an item that ended by policy, not failure.

    ``reason``: ``"replaced"`` (a newer item's call took its place, ``queue="latest"``),
    ``"queue_full"`` (``Fifo(n)``), ``"max_age"`` (its data was too old when a call would
    start). ``node``: where it was dropped. Counted per component in ``run.stats()``.
    """

    index: int
    node: str
    reason: str

    def __bool__(self) -> bool:
        return False


@dataclass(frozen=True, slots=True)
class NodeDone:
    """An update: one node of the item finished (``outputs`` by port: values in this process,
    None when they live elsewhere, on Ray)."""

    node: str
    start: float
    end: float
    outputs: Any = None


@dataclass(frozen=True, slots=True)
class Chunk:
    """An update: a generator component of the item yielded ``value`` (its ``index``-th)."""

    node: str
    index: int
    value: Any


_END = object()


class Updates:
    """What happens to one item while it runs, in order: :class:`NodeDone` and :class:`Chunk`
    records, ending when the item does (then read its result from the handle). Iterate it from
    a thread (``for update in updates``) or from asyncio (``async for``). Fed on the engine's
    thread (chunks: on the executing one); never blocks the engine."""

    def __init__(self) -> None:
        self._items: deque[Any] = deque()
        self._lock = threading.Lock()
        self._wake: Callable[[], None] | None = None
        self._counts: dict[str, int] = {}

    def push(self, update: Any) -> None:
        with self._lock:
            self._items.append(update)
            wake = self._wake
        if wake is not None:
            wake()

    def chunk(self, node: str, value: Any) -> None:
        with self._lock:
            index = self._counts.get(node, 0)
            self._counts[node] = index + 1
        self.push(Chunk(node, index, value))

    def close(self) -> None:
        self.push(_END)

    def _take(self) -> list[Any]:
        with self._lock:
            taken = list(self._items)
            self._items.clear()
            return taken

    def __iter__(self) -> Iterator[Any]:
        event = threading.Event()
        self._wake = event.set
        while True:
            taken = self._take()
            if not taken:
                event.wait()
                event.clear()
                continue
            for update in taken:
                if update is _END:
                    return
                yield update

    async def __aiter__(self) -> AsyncIterator[Any]:
        import asyncio

        loop = asyncio.get_running_loop()
        event = asyncio.Event()
        def wake() -> None:
            loop.call_soon_threadsafe(event.set)

        self._wake = wake
        while True:
            taken = self._take()
            if not taken:
                await event.wait()
                event.clear()
                continue
            for update in taken:
                if update is _END:
                    return
                yield update


class ItemHandle:
    """One submitted item: ``result(timeout)`` from any thread, ``await handle`` from asyncio,
    ``cancel()`` to end it (it fails with ``RunCancelled``; its waiting calls are withdrawn)."""

    __slots__ = ("_callbacks", "_error", "_event", "_finished", "_result", "index", "inputs",
                 "run", "updates")

    def __init__(self, run: Run, index: int, inputs: Any = None,
                 updates: Updates | None = None) -> None:
        self.run = run
        self.index = index
        self.inputs = inputs
        self.updates = updates  # with submit(..., updates=True): what happens as it runs
        self._finished = False
        self._result: Any = None
        self._error: BaseException | None = None
        self._event: threading.Event | None = None
        self._callbacks: list[Callable[[ItemHandle], None]] | None = None

    # -- reading ----------------------------------------------------------------------------

    def done(self) -> bool:
        """True once the item has a result, an error or a drop."""
        return self._finished

    def result(self, timeout: float | None = None) -> Any:
        """The item's result (or its :class:`Dropped` marker); raises its error. Blocks until
        it is finished, at most ``timeout`` seconds (then ``TimeoutError``)."""
        if not self._finished:
            event = self._event
            if event is None:
                event = self._event = threading.Event()
            if not self._finished and not event.wait(timeout):
                raise TimeoutError(f"item {self.index} of run {self.run.id} is not finished "
                                   f"after {timeout}s")
        if self._error is not None:
            raise self._error
        return self._result

    def exception(self) -> BaseException | None:
        """The item's error once finished (None for a result or a drop)."""
        return self._error

    @property
    def dropped(self) -> bool:
        return self._finished and isinstance(self._result, Dropped)

    def add_done_callback(self, callback: Callable[[ItemHandle], None]) -> None:
        """Call ``callback(handle)`` when the item finishes (at once if it has), on the
        engine's thread: it must return quickly."""
        with _CALLBACKS:
            if not self._finished:
                if self._callbacks is None:
                    self._callbacks = []
                self._callbacks.append(callback)
                return
        callback(self)

    def finished(self) -> Any:
        """An asyncio future of the running loop, resolved (to None) when the item finishes;
        read the outcome from the handle then. The loop is woken once for every handle that
        finished meanwhile."""
        import asyncio

        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[None] = loop.create_future()
        if self._finished:
            waiter.set_result(None)
            return waiter
        wakes = _wakes_of(loop)
        self.add_done_callback(lambda _: wakes.add(waiter))
        return waiter

    def __await__(self) -> Generator[Any, None, Any]:
        if not self._finished:
            import asyncio

            try:
                yield from self.finished().__await__()
            except asyncio.CancelledError:
                self.cancel()
                raise
        return self.result()

    # -- ending ----------------------------------------------------------------------------

    def cancel(self) -> bool:
        """End this item (``RunCancelled``); other items go on. False if it had finished."""
        if self._finished:
            return False
        self.run._cancel_item(self.index)
        return True

    def _finish(self, result: Any, error: BaseException | None) -> None:
        """Called once, on the engine's thread."""
        if self._finished:
            return
        self._result = result
        self._error = error
        with _CALLBACKS:
            self._finished = True
            callbacks, self._callbacks = self._callbacks, None
        event = self._event
        if event is not None:
            event.set()
        if callbacks:
            for callback in callbacks:
                try:
                    callback(self)
                except Exception:  # a callback's bug never stops the engine
                    import logging

                    logging.getLogger("legato").exception(
                        "a done-callback of item %s raised", self.index)

    def __repr__(self) -> str:
        state = "pending"
        if self._finished:
            state = "failed" if self._error is not None else (
                "dropped" if isinstance(self._result, Dropped) else "done")
        return f"<ItemHandle {self.run.id}#{self.index} {state}>"


_CALLBACKS = threading.Lock()  # registering a callback vs finishing: one or the other first


class _Wakes:
    """The awaiting of one asyncio loop: handles that finish on the engine's thread queue their
    waiters here, and the loop is woken once for all that finished meanwhile (one
    ``call_soon_threadsafe``, a system call, per batch of results rather than per result)."""

    def __init__(self, loop: Any) -> None:
        self.loop = loop
        self.ready: list[Any] = []
        self.lock = threading.Lock()
        self.scheduled = False

    def add(self, waiter: Any) -> None:
        with self.lock:
            self.ready.append(waiter)
            if self.scheduled:
                return
            self.scheduled = True
        with contextlib.suppress(RuntimeError):  # a closed loop: nobody awaits any more
            self.loop.call_soon_threadsafe(self.drain)

    def drain(self) -> None:
        with self.lock:
            ready, self.ready = self.ready, []
            self.scheduled = False
        for waiter in ready:
            if not waiter.done():
                waiter.set_result(None)


_LOOPS: weakref.WeakKeyDictionary[Any, _Wakes] = weakref.WeakKeyDictionary()


def _wakes_of(loop: Any) -> _Wakes:
    wakes = _LOOPS.get(loop)
    if wakes is None:
        with _CALLBACKS:
            wakes = _LOOPS.setdefault(loop, _Wakes(loop))
    return wakes
