"""``@pipeline``: the user's function, traced once into a graph, and the ways to run it.

A :class:`Pipeline` is what users hold: ``check()``, ``run()``, ``arun()``, ``map()``, and the
graph's drawings. Running needs an engine; unless one is passed (``engine=``), a process-wide
engine over the local backend is created on first use and closed at exit, so class components
stay warm from one run to the next. ``backend="ray"`` does the same over the Ray backend (one
engine per address: ``"ray"`` for a local Ray instance, or the cluster this process is already
connected to; ``"ray:auto"``, ``"ray:HOST:PORT"`` or ``"ray://HOST:PORT"`` to join one).

Run options share the keyword namespace with the pipeline's inputs; the reserved names are
``backend``, ``engine``, ``resources``, ``store`` and ``cache``. A pipeline with an input of
such a name takes its inputs as one mapping instead: ``p.run({"engine": "v8"})``.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import threading
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar, overload

from legato import draw
from legato.backends.local import LocalBackend
from legato.check import problems as graph_problems
from legato.component import TRACER, caller_location
from legato.engine import Backend, Engine, Failure, OnError, Run
from legato.engine.backend import values_of
from legato.errors import ConfigError, GraphError, InputError, Problem, TracingError
from legato.graph import Graph
from legato.tracing import trace

if TYPE_CHECKING:
    from legato.store.session import CacheArg, Recording, StoreArg

_engine_lock = threading.Lock()
_default_engine: Engine | None = None


def default_engine() -> Engine:
    """The process-wide engine over the local backend (created on first use)."""
    global _default_engine
    with _engine_lock:
        if _default_engine is None:
            _default_engine = Engine(LocalBackend())
            atexit.register(_close_default_engine)
        return _default_engine


def _close_default_engine() -> None:
    global _default_engine
    with _engine_lock:
        engine, _default_engine = _default_engine, None
    if engine is not None:
        engine.close()


_ray_engines: dict[str | None, Engine] = {}


def ray_engine(address: str | None = None) -> Engine:
    """The process-wide engine over a Ray backend at ``address`` (see
    :class:`~legato.backends.ray.RayBackend`), created on first use and closed at exit."""
    with _engine_lock:
        engine = _ray_engines.get(address)
        if engine is None:
            from legato.backends.ray import RayBackend

            engine = _ray_engines[address] = Engine(RayBackend(address))
            if len(_ray_engines) == 1:  # after Ray's own exit hook, so it runs before it
                atexit.register(_close_ray_engines)
        return engine


def _close_ray_engines() -> None:
    with _engine_lock:
        engines = list(_ray_engines.values())
        _ray_engines.clear()
    for engine in engines:
        engine.close()


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


class Pipeline:
    """A traced pipeline: an immutable graph plus the ways to check, draw and run it."""

    def __init__(self, fn: Callable[..., Any], *, name: str | None = None) -> None:
        self.fn = fn
        self.name = name or fn.__name__
        self.location = caller_location()
        self._graph: Graph | None = None
        self._checked: dict[tuple[int, tuple[tuple[str, float], ...]], list[Problem]] = {}
        self._lock = threading.Lock()
        self._cached: bool | None = None
        functools.update_wrapper(self, fn)

    # -- the graph ------------------------------------------------------------------------------

    @property
    def graph(self) -> Graph:
        """The graph, traced on first access (so components defined later in a file resolve)."""
        if self._graph is None:
            with self._lock:
                if self._graph is None:
                    self._graph = trace(self.fn, name=self.name)
        return self._graph

    def __legato_graph__(self) -> Graph:
        return self.graph

    def problems(
        self, *, engine: Engine | None = None, resources: Mapping[str, float] | None = None
    ) -> list[Problem]:
        """Everything the check finds, against the engine's backend capacity."""
        chosen = engine or default_engine()
        capacity = chosen.capacity()
        capacity.update(resources or {})
        key = (id(chosen), tuple(sorted(capacity.items())))
        found = self._checked.get(key)
        if found is None:
            placement = chosen.pool.possible if chosen.pool.gpus else None
            found = self._checked[key] = graph_problems(
                self.graph, capacity=capacity, placement=placement)
        return found

    def check(
        self, *, engine: Engine | None = None, resources: Mapping[str, float] | None = None
    ) -> None:
        """Raise :class:`GraphError` listing every problem; return quietly when there is none."""
        try:
            found = self.problems(engine=engine, resources=resources)
        except TracingError as exc:  # keep the class: callers catch TracingError
            problem = exc.problems[0]
            raise TracingError(problem.message, location=problem.location,
                               pipeline=self.name) from None
        except GraphError as exc:
            raise GraphError(exc.problems, pipeline=self.name) from None
        if found:
            raise GraphError(found, pipeline=self.name)

    def to_mermaid(self) -> str:
        """The graph as a Mermaid flowchart."""
        return draw.to_mermaid(self.graph)

    def to_dot(self) -> str:
        """The graph as Graphviz DOT text."""
        return draw.to_dot(self.graph)

    def to_json(self) -> str:
        """The graph as JSON (nodes, ports with their types, edges, options)."""
        return draw.to_json(self.graph)

    # -- running --------------------------------------------------------------------------------

    def _engine(self, engine: Engine | None, backend: str | Backend | None) -> Engine:
        if engine is not None and backend is not None:
            raise ConfigError("pass engine= or backend=, not both")
        if engine is not None:
            return engine
        if backend is None or backend == "local":
            return default_engine()
        if isinstance(backend, str):
            return ray_engine(ray_address(backend))
        return Engine(backend)

    def _start(
        self,
        items: Iterable[Mapping[str, Any]],
        *,
        engine: Engine | None,
        backend: str | Backend | None,
        resources: Mapping[str, float] | None,
        store: StoreArg = None,
        cache: CacheArg = True,
        resume: str | None = None,
        run_id: str | None = None,
        run_info: Mapping[str, Any] | None = None,
        retry_failed: bool = False,
        allow_changed_inputs: bool = False,
        **options: Any,
    ) -> tuple[Engine, Run, Recording | None]:
        """Check the graph against the chosen engine, declare the run's resources, set up its
        recording (if it needs a store), start."""
        chosen = self._engine(engine, backend)
        self.check(engine=chosen, resources=resources)
        if resources:
            chosen.declare(resources)
        recording = None
        # the store (and SQLAlchemy) is imported only when the run may need it
        if store is not None or resume is not None or cache not in (True, False) or (
                cache is True and self._caches()):
            from legato.store.session import record

            recording = record(self.graph, chosen.bus, store=store, cache=cache, resume=resume,
                               run_id=run_id, info=run_info,
                               digest=values_of(chosen.backend).digest,
                               retry_failed=retry_failed,
                               allow_changed_inputs=allow_changed_inputs)
        if recording is not None:
            run_id = recording.run_id
            items = recording.feed(items)  # each item's input digest recorded (and checked)
        try:
            run = chosen.start(self.graph, items, run_id=run_id,
                               memo=recording.memo if recording is not None else None,
                               **options)
        except BaseException:
            if recording is not None:
                recording.close(quiet=True)
            raise
        return chosen, run, recording

    def _caches(self) -> bool:
        """True when a component asks for caching (then the run needs a store)."""
        if self._cached is None:
            self._cached = self.graph.caching()
        return self._cached

    def _items(self, items: Iterable[Any]) -> Iterator[Mapping[str, Any]]:
        inputs = self.graph.inputs
        for item in items:
            if isinstance(item, Mapping) or len(inputs) != 1:
                yield item
            else:
                yield {inputs[0].name: item}

    def map(
        self,
        items: Iterable[Any],
        *,
        window: int = 256,
        ordered: bool = True,
        on_error: OnError = "raise",
        progress: bool = False,
        engine: Engine | None = None,
        backend: str | Backend | None = None,
        resources: Mapping[str, float] | None = None,
        store: StoreArg = None,
        cache: CacheArg = True,
        resume: str | None = None,
        run_id: str | None = None,
        run_info: Mapping[str, Any] | None = None,
        retry_failed: bool = False,
        allow_changed_inputs: bool = False,
    ) -> Generator[Any, None, None]:
        """Run the pipeline on many items; yield each item's result.

        ``items`` holds mappings of input name to value (or bare values when the pipeline has
        one input). At most ``window`` items are in flight; calls to a batched component are
        grouped across items. ``ordered``: results in input order (else as they finish).
        ``on_error``: a failed item raises (``"raise"``), is left out (``"skip"``), or yields a
        :class:`Failure` in its place (``"collect"``); no other item's result is lost.

        Recording (see :mod:`legato.store`): ``store`` (a :class:`~legato.store.Store`, a URL
        or path, or True for the default ``.legato/`` store) records the run: every node
        execution, every item's result. ``cache``: True, components declared ``cache=True``
        reuse earlier results for the same inputs; ``"all"``, every component does; False,
        none. ``resume=RUN``: continue a run that stopped, with the same items: recorded results
        are handed back, not computed again (items whose inputs differ are refused, unless
        ``allow_changed_inputs``: then they are computed again); ``retry_failed``: the
        pipeline's code may have changed since (not its wiring): failed items run again with
        it, reusing recorded outputs only of nodes whose code did not change. Caching and
        resuming use the default store unless ``store`` says another (``store=False``: no store
        at all). ``run_id`` names a new run; ``run_info`` (``target``, ``inputs``,
        ``options``) is recorded with it.
        """
        # a list is read on the scheduler's thread; any other iterable (a generator, a file, a
        # queue) may block between items, so a feeder thread pulls it
        if run_info is None and hasattr(items, "__len__"):
            run_info = {"inputs": {"count": len(items)}}  # type: ignore[arg-type]
        chosen, run, recording = self._start(
            self._items(items), engine=engine, backend=backend, resources=resources,
            store=store, cache=cache, resume=resume, run_id=run_id, run_info=run_info,
            retry_failed=retry_failed, allow_changed_inputs=allow_changed_inputs,
            window=window, ordered=ordered, on_error=on_error,
            feed=not isinstance(items, Sequence))
        results = run.results()
        if progress:
            from legato.observe.progress import with_progress

            total = len(items) if hasattr(items, "__len__") else None  # type: ignore[arg-type]
            results = with_progress(run, chosen.bus, total=total, label=self.name)
        return results if recording is None else _recorded(results, recording)

    def run(
        self,
        inputs: Mapping[str, Any] | None = None,
        /,
        *,
        engine: Engine | None = None,
        backend: str | Backend | None = None,
        resources: Mapping[str, float] | None = None,
        store: StoreArg = None,
        cache: CacheArg = True,
        **kwargs: Any,
    ) -> Any:
        """Run the pipeline on one item and return its result (the declared return type).

        Raises :class:`InputError` for inputs that do not fit, :class:`ComponentError` when a
        component fails after its retries. ``store`` and ``cache``: as for :meth:`map`.
        """
        item = {**(inputs or {}), **kwargs}
        results = self.map([item], engine=engine, backend=backend, resources=resources,
                           store=store, cache=cache)
        try:
            (result,) = results  # to the end, so the run finishes (and is recorded) as done
        except InputError as exc:
            raise InputError(str(exc).removeprefix("item 0: ")) from None
        finally:
            results.close()
        return result

    async def arun(
        self,
        inputs: Mapping[str, Any] | None = None,
        /,
        *,
        engine: Engine | None = None,
        backend: str | Backend | None = None,
        resources: Mapping[str, float] | None = None,
        store: StoreArg = None,
        cache: CacheArg = True,
        **kwargs: Any,
    ) -> Any:
        """``run`` for async code: awaits the result; cancelling the task cancels the run.
        ``store`` and ``cache``: as for :meth:`map`."""
        import asyncio

        item = {**(inputs or {}), **kwargs}
        _, run, recording = self._start([item], engine=engine, backend=backend,
                                        resources=resources, store=store, cache=cache)
        results = run.results()
        if recording is not None:
            results = _recorded(results, recording)

        def drive() -> Any:
            try:
                (result,) = results  # to the end: the run finishes as done, not closed early
                return result
            finally:
                results.close()

        future = asyncio.get_running_loop().run_in_executor(None, drive)
        try:
            return await asyncio.shield(future)
        except asyncio.CancelledError:
            run.cancel()
            with contextlib.suppress(Exception):
                await future
            raise

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Inside another pipeline: inline this one. Outside: ``run`` it."""
        tracer = TRACER.get()
        if tracer is not None:
            return tracer.call(self, args, kwargs)
        names = [port.name for port in self.graph.inputs]
        if len(args) > len(names):
            raise InputError(f"'{self.name}' takes {len(names)} inputs, got {len(args)} positional")
        return self.run(dict(zip(names, args, strict=False)), **kwargs)

    def __repr__(self) -> str:
        return f"<pipeline {self.name}>"


def _recorded(results: Iterator[Any], recording: Recording) -> Generator[Any, None, None]:
    """The results, then the recording closed: its StoreError raised once every result is out
    (quietly when the run itself fails or is closed early)."""
    try:
        yield from results
    except BaseException:
        recording.close(quiet=True)
        raise
    recording.close()


F = TypeVar("F", bound=Callable[..., Any])


@overload
def pipeline(fn: Callable[..., Any], /) -> Pipeline: ...


@overload
def pipeline(*, name: str | None = None) -> Callable[[Callable[..., Any]], Pipeline]: ...


def pipeline(
    fn: Callable[..., Any] | None = None, /, *, name: str | None = None
) -> Pipeline | Callable[[Callable[..., Any]], Pipeline]:
    """Declare a pipeline: its parameters are the inputs, its body wires components together,
    and what it returns (a reference, a dict, a NamedTuple or dataclass of references) are the
    outputs. The body is traced once, on first use, never run with real values."""

    def wrap(f: Callable[..., Any]) -> Pipeline:
        return Pipeline(f, name=name)

    return wrap(fn) if fn is not None else wrap


__all__ = ["Failure", "Pipeline", "default_engine", "pipeline", "ray_address", "ray_engine"]
