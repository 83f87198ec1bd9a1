"""Shared fixtures: engines (real time, or a test-driven clock), event recorders, and
``where`` for the file:line that error messages must name. Helpers live in ``harness.py``.

Backend contract: a test marked ``contract`` runs once per backend, its ``engine`` over the
local backend and over the Ray backend (marked ``ray``; one local Ray instance of 2 CPUs is
started for the whole session, on first use, and skipped when Ray is not installed). Other
tests get the local backend. The essential contract, as a class every backend's suite
subclasses, is ``legato.testing.BackendContract`` (run in ``tests/backends/test_contract_*.py``).
"""

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


@pytest.fixture(autouse=True, scope="session")
def _store_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Runs that record into the default store (``legato map``, caching) write to a directory of
    the test session's own, never to ``.legato/`` in the checkout or a store named by the
    environment. Session-wide, so module fixtures that run ``legato`` see it too."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LEGATO_HOME", str(tmp_path_factory.mktemp("legato-home")))
        patch.delenv("LEGATO_STORE", raising=False)
        patch.delenv("LEGATO_BLOBS", raising=False)
        yield


BACKENDS = ("local", pytest.param("ray", marks=pytest.mark.ray))


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if ("backend_kind" in metafunc.fixturenames
            and metafunc.definition.get_closest_marker("contract") is not None):
        metafunc.parametrize("backend_kind", BACKENDS, indirect=True)


@pytest.fixture
def backend_kind(request: pytest.FixtureRequest) -> str:
    """Which backend the test's ``engine`` uses: ``local`` unless the test is a contract test
    (then each in turn)."""
    return str(getattr(request, "param", "local"))


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[Any]:
    """The session's local Ray instance (2 CPUs), started by a RayBackend that owns it."""
    pytest.importorskip("ray")
    from legato.backends.ray import RayBackend

    backend = RayBackend(num_cpus=2)
    yield backend
    backend.close()


@pytest.fixture
def engine(backend_kind: str, request: pytest.FixtureRequest) -> Iterator[lg.Engine]:
    """A fresh engine over the local backend (or, in a contract test, each backend in turn),
    with real time; closed after the test."""
    backend: Any
    if backend_kind == "ray":
        request.getfixturevalue("ray_cluster")
        from legato.backends.ray import RayBackend

        backend = RayBackend()  # joins the session's instance
    else:
        backend = LocalBackend()
    with lg.Engine(backend) as eng:
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
