"""The robotics example (examples/robotics): a MuJoCo cart-pole balanced by a legato stream.

Select with ``-m models``; skipped when the example's requirements are not installed
(``pip install -r examples/robotics/requirements.txt``). The parts are tested in simulated
time (a clock the test moves), so they assert exact physics, not timings; the main job runs
the real-time loop for two seconds per scenario and checks what happened to the pole.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

for _requirement in ("mujoco", "scipy", "matplotlib"):
    pytest.importorskip(_requirement)

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "robotics"
if str(EXAMPLE.parent) not in sys.path:
    sys.path.insert(0, str(EXAMPLE.parent))

from robotics import control, loop, plant  # noqa: E402

pytestmark = pytest.mark.models


class Clock:
    """Time the test moves by hand."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def simulated_loop(hz: float, seconds: float, *, stall_every: int = 0,
                   pushes: tuple[tuple[float, float, float], ...] = ()) -> plant.CartPole:
    """The example's filter and regulator driven by hand on a simulated clock: sense, estimate,
    plan and act 0.5 ms later, every period; with ``stall_every``, every n-th plan takes three
    periods, the force held meanwhile."""
    clock = Clock()
    cart = plant.CartPole(clock=clock, pushes=pushes)
    a, b = plant.linearize()
    kalman = control.KalmanFilter(a, b)
    gain = control.lqr_gain(a, b, 1 / hz, q=control.STATE_WEIGHTS, r=control.FORCE_WEIGHT)[0]
    busy_until = -1.0
    for k in range(round(seconds * hz)):
        clock.now = k / hz
        estimate = kalman.update(cart.sense(clock.now))
        if clock.now < busy_until:
            continue
        if stall_every and k % stall_every == 0:
            busy_until = clock.now + 3 / hz
            continue
        clock.now += 0.0005
        cart.act(float(-gain @ estimate.state))
    return cart


def angles(cart: plant.CartPole) -> np.ndarray:
    return np.abs([s.theta for s in cart.samples])


# ---------------------------------------------------------------------------------------------
# The plant and the controller, in simulated time


def test_the_pole_falls_when_nothing_acts() -> None:
    clock = Clock()
    cart = plant.CartPole(clock=clock, tilt=0.05)
    for k in range(101):  # sensed every 10 ms, never pushed
        clock.now = k / 100
        cart.sense(clock.now)

    assert cart.seconds == pytest.approx(1.0, abs=0.002)  # stepped exactly to the clock
    assert angles(cart).max() > 1.0  # fallen far past the +-0.2 rad the task allows
    assert cart.resyncs == []


def test_a_host_that_stands_still_is_skipped_not_caught_up_and_counted() -> None:
    clock = Clock()
    cart = plant.CartPole(clock=clock, max_lag=0.1)
    cart.sense(0.0)
    clock.now = 0.05
    cart.act(1.0)  # 50 ms late: simulated in full
    clock.now = 1.05
    cart.sense(1.05)  # a second with nothing running: 0.1 s simulated, 0.9 s skipped

    assert cart.seconds == pytest.approx(0.15, abs=0.002)
    assert cart.resyncs == [(1.05, pytest.approx(0.9))]
    assert cart.simulated(1.05) == pytest.approx(0.15)
    assert cart.simulated(0.05) == pytest.approx(0.05)


def test_linearised_model_is_unstable_upright_and_the_motor_pushes_the_cart() -> None:
    a, b = plant.linearize()

    assert np.linalg.eigvals(a).real.max() == pytest.approx(5.0, abs=0.3)  # falls in ~0.2 s
    assert b[2, 0] > 0 > b[3, 0]  # pushing the cart forward tips the pole back


@pytest.mark.parametrize("hz", [100, 500])
def test_filter_and_lqr_balance_the_pole_through_pushes(hz: int) -> None:
    cart = simulated_loop(hz, 6.0, pushes=((1.5, 0.1, 0.5), (4.5, 0.1, -0.5)))

    assert angles(cart).max() < 0.1  # the 0.08 rad start was the worst moment
    before_second_push = [abs(s.theta) for s in cart.samples if 3.5 <= s.time < 4.5]
    assert max(before_second_push) < 0.03  # settled after the first
    assert max(abs(s.x) for s in cart.samples) < 1.0
    assert max(abs(s.force) for s in cart.samples) < plant.FORCE_LIMIT


def test_holding_the_force_through_planner_stalls_keeps_the_pole_up() -> None:
    cart = simulated_loop(100, 6.0, stall_every=10, pushes=((1.5, 0.1, 0.5),))

    assert angles(cart).max() < 0.15


def test_kalman_filter_recovers_the_velocities_from_noisy_positions() -> None:
    clock = Clock()
    cart = plant.CartPole(clock=clock, tilt=0.05)
    a, b = plant.linearize()
    kalman = control.KalmanFilter(a, b)
    errors = []
    for k in range(60):  # the pole falls freely for 0.3 s: the velocities grow fast
        clock.now = k / 200
        estimate = kalman.update(cart.sense(clock.now))
        errors.append(np.abs(estimate.state - cart.state()))
    late = np.array(errors[20:])

    assert late[:, 1].max() < 0.01  # angle, rad (the sensor's noise is 0.003)
    assert np.median(late[:, 3]) < 0.06  # angular velocity, rad/s, never measured
    assert late[:, 3].max() < 0.2
    assert estimate.theta_dot > 0.5  # really falling, and the filter knows it


def test_expm_matches_scipy() -> None:
    import scipy.linalg

    rng = np.random.default_rng(0)
    for scale in (0.01, 1.0, 30.0):
        m = rng.normal(size=(5, 5)) * scale
        expected = scipy.linalg.expm(m)
        assert np.allclose(control.expm(m), expected, rtol=1e-9, atol=1e-12 * abs(expected).max())


# ---------------------------------------------------------------------------------------------
# The components and the pipeline


def test_sense_and_act_share_one_simulator() -> None:
    plant.install("shared-test", plant.CartPole(clock=Clock()))
    sense, act = loop.Sense("shared-test"), loop.Act("shared-test")

    act(loop.Command(tick=0.0, force=7.5), 0.0)
    reading = sense(0.0)

    assert reading.force == 7.5  # what act applied is what the sensors' plant is doing
    assert plant.shared("shared-test").data.ctrl[0] == 7.5


def test_the_loop_declares_its_stream_policies() -> None:
    graph = loop.controller(200.0).graph
    options = {name: node.component.options for name, node in graph.nodes.items()}

    assert list(options) == ["sense", "estimate", "plan", "act"]
    assert options["sense"].max_age == pytest.approx(0.005)
    assert options["estimate"].queue == "latest"
    assert options["plan"].queue == "latest"
    assert options["plan"].deadline == pytest.approx(0.0025)
    assert options["plan"].on_miss == "hold"
    assert options["act"].max_age == pytest.approx(0.01)


# ---------------------------------------------------------------------------------------------
# The main job, in real time


def test_main_job_keeps_the_pole_up_and_reports(tmp_path: Path) -> None:
    finished = subprocess.run(
        [sys.executable, str(EXAMPLE / "main.py"), "--seconds", "2", "--out-dir", str(tmp_path),
         "--only", "nominal,slow_planner"],
        capture_output=True, text=True, timeout=120, check=False,
    )

    assert finished.returncode == 0, finished.stdout + finished.stderr
    summary = {s["name"]: s for s in json.loads((tmp_path / "summary.json").read_text())}
    assert list(summary) == ["nominal", "slow_planner"]
    for s in summary.values():
        assert s["success"], s
        assert s["max_angle_rad"] < 0.2
        # The plant ran in real time for the whole run, less what a stalled host skipped.
        assert s["simulated_s"] + s["resync_s"] >= 1.9
        assert s["target_hz"] == 100
        assert 20 < s["rate_hz"] <= 101  # it ran (a busy machine skips ticks: counted)
        assert 0 <= s["jitter_p50_ms"] <= s["jitter_p99_ms"]
        assert {"sense", "estimate", "plan", "act"} <= set(s["latency_ms"])
        assert all(v["p50"] <= v["p99"] for v in s["latency_ms"].values())
        assert Path(s["plot"]).is_file()
    slow = summary["slow_planner"]
    # One planner call in ten stalls for three periods: each misses its deadline (the last
    # command is held) and the ticks that come meanwhile are dropped, all of it counted.
    assert slow["missed"] > 0
    assert slow["held"] > 0
    assert slow["dropped"] > 0
    assert slow["misses"]["plan"] == slow["missed"]
    assert "balancing the cart-pole" in finished.stdout
