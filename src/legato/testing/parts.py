"""The components the backend contract (:mod:`legato.testing.contract`) runs.

Defined at a module's top level, so that a backend running calls in other processes can import
them by name (``legato.testing.parts``). Each is small and does one thing the contract checks.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from legato.component import component
from legato.options import Batch
from legato.pipeline import Pipeline, pipeline


@component
def double(x: int) -> int:
    """Twice ``x``."""
    return 2 * x


@component
def echo(value: Any) -> Any:
    """``value`` as it came."""
    return value


@dataclass(frozen=True)
class Sample:
    """A user's own class of value, to round trip."""

    name: str
    scores: tuple[float, ...]


class Parts(NamedTuple):
    """Several named outputs."""

    total: int
    label: str


@component
def parts(x: int) -> Parts:
    """``x + 1`` and a label, as two outputs."""
    return Parts(total=x + 1, label=f"n{x}")


@component
def fails(x: int) -> int:
    """Always raises."""
    raise ValueError(f"bad input {x}")


@component(retries=2)
def fails_twice(counter: str) -> int:
    """Raises on its first two attempts (counted in the file ``counter``), then returns 7."""
    path = Path(counter)
    seen = int(path.read_text()) if path.exists() else 0
    path.write_text(str(seen + 1))
    if seen < 2:
        raise ConnectionError(f"attempt {seen + 1} refused")
    return 7


@component(timeout=0.5)
def naps(seconds: float) -> float:
    """Sleeps ``seconds`` (a simulated backend takes them as the call's duration)."""
    time.sleep(seconds)
    return seconds


@component(executor="process")
def sleeps(seconds: float) -> float:
    """Sleeps ``seconds``, in a worker process (so that cancelling it can stop it)."""
    time.sleep(seconds)
    return seconds


@component(executor="inline")
def inline_square(x: int) -> int:
    """``x * x``, inline."""
    return x * x


@component(executor="thread")
def thread_square(x: int) -> int:
    """``x * x``, on a worker thread."""
    return x * x


@component(executor="process")
def process_square(x: int) -> int:
    """``x * x``, in a worker process."""
    return x * x


@component
async def async_square(x: int) -> int:
    """``x * x``, as a coroutine."""
    await asyncio.sleep(0)
    return x * x


@component(batch=Batch(max_size=4, max_wait_ms=200))
def batched(xs: list[int]) -> list[list[int]]:
    """Per item ``[2 * x, size of the batch it came in]``."""
    return [[2 * x, len(xs)] for x in xs]


@component(instances=1)
class Counter:
    """A class component that counts its calls: which object served a call, and its count."""

    def __init__(self, offset: int = 0) -> None:
        self.token = uuid.uuid4().hex
        self.offset = offset
        self.calls = 0

    def __call__(self, x: int) -> list[Any]:
        self.calls += 1
        return [self.token, self.calls, x + self.offset]


@component(instances=1, executor="process")
class ProcessCounter:
    """:class:`Counter`, in a worker process."""

    def __init__(self, offset: int = 0) -> None:
        self.token = uuid.uuid4().hex
        self.offset = offset
        self.calls = 0

    def __call__(self, x: int) -> list[Any]:
        self.calls += 1
        return [self.token, self.calls, x + self.offset]


@component(executor="process", retries=1)
def dies_once(marker: str) -> str:
    """Kills its own worker on the first attempt (``marker`` is the file that remembers it);
    returns ``"back"`` on the next."""
    path = Path(marker)
    if not path.exists():
        path.write_text("died")
        os._exit(3)
    return "back"


@component(executor="process")
def dies(x: int) -> int:
    """Kills its own worker, every time."""
    os._exit(3)


def single(target: Any) -> Pipeline:
    """A pipeline of one call of ``target`` (a component or an instance), its one output."""

    @pipeline
    def single(x: Any) -> Any:
        return target(x)

    return single
