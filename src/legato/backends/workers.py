"""Worker threads, one event loop, and warm worker processes for the local backend.

- :class:`Threads`: daemon threads fed from one queue, started on demand up to a limit. Daemon,
  so a call that hangs forever (and was abandoned after its timeout) never blocks exit.
- :class:`EventLoop`: one asyncio loop on its own daemon thread for ``async`` components.
- :class:`WorkerProcess`: one spawned process (``spawn``, so no forked locks) that serves calls
  sent over a pipe, keeping a class component's object (or unpickled functions) warm. It exits
  by itself when its parent dies, so a killed driver leaves no orphan behind.
"""

from __future__ import annotations

import inspect
import os
import queue
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from concurrent.futures import Future

from legato.errors import RemoteTraceback as RemoteTraceback  # re-exported: raised here
from legato.errors import WorkerDied as WorkerDied

_STOP = object()


WARM = "__legato_warm__"
"""The keyword of a message that asks a worker process only to build its object."""

class Threads:
    """A grow-on-demand pool of daemon threads running zero-argument jobs."""

    def __init__(self, limit: int = 64, name: str = "legato-worker") -> None:
        self._jobs: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._limit = limit
        self._name = name
        self._threads: list[threading.Thread] = []
        self._idle = 0
        self._lock = threading.Lock()

    def submit(self, job: Callable[[], None]) -> None:
        with self._lock:
            if self._idle == 0 and len(self._threads) < self._limit:
                thread = threading.Thread(
                    target=self._work, name=f"{self._name}-{len(self._threads)}", daemon=True
                )
                self._threads.append(thread)
                self._idle += 1
                thread.start()
            self._idle -= 1
        self._jobs.put(job)

    def _work(self) -> None:
        while True:
            job = self._jobs.get()
            if job is _STOP:
                return
            try:
                job()
            finally:
                with self._lock:
                    self._idle += 1

    def close(self) -> None:
        """Ask every idle thread to stop; a thread stuck in a hung call is abandoned."""
        with self._lock:
            threads, self._threads = self._threads, []
            self._idle = 0
        for _ in threads:
            self._jobs.put(_STOP)


class EventLoop:
    """One asyncio event loop on a daemon thread, started on first use."""

    def __init__(self) -> None:
        self._loop: Any = None
        self._lock = threading.Lock()

    def loop(self) -> Any:
        import asyncio

        with self._lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                threading.Thread(target=loop.run_forever, name="legato-async", daemon=True).start()
                self._loop = loop
            return self._loop

    def submit(self, coro: Any) -> Future[Any]:
        import asyncio

        return asyncio.run_coroutine_threadsafe(coro, self.loop())

    def close(self) -> None:
        with self._lock:
            loop, self._loop = self._loop, None
        if loop is not None:
            loop.call_soon_threadsafe(loop.stop)


class WorkerProcess:
    """A warm process serving one call at a time. ``init`` is a pickled object to build once
    (a class component's instance spec), or None to serve pickled functions. ``devices``: the
    GPUs it may see (``CUDA_VISIBLE_DEVICES``, set before anything in it can load CUDA)."""

    def __init__(self, init: bytes | None, *, devices: tuple[int, ...] = ()) -> None:
        import multiprocessing  # not at import: 3 ms that only process components need

        context = multiprocessing.get_context("spawn")
        self._conn, child = context.Pipe()
        visible = ",".join(str(d) for d in devices) if devices else None
        self.process = context.Process(
            target=_serve, args=(child, init, os.getpid(), visible), name="legato-process",
            daemon=True,
        )
        self.process.start()
        child.close()
        self.alive = True

    def call(
        self, function: tuple[str, bytes] | None, kwargs: dict[str, Any]
    ) -> tuple[Any, float, float, dict[str, float] | None]:
        """Run one call in the process; return (value, start, end, usage) or raise its error."""
        import cloudpickle  # both ways: classes of a file loaded by path travel by value

        message = cloudpickle.dumps((function, kwargs))
        try:
            self._conn.send_bytes(message)
            ok, payload, start, end, usage = cloudpickle.loads(self._conn.recv_bytes())
        except (EOFError, OSError, BrokenPipeError) as exc:
            self.alive = False
            code = self.process.exitcode
            raise WorkerDied(f"worker process {self.process.pid} died (exit code {code})") from exc
        if ok:
            return payload, start, end, usage
        error, text = payload
        error.__cause__ = RemoteTraceback(text)
        raise error

    def kill(self) -> None:
        self.alive = False
        if self.process.is_alive():
            self.process.kill()
        self.process.join(timeout=5)
        self._conn.close()

    def close(self) -> None:
        self.alive = False
        try:
            self._conn.close()
        finally:
            self.process.join(timeout=2)
            if self.process.is_alive():
                self.process.kill()
                self.process.join(timeout=5)


def _watch_parent(parent: int) -> None:
    while True:
        time.sleep(0.5)
        if os.getppid() != parent:
            os._exit(0)


def _serve(  # pragma: no cover - child side
    conn: Any, init: bytes | None, parent: int, visible_devices: str | None
) -> None:
    import signal
    import traceback

    if visible_devices is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = visible_devices
    import cloudpickle

    from legato.usage import recording

    # Ctrl-C in a terminal reaches the whole process group; the driver decides what stops.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(target=_watch_parent, args=(parent,), daemon=True).start()
    obj: Any = None
    functions: dict[str, Callable[..., Any]] = {}
    while True:
        try:
            message = conn.recv_bytes()
        except (EOFError, OSError):
            return
        start = time.monotonic()
        try:
            function, kwargs = cloudpickle.loads(message)
            if function is None:
                if obj is None:
                    obj = cloudpickle.loads(init).build()
                if kwargs.get(WARM):  # only build it (Engine.warm)
                    conn.send_bytes(cloudpickle.dumps((True, None, start, time.monotonic(), None)))
                    continue
                target = obj
            else:
                key, blob = function
                target = functions.get(key)
                if target is None:
                    target = functions[key] = cloudpickle.loads(blob)
            with recording() as usage:
                value = target(**kwargs)
                if inspect.iscoroutine(value) or inspect.isasyncgen(value):
                    import asyncio

                    from legato.engine.backend import adrain

                    value = asyncio.run(adrain(value, None))
                elif inspect.isgenerator(value):  # a generator component: its chunks, listed
                    value = list(value)
            reply = (True, value, start, time.monotonic(), usage or None)
            conn.send_bytes(cloudpickle.dumps(reply))
        except BaseException as exc:
            text = traceback.format_exc()
            try:
                failed = cloudpickle.dumps((False, (exc, text), start, time.monotonic(), None))
            except Exception:
                failed = cloudpickle.dumps(
                    (False, (RuntimeError(repr(exc)), text), start, time.monotonic(), None))
            conn.send_bytes(failed)
