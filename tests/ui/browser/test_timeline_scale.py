"""The timeline with 20,000 node executions: every bar is in the data, a zoomed-in frame draws
only what shows (far fewer rectangles than bars), and the wheel and drag work. The run is
synthetic: its node rows are inserted through SQL into a store a real run created."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import browser_pipelines as bp
import pytest

import legato as lg

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("fresh_pipelines")]

BARS = 20_000
WORKERS = 8
NODES = ("load", "embed", "score", "rank")
RUN = "bigrun000001"
FRAMES = Path(__file__).with_name("artefacts") / "timeline-frames.json"


def synthetic_run(store: Any) -> None:
    """A finished run of BARS node executions over WORKERS threads and about 60 seconds, some
    retried and some failed, written straight into the store's tables."""
    import sqlalchemy as sa

    from legato.store import schema

    rng = random.Random(15)
    t0 = 1_700_000_000.0
    clock = [t0] * WORKERS
    rows: list[dict[str, Any]] = []
    for i in range(BARS):
        worker = i % WORKERS
        start = clock[worker] + rng.uniform(0.0, 0.004)
        end = start + rng.uniform(0.005, 0.04)
        clock[worker] = end
        status = "ok" if i % 97 else ("retried" if i % 2 else "failed")
        rows.append({"run_id": RUN, "item": i // len(NODES), "node": rng.choice(NODES),
                     "attempt": 1, "status": status, "queued": start, "start": start,
                     "end": end, "executor": "thread", "worker": f"thread-{worker}",
                     "error": None if status == "ok" else "ValueError: synthetic"})
    run: dict[str, Any] = {
        "id": RUN, "pipeline": "synthetic", "fingerprint": "0" * 16, "status": "ok",
        "started": t0, "finished": max(clock), "done": BARS // len(NODES), "failed": 0,
        "inputs": "{}", "options": "{}", "host": "test", "pid": 1, "process": "",
        "total": BARS // len(NODES),
    }
    if "mode" in schema.runs.c:
        run["mode"] = "map"
    engine = sa.create_engine(store.url if hasattr(store, "url") else store)
    with engine.begin() as connection:
        connection.execute(schema.runs.insert(), [run])
        connection.execute(schema.nodes.insert(), rows)
    engine.dispose()


def frame(page: Any, action: str) -> float:
    """Run ``action`` (JS on ``window.__legatoTimeline`` as ``t``) and wait for the frame it
    schedules; its drawing time in ms."""
    count = page.evaluate("() => window.__legatoTimeline.frames.length")
    page.evaluate(f"() => {{ const t = window.__legatoTimeline; {action}; }}")
    page.wait_for_function(f"() => window.__legatoTimeline.frames.length > {count}")
    return float(page.evaluate("() => window.__legatoTimeline.frames.at(-1)"))


def test_timeline_with_20000_bars_zooms_and_draws_only_what_shows(
        page: Any, ui: Any, store: Any, store_url: str, engine: lg.Engine) -> None:
    from playwright.sync_api import expect

    list(bp.warm.map([{"x": 1}], store=store, engine=engine))  # the store's tables, migrated
    synthetic_run(store_url)

    page.goto(f"{ui()}/runs/{RUN}/timeline")
    canvas = page.locator("canvas.timeline")
    expect(canvas).to_have_attribute("data-bars", str(BARS))
    page.wait_for_function("() => (window.__legatoTimeline?.frames.length ?? 0) > 0")
    whole = int(canvas.get_attribute("data-drawn") or 0)
    assert 0 < whole < BARS, "the whole run drew a rectangle per bar: sub-pixel bars not merged"

    box = canvas.bounding_box()
    assert box is not None
    middle = box["width"] * 0.6
    times: dict[str, list[float]] = {"zoom in": [], "zoom out": [], "pan": []}
    drawn: list[int] = []
    for _ in range(5):
        times["zoom in"].append(frame(page, f"t.zoom(2, {middle})"))
        drawn.append(int(canvas.get_attribute("data-drawn") or 0))
    assert 0 < drawn[-1] < BARS / 4, "a zoomed-in frame drew bars it does not show"
    for _ in range(4):
        times["pan"].append(frame(page, "t.pan(-200)"))
    for _ in range(5):
        times["zoom out"].append(frame(page, f"t.zoom(0.5, {middle})"))
    expect(canvas).to_have_attribute("data-bars", str(BARS))

    # the real wheel and drag move the view too
    before = page.evaluate("() => window.__legatoTimeline.view()")
    page.mouse.move(box["x"] + middle, box["y"] + 40)
    page.mouse.wheel(0, -600)
    span = before[1] - before[0]
    page.wait_for_function(
        f"() => {{ const [a, b] = window.__legatoTimeline.view(); return b - a < {span}; }}")
    zoomed = page.evaluate("() => window.__legatoTimeline.view()")
    page.mouse.down()
    page.mouse.move(box["x"] + middle - 150, box["y"] + 40, steps=5)
    page.mouse.up()
    page.wait_for_function(f"() => window.__legatoTimeline.view()[0] > {zoomed[0]}")
    page.mouse.dblclick(box["x"] + middle, box["y"] + 40)
    page.wait_for_function(f"() => window.__legatoTimeline.view()[0] <= {before[0]}")

    FRAMES.parent.mkdir(exist_ok=True)
    times = {key: [round(ms, 2) for ms in values] for key, values in times.items()}
    FRAMES.write_text(json.dumps({"bars": BARS, "drawn_whole": whole, "drawn_zoomed": drawn,
                                  "frame_ms": times}, indent=2))
    print(f"\ntimeline frames at {BARS} bars (ms): {json.dumps(times)}; drawn: whole {whole}, "
          f"zoomed {drawn}")
