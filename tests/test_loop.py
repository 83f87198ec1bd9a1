"""``lg.loop``: a bounded loop in the pipeline language. Stops on ``until``, stops at
``max_iterations``, retries a failing round, resumes mid-loop, fans out with ``lg.map`` inside a
round, and the check finds a state whose type changes, with the file:line."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

import legato as lg
from harness import Events
from legato.engine.events import NodeFinished

Where = Any


@lg.component(executor="inline")
def halve(x: float) -> float:
    return x / 2


@lg.component(executor="inline")
def small(x: float) -> bool:
    return x < 1


@lg.pipeline
def shrink(x: float) -> float:
    return lg.loop(halve, x, until=small, max_iterations=10)


@lg.pipeline
def shrink_twice(x: float) -> float:
    return lg.loop(halve, x, until=small, max_iterations=2)


def test_a_loop_stops_when_until_says_so(engine: lg.Engine) -> None:
    events = Events()
    engine.bus.subscribe(events)
    assert shrink.run(x=10.0, engine=engine) == 0.625  # 5, 2.5, 1.25, 0.625
    rounds = [e.node for e in events.of(NodeFinished) if e.node.endswith("/halve")]
    assert rounds == [f"loop_halve[{i}]/halve" for i in range(4)]
    tested = [e.node for e in events.of(NodeFinished) if e.node.endswith("/small")]
    assert tested == [f"loop_halve[{i}]/until/small" for i in range(4)]


def test_a_loop_stops_at_max_iterations(engine: lg.Engine) -> None:
    assert shrink_twice.run(x=10.0, engine=engine) == 2.5


def test_extra_inputs_go_to_the_body_every_round(engine: lg.Engine) -> None:
    @lg.component(executor="inline")
    def step(x: int, by: int) -> int:
        return x + by

    @lg.component(executor="inline")
    def big(x: int) -> bool:
        return x >= 10

    @lg.pipeline
    def count(x: int, by: int) -> int:
        return lg.loop(step, x, until=big, max_iterations=100, by=by)

    assert count.run(x=0, by=3, engine=engine) == 12


def test_a_round_that_fails_is_retried_by_its_policy(engine: lg.Engine) -> None:
    failures: list[float] = []

    @lg.component(executor="inline", retries=lg.Retry(attempts=2, backoff=0))
    def flaky_halve(x: float) -> float:
        if x == 5.0 and not failures:
            failures.append(x)
            raise ConnectionError("once")
        return x / 2

    @lg.pipeline
    def p(x: float) -> float:
        return lg.loop(flaky_halve, x, until=small, max_iterations=10)

    assert p.run(x=10.0, engine=engine) == 0.625
    assert failures == [5.0]


def test_lg_map_inside_a_loop_body_fans_out_each_round(engine: lg.Engine) -> None:
    @lg.component(executor="inline")
    def double(x: int) -> int:
        return 2 * x

    @lg.pipeline
    def body(xs: list[int]) -> list[int]:
        return lg.map(double, xs)

    @lg.component(executor="inline")
    def over(xs: list[int]) -> bool:
        return sum(xs) > 50

    @lg.pipeline
    def p(xs: list[int]) -> list[int]:
        return lg.loop(body, xs, until=over, max_iterations=10)

    assert p.run(xs=[1, 2, 3], engine=engine) == [16, 32, 48]  # sums 12, 24, 48, 96


def test_the_check_finds_a_state_whose_type_changes_with_its_line(where: Where) -> None:
    @lg.component(executor="inline")
    def describe(x: float) -> str:
        return str(x)

    @lg.component(executor="inline")
    def done(x: float) -> bool:
        return True

    @lg.pipeline
    def p(x: float) -> float:
        return lg.loop(describe, x, until=done, max_iterations=3)  # the bad loop

    with pytest.raises(lg.GraphError) as info:
        p.check()
    message = str(info.value)
    assert "must give back the state's type" in message
    assert where("# the bad loop") in message


def test_the_check_refuses_a_bound_that_is_not_a_positive_int() -> None:
    @lg.pipeline
    def p(x: float) -> float:
        return lg.loop(halve, x, until=small, max_iterations=0)

    with pytest.raises(lg.GraphError, match="max_iterations must be an int >= 1, got 0"):
        p.check()


def test_a_loop_is_drawn_as_a_loop() -> None:
    assert "loop_halve -->|again until small, at most 10| n_loop_halve" in shrink.to_mermaid()
    assert 'n_loop_halve -> n_loop_halve [label="again until small, at most 10"' in (
        shrink.to_dot())


# -- resume mid-loop: finished rounds are not run again ------------------------------------

CALLS: list[float] = []
GATE = threading.Event()


@lg.component(cache=False)
def gated_halve(x: float) -> float:
    CALLS.append(x)
    if x < 3 and not GATE.is_set():
        raise ConnectionError("the service went away mid-loop")
    return x / 2


@lg.pipeline
def gated_shrink(x: float) -> float:
    return lg.loop(gated_halve, x, until=small, max_iterations=10)


def test_a_resumed_run_goes_on_from_the_last_finished_round(tmp_path: Path) -> None:
    CALLS.clear()
    GATE.clear()
    store = tmp_path / "s.db"
    run_id = "loopresume01"
    with pytest.raises(lg.ComponentError, match="went away mid-loop"):
        list(gated_shrink.map([{"x": 10.0}], store=store, run_id=run_id))
    assert CALLS == [10.0, 5.0, 2.5]
    GATE.set()
    CALLS.clear()
    assert list(gated_shrink.map([{"x": 10.0}], store=store, resume=run_id)) == [0.625]
    assert CALLS == [2.5, 1.25]  # rounds 0 and 1 were recorded: not run again
