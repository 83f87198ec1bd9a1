"""Admission: a call starts only when everything it asks for is free, and as soon as it is.

Calls here block on events the test sets, and the engine runs on a ``WatchedClock``. A
``timeout`` on the blocked components gives the loop a timer, so the clock sees it go back to
waiting once it has tried everything it could start (``clock.wait_idle()``); only then does a
test assert what has not started. The clock itself never moves unless a test says so.
"""

from __future__ import annotations

import asyncio
import gc
import threading

import pytest

import legato as lg
from harness import WAIT, Background, Events, MakeEngine, WatchedClock


@pytest.fixture
def make(make_engine: MakeEngine) -> MakeEngine:
    """``make(clock, cpus=2, resources={...})``: an engine over a local backend with no GPUs,
    closed after the test."""
    return make_engine


class Gauge:
    """How many calls are inside at once, and the most there ever were."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self.now = 0
        self.most = 0

    def __enter__(self) -> Gauge:
        with self._changed:
            self.now += 1
            self.most = max(self.most, self.now)
            self._changed.notify_all()
        return self

    def __exit__(self, *exc: object) -> None:
        with self._changed:
            self.now -= 1
            self._changed.notify_all()

    def wait_until(self, count: int) -> None:
        """Block until ``count`` calls are inside at once."""
        with self._changed:
            assert self._changed.wait_for(lambda: self.now == count, WAIT)


def _watch(engine: lg.Engine) -> Events:
    events = Events()
    engine.bus.subscribe(events)
    return events


# -- custom resources ------------------------------------------------------------------------


def _two_slot_users(gauge: Gauge, let_go: threading.Event) -> lg.Pipeline:
    @lg.component(resources={"slot": 1}, cpus=0, timeout=60)
    def first(x: int) -> int:
        with gauge:
            assert let_go.wait(WAIT)
            return x + 1

    @lg.component(resources={"slot": 1}, cpus=0, timeout=60)
    def second(x: int) -> int:
        with gauge:
            assert let_go.wait(WAIT)
            return x * 2

    @lg.pipeline
    def p(x: int) -> dict[str, int]:
        return {"first": first(x), "second": second(x)}

    return p


def test_two_calls_asking_for_the_only_slot_never_overlap(make: MakeEngine) -> None:
    clock = WatchedClock()
    engine = make(clock, resources={"slot": 1})
    events = _watch(engine)
    gauge, let_go = Gauge(), threading.Event()
    p = _two_slot_users(gauge, let_go)

    run = Background(lambda: p.run(x=5, engine=engine))
    gauge.wait_until(1)
    clock.wait_idle()  # both were tried; one holds the slot
    assert len(events.started()) == 1
    assert engine.usage().used["slot"] == 1
    let_go.set()
    assert run.result() == {"first": 6, "second": 10}
    assert gauge.most == 1
    assert engine.usage().used["slot"] == 0


def test_two_calls_overlap_when_there_are_two_slots(make: MakeEngine) -> None:
    engine = make(resources={"slot": 2})
    gauge, meet = Gauge(), threading.Barrier(2, timeout=WAIT)  # breaks unless both are in

    @lg.component(resources={"slot": 1}, cpus=0)
    def first(x: int) -> int:
        with gauge:
            meet.wait()
            return x + 1

    @lg.component(resources={"slot": 1}, cpus=0)
    def second(x: int) -> int:
        with gauge:
            meet.wait()
            return x * 2

    @lg.pipeline
    def p(x: int) -> dict[str, int]:
        return {"first": first(x), "second": second(x)}

    assert p.run(x=5, engine=engine) == {"first": 6, "second": 10}
    assert gauge.most == 2


def test_resources_declared_by_the_run_are_enforced(make: MakeEngine) -> None:
    clock = WatchedClock()
    engine = make(clock)
    events = _watch(engine)
    gauge, let_go = Gauge(), threading.Event()
    p = _two_slot_users(gauge, let_go)

    run = Background(lambda: p.run(x=1, engine=engine, resources={"slot": 1}))
    gauge.wait_until(1)
    clock.wait_idle()
    assert len(events.started()) == 1
    let_go.set()
    assert run.result() == {"first": 2, "second": 2}
    assert gauge.most == 1


# -- cpus -------------------------------------------------------------------------------------


def test_thread_calls_hold_one_cpu_each_so_at_most_cpus_run_at_once(make: MakeEngine) -> None:
    clock = WatchedClock()
    engine = make(clock, cpus=2)
    events = _watch(engine)
    gauge, let_go = Gauge(), threading.Event()

    @lg.component(timeout=60)  # a thread component: cpus=1 by default
    def work(x: int) -> int:
        with gauge:
            assert let_go.wait(WAIT)
            return -x

    @lg.pipeline
    def p(x: int) -> int:
        return work(x)

    assert work.options.resources.cpus == 1
    run = Background(lambda: list(p.map(range(5), engine=engine)))
    gauge.wait_until(2)  # two run at once...
    clock.wait_idle()
    assert len(events.started()) == 2  # ...and no third
    assert engine.usage().used["cpus"] == 2
    let_go.set()
    assert run.result() == [0, -1, -2, -3, -4]
    assert gauge.most == 2


def test_inline_calls_hold_no_cpu(make: MakeEngine) -> None:
    engine = make(cpus=1)
    quick_done = threading.Event()

    @lg.component  # holds the only cpu until the inline call has run
    def hog(x: int) -> int:
        assert quick_done.wait(WAIT), "the inline call waited for a cpu"
        return x

    @lg.component(executor="inline")  # declares cpus=1, but runs on the loop's own thread
    def quick(x: int) -> int:
        quick_done.set()
        return x + 1

    @lg.pipeline
    def p(x: int) -> dict[str, int]:
        return {"hog": hog(x), "quick": quick(x)}

    assert quick.options.resources.cpus == 1
    assert p.run(x=1, engine=engine) == {"hog": 1, "quick": 2}


def test_async_calls_hold_no_cpu_by_default(make: MakeEngine) -> None:
    engine = make(cpus=1)
    all_waited = threading.Event()
    count = [0]

    @lg.component  # holds the only cpu until every async call has run
    def hog(x: int) -> int:
        assert all_waited.wait(WAIT), "the async calls waited for a cpu"
        return x

    @lg.component
    async def fetch(x: int) -> int:
        await asyncio.sleep(0)
        count[0] += 1  # on the one event loop: no race
        if count[0] == 3:
            all_waited.set()
        return x

    @lg.pipeline
    def p(x: int, y: int, z: int) -> dict[str, int]:
        return {"hog": hog(x), "a": fetch(x), "b": fetch(y), "c": fetch(z)}

    assert fetch.options.resources.cpus == 0
    assert p.run(x=1, y=2, z=3, engine=engine) == {"hog": 1, "a": 1, "b": 2, "c": 3}


# -- waking and backfill ------------------------------------------------------------------------


def test_a_blocked_call_starts_as_soon_as_resources_free_without_the_clock_moving(
    make: MakeEngine,
) -> None:
    clock = WatchedClock()  # never advanced: a loop that polled on deadlines would hang
    engine = make(clock, resources={"slot": 1})
    events = _watch(engine)
    let_go = threading.Event()

    @lg.component(resources={"slot": 1}, cpus=0)
    def holder(x: int) -> int:
        assert let_go.wait(WAIT)
        return x

    @lg.component(resources={"slot": 1}, cpus=0)
    def waiter(x: int) -> int:
        return x + 100

    @lg.pipeline
    def p(x: int) -> dict[str, int]:
        return {"holder": holder(x), "waiter": waiter(x)}

    run = Background(lambda: p.run(x=1, engine=engine))
    events.wait_for(lambda e: e in events.started("holder"))
    assert events.started("waiter") == []
    let_go.set()
    assert run.result() == {"holder": 1, "waiter": 101}
    assert clock.now() == 0.0


def test_a_call_blocked_in_one_run_starts_when_another_run_frees_its_resources(
    make: MakeEngine,
) -> None:
    engine = make(WatchedClock(), resources={"slot": 1})
    events = _watch(engine)
    let_go = threading.Event()

    @lg.component(resources={"slot": 1}, cpus=0)
    def holder(x: int) -> int:
        assert let_go.wait(WAIT)
        return x

    @lg.component(resources={"slot": 1}, cpus=0)
    def waiter(x: int) -> int:
        return x + 100

    @lg.pipeline
    def holds(x: int) -> int:
        return holder(x)

    @lg.pipeline
    def waits(x: int) -> int:
        return waiter(x)

    first = Background(lambda: holds.run(x=1, engine=engine))
    events.wait_for(lambda e: e in events.started("holder"))
    second = Background(lambda: waits.run(x=2, engine=engine))
    let_go.set()
    assert first.result() == 1
    assert second.result() == 102


def test_a_small_request_runs_while_a_big_one_waits(make: MakeEngine) -> None:
    engine = make(cpus=2)
    small_ran, big_started = threading.Event(), threading.Event()

    @lg.component  # one cpu, held until the small call has run
    def hog(x: int) -> int:
        assert small_ran.wait(WAIT), "the small call did not pass the waiting big one"
        return x

    @lg.component(cpus=2)  # must wait for the hog's cpu
    def big(x: int) -> int:
        big_started.set()
        return x * 10

    @lg.component  # fits in the one cpu left: runs while big waits
    def small(x: int) -> int:
        assert not big_started.is_set()
        small_ran.set()
        return x + 1

    @lg.pipeline
    def p(x: int) -> dict[str, int]:
        return {"hog": hog(x), "big": big(x), "small": small(x)}

    assert p.run(x=3, engine=engine) == {"hog": 3, "big": 30, "small": 4}


# -- a component's request is its own --------------------------------------------------------


def _slot_reader(engine: lg.Engine, index: int, *, holds_slot: bool) -> lg.Pipeline:
    """A pipeline of one new inline component that says how much of ``slot`` is held."""

    def look(x: int) -> float:
        return engine.usage().used["slot"]

    reader = lg.component(executor="inline", resources={"slot": 1} if holds_slot else {},
                          name=f"look{index}")(look)

    @lg.pipeline
    def p(x: int) -> float:
        return reader(x)

    return p


def test_a_new_component_never_takes_the_request_of_a_collected_one(make: MakeEngine) -> None:
    """Components made and dropped one after another on one engine (so their ids are reused):
    each call holds what its own component asks for."""
    engine = make(resources={"slot": 1})
    for index in range(100):
        holds_slot = index % 2 == 0
        pipeline = _slot_reader(engine, index, holds_slot=holds_slot)
        assert pipeline.run(x=index, engine=engine) == (1 if holds_slot else 0), f"call {index}"
        del pipeline
        gc.collect(0)
