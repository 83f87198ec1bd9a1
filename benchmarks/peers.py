"""The peer systems (Dask, Ray): found if installed, skipped with a note if not.

Install them with ``pip install -e '.[bench]'``. Ray's local cluster is started once for the
whole suite (it takes seconds) and only after every other system has been measured, so its
daemons do not take CPU from the others' runs.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

RAY_SLOTS = 16
"""The custom resource ``slot`` the Ray cluster declares; a task asking ``RAY_SLOTS / P`` of it
runs at most P at a time (how the packing workloads give Ray exactly P slots)."""


def installed(name: str) -> bool:
    return importlib.util.find_spec(name) is not None


def missing_note(name: str) -> str:
    return (f"{name} is not installed: its column is skipped "
            "(install the peers with pip install -e '.[bench]')")


def add_peers(systems: dict[str, Any], peers: Iterable[tuple[str, Any]]) -> list[str]:
    """Add each installed peer's measure to ``systems``; the notes for those not installed."""
    notes = []
    for name, measure in peers:
        if installed(name):
            systems[name] = measure
        else:
            notes.append(missing_note(name))
    return notes


def start_ray() -> None:
    """Start a local Ray cluster in this process: a ``slot`` resource for the packing
    workloads, a small object store, no dashboard; then start one worker per slot and keep
    them, so the packing figures measure Ray's scheduling, not its worker start-up (by default
    Ray keeps one worker per CPU and kills the others after a second idle)."""
    # Ray's workers inherit the environment of the daemons started here: they import the
    # workload modules (for the functions they run) from this directory.
    here = str(Path(__file__).resolve().parent)
    os.environ["PYTHONPATH"] = os.pathsep.join(
        p for p in (here, os.environ.get("PYTHONPATH", "")) if p)
    import ray

    ray.init(
        address="local",
        num_cpus=os.cpu_count() or 1,
        resources={"slot": RAY_SLOTS},
        object_store_memory=256 * 2**20,
        include_dashboard=False,
        log_to_driver=False,
        logging_level=logging.ERROR,
        _system_config={"num_workers_soft_limit": RAY_SLOTS,
                        "idle_worker_killing_time_threshold_ms": 3_600_000},
    )
    hold = ray.remote(num_cpus=0)(_hold).options(resources={"slot": 1})
    ray.get([hold.remote(0.5) for _ in range(RAY_SLOTS)])


def _hold(seconds: float) -> None:
    time.sleep(seconds)


def stop_ray() -> None:
    import ray

    ray.shutdown()
