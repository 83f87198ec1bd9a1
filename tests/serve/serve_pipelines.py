"""Pipelines the serve tests serve: typed, uploads, batched, failing, gated.

Gates make the tests deterministic without sleeping: ``GATE`` (a threading.Event) holds the
in-process gated component until the test opens it, and ``ENTERED`` says a call has started.
``file_gated`` does the same for a server in a subprocess, with files: it writes
``$LEGATO_TEST_GATE/entered`` and waits for ``$LEGATO_TEST_GATE/open``.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import legato as lg

# -- typed round trip --------------------------------------------------------------------------


class Greeting(NamedTuple):
    total: int
    shout: str


@lg.component(executor="inline")
def add(a: int, b: int = 2) -> int:
    return a + b


@lg.component(executor="inline")
def shout(text: str) -> str:
    return text.upper() + "!"


@lg.pipeline
def greet(a: int, text: str, b: int = 2) -> Greeting:
    """Adds two numbers and shouts a text."""
    return Greeting(total=add(a, b), shout=shout(text))


@lg.component(executor="inline")
def scale(values: list[float], factor: float = 1.0) -> list[float]:
    return [v * factor for v in values]


@lg.pipeline
def scaled(values: list[float], factor: float = 1.0) -> list[float]:
    return scale(values, factor)


# -- uploads -----------------------------------------------------------------------------------


@lg.component(executor="inline")
def measure(data: bytes) -> int:
    return len(data)


@lg.component(executor="inline")
def first_line(path: Path) -> str:
    lines = path.read_text(errors="replace").splitlines()
    return lines[0] if lines else ""


@lg.pipeline
def upload(data: bytes, document: Path, label: str = "x") -> dict[str, object]:
    return {"size": measure(data), "line": first_line(document), "label": shout(label)}


# -- batching ----------------------------------------------------------------------------------

BATCHES: list[int] = []


@lg.component(batch=lg.Batch(max_size=8, max_wait_ms=30_000))
def double(x: list[int]) -> list[int]:
    BATCHES.append(len(x))
    return [2 * v for v in x]


@lg.pipeline
def doubled(x: int) -> int:
    return double(x)


# -- failures ----------------------------------------------------------------------------------


@lg.component
def explode(x: int) -> int:
    raise ValueError(f"cannot take {x}")


@lg.pipeline
def failing(x: int) -> int:
    return explode(x)


# -- gated: holds the only "slot" until the test opens GATE -----------------------------------

GATE = threading.Event()
ENTERED = threading.Event()
STARTED: list[int] = []


@lg.component(resources={"slot": 1}, cpus=0)
def hold(x: int) -> int:
    STARTED.append(x)
    ENTERED.set()
    if not GATE.wait(60):
        raise TimeoutError("the test never opened the gate")
    return x


@lg.pipeline
def gated(x: int) -> int:
    return hold(x)


def reset_gate() -> None:
    GATE.clear()
    ENTERED.clear()
    STARTED.clear()


# -- gated by files, for a server in a subprocess --------------------------------------------


@lg.component(cpus=0)
def wait_for_file(x: int) -> int:
    where = Path(os.environ["LEGATO_TEST_GATE"])
    (where / "entered").write_text(str(x))
    for _ in range(6000):  # at most 60 s: the test opens it long before
        if (where / "open").exists():
            return x + 1
        time.sleep(0.01)
    raise TimeoutError("the test never opened the gate")


@lg.pipeline
def file_gated(x: int) -> int:
    return wait_for_file(x)


# -- load --------------------------------------------------------------------------------------


@lg.component(batch=lg.Batch(max_size=32, max_wait_ms=2))
def echo_many(text: list[str]) -> list[str]:
    return [t[::-1] for t in text]


@lg.pipeline
def echoed(text: str) -> str:
    return echo_many(text)


# -- streaming: a generator component between batched stages ----------------------------------

SPOKEN = threading.Event()  # set by the test: the generator's last chunk may go


@lg.component(batch=lg.Batch(max_size=4, max_wait_ms=5))
def normalise(text: list[str]) -> list[str]:
    return [t.strip().lower() for t in text]


@lg.component(cpus=0)
def speak(text: str) -> Iterator[str]:
    words = text.split()
    for i, word in enumerate(words):
        if i == len(words) - 1 and not SPOKEN.wait(60):  # the test sees the others first
            raise TimeoutError("the test never let the last word go")
        yield word


@lg.component(executor="inline")
def count_words(words: list[str]) -> int:
    return len(words)


@lg.pipeline
def talk(text: str) -> dict[str, object]:
    words = speak(normalise(text))
    return {"words": words, "count": count_words(words)}


# -- a model that takes time to load: /readyz waits for it -------------------------------------

LOADING = threading.Event()  # set by the test: the model may finish loading
LOADED: list[int] = []


@lg.component(executor="inline", cpus=0)
class SlowModel:
    def __init__(self) -> None:
        if not LOADING.wait(60):
            raise TimeoutError("the test never let the model load")
        LOADED.append(1)

    def __call__(self, x: int) -> int:
        return x + len(LOADED)


@lg.pipeline
def slow_start(x: int) -> int:
    return SlowModel()(x)
