"""The engine's loop: one thread that decides what runs next, for every run at once.

Runs are handles (:mod:`legato.engine.run`); their items come to the loop as messages on one
queue, with backends' completions, cancellations and wake-ups, from any thread. Each item
executes its graph in a :class:`~legato.engine.frames.Frame`: a count, per node, of inputs not
yet produced. A node whose count reaches zero is *ready* and goes on one heap for the whole
engine, ordered by

1. the item's priority tier (``priority=``, higher first),
2. item age (submission order across every run): an older item's next stage goes before a
   newer item's first, so items finish in the order they came (latency stays fair under load),
3. critical-path rank, within an item: the estimated work on the longest path from the node to
   the end of its graph (durations learned per node; 1 per node until measured), then arrival
   order.

The loop pops ready nodes and starts them (:mod:`legato.engine.calls`): a ``call`` node is
admitted if everything it needs is free (resources, a warm instance slot, a rate-limit token)
and handed to the backend, else it waits in its component's queue; a batched component's calls
wait in the engine's batch for that model, which calls of every run join. A ``map`` node starts
one child frame per element, a ``branch`` one for the chosen side. Then the loop blocks on its
queue until a message arrives or the next timer is due (:mod:`legato.engine.timers`). Time comes
from the injected clock.

An item ends with a result, an error (its component failed after retries, its deadline passed,
it was cancelled) or a drop (a queue policy); when it ends, its calls still waiting never start
and its calls in flight that serve no other item are cancelled where the executor can.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import queue
import threading
from collections import deque
from collections.abc import Callable, Hashable
from typing import TYPE_CHECKING, Any

from legato.engine.allocator import Allocator
from legato.engine.backend import Backend, Call, Outcome, values_of
from legato.engine.batching import Batcher
from legato.engine.calls import Calls
from legato.engine.clock import Clock
from legato.engine.events import EventBus, ItemDropped, ItemStarted, RunStarted
from legato.engine.flow import Flow
from legato.engine.frames import Item, Task
from legato.engine.handles import Dropped
from legato.engine.timers import Timers
from legato.errors import DeadlineExceeded, RunCancelled, RunError

if TYPE_CHECKING:
    from legato.engine.run import Run

_WAKE = object()
_STOP = object()
_log = logging.getLogger("legato")


class Scheduler:
    """The loop of one engine: its thread, its queue, the ready heap and the timers. Frames
    move along in :class:`Flow`, calls in :class:`Calls`; both call back here."""

    def __init__(self, backend: Backend, allocator: Allocator, bus: EventBus,
                 clock: Clock) -> None:
        self.backend = backend
        self.values = values_of(backend)
        self.allocator = allocator
        self.bus = bus
        self.clock = clock
        self.timers = Timers()
        self.seq = itertools.count()
        self.item_seq = itertools.count()
        self.runs: set[Run] = set()
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.local: deque[tuple[Call, Outcome]] = deque()  # completions from the loop's thread
        self.ready: list[tuple[int, int, float, int, Task]] = []
        self._thread: threading.Thread | None = None
        self._ident = -1
        self._lock = threading.Lock()
        self._stopped = False
        self.flow = Flow(self)
        self.calls = Calls(self)
        self.batches = Batcher(
            now=clock.now,
            estimate=allocator.estimates.get,
            start=self.calls.start_batch,
            set_timer=lambda when, token: self.timers.add(when, self.batches.timer_fired, token),
        )
        self._unsubscribe: list[Callable[[], None]] = []

    # -- from any thread -------------------------------------------------------------------

    def post(self, message: Any) -> None:
        """Hand the loop a message: a callable to run on its thread, or a completion."""
        self._queue.put(message)

    def wake(self) -> None:
        self._queue.put(_WAKE)

    def report(self, call: Call, outcome: Outcome) -> None:
        """A backend's ``done``: on the loop's own thread (an inline call, finished before
        ``submit`` returned) the completion skips the queue."""
        if threading.get_ident() == self._ident:
            self.local.append((call, outcome))
        else:
            self._queue.put((call, outcome))

    def on_loop(self) -> bool:
        return threading.get_ident() == self._ident

    @property
    def running(self) -> bool:
        """True while the loop's thread runs (started, not stopped)."""
        thread = self._thread
        return thread is not None and thread.is_alive() and not self._stopped

    def ensure_started(self) -> None:
        """Start the loop's thread on first use; RunError once the engine is closed."""
        if self._stopped:
            raise RunError("the engine is closed; create a new engine to run again")
        if self._thread is not None:
            return
        with self._lock:
            if self._thread is not None:
                return
            if self._stopped:
                raise RunError("the engine is closed; create a new engine to run again")
            self._unsubscribe = [self.clock.on_advance(self.wake),
                                 self.allocator.pool.subscribe(self._on_free)]
            thread = threading.Thread(target=self._main, name="legato-engine", daemon=True)
            thread.start()
            self._thread = thread

    def stop(self, timeout: float = 10.0) -> None:
        """End the loop: open runs are cancelled, the thread joined."""
        with self._lock:
            self._stopped = True
            thread = self._thread
        if thread is None:
            return
        self._queue.put(_STOP)
        if threading.get_ident() != self._ident:
            thread.join(timeout)
        for unsubscribe in self._unsubscribe:
            unsubscribe()

    def _on_free(self) -> None:
        """Resources or a slot came free: look again, if anything waits."""
        if self.calls.blocked or self.batches:
            self._queue.put(_WAKE)

    # -- the loop ---------------------------------------------------------------------------

    def _main(self) -> None:
        self._ident = threading.get_ident()
        while True:
            try:
                if not self._turn():
                    break
            except BaseException as exc:  # a bug or a backend gone: fail what is open, go on
                _log.exception("legato engine loop error")
                self._fail_all(exc)
        for run in list(self.runs):
            self.abort_run(run, RunCancelled(f"run {run.id} of '{run.graph.name}' was stopped: "
                                             "the engine closed"), status="cancelled")
        self.calls.shutdown()

    def busy(self) -> bool:
        return bool(self.calls.inflight or self.timers or self.calls.blocked or self.batches
                    or self.ready or self.local)

    def _turn(self) -> bool:
        """Start what is ready, wait for one message or timer, handle it. False: stop."""
        ready = self.ready
        while ready:
            self.flow.start(heapq.heappop(ready)[-1])
        local = self.local
        if not local:
            message: Any = None
            if self._queue.empty():
                due = self.timers.next_due()
                booked = bool(getattr(self.clock, "pending", False))  # a simulated clock's events
                if self.calls.inflight or due is not None or booked:
                    self.clock.idle(due)  # a simulated clock jumps here to its next event
                timeout = None if due is None else self.clock.seconds_until(due)
                if timeout != 0:
                    try:
                        message = self._queue.get(timeout=timeout)
                    except queue.Empty:
                        message = None
            else:
                message = self._queue.get_nowait()
            if message is _STOP:
                return False
            if message is not None and self._handle(message) is _STOP:
                return False
            while not self._queue.empty():
                message = self._queue.get_nowait()
                if message is _STOP:
                    return False
                self._handle(message)
        while local:
            self.calls.completed(*local.popleft())
        if self.timers:
            self.timers.fire(self.clock.now())
        if self.calls.blocked or self.batches.waiting:
            self.calls.retry_blocked()
        if not self.ready and not self.busy() and self._queue.empty():
            self._stalled()
        return True

    def _handle(self, message: Any) -> Any:
        if message is _WAKE:
            return None
        if message.__class__ is tuple:
            self.calls.completed(*message)
            return None
        return message()

    def _stalled(self) -> None:
        """Nothing runs, waits or is due, yet items are open: they can never finish."""
        for run in list(self.runs):
            for item in list(run.open_items()):
                self.fail_item(item, RunError(
                    f"item {item.index} of run {run.id} stalled: nothing left to run (a bug in "
                    "legato: please report it)"))

    def _fail_all(self, exc: BaseException) -> None:
        for run in list(self.runs):
            error = RunError(f"the engine loop failed: {type(exc).__name__}: {exc}")
            error.__cause__ = exc
            for item in list(run.open_items()):
                self.fail_item(item, error)

    # -- runs and items (on the loop's thread) ---------------------------------------------

    def open_run(self, run: Run) -> None:
        self.runs.add(run)
        if self.bus.active:
            import time

            self.bus.publish(RunStarted(run=run.id, pipeline=run.graph.name,
                                        time=self.clock.now(), wall=time.time(), mode=run.mode))

    def add_item(self, run: Run, item: Item) -> None:
        """Start a submitted item: reuse its recorded result, or bind its inputs and start its
        graph; arm its deadline."""
        item.seq = next(self.item_seq)
        if item.deadline is not None:
            self.timers.add(item.deadline, self._deadline_passed, item)
        run.item_started(item)
        if self.bus.active:
            self.bus.publish(ItemStarted(run=run.id, item=item.index, time=self.clock.now(),
                                         inputs=item.inputs, context=item.context))
        self.flow.start_item(item)

    def make_ready(self, task: Task) -> None:
        item = task.frame.item
        item.run.note_queued(task)
        rank = task.frame.plan.rank[task.node.id]
        heapq.heappush(self.ready, (-item.priority, item.seq, -rank, next(self.seq), task))

    def finish_item(self, item: Item, *, reused: bool = False) -> None:
        if item.finished:
            return
        item.finished = True
        if item.failed or isinstance(item.result, Dropped):
            self.calls.withdraw(item)
        item.run.item_finished(item, reused=reused)

    def fail_item(self, item: Item, error: BaseException) -> None:
        if item.finished:
            return
        item.failed = True
        item.error = error
        self.finish_item(item)

    def drop_item(self, item: Item, node: str, reason: str) -> None:
        """End ``item`` by policy (not failure): its result is a :class:`Dropped` marker."""
        if item.finished:
            return
        item.result = Dropped(item.index, node, reason)
        component = node.rsplit("/", 1)[-1]
        item.run.count_drop(component, reason)
        if self.bus.active:
            self.bus.publish(ItemDropped(run=item.run.id, item=item.index, node=node,
                                         reason=reason, time=self.clock.now()))
        self.finish_item(item)

    def cancel_item(self, run: Run, index: int, error: BaseException | None = None) -> None:
        item = run.open_item(index)
        if item is not None:
            self.fail_item(item, error or RunCancelled(
                f"item {index} of run {run.id} of '{run.graph.name}' was cancelled"))

    def abort_run(self, run: Run, error: BaseException, *, status: str) -> None:
        """End every open item of ``run`` with ``error`` and close it."""
        run.mark_status(status)
        for item in list(run.open_items()):
            self.fail_item(item, error)
        run.close_now()

    def interrupt_run(self, run: Run) -> None:
        for item in list(run.open_items()):
            self.drop_item(item, "interrupt", "interrupted")

    def end_run(self, run: Run) -> None:
        self.runs.discard(run)

    def _deadline_passed(self, item: Item) -> None:
        if item.finished:
            return
        running = self.calls.withdraw(item)
        limit = item.run.deadline_of(item)
        message = (f"item {item.index} of run {item.run.id} of '{item.run.graph.name}' missed "
                   f"its deadline of {limit:g}s")
        if running:
            message += (f"; {', '.join(sorted(running))} could not be stopped (a thread runs on "
                        "and holds its slot until it ends)")
        self.fail_item(item, DeadlineExceeded(message, item=item.index, deadline=limit))

    def group_of(self, key: Hashable) -> Any:
        return self.calls.blocked.get(key)
