"""Check, from a run's events, that every node ran exactly once per item, after its inputs.

The engine publishes ``NodeStarted`` before it hands a call to the backend and ``NodeFinished``
after the call's result is back, both on its own thread, so their positions in the event stream
order the real executions: if B's NodeStarted comes after A's NodeFinished, B began after A ended.

``verify(graph, events)`` walks the graph the way the engine runs it: every call node of a frame
has one start and one finish; a ``map`` node's element frames are numbered 0..n-1 and each runs
its whole body; a ``branch`` node runs exactly one side. A map or branch node "starts" with the
first call inside it and "finishes" with the last. Each node must start after every node it reads
from has finished. Finally no call may have run that the walk did not account for.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable

from legato.engine.events import Event, NodeFinished, NodeStarted
from legato.graph import Graph


class Trace:
    """Positions of NodeStarted / NodeFinished events of one item, by node path."""

    def __init__(self, events: Iterable[Event]) -> None:
        self.starts: dict[str, list[int]] = defaultdict(list)
        self.finishes: dict[str, list[int]] = defaultdict(list)
        for position, event in enumerate(events):
            if isinstance(event, NodeStarted):
                self.starts[event.node].append(position)
            elif isinstance(event, NodeFinished):
                self.finishes[event.node].append(position)
        self.visited: set[str] = set()

    def has_prefix(self, prefix: str) -> bool:
        return any(path.startswith(prefix) for path in self.starts)


Span = tuple[int, int] | None  # (first start, last finish) of a node, None if nothing ran


def _merge(spans: Iterable[Span]) -> Span:
    real = [s for s in spans if s is not None]
    if not real:
        return None
    return min(s[0] for s in real), max(s[1] for s in real)


def _frame(graph: Graph, path: str, trace: Trace) -> Span:
    spans: dict[str, Span] = {}
    for node_id, node in graph.nodes.items():  # creation order is a topological order
        node_path = path + node_id
        if node.kind == "call":
            starts, finishes = trace.starts.get(node_path, []), trace.finishes.get(node_path, [])
            assert len(starts) == 1, f"{node_path} started {len(starts)} times, expected once"
            assert len(finishes) == 1, f"{node_path} finished {len(finishes)} times"
            assert starts[0] < finishes[0]
            trace.visited.add(node_path)
            span: Span = (starts[0], finishes[0])
        elif node.kind == "map":
            assert node.body is not None
            children = []
            index = 0
            while trace.has_prefix(f"{node_path}[{index}]/"):
                children.append(_frame(node.body, f"{node_path}[{index}]/", trace))
                index += 1
            pattern = re.compile(re.escape(node_path) + r"\[(\d+)\]/")
            stray = {m.group(1) for p in trace.starts if (m := pattern.match(p))}
            assert stray == {str(i) for i in range(index)}, f"{node_path}: gap in elements"
            span = _merge(children)
        else:
            sides = [(name, sub) for name, sub in (("then", node.body), ("else", node.orelse))
                     if sub is not None and trace.has_prefix(f"{node_path}/{name}/")]
            assert len(sides) <= 1, f"{node_path}: both sides of a branch ran"
            span = _frame(sides[0][1], f"{node_path}/{sides[0][0]}/", trace) if sides else None
        for upstream in node.upstream():
            before = spans[upstream]
            if span is not None and before is not None:
                assert span[0] > before[1], (
                    f"{node_path} started before its input {path + upstream} finished")
        spans[node_id] = span
    return _merge(spans.values())


def verify(graph: Graph, events: Iterable[Event], *, items: int) -> None:
    """Assert exactly-once and dependency order for each of ``items`` items of one run."""
    by_item: dict[int, list[Event]] = defaultdict(list)
    for event in events:
        if isinstance(event, NodeStarted | NodeFinished):
            by_item[event.item].append(event)
    assert set(by_item) <= set(range(items)), f"events for unknown items: {sorted(by_item)}"
    for index in range(items):
        trace = Trace(by_item[index])
        _frame(graph, "", trace)
        extra = set(trace.starts) - trace.visited
        assert not extra, f"item {index}: calls ran that the graph does not hold: {extra}"
