"""Lifecycle and records: /healthz and /readyz; SIGTERM drains a real ``legato serve`` process
(readyz 503, new requests 503, the in-flight one finishes, exit 0); the service recorded as one
run, each request an item."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest
from serve_pipelines import failing, gated, greet
from serve_support import Serving, until

import legato as lg
from legato.engine.events import RunStarted
from legato.serve import app, running
from legato.store import Store

HERE = Path(__file__).parent
SRC = HERE.parent.parent / "src"


def test_healthz_and_readyz_once_started(serving: Serving) -> None:
    server = serving(greet)
    assert server.client.get("/healthz").json() == {"status": "alive"}
    assert server.client.get("/readyz").json() == {"status": "ready"}


def test_draining_refuses_new_requests_and_readyz_turns_503(serving: Serving) -> None:
    server = serving(greet)
    assert server.service.drain(timeout=5)
    ready = server.client.get("/readyz")
    assert ready.status_code == 503
    assert ready.json()["state"] == "draining"
    refused = server.client.post("/v1/pipelines/greet", json={"a": 1, "text": "x"})
    assert refused.status_code == 503
    assert server.client.get("/healthz").status_code == 200


def test_each_request_is_an_item_of_one_recorded_run(serving: Serving, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'runs.db'}"
    server = serving(greet, failing, store=url)
    for a in range(3):
        assert server.client.post("/v1/pipelines/greet",
                                  json={"a": a, "text": "x"}).status_code == 200
    assert server.client.post("/v1/pipelines/failing", json={"x": 1}).status_code == 500
    run_ids = {name: served.run.id for name, served in server.service.served.items()
               if served.run is not None}
    server.service.drain(timeout=5)
    server.service.stop()
    with Store.open(url) as store:
        runs = {run.id: run for run in store.runs()}
        assert set(runs) == set(run_ids.values())
        greeted = runs[run_ids["greet"]]
        assert greeted.pipeline == "greet"
        assert greeted.status == "ok"
        assert (greeted.done, greeted.failed) == (3, 0)
        assert [item.status for item in store.items(greeted.id)] == ["ok"] * 3
        failed = store.items(run_ids["failing"])
        assert [item.status for item in failed] == ["failed"]
        assert "cannot take 1" in (failed[0].error or "")


def test_a_service_run_begins_when_the_service_does(serving: Serving, engine: lg.Engine) -> None:
    started: list[RunStarted] = []
    engine.bus.subscribe(started.append, kinds=[RunStarted])
    server = serving(greet)
    served = server.service.served["greet"]
    assert served.run is not None
    assert until(lambda: [(e.run, e.mode) for e in started] == [(served.run.id, "serve")])
    listed = server.client.get("/ui/api/runs").json()["runs"]  # no request served yet
    assert [run["live"] for run in listed if run["id"] == served.run.id] == [True]


def _start(args: list[str], env: dict[str, str]) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen([sys.executable, "-m", "legato.cli", "serve", *args],
                               stderr=subprocess.PIPE, text=True, env=env)
    assert process.stderr is not None
    for _ in range(50):  # a few lines at most before it says where it listens
        line = process.stderr.readline()
        if not line:
            break
        if " at http://" in line:
            return process, line.split(" at ", 1)[1].split()[0]
    process.kill()
    raise AssertionError(f"the server did not start: {line!r}")


@pytest.mark.timeout(120)
def test_sigterm_drains_in_flight_requests_and_exits_0(tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    gate.mkdir()
    store = tmp_path / "runs.db"
    env = {**os.environ, "LEGATO_TEST_GATE": str(gate),
           "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")])}
    env.pop("LEGATO_API_KEYS", None)
    process, url = _start([f"{HERE / 'serve_pipelines.py'}:file_gated", "--port", "0",
                           "--store", str(store), "--drain-timeout", "60"], env)
    try:
        with httpx.Client(base_url=url, timeout=60) as client:
            assert until(lambda: client.get("/readyz").status_code == 200, timeout=30)
            answer: dict[str, Any] = {}
            in_flight = threading.Thread(target=lambda: answer.update(
                response=client.post("/v1/pipelines/file_gated", json={"x": 1})))
            in_flight.start()
            assert until(lambda: (gate / "entered").exists(), timeout=30)
            process.send_signal(signal.SIGTERM)
            assert until(lambda: client.get("/readyz").status_code == 503, timeout=30)
            refused = client.post("/v1/pipelines/file_gated", json={"x": 2})
            assert refused.status_code == 503
            assert refused.json()["title"] == "Shutting down"
            (gate / "open").touch()
            in_flight.join(60)
            assert answer["response"].status_code == 200
            assert answer["response"].json() == {"out": 2}
        assert process.wait(60) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.stderr is not None
    said = process.stderr.read()
    assert "draining 1 in-flight" in said
    assert "stopped" in said
    with Store.open(store) as runs:
        (run,) = runs.runs()
        assert run.pipeline == "file_gated"
        assert run.status == "ok"
        assert run.done == 1


@pytest.mark.timeout(120)
def test_pipeline_serve_serves_until_sigterm(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), str(HERE)])}
    env.pop("LEGATO_API_KEYS", None)
    process = subprocess.Popen(
        [sys.executable, "-c", "import serve_pipelines as p; p.greet.serve(port=0)"],
        stderr=subprocess.PIPE, text=True, env=env)
    assert process.stderr is not None
    try:
        url = ""
        for _ in range(50):
            line = process.stderr.readline()
            if " at http://" in line or not line:
                url = line.split(" at ", 1)[1].split()[0] if line else ""
                break
        assert url, "pipeline.serve() did not say where it listens"
        with httpx.Client(base_url=url, timeout=30) as client:
            assert until(lambda: client.get("/readyz").status_code == 200, timeout=30)
            answer = client.post("/v1/pipelines/greet", json={"a": 1, "text": "ok"})
            assert answer.json() == {"total": 3, "shout": "OK!"}
        process.send_signal(signal.SIGTERM)
        assert process.wait(60) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_a_service_that_cannot_start_is_never_ready_and_says_why(engine: lg.Engine) -> None:
    api = app(gated, engine=engine)  # its component needs a "slot" resource nobody declared
    with running(api) as url, httpx.Client(base_url=url, timeout=30) as client:
        assert not api.state.service.wait_ready(30)
        ready = client.get("/readyz")
        assert ready.status_code == 503
        assert "failed to start: GraphError" in ready.json()["detail"]
        assert "slot" in ready.json()["detail"]
        refused = client.post("/v1/pipelines/gated", json={"x": 1})
        assert refused.status_code == 503
        assert client.get("/healthz").status_code == 200


@pytest.mark.timeout(120)
def test_a_config_file_serves_and_sighup_reloads_the_keys(tmp_path: Path) -> None:
    keys = tmp_path / "keys.txt"
    keys.write_text("first\n")
    config = tmp_path / "legato.yaml"
    config.write_text(f"pipelines:\n  - {HERE / 'serve_pipelines.py'}:greet\nport: 0\n"
                      "api_key_file: keys.txt\nmax_queue: 4\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC),
                                                        os.environ.get("PYTHONPATH", "")])}
    env.pop("LEGATO_API_KEYS", None)
    process, url = _start(["--config", str(config)], env)
    assert process.stderr is not None
    body = {"a": 1, "text": "x"}
    try:
        with httpx.Client(base_url=url, timeout=30) as client:
            assert until(lambda: client.get("/readyz").status_code == 200, timeout=30)

            def post(key: str) -> int:
                return client.post("/v1/pipelines/greet", json=body,
                                   headers={"Authorization": f"Bearer {key}"}).status_code

            assert (post("first"), post("second")) == (200, 401)
            keys.write_text("second\n")
            process.send_signal(signal.SIGHUP)
            line = process.stderr.readline()
            assert "API keys reloaded (1 accepted)" in line
            assert (post("first"), post("second")) == (401, 200)
        process.send_signal(signal.SIGTERM)
        assert process.wait(60) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
