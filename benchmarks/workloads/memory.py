"""B8: ``map`` over 1,000,000 small items, memory flat in the item count.

Each system maps a one-node pipeline (``x + 1``) over 10,000 items in one fresh process and
over 1,000,000 in another; the figure is the ratio of the two processes' peak RSS (1.0: flat).
"Flat" is read as: the 1M-item process peaks within 10 % of the 10k-item one. The time per item
at 1M is reported too (``B8-time``). Baselines: a Python loop (flat by construction),
``ThreadPoolExecutor.map`` (submits every item up front) and a Dask bag of 100 partitions
counted without keeping results. Ray is not run here: a million tasks take about 8 minutes on
this machine at its measured ~0.5 ms per task.
"""

from __future__ import annotations

import sys

from measure import run_process
from peers import installed, missing_note
from suite import Family, RowSpec, Sample

LEGATO = """
import sys, time
import legato as lg
@lg.component(executor="inline", cpus=0)
def inc(x: int) -> int:
    return x + 1
@lg.pipeline
def one(x: int) -> int:
    return inc(x)
n = int(sys.argv[1])
start = time.perf_counter()
count = sum(1 for _ in one.map(range(n), window=256))
assert count == n
print(time.perf_counter() - start)
"""

PLAIN = """
import sys, time
def inc(x):
    return x + 1
n = int(sys.argv[1])
start = time.perf_counter()
count = sum(1 for _ in map(inc, range(n)))
assert count == n
print(time.perf_counter() - start)
"""

THREADPOOL = """
import sys, time
from concurrent.futures import ThreadPoolExecutor
def inc(x):
    return x + 1
n = int(sys.argv[1])
start = time.perf_counter()
with ThreadPoolExecutor(4) as pool:
    count = sum(1 for _ in pool.map(inc, range(n)))
assert count == n
print(time.perf_counter() - start)
"""

DASK = """
import sys, time
import dask.bag
def inc(x):
    return x + 1
n = int(sys.argv[1])
start = time.perf_counter()
count = dask.bag.from_sequence(range(n), npartitions=100).map(inc).count().compute(
    scheduler="threads")
assert count == n
print(time.perf_counter() - start)
"""


def family(*, quick: bool) -> Family:
    small, large = (10_000, 100_000) if quick else (10_000, 1_000_000)
    rows = [
        RowSpec("B8", f"map over {large:,} small items: peak RSS / peak RSS at {small:,}",
                "ratio", 1.10),
        RowSpec("B8-time", f"map over {large:,} small items: time per item", "us_per_item",
                None),
    ]

    def measure(script: str) -> Sample:
        runs = [run_process([sys.executable, "-c", script, str(n)]) for n in (small, large)]
        seconds = float(runs[1].stdout.split()[-1])
        notes = {"B8": f"{runs[0].peak_mib:.0f} -> {runs[1].peak_mib:.0f} MiB"}
        return Sample({"B8": runs[1].peak_mib / runs[0].peak_mib,
                       "B8-time": seconds * 1e6 / large}, notes)

    systems = {"legato": lambda: measure(LEGATO), "sequential": lambda: measure(PLAIN),
               "threadpool": lambda: measure(THREADPOOL)}
    notes = []
    if installed("dask"):
        systems["dask"] = lambda: measure(DASK)
    else:
        notes.append(missing_note("dask"))
    notes.append("ray: not run for B8 (a million Ray tasks take about 8 minutes here)")
    return Family("B8: memory flat in the item count", rows, systems, notes)
