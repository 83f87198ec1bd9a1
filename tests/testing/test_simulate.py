"""Simulated time: runs take exactly the virtual time their calls' durations say."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import legato as lg
from legato.engine.backend import Call
from legato.testing.simulate import (
    SimulatedBackend,
    SimulatedClock,
    SimulationStalled,
)


def cost_of(call: Call) -> float:
    """A call lasts its ``cost`` input (none: no time); a batched call 2 ms + 0.05 ms/item."""
    if call.batch is not None:
        return 0.002 + 0.00005 * len(call.batch)
    return float(call.kwargs.get("cost", 0.0))


@lg.component
def work(cost: float, after: float = 0.0) -> float:
    return cost


@lg.component(cpus=0, resources={"slot": 1})
def slot_work(cost: float) -> float:
    return cost


@lg.component
def both(a: float, b: float) -> list[float]:
    return [a, b]


@lg.component(batch=lg.Batch(max_size=4, max_wait_ms=5))
def model(xs: list[int]) -> list[int]:
    return xs


@pytest.fixture
def clock() -> SimulatedClock:
    return SimulatedClock()


@pytest.fixture
def simulated(clock: SimulatedClock) -> Iterator[lg.Engine]:
    backend = SimulatedBackend(clock, cost_of, value=lambda call: call.kwargs.get("cost"))
    with lg.Engine(backend, clock=clock) as engine:
        yield engine


def test_a_chain_takes_the_sum_of_its_costs(
    clock: SimulatedClock, simulated: lg.Engine
) -> None:
    @lg.pipeline
    def chain() -> float:
        return work(3.0, work(2.0, work(1.0)))

    assert chain.run(engine=simulated) == 3.0
    assert clock.now() == 6.0
    spans = simulated.backend.spans  # type: ignore[attr-defined]
    assert [(s.start, s.end) for s in spans] == [(0.0, 1.0), (1.0, 3.0), (3.0, 6.0)]


def test_independent_calls_overlap_without_a_resource_limit(
    clock: SimulatedClock, simulated: lg.Engine
) -> None:
    @lg.pipeline
    def fork() -> list[float]:
        return both(work(1.0), work(2.0))

    fork.run(engine=simulated, check_outputs=False)  # simulated calls give None
    assert clock.now() == 2.0


def test_one_slot_runs_independent_calls_back_to_back(clock: SimulatedClock) -> None:
    backend = SimulatedBackend(clock, cost_of, resources={"slot": 1})

    @lg.pipeline
    def fork() -> list[float]:
        return both(slot_work(1.0), slot_work(2.0))

    with lg.Engine(backend, clock=clock) as engine:
        fork.run(engine=engine, check_outputs=False)  # simulated calls give None
    assert clock.now() == 3.0


def test_a_timeout_fires_at_its_virtual_deadline(clock: SimulatedClock) -> None:
    slow = work.with_options(timeout=1.5)
    backend = SimulatedBackend(clock, cost_of)

    @lg.pipeline
    def one() -> float:
        return slow(5.0)

    with lg.Engine(backend, clock=clock) as engine, pytest.raises(lg.ComponentTimeout):
        one.run(engine=engine)
    assert clock.now() == 1.5
    assert clock.pending == 0  # the abandoned call's completion was unbooked


def test_a_retry_waits_its_backoff_in_virtual_time(clock: SimulatedClock) -> None:
    flaky = work.with_options(retries=lg.Retry(attempts=2, backoff=10.0))
    attempts: list[float] = []

    def fail_first(call: Call) -> float:
        attempts.append(clock.now())
        if len(attempts) == 1:
            raise ConnectionError("first attempt fails")
        return float(call.kwargs["cost"])

    backend = SimulatedBackend(clock, cost_of, value=fail_first)

    @lg.pipeline
    def one() -> float:
        return flaky(2.0)

    with lg.Engine(backend, clock=clock) as engine:
        assert one.run(engine=engine) == 2.0
    assert attempts == [0.0, 12.0]
    assert clock.now() == 14.0


def test_a_partial_batch_flushes_after_its_max_wait(clock: SimulatedClock) -> None:
    backend = SimulatedBackend(clock, cost_of, value=lambda call: [0] * len(call.batch or []))

    @lg.pipeline
    def one(x: int) -> int:
        return model(x)

    with lg.Engine(backend, clock=clock) as engine:
        assert list(one.map(range(6), engine=engine)) == [0] * 6
    sizes = [(s.start, s.size) for s in backend.spans]
    assert sizes == [(0.0, 4), (0.005, 2)]  # full batch at once; the rest after 5 ms
    assert clock.now() == pytest.approx(0.005 + 0.002 + 0.0001)


def test_idle_jumps_to_the_deadline_when_no_event_comes_first(clock: SimulatedClock) -> None:
    fired: list[float] = []
    clock.call_at(5.0, lambda: fired.append(clock.now()))
    clock.idle(2.0)
    assert (clock.now(), fired) == (2.0, [])
    clock.idle(None)
    assert (clock.now(), fired) == (5.0, [5.0])


def test_idle_fires_every_event_of_one_instant_in_booking_order(clock: SimulatedClock) -> None:
    fired: list[str] = []
    for name in "abc":
        clock.call_at(1.0, lambda name=name: fired.append(name))  # type: ignore[misc]
    clock.call_at(2.0, lambda: fired.append("later"))
    clock.idle(None)
    assert fired == ["a", "b", "c"]


def test_a_cancelled_event_never_fires(clock: SimulatedClock) -> None:
    fired: list[int] = []
    event = clock.call_at(1.0, lambda: fired.append(1))
    clock.cancel(event)
    assert clock.pending == 0
    clock.idle(3.0)
    assert (clock.now(), fired) == (3.0, [])


def test_idle_with_nothing_booked_and_no_deadline_says_the_run_stalled(
    clock: SimulatedClock,
) -> None:
    with pytest.raises(SimulationStalled, match="no simulated call is in flight"):
        clock.idle(None)


def test_idle_wakes_whoever_listens(clock: SimulatedClock) -> None:
    woken: list[float] = []
    stop = clock.on_advance(lambda: woken.append(clock.now()))
    clock.idle(1.0)
    stop()
    clock.idle(2.0)
    assert woken == [1.0]


def test_a_negative_duration_fails_the_call(clock: SimulatedClock) -> None:
    backend = SimulatedBackend(clock, lambda call: -1.0)

    @lg.pipeline
    def one() -> float:
        return work(1.0)

    with lg.Engine(backend, clock=clock) as engine, pytest.raises(
        lg.ComponentError, match="duration of a call to 'work' must be >= 0 seconds, got -1"
    ):
        one.run(engine=engine)


def test_capacity_is_unlimited_cpus_unless_declared(clock: SimulatedClock) -> None:
    backend = SimulatedBackend(clock, cost_of, resources={"slot": 4, "cpus": 2})
    assert backend.capacity()["slot"] == 4
    assert backend.capacity()["cpus"] == 2
    assert backend.capacity()["gpus"] == 0


def test_calls_wait_for_a_slot_longest_path_first(clock: SimulatedClock) -> None:
    # a (1) -> c (5) -> d (1), and b (1) alone, on one slot: when a ends, c (two nodes still
    # after it, counting the join) goes before b (one).
    backend = SimulatedBackend(clock, cost_of, resources={"slot": 1})

    @lg.component(cpus=0, resources={"slot": 1})
    def after(cost: float, before: float) -> float:
        return cost

    @lg.pipeline
    def two_paths() -> list[float]:
        return both(after(1.0, after(5.0, slot_work(1.0))), slot_work(1.0))

    with lg.Engine(backend, clock=clock) as engine:
        two_paths.run(engine=engine, check_outputs=False)  # simulated calls give None
    assert [(s.node, s.start) for s in backend.spans[:2]] == [("slot_work", 0.0), ("after", 1.0)]
    assert clock.now() == 8.0
