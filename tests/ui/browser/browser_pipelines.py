"""Small real pipelines the browser tests record and watch.

- ``mixed``: four nodes, one of each outcome the run page colours: ``prepare`` (ok),
  ``flaky`` (fails its first attempt, then succeeds: retried), ``lookup`` (cached, once
  ``warm`` has run it on the same input in the same store) and ``explode`` (fails, last, so
  the other three have finished when the item fails).
- ``gated``: ``first`` -> ``hold`` -> ``after``; ``hold`` waits on :data:`GATE`, a
  ``threading.Event`` the test opens, and sets :data:`ENTERED` when it starts: the run page
  can be watched while ``hold`` runs, with no sleeps.
- ``echo``: one batched component, for the service page under load.
"""

from __future__ import annotations

import threading

import legato as lg

GATE = threading.Event()
ENTERED = threading.Event()
_attempts: dict[int, int] = {}
_lock = threading.Lock()


def reset() -> None:
    """Close the gate and forget the attempts (each test starts from the same state)."""
    GATE.clear()
    ENTERED.clear()
    with _lock:
        _attempts.clear()


@lg.component
def prepare(x: int) -> int:
    return x + 1


@lg.component(retries=lg.Retry(attempts=2))
def flaky(x: int) -> int:
    with _lock:
        _attempts[x] = _attempts.get(x, 0) + 1
        first = _attempts[x] == 1
    if first:
        raise ConnectionError(f"flaky: attempt 1 on {x} fails")
    return x * 2


@lg.component(cache=True)
def lookup(x: int) -> int:
    return x * 10


@lg.component
def explode(a: int, b: int, c: int) -> int:
    raise ValueError(f"explode: cannot combine {a}, {b} and {c}")


@lg.pipeline
def warm(x: int) -> int:
    return lookup(x)


@lg.pipeline
def mixed(x: int) -> int:
    return explode(prepare(x), flaky(x), lookup(x))


@lg.component
def first(x: int) -> int:
    return x + 1


@lg.component
def hold(x: int) -> int:
    ENTERED.set()
    if not GATE.wait(60):
        raise TimeoutError("the test never opened the gate")
    return x


@lg.component
def after(x: int) -> int:
    return x * 3


@lg.pipeline
def gated(x: int) -> int:
    return after(hold(first(x)))


@lg.component(batch=lg.Batch(max_size=8, max_wait_ms=5))
def shout(texts: list[str]) -> list[str]:
    return [text.upper() for text in texts]


@lg.pipeline
def echo(text: str) -> str:
    return shout(text)


@lg.component(executor="inline", cpus=0)
def stamp(t: float) -> float:
    return t


@lg.pipeline
def ticking(t: float) -> float:
    return stamp(t)
