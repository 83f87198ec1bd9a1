"""Policies on calls: a component's queue (``queue=``) and its stage deadline (``deadline=``,
``on_miss=``), applied to the calls of :mod:`legato.engine.calls`.

Queue policies act on a component's waiting calls when one more arrives:

- ``"fifo"``: nothing (unbounded; the default);
- ``"latest"``: a newer item's call drops the waiting calls of older items of the same run;
- ``Fifo(n)``: past ``n`` waiting calls the oldest item's is dropped;
- ``Block(n)``: while ``n`` calls wait, the runs feeding it take no new items (their source is
  not pulled), until one starts.

A stage deadline acts on a call still running past its budget: the call is stopped (where it
can be) and each of its items gets what ``on_miss`` says: ``"skip"`` (the item is dropped,
reason ``"missed"``), ``"hold"`` (the stage's last good output in the run; skip when there is
none yet) or a value (used as the stage's output). Misses are counted per stage.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import TYPE_CHECKING, Any

from legato.engine.backend import split_value
from legato.engine.frames import Task
from legato.engine.handles import NodeDone
from legato.options import Block, Fifo

if TYPE_CHECKING:
    from legato.component import Component
    from legato.engine.calls import Calls
    from legato.engine.run import Run


class Policies:
    """The queue and miss policies of one engine's calls."""

    def __init__(self, calls: Calls) -> None:
        self.calls = calls
        self.s = calls.s
        self._holds: dict[Hashable, tuple[int, set[Run]]] = {}  # Block(n) groups that are full

    def __bool__(self) -> bool:
        return bool(self._holds)

    def enforce(self, component: Component, waiting: list[Task], key: Hashable) -> None:
        """Apply ``component``'s queue policy to its live waiting calls."""
        policy = component.options.queue
        if policy == "latest" and len(waiting) > 1:
            newest = max(waiting, key=lambda t: t.frame.item.seq).frame.item
            for task in waiting:
                item = task.frame.item
                if item is not newest and item.run is newest.run and item.seq < newest.seq:
                    self.s.drop_item(item, task.name, "replaced")
        elif isinstance(policy, Fifo) and len(waiting) > policy.size:
            waiting.sort(key=lambda t: t.frame.item.seq)
            for task in waiting[:len(waiting) - policy.size]:
                self.s.drop_item(task.frame.item, task.name, "queue_full")
        elif isinstance(policy, Block) and len(waiting) >= policy.size:
            runs = {task.frame.item.run for task in waiting}
            size, held = self._holds.get(key, (policy.size, set()))
            for run in runs - held:
                run.hold()
            self._holds[key] = (size, held | runs)

    def release_holds(self) -> None:
        """Block(n) groups that dropped below n let their runs take items again."""
        for key, (size, runs) in list(self._holds.items()):
            group = self.calls.blocked.get(key, [])
            live = sum(1 for _, pending in group if not pending.finished())
            if live < size:
                del self._holds[key]
                for run in runs:
                    run.release()

    def missed(self, call_id: int) -> None:
        """A call ran past its stage's ``deadline``: stop it; each of its items gets what the
        stage's ``on_miss`` says (see :func:`legato.component`)."""
        call = self.calls.call_of.get(call_id)
        tasks = self.calls.landed(call_id)
        if tasks is None or call is None:
            return
        self.calls.stop(call)
        policy = call.component.options.on_miss
        for task in tasks:
            self.miss(task, policy)

    def miss(self, task: Task, policy: Any) -> None:
        item = task.frame.item
        if item.finished:
            return
        run = item.run
        run.count_miss(task.node.id)
        if isinstance(policy, str) and policy == "hold":
            outputs = run.last_good.get(task.node.id)
            if outputs is None:  # nothing good yet to hold
                self.s.drop_item(item, task.name, "missed")
                return
        elif isinstance(policy, str) and policy == "skip":
            self.s.drop_item(item, task.name, "missed")
            return
        else:
            split = split_value(task.node.component, policy)  # type: ignore[arg-type]
            if isinstance(split, Exception):
                self.calls.task_failed(task, split, retry=False)
                return
            outputs = split
        if item.updates is not None:
            now = self.s.clock.now()
            item.updates.push(NodeDone(task.name, now, now, outputs))
        self.s.flow.node_done(task, outputs)
