"""A stream: an open run fed from an endless source, its results read as they finish.

:class:`Stream` is what ``pipeline.stream(source)`` returns. A *pump* pulls the source and
submits each item to the run, stamped with the time its data was made (``max_age`` counts from
it, at every stage): a timed source's due time (:mod:`legato.streaming.sources`), else the
engine clock's now when the item was pulled. Before it pulls, the pump takes room: at most
``window`` items are in flight (submitted, not finished), and while a ``block`` queue of the
run is full it waits. A source that stalls this way is late, and a :class:`Tick` counts the
ticks it could not emit on time as overruns.

Where the pump runs: on a thread of its own, which waits on the engine's clock for a timed
item's time. Under a clock that books events (``SimulatedClock.call_at``), a timed source is
pumped by the clock's events instead, on the engine's loop: each item is submitted at exactly
its simulated time (or, without room for it, when the next item ends), so a replay under
simulated time is deterministic.

Results are handed to the reader as items finish (not in source order): a dropped item is
left out (``on_drop="skip"``) or read as its :class:`~legato.engine.Dropped` marker
(``"keep"``); a failed item raises (``on_error="raise"``: the stream is closed), is left out
(``"skip"``) or read as a :class:`~legato.engine.Failure` (``"collect"``); ``indexed=True``
reads ``(index, result)`` pairs. Results nobody reads yet wait in memory; the window bounds
only the work in flight.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass
from typing import Any, Literal

from legato.engine import Dropped, Failure, ItemHandle, OnDrop, Run, Updates
from legato.errors import ConfigError, RunCancelled, RunError
from legato.streaming.sources import Interrupt, Schedule, TimedSource

OnStreamError = Literal["raise", "skip", "collect"]


@dataclass(frozen=True, slots=True)
class StreamStats:
    """A snapshot of a stream. ``items_in``: items submitted; ``done``, ``failed``,
    ``dropped``: items ended so; ``drops``: per component, per reason (``replaced``,
    ``queue_full``, ``max_age``, ``missed``, ``interrupted``); ``misses``: per stage, calls past
    its ``deadline``; ``latency``: per stage, recent call latency (p50, p99) in seconds;
    ``overruns``: ticks of a timed source skipped because they could not go out on time;
    ``in_flight``: items submitted and not finished; ``elapsed``: seconds on the engine's clock
    since the stream began; ``rate``: items in per second over that time."""

    items_in: int
    done: int
    failed: int
    dropped: int
    drops: Mapping[str, Mapping[str, int]]
    misses: Mapping[str, int]
    latency: Mapping[str, tuple[float, float]]
    overruns: int
    in_flight: int
    elapsed: float
    rate: float

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON data (latency as ``{stage: [p50, p99]}``)."""
        data = asdict(self)
        data["latency"] = {k: list(v) for k, v in self.latency.items()}
        return data


class Stream:
    """Results of a run fed from ``source``, as they finish (see the module docstring).

    Iterate it (``for result in stream``) or, from asyncio, ``async for``. ``stats()`` at any
    time; ``interrupt()`` ends every open item and the stream goes on; ``close()`` stops the
    source and cancels what is in flight. A context manager: leaving it closes the stream.
    """

    def __init__(
        self,
        run: Run,
        source: Iterable[Any] | AsyncIterable[Any] | TimedSource,
        *,
        window: int = 256,
        on_drop: OnDrop = "skip",
        on_error: OnStreamError = "raise",
        indexed: bool = False,
        observers: Iterable[StreamObserver] = (),
    ) -> None:
        if isinstance(window, bool) or not isinstance(window, int) or window < 1:
            raise ConfigError(f"window must be >= 1 (an int), got {window!r}")
        if on_drop not in ("skip", "keep"):
            raise ConfigError(f"on_drop must be 'skip' or 'keep', got {on_drop!r}")
        if on_error not in ("raise", "skip", "collect"):
            raise ConfigError(f"on_error must be 'raise', 'skip' or 'collect', got {on_error!r}")
        if not isinstance(source, Iterable | AsyncIterable | TimedSource):
            raise ConfigError(f"a stream's source must be an iterable, an async iterable, "
                              f"lg.Tick(hz) or lg.replay(path), got {type(source).__name__}")
        self.run = run
        self.clock = run.clock
        self.on_drop = on_drop
        self.on_error = on_error
        self.indexed = indexed
        self._observers = list(observers)
        names = [port.name for port in run.graph.inputs]
        self._single = names[0] if len(names) == 1 else None
        self._room = threading.Semaphore(window)
        self._results = Updates()
        self._stopped = False
        self._error: BaseException | None = None
        self._schedule: Schedule | None = None
        self._held: Schedule | None = None  # an event-pumped item waiting for room
        self._reading: Iterator[Any] | None = None
        self._ended = threading.Event()
        self.started = self.clock.now()
        self._finished_at: float | None = None
        if isinstance(source, TimedSource) and callable(getattr(self.clock, "call_at", None)):
            self._schedule = source.schedule()
            self._book(self._schedule, self.started)
        else:
            threading.Thread(target=self._pump, args=(source,), name="legato-stream",
                             daemon=True).start()
        threading.Thread(target=self._watch, name="legato-stream-end", daemon=True).start()

    # -- the pump -------------------------------------------------------------------------

    def _pump(self, source: Any) -> None:
        try:
            if isinstance(source, TimedSource):
                self._pump_timed(source.schedule())
            elif isinstance(source, Iterable):
                for raw in self._pulled(iter(source)):
                    self._feed(raw, None)
            else:
                import asyncio

                asyncio.run(self._pump_async(source))
        except BaseException as exc:  # the reader raises it, where the user looks
            self._error = exc
        finally:
            self.run.close()

    def _pulled(self, source: Iterator[Any]) -> Iterator[Any]:
        """``source``'s items, each taken once there is room for it."""
        while self._ready():
            try:
                raw = next(source)
            except StopIteration:
                return
            yield raw

    def _ready(self) -> bool:
        """Wait for room in the window and for every ``block`` queue to have room; False once
        the stream is stopped."""
        self._room.acquire()
        self.run.wait_for_room()
        return not self._stopped

    async def _pump_async(self, source: AsyncIterable[Any]) -> None:
        items = aiter(source)
        while self._ready():
            try:
                raw = await anext(items)
            except StopAsyncIteration:
                return
            self._feed(raw, None)

    def _pump_timed(self, schedule: Schedule) -> None:
        self._schedule = schedule
        clock = self.clock
        while self._ready():
            while True:
                due = schedule.next_due(clock.now())
                if due is None:
                    return
                if clock.now() < due:
                    clock.wait_until(due)
                if self._stopped:
                    return
                item = schedule.take(clock.now())
                if item is not None:
                    break
            self._feed(item.inputs, item.at)

    def _book(self, schedule: Schedule, now: float) -> None:
        """Under an event-booking clock: book the next timed item's submission at its time."""
        due = schedule.next_due(now)
        if due is None or self._stopped:
            self.run.close()
            return
        self.clock.call_at(due, lambda: self._step(schedule))  # type: ignore[attr-defined]
        self.run._s.wake()  # the loop looks again: it may be idle with nothing booked

    def _step(self, schedule: Schedule) -> None:
        """A booked item is due (on the engine's loop, at exactly its time). Without room for
        it, the step waits for the next item to end (``_finished`` takes it again): a tick that
        is late by then is an overrun, a replayed item goes in late."""
        now = self.clock.now()
        if self._stopped:
            self.run.close()
            return
        if not self._room.acquire(blocking=False):
            self._held = schedule
            return
        if not self.run.has_room():
            self._room.release()
            self._held = schedule
            return
        item = schedule.take(now)
        if item is not None:
            self._feed(item.inputs, item.at)
        else:
            self._room.release()
        self._book(schedule, now)

    def _feed(self, raw: Any, at: float | None) -> None:
        """Submit one source item (room for it taken)."""
        interrupt = isinstance(raw, Interrupt)
        if interrupt:
            self.run.interrupt()
            raw = raw.inputs
        stamp = self.clock.now() if at is None else at
        if raw is None and interrupt:  # a bare interrupt: nothing to submit
            self._room.release()
            for observer in self._observers:
                observer.submitted(None, stamp, None, interrupt=True)
            return
        inputs = raw if self._single is None or isinstance(raw, Mapping) else {self._single: raw}
        try:
            handle = self.run.submit(inputs, timestamp=stamp)
        except RunError:  # closed under us (the stream was closed)
            self._stopped = True
            self._room.release()
            return
        for observer in self._observers:
            observer.submitted(handle.index, stamp, raw, interrupt=interrupt)
        handle.add_done_callback(self._finished)

    def _finished(self, handle: ItemHandle) -> None:
        """An item ended (on the engine's thread): room for the next, its result to the reader."""
        self._room.release()
        held, self._held = self._held, None
        if held is not None:  # an event-pumped item waited for room: on this loop, now
            self._step(held)
        for observer in self._observers:
            observer.finished(handle)
        self._results.push(handle)

    def _watch(self) -> None:
        """Once the run has ended: the stream's end for readers and observers."""
        self.run.wait()
        self._finished_at = self.clock.now()
        try:
            stats = self.stats()
            for observer in self._observers:
                try:
                    observer.ended(stats, error=self._error)
                except BaseException as exc:
                    if self._error is None:
                        self._error = exc
        finally:
            self._results.close()
            self._ended.set()

    # -- reading --------------------------------------------------------------------------

    def __iter__(self) -> Iterator[Any]:
        if self._reading is None:
            self._reading = self._read()
        return self._reading

    def __next__(self) -> Any:
        return next(iter(self))

    def _read(self) -> Iterator[Any]:
        try:
            for handle in self._results:
                yield from self._emit(handle)
        except BaseException:
            self.close()
            raise
        self._ended.wait()
        if self._error is not None:
            raise self._error

    async def __aiter__(self) -> AsyncIterator[Any]:
        try:
            async for handle in self._results:
                for result in self._emit(handle):
                    yield result
        except BaseException:
            self.close()
            raise
        if not self._ended.is_set():
            import asyncio

            await asyncio.get_running_loop().run_in_executor(None, self._ended.wait)
        if self._error is not None:
            raise self._error

    def _emit(self, handle: ItemHandle) -> Iterator[Any]:
        error = handle.exception()
        if error is not None:
            if isinstance(error, RunCancelled) and self._stopped:
                return  # cancelled by close()
            if self.on_error == "raise":
                raise error
            if self.on_error == "collect":
                failure = Failure(handle.index, error, handle.inputs)
                yield (handle.index, failure) if self.indexed else failure
            return
        result = handle.result()
        if isinstance(result, Dropped) and self.on_drop == "skip":
            return
        yield (handle.index, result) if self.indexed else result

    # -- control --------------------------------------------------------------------------

    def stats(self) -> StreamStats:
        """Counts so far (see :class:`StreamStats`)."""
        run = self.run.stats()
        end = self._finished_at if self._finished_at is not None else self.clock.now()
        elapsed = max(0.0, end - self.started)
        schedule = self._schedule
        return StreamStats(
            items_in=run.submitted, done=run.done, failed=run.failed, dropped=run.dropped,
            drops=run.drops, misses=run.misses, latency=run.latency,
            overruns=schedule.overruns if schedule is not None else 0,
            in_flight=run.submitted - run.done - run.failed - run.dropped - run.cancelled,
            elapsed=elapsed, rate=run.submitted / elapsed if elapsed > 0 else 0.0)

    def interrupt(self) -> None:
        """End every open item now (each as ``Dropped(reason="interrupted")``; running calls
        cancelled where they can be); the stream goes on with the next source item."""
        self.run.interrupt()

    def close(self) -> None:
        """Stop pulling the source and cancel what is in flight; reading ends."""
        if self._stopped or self._ended.is_set():
            return
        self._stopped = True
        self._room.release()
        self.run.release_all()
        self.run.cancel()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the stream has ended (its source done, or closed) and its observers
        (the recording) are finished; False on timeout."""
        return self._ended.wait(timeout)

    @property
    def ended(self) -> bool:
        return self._ended.is_set()

    def __enter__(self) -> Stream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
        self.wait(30.0)


class StreamObserver:
    """Told what a stream does, for recording it: each item submitted (on the pump's thread or
    the engine's), each item finished (on the engine's thread: return quickly), and the end."""

    def submitted(self, index: int | None, stamp: float, raw: Any, *,
                  interrupt: bool) -> None:
        """Item ``index`` went in, stamped ``stamp``; ``raw`` as the source gave it (index
        None: a bare interrupt, nothing submitted)."""

    def finished(self, handle: ItemHandle) -> None:
        """Item ``handle.index`` ended."""

    def ended(self, stats: StreamStats | None, *, error: BaseException | None) -> None:
        """The stream ended (``error``: what stopped its source, if anything; ``stats`` None:
        it never started)."""

