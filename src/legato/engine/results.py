"""The consumer ``map`` is built on: it feeds a run from its source and yields its results.

A list (any sequence) is fed from the consuming thread itself, a chunk at a time, never more
than ``window`` items out of the source and not yet handed back; any other iterable (a
generator, a file, a socket) is pulled by a :class:`~legato.engine.feeder.Feeder` thread, so a
source that blocks never holds up the results. Results come in input order (``ordered``: the
finished ones wait for those before them, and count against the window) or as they finish.
A failed item raises, is skipped or becomes a :class:`~legato.engine.frames.Failure`
(``on_error``); a dropped one is skipped or kept as its marker (``on_drop``). Closing the
iterator, Ctrl-C or an error stops the run (its open items cancelled) before it returns.
"""

from __future__ import annotations

import queue
from collections.abc import Generator, Mapping
from typing import TYPE_CHECKING, Any

from legato.engine.feeder import Feeder
from legato.engine.frames import Failure
from legato.engine.handles import Dropped, ItemHandle
from legato.errors import RunCancelled

if TYPE_CHECKING:
    from legato.engine.run import Run

_CHUNK = 256  # items handed to the loop in one message


def consume(run: Run, out: queue.SimpleQueue[Any]) -> Generator[Any, None, None]:
    """Feed ``run`` from its source and yield its results (see the module docstring); ``out``
    is where the run puts each item's handle as it finishes, and its end."""
    from legato.engine.run import END

    source = run._source
    feeder = None
    if source is not None and run._feed:
        feeder = Feeder(source, run.window, run)
        feeder.start()
    exhausted = source is None or feeder is not None  # else: this thread feeds the run
    handed = 0
    buffer: dict[int, ItemHandle] = {}
    next_out = 0
    status = "failed"
    try:
        while True:
            if not exhausted:
                assert source is not None
                exhausted = _feed(run, source, run.window - (run._next - handed))
            handle = out.get()
            if handle is END:
                if run._fatal is not None:
                    raise run._fatal
                if run._cancelled:
                    raise RunCancelled(f"run {run.id} of '{run.graph.name}' was cancelled")
                status = "ok"
                return
            ready = [handle]
            if run.ordered:
                buffer[handle.index] = handle
                ready = []
                while next_out in buffer:
                    ready.append(buffer.pop(next_out))
                    next_out += 1
            for finished in ready:
                handed += 1
                if feeder is not None:
                    feeder.room.release()
                yield from _emit(run, finished)
    except (GeneratorExit, KeyboardInterrupt, RunCancelled) as exc:
        # Ctrl-C or closing the iterator cancels; an exception may say otherwise (SIGTERM:
        # ``run_status = "interrupted"``); either way the run is resumable
        status = getattr(exc, "run_status", "cancelled")
        raise
    finally:
        if feeder is not None:
            feeder.stop()
        run._stopped(status)


def _feed(run: Run, source: Any, room: int) -> bool:
    """Submit up to ``room`` items from ``source`` (a chunk at a time, pausing while a
    ``Block(n)`` queue is full); True once the source is exhausted (the run is then closed)."""
    chunk: list[Mapping[str, Any]] = []
    exhausted = False
    while room > 0 and len(chunk) < _CHUNK:
        if chunk and not run.has_room():
            break
        try:
            chunk.append(next(source))
        except StopIteration:
            exhausted = True
            break
        room -= 1
    run.submit_many(chunk)
    if exhausted:
        run.close()
    return exhausted


def _emit(run: Run, handle: ItemHandle) -> Generator[Any, None, None]:
    error = handle.exception()
    if error is not None:
        if run.on_error == "raise":
            raise error
        if run.on_error == "collect":
            yield Failure(handle.index, error, handle.inputs)
        return
    result = handle._result
    if isinstance(result, Dropped) and run.on_drop == "skip":
        return
    yield (handle.index, result) if run.indexed else result
