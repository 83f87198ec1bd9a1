"""The plant: a cart-pole simulated by MuJoCo, stepping in real time.

A cart slides on a rail (joint ``slider``, metres) and carries a pole on a hinge (joint
``hinge``, radians, 0 upright, positive leaning towards +x); a motor pushes the cart (newtons).
The model is the XML string below: nothing is downloaded.

:class:`CartPole` keeps the simulation in step with a clock: every call first advances the
physics to *now* (``advance``), holding the last command over the elapsed time (a zero-order
hold, as a real motor driver does). So the physics runs exactly as long as the wall clock,
however late the controller is: a controller that stalls lets the pole fall for real.

A host that stops the whole process (a machine so busy that nothing of it runs for a while)
would otherwise make the physics leap ahead, the controller frozen with it: at most
``max_lag`` seconds are caught up at once, and the rest is skipped and counted (``resyncs``),
as MuJoCo's own ``simulate`` re-syncs when it falls behind the wall clock. The loop's own
lateness (a stalled stage, dropped ticks: tens of milliseconds) is always simulated in full.

One simulator serves two stages (``sense`` reads it, ``act`` commands it), which may run at the
same time on different threads: its own lock orders them. :func:`shared` keeps one simulator per
name for the whole process (see the README, "One plant, two stages").
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import mujoco
import numpy as np

#: The cart-pole in MJCF. A 1 kg cart on a 6 m rail, a 0.1 kg pole of 0.6 m (a capsule), a
#: motor of at most 20 N. RK4 at 1 ms: accurate for the pole's few-hertz dynamics.
CARTPOLE_XML = """
<mujoco model="cartpole">
  <option timestep="0.001" integrator="RK4" gravity="0 0 -9.81"/>
  <worldbody>
    <body name="cart">
      <joint name="slider" type="slide" axis="1 0 0" limited="true" range="-3 3" damping="0.05"/>
      <geom name="cart" type="box" size="0.15 0.1 0.05" mass="1.0"/>
      <body name="pole">
        <joint name="hinge" type="hinge" axis="0 1 0" damping="0.002"/>
        <geom name="pole" type="capsule" fromto="0 0 0 0 0 0.6" size="0.02" mass="0.1"/>
      </body>
    </body>
  </worldbody>
  <actuator>
    <motor name="push" joint="slider" gear="1" ctrllimited="true" ctrlrange="-20 20"/>
  </actuator>
</mujoco>
"""

#: The state's order everywhere in this example: cart position, pole angle, their velocities.
STATE = ("x", "theta", "x_dot", "theta_dot")
FORCE_LIMIT = 20.0  # newtons, the motor's range


@dataclass(frozen=True)
class Reading:
    """What the sensors say at ``time``: cart position and pole angle, with noise, and the
    command the motor was applying then. ``tick``: the scheduled time that asked for it."""

    tick: float
    time: float
    x: float
    theta: float
    force: float


@dataclass(frozen=True)
class Sample:
    """The true state after one physics step, for the record (never seen by the controller)."""

    time: float
    x: float
    theta: float
    x_dot: float
    theta_dot: float
    force: float


@dataclass(frozen=True)
class Noise:
    """Standard deviations of the sensors: the cart's encoder (m) and the pole's (rad)."""

    x: float = 0.002
    theta: float = 0.003


def build_model() -> mujoco.MjModel:
    """The cart-pole model, compiled from :data:`CARTPOLE_XML`."""
    return mujoco.MjModel.from_xml_string(CARTPOLE_XML)


class CartPole:
    """A cart-pole simulated in real time on ``clock`` (seconds; ``time.monotonic`` by default:
    the engine's own clock), with noisy sensors.

    ``tilt`` is the pole's angle at the start (radians), ``pushes`` horizontal shoves on the
    pole as ``(at, seconds, newtons)`` in simulated time. The physics starts at the first
    call. ``max_lag``: the most it catches up in one call (see the module docstring); what is
    skipped beyond it is noted in :attr:`resyncs` as ``(clock time, seconds skipped)``.
    ``record`` keeps every physics step's true state in :attr:`samples`.
    """

    def __init__(self, *, tilt: float = 0.08, noise: Noise = Noise(), seed: int = 0,
                 pushes: tuple[tuple[float, float, float], ...] = (),
                 clock: Callable[[], float] = time.monotonic, max_lag: float = 0.1,
                 record: bool = True) -> None:
        self.model = build_model()
        self.data = mujoco.MjData(self.model)
        self.data.qpos[1] = tilt
        mujoco.mj_forward(self.model, self.data)
        self.noise = noise
        self.pushes = pushes
        self.clock = clock
        self.record = record
        self.samples: list[Sample] = []
        self.readings: list[tuple[float, float]] = []  # (tick, time) of every reading
        self.max_lag = max_lag
        self.resyncs: list[tuple[float, float]] = []
        self.start: float | None = None  # the clock's time at the first call
        self.origin: float | None = None  # the clock's time at simulated t = 0, less resyncs
        self._rng = np.random.default_rng(seed)
        self._lock = threading.Lock()
        self._pole = self.model.body("pole").id

    # -- the two stages' sides ---------------------------------------------------------------

    def sense(self, tick: float) -> Reading:
        """Advance to now, then read the joints with sensor noise."""
        with self._lock:
            now = self._advance()
            self.readings.append((tick, now))
            x, theta = self.data.qpos
            return Reading(tick=tick, time=now,
                           x=float(x + self._rng.normal(0.0, self.noise.x)),
                           theta=float(theta + self._rng.normal(0.0, self.noise.theta)),
                           force=float(self.data.ctrl[0]))

    def act(self, force: float) -> float:
        """Advance to now under the old command, then apply ``force`` (clipped to the motor's
        range) from now on. Returns the time it took effect."""
        with self._lock:
            now = self._advance()
            self.data.ctrl[0] = float(np.clip(force, -FORCE_LIMIT, FORCE_LIMIT))
            return now

    # -- time ----------------------------------------------------------------------------------

    def simulated(self, at: float) -> float:
        """The simulated time of the clock's time ``at`` (resyncs before it taken off)."""
        start = self.start if self.start is not None else at
        return at - start - sum(lost for when, lost in self.resyncs if when <= at)

    @property
    def seconds(self) -> float:
        """Simulated seconds so far."""
        return float(self.data.time)

    def state(self) -> np.ndarray:
        """The true state ``(x, theta, x_dot, theta_dot)``."""
        return np.concatenate([self.data.qpos, self.data.qvel])

    def advance(self) -> float:
        """Step the physics up to the clock's now, under the force applied last; return now.
        (``sense`` and ``act`` do this first; a run calls it at its end, so that the physics
        covers the whole run however the last ticks went.)"""
        with self._lock:
            return self._advance()

    def _advance(self) -> float:
        """``advance``, the lock held."""
        now = self.clock()
        if self.origin is None:
            self.start = self.origin = now
        target = now - self.origin
        behind = target - self.data.time
        if behind > self.max_lag:  # the host stood still: catch up max_lag, skip the rest
            self.resyncs.append((now, behind - self.max_lag))
            self.origin += behind - self.max_lag
            target = now - self.origin
        step = self.model.opt.timestep
        while self.data.time + step <= target + 1e-9:
            self._push()
            mujoco.mj_step(self.model, self.data)
            if self.record:
                x, theta = self.data.qpos
                x_dot, theta_dot = self.data.qvel
                self.samples.append(Sample(float(self.data.time), float(x), float(theta),
                                           float(x_dot), float(theta_dot),
                                           float(self.data.ctrl[0])))
        return now

    def _push(self) -> None:
        """Apply the shoves that are on at this simulated time, at the pole's middle (its
        centre of mass, where MuJoCo applies a body's external force)."""
        force = sum(n for at, lasts, n in self.pushes if at <= self.data.time < at + lasts)
        self.data.xfrc_applied[self._pole, 0] = force


def linearize(model: mujoco.MjModel | None = None,
              eps: float = 1e-6) -> tuple[np.ndarray, np.ndarray]:
    """The continuous-time linear model ``d/dt s = A s + B u`` about the upright rest state,
    by central finite differences of MuJoCo's own dynamics (so the controller is designed on
    the very model it will drive). ``s`` is ordered as :data:`STATE`, ``u`` is the force."""
    model = model or build_model()
    data = mujoco.MjData(model)

    def derivative(state: np.ndarray, force: float) -> np.ndarray:
        data.qpos[:] = state[:2]
        data.qvel[:] = state[2:]
        data.ctrl[0] = force
        mujoco.mj_forward(model, data)
        return np.concatenate([data.qvel, data.qacc])

    rest = np.zeros(4)
    a = np.zeros((4, 4))
    for i in range(4):
        bump = np.zeros(4)
        bump[i] = eps
        a[:, i] = (derivative(rest + bump, 0.0) - derivative(rest - bump, 0.0)) / (2 * eps)
    b = ((derivative(rest, eps) - derivative(rest, -eps)) / (2 * eps)).reshape(4, 1)
    return a, b


_PLANTS: dict[str, CartPole] = {}
_PLANTS_LOCK = threading.Lock()


def shared(name: str, factory: Callable[[], CartPole] = CartPole) -> CartPole:
    """The process-wide simulator called ``name``, made by ``factory`` on first use. Both
    stages that touch the plant (``Sense`` and ``Act``) get theirs here, so they hold the same
    object."""
    with _PLANTS_LOCK:
        if name not in _PLANTS:
            _PLANTS[name] = factory()
        return _PLANTS[name]


def install(name: str, plant: CartPole) -> CartPole:
    """Put ``plant`` under ``name`` (replacing any), for the next run's stages to share."""
    with _PLANTS_LOCK:
        _PLANTS[name] = plant
    return plant
