"""``legato serve`` mounts the UI at ``/ui``, behind the service's API keys, with the service's
run live on the service page."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import ui_pipelines
from ui_support import wait_for

import legato as lg
from legato.serve import app, running

KEY = {"Authorization": "Bearer s3cret"}


@pytest.fixture
def served(engine: lg.Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
           ) -> Iterator[tuple[httpx.Client, Any]]:
    monkeypatch.delenv("LEGATO_API_KEYS", raising=False)
    api = app(ui_pipelines.doubled, engine=engine, api_keys=("s3cret",),
              store=str(tmp_path / "legato.db"), drain_timeout=10)
    with running(api) as url, httpx.Client(base_url=url, timeout=30) as client:
        assert api.state.service.wait_ready(30), api.state.service.error
        yield client, api.state.service


def test_the_ui_needs_the_key(served: tuple[httpx.Client, Any]) -> None:
    client, _ = served
    for path in ("/ui/", "/ui/api/runs", "/ui/runs/x", "/ui/static/app.js", "/ui/metrics"):
        refused = client.get(path)
        assert refused.status_code == 401, path
        assert refused.headers["www-authenticate"] == "Bearer"
    assert client.get("/ui/api/runs", headers={"Authorization": "Bearer nope"}
                      ).status_code == 401
    assert client.get("/ui/api/runs", headers=KEY).status_code == 200
    page = client.get("/ui/", headers=KEY)
    assert page.status_code == 200
    assert '<meta name="legato-base" content="/ui">' in page.text


def test_the_service_page_is_live(served: tuple[httpx.Client, Any]) -> None:
    client, service = served
    for x in range(5):
        answer = client.post("/v1/pipelines/doubled", json={"x": x}, headers=KEY)
        assert answer.status_code == 200
    assert client.post("/v1/pipelines/doubled", json={"x": 1}).status_code == 401
    run_id = service.served["doubled"].run.id
    runs = client.get("/ui/api/runs", headers=KEY).json()["runs"]
    assert [run["live"] for run in runs if run["id"] == run_id] == [True]
    numbers = wait_for(lambda: (n := client.get(f"/ui/api/runs/{run_id}/service",
                                                headers=KEY).json())["rate"] > 0 and n,
                       what="a live request rate")
    assert numbers["live"] is True
    assert numbers["responses"].get("200") == 5
    assert numbers["latency"]["p50"] is not None
    assert numbers["latency"]["p50"] <= numbers["latency"]["p99"]
    assert numbers["series"]
    detail = client.get(f"/ui/api/runs/{run_id}", headers=KEY).json()
    assert detail["live"] is True
    assert detail["nodes"]["double"]["ok"] == 5


def test_no_ui_mounts_no_ui_and_leaves_the_engine_unwatched(engine: lg.Engine,
                                                           monkeypatch: pytest.MonkeyPatch
                                                           ) -> None:
    from legato.engine.events import NodeStarted

    monkeypatch.delenv("LEGATO_API_KEYS", raising=False)
    api = app(ui_pipelines.doubled, engine=engine, ui=False, drain_timeout=10)
    with running(api) as url, httpx.Client(base_url=url, timeout=30) as client:
        assert api.state.service.wait_ready(30), api.state.service.error
        assert client.post("/v1/pipelines/doubled", json={"x": 2}).json() == {"out": 4}
        assert client.get("/ui/").status_code == 404
        assert not engine.bus.wants(NodeStarted)  # no live hub: nobody takes per-node starts
