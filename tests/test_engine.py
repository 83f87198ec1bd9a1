"""The engine's run loop: retries and backoff, timeouts and dynamic batching on an injected
clock; map's window, order and error policies; errors that name node, item and attempt.

Timing tests drive the run on a background thread and advance the ``WatchedClock`` only once
the engine is seen waiting on it (see conftest), so nothing here sleeps.
"""

from __future__ import annotations

import threading
import traceback
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

import pytest

import legato as lg
from harness import WAIT, Background, Events, WatchedClock
from legato.engine.events import (
    ItemFinished,
    NodeFailed,
    NodeFinished,
    NodeStarted,
    RunFinished,
    RunStarted,
)

Where = Callable[[str], str]

# Tests marked ``contract`` run on every backend (see conftest): they share no state between
# the test and its components, which on Ray run in other processes.


def _failed(attempt: int, *, will_retry: bool | None = None) -> Callable[[Any], bool]:
    def match(event: Any) -> bool:
        return (isinstance(event, NodeFailed) and event.attempt == attempt
                and (will_retry is None or event.will_retry == will_retry))

    return match


# -- retries --------------------------------------------------------------------------------


def test_retry_waits_for_its_backoff_on_the_engine_clock(
    clocked: lg.Engine, clock: WatchedClock, clocked_events: Events
) -> None:
    attempts: list[float] = []

    @lg.component(executor="inline",
                  retries=lg.Retry(attempts=3, backoff=2.0, multiplier=2.0))
    def flaky(x: int) -> int:
        attempts.append(clock.now())
        if len(attempts) < 3:
            raise ConnectionError("service down")
        return x * 10

    @lg.pipeline
    def p(x: int) -> int:
        return flaky(x)

    run = Background(lambda: p.run(x=7, engine=clocked))
    clocked_events.wait_for(_failed(1, will_retry=True))
    clock.wait_idle()
    assert attempts == [0.0]

    clock.advance(1.5)  # short of the 2 s backoff
    clock.wait_idle()
    assert attempts == [0.0]
    assert clocked_events.started() == clocked_events.started(node="flaky")[:1]

    clock.advance(0.5)  # t = 2: the second attempt runs, and fails
    clocked_events.wait_for(_failed(2, will_retry=True))
    clock.wait_idle()
    assert attempts == [0.0, 2.0]

    clock.advance(3.5)  # the next backoff is 4 s (multiplier 2)
    clock.wait_idle()
    assert attempts == [0.0, 2.0]

    clock.advance(0.5)  # t = 6: the third attempt succeeds
    assert run.result() == 70
    assert attempts == [0.0, 2.0, 6.0]
    assert [(e.attempt, e.time) for e in clocked_events.started()] == [(1, 0.0), (2, 2.0),
                                                                        (3, 6.0)]


def test_retries_that_run_out_fail_with_the_last_attempt_number(
    clocked: lg.Engine, clock: WatchedClock, clocked_events: Events
) -> None:
    @lg.component(executor="inline", retries=lg.Retry(attempts=2, backoff=1.0))
    def broken(x: int) -> int:
        raise ConnectionError(f"refused {x}")

    @lg.pipeline
    def p(x: int) -> int:
        return broken(x)

    run = Background(lambda: p.run(x=3, engine=clocked))
    clocked_events.wait_for(_failed(1, will_retry=True))
    clock.wait_idle()
    clock.advance(1.0)
    with pytest.raises(lg.ComponentError) as info:
        run.result()
    assert info.value.attempt == 2
    assert "attempt 2: ConnectionError: refused 3" in str(info.value)
    assert [e.will_retry for e in clocked_events.failed()] == [True, False]


@pytest.mark.contract
def test_retry_only_on_the_exceptions_it_names(engine: lg.Engine, events: Events) -> None:
    @lg.component(retries=lg.Retry(attempts=5, on=(ConnectionError,)))
    def picky(x: int) -> int:
        raise KeyError(x)

    @lg.pipeline
    def p(x: int) -> int:
        return picky(x)

    with pytest.raises(lg.ComponentError, match="attempt 1: KeyError"):
        p.run(x=1, engine=engine)
    assert len(events.started(node="picky")) == 1


def test_retries_without_backoff_run_at_once_until_success(engine: lg.Engine) -> None:
    calls: list[int] = []

    @lg.component(retries=3)
    def shaky(x: int) -> int:
        calls.append(x)
        if len(calls) < 3:
            raise RuntimeError("again")
        return x

    @lg.pipeline
    def p(x: int) -> int:
        return shaky(x)

    assert p.run(x=5, engine=engine) == 5
    assert calls == [5, 5, 5]


# -- timeouts -------------------------------------------------------------------------------


def test_a_call_past_its_timeout_fails_with_component_timeout(
    clocked: lg.Engine, clock: WatchedClock, clocked_events: Events
) -> None:
    entered, release = threading.Event(), threading.Event()

    @lg.component(timeout=5.0)
    def stuck(x: int) -> int:
        entered.set()
        release.wait(WAIT)
        return x

    @lg.pipeline
    def p(x: int) -> int:
        return stuck(x)

    run = Background(lambda: p.run(x=1, engine=clocked))
    try:
        assert entered.wait(WAIT)
        clock.wait_idle()
        clock.advance(4.5)
        clock.wait_idle()
        assert clocked_events.failed() == []  # not before the timeout

        clock.advance(0.5)
        with pytest.raises(lg.ComponentTimeout) as info:
            run.result()
    finally:
        release.set()
    error = info.value
    assert isinstance(error, lg.ComponentError)
    assert (error.node, error.item, error.attempt) == ("stuck", 0, 1)
    assert "call took longer than timeout=5.0s" in str(error)
    assert isinstance(error.__cause__, TimeoutError)


def test_a_timed_out_call_is_retried_by_its_retry_policy(
    clocked: lg.Engine, clock: WatchedClock, clocked_events: Events
) -> None:
    entered, release = threading.Event(), threading.Event()
    calls: list[int] = []

    @lg.component(timeout=5.0, retries=1)
    def first_hangs(x: int) -> int:
        calls.append(x)
        if len(calls) == 1:
            entered.set()
            release.wait(WAIT)
            return -1  # a late result: dropped
        return x * 2

    @lg.pipeline
    def p(x: int) -> int:
        return first_hangs(x)

    run = Background(lambda: p.run(x=4, engine=clocked))
    try:
        assert entered.wait(WAIT)
        clock.wait_idle()
        clock.advance(5.0)
        assert run.result() == 8
    finally:
        release.set()
    failure = clocked_events.wait_for(_failed(1))
    assert failure.will_retry
    assert "TimeoutError" in failure.error
    assert [e.attempt for e in clocked_events.finished()] == [2]


# -- batching -------------------------------------------------------------------------------


def test_batch_groups_calls_from_different_items_up_to_max_size_and_flushes_at_max_wait(
    clocked: lg.Engine, clock: WatchedClock, clocked_events: Events
) -> None:
    batches: list[list[int]] = []

    @lg.component(batch=lg.Batch(max_size=4, max_wait_ms=10))
    def embed(xs: list[int]) -> list[int]:
        batches.append(list(xs))
        return [x * 10 for x in xs]

    @lg.pipeline
    def p(x: int) -> int:
        return embed(x)

    run = Background(lambda: list(p.map(range(10), engine=clocked)))
    clocked_events.wait_for(lambda e: len(clocked_events.finished()) >= 8)
    clock.wait_idle()
    assert batches == [[0, 1, 2, 3], [4, 5, 6, 7]]  # the last two wait for company

    clock.advance(0.005)
    clock.wait_idle()
    assert len(batches) == 2  # not before max_wait

    clock.advance(0.005)  # the oldest waiting call has now waited 10 ms
    assert run.result() == [x * 10 for x in range(10)]
    assert batches == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert [e.item for e in clocked_events.started() if e.time == 0.01] == [8, 9]


def test_a_batch_that_fills_is_sent_without_waiting(engine: lg.Engine) -> None:
    sizes: list[int] = []

    @lg.component(batch=lg.Batch(max_size=3, max_wait_ms=60_000))
    def total(xs: list[int], k: list[int]) -> list[int]:
        sizes.append(len(xs))
        return [x * y for x, y in zip(xs, k, strict=True)]

    @lg.pipeline
    def p(x: int, k: int) -> int:
        return total(x, k)

    items = [{"x": i, "k": 2} for i in range(6)]
    assert list(p.map(items, engine=engine)) == [0, 2, 4, 6, 8, 10]
    assert sizes == [3, 3]


def test_batch_groups_the_elements_of_a_map_within_one_item(engine: lg.Engine) -> None:
    batches: list[list[str]] = []

    @lg.component(batch=lg.Batch(max_size=5, max_wait_ms=60_000))
    def upper(texts: list[str]) -> list[str]:
        batches.append(list(texts))
        return [t.upper() for t in texts]

    @lg.pipeline
    def p(words: list[str]) -> list[str]:
        return lg.map(upper, words)

    assert p.run(words=list("abcde"), engine=engine) == list("ABCDE")
    assert batches == [list("abcde")]


@pytest.mark.contract
def test_a_batch_returning_the_wrong_number_of_results_fails_only_its_items(
    engine: lg.Engine,
) -> None:
    @lg.component(batch=lg.Batch(max_size=2, max_wait_ms=60_000))
    def lossy(xs: list[int]) -> list[int]:
        out = [x * 10 for x in xs]
        return out[:-1] if 3 in xs else out

    @lg.pipeline
    def p(x: int) -> int:
        return lossy(x)

    results = list(p.map([1, 2, 3, 4, 5, 6], engine=engine, on_error="collect"))
    assert results[:2] == [10, 20]
    assert results[4:] == [50, 60]
    for index in (2, 3):
        failure = results[index]
        assert isinstance(failure, lg.Failure)
        assert failure.index == index
        assert isinstance(failure.error, lg.ComponentError)
        assert failure.error.node == "lossy"
        assert ("batched component returned 1 results for a batch of 2; it must return a list "
                "with one result per input, in order") in str(failure.error)


@pytest.mark.contract
def test_a_batched_component_that_raises_fails_every_item_of_its_batch(
    engine: lg.Engine,
) -> None:
    @lg.component(batch=lg.Batch(max_size=2, max_wait_ms=60_000))
    def fragile(xs: list[int]) -> list[int]:
        if 3 in xs:
            raise ValueError("bad batch")
        return xs

    @lg.pipeline
    def p(x: int) -> int:
        return fragile(x)

    results = list(p.map([1, 2, 3, 4], engine=engine, on_error="collect"))
    assert results[:2] == [1, 2]
    assert [(r.index, type(r.error.__cause__)) for r in results[2:]] == [(2, ValueError),
                                                                         (3, ValueError)]


def test_a_failed_batch_is_retried_together_after_its_backoff(
    clocked: lg.Engine, clock: WatchedClock, clocked_events: Events
) -> None:
    batches: list[tuple[float, list[int]]] = []

    @lg.component(batch=lg.Batch(max_size=3, max_wait_ms=60_000), executor="inline",
                  retries=lg.Retry(attempts=2, backoff=1.0))
    def flaky(xs: list[int]) -> list[int]:
        batches.append((clock.now(), list(xs)))
        if len(batches) == 1:
            raise ConnectionError("down")
        return [x + 1 for x in xs]

    @lg.pipeline
    def p(x: int) -> int:
        return flaky(x)

    run = Background(lambda: list(p.map([0, 1, 2], engine=clocked)))
    clocked_events.wait_for(lambda e: len(clocked_events.failed()) == 3)
    clock.wait_idle()
    clock.advance(0.5)
    clock.wait_idle()
    assert batches == [(0.0, [0, 1, 2])]
    clock.advance(0.5)
    assert run.result() == [1, 2, 3]
    assert batches == [(0.0, [0, 1, 2]), (1.0, [0, 1, 2])]


def test_a_batch_past_its_timeout_fails_each_of_its_items(
    clocked: lg.Engine, clock: WatchedClock
) -> None:
    entered, release = threading.Event(), threading.Event()

    @lg.component(batch=lg.Batch(max_size=2, max_wait_ms=60_000), timeout=3.0)
    def slow(xs: list[int]) -> list[int]:
        entered.set()
        release.wait(WAIT)
        return xs

    @lg.pipeline
    def p(x: int) -> int:
        return slow(x)

    run = Background(lambda: list(p.map([0, 1], engine=clocked, on_error="collect")))
    try:
        assert entered.wait(WAIT)
        clock.wait_idle()
        clock.advance(3.0)
        results = run.result()
    finally:
        release.set()
    assert [(r.index, type(r.error)) for r in results] == [(0, lg.ComponentTimeout),
                                                           (1, lg.ComponentTimeout)]


# -- map: window, order, errors ------------------------------------------------------------


@pytest.mark.contract
def test_map_keeps_at_most_window_items_in_flight(engine: lg.Engine, events: Events) -> None:
    pulled: list[int] = []

    def source() -> Iterator[dict[str, int]]:
        for i in range(12):
            pulled.append(i)
            yield {"x": i}

    @lg.component
    def first(x: int) -> int:
        return x + 1

    @lg.component
    def second(x: int) -> int:
        return x * 2

    @lg.pipeline
    def p(x: int) -> int:
        return second(first(x))

    results = []
    for result in p.map(source(), engine=engine, window=3):
        results.append(result)
        assert len(pulled) - len(results) <= 3  # items taken from the source, not yet yielded
    assert results == [(i + 1) * 2 for i in range(12)]

    open_items: set[int] = set()
    most = 0
    for event in events.all:
        if isinstance(event, NodeStarted):
            open_items.add(event.item)
        elif isinstance(event, ItemFinished):
            open_items.discard(event.item)
        most = max(most, len(open_items))
    # never more than the window; items run side by side (an older item's second stage goes
    # before a newer item's first, so on 2 CPUs two items may fill them)
    assert 2 <= most <= 3


@pytest.mark.contract
def test_map_of_a_lazy_source_reads_it_only_as_the_window_frees(engine: lg.Engine) -> None:
    pulled: list[int] = []

    def endless() -> Iterator[int]:
        i = 0
        while True:
            pulled.append(i)
            yield i
            i += 1

    @lg.component(executor="inline")
    def ident(x: int) -> int:
        return x

    @lg.pipeline
    def p(x: int) -> int:
        return ident(x)

    results = p.map(endless(), engine=engine, window=4)
    taken = [next(results) for _ in range(10)]
    results.close()
    assert taken == list(range(10))
    assert len(pulled) <= 10 + 4


@pytest.mark.parametrize("ordered", [True, False])
def test_map_yields_in_input_order_or_as_items_finish(engine: lg.Engine, ordered: bool) -> None:
    second_done = threading.Event()

    def on_event(event: Any) -> None:
        if isinstance(event, ItemFinished) and event.item == 1:
            second_done.set()

    engine.bus.subscribe(on_event)

    @lg.component
    def wait_for_second(x: int) -> int:
        if x == 0:
            assert second_done.wait(WAIT)  # item 0 finishes only after item 1 has
        return x

    @lg.pipeline
    def p(x: int) -> int:
        return wait_for_second(x)

    results = list(p.map([0, 1, 2], engine=engine, ordered=ordered, window=2))
    if ordered:
        assert results == [0, 1, 2]
    else:
        assert results[0] == 1
        assert sorted(results) == [0, 1, 2]


@lg.component
def explode_on_odd(x: int) -> int:
    if x % 2:
        raise ValueError(f"odd input {x}")
    return x * 100


@lg.pipeline
def evens(x: int) -> int:
    return explode_on_odd(x)  # node created here


@pytest.mark.contract
def test_on_error_raise_raises_the_first_failure_after_earlier_results(engine: lg.Engine) -> None:
    results = evens.map([0, 2, 3, 4], engine=engine)
    assert next(results) == 0
    assert next(results) == 200
    with pytest.raises(lg.ComponentError) as info:
        next(results)
    assert info.value.item == 2


@pytest.mark.contract
def test_on_error_skip_leaves_failed_items_out(engine: lg.Engine) -> None:
    assert list(evens.map(range(7), engine=engine, on_error="skip")) == [0, 200, 400, 600]


@pytest.mark.contract
def test_on_error_collect_yields_failures_in_place_and_loses_no_other_result(
    engine: lg.Engine,
) -> None:
    results = list(evens.map(range(20), engine=engine, on_error="collect", window=4))
    assert len(results) == 20
    for index, result in enumerate(results):
        if index % 2:
            assert isinstance(result, lg.Failure)
            assert result.index == index
            assert result.inputs == {"x": index}
            assert isinstance(result.error, lg.ComponentError)
            assert result.error.item == index
        else:
            assert result == index * 100


@pytest.mark.contract
def test_unordered_collect_still_gives_every_item(engine: lg.Engine) -> None:
    results = list(evens.map(range(10), engine=engine, on_error="collect", ordered=False))
    failures = sorted(r.index for r in results if isinstance(r, lg.Failure))
    values = sorted(r for r in results if not isinstance(r, lg.Failure))
    assert failures == [1, 3, 5, 7, 9]
    assert values == [0, 200, 400, 600, 800]


def test_component_error_names_node_item_attempt_and_chains_the_cause(
    engine: lg.Engine, where: Where
) -> None:
    results = list(evens.map([0, 2, 5], engine=engine, on_error="collect"))
    error = results[2].error
    assert isinstance(error, lg.ComponentError)
    assert (error.node, error.item, error.attempt) == ("explode_on_odd", 2, 1)
    assert error.location is not None
    assert error.location.endswith(where("# node created here"))
    assert str(error) == (f"node 'explode_on_odd' ({error.location}) failed on item 2, "
                          "attempt 1: ValueError: odd input 5")
    cause = error.__cause__
    assert isinstance(cause, ValueError)
    assert str(cause) == "odd input 5"
    frames = [frame.name for frame in traceback.extract_tb(cause.__traceback__)]
    assert frames[-1] == "explode_on_odd"  # the component's own frame is kept


@pytest.mark.contract
def test_run_raises_component_error_for_item_zero(engine: lg.Engine) -> None:
    with pytest.raises(lg.ComponentError) as info:
        evens.run(x=1, engine=engine)
    assert info.value.item == 0
    assert isinstance(info.value.__cause__, ValueError)


def test_a_failed_node_stops_its_item_only(engine: lg.Engine) -> None:
    ran: list[int] = []

    @lg.component
    def after(x: int) -> int:
        ran.append(x)
        return x

    @lg.pipeline
    def p(x: int) -> int:
        return after(explode_on_odd(x))

    results = list(p.map([0, 1, 2], engine=engine, on_error="collect"))
    assert results[0] == 0
    assert results[2] == 200
    assert isinstance(results[1], lg.Failure)
    assert sorted(ran) == [0, 200]  # nothing downstream of the failure ran


@pytest.mark.contract
def test_a_failure_inside_a_map_fails_the_whole_item_naming_the_element(
    engine: lg.Engine,
) -> None:
    @lg.pipeline
    def p(xs: list[int]) -> list[int]:
        return lg.map(explode_on_odd, xs)

    results = list(p.map([[0, 2], [4, 5, 6], [8]], engine=engine, on_error="collect"))
    assert results[0] == [0, 200]
    assert results[2] == [800]
    assert results[1].error.node == "map_explode_on_odd[1]/explode_on_odd"


@pytest.mark.contract
def test_mapping_over_a_value_that_is_not_a_list_at_run_time_fails_the_item(
    engine: lg.Engine,
) -> None:
    @lg.component
    def anything(x: int) -> Any:
        return x  # declared Any: the check cannot tell it is not a list

    @lg.pipeline
    def p(x: int) -> list[int]:
        return lg.map(explode_on_odd, anything(x))

    with pytest.raises(lg.ComponentError, match=r"legato\.map needs a list, got int") as info:
        p.run(x=2, engine=engine)
    assert info.value.node == "map_explode_on_odd"


class Pair(NamedTuple):
    a: int
    b: int


@pytest.mark.contract
def test_a_return_value_lacking_the_declared_outputs_fails_clearly(engine: lg.Engine) -> None:
    @lg.component
    def liar(x: int) -> Pair:
        return x  # type: ignore[return-value]

    @lg.pipeline
    def p(x: int) -> int:
        return liar(x).a

    with pytest.raises(lg.ComponentError, match="returned int, which lacks the declared outputs "
                                                "a, b") as info:
        p.run(x=1, engine=engine)
    assert info.value.node == "liar"


# -- inputs ---------------------------------------------------------------------------------


@pytest.mark.contract
def test_wrong_input_gives_input_error_before_any_node_runs(engine: lg.Engine) -> None:
    ran: list[Any] = []

    @lg.component
    def record(x: int, label: str) -> int:
        ran.append(x)
        return x

    @lg.pipeline
    def p(x: int, label: str) -> int:
        return record(x, label)

    with pytest.raises(lg.InputError, match="input 'x' expects int, got str 'many'"):
        p.run(x="many", label="a", engine=engine)
    with pytest.raises(lg.InputError, match=r"missing input 'label: str'"):
        p.run(x=1, engine=engine)
    with pytest.raises(lg.InputError, match=r"unknown input 'y'; 'p' takes: x: int, label: str"):
        p.run(x=1, label="a", y=2, engine=engine)
    assert ran == []


@pytest.mark.contract
def test_a_bad_item_in_map_fails_alone(engine: lg.Engine) -> None:
    results = list(evens.map([{"x": 0}, {"x": "zero"}, {"x": 2}, "oops"], engine=engine,
                             on_error="collect"))
    assert results[0] == 0
    assert results[2] == 200
    assert isinstance(results[1].error, lg.InputError)
    assert results[1].error.item == 1
    assert isinstance(results[3].error, lg.InputError)


# -- concurrency ----------------------------------------------------------------------------


def test_independent_nodes_run_at_the_same_time(engine: lg.Engine) -> None:
    meet = threading.Barrier(2, timeout=WAIT)  # breaks unless both wait at once

    @lg.component
    def left(x: int) -> int:
        meet.wait()
        return x + 1

    @lg.component
    def right(x: int) -> int:
        meet.wait()
        return x - 1

    @lg.component(executor="inline")
    def join(a: int, b: int) -> int:
        return a * b

    @lg.pipeline
    def p(x: int) -> int:
        return join(left(x), right(x))

    assert p.run(x=5, engine=engine) == 24


def test_items_of_a_map_run_at_the_same_time(engine: lg.Engine) -> None:
    meet = threading.Barrier(3, timeout=WAIT)

    @lg.component(cpus=0)  # waits, computes nothing: holds no CPU, so all three run at once
    def together(x: int) -> int:
        meet.wait()
        return x

    @lg.pipeline
    def p(x: int) -> int:
        return together(x)

    assert list(p.map([1, 2, 3], engine=engine, window=3)) == [1, 2, 3]


def test_the_ready_node_on_the_longest_path_starts_first(engine: lg.Engine) -> None:
    @lg.component(executor="inline")
    def step(x: int) -> int:
        return x

    @lg.component(executor="inline")
    def join(a: int, b: int) -> int:
        return a + b

    @lg.pipeline
    def p(x: int) -> int:
        short = step(x)
        long = step(step(step(x)))
        return join(short, long)

    events = Events()
    engine.bus.subscribe(events)
    assert p.run(x=1, engine=engine) == 2
    assert [e.node for e in events.started()][:2] == ["step_2", "step"]  # both roots, long first
    assert lg.engine.ranks(p.graph) == {"step": 2, "step_2": 4, "step_3": 3, "step_4": 2,
                                        "join": 1}


# -- run API --------------------------------------------------------------------------------


def test_events_describe_the_run(engine: lg.Engine, events: Events) -> None:
    results = list(evens.map([0, 1], engine=engine, on_error="collect"))
    assert results[0] == 0
    assert isinstance(results[1], lg.Failure)
    kinds = [type(e).__name__ for e in events.all]
    assert kinds[0] == "RunStarted"
    assert kinds[-1] == "RunFinished"
    finished = events.of(RunFinished)[0]
    assert (finished.status, finished.done, finished.failed) == ("failed", 1, 1)
    assert events.of(RunStarted)[0].pipeline == "evens"
    assert [(e.item, e.ok) for e in events.of(ItemFinished)] in ([(0, True), (1, False)],
                                                                 [(1, False), (0, True)])
    assert [e.executor for e in events.of(NodeFinished)] == ["thread"]


@pytest.mark.contract
def test_run_stats_count_done_and_failed(engine: lg.Engine) -> None:
    run = engine.start(evens.graph, [{"x": i} for i in range(5)], on_error="skip")
    assert run.stats() == lg.RunStats(done=0, failed=0, running=0, queued=0)
    assert list(run.results()) == [0, 200, 400]
    stats = run.stats()
    assert (stats.done, stats.failed, stats.running) == (3, 2, 0)


def test_run_rejects_a_bad_window_and_error_policy(engine: lg.Engine) -> None:
    with pytest.raises(ValueError, match="window must be >= 1 \\(an int\\), got 0"):
        engine.start(evens.graph, [], window=0)
    with pytest.raises(ValueError, match="on_error must be 'raise', 'skip' or 'collect'"):
        engine.start(evens.graph, [], on_error="ignore")  # type: ignore[arg-type]


@pytest.mark.contract
def test_map_over_no_items_yields_nothing(engine: lg.Engine) -> None:
    assert list(evens.map([], engine=engine)) == []
