"""Pipelines the UI tests record and watch: ``scored`` (some items fail for good, some attempts
are retried) and ``waiting`` (its ``hold`` step waits on :data:`GATE`, which the test opens)."""

from __future__ import annotations

import threading

import legato as lg

GATE = threading.Event()
_SEEN: set[int] = set()
_LOCK = threading.Lock()


def reset() -> None:
    """Before a test: the gate shut, every value's first attempt to fail again."""
    GATE.clear()
    with _LOCK:
        _SEEN.clear()


@lg.component(executor="thread", cpus=0)
def double(x: int) -> int:
    return 2 * x


@lg.component(executor="thread", cpus=0, retries=1)
def wobbly(y: int) -> int:
    with _LOCK:
        first = y % 4 == 0 and y not in _SEEN
        _SEEN.add(y)
    if first:
        raise RuntimeError(f"flaked on {y}")  # marker: flake
    return y


@lg.component(executor="thread", cpus=0)
def check(y: int) -> int:
    if y % 10 == 0 and y > 0:
        raise ValueError(f"bad value {y}")  # marker: raise
    return y


@lg.pipeline
def scored(x: int) -> int:
    return check(wobbly(double(x)))


@lg.component(executor="thread", cpus=0)
def hold(y: int) -> int:
    if not GATE.wait(30):
        raise TimeoutError("the test never opened the gate")
    return y


@lg.pipeline
def waiting(x: int) -> int:
    return hold(double(x))


@lg.pipeline
def doubled(x: int) -> int:
    return double(x)


@lg.component(executor="thread", cpus=0, batch=lg.Batch(max_size=5, max_wait_ms=60_000))
def upper(texts: list[str]) -> list[str]:
    return [text.upper() for text in texts]


@lg.pipeline
def shout(words: list[str]) -> list[str]:
    return lg.map(upper, words)
