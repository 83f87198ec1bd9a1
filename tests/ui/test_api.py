"""The JSON API and the pages over a recorded SQLite store, through a real server."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from ui_support import Recorded, Served

from legato.store import Store


@pytest.fixture
def ui(recorded: Recorded, serving) -> Served:
    return serving(recorded.path)


def test_runs_lists_recorded_runs_newest_first(ui: Served, recorded: Recorded) -> None:
    page = ui.client.get("/api/runs").json()
    assert [run["pipeline"] for run in page["runs"]] == ["waiting", "scored"]
    scored = page["runs"][1]
    assert scored["id"] == recorded.run
    assert scored["status"] == "failed"
    assert (scored["done"], scored["failed"], scored["recorded"], scored["total"]) == (
        17, 3, 20, 20)
    assert scored["duration"] == pytest.approx(scored["finished"] - scored["started"], abs=1e-5)
    assert scored["live"] is False
    assert set(scored) == {"id", "pipeline", "status", "mode", "started", "finished",
                           "duration", "done", "failed", "recorded", "total", "live"}
    assert page["next"] is None
    assert page["total"] == 2
    assert page["pipelines"] == ["scored", "waiting"]
    assert {"ok", "failed", "running"} <= set(page["statuses"])
    assert page["store_error"] is None


def test_runs_filter_by_pipeline_and_status(ui: Served) -> None:
    assert [r["pipeline"] for r in ui.client.get(
        "/api/runs", params={"pipeline": "waiting"}).json()["runs"]] == ["waiting"]
    assert [r["status"] for r in ui.client.get(
        "/api/runs", params={"status": "failed"}).json()["runs"]] == ["failed"]
    assert ui.client.get("/api/runs", params={"status": "cancelled"}).json()["runs"] == []
    assert [r["mode"] for r in ui.client.get(
        "/api/runs", params={"mode": "map"}).json()["runs"]] == ["map"]


def test_runs_pages_with_a_cursor(ui: Served) -> None:
    first = ui.client.get("/api/runs", params={"limit": 1}).json()
    assert len(first["runs"]) == 1
    assert first["next"] is not None
    second = ui.client.get("/api/runs", params={"limit": 1, "before": first["next"]}).json()
    assert [r["pipeline"] for r in first["runs"] + second["runs"]] == ["waiting", "scored"]
    assert second["next"] is None


def test_a_cursor_the_api_did_not_give_is_a_400(ui: Served) -> None:
    response = ui.client.get("/api/runs", params={"before": "not-a-cursor"})
    assert response.status_code == 400
    assert "cursor" in response.json()["detail"]


def test_run_detail_counts_each_node(ui: Served, recorded: Recorded) -> None:
    detail = ui.client.get(f"/api/runs/{recorded.run}").json()
    assert detail["live"] is False
    run = detail["run"]
    assert run["id"] == recorded.run
    assert {"error", "target", "inputs", "options", "host", "pid"} <= set(run)
    nodes = detail["nodes"]
    assert set(nodes) == {"double", "wobbly", "check"}
    assert nodes["double"]["status"] == "ok"
    assert (nodes["double"]["count"], nodes["double"]["ok"]) == (20, 20)
    # wobbly's first attempt fails for y = 0, 4, ... 36 (10 values), then succeeds
    assert nodes["wobbly"]["status"] == "retried"
    assert (nodes["wobbly"]["retries"], nodes["wobbly"]["ok"], nodes["wobbly"]["failed"]) == (
        10, 20, 0)
    # check fails for good for y = 10, 20, 30
    assert nodes["check"]["status"] == "failed"
    assert (nodes["check"]["failed"], nodes["check"]["ok"]) == (3, 17)
    stats = nodes["double"]
    assert 0 <= stats["p50"] <= stats["p95"]
    assert stats["batch"] == {"count": 0, "mean": None, "max": None, "sizes": {}}
    assert detail["graph"]["name"] == "scored"  # the pipeline JSON (legato.draw.to_dict)
    assert run["mode"] == "map"


def test_unknown_run_is_a_404_in_the_api_and_the_page(ui: Served) -> None:
    response = ui.client.get("/api/runs/nosuchrun")
    assert response.status_code == 404
    assert response.json() == {"detail": "run nosuchrun not found"}
    for tail in ("", "/timeline", "/failures", "/service", "/stream"):
        assert ui.client.get(f"/api/runs/nosuchrun{tail}").status_code == 404
    for tail in ("", "/timeline", "/service", "/stream"):
        page = ui.client.get(f"/runs/nosuchrun{tail}")
        assert page.status_code == 404
        assert page.headers["content-type"].startswith("text/html")
        assert "Run nosuchrun not found" in page.text
        assert '<meta name="legato-status" content="404">' in page.text


def test_pages_serve_index_with_the_base(ui: Served, recorded: Recorded) -> None:
    for path in ("/", "/runs", f"/runs/{recorded.run}", f"/runs/{recorded.run}/timeline",
                 f"/runs/{recorded.run}/service", f"/runs/{recorded.run}/stream"):
        page = ui.client.get(path)
        assert page.status_code == 200, path
        assert '<meta name="legato-base" content="">' in page.text
        assert '<div id="app">' in page.text


def test_static_assets_and_nothing_outside_them(ui: Served) -> None:
    asset = ui.client.get("/static/app.js")
    assert asset.status_code == 200
    assert "legato" in asset.text
    assert ui.client.get("/static/missing.js").status_code == 404
    assert ui.client.get("/static/..%2F..%2Fetc%2Fpasswd").status_code == 404


def test_timeline_has_one_bar_per_execution(ui: Served, recorded: Recorded) -> None:
    timeline = ui.client.get(f"/api/runs/{recorded.run}/timeline").json()
    with Store.open(recorded.path) as store:
        rows = store.nodes(recorded.run)
    bars = timeline["bars"]
    assert set(bars) == {"lane", "node", "item", "attempt", "start", "end", "status"}
    assert all(len(column) == len(rows) for column in bars.values())
    names = timeline["nodes"]
    assert sorted(names) == ["check", "double", "wobbly"]
    statuses = {(names[n], s) for n, s in zip(bars["node"], bars["status"], strict=True)}
    assert ("wobbly", 2) in statuses  # failed, then retried
    assert ("check", 1) in statuses  # failed for good
    assert sum(1 for s in bars["status"] if s == 2) == 10
    assert all(0 <= lane < len(timeline["lanes"]) for lane in bars["lane"])
    assert all(0 <= s <= e for s, e in zip(bars["start"], bars["end"], strict=True))
    assert timeline["t1"] >= timeline["t0"]
    assert all(lane.startswith("legato-worker") for lane in timeline["lanes"])


def test_timeline_aggregate_has_a_lane_per_node(ui: Served, recorded: Recorded) -> None:
    timeline = ui.client.get(f"/api/runs/{recorded.run}/timeline",
                             params={"aggregate": 1}).json()
    assert timeline["lanes"] == ["check", "double", "wobbly"]
    lanes, nodes = timeline["bars"]["lane"], timeline["bars"]["node"]
    assert all(timeline["lanes"][lane] == timeline["nodes"][node]
               for lane, node in zip(lanes, nodes, strict=True))


def test_failures_are_grouped_by_type_and_place(ui: Served, recorded: Recorded) -> None:
    groups = ui.client.get(f"/api/runs/{recorded.run}/failures").json()["groups"]
    by_type = {group["type"]: group for group in groups}
    assert set(by_type) == {"RuntimeError", "ValueError"}
    flaky, bad = by_type["RuntimeError"], by_type["ValueError"]
    assert (flaky["node"], flaky["count"]) == ("wobbly", 10)
    assert (bad["node"], bad["count"]) == ("check", 3)
    assert bad["location"] == where_in_pipelines("# marker: raise")
    assert flaky["location"] == where_in_pipelines("# marker: flake")
    assert bad["message"].startswith("ValueError: bad value")
    failure = bad["failures"][0]
    assert set(failure) >= {"item", "attempt", "error", "traceback", "inputs"}
    assert failure["item"] in (5, 10, 15)
    assert "ValueError" in failure["traceback"]
    assert all(f["retried"] for f in flaky["failures"])
    assert not any(f["retried"] for f in bad["failures"])


def where_in_pipelines(marker: str) -> str:
    path = Path(__file__).with_name("ui_pipelines.py")
    lines = [n for n, text in enumerate(path.read_text().splitlines(), 1) if marker in text]
    assert len(lines) == 1
    return f"ui_pipelines.py:{lines[0]}"


def test_service_and_stream_of_a_recorded_run(ui: Served, recorded: Recorded) -> None:
    service = ui.client.get(f"/api/runs/{recorded.run}/service").json()
    assert service["live"] is False
    assert set(service) == {"live", "window", "rate", "queue_depth", "latency",
                            "batch_sizes", "responses", "series"}
    assert service["rate"] > 0
    assert service["latency"]["p50"] <= service["latency"]["p99"]
    assert sum(point["rate"] for point in service["series"]) > 0
    stream = ui.client.get(f"/api/runs/{recorded.run}/stream").json()
    assert stream["live"] is False
    assert set(stream) == {"live", "rate", "jitter", "stages", "series", "stats"}
    assert set(stream["stages"]) == {"double", "wobbly", "check"}
    assert set(stream["stages"]["check"]) == {"p50", "p99", "drops", "misses"}


def test_events_of_a_run_not_live_is_a_404(ui: Served, recorded: Recorded) -> None:
    assert ui.client.get(f"/api/runs/{recorded.run}/events").status_code == 404


def test_the_ui_never_writes_to_the_store(recorded: Recorded, serving) -> None:
    before = recorded.path.read_bytes()
    stat = os.stat(recorded.path)
    listing = {p.name for p in recorded.path.parent.iterdir()}
    ui = serving(recorded.path)
    client = ui.client
    page = client.get("/api/runs").json()
    for run in page["runs"]:
        for tail in ("", "/timeline", "/timeline?aggregate=1", "/failures", "/service",
                     "/stream", "/events"):
            assert client.get(f"/api/runs/{run['id']}{tail}").status_code in (200, 404)
        for tail in ("", "/timeline", "/service", "/stream"):
            assert client.get(f"/runs/{run['id']}{tail}").status_code == 200
    client.get("/api/runs", params={"pipeline": "scored", "status": "failed", "limit": 1})
    client.get("/")
    client.get("/metrics")
    ui.handle.stop()
    assert recorded.path.read_bytes() == before
    after = os.stat(recorded.path)
    assert (after.st_mtime_ns, after.st_size) == (stat.st_mtime_ns, stat.st_size)
    created = {p.name for p in recorded.path.parent.iterdir()} - listing
    assert not {name for name in created if not name.endswith(("-shm", "-wal"))}


def test_json_of_the_api_is_compact(ui: Served, recorded: Recorded) -> None:
    text = ui.client.get(f"/api/runs/{recorded.run}/timeline").text
    assert ", " not in text
    json.loads(text)
