"""The run loop: one thread decides what runs next; a backend executes it.

How the next node is chosen. Each item of a run (one for ``run``, many for ``map``) executes its
graph in a :class:`Frame`: a count, per node, of inputs not yet produced. A node whose count
reaches zero is *ready* and goes on one heap for the whole run, ordered by

1. critical-path rank: the estimated work on the longest path from it to the end of its graph
   (durations learned per node as runs go; 1 per node until measured), then
2. item age: the earlier item first, so ``map`` keeps latency fair, then
3. arrival order.

The loop pops ready nodes and starts them: a ``call`` node is admitted if everything it needs is
free (resources, a warm instance slot, a rate-limit token: :mod:`legato.engine.allocator`) and
handed to the backend; else it waits in a group of calls that ask the same, tried again, best
priority first, whenever something comes free. A batched component's calls wait in its batch
(:mod:`legato.engine.batching`). A ``map`` node starts one child frame per element of its list, a
``branch`` node one child frame for the chosen side. Then the loop blocks on one queue where
backends report completions (from any thread) until a completion arrives or the next timer is
due (a retry's backoff, a timeout, a batch's max wait, a rate limit's refill). Time comes from
the injected clock.

A failed call is retried per its component's ``Retry`` after the backoff; when attempts run out
the item fails with :class:`ComponentError` and every other item goes on. ``map`` admits new
items only while fewer than ``window`` are in flight, so memory stays flat in the number of items.
"""

from __future__ import annotations

import heapq
import itertools
import queue
import threading
import time
import uuid
from collections import deque
from collections.abc import Generator, Hashable, Iterable, Mapping
from typing import Any, Literal

from legato.component import Component, Instance, join_outputs
from legato.engine.allocator import FREE, Admitted, Allocator
from legato.engine.backend import Backend, Call, Outcome, split_returned, split_value, values_of
from legato.engine.batching import Batcher
from legato.engine.clock import Clock, MonotonicClock
from legato.engine.events import (
    CacheHit,
    EventBus,
    ItemFinished,
    NodeFailed,
    NodeFinished,
    NodeQueued,
    NodeStarted,
    RunFinished,
    RunStarted,
)
from legato.engine.feeder import Fed, Feeder
from legato.engine.frames import (
    Failure,
    Fanout,
    Frame,
    Item,
    PendingCall,
    Plan,
    RunStats,
    Task,
    bind_inputs,
    resolve,
)
from legato.engine.memo import Memo, Reuse
from legato.errors import ComponentError, ComponentTimeout, InputError, RunCancelled, RunError
from legato.graph import Graph
from legato.outputs import output_error

OnError = Literal["raise", "skip", "collect"]

_WAKE = object()
_CANCEL = object()
_TIMEOUT, _RETRY, _FLUSH, _WAKE_UP = 0, 1, 2, 3
_ADMIT_CHUNK = 64  # items admitted between two turns of the loop


class Run:
    """One execution of a graph over one or many items. Driven by iterating ``results()``."""

    def __init__(
        self,
        graph: Graph,
        items: Iterable[Mapping[str, Any]],
        *,
        backend: Backend,
        allocator: Allocator,
        bus: EventBus | None = None,
        clock: Clock | None = None,
        window: int = 256,
        ordered: bool = True,
        on_error: OnError = "raise",
        run_id: str | None = None,
        feed: bool = False,
        memo: Memo | None = None,
        check_outputs: bool = True,
    ) -> None:
        if window < 1:
            raise ValueError(f"window must be >= 1, got {window}")
        if on_error not in ("raise", "skip", "collect"):
            raise ValueError(f"on_error must be 'raise', 'skip' or 'collect', got {on_error!r}")
        self.id = run_id or uuid.uuid4().hex[:12]
        self.graph = graph
        self.backend = backend
        self._values = values_of(backend)  # where call results live: looked into only here
        self.allocator = allocator
        self.bus = bus or EventBus()
        self.clock = clock or MonotonicClock()
        self.window = window
        self.ordered = ordered
        self.on_error = on_error
        self.memo = memo
        self.check_outputs = check_outputs
        self._source = enumerate(items)
        self._exhausted = False
        self._plans: dict[int, Plan] = {}
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._local: deque[tuple[Call, Outcome]] = deque()  # completions from this thread
        self._thread = threading.get_ident()  # the loop's thread, set again when it starts
        self._feeder = Feeder(self._source, window, self._queue.put) if feed else None
        self._ready: list[tuple[float, int, int, Task]] = []
        self._timers: list[tuple[float, int, int, Any]] = []
        self._inflight: dict[int, list[Task] | Task] = {}
        self._calls: dict[int, Call] = {}
        self._held: dict[int, Admitted] = {}
        self._blocked: dict[Hashable, list[tuple[tuple[float, int, int], PendingCall]]] = {}
        self._fanouts: dict[tuple[int, str], Fanout] = {}
        self._batches = Batcher(
            now=self.clock.now,
            estimate=allocator.estimates.get,
            start=self._try_start,
            set_timer=lambda when, token: heapq.heappush(
                self._timers, (when, next(self._seq), _FLUSH, token)),
        )
        self._seq = itertools.count()
        self._call_ids = itertools.count(1)
        self._open: dict[int, Item] = {}
        self._finished: dict[int, Item] = {}
        self._next_out = 0
        self._done = 0
        self._failed = 0
        self._started = False
        self._closed = False
        self._stop_clock = self.clock.on_advance(lambda: self._queue.put(_WAKE))
        self._stop_pool = allocator.pool.subscribe(self._on_free)

    # -- public -------------------------------------------------------------------------------

    def stats(self) -> RunStats:
        running = sum(len(t) if isinstance(t, list) else 1 for t in self._inflight.values())
        return RunStats(done=self._done, failed=self._failed, running=running,
                        queued=len(self._ready))

    def cancel(self) -> None:
        """Stop the run from any thread; the iterator raises RunCancelled."""
        self._queue.put(_CANCEL)

    def results(self) -> Generator[Any, None, None]:
        """Results as items finish: in input order when ``ordered``, else as they complete.

        Failed items raise (``on_error="raise"``), are left out (``"skip"``) or appear as
        :class:`Failure` (``"collect"``).
        """
        status = "failed"
        try:
            self._begin()
            while True:
                self._admit()
                item = self._take()
                if item is not None:
                    if item.failed:
                        if self.on_error == "raise":
                            assert item.error is not None
                            raise item.error
                        if self.on_error == "collect":
                            assert item.error is not None
                            yield Failure(item.index, item.error, item.inputs)
                        continue
                    yield item.result
                    continue
                if self._exhausted and not self._open and not self._finished:
                    status = "ok" if self._failed == 0 else "failed"
                    return
                self._pump()
        except GeneratorExit:
            status = "cancelled"
            raise
        except (KeyboardInterrupt, RunCancelled):
            status = "cancelled"
            raise
        finally:
            self._shutdown(status)

    # -- items --------------------------------------------------------------------------------

    def _begin(self) -> None:
        self._started = True
        self._thread = threading.get_ident()
        if self._feeder is not None:
            self._feeder.start()
        if self.bus.active:
            self.bus.publish(RunStarted(self.id, self.graph.name, self.clock.now(), time.time()))

    def _admit(self) -> None:
        """Start new items while fewer than ``window`` are open, a chunk at a time, so the
        first items' work starts before a large window has been filled. (With a feeder, items
        arrive as messages instead.)"""
        if self._feeder is not None:
            return
        chunk = _ADMIT_CHUNK
        while (not self._exhausted and chunk > 0
               and len(self._open) + len(self._finished) < self.window):
            chunk -= 1
            try:
                index, raw = next(self._source)
            except StopIteration:
                self._exhausted = True
                return
            self._new_item(index, raw)

    def _new_item(self, index: int, raw: Mapping[str, Any]) -> None:
        item = Item(index, raw)
        self._open[index] = item
        if self.memo is not None:
            recorded = self.memo.item(index)
            if recorded is not None:  # a resumed run's finished item: its result, not its work
                item.inputs = raw
                item.result = recorded.value
                self._finish_item(item, reused=True)
                return
        try:
            inputs = bind_inputs(self.graph, raw, index)
        except InputError as exc:
            self._fail_item(item, exc)
            return
        item.inputs = inputs
        self._start_frame(Frame(self._plan(self.graph), inputs, item))

    def _take(self) -> Item | None:
        """The next finished item to hand out, if any."""
        item = None
        if self.ordered:
            item = self._finished.pop(self._next_out, None)
            if item is not None:
                self._next_out += 1
        elif self._finished:
            item = self._finished.pop(next(iter(self._finished)))
        if item is not None and self._feeder is not None:
            self._feeder.room.release()  # the item left the window
        return item

    def _finish_item(self, item: Item, *, reused: bool = False) -> None:
        item.finished = True
        self._open.pop(item.index, None)
        self._finished[item.index] = item
        if item.failed:
            self._failed += 1
        else:
            self._done += 1
        if self.bus.active:
            self.bus.publish(ItemFinished(self.id, item.index, not item.failed, self.clock.now(),
                                          None if item.error is None else str(item.error),
                                          item.result, reused))

    def _fail_item(self, item: Item, error: BaseException) -> None:
        if item.finished:
            return
        item.failed = True
        item.error = error
        self._finish_item(item)

    # -- frames -------------------------------------------------------------------------------

    def _plan(self, graph: Graph) -> Plan:
        plan = self._plans.get(id(graph))
        if plan is None:
            plan = self._plans[id(graph)] = self.allocator.plan(graph)
        return plan

    def _start_frame(self, frame: Frame) -> None:
        if frame.remaining == 0:
            self._frame_done(frame)
            return
        nodes = frame.plan.graph.nodes
        for node_id in frame.plan.roots:
            self._make_ready(Task(frame, nodes[node_id]))

    def _make_ready(self, task: Task) -> None:
        if self.bus.active:
            task.queued = now = self.clock.now()
            self.bus.publish(NodeQueued(self.id, task.frame.item.index, task.name, task.attempt,
                                        now))
        rank = task.frame.plan.rank[task.node.id]
        heapq.heappush(self._ready, (-rank, task.frame.item.index, next(self._seq), task))

    def _node_done(self, task: Task, outputs: dict[str, Any]) -> None:
        frame = task.frame
        if frame.item.finished:
            return
        node_id = task.node.id
        frame.values[node_id] = outputs
        frame.remaining -= 1
        nodes = frame.plan.graph.nodes
        waiting = frame.waiting
        for successor in frame.plan.downstream[node_id]:
            waiting[successor] -= 1
            if waiting[successor] == 0:
                self._make_ready(Task(frame, nodes[successor]))
        if frame.remaining == 0:
            self._frame_done(frame)

    def _frame_done(self, frame: Frame) -> None:
        graph = frame.plan.graph
        outputs = {name: resolve(frame, src) for name, src in graph.outputs.items()}
        if frame.parent is None:
            item = frame.item
            try:
                fetched = self._values.fetch(outputs)
            except Exception as exc:  # e.g. an object lost with the node that held it
                error = RunError(f"could not fetch the outputs of item {item.index}: {exc}")
                error.__cause__ = exc
                self._fail_item(item, error)
                return
            wrong = output_error(graph, fetched, item=item.index) if self.check_outputs else None
            if wrong is not None:  # a value that breaks the declared type (legato.outputs)
                self._fail_item(item, wrong)
                return
            item.result = join_outputs(graph.output_annotation, fetched)
            self._finish_item(item)
            return
        parent, node_id, index = frame.parent
        fanout = self._fanouts.get((id(parent), node_id))
        if fanout is None:
            return
        fanout.results[index] = outputs
        fanout.remaining -= 1
        if fanout.remaining == 0:
            del self._fanouts[(id(parent), node_id)]
            task = fanout.task
            if task.node.kind == "map":
                ports = [port.name for port in task.node.outputs]
                gathered = {p: self._values.gather([r[p] for r in fanout.results if r is not None])
                            for p in ports}
                self._node_done(task, gathered)
            else:
                self._node_done(task, fanout.results[0] or {})

    # -- starting nodes -----------------------------------------------------------------------

    def _start(self, task: Task) -> None:
        frame = task.frame
        if frame.item.finished:
            return
        node = task.node
        kwargs = {port: resolve(frame, src) for port, src in frame.plan.bindings[node.id]}
        if node.kind == "call":
            self._start_call(task, kwargs)
        elif node.kind == "map":
            self._start_map(task, kwargs)
        else:
            self._start_branch(task, kwargs)

    def _start_call(self, task: Task, kwargs: dict[str, Any]) -> None:
        target = task.node.target
        assert isinstance(target, Component | Instance)
        component = target.component if isinstance(target, Instance) else target
        if self.memo is not None:
            found = self.memo.node(task.frame.item.index, task.name, target, kwargs)
            if isinstance(found, Reuse):
                self._reuse(task, found)
                return
            task.cache_key = found
        batch = component.options.batch
        if batch is not None:
            self._batches.add(task, kwargs, target)
            return
        self._request(PendingCall(task, target, kwargs, None))

    def _reuse(self, task: Task, found: Reuse) -> None:
        if self.bus.active:
            self.bus.publish(CacheHit(self.id, task.frame.item.index, task.name, found.key,
                                      found.source, self.clock.now()))
        self._node_done(task, found.value)

    # -- admission ----------------------------------------------------------------------------

    def _request(self, pending: PendingCall) -> None:
        """Start the call now if everything it needs is free, else let it wait its turn."""
        if not self._try_start(pending):
            group = self._blocked.setdefault(pending.group(), [])
            heapq.heappush(group, (pending.priority(), pending))

    def _try_start(self, pending: PendingCall) -> bool:
        admitted = self.allocator.admit(pending.target)
        if admitted is None:
            return False
        if isinstance(admitted, float):  # a rate limit: look again when it allows
            heapq.heappush(self._timers, (admitted, next(self._seq), _WAKE_UP, None))
            return False
        call = Call(next(self._call_ids), pending.target, pending.kwargs or {}, pending.batch,
                    slot=admitted.slot.index if admitted.slot is not None else None,
                    devices=admitted.devices)
        if admitted is not FREE:
            self._held[call.id] = admitted
        self._submit(call, pending.tasks, pending.component.options.timeout)
        return True

    def _retry_blocked(self) -> None:
        """Something came free: start waiting calls that fit now, best priority first. Calls
        that ask the same of the same target form one group, so a group whose first call does
        not fit is passed over whole (a smaller request elsewhere may still fit: backfill).
        Ready nodes that outrank every waiting call are started first: they wait too."""
        ready = self._ready
        if ready and self._blocked:
            best = min(group[0][0][:2] for group in self._blocked.values())
            while ready and ready[0][:2] < best:
                self._start(heapq.heappop(ready)[3])
        for key in sorted(self._blocked, key=lambda k: self._blocked[k][0][0]):
            group = self._blocked[key]
            while group:
                pending = group[0][1]
                if pending.finished():
                    heapq.heappop(group)
                    continue
                if not self._try_start(pending):
                    break
                heapq.heappop(group)
            if not group:
                del self._blocked[key]
        self._batches.flush_waiting()

    def _on_free(self) -> None:
        """Resources or a slot came free (maybe in another run): look again, if waiting."""
        if self._blocked or self._batches:
            self._queue.put(_WAKE)

    def _release(self, call_id: int, *, abandoned: bool, outcome: Outcome | None = None) -> None:
        admitted = self._held.pop(call_id, None)
        if admitted is not None:
            tokens = 0.0
            if outcome is not None and outcome.usage:
                tokens = outcome.usage.get("tokens", 0.0)
            self.allocator.finish(admitted, abandoned=abandoned, tokens=tokens)

    def _submit(self, call: Call, tasks: Task | list[Task], timeout: float | None) -> None:
        self._inflight[call.id] = tasks
        self._calls[call.id] = call
        if timeout is not None:
            deadline = self.clock.now() + timeout
            heapq.heappush(self._timers, (deadline, next(self._seq), _TIMEOUT, call.id))
        if self.bus.active:
            now = self.clock.now()
            for task in tasks if isinstance(tasks, list) else (tasks,):
                self.bus.publish(NodeStarted(self.id, task.frame.item.index, task.name,
                                             task.attempt, now))
        try:
            self.backend.submit(call, self._report)
        except RunError:
            raise
        except Exception as exc:  # e.g. arguments that cannot be sent to a worker process
            self._report(call, Outcome(error=exc, start=self.clock.now(), end=self.clock.now()))

    def _report(self, call: Call, outcome: Outcome) -> None:
        """Called by the backend, from any thread; on the loop's own thread (an inline call,
        done before ``submit`` returns) the completion skips the queue."""
        if threading.get_ident() == self._thread:
            self._local.append((call, outcome))
        else:
            self._queue.put((call, outcome))

    def _start_map(self, task: Task, kwargs: dict[str, Any]) -> None:
        body = task.node.body
        assert body is not None
        try:
            elements = self._values.elements(kwargs.pop("items"))
        except Exception as exc:  # not a list (TypeError), or a value that could not be read
            self._task_failed(task, exc, retry=False)
            return
        if not elements:
            self._node_done(task, {port.name: [] for port in task.node.outputs})
            return
        first = body.inputs[0].name
        frame = task.frame
        self._fanouts[(id(frame), task.node.id)] = Fanout(task, len(elements))
        plan = self._plan(body)
        for index, element in enumerate(elements):
            inputs = {first: element, **kwargs}
            child = Frame(plan, inputs, frame.item, (frame, task.node.id, index),
                          f"{task.name}[{index}]/")
            self._start_frame(child)

    def _start_branch(self, task: Task, kwargs: dict[str, Any]) -> None:
        node = task.node
        try:
            condition = self._values.fetch({"condition": kwargs.get("condition")})["condition"]
        except Exception as exc:
            self._task_failed(task, exc, retry=False)
            return
        chosen, prefix = (node.body, "then.") if condition else (node.orelse, "else.")
        if chosen is None:
            self._node_done(task, {port.name: None for port in node.outputs})
            return
        inputs = {k[len(prefix):]: v for k, v in kwargs.items() if k.startswith(prefix)}
        frame = task.frame
        self._fanouts[(id(frame), node.id)] = Fanout(task, 1)
        path = f"{task.name}/{'then' if prefix == 'then.' else 'else'}/"
        self._start_frame(Frame(self._plan(chosen), inputs, frame.item, (frame, node.id, 0), path))

    # -- the loop -----------------------------------------------------------------------------

    def _pump(self) -> None:
        """Start what is ready, then wait for one completion or timer, and handle it."""
        ready = self._ready
        while ready:
            self._start(heapq.heappop(ready)[3])
        local = self._local
        if local:  # inline completions: handle them and come back, no need to wait
            while local:
                self._handle(local.popleft())
            if self._timers:
                self._fire_timers()
            if self._blocked or self._batches.waiting:
                self._retry_blocked()
            return
        waiting = (self._inflight or self._timers or ready or self._blocked or self._batches
                   or (self._feeder is not None and not self._exhausted))
        if not self._finished_ready() and waiting:
            if self._queue.empty():
                self.clock.idle(self._timers[0][0] if self._timers else None)
            timeout = None
            if self._timers:
                timeout = self.clock.seconds_until(self._timers[0][0])
            try:
                message = self._queue.get(timeout=timeout) if timeout != 0 else None
            except queue.Empty:
                message = None
            if message is not None:
                self._handle(message)
        elif not waiting and self._open:
            raise RuntimeError("legato: run stalled with open items and nothing to do")
        while not self._queue.empty():  # drain without blocking
            self._handle(self._queue.get_nowait())
        while local:
            self._handle(local.popleft())
        self._fire_timers()
        if self._blocked or self._batches.waiting:
            self._retry_blocked()

    def _finished_ready(self) -> bool:
        if self.ordered:
            return self._next_out in self._finished
        return bool(self._finished)

    def _handle(self, message: Any) -> None:
        if message is _WAKE:
            return
        if message.__class__ is Fed:
            if message.end:
                self._exhausted = True
                if message.error is not None:
                    raise message.error
            else:
                self._new_item(message.index, message.raw)
            return
        if message is _CANCEL:
            raise RunCancelled(f"run {self.id} of '{self.graph.name}' was cancelled")
        call, outcome = message
        tasks = self._inflight.pop(call.id, None)
        self._calls.pop(call.id, None)
        if tasks is None:
            return  # timed out or cancelled earlier: a late result, dropped
        self._release(call.id, abandoned=False, outcome=outcome)
        first = tasks[0] if isinstance(tasks, list) else tasks
        self.allocator.estimates.add(first.frame.plan.keys[first.node.id],
                                     outcome.end - outcome.start)
        if isinstance(tasks, list):
            self._batch_done(call, tasks, outcome)
        elif outcome.error is not None:
            self._task_failed(tasks, outcome.error, outcome=outcome)
        elif outcome.outputs is not None:  # split where the call ran
            self._call_done(tasks, outcome, outcome.outputs[0])
        else:
            component = tasks.node.component
            assert component is not None
            self._call_done(tasks, outcome, split_value(component, outcome.value))

    def _call_done(
        self, task: Task, outcome: Outcome, outputs: dict[str, Any] | Exception
    ) -> None:
        """One item's call succeeded; ``outputs`` by port, or why its value did not fit them
        (not retried: the same inputs would return the same)."""
        if isinstance(outputs, Exception):
            self._task_failed(task, outputs, outcome=outcome, retry=False)
            return
        if task.cache_key is not None and outcome.outputs is not None:
            try:  # outputs to be cached go to the store, so here (values held elsewhere)
                outputs = dict(self._values.fetch(outputs))
            except Exception as exc:
                self._task_failed(task, exc, outcome=outcome)
                return
        if self.bus.active:
            self.bus.publish(NodeFinished(self.id, task.frame.item.index, task.name, task.attempt,
                                          outcome.start, outcome.end, outcome.executor,
                                          outcome.worker, task.queued, outputs, task.cache_key))
        self._node_done(task, outputs)

    def _batch_done(self, call: Call, tasks: list[Task], outcome: Outcome) -> None:
        if outcome.error is None:
            outputs = outcome.outputs
            if outputs is None:
                outputs = split_returned(call.component, outcome.value, len(tasks))
            for task, item_outputs in zip(tasks, outputs, strict=True):
                self._call_done(task, outcome, item_outputs)
            return
        for task in tasks:
            self._task_failed(task, outcome.error, outcome=outcome)

    def _task_failed(
        self,
        task: Task,
        error: BaseException,
        *,
        outcome: Outcome | None = None,
        retry: bool = True,
    ) -> None:
        item = task.frame.item
        if item.finished:
            return
        node = task.node
        component = node.component
        policy = component.options.retry if component is not None else None
        will_retry = (
            retry and policy is not None and task.attempt < policy.attempts
            and policy.retries(error)
        )
        if self.bus.active:
            start = outcome.start if outcome is not None else self.clock.now()
            end = outcome.end if outcome is not None else self.clock.now()
            self.bus.publish(NodeFailed(
                self.id, item.index, task.name, task.attempt, start, end,
                f"{type(error).__name__}: {error}", will_retry,
                outcome.worker if outcome is not None else "", task.queued, error,
                outcome.executor if outcome is not None else ""))
        if will_retry:
            assert policy is not None
            delay = policy.delay(task.attempt)
            task.attempt += 1
            heapq.heappush(self._timers,
                           (self.clock.now() + delay, next(self._seq), _RETRY, task))
            return
        if isinstance(error, ComponentError) and error.node == task.name:
            wrapped = error
        else:
            kind = ComponentTimeout if isinstance(error, TimeoutError) else ComponentError
            wrapped = kind(f"{type(error).__name__}: {error}", node=task.name, item=item.index,
                           attempt=task.attempt, location=node.location)
            wrapped.__cause__ = error
        self._fail_item(item, wrapped)

    def _fire_timers(self) -> None:
        timers = self._timers
        now = self.clock.now()
        while timers and timers[0][0] <= now:
            _, _, kind, payload = heapq.heappop(timers)
            if kind == _RETRY:
                self._make_ready(payload)
            elif kind == _WAKE_UP:
                continue  # a rate limit refilled: _retry_blocked looks again
            elif kind == _FLUSH:
                self._batches.timer_fired(payload)
            else:
                self._time_out(payload)

    def _time_out(self, call_id: int) -> None:
        tasks = self._inflight.pop(call_id, None)
        call = self._calls.pop(call_id, None)
        if tasks is None or call is None:
            return
        self.backend.cancel(call)
        self._release(call_id, abandoned=True)
        timeout = call.component.options.timeout
        for task in tasks if isinstance(tasks, list) else (tasks,):
            self._task_failed(task, TimeoutError(f"call took longer than timeout={timeout}s"))

    def _shutdown(self, status: str) -> None:
        if self._closed:
            return
        self._closed = True
        self._stop_clock()
        self._stop_pool()
        if self._feeder is not None:
            self._feeder.stop()
        for call in list(self._calls.values()):
            self.backend.cancel(call)
            self._release(call.id, abandoned=True)
        self._blocked.clear()
        self._inflight.clear()
        self._calls.clear()
        if self._started and self.bus.active:
            self.bus.publish(RunFinished(self.id, status, self.clock.now(), self._done,
                                         self._failed))


