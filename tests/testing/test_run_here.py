"""RunHere: a simulated backend whose calls really run, here, at the end of their simulated
duration; class components built once per slot; a cancelled call never runs."""

from __future__ import annotations

import pytest

import legato as lg
from legato.engine.backend import Call
from legato.testing.simulate import RunHere, SimulatedBackend, SimulatedClock

BUILT: list[int] = []


@lg.component(instances=1)
class Model:
    def __init__(self, scale: int) -> None:
        BUILT.append(scale)
        self.scale = scale

    def __call__(self, x: int) -> int:
        return x * self.scale


@lg.component(batch=lg.Batch(max_size=3, max_wait_ms=1))
def total(xs: list[int]) -> list[int]:
    return [x + len(xs) for x in xs]


@lg.component(timeout=1.0)
def slow(seconds: float) -> float:
    raise AssertionError("a call cancelled by its timeout must never run")


def seconds(call: Call) -> float:
    return float(call.kwargs.get("seconds", 0.5)) if call.batch is None else 0.5


def test_calls_really_run_and_class_components_are_built_once_per_slot() -> None:
    BUILT.clear()
    clock = SimulatedClock()
    backend = SimulatedBackend(clock, seconds, value=RunHere(), value_at="end")

    @lg.pipeline
    def p(x: int) -> int:
        return Model(scale=10)(x)

    with lg.Engine(backend, clock=clock) as engine:
        assert list(p.map(range(4), engine=engine)) == [0, 10, 20, 30]
    assert BUILT == [10]
    assert clock.now() == 2.0  # four calls of 0.5 s, one slot


def test_a_batched_call_gets_one_list_per_port() -> None:
    clock = SimulatedClock()
    backend = SimulatedBackend(clock, seconds, value=RunHere(), value_at="end")

    @lg.pipeline
    def p(x: int) -> int:
        return total(x)

    with lg.Engine(backend, clock=clock) as engine:
        assert list(p.map([1, 2, 3], engine=engine)) == [4, 5, 6]


def test_a_call_cancelled_by_its_timeout_never_runs() -> None:
    clock = SimulatedClock()
    backend = SimulatedBackend(clock, seconds, value=RunHere(), value_at="end")

    @lg.pipeline
    def p(seconds: float) -> float:
        return slow(seconds)

    with lg.Engine(backend, clock=clock) as engine, pytest.raises(lg.ComponentTimeout):
        p.run(seconds=60.0, engine=engine)
    assert clock.now() == 1.0


def test_evict_drops_the_slots_object() -> None:
    BUILT.clear()
    run_here = RunHere()
    backend = SimulatedBackend(SimulatedClock(), seconds, value=run_here)
    instance = Model(scale=3)
    call = Call(id=1, target=instance, kwargs={"x": 2}, slot=0)
    assert run_here(call) == 6
    assert run_here(call) == 6
    assert BUILT == [3]
    backend.evict(instance, 0)
    assert run_here(call) == 6
    assert BUILT == [3, 3]


def test_value_at_must_be_start_or_end() -> None:
    with pytest.raises(lg.ConfigError, match="value_at must be 'start' or 'end', got 'later'"):
        SimulatedBackend(SimulatedClock(), seconds, value_at="later")  # type: ignore[arg-type]


def test_importing_the_test_kit_does_not_import_pytest() -> None:
    import subprocess
    import sys

    code = ("import sys, legato.testing, legato.testing.simulate; "
            "print('pytest' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "False"
