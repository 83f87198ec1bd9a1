"""Balance a MuJoCo cart-pole with a legato stream, in three scenarios, and report.

    python examples/robotics/main.py [--seconds 10] [--out-dir DIR] [--only NAME,...]

Each scenario (see ``scenarios.py``) runs the loop ``sense -> estimate -> plan -> act`` at a
fixed rate for ``--seconds`` on a fresh simulator that steps in real time: ``nominal`` at
100 Hz, ``nominal_500hz`` at 500 Hz, and ``slow_planner`` at 100 Hz with a planner that stalls
for three periods on one call in ten. It prints a table and writes ``DIR/summary.json`` (a list
of scenarios: name, target_hz, rate_hz, jitter_p50_ms, jitter_p99_ms, dropped, missed,
latency_ms per stage, success, ...) and a plot per scenario, ``DIR/NAME.png``. The exit status
is 0 when every scenario kept the pole up.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the package importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rich.console import Console

from robotics import report, scenarios

HERE = Path(__file__).resolve().parent


def main(argv: list[str] | None = None) -> int:
    """Run the scenarios, print the table, write the summary and the plots."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--seconds", type=float, default=10.0,
                        help="how long each scenario runs (default: %(default)s)")
    parser.add_argument("--out-dir", type=Path, default=HERE / "out",
                        help="summary.json and the plots (default: %(default)s)")
    parser.add_argument("--only", default="",
                        help="comma-separated scenario names (default: all: "
                             f"{', '.join(s.name for s in scenarios.SCENARIOS)})")
    args = parser.parse_args(argv)
    chosen = [s for s in scenarios.SCENARIOS
              if not args.only or s.name in args.only.split(",")]
    if not chosen:
        parser.error(f"no scenario called {args.only!r}")
    out_dir = args.out_dir.resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    console = Console() if sys.stdout.isatty() else Console(width=110)  # a log: full tables

    summaries = []
    for scenario in chosen:
        console.print(f"{scenario.name}: {args.seconds:g} s at {scenario.hz:g} Hz ...")
        outcome = scenarios.run(scenario, args.seconds)
        summary = scenarios.summarise(outcome)
        summary["plot"] = str(report.plot(outcome, out_dir / f"{scenario.name}.png"))
        summaries.append(summary)
    (out_dir / "summary.json").write_text(json.dumps(summaries, indent=2) + "\n")
    report.table(summaries, console)
    console.print(f"summary: {out_dir / 'summary.json'}; plots: "
                  + ", ".join(Path(s["plot"]).name for s in summaries))
    return 0 if all(s["success"] for s in summaries) else 1


if __name__ == "__main__":
    sys.exit(main())
