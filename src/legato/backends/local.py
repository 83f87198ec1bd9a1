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
import inspect
import os
import threading
import time
import weakref
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from legato.backends.workers import WARM, EventLoop, Threads, WorkerProcess
from legato.component import Component, Instance
from legato.engine.backend import Call, Done, Outcome, adrain, drain
from legato.engine.instances import instance_key
from legato.engine.resources import Gpu
from legato.errors import RunCancelled, RunError
from legato.usage import recording


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


def detect_gpus(environ: Mapping[str, str] | None = None) -> tuple[Gpu, ...]:
    """The NVIDIA GPUs this process may use, with their memory, from ``nvidia-smi``.

    ``CUDA_VISIBLE_DEVICES`` narrows the list (``""`` or ``-1``: none). No ``nvidia-smi`` on
    the PATH, or one that fails: no GPUs.
    """
    import shutil  # here, not at import: 7 ms that only this look-up needs
    import subprocess

    env = os.environ if environ is None else environ
    visible = env.get("CUDA_VISIBLE_DEVICES")
    if visible is not None and visible.strip() in ("", "-1"):
        return ()
    binary = shutil.which("nvidia-smi", path=env.get("PATH"))
    if binary is None:
        return ()
    try:
        out = subprocess.run(
            [binary, "--query-gpu=index,memory.total", "--format=csv,noheader,nounits"],
            capture_output=True, text=True, timeout=10, check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return ()
    gpus = []
    for line in out.strip().splitlines():
        try:
            index, mebibytes = (part.strip() for part in line.split(","))
            gpus.append(Gpu(int(index), int(float(mebibytes)) * 2**20))
        except ValueError:
            continue
    if visible is not None:
        wanted = [v.strip() for v in visible.split(",")]
        gpus = [gpu for gpu in gpus if str(gpu.index) in wanted]
    return tuple(gpus)


class _Slot:
    """One live instance of a class component: its object, or the process that holds it."""

    __slots__ = ("devices", "lock", "obj", "worker")

    def __init__(self, devices: tuple[int, ...]) -> None:
        self.obj: Any = None
        self.worker: WorkerProcess | None = None
        self.devices = devices
        self.lock = threading.Lock()  # one call at a time; a call queued ahead waits here


class LocalBackend:
    """Executes calls in this process (threads, event loop) and in warm worker processes.

    ``resources`` declares custom capacity; ``cpus`` and ``memory`` override what is detected;
    ``gpus`` overrides GPU detection (``nvidia-smi``).
    """

    def __init__(
        self,
        *,
        resources: Mapping[str, float] | None = None,
        cpus: float | None = None,
        memory: float | None = None,
        gpus: Sequence[Gpu] | None = None,
        max_threads: int = 64,
    ) -> None:
        self._capacity = machine_capacity()
        if cpus is not None:
            self._capacity["cpus"] = float(cpus)
        if memory is not None:
            self._capacity["memory"] = float(memory)
        self._gpus = detect_gpus() if gpus is None else tuple(gpus)
        self._capacity["gpus"] = float(len(self._gpus))
        self._capacity.update({k: float(v) for k, v in (resources or {}).items()})
        self._threads = Threads(limit=max_threads)
        self._loop = EventLoop()
        self._lock = threading.Lock()
        self._slots: dict[tuple[str, int], _Slot] = {}
        self._owners: dict[str, Component] = {}  # held, so ids in slot keys are not reused
        self._idle_workers: dict[tuple[int, ...], list[WorkerProcess]] = {}
        self._running: dict[int, _Slot | WorkerProcess] = {}
        self._abandoned: set[int] = set()
        self._futures: dict[int, Any] = {}  # async calls' futures, instance slots' included
        # by component object, not id(): an id is reused once its component is collected
        self._pickled: weakref.WeakKeyDictionary[Component, tuple[str, bytes]] = (
            weakref.WeakKeyDictionary())
        self._closed = False

    # -- the Backend protocol -----------------------------------------------------------------

    def capacity(self) -> Mapping[str, float]:
        return dict(self._capacity)

    def gpus(self) -> Sequence[Gpu]:
        return self._gpus

    def submit(self, call: Call, done: Done) -> None:
        if self._closed:
            raise RunError("the local backend is closed; create a new engine to run again")
        component = call.component
        executor = component.options.executor
        if isinstance(call.target, Instance):
            self._start_in_slot(call, done, self._slot(call))
        elif executor == "process":
            self._threads.submit(lambda: done(call, self._execute_in_process(call, None)))
        elif executor == "inline":
            done(call, _execute(component.target, call))
        elif executor == "async":
            self._start_async(call, done, component.target)
        else:
            self._threads.submit(lambda: done(call, _execute(component.target, call)))

    def cancel(self, call: Call) -> bool:
        """Stop ``call``: a process worker is killed, an async task cancelled (True). A thread
        cannot be stopped: it runs on and its late result is dropped (False)."""
        with self._lock:
            running = self._running.pop(call.id, None)
            future = self._futures.pop(call.id, None)
            self._abandoned.add(call.id)
        if future is not None:
            future.cancel()
            return True
        if isinstance(running, _Slot):
            worker, running.worker = running.worker, None
            if worker is not None:
                worker.kill()
                return True
            return False
        if isinstance(running, WorkerProcess):
            running.kill()
            return True
        return call.component.options.executor == "process"

    def build(self, target: Instance, slot: int, devices: tuple[int, ...] = ()) -> None:
        """Build the object of ``target``'s ``slot`` now, where its calls will run (a worker
        process for ``executor="process"``), so its first call finds it warm. Blocks; raises
        the constructor's error (:class:`~legato.errors.BuildError`)."""
        call = Call(0, target, {}, slot=slot, devices=devices)
        live = self._slot(call)
        with live.lock:
            if target.component.options.executor == "process":
                self._worker(call, live).call(None, {WARM: True})
            elif live.obj is None:
                live.obj = target.build()

    def evict(self, target: Instance, slot: int) -> None:
        with self._lock:
            live = self._slots.pop((instance_key(target), slot), None)
        if live is not None:
            if live.worker is not None:
                live.worker.kill()
            _close_object(live.obj)

    def close(self) -> None:
        self._closed = True
        with self._lock:
            slots, self._slots = list(self._slots.values()), {}
            workers = [w for group in self._idle_workers.values() for w in group]
            workers += [r for r in self._running.values() if isinstance(r, WorkerProcess)]
            self._idle_workers = {}
        for slot in slots:
            if slot.worker is not None:
                slot.worker.kill()
            _close_object(slot.obj)
        for worker in workers:
            worker.kill()
        self._threads.close()
        self._loop.close()

    # -- slots and workers ----------------------------------------------------------------------

    def _slot(self, call: Call) -> _Slot:
        target = call.target
        assert isinstance(target, Instance)
        key = instance_key(target)
        with self._lock:
            slot = self._slots.get((key, call.slot or 0))
            if slot is None:
                slot = self._slots[(key, call.slot or 0)] = _Slot(call.devices)
                self._owners[key] = target.component
            return slot

    def _finished(self, call: Call) -> bool:
        """Forget a finished call; True if it had been abandoned (its result is unwanted)."""
        with self._lock:
            self._running.pop(call.id, None)
            if call.id in self._abandoned:
                self._abandoned.discard(call.id)
                return True
            return False

    # -- starting calls -----------------------------------------------------------------------

    def _start_in_slot(self, call: Call, done: Done, slot: _Slot) -> None:
        component = call.component
        executor = component.options.executor

        def finish(outcome: Outcome) -> None:
            self._finished(call)
            done(call, outcome)

        with self._lock:
            self._running[call.id] = slot
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
            def in_turn() -> None:
                with slot.lock:  # behind the call running on this slot, if one was queued ahead
                    outcome = _execute(target, call)
                finish(outcome)

            self._threads.submit(in_turn)

    def _worker(self, call: Call, slot: _Slot | None) -> WorkerProcess:
        """The process to run ``call`` in: its slot's, or an idle function worker (or a new one)."""
        if slot is not None:
            if slot.worker is None or not slot.worker.alive:
                slot.worker = WorkerProcess(_dumps(call.target), devices=slot.devices)
            return slot.worker
        with self._lock:
            idle = self._idle_workers.get(call.devices, [])
            worker = idle.pop() if idle else None
        if worker is None or not worker.alive:
            worker = WorkerProcess(None, devices=call.devices)
        with self._lock:
            self._running[call.id] = worker
        return worker

    def _execute_in_process(self, call: Call, slot: _Slot | None) -> Outcome:
        start = time.monotonic()
        worker = None
        try:
            worker = self._worker(call, slot)
            with self._lock:
                abandoned = call.id in self._abandoned
            if abandoned:  # cancelled while the worker started: cancel() may not have seen it
                worker.kill()
                raise RunCancelled("call cancelled while its worker process started")
            function = None if slot is not None else self._function(call)
            value, start, end, usage = worker.call(function, _arguments(call))
        except BaseException as exc:
            return Outcome(error=exc, start=start, end=time.monotonic(), executor="process",
                           worker="" if worker is None else f"process-{worker.process.pid}")
        finally:
            if slot is None and worker is not None and not self._finished(call) and worker.alive:
                with self._lock:
                    self._idle_workers.setdefault(call.devices, []).append(worker)
        return Outcome(value=value, start=start, end=end, executor="process", usage=usage,
                       worker=f"process-{worker.process.pid}")

    def _function(self, call: Call) -> tuple[str, bytes]:
        component = call.component
        pickled = self._pickled.get(component)
        if pickled is None:
            import hashlib

            blob = _dumps(component.target)
            pickled = self._pickled[component] = (hashlib.sha1(blob).hexdigest(), blob)
        return pickled

    def _start_async(self, call: Call, done: Done, target: Callable[..., Any]) -> None:
        import asyncio

        async def run() -> Outcome:
            start = time.monotonic()
            with recording() as usage:
                try:
                    value = await adrain(target(**_arguments(call)), call.on_chunk)
                except asyncio.CancelledError:
                    raise
                except BaseException as exc:  # SystemExit too: it must come back as the outcome
                    return Outcome(error=exc, start=start, end=time.monotonic(), executor="async",
                                   worker="legato-async")
            return Outcome(value=value, start=start, end=time.monotonic(), executor="async",
                           usage=usage or None, worker="legato-async")

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
    options = call.component.options
    if options.rate_limit is not None and options.rate_limit.tokens is not None:
        with recording() as usage:  # the call reports what it used: the bucket is charged it
            outcome = _execute_plain(target, call, options.executor)
        outcome.usage = usage or None
        return outcome
    return _execute_plain(target, call, options.executor)


def _execute_plain(target: Callable[..., Any], call: Call, executor: str) -> Outcome:
    worker = threading.current_thread().name if executor != "inline" else "engine"
    start = time.monotonic()
    try:
        value = target(**_arguments(call))
        if inspect.iscoroutine(value) or inspect.isasyncgen(value):
            import asyncio

            value = asyncio.run(adrain(value, call.on_chunk))
        else:
            value = drain(value, call.on_chunk)
    except Exception as exc:
        return Outcome(error=exc, start=start, end=time.monotonic(), executor=executor,
                       worker=worker)
    except BaseException as exc:  # SystemExit & co.: this call's outcome, or the run hangs
        if isinstance(exc, KeyboardInterrupt) and executor == "inline":
            raise  # Ctrl-C on the engine's own thread stops the run
        return Outcome(error=exc, start=start, end=time.monotonic(), executor=executor,
                       worker=worker)
    return Outcome(value=value, start=start, end=time.monotonic(), executor=executor,
                   worker=worker)


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
