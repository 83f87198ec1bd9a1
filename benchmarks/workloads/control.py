"""B10: a four-stage control loop at a fixed rate (100 Hz and 500 Hz): how late each cycle
starts (jitter) and how many cycles miss their period.

The loop is sense -> estimate -> plan -> act, four cheap stages in plain Python (a reading of
a simulated first-order plant with noise, an alpha-beta filter, a proportional-derivative
law, the plant stepped by the command): a few microseconds each, so "the stages fit" and any
lateness is the loop's own. Figures per rate:

- jitter: for every cycle, the time ``sense`` starts less the cycle's scheduled time, p50 and
  p99 in ms (budget p99 <= 1 ms);
- misses: cycles that started more than half a period late (a :class:`~legato.Tick` skips
  those: its overruns) or whose ``act`` ended after the next cycle was due, and cycles that
  never ran (legato: dropped items and overruns) (budget 0); one rule for both loops;
- ratio: legato's jitter p99 over the hand-written loop's (budget <= 1.2).

legato runs ``pipeline.stream(lg.Tick(hz, duration=...))`` over four ``inline`` components (on
the engine's loop thread, as cheap functions should be); the baseline is the loop a robotics
engineer writes by hand on ``time.perf_counter``: sleep until the next cycle's time, run the
four stages, repeat. Both use the same stage functions and the same clock
(``time.monotonic``, the engine's), and run one after the other in the same session.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from measure import percentile
from suite import Family, RowSpec, Sample

import legato as lg
from legato.backends.local import LocalBackend

RATES = (100, 500)


@dataclass
class Plant:
    """A first-order plant ``x' = -x + u`` with sensor noise, stepped by ``act``; and the log
    of every cycle: (scheduled, sense started, act ended)."""

    x: float = 1.0
    last: float | None = None
    rng: random.Random = field(default_factory=lambda: random.Random(0))
    cycles: list[tuple[float, float, float]] = field(default_factory=list)
    started: dict[float, float] = field(default_factory=dict)


PLANT = Plant()


def sense(tick: float) -> tuple[float, float]:
    """The reading (time, noisy x); notes when this cycle started."""
    now = time.monotonic()
    PLANT.started[tick] = now
    return now, PLANT.x + PLANT.rng.gauss(0.0, 0.01)


def estimate(reading: tuple[float, float]) -> tuple[float, float]:
    """An alpha-beta filter's (position, velocity) after this reading (stateless here: the
    prediction starts from the reading itself, enough arithmetic for a cheap stage)."""
    _, measured = reading
    predicted, velocity = measured, -measured
    residual = measured - predicted
    return predicted + 0.5 * residual, velocity + 0.1 * residual


def plan(state: tuple[float, float]) -> float:
    """A PD law towards 0."""
    position, velocity = state
    return -2.0 * position - 0.5 * velocity


def act(command: float, tick: float) -> float:
    """Step the plant by the time since the last act under ``command``; log the cycle."""
    now = time.monotonic()
    if PLANT.last is not None:
        PLANT.x += (now - PLANT.last) * (-PLANT.x + command)
    PLANT.last = now
    PLANT.cycles.append((tick, PLANT.started.pop(tick, math.nan), now))
    return now


@lg.component(name="sense", executor="inline", cpus=0)
def sense_stage(tick: float) -> tuple[float, float]:
    return sense(tick)


@lg.component(name="estimate", executor="inline", cpus=0)
def estimate_stage(reading: tuple[float, float]) -> tuple[float, float]:
    return estimate(reading)


@lg.component(name="plan", executor="inline", cpus=0)
def plan_stage(state: tuple[float, float]) -> float:
    return plan(state)


@lg.component(name="act", executor="inline", cpus=0)
def act_stage(command: float, tick: float) -> float:
    return act(command, tick)


@lg.pipeline
def control(tick: float) -> float:
    return act_stage(plan_stage(estimate_stage(sense_stage(tick))), tick)


@dataclass(frozen=True)
class Figures:
    """One loop's run at one rate: jitter p50/p99 (ms), missed cycles (late, overran, never
    run), cycles run."""

    p50: float
    p99: float
    misses: int
    late: int
    lost: int
    cycles: int

    def note(self) -> str:
        return (f"{self.cycles} cycles run; missed: {self.late} late or overran, "
                f"{self.lost} never run")


def figures(hz: float, expected: int, lost: int = 0) -> Figures:
    """Read PLANT's log of a run that should have had ``expected`` cycles; ``lost``: cycles
    the loop itself reports it never ran (when it says nothing, the cycles missing from the
    log)."""
    period = 1.0 / hz
    cycles = PLANT.cycles
    late = [(started - tick) * 1000 for tick, started, _ in cycles if not math.isnan(started)]
    missed = sum(1 for tick, started, ended in cycles
                 if started - tick > period / 2 or ended > tick + period)
    lost = max(lost, expected - len(cycles))
    return Figures(p50=percentile(late, 50), p99=percentile(late, 99), misses=missed + lost,
                   late=missed, lost=lost, cycles=len(cycles))


def _reset() -> None:
    global PLANT
    PLANT = Plant()


def hand_loop(hz: float, seconds: float) -> Figures:
    """The baseline: sleep until each cycle's time on ``time.perf_counter``'s clock, run the
    four stages in line."""
    _reset()
    count = math.ceil(seconds * hz - 1e-9)
    start = time.monotonic()
    for k in range(count):
        tick = start + k / hz
        left = tick - time.monotonic()
        if left > 0:
            time.sleep(left)
        act(plan(estimate(sense(tick))), tick)
    return figures(hz, count)


def legato_loop(hz: float, seconds: float, engine: lg.Engine) -> Figures:
    """The same stages as a legato stream on a fixed-rate ``lg.Tick``."""
    _reset()
    stream = control.stream(lg.Tick(hz, duration=seconds), engine=engine, on_drop="keep")
    for _ in stream:
        pass
    stats = stream.stats()
    count = math.ceil(seconds * hz - 1e-9)
    return figures(hz, count, lost=stats.overruns + stats.dropped + stats.failed)


def family(*, quick: bool) -> Family:
    seconds = 2.0 if quick else 10.0
    rows: list[RowSpec] = []
    for hz in RATES:
        rows += [
            RowSpec(f"B10-{hz}", f"4-stage control loop at {hz} Hz for {seconds:g} s: "
                    "jitter p99", "ms", 1.0),
            RowSpec(f"B10-{hz}-p50", f"B10 at {hz} Hz: jitter p50", "ms", None),
            RowSpec(f"B10-{hz}-miss", f"B10 at {hz} Hz: cycles missed (late, dropped, "
                    "overrun)", "count", 0.0),
            RowSpec(f"B10-{hz}-ratio", f"B10 at {hz} Hz: jitter p99 over the hand-written "
                    "loop's", "ratio", 1.2),
        ]
    measured: dict[str, dict[int, Figures]] = {}

    def both() -> dict[str, dict[int, Figures]]:
        """Run the hand-written loop and legato at each rate, taking turns (once)."""
        if not measured:
            hand: dict[int, Figures] = {}
            ours: dict[int, Figures] = {}
            with lg.Engine(LocalBackend()) as engine:
                legato_loop(50, 0.2, engine)  # warm-up: the engine's thread, the graph's plan
                for hz in RATES:
                    hand[hz] = hand_loop(hz, seconds)
                    ours[hz] = legato_loop(hz, seconds, engine)
            measured.update(hand=hand, legato=ours)
        return measured

    def sample(name: str) -> Callable[[], Sample]:
        def measure() -> Sample:
            runs = both()
            values: dict[str, float] = {}
            notes: dict[str, str] = {}
            for hz, got in runs[name].items():
                values[f"B10-{hz}"] = got.p99
                values[f"B10-{hz}-p50"] = got.p50
                values[f"B10-{hz}-miss"] = got.misses
                notes[f"B10-{hz}-miss"] = got.note()
                if name == "legato":
                    baseline = runs["hand"][hz].p99
                    values[f"B10-{hz}-ratio"] = got.p99 / baseline if baseline else math.inf
                    notes[f"B10-{hz}-ratio"] = f"hand-written p99 {baseline:.3f} ms"
            return Sample(values, notes=notes)

        return measure

    return Family("B10: fixed-rate control loop", rows,
                  {"legato": sample("legato"), "hand_loop": sample("hand")})
