"""Serve tests: a real uvicorn server on 127.0.0.1 (a free port, in a background thread) and a
real HTTP client; ``serving(*pipelines, **options)`` starts one for the test and stops it after.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
httpx = pytest.importorskip("httpx")

import serve_pipelines  # noqa: E402
from serve_support import Served, Serving  # noqa: E402

import legato as lg  # noqa: E402
from legato.serve import app, running  # noqa: E402


@pytest.fixture
def serving(engine: lg.Engine, monkeypatch: pytest.MonkeyPatch) -> Iterator[Serving]:
    """Start a server of the given pipelines (on the test's fresh engine); stopped after.
    Keys only where the test gives them (``LEGATO_API_KEYS`` cleared)."""
    monkeypatch.delenv("LEGATO_API_KEYS", raising=False)
    with ExitStack() as stack:

        def start(*pipelines: lg.Pipeline, **options: Any) -> Served:
            options.setdefault("drain_timeout", 10)
            api = app(*pipelines, engine=engine, **options)
            url = stack.enter_context(running(api))
            assert api.state.service.wait_ready(30), api.state.service.error
            client = stack.enter_context(httpx.Client(base_url=url, timeout=30))
            return Served(url, api.state.service, client, api)

        yield start


@pytest.fixture
def gate() -> Iterator[None]:
    """The in-process gate closed for the test, opened at its end (so nothing is left held)."""
    serve_pipelines.reset_gate()
    yield
    serve_pipelines.GATE.set()
