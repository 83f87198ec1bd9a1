"""Live runs: the hub follows this process's engines and the browser gets server-sent events.
The gated pipeline holds its ``hold`` step until the test opens the gate, so "running" is
seen for sure, then "ok"."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import ui_pipelines
from ui_support import wait_for

import legato as lg
from legato.ui.live import INTERVAL, Hub


def events(response: Any) -> Iterator[tuple[str, dict[str, Any]]]:
    """The (event, data) pairs of a text/event-stream response, as they come."""
    kind, data = None, []
    for line in response.iter_lines():
        if line.startswith("event: "):
            kind = line[len("event: "):]
        elif line.startswith("data: "):
            data.append(line[len("data: "):])
        elif line == "" and kind is not None:
            yield kind, json.loads("".join(data))
            kind, data = None, []


@pytest.fixture
def gate() -> Iterator[None]:
    ui_pipelines.reset()
    yield
    ui_pipelines.GATE.set()


def _in_background(target: Any) -> threading.Thread:
    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread


def test_a_live_run_goes_from_running_to_ok_over_sse(serving, engine: lg.Engine,
                                                     tmp_path: Path, gate: None) -> None:
    path = tmp_path / "legato.db"
    ui = serving(path)  # the store does not exist yet: opened when the run has made it
    run = _in_background(lambda: list(ui_pipelines.waiting.map(
        [{"x": x} for x in range(3)], engine=engine, store=path, run_id="live0001")))
    wait_for(lambda: ui.client.get("/api/runs/live0001").status_code == 200, what="the run")
    assert ui.client.get("/api/runs/live0001").json()["live"] is True
    seen: list[tuple[str, dict[str, Any]]] = []
    with ui.client.stream("GET", "/api/runs/live0001/events") as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        for kind, data in events(response):
            seen.append((kind, data))
            hold = data.get("nodes", {}).get("hold", {})
            if hold.get("status") == "running" and not ui_pipelines.GATE.is_set():
                assert hold["running"] >= 1
                detail = ui.client.get("/api/runs/live0001").json()
                assert detail["nodes"]["hold"]["status"] == "running"
                assert detail["live"] is True
                ui_pipelines.GATE.set()
            if kind == "run":
                break
    run.join(30)
    statuses = [data["nodes"].get("hold", {}).get("status") for kind, data in seen
                if kind == "nodes"]
    assert "running" in statuses
    assert statuses[-1] == "ok"
    last_kind, last = seen[-1]
    assert last_kind == "run"
    assert last == {"status": "ok", "done": 3, "failed": 0}
    final = seen[-2][1]["nodes"]["hold"]
    assert (final["count"], final["ok"], final["running"]) == (3, 3, 0)
    detail = wait_for(lambda: (d := ui.client.get("/api/runs/live0001").json())["run"][
        "status"] == "ok" and d, what="the run recorded as finished")
    assert detail["live"] is False
    assert detail["nodes"]["hold"]["ok"] == 3


def test_a_run_that_records_nothing_is_listed_while_live(serving, engine: lg.Engine,
                                                         recorded, gate: None) -> None:
    ui = serving(recorded.path)
    ui_pipelines.reset()
    result: list[Any] = []
    run = _in_background(lambda: result.append(
        ui_pipelines.waiting.run({"x": 4}, engine=engine)))
    page = wait_for(lambda: (p := ui.client.get("/api/runs").json())["runs"][0]["live"] and p,
                    what="the live run on the first page")
    live = page["runs"][0]
    assert (live["pipeline"], live["status"]) == ("waiting", "running")
    assert live["id"] not in {r["id"] for r in ui.client.get(
        "/api/runs", params={"status": "ok"}).json()["runs"]}
    detail = wait_for(lambda: (d := ui.client.get(f"/api/runs/{live['id']}").json())[
        "nodes"].get("hold", {}).get("status") == "running" and d, what="hold running")
    assert detail["graph"] is None
    assert ui.client.get(f"/runs/{live['id']}").status_code == 200
    ui_pipelines.GATE.set()
    run.join(30)
    assert result == [8]
    ended = wait_for(lambda: (d := ui.client.get(f"/api/runs/{live['id']}").json())[
        "run"]["status"] == "ok" and d, what="the run ended")
    assert ended["live"] is False
    assert ended["nodes"]["hold"]["ok"] == 1


def test_messages_are_coalesced_to_about_ten_a_second(serving, engine: lg.Engine,
                                                      tmp_path: Path, gate: None) -> None:
    ui = serving(tmp_path / "none.db")
    items = 3000

    def work() -> None:
        list(ui_pipelines.waiting.map([{"x": x} for x in range(items)], engine=engine,
                                      run_id="many0001"))

    run = _in_background(work)
    wait_for(lambda: ui.client.get("/api/runs/many0001").status_code == 200, what="the run")
    messages = 0
    started = time.monotonic()
    opened = threading.Timer(0.3, ui_pipelines.GATE.set)  # let events pile up behind the gate
    opened.start()
    with ui.client.stream("GET", "/api/runs/many0001/events") as response:
        for kind, data in events(response):
            messages += 1
            if kind == "run":
                assert data == {"status": "ok", "done": items, "failed": 0}
                break
    elapsed = time.monotonic() - started
    run.join(30)
    assert messages <= elapsed / INTERVAL + 3, (messages, elapsed)


def test_the_hub_forgets_nothing_of_a_run_it_saw_start(engine: lg.Engine, gate: None) -> None:
    hub = Hub()
    hub.attach(engine)
    hub.attach(engine)  # once per engine
    ui_pipelines.GATE.set()
    list(ui_pipelines.scored.map([{"x": x} for x in range(20)], engine=engine,
                                 on_error="skip", run_id="hub00001"))
    hub.close()
    assert hub.knows("hub00001")
    assert not hub.is_live("hub00001")
    nodes = hub.nodes("hub00001")
    assert nodes is not None
    assert (nodes["check"]["failed"], nodes["check"]["ok"]) == (3, 17)
    assert (nodes["wobbly"]["retries"], nodes["wobbly"]["status"]) == (10, "retried")
    assert nodes["double"]["count"] == 20
    assert hub.status("hub00001") == {"status": "failed", "done": 17, "failed": 3}
