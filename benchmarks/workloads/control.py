"""B10: a four-stage control loop at a fixed rate (100 Hz and 500 Hz): how late each cycle
starts (jitter) and how many cycles miss their period.

The loop is sense -> estimate -> plan -> act, four cheap stages in plain Python (a reading of
a simulated first-order plant with noise, an alpha-beta filter, a proportional-derivative
law, the plant stepped by the command): a few microseconds each, so "the stages fit" and any
lateness is the loop's own. Figures per rate:

- jitter: for every cycle, the time ``sense`` starts less the cycle's scheduled time, p50 and
  p99 in ms (budget p99 <= 1 ms);
- misses: cycles that started more than half a period late or whose ``act`` ended after the
  next cycle was due, and cycles skipped (budget 0); one rule for both loops;
- ratio: legato's jitter p99 over the hand-written loop's (budget <= 1.2).

legato runs ``pipeline.stream(lg.Tick(hz, duration=...))`` over four ``inline`` components (on
the engine's loop thread, as cheap functions should be); the baseline is the loop a robotics
engineer writes by hand: sleep until the next cycle's time, run the four stages, repeat;
skip a cycle that is already more than half a period late (what ``lg.Tick`` does: a loop that
fell behind runs its next cycle on time instead of a burst of late ones). Both use the same
stage functions and the same clock (``time.monotonic``, the engine's; on Linux it is the clock
``time.perf_counter`` reads), and take turns every two seconds in the same session, so that a
busy moment of a shared machine falls on both alike.
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
SEGMENT = 2.0  # seconds each loop runs before the other takes its turn


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


@dataclass
class Log:
    """What one or more runs of a loop at one rate gave: each cycle's lateness (ms), cycles
    missed (started more than half a period late, or ``act`` ended after the next was due),
    cycles never run, cycles run."""

    late_ms: list[float] = field(default_factory=list)
    missed: int = 0
    lost: int = 0
    cycles: int = 0

    def add(self, hz: float, lost: int) -> None:
        """Add PLANT's log of a run at ``hz`` that skipped ``lost`` cycles."""
        period = 1.0 / hz
        for tick, started, ended in PLANT.cycles:
            self.late_ms.append((started - tick) * 1000)
            self.missed += started - tick > period / 2 or ended > tick + period
        self.cycles += len(PLANT.cycles)
        self.lost += lost

    @property
    def misses(self) -> int:
        return self.missed + self.lost

    def note(self) -> str:
        return f"{self.cycles} cycles run; missed: {self.missed} late, {self.lost} skipped"


def _reset() -> None:
    global PLANT
    PLANT = Plant()


def hand_loop(hz: float, seconds: float) -> int:
    """The baseline, as one writes it by hand: sleep until the next cycle's time, run the four
    stages in line; a cycle more than half a period late is skipped (as ``lg.Tick`` does),
    never run late in a burst. Returns the cycles skipped; PLANT logs the others."""
    _reset()
    period = 1.0 / hz
    count = math.ceil(seconds * hz - 1e-9)
    start = time.monotonic()
    skipped = 0
    for k in range(count):
        tick = start + k * period
        left = tick - time.monotonic()
        if left > 0:
            time.sleep(left)
        elif -left > period / 2:
            skipped += 1
            continue
        act(plan(estimate(sense(tick))), tick)
    return skipped


def legato_loop(hz: float, seconds: float, engine: lg.Engine) -> int:
    """The same stages as a legato stream on a fixed-rate ``lg.Tick``. Returns the cycles
    that never ran (overruns, drops, failures); PLANT logs the others."""
    _reset()
    stream = control.stream(lg.Tick(hz, duration=seconds), engine=engine, on_drop="keep")
    for _ in stream:
        pass
    stats = stream.stats()
    return stats.overruns + stats.dropped + stats.failed


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
    measured: dict[str, dict[int, Log]] = {}

    def both() -> dict[str, dict[int, Log]]:
        """Run the hand-written loop and legato at each rate, taking turns every
        :data:`SEGMENT` seconds, so that both meet the same moments of a shared machine."""
        if not measured:
            hand = {hz: Log() for hz in RATES}
            ours = {hz: Log() for hz in RATES}
            with lg.Engine(LocalBackend()) as engine:
                legato_loop(50, 0.2, engine)  # warm-up: the engine's thread, the graph's plan
                for hz in RATES:
                    for _ in range(max(1, round(seconds / SEGMENT))):
                        hand[hz].add(hz, hand_loop(hz, min(SEGMENT, seconds)))
                        ours[hz].add(hz, legato_loop(hz, min(SEGMENT, seconds), engine))
            measured.update(hand=hand, legato=ours)
        return measured

    def sample(name: str) -> Callable[[], Sample]:
        def measure() -> Sample:
            runs = both()
            values: dict[str, float] = {}
            notes: dict[str, str] = {}
            for hz, got in runs[name].items():
                values[f"B10-{hz}"] = percentile(got.late_ms, 99)
                values[f"B10-{hz}-p50"] = percentile(got.late_ms, 50)
                values[f"B10-{hz}-miss"] = got.misses
                notes[f"B10-{hz}-miss"] = got.note()
                if name == "legato":
                    baseline = percentile(runs["hand"][hz].late_ms, 99)
                    values[f"B10-{hz}-ratio"] = (values[f"B10-{hz}"] / baseline
                                                 if baseline else math.inf)
                    notes[f"B10-{hz}-ratio"] = f"hand-written p99 {baseline:.3f} ms"
            return Sample(values, notes=notes)

        return measure

    return Family("B10: fixed-rate control loop", rows,
                  {"legato": sample("legato"), "hand_loop": sample("hand")})
