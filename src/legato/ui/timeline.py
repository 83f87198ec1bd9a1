"""A run's timeline for the browser: every node execution as columns, not objects.

One query reads the run's node rows ordered by start; one pass turns them into parallel
columns (``lane``, ``node``, ``item``, ``attempt``, ``start``, ``end``, ``status``), with lanes
and node paths as small lookup lists the columns index into. Twenty thousand executions make
about 0.5 MB of JSON, which a canvas draws at once; no Python object per row is built beyond
the column values.

Lanes (``aggregate=False``): one per worker (``thread-3``, ``process-1234``, a Ray actor); a
row without a worker goes to its executor's lane (``inline``, ``async``), a cache hit to
``cache``. A worker whose executions overlap in time (an asyncio worker runs many calls at
once) gets as many lanes as it has calls in flight at its busiest (``worker``, ``worker #2``,
...), each execution on the first lane free at its start, as ``legato timeline`` does. With
``aggregate=True`` (a long ``map``) there is one lane per node path and bars overlap freely.

Status codes: 0 ok, 1 failed (for good), 2 failed then retried, 3 cached.
"""

from __future__ import annotations

import heapq
import re
from typing import Any

import sqlalchemy as sa

from legato.store import schema
from legato.store.lineage import path_of
from legato.ui.readonly import ReadOnlyStore

STATUS_CODES = {"ok": 0, "failed": 1, "retried": 2, "cached": 3}
_NUMBER = re.compile(r"(\d+)")


def _natural(label: str) -> tuple[Any, ...]:
    return tuple(int(part) if part.isdigit() else part for part in _NUMBER.split(label))


def timeline(store: ReadOnlyStore, run_id: str, *, started: float,
             finished: float | None, aggregate: bool = False) -> dict[str, Any]:
    """``GET /api/runs/{id}/timeline`` (see the module docstring); ``started`` and
    ``finished``: the run's, the time axis's default ends."""
    nodes = schema.nodes
    query = (sa.select(nodes.c.worker, nodes.c.executor, nodes.c.node, nodes.c.item,
                       nodes.c.attempt, nodes.c.start, nodes.c.end, nodes.c.status)
             .where(nodes.c.run_id == run_id).order_by(nodes.c.start, nodes.c.id))
    with store.reading() as connection:
        rows = connection.execute(query).all()
    t0 = min(started, rows[0][5]) if rows else started
    t1 = max([finished or t0, *(row[6] for row in rows[-1:])]) if rows else (finished or t0)
    node_index: dict[str, int] = {}
    node_col: list[int] = []
    item_col: list[int] = []
    attempt_col: list[int] = []
    start_col: list[float] = []
    end_col: list[float] = []
    status_col: list[int] = []
    keys: list[str] = []  # each row's lane key: a worker (or executor), or a node path
    paths: dict[str, str] = {}
    for worker, executor, node, item, attempt, start, end, status in rows:
        path = paths.get(node)
        if path is None:
            path = paths[node] = path_of(node)
        index = node_index.get(path)
        if index is None:
            index = node_index[path] = len(node_index)
        node_col.append(index)
        item_col.append(item)
        attempt_col.append(attempt)
        start_col.append(round(start - t0, 6))
        end_col.append(round(end - t0, 6))
        status_col.append(STATUS_CODES.get(status, 1))
        if aggregate:
            keys.append(path)
        else:
            keys.append(worker or executor or ("cache" if status == "cached" else "(none)"))
        t1 = max(t1, end)
    node_names = list(node_index)
    if aggregate:
        lanes = sorted(node_index, key=_natural)
        order = {name: number for number, name in enumerate(lanes)}
        lane_col = [order[key] for key in keys]
    else:
        lanes, lane_col = _packed(keys, node_col, start_col, end_col)
    return {
        "t0": t0, "t1": t1, "lanes": lanes, "nodes": node_names,
        "bars": {"lane": lane_col, "node": node_col, "item": item_col,
                 "attempt": attempt_col, "start": start_col, "end": end_col,
                 "status": status_col},
    }


def _packed(keys: list[str], nodes: list[int], starts: list[float], ends: list[float]
            ) -> tuple[list[str], list[int]]:
    """Each row's lane: its worker's, split into ``worker #2``... where its executions
    overlap (rows come by start, so the first free lane is the one that ended earliest).
    Rows of one batched call (same worker, node and times) share a lane."""
    free: dict[str, list[tuple[float, int]]] = {}  # worker -> heap of (ends at, sub-lane)
    count: dict[str, int] = {}
    chosen: list[tuple[str, int]] = []
    previous: tuple[str, int, float, float] | None = None
    for key, node, start, end in zip(keys, nodes, starts, ends, strict=True):
        if previous == (key, node, start, end):
            chosen.append(chosen[-1])  # another member of the same batch call
            continue
        previous = (key, node, start, end)
        heap = free.setdefault(key, [])
        if heap and heap[0][0] <= start:
            _, sub = heapq.heappop(heap)
        else:
            sub = count.get(key, 0)
            count[key] = sub + 1
        heapq.heappush(heap, (end, sub))
        chosen.append((key, sub))
    names = sorted(count, key=lambda k: (k in ("cache", "(none)"), _natural(k)))
    labels: list[str] = []
    number: dict[tuple[str, int], int] = {}
    for key in names:
        for sub in range(count[key]):
            number[(key, sub)] = len(labels)
            labels.append(key if sub == 0 else f"{key} #{sub + 1}")
    return labels, [number[pair] for pair in chosen]


__all__ = ["STATUS_CODES", "timeline"]
