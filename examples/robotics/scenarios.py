"""The scenarios the main job runs, and what one run of a scenario gives.

A scenario is a loop rate and a planner: ``nominal`` (100 Hz, the planner always fits),
``nominal_500hz`` (the same at 500 Hz) and ``slow_planner`` (100 Hz, one planner call in ten
stalls for three periods). Each runs on a fresh simulator and a fresh engine, so nothing warm
is shared between them.

:func:`run` streams the loop for some seconds at the scenario's rate and returns an
:class:`Outcome`: every tick's result (a :class:`~robotics.loop.Step`, or the ``lg.Dropped``
marker of a tick a policy dropped), the stream's own statistics, and the simulator's record of
the true state. :func:`summarise` turns it into the figures ``summary.json`` holds.
"""

from __future__ import annotations

import contextlib
import gc
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

import legato as lg
from legato.backends.local import LocalBackend
from robotics.loop import WINDOW, Step, controller
from robotics.plant import CartPole, Sample, install

#: The pole must stay within this angle of upright (radians) for the whole run.
UPRIGHT = 0.2

#: The pole's angle at the start (radians): the controller's first job is to bring it upright.
TILT = 0.05

#: Shoves on the pole (at its middle) that the controller must catch: (at s, lasting s, N).
PUSHES = ((1.5, 0.1, 0.5), (4.5, 0.1, -0.5), (7.5, 0.1, 0.5))


@dataclass(frozen=True)
class Scenario:
    """A loop rate and how the planner behaves (see :class:`~robotics.loop.Planner`)."""

    name: str
    hz: float
    stall_chance: float = 0.0
    stall_periods: float = 3.0
    seed: int = 0


SCENARIOS = (
    Scenario("nominal", 100.0),
    Scenario("nominal_500hz", 500.0),
    Scenario("slow_planner", 100.0, stall_chance=0.1),
)


@dataclass
class Outcome:
    """What one run of a scenario gave."""

    scenario: Scenario
    seconds: float
    results: list[Step | lg.Dropped]
    stats: lg.StreamStats  # the stream's own figures, at its end
    samples: list[Sample]  # the simulator's true state after every physics step
    readings: list[tuple[float, float]]  # every reading the sensors made: (tick, time)
    plant: CartPole  # the simulator, for its time (``plant.simulated(t)``) and resyncs

    @property
    def steps(self) -> list[Step]:
        return [r for r in self.results if isinstance(r, Step)]

    @property
    def dropped(self) -> list[lg.Dropped]:
        return [r for r in self.results if isinstance(r, lg.Dropped)]


def run(scenario: Scenario, seconds: float) -> Outcome:
    """Balance the pole for ``seconds`` at the scenario's rate; see :class:`Outcome`."""
    plant = install(scenario.name, CartPole(tilt=TILT, pushes=PUSHES, seed=scenario.seed))
    loop = controller(scenario.hz, plant=scenario.name, stall_chance=scenario.stall_chance,
                      stall_periods=scenario.stall_periods, seed=scenario.seed)
    with lg.Engine(LocalBackend()) as engine:
        engine.warm(loop.graph)  # the filter and the LQR are built before the first tick
        with no_collector():
            stream = loop.stream(lg.Tick(scenario.hz, duration=seconds), engine=engine,
                                 window=WINDOW, on_drop="keep")
            results = list(stream)
            stats = stream.stats()
    plant.advance()  # the physics goes on to the end of the run, under the last force
    return Outcome(scenario=scenario, seconds=seconds, results=results, stats=stats,
                   samples=list(plant.samples), readings=list(plant.readings), plant=plant)


@contextlib.contextmanager
def no_collector() -> Iterator[None]:
    """Python's cyclic garbage collector off while the loop runs, on again (and run) after.

    A full collection walks every object of the process: with MuJoCo, SciPy and Matplotlib
    loaded one took 77 ms here, at a moment nobody chooses: more than seven periods of a 100 Hz
    loop. Reference counting still frees what the loop makes as it goes; only the
    few reference cycles wait for the end of the run. (Real-time Python loops do the same.)"""
    was_enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
        gc.collect()


def summarise(outcome: Outcome) -> dict[str, Any]:
    """The scenario's figures for ``summary.json`` (times in milliseconds)."""
    scenario, stats = outcome.scenario, outcome.stats
    steps = outcome.steps
    lateness = np.array([time - tick for tick, time in outcome.readings]) * 1000
    angles = np.abs([s.theta for s in outcome.samples])
    simulated = outcome.samples[-1].time if outcome.samples else 0.0
    skipped = sum(lost for _, lost in outcome.plant.resyncs)
    worst = float(angles.max()) if angles.size else math.inf
    return {
        "name": scenario.name,
        "target_hz": scenario.hz,
        "rate_hz": len(steps) / outcome.seconds,
        "ticks": stats.items_in,
        "overruns": stats.overruns,
        "jitter_p50_ms": _percentile(lateness, 50),
        "jitter_p99_ms": _percentile(lateness, 99),
        "dropped": len(outcome.dropped),
        "drops": {node: dict(reasons) for node, reasons in stats.drops.items()},
        "missed": sum(stats.misses.values()),
        "misses": dict(stats.misses),
        "held": sum(s.applied.held for s in steps),
        "latency_ms": {node: {"p50": p50 * 1000, "p99": p99 * 1000}
                       for node, (p50, p99) in stats.latency.items()},
        "max_angle_rad": worst,
        "max_cart_m": float(np.abs([s.x for s in outcome.samples]).max(initial=0.0)),
        "simulated_s": simulated,
        "resyncs": len(outcome.plant.resyncs),
        "resync_s": skipped,
        "success": bool(worst <= UPRIGHT and simulated + skipped >= 0.95 * outcome.seconds),
    }


def _percentile(values: np.ndarray, q: float) -> float:
    return float(np.percentile(values, q)) if values.size else math.nan
