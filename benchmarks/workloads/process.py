"""B6: a whole process (start Python, import, run a 3-node pipeline, exit), and its peak RSS;
and start-up alone: ``import legato`` and ``legato --version``.

Each system runs the same three-step chain in a fresh interpreter: legato
(``three_nodes.py``, and ``legato run`` from the CLI), plain Python, Dask (``delayed`` on the
threaded scheduler) and Ray (``ray.init`` of a new local cluster, three tasks, shutdown). The
figure is the median wall time from spawn to exit; the peak RSS is the process's own.

- B6-import: ``python -c "import legato"`` over ``python -c pass``, the same interpreter, the two
  taking turns (budget: at most 4x). Whatever that interpreter loads at every start (a ``.pth``
  file's imports) is in both.
- B6-version: ``legato --version`` (the console script beside the interpreter; ``python -m
  legato.cli --version`` where there is none), spawn to exit (budget 150 ms).

Every child runs with the bytecode cache on, after an untimed run that fills it (see
:mod:`measure`).
"""

from __future__ import annotations

import sys
from pathlib import Path

from measure import process_median, start_times
from peers import add_peers
from suite import Family, RowSpec, Sample

PIPELINE = Path(__file__).with_name("three_nodes.py")

PLAIN = """
def step(x):
    return x + 1
assert step(step(step(1))) == 4
"""

DASK = """
import dask
@dask.delayed
def step(x):
    return x + 1
assert step(step(step(1))).compute(scheduler="threads") == 4
"""

RAY = """
import ray
ray.init(address="local", include_dashboard=False, log_to_driver=False, logging_level="ERROR")
@ray.remote
def step(x):
    return x + 1
assert ray.get(step.remote(step.remote(step.remote(1)))) == 4
ray.shutdown()
"""


def family(*, quick: bool) -> Family:
    repeat = 3 if quick else 10
    rows = [
        RowSpec("B6", "process: import, run a 3-node pipeline, exit", "ms", 150.0),
        RowSpec("B6-mem", "B6: peak RSS of that process", "MiB", 60.0),
        RowSpec("B6-cli", "B6 through `legato run` (python -m legato.cli)", "ms", 300.0),
        RowSpec("B6-import", "start-up: `import legato` over `python -c pass`", "ratio", 4.0),
        RowSpec("B6-version", "start-up: `legato --version`, spawn to exit", "ms", 150.0),
    ]
    starts = 10 if quick else 30  # rounds of the start-up commands (each some 10-100 ms)

    def sample(script: str, runs: int) -> Sample:
        seconds, mib = process_median([sys.executable, "-c", script], repeat=runs)
        return Sample({"B6": seconds * 1000, "B6-mem": mib})

    def legato() -> Sample:
        script = Path(sys.executable).with_name("legato")
        version = ([str(script), "--version"] if script.exists()
                   else [sys.executable, "-m", "legato.cli", "--version"])
        bare, imported, answered = start_times(
            [[sys.executable, "-c", "pass"], [sys.executable, "-c", "import legato"], version],
            repeat=starts)
        seconds, mib = process_median([sys.executable, str(PIPELINE)], repeat=repeat)
        cli, _ = process_median([sys.executable, "-m", "legato.cli", "run",
                                 f"{PIPELINE}:chain", "--input", "x=1"], repeat=repeat)
        return Sample(
            {"B6": seconds * 1000, "B6-mem": mib, "B6-cli": cli * 1000,
             "B6-import": imported / bare, "B6-version": answered * 1000},
            notes={"B6-import": f"import legato {imported * 1000:.1f} ms, python -c pass "
                                f"{bare * 1000:.1f} ms: legato adds "
                                f"{(imported - bare) * 1000:.1f} ms",
                   "B6-version": "the console script" if script.exists()
                   else "python -m legato.cli (no console script beside the interpreter)"})

    systems = {"legato": legato, "sequential": lambda: sample(PLAIN, repeat)}
    notes = add_peers(systems, (("dask", lambda: sample(DASK, repeat)),
                                ("ray", lambda: sample(RAY, 2))))
    return Family("B6: whole process", rows, systems, notes)
