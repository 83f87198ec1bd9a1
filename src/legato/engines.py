"""Which engine a run uses, and how a run is recorded.

Unless a run is handed an engine (``engine=``), it uses a process-wide one: the default engine
over the local backend, created on first use and closed at exit, so class components stay warm
from one run to the next; ``backend="ray"`` (or ``"ray:auto"``, ``"ray:HOST:PORT"``,
``"ray://HOST:PORT"``) one engine per Ray address; ``backend=<Backend object>`` one engine per
backend object, kept (so its resources and warm instances are shared by every run that names
that object) and closed at exit.

:func:`recording_for` sets up a run's recording (the run store, imported only when a run needs
it: storing, caching, resuming).
"""

from __future__ import annotations

import atexit
import threading
import weakref
from collections.abc import Generator, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from legato.backends.local import LocalBackend
from legato.engine import Backend, Engine, Run
from legato.engine.backend import values_of
from legato.errors import ConfigError
from legato.graph import Graph

if TYPE_CHECKING:
    from legato.store.session import CacheArg, Recording, StoreArg

_lock = threading.Lock()
_default: Engine | None = None
_ray: dict[str | None, Engine] = {}
_by_backend: weakref.WeakKeyDictionary[Any, Engine] = weakref.WeakKeyDictionary()


def default_engine() -> Engine:
    """The process-wide engine over the local backend (created on first use)."""
    global _default
    with _lock:
        if _default is None:
            _default = Engine(LocalBackend())
            atexit.register(_close_default)
        return _default


def _close_default() -> None:
    global _default
    with _lock:
        engine, _default = _default, None
    if engine is not None:
        engine.close()


def ray_engine(address: str | None = None) -> Engine:
    """The process-wide engine over a Ray backend at ``address`` (see
    :class:`~legato.backends.ray.RayBackend`), created on first use and closed at exit."""
    with _lock:
        engine = _ray.get(address)
        if engine is None:
            from legato.backends.ray import RayBackend

            engine = _ray[address] = Engine(RayBackend(address))
            if len(_ray) == 1:  # after Ray's own exit hook, so it runs before it
                atexit.register(_close_ray)
        return engine


def _close_ray() -> None:
    with _lock:
        engines = list(_ray.values())
        _ray.clear()
    for engine in engines:
        engine.close()


def backend_engine(backend: Backend) -> Engine:
    """The engine of a backend object: made on first use, then reused by every run that names
    the same object (one resource pool, one set of warm instances); closed at exit."""
    with _lock:
        engine = _by_backend.get(backend)
        if engine is None:
            engine = _by_backend[backend] = Engine(backend)
            atexit.register(engine.close)
        return engine


def ray_address(backend: str) -> str | None:
    """The Ray address a ``backend`` string names: ``"ray"`` -> None (a local instance),
    ``"ray:auto"`` -> ``"auto"``, ``"ray:HOST:PORT"`` -> ``"HOST:PORT"``, ``"ray://HOST:PORT"``
    as it is. Raises ConfigError for a string that names no backend."""
    if backend == "ray":
        return None
    if backend.startswith("ray://"):
        return backend
    if backend.startswith("ray:") and len(backend) > 4:
        return backend[4:]
    raise ConfigError(f"backend must be 'local', 'ray', 'ray:auto', 'ray:HOST:PORT', "
                      f"'ray://HOST:PORT' or a Backend object, got {backend!r}")


def choose(engine: Engine | None, backend: str | Backend | None) -> Engine:
    """The engine a run uses: the one given, or the shared one of its backend."""
    if engine is not None and backend is not None:
        raise ConfigError("pass engine= or backend=, not both")
    if engine is not None:
        return engine
    if backend is None or backend == "local":
        return default_engine()
    if isinstance(backend, str):
        return ray_engine(ray_address(backend))
    return backend_engine(backend)


def recording_for(
    graph: Graph,
    engine: Engine,
    *,
    caches: bool,
    store: StoreArg = None,
    cache: CacheArg = True,
    resume: str | None = None,
    run_id: str | None = None,
    run_info: Mapping[str, Any] | None = None,
    mode: str = "run",
    **options: Any,
) -> Recording | None:
    """The run's recording, when it needs the store (storing, caching or resuming); None
    otherwise, and then the store (and SQLAlchemy) is not even imported. ``caches``: a
    component of the graph asks for caching."""
    if store is None and resume is None and cache in (True, False) and not (
            cache is True and caches):
        return None
    from legato.store.session import record

    return record(graph, engine.bus, store=store, cache=cache, resume=resume, run_id=run_id,
                  info=run_info, digest=values_of(engine.backend).digest, mode=mode, **options)


def finish_recording(run: Run, recording: Recording, ok: bool) -> None:
    """Once ``run`` has finished, close its recording (quietly when the run failed)."""
    run.wait(30.0)
    recording.close(quiet=not ok)


def recorded(results: Iterator[Any], recording: Recording) -> Generator[Any, None, None]:
    """The results, then the recording closed: its StoreError raised once every result is out
    (quietly when the run itself fails or is closed early)."""
    try:
        yield from results
    except BaseException:
        recording.close(quiet=True)
        raise
    recording.close()


__all__ = ["backend_engine", "choose", "default_engine", "finish_recording", "ray_address",
           "ray_engine", "recorded", "recording_for"]
