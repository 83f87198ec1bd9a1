"""Prometheus metrics, scraped and parsed: real pipelines on a real engine with
:class:`~legato.observe.metrics.Metrics` attached, then ``render()`` read back with
prometheus_client's own parser; and ``/metrics`` of a real served app (uvicorn on 127.0.0.1,
httpx) after 200s, 429s and 504s.

Counts are exact: each test compares with what it made happen (or with the events the engine
published, where the engine chooses, like batch sizes). Waiting is on conditions: a gate the
component waits on, events seen, a scrape that says so, each with a deadline.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("prometheus_client")

from prometheus_client.parser import text_string_to_metric_families

import legato as lg
from harness import WAIT, Events, MakeEngine, WatchedClock
from legato.engine.events import (
    AdmissionWaited,
    BatchFormed,
    NodeFinished,
    NodeQueued,
    NodeStarted,
)
from legato.observe.metrics import (
    CONTENT_TYPE,
    NAMES,
    Metrics,
    component_of,
    default,
    metrics_route,
)

Samples = dict[str, dict[tuple[tuple[str, str], ...], float]]


def scrape(metrics: Metrics) -> Samples:
    """Every sample of ``metrics.render()``, parsed: ``{name: {sorted labels: value}}``."""
    body, content_type = metrics.render()
    assert content_type == CONTENT_TYPE == "text/plain; version=0.0.4; charset=utf-8"
    return parse(body.decode())


def parse(text: str) -> Samples:
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = tuple(sorted(sample.labels.items()))
            samples.setdefault(sample.name, {})[labels] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    """One sample's value; 0 when the series is absent (a counter never incremented)."""
    return samples.get(name, {}).get(tuple(sorted(labels.items())), 0.0)


def series(samples: Samples, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    return samples.get(name, {})


def buckets(samples: Samples, name: str, **labels: str) -> list[tuple[float, float]]:
    """A histogram's cumulative buckets, ``(le, count)`` in order of ``le``."""
    found = []
    for key, count in series(samples, f"{name}_bucket").items():
        keyed = dict(key)
        le = keyed.pop("le")
        if keyed == labels:
            found.append((float(le), count))
    return sorted(found)


def assert_histogram(samples: Samples, name: str, count: int, **labels: str) -> None:
    """The histogram holds ``count`` observations, and its buckets agree with its count."""
    assert value(samples, f"{name}_count", **labels) == count
    cumulative = buckets(samples, name, **labels)
    assert cumulative[-1] == (float("inf"), count)
    assert [c for _, c in cumulative] == sorted(c for _, c in cumulative)  # never decreasing


@pytest.fixture
def metrics(engine: lg.Engine) -> Iterator[Metrics]:
    """A fresh Metrics attached to the test's engine."""
    observed = Metrics()
    detach = observed.attach(engine)
    yield observed
    detach()


@pytest.fixture
def gate() -> Iterator[threading.Event]:
    event = threading.Event()
    yield event
    event.set()  # never leave a worker thread waiting


# -- calls, failures, latency -----------------------------------------------------------------


def test_calls_and_their_durations_are_counted_per_component(
    engine: lg.Engine, metrics: Metrics
) -> None:
    @lg.component  # a thread
    def embed(text: str) -> int:
        return len(text)

    @lg.component(executor="inline")
    def score(size: int) -> float:
        return size / 10

    @lg.pipeline
    def rank(text: str) -> float:
        return score(embed(text))

    assert list(rank.map(["a", "bb", "ccc", "dddd", "eeeee"], engine=engine)) == [
        0.1, 0.2, 0.3, 0.4, 0.5]
    samples = scrape(metrics)
    assert series(samples, "legato_calls_total") == {
        (("component", "embed"),): 5.0, (("component", "score"),): 5.0}
    for component in ("embed", "score"):
        assert_histogram(samples, "legato_call_duration_seconds", 5, component=component)
        assert_histogram(samples, "legato_queue_wait_seconds", 5, component=component)
        assert value(samples, "legato_call_duration_seconds_sum", component=component) >= 0
    assert value(samples, "legato_items_total", pipeline="rank", status="ok") == 5
    assert series(samples, "legato_call_failures_total") == {}


def test_failures_are_counted_by_error_type_and_retries_apart(
    engine: lg.Engine, metrics: Metrics
) -> None:
    tried: set[int] = set()

    @lg.component(executor="inline", retries=lg.Retry(attempts=2, backoff=0))
    def flaky(x: int) -> int:
        if x not in tried:  # each item fails once, then succeeds
            tried.add(x)
            raise ConnectionError("try again")
        return x

    @lg.component(executor="inline", retries=lg.Retry(attempts=2, backoff=0))
    def picky(x: int) -> int:
        if x % 2:
            raise ValueError(f"odd {x}")
        return x

    @lg.pipeline
    def checked(x: int) -> int:
        return picky(flaky(x))

    results = list(checked.map(range(4), engine=engine, on_error="skip"))
    assert results == [0, 2]
    samples = scrape(metrics)
    # flaky: 4 failed first attempts, 4 good second ones; picky: items 1 and 3 fail twice each
    assert value(samples, "legato_calls_total", component="flaky") == 8
    assert value(samples, "legato_calls_total", component="picky") == 2 + 4
    assert series(samples, "legato_call_failures_total") == {
        (("component", "flaky"), ("error", "ConnectionError")): 4.0,
        (("component", "picky"), ("error", "ValueError")): 4.0}
    assert series(samples, "legato_call_retries_total") == {
        (("component", "flaky"),): 4.0, (("component", "picky"),): 2.0}
    assert_histogram(samples, "legato_call_duration_seconds", 8, component="flaky")
    assert_histogram(samples, "legato_call_duration_seconds", 6, component="picky")
    assert value(samples, "legato_items_total", pipeline="checked", status="ok") == 2
    assert value(samples, "legato_items_total", pipeline="checked", status="failed") == 2


def test_a_batch_is_one_batch_size_observation_and_each_member_one_call(
    engine: lg.Engine, metrics: Metrics
) -> None:
    events = Events()
    engine.bus.subscribe(events)

    @lg.component(batch=lg.Batch(max_size=4, max_wait_ms=5))
    def double(x: list[int]) -> list[int]:
        return [2 * v for v in x]

    @lg.pipeline
    def doubled(x: int) -> int:
        return double(x)

    assert list(doubled.map(range(10), engine=engine)) == [2 * x for x in range(10)]
    formed = events.of(BatchFormed)
    samples = scrape(metrics)
    assert value(samples, "legato_calls_total", component="double") == 10
    assert_histogram(samples, "legato_batch_size", len(formed), component="double")
    assert value(samples, "legato_batch_size_sum", component="double") == 10
    for le, count in buckets(samples, "legato_batch_size", component="double"):
        assert count == sum(1 for batch in formed if batch.size <= le)
    assert_histogram(samples, "legato_call_duration_seconds", 10, component="double")


def test_outputs_reused_from_the_cache_are_counted_as_hits_not_calls(
    engine: lg.Engine, metrics: Metrics, tmp_path: Path
) -> None:
    @lg.component(executor="inline", cache=True)
    def square(x: int) -> int:
        return x * x

    @lg.pipeline
    def squares(x: int) -> int:
        return square(x)

    store = str(tmp_path / "runs.db")
    assert list(squares.map(range(3), engine=engine, store=store)) == [0, 1, 4]
    assert list(squares.map(range(4), engine=engine, store=store)) == [0, 1, 4, 9]
    samples = scrape(metrics)
    assert value(samples, "legato_cache_hits_total", component="square") == 3
    assert value(samples, "legato_calls_total", component="square") == 3 + 1
    assert value(samples, "legato_items_total", pipeline="squares", status="ok") == 7


# -- drops and deadlines -----------------------------------------------------------------------


def _gated_plan(gate: threading.Event, **options: Any) -> lg.Pipeline:
    """``plan`` holds the only planner while the test's gate is closed, so the others queue."""
    served: list[int] = []

    @lg.component(name="plan", cpus=0, resources={"planner": 1}, **options)
    def plan(x: int) -> int:
        if not served:
            gate.wait(WAIT)
        served.append(x)
        return x

    @lg.pipeline
    def planned(x: int) -> int:
        return plan(x)

    return planned


@pytest.mark.parametrize(("queue", "reason", "kept"), [
    ("latest", "replaced", 2),  # items 1 and 2 replaced by 3
    (lg.Fifo(2), "queue_full", 3),  # items 1 and 2 pushed out by 3 and 4 (beyond 2 waiting)
])
def test_items_dropped_by_a_queue_policy_are_counted_by_reason(
    make_engine: MakeEngine, gate: threading.Event, queue: Any, reason: str, kept: int
) -> None:
    engine = make_engine(WatchedClock(), cpus=2, resources={"planner": 1})
    events = Events()
    engine.bus.subscribe(events)
    metrics = Metrics()
    metrics.attach(engine)
    planned = _gated_plan(gate, queue=queue)
    count = 4 if queue == "latest" else 5
    stream = planned.stream(range(count), engine=engine)
    events.wait_for(lambda e: len(events.of(AdmissionWaited)) >= count - 1)
    gate.set()
    assert len(list(stream)) == kept
    samples = scrape(metrics)
    assert series(samples, "legato_items_dropped_total") == {
        (("node", "plan"), ("reason", reason)): 2.0}
    assert value(samples, "legato_items_total", pipeline="planned", status="dropped") == 2
    assert value(samples, "legato_items_total", pipeline="planned", status="ok") == kept
    assert value(samples, "legato_calls_total", component="plan") == kept
    assert series(samples, "legato_deadline_missed_total") == {}


def test_a_stage_deadline_missed_counts_as_a_miss_and_a_drop(
    make_engine: MakeEngine, gate: threading.Event
) -> None:
    clock = WatchedClock()
    engine = make_engine(clock)
    events = Events()
    engine.bus.subscribe(events)
    metrics = Metrics()
    metrics.attach(engine)

    @lg.component(cpus=0, deadline=0.5, on_miss="skip", name="plan")
    def plan(x: float) -> float:
        if x < 0:
            gate.wait(WAIT)  # runs past the stage's budget
        return x * 2

    @lg.pipeline
    def steer(x: float) -> float:
        return plan(x)

    run = steer.open(engine=engine)
    assert run.submit({"x": 1.0}).result(WAIT) == 2.0
    late = run.submit({"x": -1.0})
    events.wait_for(lambda e: isinstance(e, NodeStarted) and e.item == late.index)
    clock.advance(0.5)
    assert late.result(WAIT) == lg.Dropped(late.index, "plan", "missed")
    run.close()
    samples = scrape(metrics)
    assert series(samples, "legato_deadline_missed_total") == {(("node", "plan"),): 1.0}
    assert series(samples, "legato_items_dropped_total") == {
        (("node", "plan"), ("reason", "missed")): 1.0}
    assert value(samples, "legato_items_total", pipeline="steer", status="ok") == 1
    assert value(samples, "legato_items_total", pipeline="steer", status="dropped") == 1


def test_an_item_past_its_deadline_counts_as_a_miss_of_its_pipeline(
    make_engine: MakeEngine, gate: threading.Event
) -> None:
    clock = WatchedClock()
    engine = make_engine(clock)
    events = Events()
    engine.bus.subscribe(events)
    metrics = Metrics()
    metrics.attach(engine)

    @lg.component(cpus=0)
    def slow(x: int) -> int:
        gate.wait(WAIT)
        return x

    @lg.pipeline
    def answer(x: int) -> int:
        return slow(x)

    run = answer.open(engine=engine)
    handle = run.submit({"x": 1}, deadline=2.0)
    events.wait_for(lambda e: isinstance(e, NodeStarted))
    clock.advance(2.0)
    with pytest.raises(lg.DeadlineExceeded):
        handle.result(WAIT)
    gate.set()
    run.close()
    assert run.wait(WAIT)
    samples = scrape(metrics)
    assert series(samples, "legato_deadline_missed_total") == {(("node", "answer"),): 1.0}
    assert value(samples, "legato_items_total", pipeline="answer", status="failed") == 1
    assert series(samples, "legato_items_dropped_total") == {}


def test_a_cancelled_item_counts_as_cancelled_not_failed(
    engine: lg.Engine, metrics: Metrics, gate: threading.Event
) -> None:
    @lg.component(cpus=0)
    def held(x: int) -> int:
        gate.wait(WAIT)
        return x

    @lg.pipeline
    def answer(x: int) -> int:
        return held(x)

    run = answer.open(engine=engine)
    cancelled = run.submit({"x": 1})
    cancelled.cancel()
    with pytest.raises(lg.RunCancelled):
        cancelled.result(WAIT)
    gate.set()
    assert run.submit({"x": 2}).result(WAIT) == 2
    run.close()
    assert run.wait(WAIT)
    samples = scrape(metrics)
    assert series(samples, "legato_items_total") == {
        (("pipeline", "answer"), ("status", "cancelled")): 1.0,
        (("pipeline", "answer"), ("status", "ok")): 1.0}


# -- gauges read at scrape time ----------------------------------------------------------------


def test_resources_are_scraped_as_held_and_capacity(
    make_engine: MakeEngine, gate: threading.Event
) -> None:
    engine = make_engine(cpus=3, resources={"planner": 1})
    events = Events()
    engine.bus.subscribe(events)
    metrics = Metrics()
    metrics.attach(engine)
    capacity = engine.capacity()

    def resource(samples: Samples, name: str) -> dict[str, float]:
        return {dict(k)["resource"]: v for k, v in series(samples, name).items()}

    samples = scrape(metrics)
    assert resource(samples, "legato_resource_capacity") == capacity
    assert set(resource(samples, "legato_resource_held").values()) == {0.0}

    planned = _gated_plan(gate)
    run = planned.open(engine=engine)
    handles = [run.submit({"x": x}) for x in range(3)]
    events.wait_for(lambda e: isinstance(e, NodeStarted))  # one holds the planner
    samples = scrape(metrics)
    assert resource(samples, "legato_resource_held")["planner"] == 1.0
    assert resource(samples, "legato_resource_capacity") == capacity
    gate.set()
    assert [h.result(WAIT) for h in handles] == [0, 1, 2]
    run.close()
    assert run.wait(WAIT)
    assert resource(scrape(metrics), "legato_resource_held")["planner"] == 0.0


class Model:
    """A class component: its instance stays warm between calls."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, x: int) -> int:
        self.calls += 1
        return x


def test_queue_depth_running_calls_and_instances_are_scraped_per_component(
    make_engine: MakeEngine, gate: threading.Event
) -> None:
    engine = make_engine(cpus=4, resources={"planner": 1})
    events = Events()
    engine.bus.subscribe(events)
    metrics = Metrics()
    metrics.attach(engine)
    warm = lg.component(executor="inline", cpus=0)(Model)
    planned = _gated_plan(gate)

    @lg.pipeline
    def modelled(x: int) -> int:
        return warm()(x)

    assert list(modelled.map(range(2), engine=engine)) == [0, 1]
    run = planned.open(engine=engine)
    handles = [run.submit({"x": x}) for x in range(3)]  # one runs, two wait for the planner
    events.wait_for(lambda e: isinstance(e, NodeStarted) and "plan" in e.node)
    events.wait_for(lambda e: len(events.of(AdmissionWaited)) >= 2)
    samples = scrape(metrics)
    assert value(samples, "legato_calls_running", component="plan") == 1
    assert value(samples, "legato_queue_depth", component="plan") == 2
    assert value(samples, "legato_instances", component=warm.name) == 1
    gate.set()
    assert [h.result(WAIT) for h in handles] == [0, 1, 2]
    run.close()
    assert run.wait(WAIT)
    samples = scrape(metrics)
    assert value(samples, "legato_calls_running", component="plan") == 0
    assert value(samples, "legato_queue_depth", component="plan") == 0


# -- wiring ------------------------------------------------------------------------------------


def test_a_detached_engine_is_no_longer_counted_but_its_counts_stay(engine: lg.Engine) -> None:
    @lg.component(executor="inline")
    def inc(x: int) -> int:
        return x + 1

    @lg.pipeline
    def incremented(x: int) -> int:
        return inc(x)

    metrics = Metrics()
    detach = metrics.attach(engine)
    assert engine.bus.wants(NodeFinished)
    assert not engine.bus.wants(NodeQueued)  # never built for the metrics alone
    assert list(incremented.map(range(3), engine=engine)) == [1, 2, 3]
    detach()
    detach()  # twice: nothing more
    assert list(incremented.map(range(3), engine=engine)) == [1, 2, 3]
    samples = scrape(metrics)
    assert value(samples, "legato_calls_total", component="inc") == 3
    assert series(samples, "legato_resource_capacity") == {}  # no engine to ask any more
    assert not engine.bus.active


def test_two_metrics_never_share_counts(engine: lg.Engine) -> None:
    @lg.component(executor="inline")
    def inc(x: int) -> int:
        return x + 1

    @lg.pipeline
    def incremented(x: int) -> int:
        return inc(x)

    first, second = Metrics(), Metrics()
    detach = first.attach(engine)
    assert list(incremented.map(range(2), engine=engine)) == [1, 2]
    detach()
    second.attach(engine)
    assert list(incremented.map(range(5), engine=engine)) == [1, 2, 3, 4, 5]
    assert value(scrape(first), "legato_calls_total", component="inc") == 2
    assert value(scrape(second), "legato_calls_total", component="inc") == 5
    assert default() is default()


def test_http_requests_are_counted_by_pipeline_and_status() -> None:
    metrics = Metrics()
    for status, seconds in ((200, 0.01), (200, 0.02), (429, 0.0005), (504, 3.0)):
        metrics.http_request("greet", status, seconds)
    samples = scrape(metrics)
    assert series(samples, "legato_http_requests_total") == {
        (("pipeline", "greet"), ("status", "200")): 2.0,
        (("pipeline", "greet"), ("status", "429")): 1.0,
        (("pipeline", "greet"), ("status", "504")): 1.0}
    assert_histogram(samples, "legato_http_request_duration_seconds", 4, pipeline="greet")
    assert value(samples, "legato_http_request_duration_seconds_sum",
                 pipeline="greet") == pytest.approx(3.0305)


@pytest.mark.parametrize(("node", "component"), [
    ("score", "score"), ("refine[2]/score", "score"), ("embed[3]", "embed"),
    ("outer[0]/inner[12]/rank", "rank")])
def test_a_node_path_counts_under_its_component_name(node: str, component: str) -> None:
    assert component_of(node) == component


def test_every_metric_rendered_is_documented(engine: lg.Engine, metrics: Metrics) -> None:
    metrics.http_request("p", 200, 0.1)
    rendered = {family.name for family in
                text_string_to_metric_families(metrics.render()[0].decode())}
    documented = {name.removesuffix("_total") for name in NAMES}
    assert rendered <= documented
    docs = (Path(__file__).parents[2] / "docs" / "observability.md").read_text()
    for name in NAMES:
        assert f"`{name}`" in docs, f"{name} is not in docs/observability.md"


def engine_capacity(metrics: Metrics) -> dict[str, float]:
    _, engines = metrics.attached()
    return engines[0].usage().capacity  # type: ignore[return-value]


def test_the_metrics_route_answers_the_prometheus_text_format(metrics: Metrics) -> None:
    pytest.importorskip("starlette")
    httpx = pytest.importorskip("httpx")
    from starlette.applications import Starlette

    api = Starlette()
    api.add_route("/metrics", metrics_route(metrics), methods=["GET"])
    transport = httpx.ASGITransport(app=api)

    async def get() -> Any:
        async with httpx.AsyncClient(transport=transport, base_url="http://ui") as client:
            return await client.get("/metrics")

    import asyncio

    response = asyncio.run(get())
    assert response.status_code == 200
    assert response.headers["content-type"] == CONTENT_TYPE
    assert value(parse(response.text), "legato_resource_capacity",
                 resource="cpus") == engine_capacity(metrics)["cpus"]


# -- a served app's /metrics -------------------------------------------------------------------

GATE = threading.Event()


@lg.component(resources={"slot": 1}, cpus=0)
def hold(x: int) -> int:
    if not GATE.wait(WAIT):
        raise TimeoutError("the test never opened the gate")
    return x


@lg.pipeline
def gated(x: int) -> int:
    return hold(x)


def until(predicate: Callable[[], bool], what: str, *, timeout: float = WAIT) -> None:
    pause = threading.Event()
    for _ in range(int(timeout / 0.01)):
        if predicate():
            return
        pause.wait(0.01)
    assert predicate(), f"never saw {what}"


def test_a_served_apps_metrics_count_requests_by_status_and_the_engines_calls(
    engine: lg.Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("uvicorn")
    httpx = pytest.importorskip("httpx")
    from legato.serve import app, running

    monkeypatch.delenv("LEGATO_API_KEYS", raising=False)
    engine.declare({"slot": 1})
    GATE.set()
    api = app(gated, engine=engine, max_queue=2, drain_timeout=10)
    service = api.state.service
    gate = service.served["gated"].gate
    try:
        with running(api) as url, httpx.Client(base_url=url, timeout=WAIT) as client, \
                ThreadPoolExecutor(2) as pool:
            assert service.wait_ready(WAIT), service.error
            for x in range(3):  # 3 x 200
                assert client.post("/v1/pipelines/gated", json={"x": x}).status_code == 200
            GATE.clear()
            held = pool.submit(client.post, "/v1/pipelines/gated", json={"x": 10})
            until(lambda: gate.admitted == 1, "the first request admitted")
            late = client.post("/v1/pipelines/gated", json={"x": 11},  # waits for the slot
                               headers={"X-Request-Timeout": "0.2"})
            assert late.status_code == 504
            queued = pool.submit(client.post, "/v1/pipelines/gated", json={"x": 12})
            until(lambda: gate.admitted == 2, "two requests admitted")
            refused = client.post("/v1/pipelines/gated", json={"x": 13})
            assert refused.status_code == 429
            GATE.set()
            assert held.result(WAIT).status_code == 200
            assert queued.result(WAIT).status_code == 200

            def scraped() -> Samples:
                response = client.get("/metrics")
                assert response.status_code == 200
                assert response.headers["content-type"] == CONTENT_TYPE
                return parse(response.text)

            def http(status: int) -> float:
                return value(scraped(), "legato_http_requests_total", pipeline="gated",
                             status=str(status))

            until(lambda: http(200) == 5, "5 OK requests counted")  # counted at their end
            samples = scraped()
            assert series(samples, "legato_http_requests_total") == {
                (("pipeline", "gated"), ("status", "200")): 5.0,
                (("pipeline", "gated"), ("status", "429")): 1.0,
                (("pipeline", "gated"), ("status", "504")): 1.0}
            assert {str(status): count for (_, status), count in service.counts.items()} == {
                "200": 5, "429": 1, "504": 1}
            assert_histogram(samples, "legato_http_request_duration_seconds", 7,
                             pipeline="gated")
            assert value(samples, "legato_serve_refused_total", pipeline="gated") == 1
            assert value(samples, "legato_serve_admitted", pipeline="gated") == 0
            assert value(samples, "legato_calls_total", component="hold") == 5
            assert value(samples, "legato_items_total", pipeline="gated", status="ok") == 5
            assert value(samples, "legato_items_total", pipeline="gated", status="failed") == 1
            assert series(samples, "legato_deadline_missed_total") == {
                (("node", "gated"),): 1.0}
            capacity = {dict(k)["resource"]: v
                        for k, v in series(samples, "legato_resource_capacity").items()}
            assert capacity == engine.capacity()
    finally:
        GATE.set()
    assert not engine.bus.active  # the app's metrics detached when it stopped
