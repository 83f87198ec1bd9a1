"""The local backend: calls execute on this machine, each by its component's executor.

- ``inline``: at once, on the engine's own thread (for cheap functions; no timeout possible).
- ``thread``: on a daemon worker thread.
- ``async``: as a task on one shared event loop.
- ``process``: in a warm worker process (spawned once, reused; killed on timeout or cancel).

A class component's objects live in an instance pool of ``instances`` slots per distinct
:class:`~legato.component.Instance` (same class and constructor arguments). A slot builds its
object on first use, where it will serve (its thread, the event loop, or its worker process),
and keeps it for every later call, across runs, until the backend is closed. A call waits for a
free slot. A slot whose call was abandoned (timeout, cancel) is replaced by a fresh one.
"""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import os
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

from legato.backends.workers import EventLoop, Threads, WorkerProcess
from legato.component import Component, Instance
from legato.engine.backend import Call, Done, Outcome


def machine_capacity() -> dict[str, float]:
    """CPUs this process may use and the machine's memory in bytes."""
    try:
        cpus = float(len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        cpus = float(os.cpu_count() or 1)
    try:
        memory = float(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):  # pragma: no cover
        memory = 0.0
    return {"cpus": cpus, "memory": memory, "gpus": 0.0}


class _Slot:
    """One live instance (or one function worker process)."""

    __slots__ = ("obj", "worker")

    def __init__(self) -> None:
        self.obj: Any = None
        self.worker: WorkerProcess | None = None


class _Pool:
    """``size`` slots and the calls waiting for one."""

    def __init__(self, size: int, *, owner: Component) -> None:
        self.owner = owner  # held, so the id() in the pool's key is not reused while it lives
        self.idle: list[_Slot] = [_Slot() for _ in range(size)]
        self.waiting: deque[tuple[Call, Callable[[_Slot], None]]] = deque()
        self.busy: dict[int, _Slot] = {}


class LocalBackend:
    """Executes calls in this process (threads, event loop) and in warm worker processes."""

    def __init__(
        self,
        *,
        resources: Mapping[str, float] | None = None,
        cpus: float | None = None,
        memory: float | None = None,
        max_threads: int = 64,
    ) -> None:
        self._capacity = machine_capacity()
        if cpus is not None:
            self._capacity["cpus"] = float(cpus)
        if memory is not None:
            self._capacity["memory"] = float(memory)
        self._capacity.update({k: float(v) for k, v in (resources or {}).items()})
        self._threads = Threads(limit=max_threads)
        self._loop = EventLoop()
        self._lock = threading.Lock()
        self._pools: dict[str, _Pool] = {}
        self._running: dict[int, tuple[_Pool, _Slot]] = {}
        self._abandoned: set[int] = set()
        self._futures: dict[int, Any] = {}  # async calls' futures, instance slots' included
        # by component object, not id(): an id is reused once its component is collected
        self._pickled: weakref.WeakKeyDictionary[Component, tuple[str, bytes]] = (
            weakref.WeakKeyDictionary())
        self._closed = False

    # -- the Backend protocol -----------------------------------------------------------------

    def capacity(self) -> Mapping[str, float]:
        return dict(self._capacity)

    def submit(self, call: Call, done: Done) -> None:
        if self._closed:
            raise RuntimeError("the local backend is closed")
        component = call.component
        executor = component.options.executor
        if isinstance(call.target, Instance) or executor == "process":
            pool = self._pool(call)
            self._acquire(pool, call, lambda slot: self._start_in_slot(call, done, pool, slot))
        elif executor == "inline":
            done(call, _execute(component.target, call))
        elif executor == "async":
            self._start_async(call, done, component.target)
        else:
            self._threads.submit(lambda: done(call, _execute(component.target, call)))

    def cancel(self, call: Call) -> None:
        with self._lock:
            for pool in self._pools.values():
                for index, (waiting, _) in enumerate(pool.waiting):
                    if waiting is call:
                        del pool.waiting[index]
                        return
            running = self._running.pop(call.id, None)
            future = self._futures.pop(call.id, None)
            self._abandoned.add(call.id)
        if future is not None:
            future.cancel()
        if isinstance(running, tuple):
            pool, slot = running
            if slot.worker is not None:
                slot.worker.kill()
            with self._lock:  # the slot stays with the abandoned call; serve others from a new one
                pool.busy.pop(call.id, None)
                pool.idle.append(_Slot())
            self._drain(pool)

    def close(self) -> None:
        self._closed = True
        with self._lock:
            pools, self._pools = list(self._pools.values()), {}
        for pool in pools:
            for slot in [*pool.idle, *pool.busy.values()]:
                if slot.worker is not None:
                    slot.worker.kill()
                _close_object(slot.obj)
        self._threads.close()
        self._loop.close()

    # -- pools --------------------------------------------------------------------------------

    def _pool(self, call: Call) -> _Pool:
        target = call.target
        if isinstance(target, Instance):
            # the same component object (a class redefined under the same name is another)
            key = f"{target.key()}@{id(target.component)}"
            size = target.component.options.instances
        else:
            key, size = f"fn:{target.qualname}", max(1, int(self._capacity["cpus"]))
        with self._lock:
            pool = self._pools.get(key)
            if pool is None:
                pool = self._pools[key] = _Pool(size, owner=call.component)
            return pool

    def _acquire(self, pool: _Pool, call: Call, start: Callable[[_Slot], None]) -> None:
        with self._lock:
            if not pool.idle:
                pool.waiting.append((call, start))
                return
            slot = pool.idle.pop()
            pool.busy[call.id] = slot
            self._running[call.id] = (pool, slot)
        start(slot)

    def _release(self, pool: _Pool, call: Call, slot: _Slot) -> None:
        with self._lock:
            self._running.pop(call.id, None)
            if pool.busy.pop(call.id, None) is None:
                return  # abandoned: a replacement slot was added already
            pool.idle.append(slot)
        self._drain(pool)

    def _drain(self, pool: _Pool) -> None:
        while True:
            with self._lock:
                if not pool.idle or not pool.waiting:
                    return
                call, start = pool.waiting.popleft()
                slot = pool.idle.pop()
                pool.busy[call.id] = slot
                self._running[call.id] = (pool, slot)
            start(slot)

    # -- starting calls -----------------------------------------------------------------------

    def _start_in_slot(self, call: Call, done: Done, pool: _Pool, slot: _Slot) -> None:
        component = call.component
        executor = component.options.executor

        def finish(outcome: Outcome) -> None:
            self._release(pool, call, slot)
            done(call, outcome)

        if executor == "process":
            self._threads.submit(lambda: finish(self._execute_in_process(call, slot)))
            return
        assert isinstance(call.target, Instance)
        instance = call.target

        def target(**kwargs: Any) -> Any:
            if slot.obj is None:
                slot.obj = instance.build()
            return slot.obj(**kwargs)

        if executor == "inline":
            finish(_execute(target, call))
        elif executor == "async":
            self._start_async(call, lambda _c, outcome: finish(outcome), target)
        else:
            self._threads.submit(lambda: finish(_execute(target, call)))

    def _execute_in_process(self, call: Call, slot: _Slot) -> Outcome:
        start = time.monotonic()
        try:
            if slot.worker is None or not slot.worker.alive:
                init = _dumps(call.target) if isinstance(call.target, Instance) else None
                slot.worker = WorkerProcess(init)
                with self._lock:
                    abandoned = call.id in self._abandoned
                if abandoned:  # cancelled while the worker started: cancel() may not have seen it
                    slot.worker.kill()
                    raise RuntimeError("call cancelled while its worker process started")
            function = None if isinstance(call.target, Instance) else self._function(call)
            value, start, end = slot.worker.call(function, _arguments(call))
        except BaseException as exc:
            return Outcome(error=exc, start=start, end=time.monotonic(), executor="process")
        return Outcome(value=value, start=start, end=end, executor="process")

    def _function(self, call: Call) -> tuple[str, bytes]:
        component = call.component
        pickled = self._pickled.get(component)
        if pickled is None:
            blob = _dumps(component.target)
            pickled = self._pickled[component] = (hashlib.sha1(blob).hexdigest(), blob)
        return pickled

    def _start_async(self, call: Call, done: Done, target: Callable[..., Any]) -> None:
        import asyncio

        async def run() -> Outcome:
            start = time.monotonic()
            try:
                value = target(**_arguments(call))
                if asyncio.iscoroutine(value):
                    value = await value
            except asyncio.CancelledError:
                raise
            except BaseException as exc:  # SystemExit too: it must come back as the outcome
                return Outcome(error=exc, start=start, end=time.monotonic(), executor="async")
            return Outcome(value=value, start=start, end=time.monotonic(), executor="async")

        future = self._loop.submit(run())
        with self._lock:
            self._futures[call.id] = future
            abandoned = call.id in self._abandoned  # cancelled while it was being started
        if abandoned:
            future.cancel()

        def report(f: Any) -> None:
            with self._lock:
                if self._futures.get(call.id) is future:
                    del self._futures[call.id]
            if not f.cancelled():
                done(call, f.result())

        future.add_done_callback(report)


def _arguments(call: Call) -> dict[str, Any]:
    """A batched call's list of per-item kwargs becomes one list per port."""
    if call.batch is None:
        return call.kwargs
    ports = [port.name for port in call.component.call_inputs]
    return {port: [kwargs[port] for kwargs in call.batch] for port in ports}


def _execute(target: Callable[..., Any], call: Call) -> Outcome:
    start = time.monotonic()
    executor = call.component.options.executor
    try:
        value = target(**_arguments(call))
        if inspect.iscoroutine(value):
            import asyncio

            value = asyncio.run(value)
    except Exception as exc:
        return Outcome(error=exc, start=start, end=time.monotonic(), executor=executor)
    except BaseException as exc:  # SystemExit & co.: still this call's outcome, or the run hangs
        if isinstance(exc, KeyboardInterrupt) and executor == "inline":
            raise  # Ctrl-C on the engine's own thread stops the run
        return Outcome(error=exc, start=start, end=time.monotonic(), executor=executor)
    return Outcome(value=value, start=start, end=time.monotonic(), executor=executor)


def _dumps(obj: Any) -> bytes:
    import cloudpickle

    try:
        return cloudpickle.dumps(obj)
    except Exception as exc:
        raise TypeError(f"cannot send {type(obj).__name__} to a worker process: {exc}") from exc


def _close_object(obj: Any) -> None:
    close = getattr(obj, "close", None)
    if callable(close):
        with contextlib.suppress(Exception):  # a user's close() failing must not stop shutdown
            close()


__all__ = ["Component", "LocalBackend", "machine_capacity"]
