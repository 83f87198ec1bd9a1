"""The live engine: one loop serves every run; items are submitted to open runs; batches form
across runs; deadlines, priorities, cancellation and queue policies act per item.

Timing is the test's: engines run on a ``WatchedClock`` that moves only when the test advances
it, and components that must be "busy" wait on a ``threading.Event`` the test sets.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

import legato as lg
from harness import WAIT, Background, Events, MakeEngine, WatchedClock
from legato.engine.events import (
    AdmissionWaited,
    BatchFormed,
    InstanceBuilt,
    InstanceEvicted,
    ItemDropped,
    ItemFinished,
    NodeStarted,
)

# -- batching across runs -----------------------------------------------------------------


def _doubler(sizes: list[int]) -> lg.Pipeline:
    @lg.component(batch=lg.Batch(max_size=8, max_wait_ms=50))
    def embed(xs: list[int]) -> list[int]:
        sizes.append(len(xs))
        return [x * 2 for x in xs]

    @lg.pipeline
    def p(x: int) -> int:
        return embed(x)

    return p


def test_eight_concurrent_aruns_make_one_batch_of_eight(
    clocked: lg.Engine, clocked_events: Events
) -> None:
    sizes: list[int] = []
    p = _doubler(sizes)

    async def main() -> list[int]:
        return await asyncio.gather(*(p.arun(x=i, engine=clocked) for i in range(8)))

    assert asyncio.run(main()) == [i * 2 for i in range(8)]
    assert sizes == [8]  # the clock never moved: only a full batch could go
    formed = clocked_events.of(BatchFormed)
    assert [(e.size, e.reason, e.runs) for e in formed] == [(8, "full", 8)]


def test_eight_threads_calling_run_make_one_batch_of_eight(clocked: lg.Engine) -> None:
    sizes: list[int] = []
    p = _doubler(sizes)
    runs = [Background(lambda i=i: p.run(x=i, engine=clocked)) for i in range(8)]
    assert [r.result() for r in runs] == [i * 2 for i in range(8)]
    assert sizes == [8]


def test_a_batch_is_flushed_early_when_waiting_would_miss_a_deadline(
    clocked: lg.Engine, clock: WatchedClock, clocked_events: Events
) -> None:
    @lg.component(batch=lg.Batch(max_size=8, max_wait_ms=10_000))
    def embed(xs: list[int]) -> list[int]:
        return [x + 1 for x in xs]

    @lg.pipeline
    def p(x: int) -> int:
        return embed(x)

    run = p.open(engine=clocked)
    handle = run.submit({"x": 1}, deadline=3.0)  # estimated service 1 s: start by t=2
    run.close()
    clock.wait_idle()
    clock.advance(1.9)
    clock.wait_idle()
    assert not clocked_events.of(BatchFormed)
    clock.advance(0.1)
    assert handle.result(WAIT) == 2
    assert [(e.size, e.reason) for e in clocked_events.of(BatchFormed)] == [(1, "deadline")]


# -- submit, handles, close ----------------------------------------------------------------


def test_an_open_run_takes_items_from_threads_and_finishes_when_closed(
    engine: lg.Engine,
) -> None:
    @lg.component(executor="inline")
    def square(x: int) -> int:
        return x * x

    @lg.pipeline
    def p(x: int) -> int:
        return square(x)

    run = p.open(engine=engine)
    handles = [run.submit({"x": i}) for i in range(5)]
    assert [h.index for h in handles] == [0, 1, 2, 3, 4]
    assert [h.result(WAIT) for h in handles] == [0, 1, 4, 9, 16]
    assert not run.finished
    run.close()
    assert run.wait(WAIT)
    with pytest.raises(lg.RunError, match="is closed"):
        run.submit({"x": 9})


def test_unordered_results_carry_their_index(engine: lg.Engine) -> None:
    @lg.component(executor="inline")
    def neg(x: int) -> int:
        return -x

    @lg.pipeline
    def p(x: int) -> int:
        return neg(x)

    pairs = list(p.map(range(6), ordered=False, indexed=True, engine=engine))
    assert sorted(pairs) == [(i, -i) for i in range(6)]


def test_bad_submissions_are_refused_with_the_valid_values(engine: lg.Engine) -> None:
    @lg.pipeline
    def p(x: int) -> int:
        return x

    run = p.open(engine=engine)
    with pytest.raises(lg.ConfigError, match="deadline must be a number of seconds > 0, got 0"):
        run.submit({"x": 1}, deadline=0)
    with pytest.raises(lg.ConfigError, match="priority must be an int"):
        run.submit({"x": 1}, priority="high")  # type: ignore[arg-type]
    run.close()
    with pytest.raises(lg.ConfigError, match="queue must be 'fifo', 'latest', 'block'"):
        lg.component(queue="lifo")(lambda x: x)  # type: ignore[call-overload]
    with pytest.raises(lg.ConfigError, match="Fifo"):
        lg.Fifo(0)


# -- deadlines ------------------------------------------------------------------------------


@pytest.fixture
def gate() -> Iterator[threading.Event]:
    event = threading.Event()
    yield event
    event.set()  # never leave a worker thread waiting


def test_an_item_past_its_deadline_fails_and_its_waiting_call_never_starts(
    make_engine: MakeEngine, gate: threading.Event
) -> None:
    clock = WatchedClock()
    engine = make_engine(clock, cpus=4, resources={"gpu0": 1})
    events = Events()
    engine.bus.subscribe(events)

    @lg.component(resources={"gpu0": 1}, cpus=0)
    def model(x: int) -> int:
        gate.wait(WAIT)
        return x

    @lg.pipeline
    def p(x: int) -> int:
        return model(x)

    run = p.open(engine=engine)
    first = run.submit({"x": 1})
    late = run.submit({"x": 2}, deadline=0.5)
    events.wait_for(lambda e: isinstance(e, AdmissionWaited) and e.item == 1)
    clock.wait_idle()
    clock.advance(0.5)
    with pytest.raises(lg.DeadlineExceeded, match=r"missed its deadline of 0\.5s") as info:
        late.result(WAIT)
    assert info.value.item == 1
    gate.set()
    assert first.result(WAIT) == 1
    run.close()
    assert run.wait(WAIT)
    assert [e.item for e in events.of(NodeStarted)] == [0]  # item 1's call never started


def test_a_running_thread_call_past_its_deadline_is_abandoned_and_holds_its_cpu(
    make_engine: MakeEngine, gate: threading.Event
) -> None:
    clock = WatchedClock()
    engine = make_engine(clock, cpus=1)
    started = threading.Event()

    @lg.component(cpus=1)
    def slow(x: int) -> int:
        started.set()
        gate.wait(WAIT)
        return x

    @lg.pipeline
    def p(x: int) -> int:
        return slow(x)

    run = p.open(engine=engine)
    handle = run.submit({"x": 1}, deadline=1.0)
    assert started.wait(WAIT)
    clock.wait_idle()
    clock.advance(1.0)
    with pytest.raises(lg.DeadlineExceeded, match="could not be stopped"):
        handle.result(WAIT)
    assert engine.usage().used["cpus"] == 1.0  # the thread runs on: its cpu is still held
    gate.set()
    run.close()
    assert run.wait(WAIT)
    _wait_until(lambda: engine.usage().used["cpus"] == 0.0)


def test_a_timed_out_thread_call_keeps_its_cpu_until_the_thread_ends(
    make_engine: MakeEngine, gate: threading.Event
) -> None:
    clock = WatchedClock()
    engine = make_engine(clock, cpus=1)
    started = threading.Event()

    @lg.component(cpus=1, timeout=1.0)
    def hangs(x: int) -> int:
        started.set()
        gate.wait(WAIT)
        return x

    @lg.pipeline
    def p(x: int) -> int:
        return hangs(x)

    run = p.open(engine=engine)
    first = run.submit({"x": 1})
    second = run.submit({"x": 2})
    assert started.wait(WAIT)
    clock.wait_idle()
    clock.advance(1.0)
    with pytest.raises(lg.ComponentTimeout):
        first.result(WAIT)
    assert engine.usage().used["cpus"] == 1.0  # still the hung thread's: item 1 must wait
    assert not second.done()
    gate.set()  # the thread ends: its cpu comes back and item 1 runs
    assert second.result(WAIT) == 2
    run.close()
    assert run.wait(WAIT)


def _wait_until(predicate: Any) -> None:
    done = threading.Event()
    for _ in range(1000):
        if predicate():
            return
        done.wait(0.01)
    raise AssertionError("condition never held")


# -- priorities -----------------------------------------------------------------------------


def test_an_interactive_run_overtakes_a_saturating_background_map(
    make_engine: MakeEngine,
) -> None:
    engine = make_engine(None, cpus=1)
    events = Events()
    engine.bus.subscribe(events)
    pace = threading.Event()

    @lg.component(cpus=1)
    def work(x: int) -> int:
        pace.wait(0.002)  # a short real call; no assertion depends on its length
        return x

    @lg.pipeline
    def p(x: int) -> int:
        return work(x)

    stop = threading.Event()

    def consume() -> int:
        taken = 0
        for _ in p.map(range(10_000), engine=engine):
            taken += 1
            if stop.is_set():
                break  # closes the map: the background run is cancelled
        return taken

    runner = Background(consume)
    events.wait_for(lambda e: len(events.finished()) >= 20)
    busy_run = events.started()[0].run
    before = len(events.started())
    assert p.run(x=-1, priority=10, engine=engine) == -1
    after = [e.run for e in events.started()[before:]]
    first_other = next(i for i, run in enumerate(after) if run != busy_run)
    assert first_other <= 1, after[:5]  # not after the 256 queued background items
    stop.set()
    assert runner.result() < 10_000


# -- cancellation ---------------------------------------------------------------------------


def test_cancelling_one_handle_ends_that_item_only(
    engine: lg.Engine, gate: threading.Event
) -> None:
    @lg.component(cpus=0)
    def wait(x: int) -> int:
        gate.wait(WAIT)
        return x

    @lg.pipeline
    def p(x: int) -> int:
        return wait(x)

    run = p.open(engine=engine)
    handles = [run.submit({"x": i}) for i in range(3)]
    assert handles[1].cancel()
    with pytest.raises(lg.RunCancelled, match="item 1"):
        handles[1].result(WAIT)
    gate.set()
    assert [handles[0].result(WAIT), handles[2].result(WAIT)] == [0, 2]
    run.close()
    assert run.wait(WAIT)
    stats = run.stats()
    assert (stats.cancelled, stats.failed, stats.done) == (1, 0, 2)


def test_cancelling_an_arun_task_cancels_its_item_and_not_the_others(
    engine: lg.Engine, gate: threading.Event
) -> None:
    @lg.component(executor="async")
    async def wait(x: int) -> int:
        while not gate.is_set():
            await asyncio.sleep(0.001)
        return x

    @lg.pipeline
    def p(x: int) -> int:
        return wait(x)

    async def main() -> tuple[bool, int]:
        doomed = asyncio.create_task(p.arun(x=1, engine=engine))
        kept = asyncio.create_task(p.arun(x=2, engine=engine))
        await asyncio.sleep(0)
        doomed.cancel()
        try:
            await doomed
        except asyncio.CancelledError:
            cancelled = True
        else:
            cancelled = False
        gate.set()
        return cancelled, await kept

    assert asyncio.run(main()) == (True, 2)


# -- queue policies -------------------------------------------------------------------------


def _gated_stage(gate: threading.Event, **options: Any) -> tuple[lg.Pipeline, list[int]]:
    served: list[int] = []

    @lg.component(name="plan", cpus=0, resources={"planner": 1}, **options)
    def plan(x: int) -> int:
        if not served:
            gate.wait(WAIT)  # the first call holds the planner while the others queue
        served.append(x)
        return x

    @lg.pipeline
    def p(x: int) -> int:
        return plan(x)

    return p, served


def _queue_up(engine: lg.Engine, p: lg.Pipeline, count: int, events: Events) -> list[Any]:
    run = p.open(engine=engine)
    handles = [run.submit({"x": i}) for i in range(count)]
    events.wait_for(lambda e: len([x for x in events.of(AdmissionWaited)]) >= count - 1)
    run.close()
    return handles


@pytest.fixture
def planner(make_engine: MakeEngine) -> tuple[lg.Engine, Events]:
    engine = make_engine(WatchedClock(), cpus=2, resources={"planner": 1})
    events = Events()
    engine.bus.subscribe(events)
    return engine, events


def test_queue_latest_replaces_older_waiting_calls(
    planner: tuple[lg.Engine, Events], gate: threading.Event
) -> None:
    engine, events = planner
    p, served = _gated_stage(gate, queue="latest")
    handles = _queue_up(engine, p, 4, events)
    gate.set()
    results = [h.result(WAIT) for h in handles]
    assert (results[0], results[3]) == (0, 3)
    assert [r.reason for r in results[1:3]] == ["replaced", "replaced"]
    assert served == [0, 3]
    assert handles[0].run.stats().drops == {"plan": {"replaced": 2}}
    assert [(e.item, e.reason) for e in events.of(ItemDropped)] == [(1, "replaced"),
                                                                   (2, "replaced")]


def test_queue_fifo_n_drops_the_oldest_past_n(
    planner: tuple[lg.Engine, Events], gate: threading.Event
) -> None:
    engine, events = planner
    p, served = _gated_stage(gate, queue=lg.Fifo(2))
    handles = _queue_up(engine, p, 5, events)
    gate.set()
    results = [h.result(WAIT) for h in handles]
    assert [isinstance(r, lg.Dropped) for r in results] == [False, True, True, False, False]
    assert served == [0, 3, 4]
    assert handles[0].run.stats().drops == {"plan": {"queue_full": 2}}


def test_max_age_drops_an_item_whose_data_went_stale_while_it_waited(
    planner: tuple[lg.Engine, Events], gate: threading.Event
) -> None:
    engine, events = planner
    clock = engine.clock
    assert isinstance(clock, WatchedClock)
    p, served = _gated_stage(gate, max_age=0.5)
    handles = _queue_up(engine, p, 2, events)
    clock.advance(1.0)
    gate.set()
    assert handles[0].result(WAIT) == 0
    dropped = handles[1].result(WAIT)
    assert dropped == lg.Dropped(1, "plan", "max_age")
    assert served == [0]


def test_max_age_counts_from_the_source_timestamp(make_engine: MakeEngine) -> None:
    clock = WatchedClock()
    engine = make_engine(clock)

    @lg.component(executor="inline", max_age=0.2)
    def act(x: int) -> int:
        return x

    @lg.pipeline
    def p(x: int) -> int:
        return act(x)

    clock.advance(1.0)
    run = p.open(engine=engine)
    fresh = run.submit({"x": 1}, timestamp=0.9)
    stale = run.submit({"x": 2}, timestamp=0.5)
    run.close()
    assert fresh.result(WAIT) == 1
    assert stale.result(WAIT) == lg.Dropped(1, "act", "max_age")


def test_queue_block_stops_pulling_the_source_while_the_queue_is_full(
    planner: tuple[lg.Engine, Events], gate: threading.Event
) -> None:
    engine, events = planner
    p, _ = _gated_stage(gate, queue="block")
    pulled: list[int] = []

    def seen(i: int) -> Any:
        return lambda e: isinstance(e, AdmissionWaited | NodeStarted) and e.item == i

    def source() -> Iterator[int]:
        for i in range(50):
            if i:  # the next item is pulled once the engine has taken the previous one
                events.wait_for(seen(i - 1))
            pulled.append(i)
            yield i

    runner = Background(lambda: list(p.map(source(), engine=engine)))
    events.wait_for(seen(2))
    # item 0 runs, item 1 waits: the queue is full, so after item 2 (already in hand when
    # item 1 was seen waiting) the source is not pulled until the queue has room
    assert pulled == [0, 1, 2]
    gate.set()
    assert runner.result() == list(range(50))
    assert len(pulled) == 50


def test_a_dropped_item_is_skipped_by_map_or_kept_on_request(
    planner: tuple[lg.Engine, Events], gate: threading.Event
) -> None:
    engine, events = planner
    p, _ = _gated_stage(gate, queue="latest")
    runner = Background(lambda: list(p.map([0, 1, 2], engine=engine, on_drop="keep")))
    events.wait_for(lambda e: isinstance(e, ItemDropped))
    gate.set()
    assert runner.result() == [0, lg.Dropped(1, "plan", "replaced"), 2]


# -- events say why -------------------------------------------------------------------------


def test_admission_waited_says_on_what(
    planner: tuple[lg.Engine, Events], gate: threading.Event
) -> None:
    engine, events = planner
    p, _ = _gated_stage(gate)
    handles = _queue_up(engine, p, 2, events)
    assert [e.on for e in events.of(AdmissionWaited)] == ["resource:planner"]
    gate.set()
    assert [h.result(WAIT) for h in handles] == [0, 1]


def test_instances_built_and_evicted_are_published(make_engine: MakeEngine) -> None:
    engine = make_engine(None, cpus=2, memory=2**30)
    events = Events()
    engine.bus.subscribe(events)

    @lg.component(memory="800MiB", executor="inline")
    class Big:
        def __init__(self, name: str) -> None:
            self.name = name

        def __call__(self, x: int) -> str:
            return f"{self.name}{x}"

    @lg.pipeline
    def p(x: int) -> str:
        return Big("a")(x)

    @lg.pipeline
    def q(x: int) -> str:
        return Big("b")(x)

    assert p.run(x=1, engine=engine) == "a1"
    assert p.run(x=2, engine=engine) == "a2"
    assert q.run(x=3, engine=engine) == "b3"  # needs a's room: a is evicted
    assert [(e.component, e.slot) for e in events.of(InstanceBuilt)] == [("big", 0),
                                                                         ("big", 0)]
    assert [(e.component, e.reason) for e in events.of(InstanceEvicted)] == [("big", "room")]


def test_a_subscriber_that_raises_is_logged_once_and_never_stops_the_loop(
    engine: lg.Engine, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(event: object) -> None:
        raise ValueError("subscriber bug")

    engine.bus.subscribe(broken)

    @lg.component(executor="inline")
    def one(x: int) -> int:
        return x

    @lg.pipeline
    def p(x: int) -> int:
        return one(x)

    with caplog.at_level(logging.ERROR, logger="legato"):
        assert list(p.map(range(3), engine=engine)) == [0, 1, 2]
    logged = [r for r in caplog.records if "subscriber" in r.getMessage()]
    assert len(logged) == 1
    assert "broken" in logged[0].getMessage()


# -- a model that cannot be built fails fast -------------------------------------------------


def test_a_constructor_that_raises_fails_every_item_at_once_and_other_branches_go_on(
    engine: lg.Engine,
) -> None:
    built: list[int] = []

    @lg.component(executor="inline")
    class Broken:
        def __init__(self) -> None:
            built.append(1)
            raise FileNotFoundError("weights.bin")

        def __call__(self, x: int) -> int:
            return x

    @lg.component(executor="inline")
    def fine(x: int) -> int:
        return x * 10

    @lg.component(executor="inline")
    def even(x: int) -> bool:
        return x % 2 == 0

    @lg.pipeline
    def model(x: int) -> int:
        return Broken()(x)

    @lg.pipeline
    def p(x: int) -> int:
        return lg.branch(even(x), model, fine, x)

    results = list(p.map(range(200), engine=engine, on_error="collect"))
    assert built == [1]  # built once, not once per item
    failures = [r for r in results if isinstance(r, lg.Failure)]
    assert len(failures) == 100
    error = failures[0].error
    assert isinstance(error, lg.BuildError)
    assert "Broken.__init__ raised FileNotFoundError: weights.bin" in str(error)
    assert isinstance(error.__cause__, FileNotFoundError)
    assert [r for r in results if not isinstance(r, lg.Failure)] == [
        x * 10 for x in range(1, 200, 2)]


# -- a busy model takes its next batch without a round trip ------------------------------------


def test_a_busy_batched_model_gets_its_next_batch_queued_behind_the_running_one(
    engine: lg.Engine, gate: threading.Event
) -> None:
    events = Events()
    engine.bus.subscribe(events)
    active: list[int] = []
    most: list[int] = [0]

    @lg.component(batch=lg.Batch(max_size=2, max_wait_ms=60_000), cpus=0)
    class Model:
        def __call__(self, xs: list[int]) -> list[int]:
            active.append(1)
            most[0] = max(most[0], len(active))
            gate.wait(WAIT)
            active.pop()
            return [x * 3 for x in xs]

    @lg.pipeline
    def p(x: int) -> int:
        return Model()(x)

    runner = Background(lambda: list(p.map(range(6), engine=engine)))
    # the first batch runs (held at the gate); the second is already handed to the model's slot
    events.wait_for(lambda e: isinstance(e, NodeStarted) and e.item == 3)
    assert len(events.finished()) == 0
    assert len(events.started()) == 4  # not the third batch: one call waits, no more
    gate.set()
    assert runner.result() == [x * 3 for x in range(6)]
    assert most[0] == 1  # the object never served two batches at once


# -- warming a service's models ------------------------------------------------------------


@lg.component(executor="process")
class Loaded:
    """Its constructor writes its pid to a file: the test sees where it was built."""

    def __init__(self, marker: str) -> None:
        import os
        from pathlib import Path

        Path(marker).write_text(str(os.getpid()))
        self.marker = marker

    def __call__(self, x: int) -> int:
        import os

        return os.getpid()


def test_warm_builds_each_class_component_where_it_runs_before_any_call(
    engine: lg.Engine, tmp_path: Any
) -> None:
    events = Events()
    engine.bus.subscribe(events)
    marker = tmp_path / "built"

    @lg.component(executor="inline")
    class Small:
        def __init__(self) -> None:
            self.ready = True

        def __call__(self, x: int) -> int:
            return x

    @lg.pipeline
    def p(x: int) -> int:
        return Small()(Loaded(str(marker))(x))

    assert engine.warm(p.graph) == 2
    built_in = int(marker.read_text())
    assert sorted(e.component for e in events.of(InstanceBuilt)) == ["loaded", "small"]
    assert p.run(x=1, engine=engine) == built_in  # the first call ran where it was built
    assert engine.warm(p.graph) == 0  # already warm
    assert len(events.of(InstanceBuilt)) == 2


def test_warm_raises_the_constructor_error(engine: lg.Engine) -> None:
    @lg.component(executor="inline")
    class Broken:
        def __init__(self) -> None:
            raise OSError("no weights here")

        def __call__(self, x: int) -> int:
            return x

    @lg.pipeline
    def p(x: int) -> int:
        return Broken()(x)

    with pytest.raises(lg.BuildError, match=r"Broken.__init__ raised OSError: no weights here"):
        engine.warm(p.graph)


# -- updates: what happens to an item as it runs -------------------------------------------


def test_updates_tell_each_node_done_and_each_chunk_a_generator_yields(
    engine: lg.Engine,
) -> None:
    @lg.component(executor="inline")
    def words(text: str) -> list[str]:
        return text.split()

    @lg.component
    def speak(words: list[str]) -> Iterator[str]:
        for word in words:
            yield word.upper()

    @lg.pipeline
    def p(text: str) -> list[str]:
        return speak(words(text))

    run = p.open(engine=engine)
    handle = run.submit({"text": "hello there world"}, updates=True)
    run.close()
    assert handle.updates is not None
    seen = list(handle.updates)
    assert [(u.node, u.value) for u in seen if isinstance(u, lg.Chunk)] == [
        ("speak", "HELLO"), ("speak", "THERE"), ("speak", "WORLD")]
    assert [u.node for u in seen if isinstance(u, lg.NodeDone)] == ["words", "speak"]
    assert seen[-1] == lg.NodeDone("speak", seen[-1].start, seen[-1].end,
                                   {"out": ["HELLO", "THERE", "WORLD"]})
    assert handle.result(WAIT) == ["HELLO", "THERE", "WORLD"]


def test_updates_reach_asyncio_and_an_async_generator_streams(engine: lg.Engine) -> None:
    @lg.component
    async def count(n: int) -> AsyncIterator[int]:
        for i in range(n):
            yield i

    @lg.pipeline
    def p(n: int) -> list[int]:
        return count(n)

    async def main() -> tuple[list[Any], list[int]]:
        run = p.open(engine=engine)
        handle = run.submit({"n": 3}, updates=True)
        run.close()
        assert handle.updates is not None
        chunks = [u.value async for u in handle.updates if isinstance(u, lg.Chunk)]
        return chunks, await handle

    assert asyncio.run(main()) == ([0, 1, 2], [0, 1, 2])


# -- per-stage deadlines and what a miss gives ---------------------------------------------


def _late_stage(gate: threading.Event, on_miss: Any) -> lg.Pipeline:
    @lg.component(cpus=0, deadline=0.5, on_miss=on_miss, name="plan")
    def plan(x: float) -> float:
        if x < 0:  # a slow call: it runs past the stage's deadline
            gate.wait(WAIT)
        return x * 2

    @lg.component(executor="inline")
    def act(command: float) -> float:
        return command + 1

    @lg.pipeline
    def p(x: float) -> float:
        return act(plan(x))

    return p


def _miss_once(make_engine: MakeEngine, gate: threading.Event,
               on_miss: Any) -> tuple[lg.Run, list[Any]]:
    clock = WatchedClock()
    engine = make_engine(clock)
    events = Events()
    engine.bus.subscribe(events)
    run = _late_stage(gate, on_miss).open(engine=engine)
    good = run.submit({"x": 1.0})
    assert good.result(WAIT) == 3.0
    late = run.submit({"x": -1.0})
    events.wait_for(lambda e: isinstance(e, NodeStarted) and e.item == 1)  # its budget is set
    clock.advance(0.5)
    results = [good.result(WAIT), late.result(WAIT)]
    run.close()
    gate.set()
    assert run.wait(WAIT)
    return run, results


def test_a_missed_stage_with_on_miss_skip_drops_the_item(
    make_engine: MakeEngine, gate: threading.Event
) -> None:
    run, results = _miss_once(make_engine, gate, "skip")
    assert results[1] == lg.Dropped(1, "plan", "missed")
    assert run.stats().misses == {"plan": 1}


def test_a_missed_stage_with_on_miss_hold_uses_its_last_good_output(
    make_engine: MakeEngine, gate: threading.Event
) -> None:
    run, results = _miss_once(make_engine, gate, "hold")
    assert results == [3.0, 3.0]  # plan's last good output (2.0) went on to act
    assert run.stats().misses == {"plan": 1}


def test_a_missed_stage_with_a_value_uses_that_value(
    make_engine: MakeEngine, gate: threading.Event
) -> None:
    run, results = _miss_once(make_engine, gate, 0.0)
    assert results == [3.0, 1.0]  # zero torque, then act
    assert set(run.stats().latency) == {"plan", "act"}


def test_interrupt_ends_every_open_item_and_the_run_takes_the_next(
    engine: lg.Engine, gate: threading.Event
) -> None:
    @lg.component(executor="async")
    async def speak(text: str) -> str:
        while not gate.is_set():
            await asyncio.sleep(0.001)
        return text

    @lg.pipeline
    def p(text: str) -> str:
        return speak(text)

    events = Events()
    engine.bus.subscribe(events)
    run = p.open(engine=engine)
    talking = run.submit({"text": "a long answer"})
    events.wait_for(lambda e: isinstance(e, NodeStarted))
    run.interrupt()  # the caller barged in
    assert talking.result(WAIT) == lg.Dropped(0, "interrupt", "interrupted")
    gate.set()
    assert run.submit({"text": "next"}).result(WAIT) == "next"
    run.close()
    assert run.wait(WAIT)
    assert run.stats().drops == {"interrupt": {"interrupted": 1}}


def test_a_manual_clock_wait_until_returns_once_advanced_there() -> None:
    clock = lg.ManualClock()
    waiter = Background(lambda: clock.wait_until(1.0))
    clock.advance(0.5)
    assert not waiter.done
    clock.advance(0.5)
    waiter.result()


def test_an_older_items_next_stage_goes_before_a_newer_items_first(
    make_engine: MakeEngine,
) -> None:
    engine = make_engine(None, cpus=1)
    events = Events()
    engine.bus.subscribe(events)

    @lg.component(cpus=1)
    def first(x: int) -> int:
        return x

    @lg.component(cpus=1)
    def second(x: int) -> int:
        return x

    @lg.component(cpus=1)
    def third(x: int) -> int:
        return x

    @lg.pipeline
    def p(x: int) -> int:
        return third(second(first(x)))

    assert list(p.map(range(4), engine=engine)) == [0, 1, 2, 3]
    finished = [e.item for e in events.of(ItemFinished)]
    assert finished == [0, 1, 2, 3]
    started = [(e.item, e.node) for e in events.started()]
    # item 0 runs to its end before item 1's later stages: items finish in the order they came
    assert started.index((0, "third")) < started.index((1, "second"))
