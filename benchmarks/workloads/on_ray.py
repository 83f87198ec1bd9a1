"""B7: B1 and B3 on legato's Ray backend, against the same work written directly in Ray.

Both systems run on the suite's one local Ray cluster (``peers.start_ray``), in the same run,
taking turns (legato, Ray, legato, Ray, ...) so that a slow moment of the machine falls on both
alike. The budget is on the ratio legato / Ray (at most 1.2).

- **B7-B1**: 10,000 independent no-op nodes. legato: one graph of 10,000 nodes of an
  ``inline`` component of 1 CPU (legato hands an inline call to Ray at once; each is a Ray task
  of 1 CPU, queued by Ray); Ray: 10,000 tasks of the same function (1 CPU each), all submitted,
  then ``ray.get``. **B7-B1-gated**: the same with a ``thread`` component, which legato admits
  only while a CPU is free (at most the cluster's CPUs in flight): each call then waits for the
  report of one before it, a round trip Ray's own queue does not pay.
- **B7-B3**: B3's layered DAG (200 tasks of 5-50 ms) on 4 slots: every task, in both systems,
  holds a quarter of the cluster's ``slot`` units, so Ray runs at most 4 at once; legato admits
  them by the same resource, in its critical-path order. Scored as in B3 (makespan over the
  lower bound), each legato run after one warm-up run.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

from peers import RAY_SLOTS, installed, missing_note
from suite import Family, RowSpec, Sample

import legato as lg
from workloads.packing import B3_SLOTS, MS, as_pipeline, run_legato, run_ray
from workloads.taskgraph import layered


@lg.component(executor="inline")
def noop(i: int) -> int:
    return i


@lg.component(executor="thread")
def noop_gated(i: int) -> int:
    return i


def _identity(x: Any) -> Any:
    return x


def _independent(component: lg.Component, width: int) -> lg.Pipeline:
    def body() -> Any:
        last = None
        for i in range(width):
            last = component(i)
        return last

    return lg.pipeline(name=f"independent_{component.name}")(body)


def _seconds(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def family(*, quick: bool) -> Family:
    width = 2_000 if quick else 10_000
    gated_width = width // 5  # at a round trip per call, a fifth tells as much
    repeat = 2 if quick else 3
    graph = layered()
    bound = graph.lower_bound(B3_SLOTS)
    rows = [
        RowSpec("B7-B1", "B1 on Ray: legato's time over hand-written Ray tasks'", "ratio", 1.2),
        RowSpec("B7-B1-us", f"{width:,} independent no-op nodes on Ray", "us_per_node", None),
        RowSpec("B7-B1-gated", f"{gated_width:,} no-op nodes on Ray, thread component "
                "(admitted by legato): time over Ray's", "ratio", None),
        RowSpec("B7-B3", "B3 on Ray: legato's makespan over hand-written Ray's", "ratio", 1.2),
        RowSpec("B7-B3-score", f"layered DAG {len(graph)} tasks, {B3_SLOTS} slots, on Ray: "
                "makespan / max(CP, work/slots)", "score", None),
    ]
    measured: dict[str, dict[str, list[float]]] = {}

    def measure() -> dict[str, dict[str, list[float]]]:
        """Both systems, taking turns; done once, for whichever system is asked first."""
        if measured:
            return measured
        import ray

        from legato.backends.ray import RayBackend

        task = ray.remote(_identity)
        wide, gated = _independent(noop, width), _independent(noop_gated, gated_width)
        dag = as_pipeline(graph, scale=MS, slot=RAY_SLOTS / B3_SLOTS)
        times: dict[str, dict[str, list[float]]] = {
            "legato": {"b1": [], "gated": [], "b3": []}, "ray": {"b1": [], "gated": [], "b3": []}}
        with lg.Engine(RayBackend()) as engine:  # joins the suite's cluster
            wide.run(engine=engine)  # warm-up: traces, checks, Ray exports the functions
            gated.run(engine=engine)
            ray.get([task.remote(i) for i in range(width)])
            for _ in range(repeat):
                times["legato"]["b1"].append(_seconds(lambda: wide.run(engine=engine)))
                times["ray"]["b1"].append(_seconds(
                    lambda: ray.get([task.remote(i) for i in range(width)])))
                times["legato"]["gated"].append(_seconds(lambda: gated.run(engine=engine)))
                times["ray"]["gated"].append(_seconds(
                    lambda: ray.get([task.remote(i) for i in range(gated_width)])))
                times["legato"]["b3"].append(run_legato(dag, engine, scale=MS) / bound)
                times["ray"]["b3"].append(run_ray(graph, B3_SLOTS, scale=MS) / bound)
        measured.update(times)
        return measured

    def legato() -> Sample:
        found = {system: {k: statistics.median(v) for k, v in runs.items()}
                 for system, runs in measure().items()}
        ours, theirs = found["legato"], found["ray"]
        return Sample({
            "B7-B1": ours["b1"] / theirs["b1"],
            "B7-B1-us": ours["b1"] * 1e6 / width,
            "B7-B1-gated": ours["gated"] / theirs["gated"],
            "B7-B3": ours["b3"] / theirs["b3"],
            "B7-B3-score": ours["b3"],
        }, notes={"B7-B1": f"{ours['b1'] * 1e6 / width:.0f} vs "
                           f"{theirs['b1'] * 1e6 / width:.0f} us per node",
                  "B7-B3": f"scores {ours['b3']:.3f} vs {theirs['b3']:.3f}"})

    def ray() -> Sample:
        theirs = {k: statistics.median(v) for k, v in measure()["ray"].items()}
        return Sample({"B7-B1-us": theirs["b1"] * 1e6 / width, "B7-B3-score": theirs["b3"]})

    if not installed("ray"):
        return Family("B7: B1 and B3 on the Ray backend", rows, {}, [missing_note("ray")])
    return Family("B7: B1 and B3 on the Ray backend", rows, {"legato": legato, "ray": ray},
                  on_ray=True)
