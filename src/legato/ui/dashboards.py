"""The service and stream dashboards of a recorded run, computed from the store.

A run that is not live in this process (a service that stopped, a stream recorded by another
process) is summed up from its rows: an item's latency is its last node execution's end minus
its first's queued time (or start), and its start is that first time; the rate is items per
second over the run's span, and the series cuts that span into :data:`BUCKETS` buckets (at
least a second each). Batch sizes come from ``nodes.batch`` (revision 0004); a service's
responses by HTTP status from ``options["service"]``, a stream's counters from
``options["stream"]`` (its :class:`~legato.streaming.StreamStats`). The live numbers of a run in
this process come from :mod:`legato.ui.live` instead, in the same shapes.
"""

from __future__ import annotations

import collections
import itertools
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa

from legato.store import schema
from legato.store.lineage import path_of
from legato.ui.readonly import ReadOnlyStore
from legato.ui.stats import quantiles

BUCKETS = 120


def _items(store: ReadOnlyStore, run_id: str) -> list[tuple[float, float]]:
    """Each item's (first queued or start, last end), by first time."""
    nodes = schema.nodes
    first = sa.func.min(sa.func.coalesce(nodes.c.queued, nodes.c.start))
    query = (sa.select(first, sa.func.max(nodes.c.end)).where(nodes.c.run_id == run_id)
             .group_by(nodes.c.item).order_by(first))
    with store.reading() as connection:
        return [(float(a), float(b)) for a, b in connection.execute(query).all()]


def _batch_sizes(store: ReadOnlyStore, run_id: str) -> dict[str, int]:
    if not store.has("nodes", "batch"):
        return {}
    nodes = schema.nodes
    batch = store.column(nodes, "batch")
    query = (sa.select(batch, sa.func.count()).where(nodes.c.run_id == run_id,
                                                      batch.is_not(None)).group_by(batch))
    with store.reading() as connection:
        rows = connection.execute(query).all()
    return {str(size): max(1, round(count / size)) for size, count in sorted(rows) if size}


def _buckets(span: tuple[float, float]) -> tuple[float, float, int]:
    start, end = span
    width = max(1.0, (end - start) / BUCKETS)
    return start, width, int((end - start) // width) + 1


def service(store: ReadOnlyStore, run: Mapping[str, Any]) -> dict[str, Any]:
    """``GET /api/runs/{id}/service`` for a run not live here (see the module docstring)."""
    spans = _items(store, run["id"])
    latencies = [end - begin for begin, end in spans]
    p50, p99 = quantiles(latencies, 0.5, 0.99)
    series: list[dict[str, Any]] = []
    window = 0.0
    rate = 0.0
    if spans:
        begin = spans[0][0]
        end = max(finish for _, finish in spans)
        window = round(max(end - begin, 1e-9), 6)
        rate = round(len(spans) / max(end - begin, 1.0), 3)
        start, width, count = _buckets((begin, end))
        grouped: dict[int, list[float]] = collections.defaultdict(list)
        for first, last in spans:
            grouped[int((last - start) // width)].append(last - first)
        for number in range(count):
            found = grouped.get(number, [])
            b50, b99 = quantiles(found, 0.5, 0.99)
            series.append({"t": round(start + number * width, 3),
                           "rate": round(len(found) / width, 3), "p50": b50, "p99": b99,
                           "queue_depth": None})
    return {"live": False, "window": window, "rate": rate, "queue_depth": None,
            "latency": {"p50": p50, "p99": p99},
            "batch_sizes": _batch_sizes(store, run["id"]),
            "responses": responses(run), "series": series}


def responses(run: Mapping[str, Any]) -> dict[str, int]:
    """A serve run's responses by HTTP status, as recorded at its end (``options["service"]``);
    empty for other runs."""
    options = run.get("options")
    counters = options.get("service") if isinstance(options, Mapping) else None
    found = counters.get("responses") if isinstance(counters, Mapping) else None
    if not isinstance(found, Mapping):
        return {}
    return {str(code): int(count) for code, count in found.items()}


def stream(store: ReadOnlyStore, run: Mapping[str, Any]) -> dict[str, Any]:
    """``GET /api/runs/{id}/stream`` for a run not live here (see the module docstring)."""
    starts = [begin for begin, _ in _items(store, run["id"])]
    intervals = [b - a for a, b in itertools.pairwise(starts)]
    nominal = quantiles(intervals, 0.5)[0] or 0.0
    deviations = [abs(interval - nominal) for interval in intervals]
    j50, j99 = quantiles(deviations, 0.5, 0.99)
    rate = 0.0
    series: list[dict[str, Any]] = []
    if len(starts) > 1:
        rate = round((len(starts) - 1) / max(starts[-1] - starts[0], 1e-9), 3)
        start, width, count = _buckets((starts[0], starts[-1]))
        grouped: dict[int, list[float]] = collections.defaultdict(list)
        for moment, deviation in zip(starts[1:], deviations, strict=True):
            grouped[int((moment - start) // width)].append(deviation)
        for number in range(count):
            found = grouped.get(number, [])
            series.append({"t": round(start + number * width, 3),
                           "rate": round(len(found) / width, 3),
                           "jitter": quantiles(found, 0.99)[0]})
    options = run["options"] if isinstance(run["options"], Mapping) else {}
    stats = options.get("stream")
    return {"live": False, "rate": rate, "jitter": {"p50": j50, "p99": j99},
            "stages": _stages(store, run["id"], stats if isinstance(stats, Mapping) else None),
            "series": series, "stats": stats if isinstance(stats, Mapping) else None}


def _stages(store: ReadOnlyStore, run_id: str, stats: Mapping[str, Any] | None
            ) -> dict[str, dict[str, Any]]:
    nodes = schema.nodes
    query = sa.select(nodes.c.node, nodes.c.status, nodes.c.start, nodes.c.end,
                      nodes.c.error).where(nodes.c.run_id == run_id)
    durations: dict[str, list[float]] = collections.defaultdict(list)
    misses: collections.Counter[str] = collections.Counter()
    with store.reading() as connection:
        for node, status, start, end, error in connection.execute(query):
            path = path_of(node)
            if status in ("ok", "failed", "retried"):
                durations[path].append(end - start)
            if status in ("failed", "retried") and error and "DeadlineExceeded" in error:
                misses[path] += 1
    drops: collections.Counter[str] = collections.Counter()
    if stats is not None:
        for stage, reasons in (stats.get("drops") or {}).items():
            if isinstance(reasons, Mapping):
                drops[stage] += sum(n for reason, n in reasons.items() if reason != "missed")
                misses[stage] += int(reasons.get("missed", 0))
        for stage, count in (stats.get("misses") or {}).items():
            misses[stage] = max(misses[stage], int(count))
    found: dict[str, dict[str, Any]] = {}
    for path in sorted(set(durations) | set(drops) | set(misses)):
        p50, p99 = quantiles(durations.get(path, ()), 0.5, 0.99)
        found[path] = {"p50": p50, "p99": p99, "drops": drops[path], "misses": misses[path]}
    return found


__all__ = ["BUCKETS", "responses", "service", "stream"]
