"""The control loop as a legato pipeline: sense -> estimate -> plan -> act, once per tick.

    legato graph examples/robotics/loop.py:balance
    for step in controller(100).stream(lg.Tick(100, duration=10), window=WINDOW): ...

Every stage is a class component with one instance (``instances=1``), built once and kept warm:

- ``sense`` (:class:`Sense`): advances the shared simulator to now and reads the joints, with
  sensor noise;
- ``estimate`` (:class:`Estimator`): a Kalman filter; it keeps its belief from tick to tick;
- ``plan`` (:class:`Planner`): the LQR gain, computed once from MuJoCo's own linearised
  dynamics; a call is one small matrix product (or, to show what the stream's policies are for,
  a sometimes-stalled call);
- ``act`` (:class:`Act`): advances the simulator to now and applies the force.

``sense`` and ``act`` share one simulator: :func:`plant.shared` keeps it per name, process-wide
(see the README, "One plant, two stages"). The stream's policies, declared on the components
(ages count from the tick's scheduled time, at every stage):

- ``sense`` never reads for a tick that is already a period old (``max_age``): a newer tick
  is due;
- ``estimate`` and ``plan`` take the newest input only (``queue="latest"``: while one is busy,
  a newer tick's call replaces the waiting one);
- ``plan`` has half a period per call (``deadline``); a call that misses it is abandoned and
  the last good command is held (``on_miss="hold"``); it never starts on an estimate a period
  old (``max_age``);
- ``act`` never applies a command made from a reading more than two periods old (``max_age``):
  the motor keeps the force it has until a fresher command comes.

The stream keeps at most :data:`WINDOW` ticks in flight: a loop that falls behind skips ticks
(counted as the source's overruns) instead of queueing them.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np

_EXAMPLES = str(Path(__file__).resolve().parent.parent)
if _EXAMPLES not in sys.path:  # loaded as a file (legato graph FILE:PIPELINE): find the package
    sys.path.insert(0, _EXAMPLES)

import legato as lg  # noqa: E402
from robotics.control import (  # noqa: E402
    FORCE_WEIGHT,
    STATE_WEIGHTS,
    Estimate,
    KalmanFilter,
    lqr_gain,
)
from robotics.plant import Reading, linearize, shared  # noqa: E402

#: Ticks in flight at most (``pipeline.stream(..., window=WINDOW)``).
WINDOW = 4


@dataclass(frozen=True)
class Command:
    """The force to apply (newtons), planned from the estimate of tick ``tick``."""

    tick: float
    force: float


@dataclass(frozen=True)
class Applied:
    """What ``act`` did: the force applied at ``time`` for the tick ``tick``. ``held``: the
    command was planned for an earlier tick (the planner missed its deadline and its last good
    command was held)."""

    tick: float
    time: float
    force: float
    held: bool


class Step(NamedTuple):
    """One tick of the loop, as the pipeline returns it."""

    reading: Reading
    estimate: Estimate
    command: Command
    applied: Applied


@lg.component(name="sense", executor="inline", instances=1)
class Sense:
    """The sensors of the plant called ``plant`` (one simulator per name, process-wide)."""

    def __init__(self, plant: str = "cartpole") -> None:
        self.plant = shared(plant)

    def __call__(self, tick: float) -> Reading:
        return self.plant.sense(tick)


@lg.component(name="estimate", executor="inline", instances=1, queue="latest")
class Estimator:
    """A Kalman filter over the cart-pole's linearised model; keeps its belief between calls
    (so it is one warm instance, and readings reach it in order). ``plant`` names the plant it
    follows: one filter per plant, never one belief for two."""

    def __init__(self, plant: str = "cartpole") -> None:
        a, b = linearize()
        self.filter = KalmanFilter(a, b)

    def __call__(self, reading: Reading) -> Estimate:
        return self.filter.update(reading)


@lg.component(name="plan", instances=1, queue="latest")
class Planner:
    """The LQR for a loop at ``hz``: ``force = -K state``.

    ``stall_chance``: the probability that a call stalls for ``stall_periods`` periods first
    (a stand-in for a planner whose run time varies, e.g. an MPC solve that sometimes needs
    many iterations); random with ``seed``, so a scenario is repeatable.
    """

    def __init__(self, hz: float = 100.0, stall_chance: float = 0.0, stall_periods: float = 3.0,
                 seed: int = 0) -> None:
        a, b = linearize()
        self.gain = lqr_gain(a, b, 1.0 / hz, q=STATE_WEIGHTS, r=FORCE_WEIGHT)[0]
        self.stall_chance = stall_chance
        self.stall = stall_periods / hz
        self.rng = np.random.default_rng(seed)

    def __call__(self, estimate: Estimate) -> Command:
        if self.stall_chance and self.rng.random() < self.stall_chance:
            time.sleep(self.stall)
        return Command(tick=estimate.tick, force=float(-self.gain @ estimate.state))


@lg.component(name="act", executor="inline", instances=1)
class Act:
    """The motor of the plant called ``plant``: the same simulator ``sense`` reads."""

    def __init__(self, plant: str = "cartpole") -> None:
        self.plant = shared(plant)

    def __call__(self, command: Command, tick: float) -> Applied:
        applied_at = self.plant.act(command.force)
        return Applied(tick=tick, time=applied_at, force=command.force,
                       held=command.tick != tick)


def controller(hz: float = 100.0, *, plant: str = "cartpole", stall_chance: float = 0.0,
               stall_periods: float = 3.0, seed: int = 0) -> lg.Pipeline:
    """The loop for a rate of ``hz`` on the plant called ``plant``, its policies scaled to the
    period (see the module docstring); ``stall_*`` and ``seed`` go to the planner."""
    period = 1.0 / hz
    sense = Sense.with_options(max_age=period)
    plan = Planner.with_options(deadline=period / 2, on_miss="hold", max_age=period)
    act = Act.with_options(max_age=2 * period)

    @lg.pipeline(name="balance")
    def balance(tick: float) -> Step:
        reading = sense(plant)(tick)
        estimate = Estimator(plant)(reading)
        command = plan(hz, stall_chance, stall_periods, seed)(estimate)
        applied = act(plant)(command, tick)
        return Step(reading=reading, estimate=estimate, command=command, applied=applied)

    return balance


#: The nominal loop at 100 Hz, for ``legato graph`` and ``legato stream``.
balance = controller()
