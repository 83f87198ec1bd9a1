"""B4: 2,000 requests at once to one model that costs 2 ms + 0.05 ms per item, batches of <= 32.

The model is one class-component instance (it serves one batch at a time, like one model on one
device), its cost a ``time.sleep`` on its thread (less the OS's mean sleep overshoot, so it
lasts its nominal time on average). The analytic best is full batches back to
back: 32 items per 3.6 ms, 8,889 items/s; the budget is 90 % of it. Baselines: a hand-written
batcher (a queue and one thread that takes up to 32 requests, waiting at most ``max_wait`` for
them), the same model without batching (one request per call), and Dask and Ray without
batching (neither has a dynamic batcher outside Ray Serve). The unbatched runs serve 500
requests: their throughput does not depend on the count.

The budget's second half (``B4-paced``): requests arrive paced at half the best throughput,
from a generator that sleeps between arrivals (``map`` pulls such a source on a feeder thread,
so the scheduler never waits on it); each request's latency is from its arrival to its result;
budget p99 <= max_wait + 2 x one full batch's service time = 12.2 ms.

``B4-concurrent``: the same burst as concurrent runs, ``await serve.arun(x=...)`` for every
request at once from one asyncio loop (``asyncio.gather``), as a server handling each request
in its own task would; items/s over B4's ``map`` items/s measured in the same measure (budget:
at least 0.9). Batching across runs is what it asks of the engine: an engine that batches only
within one run serves each request alone.
"""

from __future__ import annotations

import asyncio
import queue
import threading
import time
from concurrent.futures import Future
from typing import Any

from measure import percentile, sleep_slack
from peers import add_peers
from suite import Family, RowSpec, Sample

import legato as lg
from legato.backends.local import LocalBackend

MAX_SIZE = 32
MAX_WAIT_MS = 5.0
FIXED_S, PER_ITEM_S = 0.002, 0.00005


def service_time(size: int) -> float:
    return FIXED_S + PER_ITEM_S * size


BEST = MAX_SIZE / service_time(MAX_SIZE)  # items/s with full batches back to back
PACED_RATE = 0.5 * BEST  # requests/s for the paced measurement
PACED_BUDGET_MS = MAX_WAIT_MS + 2 * 1000 * service_time(MAX_SIZE)


def paced(count: int, arrived: dict[int, float]) -> Any:
    """Yield 0..count-1 at PACED_RATE, noting each arrival time."""
    start = time.perf_counter()
    for x in range(count):
        due = start + x / PACED_RATE
        while (now := time.perf_counter()) < due:
            time.sleep(min(due - now, 0.001))
        arrived[x] = time.perf_counter()
        yield x


def model(xs: list[int]) -> list[int]:
    time.sleep(max(0.0, service_time(len(xs)) - sleep_slack()))
    return xs


@lg.component(cpus=0, batch=lg.Batch(max_size=MAX_SIZE, max_wait_ms=MAX_WAIT_MS))
class Model:
    """One instance: one batch at a time."""

    def __call__(self, xs: list[int]) -> list[int]:
        return model(xs)


@lg.pipeline
def serve(x: int) -> int:
    return Model()(x)  # type: ignore[arg-type,return-value]  # a batched port is per item


def family(*, quick: bool) -> Family:
    requests = 500 if quick else 2_000
    unbatched = 200 if quick else 500
    rows = [
        RowSpec("B4", f"{requests:,} requests at once, model 2 ms + 0.05 ms/item, batches <= 32",
                "items_per_s", round(0.9 * BEST), lower_is_better=False),
        RowSpec("B4-p99", f"B4: p99 latency of the {requests:,}-request burst "
                f"(best: {1000 * requests / BEST:.0f} ms)", "ms", None),
        RowSpec("B4-paced", f"B4: p99 latency, {requests:,} requests paced at "
                f"{PACED_RATE:,.0f}/s (half the best)", "ms", round(PACED_BUDGET_MS, 1)),
        RowSpec("B4-concurrent", f"B4 as {requests:,} concurrent arun() calls (asyncio.gather): "
                "items/s over B4's", "ratio", 0.9, lower_is_better=False),
    ]

    async def concurrent(engine: lg.Engine) -> float:
        """Items/s of ``requests`` concurrent ``arun`` calls, after a warm-up burst."""
        await asyncio.gather(*(serve.arun(x=x, engine=engine) for x in range(MAX_SIZE * 2)))
        start = time.perf_counter()
        results = await asyncio.gather(*(serve.arun(x=x, engine=engine)
                                         for x in range(requests)))
        elapsed = time.perf_counter() - start
        assert results == list(range(requests))
        return requests / elapsed

    def legato() -> Sample:
        with lg.Engine(LocalBackend()) as engine:
            list(serve.map(range(MAX_SIZE * 2), engine=engine, window=requests))  # warm-up
            start = time.perf_counter()
            latencies = []
            for _ in serve.map(range(requests), engine=engine, window=requests, ordered=False):
                latencies.append(time.perf_counter() - start)
            elapsed = time.perf_counter() - start
            arrived: dict[int, float] = {}
            waits = [time.perf_counter() - arrived[x] for x in serve.map(
                paced(requests, arrived), engine=engine, window=requests, ordered=False)]
            rate = asyncio.run(concurrent(engine))
        mapped = requests / elapsed
        return Sample({"B4": mapped, "B4-p99": percentile(latencies, 99) * 1000,
                       "B4-paced": percentile(waits, 99) * 1000, "B4-concurrent": rate / mapped},
                      notes={"B4-concurrent": f"{rate:,.0f} items/s from arun, {mapped:,.0f} "
                                              "from map"})

    def hand_batcher() -> Sample:
        inbox: queue.SimpleQueue[tuple[int, Future[int]] | None] = queue.SimpleQueue()

        def serve_batches() -> None:
            while (first := inbox.get()) is not None:
                batch = [first]
                deadline = time.monotonic() + MAX_WAIT_MS / 1000
                while len(batch) < MAX_SIZE:
                    try:
                        more = inbox.get(timeout=max(0.0, deadline - time.monotonic()))
                    except queue.Empty:
                        break
                    if more is None:
                        inbox.put(None)
                        break
                    batch.append(more)
                for (_, future), value in zip(batch, model([x for x, _ in batch]), strict=True):
                    future.set_result(value)

        worker = threading.Thread(target=serve_batches, daemon=True)
        worker.start()
        start = time.perf_counter()
        futures = []
        for x in range(requests):
            future: Future[int] = Future()
            inbox.put((x, future))
            futures.append(future)
        latencies = []
        for future in futures:
            future.result()
            latencies.append(time.perf_counter() - start)
        elapsed = time.perf_counter() - start
        arrived: dict[int, float] = {}
        paced_futures = []
        waits: list[float] = []
        for x in paced(requests, arrived):
            future = Future()
            future.add_done_callback(lambda _f, x=x: waits.append(time.perf_counter() - arrived[x]))
            inbox.put((x, future))
            paced_futures.append(future)
        for future in paced_futures:
            future.result()
        inbox.put(None)
        worker.join()
        return Sample({"B4": requests / elapsed, "B4-p99": percentile(latencies, 99) * 1000,
                       "B4-paced": percentile(waits, 99) * 1000})

    def sequential() -> Sample:
        start = time.perf_counter()
        for x in range(unbatched):
            model([x])
        return Sample({"B4": unbatched / (time.perf_counter() - start)},
                      notes={"B4": "no batching"})

    def dask() -> Sample:
        import dask.threaded

        graph: dict[str, Any] = {f"r{x}": (model, [x]) for x in range(unbatched)}
        start = time.perf_counter()
        dask.threaded.get(graph, list(graph), num_workers=1)
        return Sample({"B4": unbatched / (time.perf_counter() - start)},
                      notes={"B4": "no batching, 1 worker"})

    def ray() -> Sample:
        import ray

        served: Any = ray.remote(num_cpus=0)(_RayModel).remote()  # one call at a time
        ray.get(served.call.remote(0))  # warm-up: the actor's process
        start = time.perf_counter()
        ray.get([served.call.remote(x) for x in range(unbatched)])
        elapsed = time.perf_counter() - start
        ray.kill(served)
        return Sample({"B4": unbatched / elapsed}, notes={"B4": "no batching, one actor"})

    systems = {"legato": legato, "hand_batcher": hand_batcher, "sequential": sequential}
    notes = add_peers(systems, (("dask", dask), ("ray", ray)))
    return Family("B4: cross-request batching", rows, systems, notes)


class _RayModel:
    def call(self, x: int) -> int:
        return model([x])[0]
