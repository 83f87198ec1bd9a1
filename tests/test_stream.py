"""Streams: a pipeline fed from an endless source, end to end on the live engine: stale data
dropped (queue policies, ``max_age`` from the source stamp), stage deadlines and their miss
policies, interruption, sources and reading. Ticks: tests/test_stream_tick.py.

Timing is the test's: engines run on a ``WatchedClock`` that moves only when the test advances
it; a stage that must be "busy" waits on a ``threading.Event`` the test sets.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

import legato as lg
from harness import WAIT, Background, Events, MakeEngine, WatchedClock
from legato.engine.events import AdmissionWaited, NodeStarted


@pytest.fixture
def gate() -> Iterator[threading.Event]:
    event = threading.Event()
    yield event
    event.set()  # never leave a worker thread waiting


def _echo() -> lg.Pipeline:
    @lg.component(executor="inline")
    def stamp(t: float) -> float:
        return t

    @lg.pipeline
    def p(t: float) -> float:
        return stamp(t)

    return p


# -- stale data: queue policies and max_age end to end -------------------------------------


def _gated_plan(gate: threading.Event, **options: Any) -> tuple[lg.Pipeline, list[int]]:
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


@pytest.fixture
def planner(make_engine: MakeEngine) -> tuple[lg.Engine, Events]:
    engine = make_engine(WatchedClock(), cpus=2, resources={"planner": 1})
    events = Events()
    engine.bus.subscribe(events)
    return engine, events


def _queued(events: Events, count: int) -> None:
    events.wait_for(lambda e: len(events.of(AdmissionWaited)) >= count)


def test_a_stream_with_queue_latest_acts_only_on_the_newest_waiting_item(
    planner: tuple[lg.Engine, Events], gate: threading.Event
) -> None:
    engine, events = planner
    p, served = _gated_plan(gate, queue="latest")
    stream = p.stream(range(4), engine=engine, on_drop="keep", indexed=True)
    _queued(events, 3)
    gate.set()
    results = dict(stream)
    assert results == {0: 0, 1: lg.Dropped(1, "plan", "replaced"),
                       2: lg.Dropped(2, "plan", "replaced"), 3: 3}
    assert served == [0, 3]
    stats = stream.stats()
    assert stats.drops == {"plan": {"replaced": 2}}
    assert (stats.items_in, stats.done, stats.dropped) == (4, 2, 2)


def test_a_stream_with_fifo_n_drops_the_oldest_waiting_items(
    planner: tuple[lg.Engine, Events], gate: threading.Event
) -> None:
    engine, events = planner
    p, served = _gated_plan(gate, queue=lg.Fifo(2))
    stream = p.stream(range(5), engine=engine)
    _queued(events, 4)
    gate.set()
    assert sorted(stream) == [0, 3, 4]  # dropped items are left out (on_drop="skip")
    assert served == [0, 3, 4]
    assert stream.stats().drops == {"plan": {"queue_full": 2}}


def test_a_stream_with_queue_block_stops_pulling_its_source_while_the_queue_is_full(
    planner: tuple[lg.Engine, Events], gate: threading.Event
) -> None:
    engine, events = planner
    p, _ = _gated_plan(gate, queue="block")
    pulled: list[int] = []

    def seen(i: int) -> Any:
        return lambda e: isinstance(e, AdmissionWaited | NodeStarted) and e.item == i

    def source() -> Iterator[int]:
        for i in range(20):
            if i:  # the next item is pulled once the engine has taken the previous one
                events.wait_for(seen(i - 1))
            pulled.append(i)
            yield i

    stream = p.stream(source(), engine=engine)
    events.wait_for(seen(2))
    # item 0 runs, item 1 waits: the queue is full, so after item 2 (already being pulled
    # when item 1 was seen waiting) the source is not pulled until the queue has room
    assert pulled == [0, 1, 2]
    gate.set()
    assert sorted(stream) == list(range(20))
    assert len(pulled) == 20


def test_max_age_drops_at_a_late_stage_data_that_was_fresh_at_the_sensor(
    make_engine: MakeEngine, gate: threading.Event
) -> None:
    clock = WatchedClock()
    engine = make_engine(clock)
    events = Events()
    engine.bus.subscribe(events)
    sensed: list[float] = []

    @lg.component(executor="inline", max_age=0.5)
    def sense(t: float) -> float:
        sensed.append(t)
        return t

    @lg.component(cpus=0)
    def plan(x: float) -> float:
        gate.wait(WAIT)  # slow: the data ages while it plans
        return x

    @lg.component(executor="inline", max_age=0.5)
    def act(x: float) -> float:
        return x

    @lg.pipeline
    def p(t: float) -> float:
        return act(plan(sense(t)))

    stream = p.stream(lg.Tick(1, count=1), engine=engine, on_drop="keep")
    events.wait_for(lambda e: isinstance(e, NodeStarted) and e.node == "plan")
    clock.advance(1.0)  # the tick's data is now 1 s old
    gate.set()
    assert list(stream) == [lg.Dropped(0, "act", "max_age")]
    assert sensed == [0.0]  # fresh at the sensor: sensed, then dropped before acting on it
    assert stream.stats().drops == {"act": {"max_age": 1}}


def test_an_item_is_stamped_when_its_source_gave_it(make_engine: MakeEngine) -> None:
    clock = WatchedClock()
    engine = make_engine(clock)

    @lg.component(executor="inline", max_age=0.2)
    def act(x: int) -> int:
        return x

    @lg.pipeline
    def p(x: int) -> int:
        return act(x)

    handed = queue.SimpleQueue[Any]()
    stream = p.stream(iter(handed.get, None), engine=engine, on_drop="keep")
    handed.put(1)
    assert next(stream) == 1
    clock.advance(1.0)  # a plain iterable's item is stamped when pulled: still fresh
    handed.put(2)
    assert next(stream) == 2
    handed.put(None)
    assert list(stream) == []


# -- per-stage deadlines and the miss policies, end to end ---------------------------------


@pytest.mark.parametrize(("on_miss", "second"), [
    ("skip", lg.Dropped(1, "plan", "missed")),
    ("hold", 3.0),  # plan's last good output (2.0) went on to act
    (0.0, 1.0),  # the safe default, then act
])
def test_a_stage_past_its_deadline_gives_what_on_miss_says_and_is_counted(
    make_engine: MakeEngine, gate: threading.Event, on_miss: Any, second: Any
) -> None:
    clock = WatchedClock()
    engine = make_engine(clock)
    events = Events()
    engine.bus.subscribe(events)

    @lg.component(cpus=0, deadline=0.5, on_miss=on_miss, name="plan")
    def plan(x: float) -> float:
        if x < 0:
            gate.wait(WAIT)  # runs past the stage's budget
        return x * 2

    @lg.component(executor="inline")
    def act(command: float) -> float:
        return command + 1

    @lg.pipeline
    def p(x: float) -> float:
        return act(plan(x))

    handed = queue.SimpleQueue[Any]()
    stream = p.stream(iter(handed.get, None), engine=engine, on_drop="keep")
    handed.put(1.0)
    assert next(stream) == 3.0
    handed.put(-1.0)
    events.wait_for(lambda e: isinstance(e, NodeStarted) and e.item == 1)
    clock.advance(0.5)
    assert next(stream) == second
    handed.put(None)
    gate.set()
    assert list(stream) == []
    stats = stream.stats()
    assert stats.misses == {"plan": 1}
    assert set(stats.latency) == {"plan", "act"}


# -- interruption ---------------------------------------------------------------------------


def _voice(gate: threading.Event, cut: list[str]) -> lg.Pipeline:
    @lg.component(executor="async")
    async def speak(text: str) -> str:
        try:
            while text.startswith("long") and not gate.is_set():
                await asyncio.sleep(0.001)  # speaking, chunk after chunk
        except asyncio.CancelledError:
            cut.append(text)
            raise
        return f"said: {text}"

    @lg.pipeline
    def agent(text: str) -> str:
        return speak(text)

    return agent


def test_a_new_utterance_flagged_as_interrupt_cuts_off_the_reply_being_spoken(
    engine: lg.Engine, gate: threading.Event
) -> None:
    events = Events()
    engine.bus.subscribe(events)
    cut: list[str] = []
    heard = queue.SimpleQueue[Any]()
    stream = _voice(gate, cut).stream(iter(heard.get, None), engine=engine, on_drop="keep")
    heard.put("long answer about the weather")
    events.wait_for(lambda e: isinstance(e, NodeStarted) and e.node == "speak")
    heard.put(lg.Interrupt("wait, what about tomorrow?"))  # the user barges in
    assert next(stream) == lg.Dropped(0, "interrupt", "interrupted")
    assert next(stream) == "said: wait, what about tomorrow?"  # the stream goes on
    heard.put(None)
    assert list(stream) == []
    events.wait_for(lambda e: bool(cut))
    assert cut == ["long answer about the weather"]  # the speaking task was really cancelled
    assert stream.stats().drops == {"interrupt": {"interrupted": 1}}


def test_stream_interrupt_ends_every_open_item_and_the_stream_takes_the_next(
    engine: lg.Engine, gate: threading.Event
) -> None:
    events = Events()
    engine.bus.subscribe(events)
    cut: list[str] = []
    heard = queue.SimpleQueue[Any]()
    stream = _voice(gate, cut).stream(iter(heard.get, None), engine=engine, on_drop="keep")
    heard.put("long one")
    heard.put("long two")
    events.wait_for(lambda e: len([s for s in events.of(NodeStarted) if s.node == "speak"]) == 2)
    stream.interrupt()
    assert sorted(next(stream).index for _ in range(2)) == [0, 1]
    heard.put("next")
    assert next(stream) == "said: next"
    heard.put(None)
    assert list(stream) == []
    assert stream.stats().drops == {"interrupt": {"interrupted": 2}}


# -- sources, reading, ending ---------------------------------------------------------------


def test_an_async_source_and_astream(engine: lg.Engine) -> None:
    async def source() -> AsyncIterator[int]:
        for i in range(5):
            await asyncio.sleep(0)
            yield i

    @lg.component(executor="inline")
    def square(x: int) -> int:
        return x * x

    @lg.pipeline
    def p(x: int) -> int:
        return square(x)

    async def main() -> list[int]:
        return [r async for r in p.astream(source(), engine=engine)]

    assert sorted(asyncio.run(main())) == [0, 1, 4, 9, 16]


def test_a_failed_item_raises_from_the_stream_and_stops_it(engine: lg.Engine) -> None:
    @lg.component(executor="inline")
    def check(x: int) -> int:
        if x == 2:
            raise ValueError("bad reading")
        return x

    @lg.pipeline
    def p(x: int) -> int:
        return check(x)

    with pytest.raises(lg.ComponentError, match="bad reading"):
        list(p.stream(iter(range(5)), engine=engine))
    collected = list(p.stream(range(5), engine=engine, on_error="collect"))
    assert [type(r).__name__ for r in collected].count("Failure") == 1


def test_a_source_that_raises_ends_the_stream_with_its_error(engine: lg.Engine) -> None:
    def source() -> Iterator[int]:
        yield 1
        raise OSError("sensor unplugged")

    stream = _echo().stream(source(), engine=engine)
    with pytest.raises(OSError, match="sensor unplugged"):
        list(stream)


def test_close_stops_the_source_and_cancels_what_is_in_flight(
    engine: lg.Engine, gate: threading.Event
) -> None:
    started = threading.Event()

    @lg.component(executor="async")
    async def slow(x: int) -> int:
        started.set()
        while not gate.is_set():
            await asyncio.sleep(0.001)
        return x

    @lg.pipeline
    def p(x: int) -> int:
        return slow(x)

    def endless() -> Iterator[int]:
        i = 0
        while True:
            yield i
            i += 1

    with p.stream(endless(), engine=engine, window=4) as stream:
        assert started.wait(WAIT)
    assert stream.wait(WAIT)
    assert stream.stats().items_in <= 5  # the window held the endless source
    assert list(stream) == []


def test_bad_stream_options_are_refused(engine: lg.Engine) -> None:
    with pytest.raises(lg.ConfigError, match="window must be >= 1"):
        _echo().stream([1.0], engine=engine, window=0)
    with pytest.raises(lg.ConfigError, match="a stream's source must be an iterable"):
        _echo().stream(42, engine=engine)


def test_stream_stats_is_a_frozen_snapshot(engine: lg.Engine) -> None:
    stream = _echo().stream([1.0, 2.0], engine=engine)
    assert sorted(stream) == [1.0, 2.0]
    stats = stream.stats()
    with pytest.raises(AttributeError):
        stats.done = 0  # type: ignore[misc]
    assert stats.to_dict()["latency"]["stamp"][0] >= 0
    runner = Background(lambda: stream.wait(WAIT))
    assert runner.result() is True
