"""OpenTelemetry traces of runs, made from the engine's events (``pip install 'legato[otel]'``).

:class:`Tracing` is a bus subscriber that turns events into spans, after the fact: the engine
knows nothing of OpenTelemetry, and a run that nobody traces pays nothing. The spans:

- ``legato.run <pipeline>``: RunStarted to RunFinished (``legato.run.id``, ``legato.pipeline``,
  ``legato.mode``, ``legato.run.status``; status ERROR when the run failed).
- ``legato.item <pipeline>``: ItemStarted to ItemFinished (``legato.run.id``, ``legato.item``),
  a child of its run's span. A served request that sent a valid W3C ``traceparent`` (the
  ``context`` its submitter passed) makes it a child of that remote span instead, linked to the
  run's span. A run of mode ``serve`` or ``stream`` lives as long as the service or the stream,
  so its items without a remote parent are each the root of a trace of their own, linked to
  the run's span (one trace holding every request of a day helps nobody).
- ``<component>``: one span per node execution (NodeStarted to NodeFinished or NodeFailed), a
  child of its item's span (``legato.node``, ``legato.component``, ``legato.attempt``,
  ``legato.batch.size``, ``legato.cache.hit``, ``legato.executor``, ``legato.worker``); a
  failed attempt has status ERROR and an ``exception`` event. A cache hit is a zero-length span
  with ``legato.cache.hit`` true.
- ``legato.batch <component>``: one per batch call (BatchFormed, until its members end), linked
  to each member's node span; a child of the run's span when all members are of one run, else
  the root of its own trace.

Times: events carry the engine clock's monotonic seconds; RunStarted's ``wall`` maps them to
the epoch nanoseconds spans want. State is bounded: a node's span is forgotten when it ends, an
item's at ItemFinished (a cancelled item's too), a run's at RunFinished; a run that leaves
items open keeps at most :data:`OPEN_ITEMS` of them, ending the oldest past that.

The subscriber runs on the engine's thread: it only creates and ends spans (the span processor
exports on its own thread) and it never raises into the engine.

Where spans go, and turning tracing on, is :mod:`legato.observe.otel`. This module is imported
only when tracing is asked for.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from legato.engine import Engine, EventBus
from legato.engine.events import (
    BatchFormed,
    CacheHit,
    Event,
    ItemDropped,
    ItemFinished,
    ItemStarted,
    NodeFailed,
    NodeFinished,
    NodeStarted,
    RunFinished,
    RunStarted,
    component_of,
)
from legato.errors import ConfigError

if TYPE_CHECKING:
    from opentelemetry.context import Context
    from opentelemetry.trace import Span, Tracer, TracerProvider

log = logging.getLogger("legato.otel")

OPEN_ITEMS = 10_000  # open item spans one run keeps before ending its oldest
OPEN_BATCHES = 4_096  # open batch spans kept before ending the oldest
LONG_LIVED = frozenset({"serve", "stream"})  # modes whose items are traces of their own
INSTALL = "pip install 'legato[otel]'"


@dataclass(slots=True)
class _Run:
    span: Span
    context: Context
    pipeline: str
    mode: str
    base_ns: int  # epoch ns at clock time ``t0``
    t0: float
    items: dict[int, _Item] = field(default_factory=dict)


@dataclass(slots=True)
class _Item:
    span: Span
    context: Context
    nodes: dict[str, tuple[int, Span]] = field(default_factory=dict)  # node -> (attempt, span)


class Tracing:
    """A bus subscriber making OpenTelemetry spans of runs, items and node executions (see the
    module docstring). ``tracer_provider``: where spans go (default: the global one,
    ``opentelemetry.trace.get_tracer_provider()``).

    ``attach(engine_or_bus)`` subscribes it and returns the function that detaches it (ending
    the spans still open). One instance may be attached to one engine at a time.
    """

    def __init__(self, tracer_provider: TracerProvider | None = None) -> None:
        trace = trace_api()
        from opentelemetry.context import Context
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

        provider = tracer_provider or trace.get_tracer_provider()
        self._trace = trace
        self._tracer: Tracer = provider.get_tracer("legato", _version())
        self._propagator = TraceContextTextMapPropagator()
        self._runs: dict[str, _Run] = {}
        self._batches: dict[tuple[str, int], Span] = {}
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)  # notified when the last open run ends
        self._empty = Context()  # a span started in it is the root of a trace of its own
        self._failed: set[str] = set()  # event kinds whose failure was logged
        # until a RunStarted maps the engine clock to the epoch: right for the monotonic clock
        self._base_ns = time.time_ns()
        self._t0 = time.monotonic()
        self._handlers: dict[type, Callable[[Any], None]] = {
            RunStarted: self._run_started, RunFinished: self._run_finished,
            ItemStarted: self._item_started, ItemFinished: self._item_finished,
            ItemDropped: self._item_dropped, NodeStarted: self._node_started,
            NodeFinished: self._node_finished, NodeFailed: self._node_failed,
            CacheHit: self._cache_hit, BatchFormed: self._batch_formed}

    # -- subscribing ------------------------------------------------------------------------

    def attach(self, target: Engine | EventBus, *, wait: float = 5.0) -> Callable[[], None]:
        """Subscribe to ``target``'s bus (an engine's, or a bus); returns the function that
        unsubscribes, after waiting up to ``wait`` seconds for the runs still open to end (a
        run's last events come from the engine's thread just after its last result), and ends
        the spans left open."""
        bus = target.bus if isinstance(target, Engine) else target
        unsubscribe = bus.subscribe(self, kinds=self._handlers)  # no event built for nothing

        def detach() -> None:
            self.wait_idle(wait)
            unsubscribe()
            self.close()

        return detach

    def wait_idle(self, timeout: float) -> bool:
        """Wait until no run is open (at most ``timeout`` seconds); whether none is."""
        with self._idle:
            return self._idle.wait_for(lambda: not self._runs, timeout)

    def open_spans(self) -> int:
        """How many spans are open (runs, items, node executions, batches): zero once every
        run traced has finished."""
        with self._lock:
            return len(self._batches) + sum(
                1 + sum(1 + len(item.nodes) for item in run.items.values())
                for run in self._runs.values())

    def close(self) -> None:
        """End every span still open (now): a detached run's spans still reach the exporter."""
        with self._lock:
            for run in self._runs.values():
                for item in run.items.values():
                    _end_item(item, None)
                run.span.end()
            self._runs.clear()
            for span in self._batches.values():
                span.end()
            self._batches.clear()

    def __call__(self, event: Event) -> None:
        handler = self._handlers.get(type(event))
        if handler is None:
            return
        try:
            with self._lock:
                handler(event)
        except Exception:  # a tracing bug must never fail a run (nor flood its log)
            kind = type(event).__name__
            if kind not in self._failed:
                self._failed.add(kind)
                log.exception("tracing failed on %s; such events are skipped when they fail "
                              "(logged once)", kind)

    # -- runs and items ---------------------------------------------------------------------

    def _run_started(self, event: RunStarted) -> None:
        base_ns = int(event.wall * 1e9)
        self._base_ns, self._t0 = base_ns, event.time
        mode = getattr(event, "mode", "run")
        span = self._tracer.start_span(
            f"legato.run {event.pipeline}", context=self._empty, start_time=base_ns,
            attributes={"legato.run.id": event.run, "legato.pipeline": event.pipeline,
                        "legato.mode": mode})
        self._runs[event.run] = _Run(span, self._trace.set_span_in_context(span),
                                     event.pipeline, mode, base_ns, event.time)

    def _run_finished(self, event: RunFinished) -> None:
        run = self._runs.pop(event.run, None)
        if run is None:
            return
        if not self._runs:
            self._idle.notify_all()
        end = _ns(run, event.time)
        for item in run.items.values():
            _end_item(item, end)
        span = run.span
        span.set_attribute("legato.run.status", event.status)
        span.set_attribute("legato.run.done", event.done)
        span.set_attribute("legato.run.failed", event.failed)
        if event.status == "failed":
            span.set_status(self._trace.Status(self._trace.StatusCode.ERROR,
                                               f"{event.failed} items failed"))
        span.end(end_time=end)

    def _item_started(self, event: ItemStarted) -> None:
        run = self._runs.get(event.run)
        if run is None:
            return
        self._open_item(run, event.run, event.item, event.time, event.context)

    def _open_item(self, run: _Run, run_id: str, index: int, when: float,
                   carrier: Mapping[str, str] | None = None) -> _Item:
        parent, links = run.context, None
        remote = self._remote(carrier) if carrier else None
        if remote is not None or run.mode in LONG_LIVED:
            parent = remote if remote is not None else self._empty
            links = [self._trace.Link(run.span.get_span_context())]
        span = self._tracer.start_span(
            f"legato.item {run.pipeline}", context=parent, links=links,
            start_time=_ns(run, when), attributes={"legato.run.id": run_id, "legato.item": index})
        item = run.items[index] = _Item(span, self._trace.set_span_in_context(span))
        if len(run.items) > OPEN_ITEMS:  # the oldest open item: dicts keep insertion order
            oldest = next(iter(run.items))
            _end_item(run.items.pop(oldest), None)
        return item

    def _remote(self, carrier: Mapping[str, str]) -> Context | None:
        """The remote parent a W3C ``traceparent`` names, or None when it names none validly."""
        context = self._propagator.extract(carrier)
        if not self._trace.get_current_span(context).get_span_context().is_valid:
            return None
        return context

    def _item_finished(self, event: ItemFinished) -> None:
        run = self._runs.get(event.run)
        item = run.items.pop(event.item, None) if run is not None else None
        if item is None:
            return
        assert run is not None
        if event.cancelled:
            item.span.set_attribute("legato.item.cancelled", True)
        elif not event.ok:
            item.span.set_status(self._trace.Status(self._trace.StatusCode.ERROR, event.error))
        _end_item(item, _ns(run, event.time))

    def _item_dropped(self, event: ItemDropped) -> None:
        item = self._item(event.run, event.item)
        if item is not None:
            item.span.set_attributes({"legato.dropped.node": event.node,
                                      "legato.dropped.reason": event.reason})

    def _item(self, run_id: str, index: int, when: float | None = None) -> _Item | None:
        """The item's state; opened at ``when`` when tracing began after it started."""
        run = self._runs.get(run_id)
        if run is None:
            return None
        item = run.items.get(index)
        if item is None and when is not None:
            item = self._open_item(run, run_id, index, when)
        return item

    # -- node executions --------------------------------------------------------------------

    def _node_started(self, event: NodeStarted) -> None:
        item = self._item(event.run, event.item, event.time)
        if item is None:
            return
        run = self._runs[event.run]
        item.nodes[event.node] = (event.attempt, self._node_span(
            run, item, event.node, event.component, event.attempt, event.batch_size,
            _ns(run, event.time)))

    def _node_span(self, run: _Run, item: _Item, node: str, component: str, attempt: int,
                   batch_size: int, start: int, *, cached: bool = False) -> Span:
        return self._tracer.start_span(
            component or component_of(node), context=item.context, start_time=start,
            attributes={"legato.node": node, "legato.component": component or component_of(node),
                        "legato.attempt": attempt, "legato.batch.size": batch_size,
                        "legato.cache.hit": cached})

    def _ending(self, event: NodeFinished | NodeFailed) -> tuple[_Run, Span] | None:
        """The span of the execution ``event`` ends (made now when its start was missed)."""
        item = self._item(event.run, event.item, event.start)
        if item is None:
            return None
        run = self._runs[event.run]
        started = item.nodes.pop(event.node, None)
        if started is not None and started[0] == event.attempt:
            span = started[1]
        else:
            if started is not None:  # another attempt's, never ended: end it now
                started[1].end()
            span = self._node_span(run, item, event.node, event.component, event.attempt,
                                   event.batch_size, _ns(run, event.start))
        span.set_attributes({"legato.executor": event.executor, "legato.worker": event.worker})
        return run, span

    def _node_finished(self, event: NodeFinished) -> None:
        ended = self._ending(event)
        if ended is not None:
            run, span = ended
            span.end(end_time=_ns(run, event.end))
            if event.batch:
                self._batch_ended(event.component, event.batch, _ns(run, event.end))

    def _node_failed(self, event: NodeFailed) -> None:
        ended = self._ending(event)
        if ended is None:
            return
        run, span = ended
        when = _ns(run, event.end)
        span.set_attribute("legato.retried", event.will_retry)
        if event.exception is not None:
            span.record_exception(event.exception, timestamp=when)
        else:
            span.add_event("exception", {"exception.message": event.error}, timestamp=when)
        span.set_status(self._trace.Status(self._trace.StatusCode.ERROR, event.error))
        span.end(end_time=when)
        if event.batch:
            self._batch_ended(event.component, event.batch, when)

    def _cache_hit(self, event: CacheHit) -> None:
        item = self._item(event.run, event.item, event.time)
        if item is None:
            return
        run = self._runs[event.run]
        when = _ns(run, event.time)
        span = self._node_span(run, item, event.node, event.component, 0, 1, when, cached=True)
        span.set_attribute("legato.cache.source", event.source)
        span.end(end_time=when)

    # -- batches ----------------------------------------------------------------------------

    def _batch_formed(self, event: BatchFormed) -> None:
        links = []
        runs = set()
        for run_id, index, node in event.members:
            runs.add(run_id)
            item = self._item(run_id, index)
            started = item.nodes.get(node) if item is not None else None
            if started is not None:
                links.append(self._trace.Link(started[1].get_span_context()))
        run = self._runs.get(next(iter(runs))) if len(runs) == 1 else None
        start = _ns(run, event.time) if run is not None else self._clock_ns(event.time)
        span = self._tracer.start_span(
            f"legato.batch {event.component}", links=links, start_time=start,
            context=run.context if run is not None else self._empty,
            attributes={"legato.component": event.component, "legato.batch.size": event.size,
                        "legato.batch.reason": event.reason, "legato.batch.runs": event.runs})
        key = (event.component, event.batch)
        self._batches[key] = span
        if len(self._batches) > OPEN_BATCHES:
            self._batches.pop(next(iter(self._batches))).end()

    def _batch_ended(self, component: str, batch: int, end: int) -> None:
        """A member of the batch call ended: so did the call (its members end together)."""
        span = self._batches.pop((component, batch), None)
        if span is not None:
            span.end(end_time=end)

    def _clock_ns(self, when: float) -> int:
        return self._base_ns + int((when - self._t0) * 1e9)


def _ns(run: _Run, when: float) -> int:
    """Engine clock seconds as epoch nanoseconds (differences kept exact to the ns)."""
    return run.base_ns + int((when - run.t0) * 1e9)


def _end_item(item: _Item, end: int | None) -> None:
    for _, span in item.nodes.values():
        span.end(end_time=end)
    item.nodes.clear()
    item.span.end(end_time=end)


def _version() -> str | None:
    """legato's version, for the spans' instrumentation scope (legato itself is not imported:
    this module sits below it)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("legato")
    except PackageNotFoundError:
        return None


def trace_api() -> Any:
    """``opentelemetry.trace``, or ConfigError naming the extra to install."""
    try:
        from opentelemetry import trace
    except ImportError as exc:
        raise ConfigError(f"tracing needs OpenTelemetry: {INSTALL} ({exc.name} is "
                          "missing)") from None
    return trace


__all__ = ["INSTALL", "OPEN_BATCHES", "OPEN_ITEMS", "Tracing", "trace_api"]
