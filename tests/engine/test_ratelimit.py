"""Rate limits: a token bucket per component, checked when a call is admitted, on the engine's
clock. Every test here drives a ``WatchedClock`` by hand: a call limit lets a burst start and
then one call per refill; a token limit goes into debt by what calls report and holds the next
call until it is paid back."""

from __future__ import annotations

import gc
import threading
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any

import pytest

import legato as lg
from harness import Background, Events, WatchedClock
from legato.backends.local import LocalBackend
from legato.usage import report_usage


class CountingClock(WatchedClock):
    """A WatchedClock that counts how often the loop asked it how long to wait."""

    def __init__(self) -> None:
        super().__init__()
        self.asks = 0

    def seconds_until(self, deadline: float) -> float | None:
        self.asks += 1
        return super().seconds_until(deadline)


@pytest.fixture
def clock() -> CountingClock:
    return CountingClock()


@pytest.fixture
def engine(clock: CountingClock) -> Iterator[lg.Engine]:
    with lg.Engine(LocalBackend(gpus=[]), clock=clock) as eng:
        yield eng


@pytest.fixture
def events(engine: lg.Engine) -> Events:
    recorder = Events()
    engine.bus.subscribe(recorder)
    return recorder


def _started(events: Events, count: int) -> Callable[[Any], bool]:
    return lambda _: len(events.started()) >= count


# -- calls per period ---------------------------------------------------------------------------


def test_a_call_limit_starts_a_burst_then_one_call_per_refill(
    engine: lg.Engine, clock: CountingClock, events: Events
) -> None:
    starts: list[float] = []

    @lg.component(executor="inline", rate_limit=lg.RateLimit(calls=2, per=1.0))
    def call_api(x: int) -> int:
        starts.append(clock.now())
        return x * 2

    @lg.pipeline
    def p(x: int) -> int:
        return call_api(x)

    run = Background(lambda: list(p.map(range(5), engine=engine)))
    events.wait_for(_started(events, 2))
    clock.wait_idle()
    assert starts == [0.0, 0.0]  # the bucket starts full: a burst of two

    clock.advance(0.49)  # a call refills every 0.5 s
    clock.wait_idle()
    assert len(starts) == 2
    clock.advance(0.01)
    events.wait_for(_started(events, 3))
    clock.wait_idle()
    assert starts == [0.0, 0.0, 0.5]

    clock.advance(0.5)
    events.wait_for(_started(events, 4))
    clock.wait_idle()
    assert len(starts) == 4
    clock.advance(0.5)
    assert run.result() == [0, 2, 4, 6, 8]
    assert starts == [0.0, 0.0, 0.5, 1.0, 1.5]


def test_runs_on_one_engine_share_a_components_bucket(
    engine: lg.Engine, clock: CountingClock, events: Events
) -> None:
    @lg.component(executor="inline", rate_limit=lg.RateLimit(calls=1, per=2.0))
    def call_api(x: int) -> int:
        return x

    @lg.pipeline
    def p(x: int) -> int:
        return call_api(x)

    assert p.run(x=1, engine=engine) == 1
    second = Background(lambda: p.run(x=2, engine=engine))
    clock.wait_idle()
    assert len(events.started()) == 1
    clock.advance(2.0)
    assert second.result() == 2


# -- tokens per period --------------------------------------------------------------------------


def _token_user(clock: lg.ManualClock, executor: str, starts: list[float]) -> lg.Component:
    limit = lg.RateLimit(tokens=100, per=10.0)  # refills 10 tokens a second
    if executor == "async":

        @lg.component(rate_limit=limit)
        async def ask(x: int) -> int:
            starts.append(clock.now())
            report_usage(tokens=50)
            report_usage(tokens=30)  # reports add up: 80 for this call
            return x

        return ask

    @lg.component(rate_limit=limit, executor=executor)  # type: ignore[arg-type]
    def ask_sync(x: int) -> int:
        starts.append(clock.now())
        report_usage(tokens=80)
        return x

    return ask_sync


@pytest.mark.parametrize("executor", ["thread", "inline", "async"])
def test_a_token_limit_holds_the_next_call_until_its_debt_is_refilled(
    engine: lg.Engine, clock: CountingClock, events: Events, executor: str
) -> None:
    starts: list[float] = []
    ask = _token_user(clock, executor, starts)

    @lg.pipeline
    def p(x: int) -> int:
        return ask(x)

    run = Background(lambda: list(p.map(range(3), engine=engine, window=1)))
    # 100 tokens: the first call leaves 20, the second still starts (20 > 0) and leaves -60
    events.wait_for(_started(events, 2))
    clock.wait_idle()
    assert starts == [0.0, 0.0]
    clock.advance(6.0)  # 60 tokens back: the debt is paid, but nothing is left over yet
    clock.wait_idle()
    assert len(starts) == 2
    clock.advance(0.001)
    assert run.result() == [0, 1, 2]
    assert starts == [0.0, 0.0, 6.001]


def test_usage_reported_outside_a_call_is_ignored() -> None:
    report_usage(tokens=10)  # no call is running: nothing to charge, no error


# -- validation ---------------------------------------------------------------------------------


def _identity(x: int) -> int:
    return x


@pytest.mark.parametrize(("make", "message"), [
    (lambda: lg.RateLimit(calls=0), "RateLimit.calls must be an int >= 1, got 0"),
    (lambda: lg.RateLimit(tokens=-5), "RateLimit.tokens must be an int >= 1, got -5"),
    (lambda: lg.RateLimit(calls=1.5), "RateLimit.calls must be an int >= 1, got 1.5"),
    (lambda: lg.RateLimit(calls=True), "RateLimit.calls must be an int >= 1, got True"),
    (lambda: lg.RateLimit(calls=2, per=0), "RateLimit.per must be > 0, got 0"),
    (lambda: lg.RateLimit(calls=2, per=-1.0), "RateLimit.per must be > 0, got -1.0"),
    (lambda: lg.RateLimit(), "RateLimit needs calls=... or tokens=..."),
    (lambda: lg.RateLimit(calls=60, tokens=1000),
     "RateLimit takes calls=... or tokens=..., not both; got calls=60, tokens=1000"),
    (lambda: lg.component(rate_limit=5)(_identity),
     "rate_limit must be a RateLimit(calls=..., per=...)"),
])
def test_rate_limit_rejects_bad_values_naming_them(make: Callable[[], Any], message: str) -> None:
    with pytest.raises(lg.ConfigError) as caught:
        make()
    assert message in str(caught.value)


# -- waiting costs nothing --------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["function", "class"])
def test_a_call_waiting_for_its_bucket_does_not_spin_the_loop(
    engine: lg.Engine, clock: CountingClock, events: Events, kind: str
) -> None:
    limit = lg.RateLimit(calls=1, per=1.0)

    @lg.component(rate_limit=limit)  # holds a cpu per call, like any thread component
    def call_api(x: int) -> int:
        return x

    @lg.component(rate_limit=limit)
    class Client:
        def __call__(self, x: int) -> int:
            return x

    target = call_api if kind == "function" else Client()

    @lg.pipeline
    def p(x: int) -> int:
        return target(x)

    run = Background(lambda: list(p.map(range(2), engine=engine)))
    events.wait_for(_started(events, 1))
    clock.wait_idle()
    asked = clock.asks
    # a loop that gave back what it held for the waiting call would be woken by doing so, and
    # try again at once, forever; this waits a little real time to see whether it does
    threading.Event().wait(0.1)
    assert clock.asks - asked <= 1
    clock.advance(1.0)
    assert run.result() == [0, 1]


# -- a component's bucket is its own ----------------------------------------------------------


def _run_a_new_limited_component(engine: lg.Engine, index: int) -> int:
    def once(x: int) -> int:
        return x

    limited = lg.component(executor="inline", name=f"once{index}",
                           rate_limit=lg.RateLimit(calls=1, per=1000.0))(once)

    @lg.pipeline
    def p(x: int) -> int:
        return limited(x)

    return p.run(x=index, engine=engine)


def test_a_new_component_never_inherits_the_bucket_of_a_collected_one(
    engine: lg.Engine, clock: CountingClock
) -> None:
    """Each component takes one call from a bucket that refills in 1000 s: were a bucket found
    by a recycled id, a later component would find it empty and wait (the clock never moves)."""
    for index in range(100):
        assert Background(partial(_run_a_new_limited_component, engine, index)).result() == index
        gc.collect(0)
