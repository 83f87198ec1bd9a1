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
    lane = sa.func.coalesce(sa.func.nullif(nodes.c.worker, ""),
                            sa.func.nullif(nodes.c.executor, ""),
                            sa.case((nodes.c.status == "cached", "cache"), else_="(none)"))
    # times relative to the run's start, rounded to microseconds, by the database
    query = (sa.select(lane, nodes.c.node, nodes.c.item, nodes.c.attempt,
                       _micro(store, nodes.c.start - started),
                       _micro(store, nodes.c.end - started), nodes.c.status)
             .where(nodes.c.run_id == run_id).order_by(nodes.c.start, nodes.c.id))
    with store.reading() as connection:
        rows = _tuples(connection, query)
    t0, t1 = started, finished or started
    if not rows:
        return {"t0": t0, "t1": t1, "lanes": [], "nodes": [],
                "bars": {key: [] for key in ("lane", "node", "item", "attempt", "start", "end",
                                             "status")}}
    keys, executions, items, attempts, starts, ends, statuses = (
        list(column) for column in zip(*rows, strict=True))
    if starts[0] < 0:  # a call recorded as starting before its run: the axis starts there
        shift = starts[0]
        t0 += shift
        starts = [round(x - shift, 6) for x in starts]
        ends = [round(x - shift, 6) for x in ends]
    t1 = max(t1, t0 + max(ends))
    paths = {execution: path_of(execution) for execution in set(executions)}
    names = sorted(set(paths.values()), key=_natural)
    index = {name: number for number, name in enumerate(names)}
    by_execution = {execution: index[path] for execution, path in paths.items()}
    node_col = list(map(by_execution.__getitem__, executions))
    status_col = [STATUS_CODES.get(status, 1) for status in statuses]
    if aggregate:
        lanes, lane_col = names, node_col
    else:
        lanes, lane_col = _packed(keys, node_col, starts, ends)
    return {
        "t0": t0, "t1": t1, "lanes": lanes, "nodes": names,
        "bars": {"lane": lane_col, "node": node_col, "item": items, "attempt": attempts,
                 "start": starts, "end": ends, "status": status_col},
    }


def _tuples(connection: sa.Connection, query: sa.Select[Any]) -> list[tuple[Any, ...]]:
    """The query's rows as the driver's plain tuples (no SQLAlchemy row per execution)."""
    compiled = query.compile(dialect=connection.dialect)
    params: Any = compiled.construct_params()
    if compiled.positional:
        params = tuple(params[name] for name in compiled.positiontup or ())
    cursor = connection.connection.cursor()
    try:
        cursor.execute(str(compiled), params)
        return list(cursor.fetchall())
    finally:
        cursor.close()


def _micro(store: ReadOnlyStore, seconds: sa.ColumnElement[Any]) -> sa.ColumnElement[Any]:
    """``seconds`` rounded to microseconds, as a float (PostgreSQL rounds numerics only)."""
    if store.dialect == "sqlite":
        return sa.func.round(seconds, 6)
    return sa.cast(sa.func.round(sa.cast(seconds, sa.Numeric), 6), sa.Float)


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
        heap = free.get(key)
        if heap is None:
            heap = free[key] = []
        if heap and heap[0][0] <= start:
            sub = heapq.heapreplace(heap, (end, heap[0][1]))[1]
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
