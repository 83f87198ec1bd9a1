"""Shared fixtures: engines (real time, or a test-driven clock), event recorders, and
``where`` for the file:line that error messages must name. Helpers live in ``harness.py``."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

import legato as lg
from harness import Events, MakeEngine, WatchedClock
from legato.backends.local import LocalBackend


@pytest.fixture
def where(request: pytest.FixtureRequest) -> Callable[[str], str]:
    """``where("# marker")`` -> ``"test_file.py:LINE"`` of the one line of this test's file
    that holds the marker: how error messages name the place a node was created."""

    def find(marker: str) -> str:
        lines = request.path.read_text().splitlines()
        found = [n for n, text in enumerate(lines, 1) if marker in text and "where(" not in text]
        assert len(found) == 1, f"marker {marker!r} found on lines {found}"
        return f"{request.path.name}:{found[0]}"

    return find


@pytest.fixture
def engine() -> Iterator[lg.Engine]:
    """A fresh engine over the local backend, with real time; closed after the test."""
    with lg.Engine(LocalBackend()) as eng:
        yield eng


@pytest.fixture
def clock() -> WatchedClock:
    return WatchedClock()


@pytest.fixture
def clocked(clock: WatchedClock) -> Iterator[lg.Engine]:
    """An engine whose time is the test's ``clock``."""
    with lg.Engine(LocalBackend(), clock=clock) as eng:
        yield eng


@pytest.fixture
def make_engine() -> Iterator[MakeEngine]:
    """``make_engine(clock, cpus=2, resources={...})``: engines over local backends with no
    GPUs, each closed after the test."""
    engines: list[lg.Engine] = []

    def build(clock: lg.ManualClock | None = None, **backend: Any) -> lg.Engine:
        engine = lg.Engine(LocalBackend(gpus=[], **backend), clock=clock)
        engines.append(engine)
        return engine

    yield build
    for engine in engines:
        engine.close()


@pytest.fixture
def events(engine: lg.Engine) -> Events:
    """Every event of the ``engine`` fixture's runs."""
    recorder = Events()
    engine.bus.subscribe(recorder)
    return recorder


@pytest.fixture
def clocked_events(clocked: lg.Engine) -> Events:
    """Every event of the ``clocked`` engine's runs."""
    recorder = Events()
    clocked.bus.subscribe(recorder)
    return recorder
