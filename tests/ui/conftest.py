"""UI tests: a real SQLite store recorded by real runs, the UI on a real uvicorn server on
127.0.0.1 (a free port, in a background thread), read with httpx. ``ui_support.wait_for``
polls a condition with a deadline (no sleep-and-hope)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
httpx = pytest.importorskip("httpx")

import ui_pipelines  # noqa: E402
from ui_support import INDEX, Recorded, Served  # noqa: E402

import legato as lg  # noqa: E402
from legato.ui import start  # noqa: E402


@pytest.fixture
def recorded(tmp_path: Path, engine: lg.Engine) -> Recorded:
    ui_pipelines.reset()
    path = tmp_path / "store" / "legato.db"
    list(ui_pipelines.scored.map([{"x": x} for x in range(20)], engine=engine, store=path,
                                 on_error="skip", run_id="scored0001"))
    ui_pipelines.GATE.set()
    ui_pipelines.waiting.run({"x": 1}, engine=engine, store=path)
    return Recorded(path, "scored0001", 20)


@pytest.fixture
def static_dir(tmp_path: Path) -> Path:
    """A stand-in for the front end's built assets."""
    folder = tmp_path / "static"
    folder.mkdir()
    (folder / "index.html").write_text(INDEX)
    (folder / "app.js").write_text("console.log('legato');\n")
    return folder


@pytest.fixture
def serving(engine: lg.Engine, static_dir: Path) -> Iterator[Callable[..., Served]]:
    """Start the UI over a store (on the test's engine too); stopped after the test."""
    handles: list[Any] = []
    clients: list[Any] = []

    def begin(store: Any, **options: Any) -> Served:
        options.setdefault("static_dir", static_dir)
        handle = start(store, port=0, engine=engine, **options)
        handles.append(handle)
        client = httpx.Client(base_url=handle.url, timeout=30)
        clients.append(client)
        return Served(handle.url, client, handle)

    yield begin
    for client in clients:
        client.close()
    for handle in handles:
        handle.stop()
