"""What a run is made of: items, frames (one graph execution each), tasks, and per-graph plans.

Plain data and pure helpers; the loop in :mod:`legato.engine.run` moves them along.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field
from typing import Any

from legato import types as port_types
from legato.component import Component, Instance
from legato.engine.instances import instance_key
from legato.errors import InputError
from legato.graph import Const, Graph, Node, Ref


@dataclass(frozen=True)
class Failure:
    """Stands in for a failed item's result in ``map(..., on_error="collect")``."""

    index: int
    error: BaseException
    inputs: Mapping[str, Any]

    def __repr__(self) -> str:
        return f"Failure(index={self.index}, error={self.error!r})"


@dataclass(frozen=True)
class RunStats:
    """A snapshot of a run's progress: items done, failed (deadlines included), dropped and
    cancelled (not recorded as an outcome: a resume computes them); node calls running and
    queued now; drops per component by reason (``{"plan": {"replaced": 3}}``); deadline
    misses per stage; each stage's recent call latency as (p50, p99) seconds."""

    done: int
    failed: int
    running: int
    queued: int
    dropped: int = 0
    drops: Mapping[str, Mapping[str, int]] = field(default_factory=dict)
    submitted: int = 0
    cancelled: int = 0
    misses: Mapping[str, int] = field(default_factory=dict)
    latency: Mapping[str, tuple[float, float]] = field(default_factory=dict)


# ---------------------------------------------------------------------------------------------
# Per-graph plan (computed once, shared by every frame of that graph)


class Plan:
    """What the loop needs about a graph, precomputed: counts, successors, ranks, bindings."""

    __slots__ = ("bindings", "downstream", "graph", "keys", "rank", "roots", "upstream_count")

    keys: dict[str, str]
    downstream: dict[str, list[str]]
    upstream_count: dict[str, int]
    roots: list[str]
    bindings: dict[str, tuple[tuple[str, Ref | Const], ...]]

    def __init__(self, graph: Graph, estimate: Callable[[str], float] | None = None,
                 *, like: Plan | None = None) -> None:
        """``estimate(key)`` gives a node's expected duration, by its key in ``keys``. ``like``:
        an earlier plan of the same graph, whose structure (everything but the ranks) is
        shared rather than worked out again."""
        self.graph = graph
        if like is not None and like.graph is graph:
            self.keys, self.downstream = like.keys, like.downstream
            self.upstream_count, self.roots = like.upstream_count, like.roots
            self.bindings = like.bindings
        else:
            self.keys = {node_id: f"{graph.name}/{node_id}" for node_id in graph.nodes}
            self.downstream = graph.downstream()
            self.upstream_count = {nid: len(node.upstream())
                                   for nid, node in graph.nodes.items()}
            self.roots = [nid for nid, count in self.upstream_count.items() if count == 0]
            self.bindings = {nid: tuple(node.inputs.items())
                             for nid, node in graph.nodes.items()}
        keys = self.keys
        cost = None if estimate is None else (lambda node_id: estimate(keys[node_id]))
        self.rank = ranks(graph, cost, self.downstream)


def ranks(
    graph: Graph,
    cost: Callable[[str], float] | None = None,
    downstream: dict[str, list[str]] | None = None,
) -> dict[str, float]:
    """Critical-path rank of each node: the estimated work on the longest path from it to the
    end of the graph, itself included. ``cost(node_id)`` estimates a node (default: 1 each, so
    the rank counts nodes); ``downstream``: the graph's, if already worked out."""
    if downstream is None:
        downstream = graph.downstream()
    rank: dict[str, float] = {}
    for node_id in reversed(list(graph.nodes)):  # creation order is topological
        own = cost(node_id) if cost is not None else 1.0
        rank[node_id] = own + max((rank[d] for d in downstream[node_id]), default=0.0)
    return rank


# ---------------------------------------------------------------------------------------------
# Items, frames, tasks


class Item:
    """One top-level item: its inputs, and its result or error once finished.

    ``run`` is the run it belongs to (items of many runs share the engine's loop and batches);
    ``priority`` and ``seq`` (global submission order: the item's age) order its calls;
    ``born`` is when its data was made (submission, or a stream source's timestamp), for
    ``max_age``; ``deadline`` (clock time) or None; ``calls``: ids of its calls in flight.
    """

    __slots__ = ("born", "calls", "context", "deadline", "error", "failed", "finished", "handle",
                 "index", "inputs", "limit", "priority", "result", "run", "seq", "updates")

    def __init__(self, index: int, inputs: Mapping[str, Any], run: Any = None, *,
                 priority: int = 0, seq: int = 0, born: float = 0.0,
                 deadline: float | None = None, limit: float | None = None,
                 handle: Any = None) -> None:
        self.index = index
        self.inputs = inputs
        self.run = run
        self.priority = priority
        self.seq = seq
        self.born = born
        self.deadline = deadline
        self.limit = limit  # the deadline in seconds from submission
        self.handle = handle
        self.calls: set[int] | None = None
        self.updates: Any = None  # an Updates stream, when the submitter asked for one
        self.context: Mapping[str, str] | None = None  # what the submitter passed along
        self.failed = False
        self.finished = False
        self.result: Any = None
        self.error: BaseException | None = None


class Frame:
    """One execution of one graph with concrete inputs (an item's, or a map element's)."""

    __slots__ = ("fanouts", "inputs", "item", "parent", "path", "plan", "remaining", "values",
                 "waiting")

    def __init__(
        self,
        plan: Plan,
        inputs: Mapping[str, Any],
        item: Item,
        parent: tuple[Frame, str, int] | None = None,
        path: str = "",
    ) -> None:
        self.plan = plan
        self.inputs = inputs
        self.item = item
        self.parent = parent
        self.path = path
        self.values: dict[str, dict[str, Any]] = {}
        self.waiting = dict(plan.upstream_count)
        self.remaining = len(plan.graph.nodes)
        self.fanouts: dict[str, Any] | None = None  # its running map, branch and loop nodes


class Task:
    """One node of one frame, across its attempts."""

    __slots__ = ("attempt", "cache_key", "frame", "node", "queued")

    def __init__(self, frame: Frame, node: Node) -> None:
        self.frame = frame
        self.node = node
        self.attempt = 1
        self.queued: float | None = None  # when it last became ready (set only when observed)
        self.cache_key: str | None = None  # where its outputs are to be cached

    @property
    def name(self) -> str:
        return self.frame.path + self.node.id

    @property
    def component_name(self) -> str:
        component = self.node.component
        return component.name if component is not None else ""


class Fanout:
    """A running map or branch node: child frames and the results gathered so far."""

    __slots__ = ("remaining", "results", "task")

    def __init__(self, task: Task, size: int) -> None:
        self.task = task
        self.remaining = size
        self.results: list[dict[str, Any] | None] = [None] * size


class PendingBatch:
    """Calls waiting to be sent together to one batched component."""

    __slots__ = ("arrival", "flush_at", "flush_reason", "generation", "last_arrival", "mixed",
                 "tasks", "waiting")

    def __init__(self) -> None:
        self.flush_at: float | None = None  # when a timer will flush it (the earliest set)
        self.flush_reason = "wait"
        self.mixed = False  # its calls' items have different priorities (then they are sorted)
        self.tasks: list[tuple[Task, dict[str, Any]]] = []
        self.generation = 0
        self.waiting = False  # flushed, but no instance was free: keeps growing until one is
        self.last_arrival: float | None = None
        self.arrival = 0.0  # moving average of the time between calls (for max_wait_ms="auto")


def resolve(frame: Frame, source: Ref | Const) -> Any:
    if source.__class__ is Const:
        return source.value
    if source.node is None:  # type: ignore[union-attr]
        return frame.inputs[source.port]  # type: ignore[union-attr]
    return frame.values[source.node][source.port]  # type: ignore[union-attr]


def bind_inputs(graph: Graph, raw: Mapping[str, Any], index: int | None = None) -> dict[str, Any]:
    """Check and coerce one item's inputs against the graph's input ports.

    Raises :class:`InputError` naming every missing, unknown or ill-typed input.
    """
    if not isinstance(raw, Mapping):
        raise InputError(f"inputs must be a mapping of input name to value, got "
                         f"{type(raw).__name__}", item=index)
    problems: list[str] = []
    bound: dict[str, Any] = {}
    names = [port.name for port in graph.inputs]
    for key in raw:
        if key not in names:
            problems.append(f"unknown input '{key}'; '{graph.name}' takes: "
                            + ", ".join(str(p) for p in graph.inputs))
    for port in graph.inputs:
        if port.name in raw:
            try:
                bound[port.name] = port_types.coerce(raw[port.name], port.annotation)
            except ValueError as exc:
                problems.append(f"input '{port.name}' {exc}")
        elif port.required:
            problems.append(f"missing input '{port}'")
        else:
            bound[port.name] = port.default
    if problems:
        raise InputError("; ".join(problems), item=index)
    return bound


def wait_group(target: Component | Instance) -> Hashable:
    """Calls that wait for the same thing: the same instance, or the same component."""
    if isinstance(target, Instance):
        return ("instance", instance_key(target))
    return ("call", target.uid)


_ARRIVALS = itertools.count()  # the order calls came to wait in (ties in priority)


class PendingCall:
    """A call waiting for admission: its task(s), target and arguments (or batch)."""

    __slots__ = ("batch", "kwargs", "seq", "target", "tasks")

    def __init__(
        self,
        tasks: Task | list[Task],
        target: Component | Instance,
        kwargs: dict[str, Any] | None,
        batch: list[dict[str, Any]] | None,
    ) -> None:
        self.tasks = tasks
        self.target = target
        self.kwargs = kwargs
        self.batch = batch
        self.seq = next(_ARRIVALS)

    @property
    def component(self) -> Component:
        return self.target.component

    def first(self) -> Task:
        return self.tasks[0] if isinstance(self.tasks, list) else self.tasks

    def priority(self) -> tuple[int, int, float, int]:
        """Admission order: the item's priority tier, then its age, then critical-path rank."""
        task = self.first()
        item = task.frame.item
        return (-item.priority, item.seq, -task.frame.plan.rank[task.node.id], self.seq)

    def finished(self) -> bool:
        if isinstance(self.tasks, list):
            return all(task.frame.item.finished for task in self.tasks)
        return self.tasks.frame.item.finished

    def group(self) -> Hashable:
        return wait_group(self.target)

    def __lt__(self, other: PendingCall) -> bool:
        return self.seq < other.seq


# ---------------------------------------------------------------------------------------------
# The run
