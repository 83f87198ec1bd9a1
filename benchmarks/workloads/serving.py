"""B9: B4's model served over HTTP to 64 concurrent clients, on legato, LitServe and Ray Serve.

The model is B4's (:func:`workloads.batching.model`: 2 ms + 0.05 ms per item, a ``time.sleep``
less the OS's mean overshoot), served one batch at a time, batches of at most 32 gathered for at
most 5 ms, by each server:

- **legato**: B4's pipeline (``workloads.batching.serve``: one batched class component) in
  ``legato.serve.app``, under uvicorn; ``legato-rec`` is the same with the run recorded in a
  SQLite store (``store=``), each request an item.
- **LitServe**: a ``LitAPI`` with ``max_batch_size=32, batch_timeout=0.005`` (one inference
  worker process, one API server process: its defaults on a CPU).
- **Ray Serve**: one replica whose ``@serve.batch(max_batch_size=32,
  batch_wait_timeout_s=0.005)`` method runs the model on a thread (so the replica's event loop
  gathers the next batch meanwhile; one batch at a time, Serve's default), reached through
  Serve's HTTP proxy, on its own local Ray cluster; ``max_ongoing_requests`` is raised from its
  default (5) so that a batch can fill at all.
- **echo** (the client's ceiling): a bare ASGI app under uvicorn that answers at once, no model.
  The client and the servers share the machine's CPUs; this row says how many requests a second
  the client and an HTTP server can exchange here at all.

Every server runs in its own process (``python -m workloads.serving SYSTEM PORT``) on
127.0.0.1, access logs off, and is stopped by SIGTERM to its process group. One client for
all: this process, one ``aiohttp.ClientSession`` with 64 keep-alive connections and 64
coroutines, each sending ``{"x": i}`` and awaiting the answer before its next request, until
the fixed number of requests is sent. Latency is from a request's send to its answer. Before
the figures, each server answers a warm-up of 256 requests; the closed-loop run is repeated 3
times (once with ``--quick``) and the median one, by items/s, is reported.

Not ``httpx.AsyncClient``: against the echo server here, its shared pool delivered 120-370
requests/s with p99s of 0.7-2.2 s where aiohttp delivered 9,000-10,000/s with p99s of 7-14 ms,
so with httpx every server measured the client. One client process: on 2 CPUs more of them
take CPU from the server they measure.

Rows: items/s (one item per request) and p50/p99 latency of the closed-loop run; the ratios
legato / Ray Serve (budget at least 2) and legato / LitServe (at least 1); ``B9-paced``: the p99
latency when requests arrive open-loop, paced at half of legato's measured items/s (each latency
from its due arrival time, so a late send counts), budget ``max_wait + 2 x one full batch's
service + 5 ms``; the peers get the same pace; ``B9-rec``: legato's time per request recorded
over not recorded.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from measure import percentile
from peers import installed, missing_note
from suite import Family, RowSpec, Sample

from workloads.batching import MAX_SIZE, MAX_WAIT_MS, model, service_time

BENCHMARKS = Path(__file__).resolve().parents[1]
CLIENTS = 64
WARMUP = 256
PACED_BUDGET_MS = MAX_WAIT_MS + 2 * 1000 * service_time(MAX_SIZE) + 5.0
START_TIMEOUT_S = 180.0  # a server that is not answering after this long has failed to start
STOP_TIMEOUT_S = 60.0
REQUEST_TIMEOUT_S = 60.0
QUEUE = 4 * CLIENTS  # requests a server holds at once: legato's max_queue, Ray's
# max_ongoing_requests (LitServe has no limit); above the clients' 64, so none is refused

PATHS = {"legato": "/v1/pipelines/serve", "legato-rec": "/v1/pipelines/serve",
         "litserve": "/predict", "ray": "/", "echo": "/"}


# ---------------------------------------------------------------------------------------------
# The client: the same for every server


@dataclass(frozen=True)
class Load:
    """What one client run measured: requests, wall seconds, each request's latency."""

    requests: int
    seconds: float
    latencies: list[float]

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds

    def p(self, q: float) -> float:
        """The q-th percentile latency, in milliseconds."""
        return percentile(self.latencies, q) * 1000


def _client() -> Any:
    import aiohttp

    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=CLIENTS),
                                 timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S))


async def _post(client: Any, url: str, x: int) -> None:
    async with client.post(url, json={"x": x}) as response:
        body = await response.read()
        if response.status != 200:
            raise RuntimeError(f"POST {url} answered {response.status}: {body[:300]!r}")


async def closed_loop(url: str, requests: int) -> Load:
    """``requests`` requests from CLIENTS coroutines, each sending its next once answered."""
    latencies: list[float] = []
    sent = iter(range(requests))

    async def one_client(client: Any) -> None:
        for x in sent:  # a shared iterator: the coroutines take turns at the next index
            began = time.perf_counter()
            await _post(client, url, x)
            latencies.append(time.perf_counter() - began)

    async with _client() as client:
        start = time.perf_counter()
        await asyncio.gather(*(one_client(client) for _ in range(CLIENTS)))
        seconds = time.perf_counter() - start
    return Load(requests, seconds, latencies)


async def open_loop(url: str, requests: int, rate: float) -> Load:
    """``requests`` requests due at ``rate`` a second, each sent at its time whatever is still
    waiting (at most CLIENTS connections: a request past them waits for one, and that counts);
    each latency runs from the request's due time to its answer."""
    latencies: list[float] = []

    async def one(client: Any, x: int, due: float) -> None:
        await _post(client, url, x)
        latencies.append(time.perf_counter() - due)

    async with _client() as client:
        start = time.perf_counter()
        tasks = []
        for x in range(requests):
            due = start + x / rate
            if (wait := due - time.perf_counter()) > 0:
                await asyncio.sleep(wait)
            tasks.append(asyncio.create_task(one(client, x, due)))
        await asyncio.gather(*tasks)
        seconds = time.perf_counter() - start
    return Load(requests, seconds, latencies)


# ---------------------------------------------------------------------------------------------
# The servers, each in its own process


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def running(system: str, *, store: str | None = None) -> Iterator[str]:
    """Start ``system``'s server in a child process, wait until it answers, yield its URL;
    then SIGTERM it (SIGKILL if it has not exited after STOP_TIMEOUT_S)."""
    port = _free_port()
    url = f"http://127.0.0.1:{port}{PATHS[system]}"
    path = os.pathsep.join(p for p in (str(BENCHMARKS), os.environ.get("PYTHONPATH", "")) if p)
    command = [sys.executable, "-m", "workloads.serving", system, str(port)]
    if store is not None:
        command += ["--store", store]
    with tempfile.TemporaryFile() as log:
        child = subprocess.Popen(command, cwd=BENCHMARKS, stdout=log, stderr=subprocess.STDOUT,
                                 env={**os.environ, "PYTHONPATH": path}, start_new_session=True)
        try:
            _wait_until_answering(url, child, log)
            yield url
        finally:
            _stop(child)


def _stop(child: subprocess.Popen[bytes]) -> None:
    """SIGTERM the server; then its whole process group, which LitServe's workers outlive it
    in; SIGKILL what is left after STOP_TIMEOUT_S."""
    child.send_signal(signal.SIGTERM)
    try:
        child.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()
    deadline = time.monotonic() + STOP_TIMEOUT_S
    sent = signal.SIGTERM
    while True:
        try:
            os.killpg(child.pid, sent)  # the group's id is the child's: its own new session
        except ProcessLookupError:
            return
        if time.monotonic() > deadline:
            sent = signal.SIGKILL
        time.sleep(0.1)


def _wait_until_answering(url: str, child: subprocess.Popen[bytes], log: Any) -> None:
    import urllib.error
    import urllib.request

    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if child.poll() is not None:
            log.seek(0)
            raise RuntimeError(f"the server exited {child.returncode} before answering: "
                               f"{log.read().decode(errors='replace')[-1500:]}")
        request = urllib.request.Request(url, data=b'{"x": 0}', method="POST",
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=5.0) as answer:
                if answer.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.25)
    log.seek(0)
    raise RuntimeError(f"the server did not answer {url} within {START_TIMEOUT_S:.0f} s: "
                       f"{log.read().decode(errors='replace')[-1500:]}")


def _serve_legato(port: int, store: str | None) -> None:
    import uvicorn

    import legato.serve
    from workloads.batching import serve as pipeline

    options: dict[str, Any] = {} if store is None else {"store": store}
    app = legato.serve.app(pipeline, max_queue=QUEUE, **options)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def _serve_litserve(port: int) -> None:
    import litserve as ls

    api = _lit_api()(max_batch_size=MAX_SIZE, batch_timeout=MAX_WAIT_MS / 1000)
    server = ls.LitServer(api, accelerator="cpu", workers_per_device=1)
    server.run(host="127.0.0.1", port=port, log_level="warning", generate_client_file=False)


def _lit_api() -> type:
    """The LitAPI class, made on first use (``litserve`` is imported only by its server), kept
    as this module's ``LitModel``: LitServe starts its inference worker by ``spawn``, which
    pickles the API by reference."""
    import litserve as ls

    class LitModel(ls.LitAPI):  # type: ignore[misc]
        def setup(self, device: str) -> None:
            pass

        def decode_request(self, request: dict[str, int]) -> int:
            return request["x"]

        def predict(self, xs: list[int]) -> list[int]:
            return model(xs)

        def encode_response(self, y: int) -> dict[str, int]:
            return {"y": y}

    LitModel.__qualname__ = "LitModel"
    globals()["LitModel"] = LitModel
    return LitModel


def __getattr__(name: str) -> Any:
    if name == "LitModel":  # unpickled in LitServe's worker process
        return _lit_api()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _serve_ray(port: int) -> None:
    import logging

    import ray
    from ray import serve
    from starlette.requests import Request

    @serve.deployment(num_replicas=1, max_ongoing_requests=QUEUE,
                      ray_actor_options={"num_cpus": 0},
                      logging_config={"enable_access_log": False, "log_level": "WARNING"})
    class Model:
        @serve.batch(max_batch_size=MAX_SIZE, batch_wait_timeout_s=MAX_WAIT_MS / 1000)
        async def predict(self, xs: list[int]) -> list[int]:
            return await asyncio.to_thread(model, xs)

        async def __call__(self, request: Request) -> dict[str, int]:
            return {"y": await self.predict((await request.json())["x"])}

    ray.init(address="local", num_cpus=os.cpu_count() or 1, include_dashboard=False,
             log_to_driver=False, logging_level=logging.ERROR)
    stop = _on_sigterm()
    try:
        serve.start(http_options={"host": "127.0.0.1", "port": port},
                    logging_config={"enable_access_log": False, "log_level": "WARNING"})
        serve.run(Model.bind(), name="b9", route_prefix="/")  # type: ignore[attr-defined]
        stop.wait()
    finally:
        serve.shutdown()  # type: ignore[no-untyped-call]
        ray.shutdown()


def _serve_echo(port: int) -> None:
    import json

    import uvicorn

    async def app(scope: dict[str, Any], receive: Callable[..., Any],
                  send: Callable[..., Any]) -> None:
        if scope["type"] != "http":
            return
        body = b""
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        answer = json.dumps({"y": json.loads(body)["x"]}).encode()
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": answer})

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def _on_sigterm() -> Any:
    import threading

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    return stop


def _serve(argv: list[str]) -> None:
    system, port = argv[0], int(argv[1])
    store = argv[argv.index("--store") + 1] if "--store" in argv else None
    if system in ("legato", "legato-rec"):
        _serve_legato(port, store)
    elif system == "litserve":
        _serve_litserve(port)
    elif system == "ray":
        _serve_ray(port)
    elif system == "echo":
        _serve_echo(port)
    else:
        raise SystemExit(f"unknown server {system!r}; one of {', '.join(PATHS)}")


# ---------------------------------------------------------------------------------------------
# The family


def family(*, quick: bool) -> Family:
    requests = 500 if quick else 2_000
    repeat = 1 if quick else 3
    rows = [
        RowSpec("B9", f"HTTP: {requests:,} requests from {CLIENTS} keep-alive clients, "
                "B4's model (2 ms + 0.05 ms/item, batches <= 32, 5 ms wait)", "items_per_s",
                None, lower_is_better=False),
        RowSpec("B9-ray", "B9: legato's items/s over Ray Serve's", "ratio", 2.0,
                lower_is_better=False),
        RowSpec("B9-lit", "B9: legato's items/s over LitServe's", "ratio", 1.0,
                lower_is_better=False),
        RowSpec("B9-p50", "B9: p50 latency", "ms", None),
        RowSpec("B9-p99", "B9: p99 latency", "ms", None),
        RowSpec("B9-paced", f"B9: p99 latency, {requests:,} requests paced at half of legato's "
                "items/s", "ms", round(PACED_BUDGET_MS, 1)),
        RowSpec("B9-rec", "B9 recorded in a SQLite store: time per request over not recorded",
                "ratio", None),
        RowSpec("B9-client", f"B9's client against a server that answers at once ({CLIENTS} "
                "clients, no model): the most it can measure here", "items_per_s", None,
                lower_is_better=False),
    ]
    measured: dict[str, tuple[Load, Load | None] | Exception] = {}
    peers = [name for name in ("litserve", "ray") if installed(name)]
    notes = [missing_note(name) for name in ("litserve", "ray") if name not in peers]
    if not installed("aiohttp") or not installed("uvicorn"):
        notes.append("B9: aiohttp or uvicorn is not installed: skipped "
                     "(pip install -e '.[serve,bench]')")
        return Family("B9: HTTP serving", rows, {}, notes)

    def measure_all() -> dict[str, tuple[Load, Load | None] | Exception]:
        """Every server once, in turn (done once, for whichever system is asked first): the
        closed-loop run, then the paced one at half of legato's items/s. A server that fails
        is noted as its exception; the others are measured still."""
        if measured:
            return measured
        chosen = [name for name in peers if name in served.systems]  # --no-peers drops them
        rate: float | None = None
        with tempfile.TemporaryDirectory() as scratch:
            store = f"sqlite:///{scratch}/b9.db"
            for system in ["legato", "legato-rec", *chosen, "echo"]:
                if system != "legato" and rate is None:  # legato failed: no pace to keep
                    rate = 0.0
                try:
                    measured[system] = _measure(system, requests, rate,
                                                store if system == "legato-rec" else None,
                                                repeat=repeat)
                except Exception as exc:  # one server failing must not lose the others
                    measured[system] = exc
                    continue
                if system == "legato":
                    rate = measured[system][0].per_second / 2  # type: ignore[index]
        return measured

    def figures(system: str) -> tuple[Load, Load | None]:
        found = measure_all()[system]
        if isinstance(found, Exception):
            raise found
        return found

    def legato() -> Sample:
        burst, paced = figures("legato")
        values = {"B9": burst.per_second, "B9-p50": burst.p(50), "B9-p99": burst.p(99)}
        notes = {}
        if paced is not None:
            values["B9-paced"] = paced.p(99)
            notes["B9-paced"] = f"{paced.per_second:,.0f} requests/s"
        for row, other in (("B9-ray", "ray"), ("B9-lit", "litserve"), ("B9-rec", "legato-rec"),
                           ("B9-client", "echo")):
            found = measure_all().get(other)
            if found is None or isinstance(found, Exception):
                continue
            theirs = found[0].per_second
            if row == "B9-client":
                values[row] = theirs
            else:
                values[row] = burst.per_second / theirs
                notes[row] = f"{burst.per_second:,.0f} vs {theirs:,.0f} items/s"
        return Sample(values, notes=notes)

    def peer(name: str) -> Callable[[], Sample]:
        def sample() -> Sample:
            burst, paced = figures(name)
            values = {"B9": burst.per_second, "B9-p50": burst.p(50), "B9-p99": burst.p(99)}
            if paced is not None:
                values["B9-paced"] = paced.p(99)
            return Sample(values)

        return sample

    systems: dict[str, Callable[[], Sample]] = {"legato": legato}
    systems.update({name: peer(name) for name in peers})
    served = Family("B9: HTTP serving", rows, systems, notes)
    return served


def _measure(system: str, requests: int, rate: float | None, store: str | None, *,
             repeat: int) -> tuple[Load, Load | None]:
    """One server: a warm-up, ``repeat`` closed-loop runs (the median one by items/s is kept,
    with its latencies), then the paced one at ``rate`` requests a second (None: half of this
    server's own closed-loop items/s; 0: none)."""
    with running(system, store=store) as url:
        asyncio.run(closed_loop(url, WARMUP))
        bursts = sorted((asyncio.run(closed_loop(url, requests)) for _ in range(repeat)),
                        key=lambda load: load.per_second)
        burst = bursts[len(bursts) // 2]
        pace = burst.per_second / 2 if rate is None else rate
        paced = asyncio.run(open_loop(url, requests, pace)) if pace > 0 else None
    return burst, paced


if __name__ == "__main__":
    _serve(sys.argv[1:])
