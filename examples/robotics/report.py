"""What the main job shows: a table of the scenarios and a plot of each run.

:func:`table` prints one row per scenario (rate, jitter, drops, misses, per-stage latency, the
worst angle, success); :func:`plot` draws a run's true state and force over time, with the
ticks whose planner missed its deadline (the command held) and the ticks a policy dropped
marked on the force.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, no display

import matplotlib.pyplot as plt
from rich.console import Console
from rich.table import Table

from robotics.scenarios import UPRIGHT, Outcome

STAGES = ("sense", "estimate", "plan", "act")


def table(summaries: list[dict[str, Any]], console: Console) -> None:
    """Print the scenarios' figures: the loop, then each stage's latency."""
    loop = Table(title="balancing the cart-pole (times in ms)", title_justify="left")
    loop.add_column("scenario", no_wrap=True)
    for column in ("target Hz", "rate Hz", "jitter p50", "jitter p99", "dropped", "missed",
                   "held", "max |angle|", "success"):
        loop.add_column(column, justify="right")
    for s in summaries:
        loop.add_row(
            s["name"], f"{s['target_hz']:.0f}", f"{s['rate_hz']:.1f}",
            f"{s['jitter_p50_ms']:.2f}", f"{s['jitter_p99_ms']:.2f}",
            str(s["dropped"]), str(s["missed"]), str(s["held"]), f"{s['max_angle_rad']:.3f}",
            "[green]yes[/]" if s["success"] else "[red]no[/]",
        )
    console.print(loop)
    stages = Table(title="latency per stage, p50 / p99 ms", title_justify="left")
    stages.add_column("scenario", no_wrap=True)
    for stage in STAGES:
        stages.add_column(stage, justify="right")
    for s in summaries:
        latency = [s["latency_ms"].get(stage) for stage in STAGES]
        stages.add_row(s["name"], *("-" if v is None else f"{v['p50']:.3f} / {v['p99']:.3f}"
                                    for v in latency))
    console.print(stages)
    for s in summaries:
        why = ", ".join(f"{node} {reason} {count}" for node, reasons in s["drops"].items()
                        for reason, count in reasons.items())
        times = "once" if s["resyncs"] == 1 else f"{s['resyncs']} times"
        stalls = (f"; the host stood still {times}, {s['resync_s']:.2f} s skipped"
                  if s["resyncs"] else "")
        console.print(f"{s['name']}: {s['ticks']} ticks; dropped: {why or 'none'}{stalls}")


def plot(outcome: Outcome, path: Path) -> Path:
    """Draw the run's pole angle, cart position and force over time into ``path`` (PNG)."""
    samples = outcome.samples
    time = [s.time for s in samples]
    simulated = outcome.plant.simulated
    held = [simulated(s.applied.time) for s in outcome.steps if s.applied.held]
    applied = {s.applied.tick for s in outcome.steps}
    dropped = [simulated(at) for tick, at in outcome.readings if tick not in applied]
    figure, (angle, cart, force) = plt.subplots(3, 1, sharex=True, figsize=(10, 7))
    figure.suptitle(f"{outcome.scenario.name}: {outcome.scenario.hz:.0f} Hz")
    angle.plot(time, [s.theta for s in samples], lw=1, label="pole angle (true)")
    angle.plot([simulated(s.estimate.time) for s in outcome.steps],
               [s.estimate.theta for s in outcome.steps], ".", ms=1.5, alpha=0.5,
               label="pole angle (estimate)")
    for bound in (-UPRIGHT, UPRIGHT):
        angle.axhline(bound, color="red", ls="--", lw=0.8)
    angle.set_ylabel("rad")
    angle.legend(loc="upper right", fontsize=8)
    cart.plot(time, [s.x for s in samples], lw=1, color="tab:green")
    cart.set_ylabel("cart (m)")
    force.plot(time, [s.force for s in samples], lw=0.8, color="tab:purple", label="force")
    if held:
        force.plot(held, [0.0] * len(held), "|", color="red", ms=10,
                   label=f"planner missed, command held ({len(held)})")
    if dropped:
        force.plot(dropped, [0.0] * len(dropped), "x", color="grey", ms=4,
                   label=f"tick dropped ({len(dropped)})")
    for at, _ in outcome.plant.resyncs:
        force.axvline(simulated(at), color="orange", lw=0.8)
    if outcome.plant.resyncs:
        force.plot([], [], color="orange", lw=0.8,
                   label=f"host stalled, physics re-synced ({len(outcome.plant.resyncs)})")
    force.set_ylabel("force (N)")
    force.set_xlabel("time (s)")
    force.legend(loc="upper center", bbox_to_anchor=(0.5, -0.3), ncol=4, fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
