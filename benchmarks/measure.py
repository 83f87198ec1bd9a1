"""How figures are taken: medians of repeated timings, and whole child processes.

Child processes run with Python's bytecode cache on (``PYTHONDONTWRITEBYTECODE`` removed from
their environment, which these machines set) and after one untimed run that fills it: a start-up
figure then measures importing, not compiling.
"""

from __future__ import annotations

import functools
import os
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any


def median_time(fn: Callable[[], Any], *, repeat: int, warmup: int = 1) -> float:
    """Median wall seconds of ``fn()`` over ``repeat`` calls, after ``warmup`` untimed ones."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


@dataclass(frozen=True)
class ProcessRun:
    """A child process: wall seconds from spawn to exit, its own peak RSS, what it printed."""

    seconds: float
    peak_mib: float
    stdout: str


# Runs a Python command line (``-c CODE ...``, ``-m MODULE ...`` or ``PATH ...``) and, at exit,
# writes the process's own peak RSS (VmHWM, KiB) to the file named by $BENCH_PEAK_FILE.
_PEAK = """
import atexit, os, runpy, sys
def _peak():
    with open("/proc/self/status") as status:
        kib = next(line.split()[1] for line in status if line.startswith("VmHWM:"))
    with open(os.environ["BENCH_PEAK_FILE"], "w") as out:
        out.write(kib)
atexit.register(_peak)
mode, target, rest = sys.argv[1], sys.argv[2], sys.argv[3:]
if mode == "-c":
    sys.argv = ["-c", *rest]
    exec(compile(target, "<string>", "exec"), {"__name__": "__main__"})
elif mode == "-m":
    sys.argv = [target, *rest]
    runpy.run_module(target, run_name="__main__", alter_sys=True)
else:
    sys.argv = [target, *rest]
    runpy.run_path(target, run_name="__main__")
"""


def child_env() -> dict[str, str]:
    """The environment of timed children: this process's, with the bytecode cache on."""
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def run_process(args: Sequence[str]) -> ProcessRun:
    """Run a Python command (``[python, ...]``) to its end; raise with the end of its stderr if
    it fails.

    The peak RSS is the process's own high-water mark, VmHWM, which the process reports as it
    exits. Not ``wait4``'s ``ru_maxrss``: Linux carries the parent's peak into a child at
    ``exec``, so every child of a large benchmark runner would read as large as the runner.
    """
    python, *command = args
    if command[0] not in ("-c", "-m"):
        command = ["path", *command]
    with (tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err,
          tempfile.NamedTemporaryFile("r") as peak):
        start = time.perf_counter()
        proc = subprocess.Popen([python, "-c", _PEAK, *command], stdout=out, stderr=err,
                                env={**child_env(), "BENCH_PEAK_FILE": peak.name})
        proc.wait()
        seconds = time.perf_counter() - start
        out.seek(0)
        err.seek(0)
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} exited {proc.returncode}: "
                               f"{err.read().decode(errors='replace')[-800:]}")
        return ProcessRun(seconds, int(peak.read() or 0) / 1024, out.read().decode())


def process_median(args: Sequence[str], *, repeat: int, warmup: int = 1) -> tuple[float, float]:
    """Median wall seconds and median peak RSS (MiB) of ``repeat`` runs of a command, after
    ``warmup`` untimed ones (the first fills the bytecode cache)."""
    for _ in range(warmup):
        run_process(args)
    runs = [run_process(args) for _ in range(repeat)]
    return (statistics.median(r.seconds for r in runs),
            statistics.median(r.peak_mib for r in runs))


def start_times(commands: Sequence[Sequence[str]], *, repeat: int) -> list[float]:
    """Median wall seconds, spawn to exit, of each command (run bare: no peak-RSS wrapper, output
    discarded), after one untimed run of each. The commands take turns, ``repeat`` rounds, so
    the machine's load drifts over all of them alike; a ratio of two is a same-run ratio."""
    env = child_env()

    def once(command: Sequence[str]) -> float:
        start = time.perf_counter()
        done = subprocess.run(command, env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, check=False)
        seconds = time.perf_counter() - start
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} exited {done.returncode}: "
                               f"{done.stderr.decode(errors='replace')[-800:]}")
        return seconds

    for command in commands:
        once(command)
    rounds = [[once(command) for command in commands] for _ in range(repeat)]
    return [statistics.median(times) for times in zip(*rounds, strict=True)]


@functools.cache
def sleep_slack() -> float:
    """How much longer than asked ``time.sleep`` sleeps here (median over 1 ms sleeps).

    Workloads made of sleeps subtract it, so a task lasts its nominal time on average on every
    system alike; without it a 1 ms task takes 1.05-1.1 ms on a VM and no system could come
    within 1 % of an optimum counted in milliseconds.
    """
    overshoots = []
    for _ in range(50):
        start = time.perf_counter()
        time.sleep(0.001)
        overshoots.append(time.perf_counter() - start - 0.001)
    return max(0.0, statistics.median(overshoots))


def cpu_busy(interval: float = 0.25) -> float | None:
    """The fraction of all CPUs busy over ``interval`` seconds while this process waits: what
    other processes take from a measurement (None where /proc/stat is missing)."""

    def ticks() -> tuple[int, int]:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
        return sum(fields), idle

    try:
        total0, idle0 = ticks()
        time.sleep(interval)
        total1, idle1 = ticks()
    except (OSError, ValueError, IndexError):
        return None
    return 1.0 - (idle1 - idle0) / max(1, total1 - total0)


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0..100) by nearest rank."""
    ordered = sorted(values)
    index = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]
