"""B5: a stream through three in-process stages: items/s from an unbounded fast source, and the
p99 latency each stage adds, beside a hand-written pipeline of threads and queues and dora-rs.

The stages do nothing but stamp the item: each appends ``time.monotonic()`` when it starts, so
an item ends as ``(emitted, stage1, stage2, stage3)`` and the consumer adds when it got it.

- **Throughput** (``B5``, ``B5-rate``): ``pipeline.stream(range(n))``, the stages ``inline``
  (on the engine's loop) and, for comparison, ``thread``; every result read. The budget's
  baseline is the pipeline one would write by hand: three threads joined by
  ``queue.Queue(maxsize=256)`` (bounded like the stream's window), fed by a source thread, read
  by the main thread. ``hand_simplequeue`` is the same with unbounded ``SimpleQueue`` s: no
  backpressure, and no locks in Python, so under the GIL each thread drains its whole queue in
  one time slice; it shows the ceiling of moving a Python object between threads, not a
  pipeline one would run. ``B5`` is legato's items/s over ``hand_queues``' in the same process.
- **Latency** (``B5-p99``): the source emits 1,000 items/s (paced, well within every system's
  rate); what stage k adds is its start stamp less stage k-1's (the emission for stage 1): the
  time from one stage starting to the next one starting, the engine's hand-off included. The
  row is the worst stage's p99; ``B5-e2e`` is the p99 from emission to the consumer.
- **dora-rs**: the same three stages as Python nodes of a dora dataflow (``dora run``, its
  daemon and coordinator on this machine), a source node and a sink node; inputs' queues large
  enough to keep every item in the throughput run (dora drops the oldest past ``queue_size``).
  Its nodes are processes: every hop crosses a process boundary through dora's shared memory.
  Found as the ``dora`` command (``pip install dora-rs dora-rs-cli``; ``LEGATO_BENCH_DORA``
  names it when it is not on the PATH); skipped with a note when missing.
"""

from __future__ import annotations

import os
import queue
import re
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from measure import percentile
from suite import Family, RowSpec, Sample

import legato as lg
from legato.backends.local import LocalBackend

WINDOW = 256
PACED_HZ = 1000.0


def _stage(trail: Any) -> Any:
    return (*trail, time.monotonic())


def _pipeline(executor: str) -> lg.Pipeline:
    s1 = lg.component(executor=executor, cpus=0, name="s1")(_stage)
    s2 = lg.component(executor=executor, cpus=0, name="s2")(_stage)
    s3 = lg.component(executor=executor, cpus=0, name="s3")(_stage)

    @lg.pipeline(name=f"b5_{executor}")
    def b5(trail: Any) -> Any:
        return s3(s2(s1(trail)))

    return b5


def fast(count: int) -> Iterator[tuple[float]]:
    """An unbounded-rate source: each item emitted as soon as it is asked for."""
    for _ in range(count):
        yield (time.monotonic(),)


def paced(count: int, hz: float = PACED_HZ) -> Iterator[tuple[float]]:
    """``count`` items at ``hz``, each stamped when emitted."""
    start = time.monotonic()
    for k in range(count):
        due = start + k / hz
        while (now := time.monotonic()) < due:
            time.sleep(min(due - now, 0.0005))
        yield (time.monotonic(),)


def latencies(trails: list[tuple[float, ...]]) -> dict[str, float]:
    """p99 of what each stage added, the worst of them, and end to end (microseconds); each
    trail is (emitted, s1, s2, s3, received)."""
    hops = {f"s{k}": percentile([t[k] - t[k - 1] for t in trails], 99) * 1e6
            for k in (1, 2, 3)}
    return {"B5-p99": max(hops.values()),
            "B5-e2e": percentile([t[-1] - t[0] for t in trails], 99) * 1e6,
            **{f"hop-{k}": v for k, v in hops.items()}}


# -- legato -------------------------------------------------------------------------------------


def legato_rate(pipe: lg.Pipeline, engine: lg.Engine, count: int) -> float:
    start = time.perf_counter()
    done = sum(1 for _ in pipe.stream(fast(count), engine=engine, window=WINDOW))
    return done / (time.perf_counter() - start)


def legato_trails(pipe: lg.Pipeline, engine: lg.Engine, count: int) -> list[tuple[float, ...]]:
    return [(*trail, time.monotonic()) for trail in pipe.stream(paced(count), engine=engine)]


# -- by hand: threads and queues ----------------------------------------------------------------


def hand(source: Iterator[tuple[float]], make: Callable[[], Any]) -> list[tuple[float, ...]]:
    """Three stage threads between queues made by ``make``; the source on a thread of its own;
    results read here. Returns every item's trail (with its receive time)."""
    queues = [make() for _ in range(4)]

    def stage(inbox: Any, outbox: Any) -> None:
        while (trail := inbox.get()) is not None:
            outbox.put(_stage(trail))
        outbox.put(None)

    def feed() -> None:
        for trail in source:
            queues[0].put(trail)
        queues[0].put(None)

    threads = [threading.Thread(target=stage, args=(queues[k], queues[k + 1]), daemon=True)
               for k in range(3)]
    threads.append(threading.Thread(target=feed, daemon=True))
    for thread in threads:
        thread.start()
    out = queues[3]
    trails = []
    while (trail := out.get()) is not None:
        trails.append((*trail, time.monotonic()))
    for thread in threads:
        thread.join()
    return trails


def hand_rate(count: int, make: Callable[[], Any]) -> float:
    start = time.perf_counter()
    done = len(hand(fast(count), make))
    return done / (time.perf_counter() - start)


def bounded() -> queue.Queue[Any]:
    return queue.Queue(maxsize=WINDOW)


# -- dora-rs ------------------------------------------------------------------------------------

_SOURCE = """
import sys, time
import pyarrow as pa
from dora import Node
count, hz = int(sys.argv[1]), float(sys.argv[2])
node = Node()
time.sleep(1.0)  # every other node started and listening (dora has no readiness barrier)
start = time.monotonic()
for k in range(count):
    if hz > 0:
        due = start + k / hz
        while (now := time.monotonic()) < due:
            time.sleep(min(due - now, 0.0005))
    node.send_output("x", pa.array([time.monotonic()]))
"""

_STAGE = """
import time
import pyarrow as pa
from dora import Node
node = Node()
for event in node:
    if event["type"] == "INPUT":
        node.send_output("x", pa.array(event["value"].to_pylist() + [time.monotonic()]))
"""

_SINK = """
import json, sys, time
from dora import Node
count, out = int(sys.argv[1]), sys.argv[2]
node = Node()
trails = []
for event in node:
    if event["type"] == "INPUT":
        trails.append(event["value"].to_pylist() + [time.monotonic()])
        if len(trails) == count:
            break
with open(out, "w") as f:
    json.dump(trails, f)
"""

_FLOW = """nodes:
  - id: source
    path: source.py
    args: {count} {hz}
    outputs: [x]
  - id: s1
    path: stage.py
    inputs: {{x: {{source: source/x, queue_size: {depth}}}}}
    outputs: [x]
  - id: s2
    path: stage.py
    inputs: {{x: {{source: s1/x, queue_size: {depth}}}}}
    outputs: [x]
  - id: s3
    path: stage.py
    inputs: {{x: {{source: s2/x, queue_size: {depth}}}}}
    outputs: [x]
  - id: sink
    path: sink.py
    args: {count} {out}
    inputs: {{x: {{source: s3/x, queue_size: {depth}}}}}
"""


def dora_command() -> str | None:
    return os.environ.get("LEGATO_BENCH_DORA") or shutil.which("dora")


def dora_run(count: int, hz: float) -> tuple[list[list[float]], float]:
    """Run the dataflow once; every trail the sink got, and the wall seconds of ``dora run``."""
    import json

    dora = dora_command()
    assert dora is not None
    with tempfile.TemporaryDirectory() as folder:
        where = Path(folder)
        for name, code in (("source.py", _SOURCE), ("stage.py", _STAGE), ("sink.py", _SINK)):
            (where / name).write_text(code)
        out = where / "trails.json"
        (where / "flow.yml").write_text(_FLOW.format(count=count, hz=hz, out=out,
                                                     depth=max(count, 10)))
        env = {**os.environ, "PATH": f"{Path(dora).parent}{os.pathsep}{os.environ['PATH']}"}
        home = Path(dora).resolve().parent.parent
        if (home / "pyvenv.cfg").exists():  # its nodes run on the Python that has dora-rs
            env["VIRTUAL_ENV"] = str(home)
        start = time.perf_counter()
        done = subprocess.run([dora, "run", "flow.yml"], cwd=where, env=env, timeout=300,
                              capture_output=True, text=True, check=False)
        seconds = time.perf_counter() - start
        if done.returncode != 0 or not out.exists():
            tail = re.sub(r"\x1b\[[0-9;]*m", "", done.stdout + done.stderr)[-600:]
            raise RuntimeError(f"dora run exited {done.returncode}: {tail}")
        return json.loads(out.read_text()), seconds


# -- the family ---------------------------------------------------------------------------------


def family(*, quick: bool) -> Family:
    count = 5_000 if quick else 20_000
    spaced = 500 if quick else 2_000
    rows = [
        RowSpec("B5", "stream through 3 in-process stages, unbounded source: legato's items/s "
                "over the hand-written queue pipeline's", "ratio", 0.5, lower_is_better=False),
        RowSpec("B5-rate", f"B5: items/s, {count:,} items, inline stages", "items_per_s", None,
                lower_is_better=False),
        RowSpec("B5-thread", "B5 with thread stages: items/s", "items_per_s", None,
                lower_is_better=False),
        RowSpec("B5-p99", f"B5 paced at {PACED_HZ:,.0f} items/s: p99 latency the worst stage "
                "adds", "us", 200.0),
        RowSpec("B5-thread-p99", "B5-p99 with thread stages", "us", None),
        RowSpec("B5-e2e", "B5 paced: p99 from emission to the consumer", "us", None),
    ]

    def legato() -> Sample:
        inline, threaded = _pipeline("inline"), _pipeline("thread")
        with lg.Engine(LocalBackend()) as engine:
            for pipe in (inline, threaded):
                list(pipe.stream(fast(500), engine=engine))  # warm-up
            rate = legato_rate(inline, engine, count)
            by_hand = hand_rate(count, bounded)  # the budget's baseline, in this same moment
            thread_rate = legato_rate(threaded, engine, count)
            paced_inline = latencies(legato_trails(inline, engine, spaced))
            paced_thread = latencies(legato_trails(threaded, engine, spaced))
        hops = ", ".join(f"{k[4:]} {v:.0f}" for k, v in paced_inline.items()
                         if k.startswith("hop-"))
        return Sample({"B5": rate / by_hand, "B5-rate": rate, "B5-thread": thread_rate,
                       "B5-p99": paced_inline["B5-p99"], "B5-e2e": paced_inline["B5-e2e"],
                       "B5-thread-p99": paced_thread["B5-p99"]},
                      notes={"B5": f"legato {rate:,.0f} items/s, hand-written queues "
                             f"{by_hand:,.0f} items/s in the same run",
                             "B5-p99": f"p99 per stage (us): {hops}"})

    def hand_queues() -> Sample:
        hand_rate(500, bounded)
        found = latencies(hand(paced(spaced), bounded))
        return Sample({"B5-rate": hand_rate(count, bounded), "B5-p99": found["B5-p99"],
                       "B5-e2e": found["B5-e2e"]})

    def hand_simplequeue() -> Sample:
        hand_rate(500, queue.SimpleQueue)
        found = latencies(hand(paced(spaced), queue.SimpleQueue))
        return Sample({"B5-rate": hand_rate(count, queue.SimpleQueue),
                       "B5-p99": found["B5-p99"], "B5-e2e": found["B5-e2e"]})

    def dora() -> Sample:
        trails, _ = dora_run(count, 0.0)
        got = len(trails)
        rate = got / (max(t[-1] for t in trails) - min(t[0] for t in trails))
        spaced_trails, _ = dora_run(spaced, PACED_HZ)
        found = latencies([tuple(t) for t in spaced_trails])
        notes = {"B5-rate": f"{got:,} of {count:,} items arrived"} if got < count else {}
        return Sample({"B5-rate": rate, "B5-p99": found["B5-p99"], "B5-e2e": found["B5-e2e"]},
                      notes=notes)

    systems: dict[str, Callable[[], Sample]] = {
        "legato": legato, "hand_queues": hand_queues, "hand_simplequeue": hand_simplequeue}
    notes = []
    if dora_command() is not None:
        systems["dora"] = dora
    else:
        notes.append("dora-rs is not installed: its column in B5 is skipped (pip install "
                     "dora-rs dora-rs-cli, or LEGATO_BENCH_DORA=path/to/dora)")
    return Family("B5: streams", rows, systems, notes)
