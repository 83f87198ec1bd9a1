"""legato's benchmark suite: every workload on legato and on the baselines, one table.

    python benchmarks/run.py              # the full suite (a few minutes)
    python benchmarks/run.py --quick      # smaller sizes, a smoke run
    python benchmarks/run.py --only b3,stg-sim --no-peers
    python benchmarks/run.py --only B7             # legato's Ray backend against Ray
    python benchmarks/run.py --only serving        # B9: HTTP serving, against LitServe, Ray Serve

Prints a Markdown table, writes ``benchmarks/results/latest.json`` and, with ``--readme``, puts
the table in ``benchmarks/README.md``. Budgets come from DESIGN.md ("Performance budgets").
Every system runs in this one session: first legato and the plain-Python and Dask baselines,
then Ray, whose local cluster is started once, after the others, so its daemons do not compete
with them for the CPUs. A peer that is not installed is skipped, with a note.
"""

from __future__ import annotations

import argparse
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import peers  # noqa: E402
import report  # noqa: E402
from measure import cpu_busy  # noqa: E402
from suite import Family, Row, Sample, join  # noqa: E402
from workloads import (  # noqa: E402
    batching,
    control,
    generative,
    latency,
    memory,
    observing,
    on_ray,
    overhead,
    packing,
    process,
    serving,
    streaming,
    ui,
)

FAMILIES: dict[str, Callable[..., Family]] = {
    "process": process.family,  # B6 first: a quiet machine for the start-up times
    "memory": memory.family,  # B8
    "latency": latency.family,  # B0
    "overhead": overhead.family,  # B1, B2
    "batching": batching.family,  # B4
    "streaming": streaming.family,  # B5
    "b3": packing.b3,
    "stg-sim": packing.stg_simulated,
    "stg": packing.stg_real,
    "b10": control.family,  # B10: a fixed-rate control loop against a hand-written one
    "b7": on_ray.family,  # B7: legato's Ray backend against hand-written Ray
    "serving": serving.family,  # B9: HTTP serving against LitServe and Ray Serve
    "generative": generative.family,  # B11: the generative example against the same by hand
    "ui": ui.family,  # B12: the web UI's API over a big store
    "observing": observing.family,  # B13: what metrics, the UI and tracing cost a run
}
SKIPPED_BY_NO_PEERS = (*report.PEERS, "litserve")
OWN_RAY = frozenset({"serving"})  # families whose Ray peer starts its own cluster (Ray Serve's)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, few repeats")
    parser.add_argument("--only", default="", help=f"comma-separated: {', '.join(FAMILIES)}")
    parser.add_argument("--no-peers", action="store_true",
                        help="skip Dask, Ray (and Ray Serve) and LitServe")
    parser.add_argument("--readme", action="store_true",
                        help="write the table into benchmarks/README.md")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "latest.json")
    args = parser.parse_args()
    chosen = [name.strip().lower() for name in args.only.split(",") if name.strip()]
    chosen = chosen or list(FAMILIES)
    unknown = [name for name in chosen if name not in FAMILIES]
    if unknown:
        parser.error(f"unknown families {unknown}; choose from {', '.join(FAMILIES)}")

    start = time.perf_counter()
    measured = report.commit()  # now: a commit made while the suite runs is not what it measured
    families = [FAMILIES[name](quick=args.quick) for name in chosen]
    notes: list[str] = []
    for family in families:
        if args.no_peers:
            family.systems = {} if family.on_ray else {
                k: v for k, v in family.systems.items() if k not in SKIPPED_BY_NO_PEERS}
        notes += [n for n in family.notes if n not in notes]
    if args.no_peers:
        notes.append("dask, ray, litserve: skipped (--no-peers)")

    samples: list[dict[str, Sample]] = [{} for _ in families]
    alone = [name in OWN_RAY for name in chosen]
    for family, found, own in zip(families, samples, alone, strict=True):
        for system, measure in family.systems.items():
            if own or (system != "ray" and not family.on_ray):
                # An OWN_RAY family measures every system in legato's turn; the others' turns
                # only hand over those figures, with nothing to wait for.
                _measure(family, system, measure, found, notes, start,
                         quiet=not own or system == "legato")
    if any(not own and ("ray" in family.systems or (family.on_ray and family.systems))
           for family, own in zip(families, alone, strict=True)):
        _log(start, "starting Ray's local cluster")
        ray_start = time.perf_counter()
        peers.start_ray()
        notes.append(f"ray: local cluster started once, in {time.perf_counter() - ray_start:.1f}"
                     " s (not counted in any figure)")
        try:
            for family, found, own in zip(families, samples, alone, strict=True):
                for system, measure in family.systems.items():
                    if not own and (system == "ray" or family.on_ray):
                        _measure(family, system, measure, found, notes, start)
        finally:
            peers.stop_ray()

    rows: list[Row] = []
    for family, found in zip(families, samples, strict=True):
        rows += join(family, found)
    seconds = time.perf_counter() - start
    print(report.table(rows))
    for note in notes:
        print(f"- {note}")
    report.write_json(args.out, rows, notes=notes, seconds=seconds, waited=WAITED[0],
                      measured=measured)
    print(f"wrote {args.out} ({seconds:.0f} s)")
    if args.readme:
        report.update_readme(HERE / "README.md", rows, notes=notes, seconds=seconds,
                             waited=WAITED[0], measured=measured)
        print(f"updated {HERE / 'README.md'}")


def _measure(family: Family, system: str, measure: Callable[[], Sample],
             found: dict[str, Sample], notes: list[str], start: float, *,
             quiet: bool = True) -> None:
    _log(start, f"{family.name}: {system}")
    busy = _wait_for_quiet(start) if quiet else None
    if busy is not None and busy > QUIET:
        notes.append(f"{family.name}: {system} measured while other processes kept "
                     f"{busy:.0%} of the CPUs busy")
    try:
        found[system] = measure()
    except Exception as exc:  # one system failing must not lose the others' figures
        traceback.print_exc()
        notes.append(f"{family.name}: {system} failed: {type(exc).__name__}: {exc}")


QUIET = 0.2  # the most CPU other processes may use while a figure is taken
PATIENCE = 60.0  # seconds to wait for them to calm down before measuring anyway
WAITED = [0.0]  # seconds spent waiting so far


def _wait_for_quiet(start: float) -> float | None:
    """Wait (up to PATIENCE) until other processes leave the CPUs alone; the last busy level."""
    began = time.perf_counter()
    busy = cpu_busy()
    while busy is not None and busy > QUIET and time.perf_counter() < began + PATIENCE:
        _log(start, f"  other processes use {busy:.0%} of the CPUs; waiting")
        time.sleep(2.0)
        busy = cpu_busy()
    WAITED[0] += time.perf_counter() - began
    return busy


def _log(start: float, what: str) -> None:
    print(f"[{time.perf_counter() - start:6.1f} s] {what}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
