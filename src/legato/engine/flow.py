"""How an item's graph moves along: frames started, nodes done, map and branch fan-outs.

Pure bookkeeping on the loop's thread: a node whose inputs are all produced is handed to the
scheduler's ready heap; a finished frame either finishes its item (the top frame) or reports to
the map or branch node that started it. Calls themselves are :mod:`legato.engine.calls`'.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from legato.component import join_outputs
from legato.engine.frames import Fanout, Frame, Item, Task, bind_inputs, resolve
from legato.engine.memo import Reuse
from legato.errors import InputError, RunError
from legato.outputs import output_error

if TYPE_CHECKING:
    from legato.engine.loop import Scheduler


class Flow:
    """Frames and fan-outs of every item of one engine."""

    def __init__(self, scheduler: Scheduler) -> None:
        self.s = scheduler

    def start_item(self, item: Item) -> None:
        run = item.run
        if run.memo is not None:
            recorded = run.memo.item(item.index)
            if recorded is not None:  # a resumed run's finished item: its result, not its work
                item.result = recorded.value
                self.s.finish_item(item, reused=True)
                return
        try:
            inputs = bind_inputs(run.graph, item.inputs, item.index)
        except InputError as exc:
            self.s.fail_item(item, exc)
            return
        item.inputs = inputs
        self.start_frame(Frame(self.s.allocator.plan(run.graph), inputs, item))

    def start_frame(self, frame: Frame) -> None:
        if frame.remaining == 0:
            self.frame_done(frame)
            return
        nodes = frame.plan.graph.nodes
        for node_id in frame.plan.roots:
            self.s.make_ready(Task(frame, nodes[node_id]))

    def start(self, task: Task) -> None:
        """Start a ready node of a live item."""
        frame = task.frame
        if frame.item.finished:
            return
        frame.item.run.note_started(task)
        node = task.node
        kwargs = {port: resolve(frame, src) for port, src in frame.plan.bindings[node.id]}
        if node.kind == "call":
            self.s.calls.start_call(task, kwargs)
        elif node.kind == "map":
            self._start_map(task, kwargs)
        elif node.kind == "loop":
            self._start_loop(task, kwargs)
        else:
            self._start_branch(task, kwargs)

    def reuse(self, task: Task, found: Reuse) -> None:
        task.frame.item.run.cache_hit(task, found)
        self.node_done(task, found.value)

    def node_done(self, task: Task, outputs: dict[str, Any]) -> None:
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
                self.s.make_ready(Task(frame, nodes[successor]))
        if frame.remaining == 0:
            self.frame_done(frame)

    def frame_done(self, frame: Frame) -> None:
        graph = frame.plan.graph
        outputs = {name: resolve(frame, src) for name, src in graph.outputs.items()}
        if frame.parent is None:
            self._item_done(frame.item, outputs)
            return
        parent, node_id, index = frame.parent
        fanout = parent.fanouts.get(node_id) if parent.fanouts else None
        if fanout is None:
            return
        if isinstance(fanout, Rounds):
            self._round_step(parent, node_id, fanout, outputs)
            return
        fanout.results[index] = outputs
        fanout.remaining -= 1
        if fanout.remaining == 0:
            del parent.fanouts[node_id]  # type: ignore[union-attr]
            task = fanout.task
            if task.node.kind == "map":
                values = self.s.values
                ports = [port.name for port in task.node.outputs]
                gathered = {p: values.gather([r[p] for r in fanout.results if r is not None])
                            for p in ports}
                self.node_done(task, gathered)
            else:
                self.node_done(task, fanout.results[0] or {})

    def _item_done(self, item: Item, outputs: dict[str, Any]) -> None:
        graph = item.run.graph
        try:
            fetched = self.s.values.fetch(outputs)
        except Exception as exc:  # e.g. an object lost with the node that held it
            error = RunError(f"could not fetch the outputs of item {item.index}: {exc}")
            error.__cause__ = exc
            self.s.fail_item(item, error)
            return
        if item.run.check_outputs:
            wrong = output_error(graph, fetched, item=item.index)
            if wrong is not None:  # a value that breaks the declared type (legato.outputs)
                self.s.fail_item(item, wrong)
                return
        item.result = join_outputs(graph.output_annotation, fetched)
        self.s.finish_item(item)

    def _start_map(self, task: Task, kwargs: dict[str, Any]) -> None:
        body = task.node.body
        assert body is not None
        try:
            elements = self.s.values.elements(kwargs.pop("items"))
        except Exception as exc:  # not a list (TypeError), or a value that could not be read
            self.s.calls.task_failed(task, exc, retry=False)
            return
        if not elements:
            self.node_done(task, {port.name: [] for port in task.node.outputs})
            return
        first = body.inputs[0].name
        frame = task.frame
        _fan_out(frame, task.node.id, Fanout(task, len(elements)))
        plan = self.s.allocator.plan(body)
        for index, element in enumerate(elements):
            inputs = {first: element, **kwargs}
            child = Frame(plan, inputs, frame.item, (frame, task.node.id, index),
                          f"{task.name}[{index}]/")
            self.start_frame(child)

    # -- loops: body, then until, round after round ------------------------------------------

    def _start_loop(self, task: Task, kwargs: dict[str, Any]) -> None:
        extras = {k[len("body."):]: v for k, v in kwargs.items() if k.startswith("body.")}
        rounds = Rounds(task, kwargs["state"], int(kwargs["max_iterations"]), extras)
        _fan_out(task.frame, task.node.id, rounds)
        self._run_body(rounds)

    def _run_body(self, rounds: Rounds) -> None:
        task = rounds.task
        body = task.node.body
        assert body is not None
        rounds.testing = False
        inputs = {body.inputs[0].name: rounds.state, **rounds.extras}
        self.start_frame(Frame(self.s.allocator.plan(body), inputs, task.frame.item,
                               (task.frame, task.node.id, rounds.round),
                               f"{task.name}[{rounds.round}]/"))

    def _round_step(self, parent: Frame, node_id: str, rounds: Rounds,
                    outputs: dict[str, Any]) -> None:
        task = rounds.task
        if not rounds.testing:  # the body gave the new state: ask until
            (rounds.state,) = outputs.values()
            until = task.node.orelse
            assert until is not None
            rounds.testing = True
            self.start_frame(Frame(self.s.allocator.plan(until),
                                   {until.inputs[0].name: rounds.state}, task.frame.item,
                                   (parent, node_id, rounds.round),
                                   f"{task.name}[{rounds.round}]/until/"))
            return
        try:
            (said,) = self.s.values.fetch(outputs).values()
        except Exception as exc:
            self.s.calls.task_failed(task, exc, retry=False)
            return
        rounds.round += 1
        if said or rounds.round >= rounds.limit:
            del parent.fanouts[node_id]  # type: ignore[union-attr]
            self.node_done(task, {task.node.outputs[0].name: rounds.state})
        else:
            self._run_body(rounds)

    def _start_branch(self, task: Task, kwargs: dict[str, Any]) -> None:
        node = task.node
        try:
            condition = self.s.values.fetch({"condition": kwargs.get("condition")})["condition"]
        except Exception as exc:
            self.s.calls.task_failed(task, exc, retry=False)
            return
        chosen, prefix = (node.body, "then.") if condition else (node.orelse, "else.")
        if chosen is None:
            self.node_done(task, {port.name: None for port in node.outputs})
            return
        inputs = {k[len(prefix):]: v for k, v in kwargs.items() if k.startswith(prefix)}
        frame = task.frame
        _fan_out(frame, node.id, Fanout(task, 1))
        path = f"{task.name}/{'then' if prefix == 'then.' else 'else'}/"
        self.start_frame(Frame(self.s.allocator.plan(chosen), inputs, frame.item,
                               (frame, node.id, 0), path))


class Rounds:
    """A running loop node: its round, its state, and whether the body or ``until`` runs."""

    __slots__ = ("extras", "limit", "round", "state", "task", "testing")

    def __init__(self, task: Task, state: Any, limit: int, extras: dict[str, Any]) -> None:
        self.task = task
        self.state = state
        self.limit = limit
        self.extras = extras
        self.round = 0
        self.testing = False  # False: the body runs; True: ``until`` runs on its new state


def _fan_out(frame: Frame, node_id: str, fanout: Fanout | Rounds) -> None:
    if frame.fanouts is None:
        frame.fanouts = {}
    frame.fanouts[node_id] = fanout
