"""Feeding a run from a source that may block: a thread pulls items, the scheduler never waits.

``map`` over a list reads it on the scheduler's own thread. Any other iterable (a generator, a
file, a socket) may block between items, so a :class:`Feeder` pulls it on its own thread and
posts each item to the run's queue as a :class:`Fed` message. At most ``window`` items are ever
out of the source and not yet handed back by the run: the feeder takes room in a semaphore
before it pulls, and the run gives room back as it yields results.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any


class Fed:
    """A message from the feeder: one item, or the end of the source (with its error)."""

    __slots__ = ("end", "error", "index", "raw")

    def __init__(self, index: int = -1, raw: Any = None, *, end: bool = False,
                 error: BaseException | None = None) -> None:
        self.index = index
        self.raw = raw
        self.end = end
        self.error = error


class Feeder:
    """Pulls items from a source that may block (a socket, a paced generator, a slow file) on
    its own thread, so the scheduler never waits on it; at most ``window`` items are ever out
    of the source and not yet handed back by the run."""

    def __init__(self, source: Iterator[tuple[int, Any]], window: int,
                 put: Callable[[Any], None]) -> None:
        self.source = source
        self.room = threading.Semaphore(window)
        self.put = put
        self.stopped = False

    def start(self) -> None:
        threading.Thread(target=self._pull, name="legato-feeder", daemon=True).start()

    def _pull(self) -> None:
        while True:
            self.room.acquire()  # room first: nothing is taken from the source too early
            if self.stopped:
                return
            try:
                index, raw = next(self.source)
            except StopIteration:
                self.put(Fed(end=True))
                return
            except BaseException as exc:  # the run raises it, where the user looks
                self.put(Fed(end=True, error=exc))
                return
            self.put(Fed(index, raw))

    def stop(self) -> None:
        self.stopped = True
        self.room.release()
