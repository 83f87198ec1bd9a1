"""Calls: admitted, waiting in their component's queue, in flight, finished, retried, withdrawn.

Every call is a list of tasks (a plain call is a batch of one). A call that cannot start waits
in a group of calls that ask the same of the same target, ordered by priority tier, rank and
age; whenever something comes free the groups are tried again, best first (a group whose first
call does not fit is passed over whole: backfill). A component's ``queue=`` policy acts on its
waiting calls, and its stage ``deadline=`` on a call that runs too long
(:mod:`legato.engine.policies`). ``max_age`` drops an item whose data is older than that when
its call would start. A drop ends the item with a :class:`~legato.engine.handles.Dropped`
result, counted per component.

When an item ends early (failed, dropped, cancelled, past its deadline), its waiting calls are
skipped when their turn comes and its calls in flight that serve no other item are cancelled:
a process worker is killed, an async task cancelled; a thread cannot be stopped, so its call is
*abandoned*: what it holds (cpus, its instance slot) stays held until it really ends, so
concurrency never exceeds capacity.
"""

from __future__ import annotations

import functools
import heapq
import itertools
from collections.abc import Hashable
from typing import TYPE_CHECKING, Any

from legato.engine.allocator import FREE, Admitted
from legato.engine.backend import IN_PROCESS, Call, Outcome, split_returned, split_value
from legato.engine.batching import batch_key
from legato.engine.events import (
    AdmissionWaited,
    BatchFormed,
    InstanceBuilt,
    NodeFailed,
    NodeFinished,
    NodeStarted,
)
from legato.engine.frames import PendingCall, Task, wait_group
from legato.engine.handles import NodeDone
from legato.engine.memo import Reuse
from legato.engine.policies import Policies
from legato.errors import BuildError, ComponentError, ComponentTimeout

if TYPE_CHECKING:
    from legato.component import Component
    from legato.engine.loop import Scheduler

Entry = tuple[tuple[int, int, float, int], PendingCall]


class Calls:
    """The calls of every run of one engine."""

    def __init__(self, scheduler: Scheduler) -> None:
        self.s = scheduler
        self.inflight: dict[int, list[Task]] = {}
        self.call_of: dict[int, Call] = {}
        self.held: dict[int, Admitted] = {}
        self.abandoned: dict[int, Call] = {}  # cancelled, still running: held until they end
        self.blocked: dict[Hashable, list[Entry]] = {}
        self._ids = itertools.count(1)
        self.policies = Policies(self)

    # -- starting ---------------------------------------------------------------------------

    def start_call(self, task: Task, kwargs: dict[str, Any]) -> None:
        target = task.node.target
        assert target is not None
        component: Component = target.component
        item = task.frame.item
        run = item.run
        if run.broken:
            broken = run.broken.get(batch_key(target))
            if broken is not None:
                self._cannot_build(task, broken)
                return
        if run.memo is not None:
            found = run.memo.node(item.index, task.name, target, kwargs)
            if isinstance(found, Reuse):
                self.s.flow.reuse(task, found)
                return
            task.cache_key = found
        options = component.options
        if options.max_age is not None and self.s.clock.now() - item.born > options.max_age:
            self.s.drop_item(item, task.name, "max_age")
            return
        if options.batch is not None:
            self.s.batches.add(task, kwargs, target)
            if options.queue != "fifo":
                queued = self.s.batches.queued(target)
                live = [t for t, _ in queued if not t.frame.item.finished]
                self.policies.enforce(component, live, batch_key(target))
            return
        self.request(PendingCall(task, target, kwargs, None))

    def request(self, pending: PendingCall) -> None:
        """Start the call now if everything it needs is free, else let it wait its turn."""
        if self.try_start(pending) is not None:
            return
        key = pending.group()
        group = self.blocked.setdefault(key, [])
        heapq.heappush(group, (pending.priority(), pending))
        component = pending.component
        if component.options.queue != "fifo":
            self.policies.enforce(component, [p.first() for _, p in group if not p.finished()], key)
        bus = self.s.bus
        if bus.wants(AdmissionWaited):
            why = self.s.allocator.why(pending.target)
            task = pending.first()
            bus.publish(AdmissionWaited(run=task.frame.item.run.id, item=task.frame.item.index,
                                        node=task.name, on=why.on if why else "turn",
                                        time=self.s.clock.now()))

    def try_start(self, pending: PendingCall) -> Call | None:
        """Start ``pending`` if everything it needs is free: its call, else None."""
        admitted = self.s.allocator.admit(pending.target)
        if admitted is None:
            return None
        if isinstance(admitted, float):  # a rate limit: look again when it allows
            self.s.timers.add(admitted, _nothing)
            return None
        slot = admitted.slot
        call = Call(next(self._ids), pending.target, pending.kwargs or {}, pending.batch,
                    slot=slot.index if slot is not None else None, devices=admitted.devices)
        if pending.batch is None:
            task = pending.first()
            updates = task.frame.item.updates
            if updates is not None:  # a watched item: a generator's chunks go out as they come
                call.on_chunk = functools.partial(updates.chunk, task.name)
        if admitted is not FREE:
            self.held[call.id] = admitted
        if slot is not None:
            if slot.calls == 0 and self.s.bus.wants(InstanceBuilt):
                self.s.bus.publish(InstanceBuilt(component=pending.component.name,
                                                 slot=slot.index, time=self.s.clock.now()))
            slot.calls += 1
        tasks = pending.tasks if isinstance(pending.tasks, list) else [pending.tasks]
        self._submit(call, tasks, pending.component.options.timeout)
        return call

    def start_batch(self, pending: PendingCall, reason: str) -> bool:
        """The batcher's way in: start a batch, and say why it was formed now."""
        call = self.try_start(pending)
        if call is None:
            return False
        bus = self.s.bus
        if bus.wants(BatchFormed):
            tasks = pending.tasks if isinstance(pending.tasks, list) else [pending.tasks]
            bus.publish(BatchFormed(component=pending.component.name, size=len(tasks),
                                    reason=reason, time=self.s.clock.now(),
                                    runs=len({id(t.frame.item.run) for t in tasks}),
                                    batch=call.id,
                                    members=tuple((t.frame.item.run.id, t.frame.item.index,
                                                   t.name) for t in tasks)))
        return True

    def retry_blocked(self) -> None:
        """Something came free: start waiting calls that fit now, best priority first. Calls
        that ask the same of the same target form one group, so a group whose first call does
        not fit is passed over whole (a smaller request elsewhere may still fit: backfill).
        Ready nodes that outrank every waiting call are started first: they wait too."""
        blocked = self.blocked
        ready = self.s.ready
        if ready and blocked:
            best = min(group[0][0][:3] for group in blocked.values())
            while ready and ready[0][:3] < best:
                self.s.flow.start(heapq.heappop(ready)[-1])
        now = self.s.clock.now()
        for key in sorted(blocked, key=lambda k: blocked[k][0][0]):
            group = blocked[key]
            while group:
                pending = group[0][1]
                if pending.finished():
                    heapq.heappop(group)
                    continue
                max_age = pending.component.options.max_age
                task = pending.first()
                if max_age is not None and now - task.frame.item.born > max_age:
                    heapq.heappop(group)
                    self.s.drop_item(task.frame.item, task.name, "max_age")
                    continue
                if self.try_start(pending) is None:
                    break
                heapq.heappop(group)
            if not group:
                del blocked[key]
        self.s.batches.flush_waiting()
        if self.policies:
            self.policies.release_holds()

    # -- in flight --------------------------------------------------------------------------

    def _submit(self, call: Call, tasks: list[Task], timeout: float | None) -> None:
        self.inflight[call.id] = tasks
        self.call_of[call.id] = call
        for task in tasks:
            item = task.frame.item
            if item.calls is None:
                item.calls = set()
            item.calls.add(call.id)
            item.run.running += 1
        s = self.s
        if timeout is not None:
            s.timers.add(s.clock.now() + timeout, self._time_out, call.id)
        budget = call.component.options.deadline
        if budget is not None:
            s.timers.add(s.clock.now() + budget, self.policies.missed, call.id)
        if s.bus.wants(NodeStarted):
            now = s.clock.now()
            batch, size = _batch_of(call, tasks)
            name = call.component.name
            for task in tasks:
                s.bus.publish(NodeStarted(run=task.frame.item.run.id, item=task.frame.item.index,
                                          node=task.name, attempt=task.attempt, time=now,
                                          component=name, batch=batch, batch_size=size))
        try:
            s.backend.submit(call, s.report)
        except Exception as exc:  # e.g. arguments that cannot be sent to a worker process
            now = s.clock.now()
            s.report(call, Outcome(error=exc, start=now, end=now))

    def landed(self, call_id: int) -> list[Task] | None:
        """Forget a call in flight; its tasks (None if it was not in flight any more)."""
        tasks = self.inflight.pop(call_id, None)
        self.call_of.pop(call_id, None)
        if tasks is not None:
            for task in tasks:
                item = task.frame.item
                if item.calls is not None:
                    item.calls.discard(call_id)
                item.run.running -= 1
        return tasks

    def completed(self, call: Call, outcome: Outcome) -> None:
        tasks = self.landed(call.id)
        if tasks is None:
            if self.abandoned.pop(call.id, None) is not None:  # it really ended: give back
                self._release(call.id, abandoned=False, outcome=outcome)
            return  # timed out or withdrawn earlier: a late result, dropped
        self._release(call.id, abandoned=False, outcome=outcome)
        first = tasks[0]
        self.s.allocator.estimates.add(first.frame.plan.keys[first.node.id],
                                       outcome.end - outcome.start)
        if call.batch is not None:
            self._batch_done(call, tasks, outcome)
        elif outcome.error is not None:
            self.task_failed(first, outcome.error, outcome=outcome)
        elif outcome.outputs is not None:  # split where the call ran
            self._call_done(first, outcome, outcome.outputs[0])
        else:
            self._call_done(first, outcome, split_value(call.component, outcome.value))

    def _call_done(self, task: Task, outcome: Outcome, outputs: dict[str, Any] | Exception,
                   batch: tuple[int, int] = (0, 1)) -> None:
        """One item's call succeeded; ``outputs`` by port, or why its value did not fit them
        (not retried: the same inputs would return the same)."""
        if task.frame.item.finished:
            return
        if isinstance(outputs, Exception):
            self.task_failed(task, outputs, outcome=outcome, retry=False, batch=batch)
            return
        if task.cache_key is not None and outcome.outputs is not None:
            try:  # outputs to be cached go to the store, so here (values held elsewhere)
                outputs = dict(self.s.values.fetch(outputs))
            except Exception as exc:
                self.task_failed(task, exc, outcome=outcome, batch=batch)
                return
        item = task.frame.item
        run = item.run
        run.note_latency(task.node.id, outcome.end - outcome.start)
        if task.node.component is not None and task.node.component.options.on_miss == "hold":
            run.last_good[task.node.id] = outputs
        if item.updates is not None:
            item.updates.push(NodeDone(task.name, outcome.start, outcome.end,
                                       outputs if self.s.values is IN_PROCESS else None))
        if self.s.bus.wants(NodeFinished):
            self.s.bus.publish(NodeFinished(
                run=item.run.id, item=item.index, node=task.name, attempt=task.attempt,
                start=outcome.start, end=outcome.end, executor=outcome.executor,
                worker=outcome.worker, queued=task.queued, outputs=outputs,
                cache_key=task.cache_key, component=task.component_name, batch=batch[0],
                batch_size=batch[1]))
        self.s.flow.node_done(task, outputs)

    def _batch_done(self, call: Call, tasks: list[Task], outcome: Outcome) -> None:
        if outcome.error is None:
            outputs = outcome.outputs
            if outputs is None:
                outputs = split_returned(call.component, outcome.value, len(tasks))
            batch = (call.id, len(tasks))
            for task, item_outputs in zip(tasks, outputs, strict=True):
                self._call_done(task, outcome, item_outputs, batch)
            return
        for task in tasks:
            self.task_failed(task, outcome.error, outcome=outcome, batch=(call.id, len(tasks)))

    def task_failed(self, task: Task, error: BaseException, *, outcome: Outcome | None = None,
                    retry: bool = True, batch: tuple[int, int] = (0, 1)) -> None:
        item = task.frame.item
        if item.finished:
            return
        node = task.node
        component = node.component
        policy = component.options.retry if component is not None else None
        will_retry = (retry and policy is not None and task.attempt < policy.attempts
                      and policy.retries(error))
        s = self.s
        if s.bus.wants(NodeFailed):
            now = s.clock.now()
            s.bus.publish(NodeFailed(
                run=item.run.id, item=item.index, node=task.name, attempt=task.attempt,
                start=outcome.start if outcome is not None else now,
                end=outcome.end if outcome is not None else now,
                error=f"{type(error).__name__}: {error}", will_retry=will_retry,
                worker=outcome.worker if outcome is not None else "", queued=task.queued,
                exception=error, executor=outcome.executor if outcome is not None else "",
                component=task.component_name, batch=batch[0], batch_size=batch[1]))
        if will_retry:
            assert policy is not None
            delay = policy.delay(task.attempt)
            task.attempt += 1
            s.timers.add(s.clock.now() + delay, self._retry, task)
            return
        build = _build_error(error)
        if build is not None and node.target is not None and not isinstance(node.target, str):
            item.run.broken[batch_key(node.target)] = build
            self._cannot_build(task, build)
            self._fail_waiting(node.target, build)
            return
        if isinstance(error, ComponentError) and error.node == task.name:
            wrapped = error
        else:
            kind = ComponentTimeout if isinstance(error, TimeoutError) else ComponentError
            wrapped = kind(f"{type(error).__name__}: {error}", node=task.name, item=item.index,
                           attempt=task.attempt, location=node.location)
            wrapped.__cause__ = error
        s.fail_item(item, wrapped)

    def _cannot_build(self, task: Task, build: BuildError) -> None:
        item = task.frame.item
        error = BuildError(build.detail, component=build.component, node=task.name,
                           item=item.index, attempt=task.attempt, location=task.node.location)
        error.__cause__ = build.__cause__ or build
        self.s.fail_item(item, error)

    def _fail_waiting(self, target: Any, build: BuildError) -> None:
        """The target cannot be built: its calls waiting (in its queue or batch) fail now."""
        waiting = [t for t, _ in self.s.batches.queued(target)]
        for _, pending in self.blocked.pop(wait_group(target), []):
            waiting += pending.tasks if isinstance(pending.tasks, list) else [pending.tasks]
        for task in waiting:
            if not task.frame.item.finished and batch_key(target) in task.frame.item.run.broken:
                self._cannot_build(task, build)

    def _retry(self, task: Task) -> None:
        if not task.frame.item.finished:
            self.s.make_ready(task)

    # -- ending early -----------------------------------------------------------------------

    def _time_out(self, call_id: int) -> None:
        call = self.call_of.get(call_id)
        tasks = self.landed(call_id)
        if tasks is None or call is None:
            return
        self.stop(call)
        timeout = call.component.options.timeout
        for task in tasks:
            self.task_failed(task, TimeoutError(f"call took longer than timeout={timeout}s"))

    def withdraw(self, item: Any) -> list[str]:
        """``item`` ended early: cancel its calls in flight that serve no other live item.
        Returns the nodes of those that could not be stopped (threads: abandoned)."""
        running: list[str] = []
        if not item.calls:
            return running
        for call_id in list(item.calls):
            tasks = self.inflight.get(call_id)
            if tasks is None:
                continue
            if all(t.frame.item is item or t.frame.item.finished for t in tasks):
                call = self.call_of[call_id]
                self.landed(call_id)
                if not self.stop(call):
                    running.append(tasks[0].name)
        return running

    def stop(self, call: Call) -> bool:
        """Cancel ``call`` on its backend. True: it stopped, what it held is given back; False:
        it runs on (a thread), and what it held stays held until it ends."""
        stopped = self.s.backend.cancel(call)
        if stopped is False and call.id in self.held:
            self.abandoned[call.id] = call
            return False
        self._release(call.id, abandoned=True)
        return stopped is not False

    def _release(self, call_id: int, *, abandoned: bool, outcome: Outcome | None = None) -> None:
        admitted = self.held.pop(call_id, None)
        if admitted is not None:
            tokens = 0.0
            if outcome is not None and outcome.usage:
                tokens = outcome.usage.get("tokens", 0.0)
            self.s.allocator.finish(admitted, abandoned=abandoned, tokens=tokens)

    def shutdown(self) -> None:
        """The engine closes: cancel everything in flight."""
        for call in list(self.call_of.values()):
            self.landed(call.id)
            self.stop(call)
        self.blocked.clear()


def _build_error(error: BaseException) -> BuildError | None:
    """The constructor failure behind ``error``, if it is one (raised in a worker, it may come
    wrapped: follow the chain)."""
    seen = 0
    current: BaseException | None = error
    while current is not None and seen < 8:
        if isinstance(current, BuildError):
            return current
        current = current.__cause__ or current.__context__
        seen += 1
    return None


def _nothing(_: Any) -> None:
    """A timer that only wakes the loop (a rate limit refilled: waiting calls look again)."""


def _batch_of(call: Call, tasks: list[Task]) -> tuple[int, int]:
    """The batch id and size observers are told for ``call`` ((0, 1): not a batch)."""
    return (call.id, len(tasks)) if call.batch is not None else (0, 1)
