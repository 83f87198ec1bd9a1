"""Prometheus metrics: a bus subscriber that counts what the engine does, and gauges read at
scrape time.

Three sources, chosen by cost:

- **Engine events** (counters and histograms): each engine a :class:`Metrics` is attached to
  gets a :class:`~legato.observe.tally.Tally`, a bus subscriber on that engine's thread that
  keeps plain numbers, without locks (a few hundred nanoseconds per finished call, against
  about 2.4 µs for prometheus_client's own metric objects).
- **Scrapes** (gauges): queue depth, calls running and live instances per component come from
  ``Engine.snapshot()``, resources held and their capacity from its ``usage``, asked only when
  someone scrapes. A scrape turns the tallies (copied, not locked) into metric families too.
- **HTTP requests** (:meth:`Metrics.http_request`): counted under a lock (requests come from
  any number of event loops, and cost far more than their count).

Labels stay bounded: a component's name, never an execution path (``refine[2]/score`` counts as
``score``); an error's type name, never its message; a pipeline's name. Each :class:`Metrics`
owns its own ``CollectorRegistry`` (one per app, so tests and two apps in one process never
share counters); :func:`default` is the process-wide one. A detached engine's tally is kept:
counters never go back.

The metrics, their labels and meaning: :data:`NAMES` and ``docs/observability.md``.
"""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from typing import Any, Protocol

from prometheus_client import CollectorRegistry
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import generate_latest
from prometheus_client.utils import floatToGoString

from legato.engine.events import EventBus, component_of
from legato.engine.resources import Usage
from legato.engine.snapshot import EngineSnapshot
from legato.observe.tally import SECONDS, Buckets, Tally

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"  # the Prometheus text format

NAMES: dict[str, tuple[str, str]] = {  # name: (labels, what it counts)
    "legato_calls_total": ("component", "node executions that ended, ok or failed (a batch "
                                        "of n counts n)"),
    "legato_call_failures_total": ("component,error", "node executions that failed, by the "
                                                      "error's type name"),
    "legato_call_retries_total": ("component", "failed executions that will be tried again"),
    "legato_call_duration_seconds": ("component", "how long executions ran (a batch's members "
                                                  "each observe the batch's time)"),
    "legato_queue_wait_seconds": ("component", "how long executions waited from ready (inputs "
                                               "all there) to started"),
    "legato_batch_size": ("component", "executions per batch call of a batched component"),
    "legato_cache_hits_total": ("component", "node outputs reused instead of computed"),
    "legato_items_total": ("pipeline,status", "items that ended: status ok, failed, dropped or "
                                            "cancelled"),
    "legato_items_dropped_total": ("node,reason", "items dropped by a policy at a component "
                                                  "(replaced, queue_full, max_age, missed...)"),
    "legato_deadline_missed_total": ("node", "deadlines missed: node is the component of a "
                                             "stage deadline, or the pipeline of an item's"),
    "legato_queue_depth": ("component", "executions waiting now (ready, blocked on "
                                        "admission, in a batcher)"),
    "legato_calls_running": ("component", "executions in flight now"),
    "legato_instances": ("component", "live (warm) instances of a class component"),
    "legato_resource_held": ("resource", "amount of a resource held now"),
    "legato_resource_capacity": ("resource", "amount of a resource the engine can hand out"),
    "legato_http_requests_total": ("pipeline,status", "HTTP requests to a served pipeline, "
                                                      "by response status"),
    "legato_http_request_duration_seconds": ("pipeline", "HTTP request duration, from "
                                                         "request to the response's end"),
}


class Observed(Protocol):
    """What :meth:`Metrics.attach` needs of an engine (:class:`legato.engine.Engine` is one)."""

    @property
    def bus(self) -> EventBus: ...

    def usage(self) -> Usage: ...

    def snapshot(self, timeout: float = 1.0) -> EngineSnapshot: ...


class Metrics:
    """Prometheus metrics of the engines it is attached to, in a registry of its own.

    ``metrics.attach(engine)`` subscribes a :class:`Tally` to the engine's bus and adds the
    engine to the gauges read at scrape time; it returns the function that detaches it.
    ``render()`` is what a ``/metrics`` endpoint answers. Call :meth:`http_request` once per
    answered HTTP request (``legato serve`` does).
    """

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._lock = threading.Lock()
        self._tallies: list[Tally] = []
        self._engines: list[Observed] = []
        self._requests: dict[tuple[str, str], int] = {}  # (pipeline, status), under _lock
        self._request_seconds: dict[str, Buckets] = {}
        self.registry.register(_Collector(self))

    def attach(self, engine: Observed) -> Callable[[], None]:
        """Count ``engine``'s events and read its gauges at scrape time, until the returned
        function is called (calling it again does nothing)."""
        tally = Tally()
        unsubscribe = tally.subscribe(engine.bus)
        with self._lock:
            self._tallies.append(tally)
            self._engines.append(engine)

        def detach() -> None:
            unsubscribe()
            with self._lock:
                if engine in self._engines:
                    self._engines.remove(engine)

        return detach

    def render(self) -> tuple[bytes, str]:
        """The registry in the Prometheus text format, and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE

    def http_request(self, pipeline: str, status: int, seconds: float) -> None:
        """One HTTP request to ``pipeline`` answered with ``status`` after ``seconds``."""
        key = (pipeline, str(status))
        with self._lock:  # requests come from event loops, any number of them
            self._requests[key] = self._requests.get(key, 0) + 1
            durations = self._request_seconds.get(pipeline)
            if durations is None:
                durations = self._request_seconds[pipeline] = Buckets(SECONDS)
            durations.observe(seconds)

    def attached(self) -> tuple[list[Tally], list[Observed]]:
        """Every tally (detached engines' too) and the engines attached now."""
        with self._lock:
            return list(self._tallies), list(self._engines)

    def requests(self) -> Iterator[Metric]:
        """The HTTP requests' families, from a copy taken under the lock."""
        with self._lock:
            requests = dict(self._requests)
            durations = {name: (list(b.counts), b.sum)
                         for name, b in self._request_seconds.items()}
        yield _counter_of("legato_http_requests_total", requests)
        family = _histogram("legato_http_request_duration_seconds")
        for name, (counts, total) in sorted(durations.items()):
            copy = Buckets(SECONDS)
            copy.counts, copy.sum = counts, total
            family.add_metric([name], _cumulative(copy), total)
        yield family


def _doc(name: str) -> str:
    return NAMES[name][1]


class _Collector:
    """Turns the tallies and the engines' snapshots into metric families at scrape time; each
    family sums over every engine attached."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def describe(self) -> Iterable[Metric]:
        return []  # names are fixed; nothing to check against other collectors

    def collect(self) -> Iterator[Metric]:
        tallies, engines = self._metrics.attached()
        yield from _counted(tallies)
        yield from _gauges(engines)
        yield from self._metrics.requests()


def _counted(tallies: list[Tally]) -> Iterator[Metric]:
    calls = _counter("legato_calls_total")
    failures = _counter("legato_call_failures_total")
    retries = _counter("legato_call_retries_total")
    hits = _counter("legato_cache_hits_total")
    duration = _histogram("legato_call_duration_seconds")
    wait = _histogram("legato_queue_wait_seconds")
    batch = _histogram("legato_batch_size")
    numbers: dict[str, list[float]] = {}  # component: calls, retries, hits
    errors: dict[tuple[str, str], int] = {}
    histograms: dict[tuple[str, str], Buckets] = {}  # (family, component)
    items: dict[tuple[str, str], int] = {}
    dropped: dict[tuple[str, str], int] = {}
    missed: dict[str, int] = {}
    for tally in tallies:
        for name, row in tally.rows.copy().items():
            sums = numbers.setdefault(name, [0, 0, 0])
            sums[0] += row.calls
            sums[1] += row.retries
            sums[2] += row.hits
            for error, count in row.failures.copy().items():
                errors[name, error] = errors.get((name, error), 0) + count
            for family, buckets in (("duration", row.duration), ("wait", row.wait),
                                    ("batch", row.batch)):
                _merge(histograms, (family, name), buckets)
        _add(items, tally.items.copy())
        _add(dropped, tally.dropped.copy())
        _add(missed, tally.missed.copy())
    for name, (n_calls, n_retries, n_hits) in sorted(numbers.items()):
        calls.add_metric([name], n_calls)
        if n_retries:
            retries.add_metric([name], n_retries)
        if n_hits:
            hits.add_metric([name], n_hits)
    for (name, error), count in sorted(errors.items()):
        failures.add_metric([name, error], count)
    families = {"duration": duration, "wait": wait, "batch": batch}
    for (family, name), buckets in sorted(histograms.items()):
        if any(buckets.counts):
            families[family].add_metric([name], _cumulative(buckets), buckets.sum)
    yield from (calls, failures, retries, duration, wait, batch, hits)
    yield _counter_of("legato_items_total", items)
    yield _counter_of("legato_items_dropped_total", dropped)
    yield _counter_of("legato_deadline_missed_total", {(k,): v for k, v in missed.items()})


def _gauges(engines: list[Observed]) -> Iterator[Metric]:
    depth, running, instances = (_gauge("legato_queue_depth"), _gauge("legato_calls_running"),
                                 _gauge("legato_instances"))
    held, capacity = _gauge("legato_resource_held"), _gauge("legato_resource_capacity")
    components: dict[str, list[float]] = {}
    resources: dict[str, list[float]] = {}
    for engine in engines:
        snapshot = engine.snapshot()
        for name, state in snapshot.components.items():
            row = components.setdefault(name, [0.0, 0.0, 0.0])
            if snapshot.complete:  # else the loop did not answer in time: instances only
                row[0] += state.queued
                row[1] += state.running
            row[2] += state.instances
        usage = snapshot.usage
        for name, amount in usage.capacity.items():
            row = resources.setdefault(name, [0.0, 0.0])
            row[0] += usage.used.get(name, 0.0)
            row[1] += amount
    for name, (queued, running_now, live) in sorted(components.items()):
        depth.add_metric([name], queued)
        running.add_metric([name], running_now)
        instances.add_metric([name], live)
    for name, (used, total) in sorted(resources.items()):
        held.add_metric([name], used)
        capacity.add_metric([name], total)
    yield from (depth, running, instances, held, capacity)


def _labels(name: str) -> list[str]:
    return NAMES[name][0].split(",")


def _counter(name: str) -> CounterMetricFamily:
    return CounterMetricFamily(name, _doc(name), labels=_labels(name))


def _counter_of(name: str, counts: Mapping[Any, int]) -> CounterMetricFamily:
    family = _counter(name)
    for labels, count in sorted(counts.items()):
        family.add_metric(list(labels), count)
    return family


def _histogram(name: str) -> HistogramMetricFamily:
    return HistogramMetricFamily(name, _doc(name), labels=_labels(name))


def _gauge(name: str) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, _doc(name), labels=_labels(name))


def _add(into: dict[Any, int], counts: Mapping[Any, int]) -> None:
    for key, count in counts.items():
        into[key] = into.get(key, 0) + count


def _merge(into: dict[tuple[str, str], Buckets], key: tuple[str, str], buckets: Buckets) -> None:
    merged = into.get(key)
    if merged is None:
        merged = into[key] = Buckets(buckets.bounds)
    counts = list(buckets.counts)  # one copy, then summed
    merged.counts = [a + b for a, b in zip(merged.counts, counts, strict=True)]
    merged.sum += buckets.sum


def _cumulative(buckets: Buckets) -> list[tuple[str, float]]:
    """Prometheus buckets: cumulative counts by upper bound, ``+Inf`` last (its count is the
    histogram's count, so count and buckets always agree)."""
    out: list[tuple[str, float]] = []
    total = 0
    for bound, count in zip((*buckets.bounds, float("inf")), buckets.counts, strict=True):
        total += count
        out.append((floatToGoString(bound), total))  # type: ignore[no-untyped-call]
    return out


def metrics_route(metrics: Metrics) -> Callable[[Any], Awaitable[Any]]:
    """A Starlette (or FastAPI) endpoint answering ``GET /metrics`` with ``metrics.render()``:
    ``app.add_route("/metrics", metrics_route(metrics), methods=["GET"])``. Starlette is
    imported when the route is made, not with this module."""
    from starlette.responses import Response

    async def endpoint(request: Any) -> Response:
        body, content_type = metrics.render()
        return Response(body, media_type=content_type)

    return endpoint


_default: Metrics | None = None
_default_lock = threading.Lock()


def default() -> Metrics:
    """The process-wide :class:`Metrics` (made on first use), for code that wants one registry
    per process rather than one per app."""
    global _default
    with _default_lock:
        if _default is None:
            _default = Metrics()
        return _default


__all__ = ["CONTENT_TYPE", "NAMES", "Metrics", "Observed", "component_of", "default",
           "metrics_route"]
