"""Task graphs as plain data: the STG files, the B3 layered DAG, bounds and list scheduling.

A :class:`TaskGraph` is tasks with a cost and their predecessors, ids in topological order.
Everything here is a pure function of that data; running a graph on a system is in
``packing.py``.

``list_schedule`` is the classic non-delay list scheduler on P identical slots, simulated
exactly: whenever a slot is free and a task is ready, the ready task of highest priority starts.
It is the yardstick for the engine's own policy in simulated time.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path


@dataclass(frozen=True)
class TaskGraph:
    """Tasks ``0..n-1``: ``costs[i]`` time units, started only after every ``preds[i]`` ends."""

    name: str
    costs: tuple[float, ...]
    preds: tuple[tuple[int, ...], ...]

    def __post_init__(self) -> None:
        for task, preds in enumerate(self.preds):
            if any(p >= task for p in preds):
                raise ValueError(f"{self.name}: task {task} has a predecessor with a later id")

    def __len__(self) -> int:
        return len(self.costs)

    @cached_property
    def succs(self) -> tuple[tuple[int, ...], ...]:
        out: list[list[int]] = [[] for _ in self.costs]
        for task, preds in enumerate(self.preds):
            for p in preds:
                out[p].append(task)
        return tuple(tuple(s) for s in out)

    @cached_property
    def blevel(self) -> tuple[float, ...]:
        """Each task's cost plus the costliest path after it (the critical-path priority)."""
        level = [0.0] * len(self.costs)
        for task in reversed(range(len(self.costs))):
            level[task] = self.costs[task] + max((level[s] for s in self.succs[task]), default=0)
        return tuple(level)

    @property
    def work(self) -> float:
        return sum(self.costs)

    @property
    def critical_path(self) -> float:
        return max(self.blevel, default=0.0)

    def lower_bound(self, slots: int) -> float:
        """No schedule on ``slots`` slots is shorter than this: max(critical path, work/slots)."""
        return max(self.critical_path, self.work / slots)

    @property
    def sinks(self) -> list[int]:
        return [task for task, succs in enumerate(self.succs) if not succs]


def read_stg(path: Path) -> TaskGraph:
    """A Standard Task Graph Set file, without its two dummy tasks (entry 0 and exit n+1)."""
    lines = [line.split() for line in path.read_text().splitlines()
             if line.strip() and not line.lstrip().startswith("#")]
    count = int(lines[0][0])
    rows = lines[2:count + 2]  # lines[1] is the dummy entry task
    costs = tuple(float(row[1]) for row in rows)
    preds = tuple(tuple(int(p) - 1 for p in row[3:3 + int(row[2])] if int(p) != 0) for row in rows)
    name = f"{path.parent.name}/{path.name}"
    return TaskGraph(name, costs, preds)


def read_optimal(path: Path) -> dict[tuple[str, int], float]:
    """``optimal.csv``: (graph, processors) -> published optimal schedule length."""
    import csv

    with path.open() as f:
        return {(row["graph"], int(row["processors"])): float(row["optimal_length"])
                for row in csv.DictReader(f)}


def layered(
    *, layers: int = 5, width: int = 40, low: float = 5, high: float = 50, fan_in: int = 3,
    seed: int = 3,
) -> TaskGraph:
    """B3's DAG: ``layers`` x ``width`` tasks of ``low``..``high`` units (uniform, whole units);
    each task after the first layer waits for ``fan_in`` random tasks of the layer before."""
    rng = random.Random(seed)
    costs: list[float] = []
    preds: list[tuple[int, ...]] = []
    for layer in range(layers):
        before = range((layer - 1) * width, layer * width)
        for _ in range(width):
            costs.append(float(rng.randint(int(low), int(high))))
            preds.append(tuple(sorted(rng.sample(before, fan_in))) if layer else ())
    return TaskGraph(f"layered {layers}x{width}", tuple(costs), tuple(preds))


Priority = Callable[[TaskGraph], Sequence[float]]
"""Higher goes first; ties go to the task that became ready first, then the lower id."""


def highest_level_first(graph: TaskGraph) -> Sequence[float]:
    return graph.blevel


def first_ready_first(graph: TaskGraph) -> Sequence[float]:
    return [0.0] * len(graph)


def list_schedule(graph: TaskGraph, slots: int, priority: Priority) -> float:
    """The makespan of non-delay list scheduling of ``graph`` on ``slots`` identical slots."""
    rank = priority(graph)
    waiting = [len(p) for p in graph.preds]
    ready: list[tuple[float, int, int]] = []
    arrivals = 0
    for task, count in enumerate(waiting):
        if count == 0:
            heapq.heappush(ready, (-rank[task], arrivals, task))
            arrivals += 1
    running: list[tuple[float, int]] = []
    now = 0.0
    while ready or running:
        while ready and len(running) < slots:
            task = heapq.heappop(ready)[2]
            heapq.heappush(running, (now + graph.costs[task], task))
        now = running[0][0]
        while running and running[0][0] == now:
            task = heapq.heappop(running)[1]
            for succ in graph.succs[task]:
                waiting[succ] -= 1
                if waiting[succ] == 0:
                    heapq.heappush(ready, (-rank[succ], arrivals, succ))
                    arrivals += 1
    return now


def peak_overlap(spans: Sequence[tuple[float, float]]) -> int:
    """The most spans running at one instant (an end and a start at the same time don't
    overlap)."""
    edges = sorted([(end, -1) for _, end in spans] + [(start, 1) for start, _ in spans])
    peak = current = 0
    for _, step in edges:
        current += step
        peak = max(peak, current)
    return peak
