"""Feeding a run from a source that may block: a thread pulls items, no one else waits on it.

``map`` over a list is fed by its consumer (the ``results()`` generator). Any other iterable (a
generator, a file, a socket) may block between items, so a :class:`Feeder` pulls it on its own
thread and submits each item to the run. At most ``window`` items are ever out of the source
and not yet handed back: the feeder takes room in a semaphore before it pulls, and the consumer
gives room back as it yields results. While a ``Block(n)`` queue of the run is full the feeder
waits before pulling (backpressure to the source).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from legato.engine.run import Run


class Feeder:
    """Pulls a run's items from ``source`` on its own thread (see the module docstring)."""

    def __init__(self, source: Iterator[Any], window: int, run: Run) -> None:
        self.source = source
        self.room = threading.Semaphore(window)
        self.run = run
        self.stopped = False

    def start(self) -> None:
        threading.Thread(target=self._pull, name="legato-feeder", daemon=True).start()

    def _pull(self) -> None:
        run = self.run
        while True:
            self.room.acquire()  # room first: nothing is taken from the source too early
            run.wait_for_room()
            if self.stopped:
                return
            try:
                raw = next(self.source)
            except StopIteration:
                run.close()
                return
            except BaseException as exc:  # the consumer raises it, where the user looks
                run.fail(exc)
                return
            if self.stopped:
                return
            try:
                run.submit_many([raw])
            except Exception:  # the run was closed under us (cancelled): stop pulling
                return

    def stop(self) -> None:
        self.stopped = True
        self.room.release()
        self.run.release_all()
