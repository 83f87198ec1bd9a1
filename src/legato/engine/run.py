"""A run: a handle on one execution of a graph, fed with items while it is open.

The engine's loop (:mod:`legato.engine.loop`) does the work; a :class:`Run` is what callers
hold. ``submit(inputs, deadline=, priority=)`` hands one item to the loop and returns its
:class:`~legato.engine.handles.ItemHandle` (from any thread); ``close()`` says no more will come,
and the run finishes when its last item does. ``results()`` is the consumer that ``map`` is
built on: it feeds the run from a source, at most ``window`` items out at a time, and yields
results in input order (or as they finish), failed items raised, skipped or collected, dropped
items skipped or kept.

State that the loop changes (open items, counts) is changed only on the loop's thread; the
caller's side (submission index, the closed flag) is guarded by a lock.
"""

from __future__ import annotations

import functools
import itertools
import os
import queue
import threading
from collections import deque
from collections.abc import Generator, Hashable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, Literal

from legato.engine.events import CacheHit, ItemFinished, NodeQueued, RunFinished
from legato.engine.frames import Item, RunStats, Task
from legato.engine.handles import Dropped, ItemHandle, Updates
from legato.engine.memo import Memo, Reuse
from legato.errors import BuildError, ConfigError, RunCancelled, RunError

if TYPE_CHECKING:
    from legato.engine.loop import Scheduler
    from legato.graph import Graph

OnError = Literal["raise", "skip", "collect"]
OnDrop = Literal["skip", "keep"]

END = object()  # what the run puts on its results queue when it has ended
_LATENCIES = 1024  # recent call durations kept per stage, for run.stats().latency


def _percentiles(values: list[float]) -> tuple[float, float]:
    """(p50, p99) of ``values``, seconds."""
    values.sort()
    last = len(values) - 1
    return values[last // 2], values[min(last, round(0.99 * last))]


_PROCESS = os.urandom(4).hex()  # ids of this process's runs: its random prefix, then a count
_RUNS = itertools.count()


def new_run_id() -> str:
    """A run id unique across processes and stores: 8 random hex digits drawn once per
    process, then this process's run count (4 hex digits, more past 65,535 runs). One
    ``urandom`` per process: a served request is a run, and ``uuid4`` costs a system call."""
    return f"{_PROCESS}{next(_RUNS):04x}"


def check_deadline(deadline: float | None) -> float | None:
    if deadline is None:
        return None
    if isinstance(deadline, bool) or not isinstance(deadline, int | float) or deadline <= 0:
        raise ConfigError(f"deadline must be a number of seconds > 0, got {deadline!r}")
    return float(deadline)


def check_priority(priority: int | None) -> int | None:
    if priority is not None and (isinstance(priority, bool) or not isinstance(priority, int)):
        raise ConfigError(f"priority must be an int (higher runs first), got {priority!r}")
    return priority


class Run:
    """One execution of a graph over the items submitted to it (see the module docstring)."""

    def __init__(
        self,
        scheduler: Scheduler,
        graph: Graph,
        *,
        items: Iterable[Mapping[str, Any]] | None = None,
        window: int = 256,
        ordered: bool = True,
        on_error: OnError = "raise",
        on_drop: OnDrop = "skip",
        indexed: bool = False,
        run_id: str | None = None,
        feed: bool = False,
        memo: Memo | None = None,
        deadline: float | None = None,
        priority: int = 0,
        check_outputs: bool = True,
        mode: str = "run",
    ) -> None:
        if isinstance(window, bool) or not isinstance(window, int) or window < 1:
            raise ConfigError(f"window must be >= 1 (an int), got {window!r}")
        if on_error not in ("raise", "skip", "collect"):
            raise ConfigError(f"on_error must be 'raise', 'skip' or 'collect', got {on_error!r}")
        if on_drop not in ("skip", "keep"):
            raise ConfigError(f"on_drop must be 'skip' or 'keep', got {on_drop!r}")
        self.id = run_id or new_run_id()
        self.graph = graph
        self.mode = mode  # how it is driven: "run", "map", "stream" or "serve" (for observers)
        self.window = window
        self.ordered = ordered
        self.on_error = on_error
        self.on_drop = on_drop
        self.indexed = indexed
        self.memo = memo
        self.check_outputs = check_outputs
        self.deadline = check_deadline(deadline)
        self.priority = check_priority(priority) or 0
        self._s = scheduler
        self.clock = scheduler.clock
        self.bus = scheduler.bus
        self._source = iter(items) if items is not None else None
        self._feed = feed
        # the loop's side
        self._open: dict[int, Item] = {}
        self.broken: dict[Hashable, BuildError] = {}  # targets whose constructor failed
        self.running = 0
        self.queued = 0
        self._done = self._failed = self._dropped = self._cancelled_items = 0
        self._drops: dict[str, dict[str, int]] = {}
        self._misses: dict[str, int] = {}
        self._latency: dict[str, deque[float]] = {}  # recent call durations per stage
        self.last_good: dict[str, dict[str, Any]] = {}  # per stage, for on_miss="hold"
        self._status: str | None = None
        self._closing = False
        self._ended = False
        # the callers' side
        self._lock = threading.Lock()
        self._next = 0
        self._closed = False
        self._cancelled = False
        self._fatal: BaseException | None = None
        self._out: queue.SimpleQueue[Any] | None = None
        self._finished: threading.Event | None = None  # made by the first wait()
        self._gate: threading.Event | None = None  # cleared while a Block(n) queue is full
        self._holds = 0
        self._opened = False  # RunStarted goes with the first message to the loop
        scheduler.ensure_started()

    # -- submitting (any thread) ------------------------------------------------------------

    def submit(self, inputs: Mapping[str, Any], *, deadline: float | None = None,
               priority: int | None = None, timestamp: float | None = None,
               updates: bool = False, context: Mapping[str, str] | None = None) -> ItemHandle:
        """Hand one item to the run; returns its handle at once. ``deadline``: seconds from
        now (default: the run's); ``priority``: higher first (default: the run's);
        ``timestamp``: when its data was made, on the engine's clock (for ``max_age``);
        ``updates``: ``handle.updates`` tells what happens as it runs (each node done, each
        chunk a generator component yields); ``context``: passed along to observers (the
        :class:`ItemStarted` event): a served request's W3C trace headers. Raises
        :class:`RunError` once the run is closed."""
        check_deadline(deadline)
        check_priority(priority)
        item = self._item(inputs, deadline, priority, timestamp)
        item.context = context
        if updates:
            assert item.handle is not None
            item.updates = item.handle.updates = Updates()
        self._send(functools.partial(self._s.add_item, self, item))
        assert item.handle is not None
        return item.handle

    def begin(self) -> None:
        """Open the run on the engine now (observers see its RunStarted), not with its first
        item: a service's run begins when the service does."""
        self._send(_nothing)

    def _send(self, message: Any) -> None:
        """Post ``message`` to the loop, after the run's opening if this is its first (under
        the lock: messages from several threads reach the loop in the order they were sent)."""
        with self._lock:
            if not self._opened:
                self._opened = True
                message = functools.partial(_opening, self._s, self, message)
            self._s.post(message)

    def _submit_last(self, inputs: Mapping[str, Any], *, deadline: float | None,
                     priority: int | None) -> ItemHandle:
        """Submit one item and close the run, in one message (``pipeline.run``/``arun``)."""
        check_deadline(deadline)
        check_priority(priority)
        item = self._item(inputs, deadline, priority, None)
        with self._lock:
            self._closed = True
        self._send(functools.partial(_add_last, self._s, self, item))
        assert item.handle is not None
        return item.handle

    def submit_many(self, inputs: Iterable[Mapping[str, Any]]) -> list[ItemHandle]:
        """Submit several items in one message to the loop (with the run's defaults)."""
        items = [self._item(raw, None, None, None) for raw in inputs]
        if items:
            self._send(functools.partial(_add_items, self._s, self, items))
        return [item.handle for item in items]

    def _item(self, inputs: Any, deadline: float | None, priority: int | None,
              timestamp: float | None) -> Item:
        with self._lock:
            if self._closed:
                raise RunError(f"run {self.id} of '{self.graph.name}' is closed: no more items "
                               "can be submitted to it; start a new run")
            index = self._next
            self._next += 1
        now = self.clock.now()
        limit = self.deadline if deadline is None else deadline
        item = Item(index, inputs, self, priority=self.priority if priority is None else priority,
                    born=now if timestamp is None else timestamp,
                    deadline=None if limit is None else now + limit, limit=limit)
        item.handle = ItemHandle(self, index, inputs)
        return item

    def close(self) -> None:
        """No more items will come; the run finishes when its open items do."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._send(self._closing_now)

    def cancel(self) -> None:
        """Stop the run from any thread: every open item ends with ``RunCancelled``."""
        self._cancelled = True
        with self._lock:
            self._closed = True
        self._send(functools.partial(
            self._s.abort_run, self,
            RunCancelled(f"run {self.id} of '{self.graph.name}' was cancelled"),
            status="cancelled"))

    def interrupt(self) -> None:
        """End every open item now (each as ``Dropped(reason="interrupted")``, its calls
        withdrawn, in flight ones cancelled where they can be); the run stays open for the
        items that come next: a user barging in on a voice agent."""
        self._send(functools.partial(self._s.interrupt_run, self))

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the run has finished (closed and every item ended); False on timeout."""
        if self._ended:
            return True
        with self._lock:
            if self._finished is None:
                self._finished = threading.Event()
        return self._ended or self._finished.wait(timeout)

    def wait_for_room(self, timeout: float | None = None) -> bool:
        """Block while a ``Block(n)`` queue of this run is full (a source feeding the run calls
        this before pulling its next item); False on timeout."""
        gate = self._gate
        return gate is None or gate.wait(timeout)

    @property
    def finished(self) -> bool:
        return self._ended

    def stats(self) -> RunStats:
        """A snapshot: items done, failed and dropped, calls running and queued, drops per
        component by reason."""
        return RunStats(done=self._done, failed=self._failed, running=self.running,
                        queued=self.queued, dropped=self._dropped,
                        cancelled=self._cancelled_items, misses=dict(self._misses),
                        latency={node: _percentiles(list(recent))
                                 for node, recent in list(self._latency.items())},
                        drops={c: dict(r) for c, r in list(self._drops.items())},
                        submitted=self._next)

    def _cancel_item(self, index: int) -> None:
        self._send(functools.partial(self._s.cancel_item, self, index))

    # -- the loop's side (called on its thread) -----------------------------------------------

    def item_started(self, item: Item) -> None:
        self._open[item.index] = item

    def open_items(self) -> list[Item]:
        return list(self._open.values())

    def open_item(self, index: int) -> Item | None:
        return self._open.get(index)

    def deadline_of(self, item: Item) -> float:
        """The item's deadline in seconds from its submission."""
        return item.limit or 0.0

    def note_queued(self, task: Task) -> None:
        self.queued += 1
        bus = self.bus
        if bus.active:  # a node's row carries when it became ready
            task.queued = now = self.clock.now()
            if bus.wants(NodeQueued):
                bus.publish(NodeQueued(run=self.id, item=task.frame.item.index, node=task.name,
                                       attempt=task.attempt, time=now,
                                       component=task.component_name))

    def note_started(self, task: Task) -> None:
        self.queued -= 1

    def cache_hit(self, task: Task, found: Reuse) -> None:
        if self.bus.wants(CacheHit):
            self.bus.publish(CacheHit(run=self.id, item=task.frame.item.index, node=task.name,
                                      key=found.key, source=found.source, time=self.clock.now(),
                                      component=task.component_name))

    def note_latency(self, node: str, seconds: float) -> None:
        recent = self._latency.get(node)
        if recent is None:
            recent = self._latency[node] = deque(maxlen=_LATENCIES)
        recent.append(seconds)

    def count_miss(self, node: str) -> None:
        self._misses[node] = self._misses.get(node, 0) + 1

    def count_drop(self, component: str, reason: str) -> None:
        self._dropped += 1
        reasons = self._drops.setdefault(component, {})
        reasons[reason] = reasons.get(reason, 0) + 1

    def item_finished(self, item: Item, *, reused: bool) -> None:
        self._open.pop(item.index, None)
        cancelled = isinstance(item.error, RunCancelled)
        if cancelled:  # not an outcome: recorded as not done, so a resume computes it
            self._cancelled_items += 1
        elif item.failed:
            self._failed += 1
        elif not isinstance(item.result, Dropped):
            self._done += 1
        if self.bus.wants(ItemFinished):
            self.bus.publish(ItemFinished(
                run=self.id, item=item.index, ok=not item.failed, time=self.clock.now(),
                error=None if item.error is None else str(item.error), result=item.result,
                reused=reused, cancelled=cancelled, exception=item.error))
        handle = item.handle
        if handle is not None:
            handle._finish(item.result, item.error)
            if item.updates is not None:
                item.updates.close()
            if self._out is not None:
                self._out.put(handle)
        if self._closing:
            self._end_if_done()

    def mark_status(self, status: str) -> None:
        self._status = status

    def close_now(self) -> None:
        with self._lock:
            self._closed = True
        self._closing_now()

    def _closing_now(self) -> None:
        self._closing = True
        self._end_if_done()

    def _end_if_done(self) -> None:
        if self._ended or self._open:
            return
        with self._lock:
            if not self._closed:
                return
        self._ended = True
        status = self._status or ("ok" if self._failed == 0 else "failed")
        if self.bus.wants(RunFinished):
            self.bus.publish(RunFinished(run=self.id, status=status, time=self.clock.now(),
                                         done=self._done, failed=self._failed))
        self._s.end_run(self)
        if self._gate is not None:
            self._gate.set()
        with self._lock:
            finished = self._finished
        if finished is not None:
            finished.set()
        if self._out is not None:
            self._out.put(END)

    def hold(self) -> None:
        """A Block(n) queue is full: take no new items from this run's source."""
        self._holds += 1
        if self._gate is None:
            self._gate = threading.Event()
        self._gate.clear()

    def release(self) -> None:
        self._holds = max(0, self._holds - 1)
        if self._holds == 0 and self._gate is not None:
            self._gate.set()

    def has_room(self) -> bool:
        """False while a ``Block(n)`` queue of this run is full (its source should wait)."""
        gate = self._gate
        return gate is None or gate.is_set()

    def release_all(self) -> None:
        """Let a waiting source go (the run is ending)."""
        if self._gate is not None:
            self._gate.set()

    def fail(self, error: BaseException) -> None:
        """The run's source raised: the consumer re-raises it once the open items end."""
        self._fatal = error
        self.close()

    # -- the consumer ----------------------------------------------------------------------

    def results(self) -> Generator[Any, None, None]:
        """Results as items finish: in input order when ``ordered``, else as they complete
        (as ``(index, result)`` pairs when ``indexed``). Failed items raise
        (``on_error="raise"``), are left out (``"skip"``) or appear as :class:`Failure`
        (``"collect"``); dropped items are left out (``on_drop="skip"``) or appear as their
        :class:`Dropped` marker (``"keep"``). See :mod:`legato.engine.results`."""
        from legato.engine.results import consume

        if self._out is not None:  # on the first next(), as a generator's body runs
            raise RunError(f"the results of run {self.id} are already being read")
        self._out = queue.SimpleQueue()
        yield from consume(self, self._out)

    def _stopped(self, status: str) -> None:
        """The consumer stopped before the run ended: end it (``status``) and wait."""
        if self._ended:
            return
        self._cancelled = self._cancelled or status in ("cancelled", "interrupted")
        self._send(functools.partial(
            self._s.abort_run, self,
            RunCancelled(f"run {self.id} of '{self.graph.name}' was stopped"), status=status))
        self.wait(30.0)


def _nothing() -> None:
    pass


def _opening(scheduler: Scheduler, run: Run, then: Any) -> None:
    scheduler.open_run(run)
    then()


def _add_last(scheduler: Scheduler, run: Run, item: Item) -> None:
    scheduler.add_item(run, item)
    run._closing_now()


def _add_items(scheduler: Scheduler, run: Run, items: list[Item]) -> None:
    for item in items:
        scheduler.add_item(run, item)
