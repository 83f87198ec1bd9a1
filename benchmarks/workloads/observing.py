"""B13: what watching a run costs, per item, as a ratio to the same run unwatched.

A ``map`` of 20,000 items through two inline no-op nodes (the engine's own cost dominates, so
the watcher's shows), run on one engine four ways in the same process, each a ratio to the
first:

- unwatched: nobody listens, the engine builds no events at all;
- ``B13-metrics``: a :class:`legato.observe.metrics.Metrics` attached (Prometheus counters and
  histograms kept from the events; budget: at most 1.5x);
- ``B13-ui``: the web UI's live hub attached (:class:`legato.ui.live.Hub`: per-node status,
  counts and durations of every run, for the run pages and their server-sent events; budget:
  at most 2x);
- ``B13-otel``: OpenTelemetry tracing (:class:`legato.observe.otel.Tracing`), three spans per
  item made by the SDK and handed to a batch span processor whose exporter drops them (what
  the SDK costs, not the network). No budget: the SDK's own span making is most of it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from measure import median_time
from suite import Family, RowSpec, Sample

import legato as lg
from legato.backends.local import LocalBackend


@lg.component(executor="inline", cpus=0)
def first(x: int) -> int:
    return x


@lg.component(executor="inline", cpus=0)
def second(x: int) -> int:
    return x


@lg.pipeline
def two(x: int) -> int:
    return second(first(x))


def _tracing() -> Any:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

    from legato.observe.otel import Tracing

    class Dropped(SpanExporter):
        def export(self, spans: Sequence[Any]) -> SpanExportResult:
            return SpanExportResult.SUCCESS

    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(Dropped()))
    return Tracing(provider)


def family(*, quick: bool) -> Family:
    items = 2_000 if quick else 20_000
    repeat = 3 if quick else 5
    rows = [
        RowSpec("B13-metrics", f"lg.map of {items:,} items, 2 inline nodes, Prometheus metrics "
                "attached / nobody watching", "ratio", 1.5),
        RowSpec("B13-ui", "the same, the web UI's live hub attached / nobody watching",
                "ratio", 2.0),
        RowSpec("B13-otel", "the same, OpenTelemetry traces (exporter dropping them) / nobody "
                "watching", "ratio", None),
    ]

    def legato() -> Sample:
        from legato.observe.metrics import Metrics
        from legato.ui.live import Hub

        data = [{"x": i} for i in range(items)]
        with lg.Engine(LocalBackend()) as engine:
            def per_item() -> float:
                return median_time(lambda: list(two.map(data, engine=engine)),
                                   repeat=repeat) * 1e6 / items

            def watched(attach: Callable[[], Callable[[], None]]) -> float:
                detach = attach()
                try:
                    return per_item()
                finally:
                    detach()

            plain = per_item()
            hub = Hub()

            def with_hub() -> Callable[[], None]:
                hub.attach(engine)
                return hub.close

            figures = {"B13-metrics": watched(lambda: Metrics().attach(engine)),
                       "B13-ui": watched(with_hub),
                       "B13-otel": watched(lambda: _tracing().attach(engine))}
        return Sample({row: value / plain for row, value in figures.items()},
                      notes={row: f"{value:.1f} us/item against {plain:.1f} unwatched"
                             for row, value in figures.items()})

    return Family("B13: what watching a run costs", rows, {"legato": legato})
