"""Live pages: a run's node colours change while it runs (server-sent events from the engine's
bus), and a served pipeline's dashboard counts requests under load."""

from __future__ import annotations

import threading
from typing import Any

import browser_pipelines as bp
import pytest

import legato as lg
from harness import Background

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("fresh_pipelines")]

STATUS = 'svg.graph [data-node="{}"]'


def stroke(page: Any, node: str) -> str:
    return str(page.eval_on_selector(
        f'{STATUS.format(node)} rect', "rect => getComputedStyle(rect).stroke"))


def test_live_run_changes_node_colours_while_it_runs(page: Any, ui: Any, store: Any,
                                                      engine: lg.Engine) -> None:
    from playwright.sync_api import expect

    base = ui(engine=engine)  # the UI follows this engine's bus: the run is live
    run = Background(lambda: list(bp.gated.map([{"x": 1}], store=store, engine=engine,
                                               run_id="liverun0001")))
    assert bp.ENTERED.wait(30), "the gated component never started"

    page.goto(f"{base}/runs/liverun0001")
    expect(page.locator(".run-header .badge")).to_have_attribute("data-status", "running")
    expect(page.locator(STATUS.format("first"))).to_have_attribute("data-status", "ok")
    expect(page.locator(STATUS.format("hold"))).to_have_attribute("data-status", "running")
    expect(page.locator(STATUS.format("after"))).to_have_attribute("data-status", "pending")
    running_colour = stroke(page, "hold")

    bp.GATE.set()
    assert run.result(30) == [3 * 2]
    expect(page.locator(STATUS.format("hold"))).to_have_attribute("data-status", "ok")
    expect(page.locator(STATUS.format("after"))).to_have_attribute("data-status", "ok")
    expect(page.locator(".run-header .badge")).to_have_attribute("data-status", "ok")
    assert stroke(page, "hold") != running_colour


def test_service_page_updates_under_load(page: Any, store_url: str, engine: lg.Engine,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("fastapi")
    httpx = pytest.importorskip("httpx")
    from playwright.sync_api import expect

    from legato.serve import app, running

    monkeypatch.delenv("LEGATO_API_KEYS", raising=False)
    api = app(bp.echo, engine=engine, store=store_url, drain_timeout=10)
    with running(api) as url, httpx.Client(base_url=url, timeout=30) as client:
        assert api.state.service.wait_ready(30), api.state.service.error
        found: list[str] = []

        def listed() -> bool:
            runs = client.get("/ui/api/runs", params={"pipeline": "echo"}).json()["runs"]
            found[:] = [r["id"] for r in runs if r["status"] == "running"]
            return bool(found)

        page.goto(f"{url}/ui/runs")
        page.wait_for_function("() => true")  # the page is up; the service's run is listed next
        assert wait_until(listed), "the service's run never showed in the UI's API"
        run_id = found[0]

        page.goto(f"{url}/ui/runs/{run_id}/service")
        rate = page.locator('[data-metric="rate"]')
        expect(rate).to_have_attribute("data-value", "0")

        stop = threading.Event()
        sent: list[int] = []

        def load() -> None:
            with httpx.Client(base_url=url, timeout=30) as caller:
                while not stop.is_set():
                    response = caller.post("/v1/pipelines/echo", json={"text": "hi"})
                    sent.append(response.status_code)

        sender = threading.Thread(target=load, daemon=True)
        sender.start()
        try:
            page.wait_for_function(
                "() => Number(document.querySelector('[data-metric=\"rate\"]').dataset.value) > 0")
            page.wait_for_function(
                "() => Number(document.querySelector('[data-metric=\"responses\"]')"
                ".dataset.value) > 0")
            expect(page.locator('figure[data-chart="rate"] path.line')).not_to_have_attribute(
                "d", "")
        finally:
            stop.set()
            sender.join(30)
        assert sent
        assert set(sent) == {200}


def wait_until(predicate: Any, timeout: float = 15.0) -> bool:
    """Wait (bounded) for state another thread changes."""
    pause = threading.Event()
    for _ in range(int(timeout / 0.02)):
        if predicate():
            return True
        pause.wait(0.02)
    return bool(predicate())


def test_stream_page_shows_rate_and_stages_while_it_runs(page: Any, ui: Any, store: Any,
                                                          engine: lg.Engine) -> None:
    from playwright.sync_api import expect

    base = ui(engine=engine)
    stream = bp.ticking.stream(lg.Tick(50, count=1_000), engine=engine, store=store)
    consumer = Background(lambda: sum(1 for _ in stream))
    try:
        page.goto(f"{base}/runs/{stream.run.id}/stream")
        page.wait_for_function(
            "() => Number(document.querySelector('[data-metric=\"rate\"]')?.dataset.value) > 0")
        expect(page.locator('[data-testid="stages"] tr[data-stage="stamp"]')).to_be_visible()
        expect(page.locator('[data-metric="drops"]')).to_have_attribute("data-value", "0")
    finally:
        stream.close()
    consumer.result()

