"""B3 and the Standard Task Graph Set: packing tasks of known length onto P identical slots.

Each task of a :class:`~taskgraph.TaskGraph` is one node; its component asks for one ``slot``
(and no CPU, so the machine's two cores do not cap it) and the run has P slots. Two ways:

- **simulated**: on :class:`~legato.testing.simulate.SimulatedBackend` a task takes exactly its
  cost in virtual seconds and nothing runs, so the makespan scores the scheduling policy alone,
  exactly. Beside it, the classic list schedulers on the same graph (``taskgraph.py``):
  highest-level-first (critical path, the textbook heuristic) and first-ready-first.
- **real**: a task sleeps its cost in milliseconds on a thread (less the OS's mean sleep
  overshoot, measured once, so it lasts its cost on average), so the engine's own overhead and
  the OS's jitter add to the policy's. Baselines: a
  hand-written dependency-driven ``ThreadPoolExecutor`` of P threads (first ready, first run),
  Dask's threaded scheduler with P workers, Ray tasks that each hold 1/P of the cluster's slots.

Score: makespan / reference, where the reference is the published optimum (STG) or the lower
bound max(critical path, work / P) (B3). A score below 1 is impossible: it means the run used
more than P slots at once, and the row is marked invalid.

Each legato run is preceded by one untimed warm-up run of the same graph on the same engine, so
an engine that learns node durations has seen them.
"""

from __future__ import annotations

import concurrent.futures
import inspect
import statistics
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from measure import sleep_slack
from peers import RAY_SLOTS, add_peers
from suite import Family, RowSpec, Sample

import legato as lg
from legato.backends.local import LocalBackend
from legato.engine.backend import Call
from legato.testing.simulate import SimulatedBackend, SimulatedClock
from workloads.taskgraph import (
    TaskGraph,
    first_ready_first,
    highest_level_first,
    layered,
    list_schedule,
    peak_overlap,
    read_optimal,
    read_stg,
)


def _stg_folder() -> Path:
    """``shared/data/stg`` in the checkout or in the nearest folder above it that has one: the
    main checkout's neighbour, or further up for a git worktree nested a level deeper."""
    here = Path(__file__).resolve()
    for folder in here.parents[2:]:
        if (folder / "shared" / "data" / "stg").is_dir():
            return folder / "shared" / "data" / "stg"
    return here.parents[3] / "shared" / "data" / "stg"


STG = _stg_folder()
PROCESSORS = (2, 4, 8, 16)
B3_SLOTS = 4
MS = 1e-3  # real runs: one time unit of a task graph is one millisecond
_SLACK = 1e-9


# ---------------------------------------------------------------------------------------------
# A task graph as a legato pipeline


def as_pipeline(graph: TaskGraph, *, scale: float, slot: float = 1.0) -> lg.Pipeline:
    """One node per task: component ``t<i>`` (its own, so per-node statistics stay apart) takes
    the task's ``cost`` and one input per predecessor, sleeps ``cost * scale`` seconds (less the
    OS's sleep overshoot; no sleep when ``scale`` is 0) and returns its cost. Each holds
    ``slot`` of the resource ``slot``. The pipeline returns every sink's value."""
    slack = sleep_slack() if scale else 0.0
    components = [_task(f"t{i}", len(preds), scale, slack, slot)
                  for i, preds in enumerate(graph.preds)]

    def body() -> dict[str, Any]:
        refs: list[Any] = []
        for i, preds in enumerate(graph.preds):
            inputs = {f"after{k}": refs[p] for k, p in enumerate(preds)}
            refs.append(components[i](cost=graph.costs[i], **inputs))
        return {f"t{i}": refs[i] for i in graph.sinks}

    return lg.pipeline(name=graph.name)(body)


def _task(name: str, arity: int, scale: float, slack: float, slot: float = 1.0) -> lg.Component:
    def task(cost: float, **after: float) -> float:
        if scale:
            time.sleep(max(0.0, cost * scale - slack))
        return cost

    params = [inspect.Parameter("cost", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=float)]
    params += [inspect.Parameter(f"after{k}", inspect.Parameter.KEYWORD_ONLY, annotation=float)
               for k in range(arity)]
    task.__signature__ = inspect.Signature(params, return_annotation=float)  # type: ignore[attr-defined]
    task.__annotations__ = {**{p.name: float for p in params}, "return": float}
    return lg.component(name=name, cpus=0, resources={"slot": slot})(task)


def _cost(call: Call) -> float:
    return float(call.kwargs["cost"])


def simulate(pipe: lg.Pipeline, slots: int) -> tuple[float, int]:
    """Legato's makespan for a task graph's pipeline (``scale=0``) on ``slots`` simulated
    slots, after a warm-up run on the same engine; and the most tasks it ran at once."""
    clock = SimulatedClock()
    backend = SimulatedBackend(clock, _cost, resources={"slot": slots})
    with lg.Engine(backend, clock=clock) as engine:
        # simulated calls return None: the outputs' types are not what is measured here
        pipe.run(engine=engine, check_outputs=False)  # warm-up
        backend.spans.clear()
        start = clock.now()
        pipe.run(engine=engine, check_outputs=False)
        makespan = clock.now() - start
    return makespan, peak_overlap([(s.start, s.end) for s in backend.spans])


def run_legato(pipe: lg.Pipeline, engine: lg.Engine, *, scale: float) -> float:
    """Wall time of one run of a task graph's pipeline (after a warm-up run), in time units."""
    pipe.run(engine=engine)  # warm-up: traces, checks, teaches the engine the durations
    start = time.perf_counter()
    pipe.run(engine=engine)
    return (time.perf_counter() - start) / scale


# ---------------------------------------------------------------------------------------------
# The same graph on the baselines (real time only)


def _sleep(seconds: float, *after: float) -> float:
    time.sleep(seconds)
    return seconds


def _seconds(graph: TaskGraph, scale: float) -> list[float]:
    """How long each task sleeps: its cost in seconds, less the OS's sleep overshoot."""
    slack = sleep_slack()
    return [max(0.0, cost * scale - slack) for cost in graph.costs]


def run_threadpool(graph: TaskGraph, pool: concurrent.futures.ThreadPoolExecutor,
                   *, scale: float) -> float:
    """A hand-written dependency-driven pool: a task is submitted when its last predecessor
    ends (from that one's done-callback); the pool runs them first come, first served."""
    seconds = _seconds(graph, scale)
    waiting = [len(p) for p in graph.preds]
    lock = threading.Lock()
    left = [len(graph)]
    finished = threading.Event()

    def submit(task: int) -> None:
        future = pool.submit(_sleep, seconds[task])
        future.add_done_callback(lambda _: done(task))

    def done(task: int) -> None:
        ready = []
        with lock:
            for succ in graph.succs[task]:
                waiting[succ] -= 1
                if waiting[succ] == 0:
                    ready.append(succ)
            left[0] -= 1
            if left[0] == 0:
                finished.set()
        for succ in ready:
            submit(succ)

    start = time.perf_counter()
    for task, count in enumerate(waiting):
        if count == 0:
            submit(task)
    finished.wait()
    return (time.perf_counter() - start) / scale


def run_dask(graph: TaskGraph, slots: int, *, scale: float) -> float:
    import dask.threaded

    seconds = _seconds(graph, scale)
    dsk = {f"t{i}": (_sleep, seconds[i], *[f"t{p}" for p in preds])
           for i, preds in enumerate(graph.preds)}
    keys = [f"t{i}" for i in graph.sinks]
    start = time.perf_counter()
    dask.threaded.get(dsk, keys, num_workers=slots)
    return (time.perf_counter() - start) / scale


def run_ray(graph: TaskGraph, slots: int, *, scale: float) -> float:
    import ray

    task = ray.remote(num_cpus=0)(_sleep).options(resources={"slot": RAY_SLOTS / slots})
    seconds = _seconds(graph, scale)
    start = time.perf_counter()
    refs: list[Any] = []
    for i, preds in enumerate(graph.preds):
        refs.append(task.remote(seconds[i], *[refs[p] for p in preds]))
    ray.get([refs[i] for i in graph.sinks])
    return (time.perf_counter() - start) / scale


# ---------------------------------------------------------------------------------------------
# Families


def _invalid(values: dict[str, float]) -> set[str]:
    return {row for row, score in values.items() if score < 1 - 1e-6}


_BELOW = "below 1, impossible on P slots: ran more than P tasks at once (no admission)"


def b3(*, quick: bool) -> Family:
    """B3: the layered DAG on 4 slots, simulated and real, against its lower bound."""
    graph = layered()
    bound = graph.lower_bound(B3_SLOTS)
    repeat = 1 if quick else 2
    workload = (f"layered DAG {len(graph)} tasks (5x40, 5-50 ms), {B3_SLOTS} slots: "
                "makespan / max(CP, work/slots)")
    rows = [RowSpec("B3-sim", workload + ", simulated", "score", 1.02),
            RowSpec("B3", workload, "score", 1.02)]

    def legato() -> Sample:
        simulated, peak = simulate(as_pipeline(graph, scale=0), B3_SLOTS)
        pipe = as_pipeline(graph, scale=MS)
        with lg.Engine(LocalBackend(resources={"slot": B3_SLOTS})) as engine:
            real = statistics.median(run_legato(pipe, engine, scale=MS) for _ in range(repeat))
        values = {"B3-sim": simulated / bound, "B3": real / bound}
        notes = {row: _BELOW for row in _invalid(values)}
        if peak > B3_SLOTS:
            notes["B3-sim"] = f"ran up to {peak} tasks at once on {B3_SLOTS} slots (no admission)"
        invalid = _invalid(values) | ({"B3-sim"} if peak > B3_SLOTS else set())
        return Sample(values, notes, invalid)

    def lists() -> Sample:
        return Sample({"B3-sim": list_schedule(graph, B3_SLOTS, highest_level_first) / bound})

    def fifo() -> Sample:
        return Sample({"B3-sim": list_schedule(graph, B3_SLOTS, first_ready_first) / bound})

    def threadpool() -> Sample:
        with concurrent.futures.ThreadPoolExecutor(B3_SLOTS) as pool:
            list(pool.map(time.sleep, [0.0] * B3_SLOTS))  # start the threads
            real = statistics.median(run_threadpool(graph, pool, scale=MS)
                                     for _ in range(repeat))
        return Sample({"B3": real / bound})

    def dask() -> Sample:
        return Sample({"B3": statistics.median(run_dask(graph, B3_SLOTS, scale=MS)
                                               for _ in range(repeat)) / bound})

    def ray() -> Sample:
        return Sample({"B3": statistics.median(run_ray(graph, B3_SLOTS, scale=MS)
                                               for _ in range(repeat)) / bound})

    systems: dict[str, Callable[[], Sample]] = {
        "legato": legato, "hlf_list": lists, "fifo_list": fifo, "threadpool": threadpool}
    notes = add_peers(systems, (("dask", dask), ("ray", ray)))
    return Family("B3: layered DAG on 4 slots", rows, systems, notes)


def _stg_rows(prefix: str, what: str) -> list[RowSpec]:
    rows = []
    for p in PROCESSORS:
        rows.append(RowSpec(f"{prefix} P={p} mean", f"{what}, P={p}: mean makespan/optimum",
                            "score", 1.01))
        rows.append(RowSpec(f"{prefix} P={p} worst", f"{what}, P={p}: worst makespan/optimum",
                            "score", 1.05))
    return rows


def _summary(prefix: str, scores: dict[int, list[float]]) -> dict[str, float]:
    values = {}
    for p, found in scores.items():
        values[f"{prefix} P={p} mean"] = statistics.fmean(found)
        values[f"{prefix} P={p} worst"] = max(found)
    return values


def _no_data(name: str, rows: list[RowSpec]) -> Family:
    return Family(name, rows, {}, [f"{name}: skipped, the STG data is not at {STG}"])


def _graphs(every: int) -> tuple[list[TaskGraph], dict[tuple[str, int], float]]:
    optimal = read_optimal(STG / "optimal.csv")
    paths = sorted((STG / "50").glob("*.stg"))[::every]
    return [read_stg(path) for path in paths], optimal


def stg_simulated(*, quick: bool) -> Family:
    """Every 50-task STG graph on P = 2, 4, 8, 16 simulated slots."""
    if not STG.exists():
        return _no_data("STG, simulated time", _stg_rows("STG-sim", "STG, simulated"))
    graphs, optimal = _graphs(6 if quick else 1)
    rows = _stg_rows("STG-sim", f"STG {len(graphs)} graphs x 50 tasks, simulated")

    def legato() -> Sample:
        scores: dict[int, list[float]] = {p: [] for p in PROCESSORS}
        peaks = dict.fromkeys(PROCESSORS, 0)
        for graph in graphs:
            pipe = as_pipeline(graph, scale=0)
            for p in PROCESSORS:
                makespan, peak = simulate(pipe, p)
                scores[p].append(makespan / optimal[(graph.name, p)])
                peaks[p] = max(peaks[p], peak)
        values = _summary("STG-sim", scores)
        notes = {}
        for p, peak in peaks.items():
            if peak > p:
                for stat in ("mean", "worst"):
                    notes[f"STG-sim P={p} {stat}"] = (
                        f"ran up to {peak} tasks at once on {p} slots (no admission)")
        return Sample(values, notes, _invalid(values) | set(notes))

    def policy(priority: Any) -> Callable[[], Sample]:
        def measure() -> Sample:
            scores = {p: [list_schedule(g, p, priority) / optimal[(g.name, p)] for g in graphs]
                      for p in PROCESSORS}
            return Sample(_summary("STG-sim", scores))

        return measure

    systems = {"legato": legato, "hlf_list": policy(highest_level_first),
               "fifo_list": policy(first_ready_first)}
    return Family("STG, simulated time", rows, systems)


def stg_real(*, quick: bool) -> Family:
    """A subset of the STG graphs (every 5th: both of each generator's kinds) in real time,
    1 time unit = 1 ms."""
    if not STG.exists():
        return _no_data("STG, real time", _stg_rows("STG", "STG, real"))
    graphs, optimal = _graphs(20 if quick else 5)
    rows = _stg_rows("STG", f"STG {len(graphs)} graphs x 50 tasks, real (1 unit = 1 ms)")

    def scores_of(run: Callable[[TaskGraph, int], float]) -> dict[str, float]:
        scores: dict[int, list[float]] = {p: [] for p in PROCESSORS}
        for p in PROCESSORS:
            for graph in graphs:
                scores[p].append(run(graph, p) / optimal[(graph.name, p)])
        return _summary("STG", scores)

    def legato() -> Sample:
        pipes = {graph.name: as_pipeline(graph, scale=MS) for graph in graphs}
        engines = {p: lg.Engine(LocalBackend(resources={"slot": p})) for p in PROCESSORS}
        try:
            values = scores_of(lambda g, p: run_legato(pipes[g.name], engines[p], scale=MS))
        finally:
            for engine in engines.values():
                engine.close()
        invalid = _invalid(values)
        return Sample(values, {row: _BELOW for row in invalid}, invalid)

    def threadpool() -> Sample:
        pools = {p: concurrent.futures.ThreadPoolExecutor(p) for p in PROCESSORS}
        try:
            for p, pool in pools.items():
                list(pool.map(time.sleep, [0.0] * p))
            return Sample(scores_of(lambda g, p: run_threadpool(g, pools[p], scale=MS)))
        finally:
            for pool in pools.values():
                pool.shutdown()

    def dask() -> Sample:
        for p in PROCESSORS:
            run_dask(graphs[0], p, scale=MS / 10)  # warm-up: the scheduler's P threads
        return Sample(scores_of(lambda g, p: run_dask(g, p, scale=MS)))

    def ray() -> Sample:
        return Sample(scores_of(lambda g, p: run_ray(g, p, scale=MS)))

    systems: dict[str, Callable[[], Sample]] = {"legato": legato, "threadpool": threadpool}
    notes = add_peers(systems, (("dask", dask), ("ray", ray)))
    return Family("STG, real time", rows, systems, notes)
