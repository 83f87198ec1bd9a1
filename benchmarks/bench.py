"""legato's benchmark suite: each workload on legato and on plain-Python baselines, one table.

    python benchmarks/bench.py            # prints the table, writes benchmarks/results/latest.json
    python benchmarks/bench.py --quick    # smaller sizes, for a smoke run

Budgets come from ../shared/DESIGN.md. Every figure is the median of several repetitions, and is
reported beside the same workload run in the same process by the baselines, since ratios hold on
a noisy machine where absolute times do not. This first cut covers B1, B2, B6 and B8 against
plain Python; the resource-packing (B3, STG), batching (B4) and peer (Dask, Ray) rows come with
the scheduler issue.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import legato as lg

HERE = Path(__file__).resolve().parent


@dataclass
class Row:
    id: str
    workload: str
    metric: str
    legato: float
    baselines: dict[str, float]
    budget: float | None
    lower_is_better: bool = True
    meets_budget: bool | None = field(default=None)

    def __post_init__(self) -> None:
        if self.budget is not None:
            ok = self.legato <= self.budget if self.lower_is_better else self.legato >= self.budget
            self.meets_budget = ok


def median_time(fn: Callable[[], Any], repeat: int) -> float:
    fn()  # warm up: traces, checks, starts workers
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


@lg.component(executor="inline")
def noop(i: int) -> int:
    return i


@lg.component(executor="inline")
def count(xs: list[int]) -> int:
    return len(xs)


def b1(n: int, repeat: int) -> Row:
    """B1: n independent no-op nodes (one map node fanning out to n calls)."""

    @lg.pipeline
    def wide() -> int:
        return count(lg.map(noop, list(range(n))))

    legato_s = median_time(wide.run, repeat)

    def sequential() -> None:
        [i for i in range(n)]

    def threadpool() -> None:
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            list(pool.map(lambda i: i, range(n)))

    per = 1e6 / n
    return Row("B1", f"{n} independent no-op nodes", "us_per_node", legato_s * per,
               {"sequential": median_time(sequential, repeat) * per,
                "threadpool": median_time(threadpool, repeat) * per}, 10.0)


def b2(n: int, repeat: int) -> Row:
    """B2: a chain of n dependent no-op nodes."""

    def body() -> int:
        x = noop(0)
        for _ in range(n - 1):
            x = noop(x)
        return x  # type: ignore[no-any-return]

    chain = lg.pipeline(body, name="chain")
    legato_s = median_time(chain.run, repeat)

    def callbacks() -> None:
        """Each hop submitted from the previous one's done-callback (the executor anchor)."""
        pool = concurrent.futures.ThreadPoolExecutor(1)
        finished = concurrent.futures.Future[int]()

        def hop(remaining: int, value: int) -> None:
            if remaining == 0:
                finished.set_result(value)
                return
            pool.submit(lambda: value).add_done_callback(
                lambda f: hop(remaining - 1, f.result()))

        hop(n, 0)
        finished.result()
        pool.shutdown()

    per = 1e6 / n
    return Row("B2", f"chain of {n} dependent no-op nodes", "us_per_hop", legato_s * per,
               {"executor_callbacks": median_time(callbacks, repeat) * per}, 10.0)


B6_SCRIPT = """
import legato as lg
@lg.component(executor="inline")
def a(x: int) -> int:
    return x + 1
@lg.pipeline
def p(x: int) -> int:
    return a(a(a(x)))
assert p.run(x=1) == 4
"""


def _process(args: list[str], repeat: int) -> tuple[float, float]:
    """Median wall seconds and peak RSS (MiB) of running a command."""
    times, peaks = [], []
    for _ in range(repeat):
        start = time.perf_counter()
        proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        _, status, usage = os.wait4(proc.pid, 0)
        times.append(time.perf_counter() - start)
        if os.waitstatus_to_exitcode(status) != 0:
            raise RuntimeError(f"{' '.join(args)} failed: {proc.stderr.read().decode()[-500:]}")
        peaks.append(usage.ru_maxrss / 1024)  # KiB on Linux
    return statistics.median(times), statistics.median(peaks)


def b6(repeat: int) -> list[Row]:
    """B6: a whole process: import, run a 3-node pipeline, exit; and `legato run`."""
    py = sys.executable
    legato_s, legato_mib = _process([py, "-c", B6_SCRIPT], repeat)
    plain_s, plain_mib = _process([py, "-c", "x = 1\nfor _ in range(3): x += 1"], repeat)
    script = HERE / "results" / "b6_pipeline.py"
    script.parent.mkdir(exist_ok=True)
    script.write_text(B6_SCRIPT.replace("assert p.run(x=1) == 4", ""))
    cli_s, _ = _process([py, "-m", "legato.cli", "run", f"{script}:p", "--input", "x=1"], repeat)
    return [
        Row("B6", "process: import, 3-node pipeline, exit", "ms", legato_s * 1000,
            {"plain_python": plain_s * 1000}, 150.0),
        Row("B6-mem", "process: peak RSS", "MiB", legato_mib, {"plain_python": plain_mib}, 60.0),
        Row("B6-cli", "`legato run` from the CLI", "ms", cli_s * 1000, {}, 300.0),
    ]


def b8(n: int) -> Row:
    """B8: map over n small items; Python heap peak, which must stay flat in n."""

    @lg.pipeline
    def one(x: int) -> int:
        return noop(x)

    def peak(items: int) -> float:
        tracemalloc.start()
        for _ in one.map(range(items), window=256):
            pass
        _, top = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        return top / 2**20

    small, large = peak(n // 100), peak(n)
    return Row("B8", f"map over {n} small items: heap peak growth x{n // (n // 100)} items",
               "ratio", large / small, {"heap_peak_MiB_small": small, "heap_peak_MiB_large": large},
               1.5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, few repeats")
    args = parser.parse_args()
    repeat = 3 if args.quick else 7
    rows = [
        b1(2_000 if args.quick else 10_000, repeat),
        b2(200 if args.quick else 1_000, repeat),
        *b6(3 if args.quick else 10),
        b8(20_000 if args.quick else 1_000_000),
    ]
    print(f"{'id':<7} {'workload':<52} {'metric':<12} {'legato':>9} {'budget':>7}  ok   baselines")
    for row in rows:
        base = ", ".join(f"{k} {v:.1f}" for k, v in row.baselines.items())
        ok = {True: "yes", False: "NO", None: "-"}[row.meets_budget]
        budget = "-" if row.budget is None else f"{row.budget:g}"
        print(f"{row.id:<7} {row.workload[:52]:<52} {row.metric:<12} {row.legato:>9.2f} "
              f"{budget:>7}  {ok:<4} {base}")
    out = HERE / "results" / "latest.json"
    out.parent.mkdir(exist_ok=True)
    machine = f"{platform.node()} {platform.machine()} {os.cpu_count()} cpus, Python {platform.python_version()}"
    out.write_text(json.dumps({
        "machine": machine,
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "results": [asdict(row) for row in rows],
    }, indent=2) + "\n")
    print(f"wrote {out.relative_to(HERE.parent)}")


if __name__ == "__main__":
    main()
