"""B0: the latency of one small run: ``pipeline.run(...)`` of a one-node ``inline`` pipeline on a
warm engine, from the call to its result.

Beside it, in the same run: the direct function call (``sequential``) and a round trip through
a ``ThreadPoolExecutor`` (``submit(fn, x).result()``, ``threadpool``): the least a call handed
to another thread costs. Each figure is the median of many single calls, timed one by one.
``B0-pool`` is legato's median over the thread pool's, both measured by legato's measure in
short alternating blocks, so load on the machine reaches both alike (blocks, not single calls in
turn: a call just after the other system's measures that system's threads winding down too).
No budget is stated for B0.
"""

from __future__ import annotations

import concurrent.futures
import statistics
import time
from collections.abc import Callable
from typing import Any

from suite import Family, RowSpec, Sample

import legato as lg
from legato.backends.local import LocalBackend


@lg.component(executor="inline", cpus=0)
def echo(x: int) -> int:
    return x


@lg.pipeline
def single(x: int) -> int:
    return echo(x)


def _identity(x: int) -> int:
    return x


def _latencies(call: Callable[[int], Any], calls: int) -> list[float]:
    """Seconds of each of ``calls`` calls, timed one by one."""
    times = []
    for x in range(calls):
        start = time.perf_counter()
        call(x)
        times.append(time.perf_counter() - start)
    return times


def family(*, quick: bool) -> Family:
    calls = 100  # per block
    blocks = 20 if quick else 100
    rows = [
        RowSpec("B0", "latency: run() of a one-node inline pipeline, warm engine", "us", None),
        RowSpec("B0-pool", "B0 over a ThreadPoolExecutor submit().result() round trip",
                "ratio", None),
    ]

    def legato() -> Sample:
        with (lg.Engine(LocalBackend()) as engine,
              concurrent.futures.ThreadPoolExecutor(1) as pool):
            def run(x: int) -> Any:
                return single.run(x=x, engine=engine)

            def round_trip(x: int) -> Any:
                return pool.submit(_identity, x).result()

            assert run(1) == 1
            ours: list[float] = []
            theirs: list[float] = []
            _latencies(run, calls)  # warm-up: the plan, the engine's thread, the pool's
            _latencies(round_trip, calls)
            for _ in range(blocks):
                ours += _latencies(run, calls)
                theirs += _latencies(round_trip, calls)
        median, pool_median = statistics.median(ours), statistics.median(theirs)
        return Sample({"B0": median * 1e6, "B0-pool": median / pool_median},
                      notes={"B0-pool": f"{median * 1e6:.1f} us against {pool_median * 1e6:.1f}"
                                        " us for the pool's round trip"})

    def sequential() -> Sample:
        _latencies(_identity, calls)
        times = [t for _ in range(blocks) for t in _latencies(_identity, calls)]
        return Sample({"B0": statistics.median(times) * 1e6})

    def threadpool() -> Sample:
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            def round_trip(x: int) -> Any:
                return pool.submit(_identity, x).result()

            _latencies(round_trip, calls)
            times = [t for _ in range(blocks) for t in _latencies(round_trip, calls)]
        return Sample({"B0": statistics.median(times) * 1e6})

    systems = {"legato": legato, "sequential": sequential, "threadpool": threadpool}
    return Family("B0: latency of one run", rows, systems)
