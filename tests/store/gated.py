"""A pipeline for the resume tests of the store (loaded by path by ``legato map``/``resume``).

``square`` logs each call to ``<workdir>/calls.log``. While the file ``<workdir>/fail`` exists,
items numbered 2 and up fail (a first run leaves failed items to resume); otherwise they wait
until ``<workdir>/open`` exists, so a resuming process holds its run until the test opens the
gate: no timing is guessed.
"""

from __future__ import annotations

import time
from pathlib import Path

import legato as lg


@lg.component(cpus=0)
def square(x: int, workdir: str) -> int:
    with Path(workdir, "calls.log").open("a") as log:
        log.write(f"{x}\n")
    if x >= 2:
        if Path(workdir, "fail").exists():
            raise ValueError(f"item {x} fails while {workdir}/fail exists")
        while not Path(workdir, "open").exists():
            time.sleep(0.01)  # the gate: shut until the test opens it
    return x * x


@lg.pipeline
def gated(x: int, workdir: str) -> int:
    return square(x, workdir)
