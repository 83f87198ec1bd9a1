"""The live numbers of ``legato ui`` running inside the process: a stream's page (rate, each
stage's latency, drops by stage) and the Prometheus ``/metrics`` beside it, both from the
engine's events of real runs."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

import legato as lg
from harness import WAIT, Events
from legato.engine.events import AdmissionWaited
from legato.engines import backend_engine
from legato.ui import start

GATE = threading.Event()
SERVED: list[int] = []


@lg.component(name="plan", cpus=0, resources={"planner": 1}, queue=lg.Fifo(1))
def plan(x: int) -> int:
    if not SERVED:
        GATE.wait(WAIT)  # the first call holds the planner while the others queue
    SERVED.append(x)
    return x


@lg.component(name="act", executor="inline", cpus=0)
def act(x: int) -> int:
    return x + 1


@lg.pipeline
def control(x: int) -> int:
    return act(plan(x))


@pytest.fixture
def planner() -> Iterator[lg.Engine]:
    GATE.clear()
    SERVED.clear()
    from legato.backends.local import LocalBackend

    backend = LocalBackend(cpus=2, resources={"planner": 1}, gpus=[])
    yield backend_engine(backend)
    GATE.set()


def test_a_live_streams_page_has_its_rate_stages_and_drops(
        planner: lg.Engine, static_dir: Path, tmp_path: Path) -> None:
    handle = start(tmp_path / "legato.db", port=0, engine=planner, static_dir=static_dir)
    try:
        numbers = _streamed(planner, tmp_path, handle.url)
    finally:
        handle.stop()
    assert numbers["rate"] > 0
    assert set(numbers["stages"]) == {"plan", "act"}
    assert numbers["stages"]["plan"]["drops"] == 2
    assert numbers["stages"]["act"]["drops"] == 0
    assert numbers["stages"]["act"]["p50"] is not None
    assert numbers["stats"] is not None  # the run's StreamStats, recorded at its end
    assert numbers["stats"]["drops"] == {"plan": {"queue_full": 2}}


def _streamed(planner: lg.Engine, tmp_path: Path, url: str) -> dict[str, Any]:
    """Stream four items while the planner is held (two are dropped); the stream page's
    numbers once it has ended."""
    events = Events()
    planner.bus.subscribe(events, kinds=[AdmissionWaited])
    stream = control.stream(range(4), engine=planner, store=tmp_path / "legato.db")
    events.wait_for(lambda e: len(events.all) >= 3)  # items 1 to 3 waited: Fifo(1) kept 3
    GATE.set()
    assert sorted(stream) == [1, 4]  # item 0, then the newest waiting (3); 1 and 2 dropped
    return httpx.get(f"{url}/api/runs/{stream.run.id}/stream", timeout=30).json()


def test_the_uis_metrics_count_the_calls_of_this_process(
        engine: lg.Engine, serving: Callable[..., Any], tmp_path: Path) -> None:
    ui = serving(tmp_path / "legato.db")
    assert list(control_free.map(range(5), engine=engine)) == [1, 2, 3, 4, 5]
    response = ui.client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for family in text_string_to_metric_families(response.text)
               for s in family.samples}
    assert samples[("legato_calls_total", (("component", "act"),))] == 5
    assert samples[("legato_items_total", (("pipeline", "control_free"), ("status", "ok")))] == 5


@lg.pipeline
def control_free(x: int) -> int:
    return act(x)
