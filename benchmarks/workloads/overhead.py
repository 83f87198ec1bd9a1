"""B1 and B2: the engine's own cost per node, with nodes that do nothing.

- B1: 10,000 independent no-op nodes in one graph (and, as ``B1-map``, the same fan-out
  written with ``lg.map``). Baselines: a Python loop, a ``ThreadPoolExecutor`` fed every call,
  Dask's threaded scheduler on a raw graph, Ray tasks.
- B1-rec: B1 with the run recorded in a SQLite store (every node execution and output), as a
  ratio to B1 not recorded, both measured in the same run (budget: at most 2x).
- B2: a chain of 1,000 no-op nodes, each waiting for the one before. Baselines: nested calls,
  a ``ThreadPoolExecutor`` where each hop is submitted from the previous one's done-callback,
  a raw Dask graph, Ray tasks that take the previous task's ObjectRef.

The no-op component runs ``inline`` (on the scheduler's own thread), as cheap functions should;
``thread`` is measured too (``B1-thread``), the fair match for the executor baseline.
"""

from __future__ import annotations

import concurrent.futures
import tempfile
from pathlib import Path
from typing import Any

from measure import median_time
from peers import add_peers
from suite import Family, RowSpec, Sample

import legato as lg
from legato.backends.local import LocalBackend

WORKERS = 4  # threads for the thread pool and Dask's threaded scheduler


@lg.component(executor="inline", cpus=0)
def noop(i: int) -> int:
    return i


@lg.component(executor="thread", cpus=0)
def noop_thread(i: int) -> int:
    return i


@lg.component(executor="inline", cpus=0)
def count(xs: list[int]) -> int:
    return len(xs)


def _identity(x: Any) -> Any:
    return x


def family(*, quick: bool) -> Family:
    width = 2_000 if quick else 10_000
    length = 200 if quick else 1_000
    repeat = 3 if quick else 7
    rows = [
        RowSpec("B1", f"{width:,} independent no-op nodes", "us_per_node", 10.0),
        RowSpec("B1-map", f"{width:,} no-op nodes as lg.map fan-out", "us_per_node", 10.0),
        RowSpec("B1-thread", f"{width:,} no-op nodes, thread executor", "us_per_node", None),
        RowSpec("B1-rec", "B1 recorded in a SQLite store, over B1 not recorded", "ratio", 2.0),
        RowSpec("B2", f"chain of {length:,} dependent no-op nodes", "us_per_hop", 10.0),
    ]

    def legato() -> Sample:
        from legato.store import Store  # here: the runner stays small for B6-mem's children

        def independent(component: lg.Component) -> lg.Pipeline:
            def body() -> Any:
                last = None
                for i in range(width):
                    last = component(i)
                return last

            return lg.pipeline(name="independent")(body)

        @lg.pipeline
        def fan_out() -> int:
            return count(lg.map(noop, list(range(width))))

        def body() -> Any:
            x = noop(0)
            for _ in range(length - 1):
                x = noop(x)
            return x

        chain = lg.pipeline(name="chain")(body)
        wide, wide_thread = independent(noop), independent(noop_thread)
        with (lg.Engine(LocalBackend()) as engine, tempfile.TemporaryDirectory() as home,
              Store.open(Path(home) / "legato.db") as store):
            b1 = median_time(lambda: wide.run(engine=engine), repeat=repeat) * 1e6 / width
            recorded = median_time(lambda: wide.run(engine=engine, store=store),
                                   repeat=repeat) * 1e6 / width
            return Sample({
                "B1": b1,
                "B1-rec": recorded / b1,
                "B1-map": median_time(lambda: fan_out.run(engine=engine),
                                      repeat=repeat) * 1e6 / width,
                "B1-thread": median_time(lambda: wide_thread.run(engine=engine),
                                         repeat=repeat) * 1e6 / width,
                "B2": median_time(lambda: chain.run(engine=engine), repeat=repeat) * 1e6 / length,
            }, notes={"B1-rec": f"{recorded:.1f} us/node recorded, {b1:.1f} not"})

    def sequential() -> Sample:
        def independent() -> None:
            for i in range(width):
                _identity(i)

        def chain() -> None:
            x = 0
            for _ in range(length):
                x = _identity(x)

        b1 = median_time(independent, repeat=repeat) * 1e6 / width
        return Sample({"B1": b1, "B1-map": b1, "B1-thread": b1,
                       "B2": median_time(chain, repeat=repeat) * 1e6 / length})

    def threadpool() -> Sample:
        pool = concurrent.futures.ThreadPoolExecutor(WORKERS)

        def independent() -> None:
            futures = [pool.submit(_identity, i) for i in range(width)]
            for future in futures:
                future.result()

        def chain() -> None:
            finished = concurrent.futures.Future[int]()

            def hop(remaining: int, value: int) -> None:
                if remaining == 0:
                    finished.set_result(value)
                    return
                pool.submit(_identity, value).add_done_callback(
                    lambda f: hop(remaining - 1, f.result()))

            hop(length, 0)
            finished.result()

        try:
            b1 = median_time(independent, repeat=repeat) * 1e6 / width
            b2 = median_time(chain, repeat=repeat) * 1e6 / length
        finally:
            pool.shutdown()
        return Sample({"B1": b1, "B1-map": b1, "B1-thread": b1, "B2": b2})

    def dask() -> Sample:
        import dask.threaded

        wide = {f"n{i}": (_identity, i) for i in range(width)}
        wide_keys = list(wide)
        chain: dict[str, Any] = {"c0": (_identity, 0)}
        for i in range(1, length):
            chain[f"c{i}"] = (_identity, f"c{i - 1}")
        last = f"c{length - 1}"

        def get(graph: dict[str, Any], keys: Any) -> None:
            dask.threaded.get(graph, keys, num_workers=WORKERS)

        b1 = median_time(lambda: get(wide, wide_keys), repeat=repeat) * 1e6 / width
        b2 = median_time(lambda: get(chain, last), repeat=repeat) * 1e6 / length
        return Sample({"B1": b1, "B1-map": b1, "B1-thread": b1, "B2": b2})

    def ray() -> Sample:
        import ray

        task = ray.remote(_identity)

        def independent() -> None:
            ray.get([task.remote(i) for i in range(width)])

        def chain() -> None:
            ref = task.remote(0)
            for _ in range(length - 1):
                ref = task.remote(ref)
            ray.get(ref)

        b1 = median_time(independent, repeat=1) * 1e6 / width
        b2 = median_time(chain, repeat=1) * 1e6 / length
        return Sample({"B1": b1, "B1-map": b1, "B1-thread": b1, "B2": b2})

    systems = {"legato": legato, "sequential": sequential, "threadpool": threadpool}
    notes = add_peers(systems, (("dask", dask), ("ray", ray)))
    return Family("B1, B2: overhead per node", rows, systems, notes)
