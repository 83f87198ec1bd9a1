"""The controller's mathematics, free of legato: a Kalman filter and an LQR gain.

Both work on the cart-pole's linear model about the upright rest state (``plant.linearize``),
in the state order ``(x, theta, x_dot, theta_dot)``:

- :func:`discretize` turns ``d/dt s = A s + B u`` into ``s' = Ad s + Bd u`` over ``dt`` seconds
  with the command held constant (zero-order hold), exactly, by one matrix exponential;
- :func:`lqr_gain` is the discrete-time linear-quadratic regulator: ``u = -K s`` minimises
  ``sum(s' Q s + u' R u)`` at the control period, from the discrete Riccati equation;
- :class:`KalmanFilter` estimates the whole state (velocities included) from noisy positions.
  Readings may come at uneven intervals (a stalled stage, a dropped tick): each prediction
  spans the real time since the last reading.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.linalg

from robotics.plant import Noise, Reading


def discretize(a: np.ndarray, b: np.ndarray, dt: float) -> tuple[np.ndarray, np.ndarray]:
    """``(Ad, Bd)`` of the continuous model ``(a, b)`` over ``dt``, the input held constant:
    the exponential of ``[[a, b], [0, 0]] * dt``."""
    n, m = b.shape
    block = np.zeros((n + m, n + m))
    block[:n, :n] = a
    block[:n, n:] = b
    exp = expm(block * dt)
    return exp[:n, :n], exp[:n, n:]


def expm(m: np.ndarray, terms: int = 12) -> np.ndarray:
    """The matrix exponential of a small matrix: its Taylor series after scaling ``m`` to a
    norm below 1/2, then squared back. Exact to rounding here, and about 0.1 ms on a 5 x 5
    matrix where ``scipy.linalg.expm`` took 8 ms (median) inside a paced loop on a busy
    machine: its Padé step wakes OpenBLAS's threads."""
    norm = float(np.abs(m).sum(axis=1).max())
    squarings = max(0, int(np.ceil(np.log2(norm))) + 1) if norm > 0.5 else 0
    scaled = m / 2.0**squarings
    out = term = np.eye(len(m))
    for k in range(1, terms):
        term = term @ scaled / k
        out = out + term
    for _ in range(squarings):
        out = out @ out
    return out


def lqr_gain(a: np.ndarray, b: np.ndarray, dt: float, *, q: np.ndarray,
             r: np.ndarray) -> np.ndarray:
    """The gain ``K`` (1 x 4) of the discrete LQR at period ``dt``: the command is ``-K s``."""
    ad, bd = discretize(a, b, dt)
    p = scipy.linalg.solve_discrete_are(ad, bd, q, r)
    return np.linalg.solve(r + bd.T @ p @ bd, bd.T @ p @ ad)


#: What the regulator weighs: the pole's angle and its rate most, then the cart's place on the
#: rail; the force is cheap enough that a 0.1 rad tilt asks for ~8 N, inside the motor's 20 N.
#: Chosen on the simulator without legato (a loop stepped by hand, 3 ms late, its planner
#: stalled three periods one call in ten): the pole stays within 0.09 rad of upright.
STATE_WEIGHTS = np.diag([1.0, 100.0, 1.0, 5.0])
FORCE_WEIGHT = np.array([[0.05]])


@dataclass(frozen=True)
class Estimate:
    """The filter's belief at ``time`` (seconds): the state and the standard deviation of the
    angle estimate. ``tick``: the scheduled time of the reading it came from."""

    tick: float
    time: float
    x: float
    theta: float
    x_dot: float
    theta_dot: float
    theta_std: float

    @property
    def state(self) -> np.ndarray:
        return np.array([self.x, self.theta, self.x_dot, self.theta_dot])


class KalmanFilter:
    """A linear Kalman filter for the cart-pole, fed :class:`~plant.Reading` s in time order.

    The process noise is white noise on the two accelerations (``accel_std``: m/s² for the
    cart, rad/s² for the pole, per √s), which covers the linearisation's error and pushes; the
    measurement noise is the sensors' (``noise``). The first reading sets the positions (the
    velocities start at zero, uncertain).
    """

    MEASURED = np.array([[1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0]])

    def __init__(self, a: np.ndarray, b: np.ndarray, *, noise: Noise = Noise(),
                 accel_std: tuple[float, float] = (0.5, 1.0)) -> None:
        self.a, self.b = a, b
        self.accel_var = np.square(accel_std)
        self.measurement_cov = np.diag([noise.x**2, noise.theta**2])
        self.state: np.ndarray | None = None
        self.cov = np.diag([noise.x**2, noise.theta**2, 0.5, 0.5])
        self.time = 0.0
        self._transitions: dict[float, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}

    def update(self, reading: Reading) -> Estimate:
        """Predict from the last reading to this one under the force applied meanwhile, then
        correct with the measured positions."""
        measured = np.array([reading.x, reading.theta])
        if self.state is None:
            self.state = np.array([reading.x, reading.theta, 0.0, 0.0])
        else:
            dt = max(reading.time - self.time, 0.0)
            ad, bd, noise = self._transition(round(dt, 4))
            self.state = ad @ self.state + bd[:, 0] * reading.force
            self.cov = ad @ self.cov @ ad.T + noise
            c = self.MEASURED
            innovation_cov = c @ self.cov @ c.T + self.measurement_cov
            gain = np.linalg.solve(innovation_cov, c @ self.cov).T
            self.state = self.state + gain @ (measured - c @ self.state)
            keep = np.eye(4) - gain @ c  # Joseph's form: stays symmetric and positive
            self.cov = keep @ self.cov @ keep.T + gain @ self.measurement_cov @ gain.T
        self.time = reading.time
        x, theta, x_dot, theta_dot = (float(v) for v in self.state)
        return Estimate(tick=reading.tick, time=reading.time, x=x, theta=theta, x_dot=x_dot,
                        theta_dot=theta_dot, theta_std=float(np.sqrt(self.cov[1, 1])))

    def _transition(self, dt: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(Ad, Bd, Qd)`` over ``dt`` (rounded to 0.1 ms by the caller: a loop sees few
        distinct intervals, each computed once)."""
        if dt in self._transitions:
            return self._transitions[dt]
        ad, bd = discretize(self.a, self.b, dt)
        # White acceleration noise over dt: the velocities gain var*dt, the positions
        # var*dt^3/3, correlated by var*dt^2/2.
        noise = np.zeros((4, 4))
        for position, velocity, var in ((0, 2, self.accel_var[0]), (1, 3, self.accel_var[1])):
            noise[position, position] = var * dt**3 / 3
            noise[position, velocity] = noise[velocity, position] = var * dt**2 / 2
            noise[velocity, velocity] = var * dt
        if len(self._transitions) < 1024:
            self._transitions[dt] = (ad, bd, noise)
        return ad, bd, noise
