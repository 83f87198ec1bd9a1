"""``/readyz`` turns 200 only once every class component's model is loaded (Engine.warm):
the first request finds it warm."""

from __future__ import annotations

import httpx
import serve_pipelines
from serve_pipelines import slow_start
from serve_support import until

import legato as lg
from legato.serve import app, running


def test_readyz_waits_for_the_models_and_the_first_request_finds_them_built(
    engine: lg.Engine,
) -> None:
    serve_pipelines.LOADING.clear()
    serve_pipelines.LOADED.clear()
    api = app(slow_start, engine=engine, drain_timeout=5)
    try:
        with running(api) as url, httpx.Client(base_url=url, timeout=30) as client:
            assert client.get("/readyz").status_code == 503  # the model is still loading
            assert serve_pipelines.LOADED == []
            serve_pipelines.LOADING.set()
            assert until(lambda: client.get("/readyz").status_code == 200)
            assert serve_pipelines.LOADED == [1]  # built before any request came
            assert client.post("/v1/pipelines/slow_start", json={"x": 1}).json() == {"out": 2}
            assert serve_pipelines.LOADED == [1]  # and not built again
    finally:
        serve_pipelines.LOADING.set()
