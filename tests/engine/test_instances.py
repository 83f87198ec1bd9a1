"""Warm instances: a class component's live objects are built once each and reused across
items and runs; while alive they hold their memory and custom resources (a call holds only its
cpus); when another component needs the room, idle instances are evicted least recently used
first, never below their minimum, never while busy, with ``close()`` called and a worker
process killed; the next call that needs one builds it again."""

from __future__ import annotations

import os
import threading
from typing import Any

import pytest

import legato as lg
from harness import WAIT, Background, Events, MakeEngine, WatchedClock, alive


@pytest.fixture
def make(make_engine: MakeEngine) -> MakeEngine:
    """``make(clock, memory=1000, ...)``: an engine over a local backend with 4 cpus and no
    GPUs, closed after the test."""

    def build(clock: lg.ManualClock | None = None, **backend: Any) -> lg.Engine:
        return make_engine(clock, **{"cpus": 4, **backend})

    return build


class Log:
    """Builds and closes of models, in order (appends are atomic)."""

    def __init__(self) -> None:
        self.entries: list[str] = []

    def live(self, name: str) -> int:
        return self.entries.count(f"build {name}") - self.entries.count(f"close {name}")


def _model(log: Log, name: str, **options: Any) -> lg.Component:
    """A class component that notes in ``log`` when it is built and closed."""

    @lg.component(name=name, **options)
    class Model:
        def __init__(self) -> None:
            log.entries.append(f"build {name}")

        def __call__(self, x: int) -> str:
            return f"{name}({x})"

        def close(self) -> None:
            log.entries.append(f"close {name}")

    return Model


def _using(model: lg.Component) -> lg.Pipeline:
    instance = model()

    @lg.pipeline(name=f"uses_{model.name}")
    def p(x: int) -> str:
        return instance(x)

    return p


# -- warm across items and runs -------------------------------------------------------------


def test_a_class_component_builds_each_instance_once_and_reuses_it_across_items_and_runs(
    make: MakeEngine,
) -> None:
    engine = make()
    builds: list[int] = []
    first_calls = threading.Barrier(2, timeout=WAIT)  # both objects' first calls meet here

    @lg.component(instances=2)
    class Embed:
        def __init__(self) -> None:
            builds.append(id(self))
            self.calls = 0

        def __call__(self, x: int) -> int:
            self.calls += 1
            if self.calls == 1:
                first_calls.wait()  # so two calls are served at once by two objects
            return id(self)

    @lg.pipeline
    def p(x: int) -> int:
        return Embed()(x)

    first = list(p.map(range(6), engine=engine))
    second = list(p.map(range(4), engine=engine))
    assert len(builds) == 2
    assert set(first) | set(second) == set(builds)  # every call was served by one of the two
    assert engine.instances.live(Embed()) == 2


def test_a_live_instance_holds_memory_and_custom_resources_and_a_call_holds_cpus(
    make: MakeEngine,
) -> None:
    engine = make(memory=1000, resources={"licence": 2})
    seen: list[dict[str, float]] = []

    @lg.component(memory=400, resources={"licence": 1}, cpus=1)
    class Model:
        def __call__(self, x: int) -> int:
            seen.append(dict(engine.usage().used))
            return x

    @lg.pipeline
    def p(x: int) -> int:
        return Model()(x)

    assert p.run(x=1, engine=engine) == 1
    assert {k: seen[0][k] for k in ("cpus", "memory", "licence")} == {
        "cpus": 1, "memory": 400, "licence": 1}
    idle = engine.usage().used
    assert {k: idle[k] for k in ("cpus", "memory", "licence")} == {
        "cpus": 0, "memory": 400, "licence": 1}  # alive and idle: the model still holds
    assert p.run(x=2, engine=engine) == 2
    assert engine.usage().used["memory"] == 400  # the same instance, not a second one
    engine.close()
    assert engine.usage().used["memory"] == 0


# -- eviction -----------------------------------------------------------------------------------


def test_alternating_models_that_do_not_fit_together_evict_each_other(make: MakeEngine) -> None:
    engine = make(memory=1000)
    log = Log()
    a = _using(_model(log, "a", memory=600))
    b = _using(_model(log, "b", memory=600))

    assert a.run(x=1, engine=engine) == "a(1)"
    assert b.run(x=2, engine=engine) == "b(2)"
    assert a.run(x=3, engine=engine) == "a(3)"
    assert log.entries == ["build a", "close a", "build b", "close b", "build a"]
    assert engine.instances.evictions == 2
    assert engine.usage().used["memory"] == 600


def test_the_least_recently_used_idle_instance_is_evicted_first(make: MakeEngine) -> None:
    clock = lg.ManualClock()
    engine = make(clock, memory=1000)
    log = Log()
    a, b, c = (_using(_model(log, name, memory=400)) for name in "abc")

    for p in (a, b, a):  # a was used last
        p.run(x=0, engine=engine)
        clock.advance(1.0)
    assert c.run(x=0, engine=engine) == "c(0)"
    assert log.entries[-2:] == ["close b", "build c"]
    assert a.run(x=0, engine=engine) == "a(0)"  # still warm: nothing built
    assert log.entries[-1] == "build c"
    assert engine.instances.evictions == 1


def test_only_instances_holding_what_is_needed_are_evicted(make: MakeEngine) -> None:
    clock = lg.ManualClock()
    engine = make(clock, memory=1000, resources={"licence": 1})
    log = Log()
    licensed = _using(_model(log, "licensed", resources={"licence": 1}))
    big = _using(_model(log, "big", memory=600))
    other = _using(_model(log, "other", memory=600))

    licensed.run(x=0, engine=engine)  # the oldest, but holds no memory
    clock.advance(1.0)
    big.run(x=0, engine=engine)
    clock.advance(1.0)
    other.run(x=0, engine=engine)
    assert log.entries == ["build licensed", "build big", "close big", "build other"]


def test_instances_are_never_evicted_below_their_minimum(make: MakeEngine) -> None:
    clock = lg.ManualClock()
    engine = make(clock, memory=300)
    log = Log()
    meet = threading.Barrier(2, timeout=WAIT)

    @lg.component(memory=100, instances=(1, 2))
    class Pinned:
        def __init__(self) -> None:
            log.entries.append("build pinned")
            self.calls = 0

        def __call__(self, x: int) -> str:
            self.calls += 1
            if self.calls == 1:
                meet.wait()  # two calls at once: two instances
            return "pinned"

        def close(self) -> None:
            log.entries.append("close pinned")

    @lg.pipeline
    def pinned(x: int) -> str:
        return Pinned()(x)

    big = _using(_model(log, "big", memory=200))
    bigger = _using(_model(log, "bigger", memory=200))

    assert list(pinned.map([1, 2], engine=engine)) == ["pinned", "pinned"]
    assert engine.instances.live(Pinned()) == 2
    clock.advance(1.0)
    big.run(x=0, engine=engine)  # needs 200 of the 100 free: one pinned instance goes
    assert engine.instances.live(Pinned()) == 1
    clock.advance(1.0)
    bigger.run(x=0, engine=engine)  # the last pinned one is older, but at its minimum
    assert engine.instances.live(Pinned()) == 1
    assert log.entries == ["build pinned", "build pinned", "close pinned", "build big",
                           "close big", "build bigger"]
    assert engine.instances.evictions == 2


def test_a_busy_instance_is_not_evicted_until_its_call_is_done(make: MakeEngine) -> None:
    clock = WatchedClock()
    engine = make(clock, memory=1000)
    events = Events()
    engine.bus.subscribe(events)
    log = Log()
    inside, let_go = threading.Event(), threading.Event()

    @lg.component(memory=600, timeout=60)  # the timeout is a timer: the clock sees waiting
    class Busy:
        def __init__(self) -> None:
            log.entries.append("build busy")

        def __call__(self, x: int) -> str:
            inside.set()
            assert let_go.wait(WAIT)
            return "busy"

        def close(self) -> None:
            log.entries.append("close busy")

    other = _model(log, "other", memory=600)

    @lg.pipeline
    def p(x: int) -> dict[str, str]:
        return {"busy": Busy()(x), "other": other()(x)}  # two roots, the busy one first

    run = Background(lambda: p.run(x=0, engine=engine))
    assert inside.wait(WAIT)
    clock.wait_idle()
    assert [e.node for e in events.started()] == ["busy"]  # other waits: busy is not evicted
    assert log.entries == ["build busy"]
    let_go.set()
    assert run.result() == {"busy": "busy", "other": "other(0)"}
    assert log.entries == ["build busy", "close busy", "build other"]


# -- class components of the same name ------------------------------------------------------


def test_two_classes_of_the_same_name_are_distinct_instances(make: MakeEngine) -> None:
    engine = make(resources={"model": 1})
    log = Log()
    first = _model(log, "first", resources={"model": 1})
    second = _model(log, "second", resources={"model": 1})
    assert first.qualname == second.qualname  # both are _model.<locals>.Model

    assert _using(first).run(x=1, engine=engine) == "first(1)"
    assert _using(second).run(x=2, engine=engine) == "second(2)"
    assert log.entries == ["build first", "close first", "build second"]  # one model at a time
    assert engine.instances.evictions == 1


# -- worker processes -------------------------------------------------------------------------


@lg.component(executor="process", memory=600)
class ProcessModel:
    """Lives in a worker process of its own; says which."""

    def __call__(self, x: int) -> int:
        return os.getpid()


def test_evicting_a_process_instance_kills_its_worker_process(make: MakeEngine) -> None:
    engine = make(memory=1000)
    log = Log()

    @lg.pipeline
    def in_process(x: int) -> int:
        return ProcessModel()(x)

    other = _using(_model(log, "other", memory=600))

    pid = in_process.run(x=0, engine=engine)
    assert pid != os.getpid()
    assert alive(pid)
    assert in_process.run(x=1, engine=engine) == pid  # warm: the same process
    other.run(x=0, engine=engine)
    assert not alive(pid)
    again = in_process.run(x=2, engine=engine)
    assert again != pid
    assert alive(again)
    assert log.entries == ["build other", "close other"]
