"""What starts first, and when a batch goes: ready nodes by the estimated work left on their
longest path (estimates learned from measured durations), ties by item age; an ``"auto"`` batch
wait that never exceeds the component's estimated service time, nor 50 ms.

Start order is read from the engine's ``NodeStarted`` events. A custom resource of one slot
makes calls wait for each other, so the order in which waiting calls are let in shows too.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

import legato as lg
from harness import WAIT, Background, Events, WatchedClock
from legato.backends.local import LocalBackend
from legato.engine.events import NodeFinished


@pytest.fixture
def engine() -> Iterator[lg.Engine]:
    """One call at a time: every component here asks for the only ``slot``."""
    with lg.Engine(LocalBackend(gpus=[], resources={"slot": 1})) as eng:
        yield eng


def _order(events: Events) -> list[str]:
    return [e.node for e in events.started()]


def _three_roots() -> lg.Pipeline:
    @lg.component(executor="inline", resources={"slot": 1})
    def a(x: int) -> int:
        return x + 1

    @lg.component(executor="inline", resources={"slot": 1})
    def b(x: int) -> int:
        return x + 2

    @lg.component(executor="inline", resources={"slot": 1})
    def c(x: int) -> int:
        return x + 3

    @lg.component(executor="inline", resources={"slot": 1})
    def join(p: int, q: int, r: int) -> int:
        return p + q + r

    @lg.pipeline
    def roots(x: int) -> int:
        return join(a(x), b(x), c(x))

    return roots


# -- critical path --------------------------------------------------------------------------


def test_without_estimates_equal_paths_start_in_the_order_they_were_written(
    engine: lg.Engine,
) -> None:
    events = Events()
    engine.bus.subscribe(events)
    assert _three_roots().run(x=0, engine=engine) == 6
    assert _order(events) == ["a", "b", "c", "join"]


def test_the_ready_node_with_the_most_estimated_work_left_starts_first(engine: lg.Engine) -> None:
    estimates = engine.allocator.estimates
    for node, seconds in {"a": 1.0, "b": 5.0, "c": 3.0, "join": 0.5}.items():
        estimates.add(f"roots/{node}", seconds)
    events = Events()
    engine.bus.subscribe(events)
    assert _three_roots().run(x=0, engine=engine) == 6
    assert _order(events) == ["b", "c", "a", "join"]  # 5.5, 3.5, 1.5 left on their paths


def test_work_left_counts_the_whole_path_not_only_the_node(engine: lg.Engine) -> None:
    @lg.component(executor="inline", resources={"slot": 1})
    def long_alone(x: int) -> int:
        return x

    @lg.component(executor="inline", resources={"slot": 1})
    def short_head(x: int) -> int:
        return x

    @lg.component(executor="inline", resources={"slot": 1})
    def long_tail(x: int) -> int:
        return x

    @lg.pipeline
    def paths(x: int) -> dict[str, int]:
        return {"alone": long_alone(x), "chain": long_tail(short_head(x))}

    estimates = engine.allocator.estimates
    estimates.add("paths/long_alone", 3.0)
    estimates.add("paths/short_head", 0.5)
    estimates.add("paths/long_tail", 4.0)  # 0.5 + 4.0 behind short_head beats 3.0
    events = Events()
    engine.bus.subscribe(events)
    paths.run(x=0, engine=engine)
    assert _order(events) == ["short_head", "long_tail", "long_alone"]


def test_estimates_are_learned_from_measured_durations(engine: lg.Engine) -> None:
    @lg.component(executor="inline", resources={"slot": 1})
    def slow(x: int) -> int:
        time.sleep(0.05)  # only to make its measured duration differ from the others'
        return x

    @lg.component(executor="inline", resources={"slot": 1})
    def quick(x: int) -> int:
        return x

    @lg.component(executor="inline", resources={"slot": 1})
    def quick_too(x: int) -> int:
        return x

    @lg.pipeline
    def learned(x: int) -> dict[str, int]:
        return {"slow": slow(x), "quick": quick_too(quick(x))}

    events = Events()
    engine.bus.subscribe(events)
    learned.run(x=0, engine=engine)
    assert _order(events)[0] == "quick"  # unmeasured: the longer chain of nodes goes first
    estimates = engine.allocator.estimates
    assert estimates.get("learned/slow") > estimates.get("learned/quick") + estimates.get(
        "learned/quick_too")
    events.all.clear()
    learned.run(x=0, engine=engine)
    assert _order(events)[0] == "slow"  # measured: the slow node holds up more work


def test_unmeasured_nodes_are_estimated_at_the_average_of_measured_ones() -> None:
    estimates = lg.Engine(LocalBackend(gpus=[])).allocator.estimates
    assert estimates.get("p/anything") == 1.0  # nothing measured yet
    estimates.add("p/x", 2.0)
    estimates.add("p/y", 4.0)
    assert estimates.get("p/z") == 3.0
    estimates.add("p/x", 4.0)  # a moving average: 2 + 0.3 * (4 - 2)
    assert estimates.get("p/x") == pytest.approx(2.6)


def test_a_plan_is_ranked_again_only_when_an_estimate_moves_noticeably() -> None:
    @lg.component
    def step(x: int) -> int:
        return x

    @lg.pipeline
    def two(x: int) -> int:
        return step(step(x))

    with lg.Engine(LocalBackend(gpus=[])) as engine:
        allocator = engine.allocator
        first = allocator.plan(two.graph)
        assert allocator.plan(two.graph) is first  # nothing measured since: the same plan
        allocator.estimates.add("two/step", 10e-6)
        noticed = allocator.plan(two.graph)
        assert noticed is not first  # the first measurement re-ranked
        allocator.estimates.add("two/step", 100e-6)  # the average moves 27 µs: > 25 %, < 0.1 ms
        assert allocator.plan(two.graph) is noticed  # such jitter does not
        allocator.estimates.add("two/step", 0.5)  # a real change re-ranks, sharing structure
        reranked = allocator.plan(two.graph)
        assert reranked is not noticed
        assert reranked.downstream is first.downstream
        assert reranked.bindings is first.bindings
        assert reranked.rank["step"] > noticed.rank["step"]


# -- item age -----------------------------------------------------------------------------------


def test_equal_work_goes_to_the_oldest_item_first() -> None:
    """Item 0 holds the slot while items 2 and then 1 come to wait for it: item 1 goes next."""
    clock = WatchedClock()
    with lg.Engine(LocalBackend(gpus=[], resources={"slot": 1}), clock=clock) as engine:
        events = Events()
        engine.bus.subscribe(events)
        gates = [threading.Event() for _ in range(3)]
        holding, hold = threading.Event(), threading.Event()
        served: list[int] = []

        @lg.component(cpus=0, timeout=60)  # timers, so the clock sees the loop go idle
        def fetch(x: int) -> int:
            assert gates[x].wait(WAIT)
            return x

        @lg.component(cpus=0, resources={"slot": 1}, timeout=60)
        def use(x: int) -> int:
            served.append(x)
            if x == 0:
                holding.set()
                assert hold.wait(WAIT)
            return x

        @lg.pipeline
        def p(x: int) -> int:
            return use(fetch(x))

        def fetched(item: int) -> None:
            """Let item's fetch finish, and wait until the loop has done all it then could."""
            gates[item].set()
            events.wait_for(lambda e: isinstance(e, NodeFinished) and e.node == "fetch"
                            and e.item == item)
            clock.advance(0.001)
            clock.wait_idle()

        run = Background(lambda: list(p.map(range(3), engine=engine, window=3)))
        gates[0].set()
        assert holding.wait(WAIT)  # item 0 holds the slot
        fetched(2)  # item 2 waits for the slot first...
        fetched(1)  # ...then item 1
        assert served == [0]
        hold.set()
        assert run.result() == [0, 1, 2]
        assert served == [0, 1, 2]


# -- batches: max_wait_ms="auto" ------------------------------------------------------------


def test_batch_accepts_auto_and_rejects_other_words() -> None:
    assert lg.Batch(max_size=4, max_wait_ms="auto").max_wait_ms == "auto"
    with pytest.raises(lg.ConfigError) as caught:
        lg.Batch(max_wait_ms="soon")  # type: ignore[arg-type]
    assert "Batch.max_wait_ms must be a number of milliseconds or 'auto', got 'soon'" in str(
        caught.value)


def test_an_auto_batch_with_no_measured_arrivals_goes_at_once() -> None:
    clock = WatchedClock()  # never advanced: a batch that waited would never go

    @lg.component(batch=lg.Batch(max_size=8, max_wait_ms="auto"), executor="inline")
    def embed(xs: list[int]) -> list[int]:
        return [x * 2 for x in xs]

    @lg.pipeline
    def p(x: int) -> int:
        return embed(x)

    with lg.Engine(LocalBackend(gpus=[]), clock=clock) as timed:
        assert Background(lambda: p.run(x=4, engine=timed)).result() == 8


@pytest.mark.parametrize(("service", "gap", "max_size", "wait"), [
    (2**-6, 1.0, 8, 2**-6),  # the next call is far off: wait one service time
    (1.0, 1.0, 8, 0.05),  # a slow component: never more than 50 ms
    (2**-6, 2**-10, 2, 2**-10),  # calls come fast: wait for the one that fills the batch
])
def test_an_auto_batch_waits_for_the_next_call_at_most_one_service_time_and_50ms(
    service: float, gap: float, max_size: int, wait: float
) -> None:
    clock = WatchedClock()
    gates = [threading.Event(), threading.Event()]
    first_batch_may_finish = threading.Event()

    @lg.component(cpus=0)
    def arrive(x: int) -> int:
        assert gates[x].wait(WAIT)
        return x

    @lg.component(cpus=0, batch=lg.Batch(max_size=max_size, max_wait_ms="auto"))
    def embed(xs: list[int]) -> list[int]:
        if 0 in xs:  # still running while item 1 arrives: nothing measured yet
            assert first_batch_may_finish.wait(WAIT)
        return [x * 2 for x in xs]

    @lg.pipeline
    def p(x: int) -> int:
        return embed(arrive(x))

    with lg.Engine(LocalBackend(gpus=[]), clock=clock) as timed:
        timed.allocator.estimates.add("p/embed", service)
        events = Events()
        timed.bus.subscribe(events)

        def embedding(item: int) -> bool:
            return any(e.item == item for e in events.started("embed"))

        run = Background(lambda: list(p.map(range(2), engine=timed, window=2)))
        gates[0].set()
        events.wait_for(lambda _: embedding(0))  # no gap measured yet: item 0 went at once
        clock.advance(gap)
        gates[1].set()
        clock.wait_idle()  # item 1 waits in its batch (its wait is the only timer)
        assert not embedding(1)
        clock.advance(wait * 0.75)
        clock.wait_idle()
        assert not embedding(1)
        clock.advance(wait * 0.25 + 1e-9)
        events.wait_for(lambda _: embedding(1))
        first_batch_may_finish.set()
        assert run.result() == [0, 2]
