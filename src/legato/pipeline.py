"""``@pipeline``: the user's function, traced once into a graph, and the ways to run it.

A :class:`Pipeline` is what users hold: ``check()``, ``run()``, ``arun()``, ``map()``,
``stream()``, ``open()``, and the graph's drawings. Which engine runs it is
:mod:`legato.engines`' choice (``engine=``, ``backend=``, or the process-wide default); each
run method is a thin consumer of the engine's run handle: ``run`` submits one item and waits on
its handle, ``map`` feeds many and yields their results, ``stream`` feeds an endless source
(:mod:`legato.streaming`).

Run options share the keyword namespace with the pipeline's inputs; the reserved names are
``backend``, ``engine``, ``resources``, ``store``, ``cache``, ``deadline`` and ``priority``. A
pipeline with an input of such a name takes its inputs as one mapping instead:
``p.run({"engine": "v8"})``.
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar, overload

from legato.component import TRACER, caller_location
from legato.errors import GraphError, InputError, Problem, TracingError
from legato.graph import Graph
from legato.tracing import trace

if TYPE_CHECKING:
    from legato.engine import Backend, Engine, Failure, OnDrop, OnError, Run
    from legato.engines import default_engine, ray_address, ray_engine
    from legato.store.session import CacheArg, Recording, StoreArg
    from legato.streaming import Stream

# The engine, its backends, the check and the drawings are imported when a pipeline is first
# checked, drawn or run, not by ``import legato`` (defining pipelines stays cheap).

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
        from legato.check import problems as graph_problems
        from legato.engines import default_engine

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
        from legato import draw

        return draw.to_mermaid(self.graph)

    def to_dot(self) -> str:
        """The graph as Graphviz DOT text."""
        from legato import draw

        return draw.to_dot(self.graph)

    def to_json(self) -> str:
        """The graph as JSON (nodes, ports with their types, edges, options)."""
        from legato import draw

        return draw.to_json(self.graph)

    # -- running --------------------------------------------------------------------------------

    def _start(
        self,
        items: Iterable[Mapping[str, Any]] | None,
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
        sample: int | None = None,
        mode: str = "run",
        **options: Any,
    ) -> tuple[Engine, Run, Recording | None]:
        """Check the graph against the chosen engine, declare the run's resources, set up its
        recording (if it needs a store), start."""
        from legato import engines

        chosen = engines.choose(engine, backend)
        self.check(engine=chosen, resources=resources)
        if resources:
            chosen.declare(resources)
        recording = engines.recording_for(
            self.graph, chosen, caches=self._caches(), store=store, cache=cache, resume=resume,
            run_id=run_id, run_info=run_info, retry_failed=retry_failed,
            allow_changed_inputs=allow_changed_inputs, sample=sample, mode=mode)
        if recording is not None:
            run_id = recording.run_id
            if items is not None:  # each item's input digest recorded (and checked)
                items = recording.feed(items)
        try:
            run = chosen.start(self.graph, items, run_id=run_id,
                               memo=recording.memo if recording is not None else None,
                               mode=mode, **options)
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
        indexed: bool = False,
        on_error: OnError = "raise",
        on_drop: OnDrop = "skip",
        deadline: float | None = None,
        priority: int = 0,
        progress: bool = False,
        engine: Engine | None = None,
        backend: str | Backend | None = None,
        resources: Mapping[str, float] | None = None,
        store: StoreArg = None,
        cache: CacheArg = True,
        resume: str | None = None,
        run_id: str | None = None,
        run_info: Mapping[str, Any] | None = None,
        check_outputs: bool = True,
        retry_failed: bool = False,
        allow_changed_inputs: bool = False,
    ) -> Generator[Any, None, None]:
        """Run the pipeline on many items; yield each item's result.

        ``items`` holds mappings of input name to value (or bare values when the pipeline has
        one input). At most ``window`` items are in flight; calls to a batched component are
        grouped across items (and across every other run of the engine). ``ordered``: results
        in input order (else as they finish; ``indexed=True`` yields ``(index, result)`` pairs).
        ``on_error``: a failed item raises (``"raise"``), is left out (``"skip"``), or yields a
        :class:`Failure` in its place (``"collect"``); no other item's result is lost.
        ``deadline``: seconds each item may take from its submission (past it, the item fails
        with :class:`~legato.errors.DeadlineExceeded`); ``priority``: higher is admitted first
        when calls contend with other runs'. ``on_drop``: items dropped by a component's queue
        policy or ``max_age`` are left out (``"skip"``) or yield their
        :class:`~legato.engine.Dropped` marker (``"keep"``).

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
        ``options``) is recorded with it. ``check_outputs``: an item whose outputs do not fit
        their declared types fails with :class:`OutputError` (False: not checked).
        """
        # a list is fed by the consumer; any other iterable (a generator, a file, a queue) may
        # block between items, so a feeder thread pulls it
        if run_info is None and hasattr(items, "__len__"):
            run_info = {"inputs": {"count": len(items)}}  # type: ignore[arg-type]
        chosen, run, recording = self._start(
            self._items(items), engine=engine, backend=backend, resources=resources,
            store=store, cache=cache, resume=resume, run_id=run_id, run_info=run_info,
            retry_failed=retry_failed, allow_changed_inputs=allow_changed_inputs,
            window=window, ordered=ordered, indexed=indexed, on_error=on_error,
            on_drop=on_drop, deadline=deadline, priority=priority,
            feed=not isinstance(items, Sequence), check_outputs=check_outputs, mode="map")
        results = run.results()
        if progress:
            from legato.observe.progress import with_progress

            total = len(items) if hasattr(items, "__len__") else None  # type: ignore[arg-type]
            results = with_progress(run, chosen.bus, total=total, label=self.name)
        if recording is None:
            return results
        from legato.engines import recorded

        return recorded(results, recording)

    def open(
        self,
        *,
        deadline: float | None = None,
        priority: int = 0,
        engine: Engine | None = None,
        backend: str | Backend | None = None,
        resources: Mapping[str, float] | None = None,
    ) -> Run:
        """An open run of this pipeline: ``run.submit(inputs, deadline=, priority=)`` from any
        thread returns an :class:`~legato.engine.ItemHandle`; ``run.close()`` when no more will
        come. Items of every open run share the engine's warm instances and batches."""
        _, run, _ = self._start(None, engine=engine, backend=backend, resources=resources,
                                cache=False, deadline=deadline, priority=priority)
        return run

    def serve(self, *, host: str = "127.0.0.1", port: int = 8000, **options: Any) -> None:
        """Serve this pipeline over HTTP until SIGTERM or Ctrl-C (``legato serve``): see
        :mod:`legato.serve`; ``options`` are :class:`legato.serve.ServeOptions` fields.
        Needs the ``serve`` extra (``pip install legato[serve]``)."""
        from legato.serve import serve

        serve(self, host=host, port=port, **options)

    def stream(
        self,
        source: Any,
        *,
        deadline: float | None = None,
        priority: int = 0,
        window: int = 256,
        on_drop: OnDrop = "skip",
        on_error: OnError = "raise",
        indexed: bool = False,
        record: str | os.PathLike[str] | None = None,
        engine: Engine | None = None,
        backend: str | Backend | None = None,
        resources: Mapping[str, float] | None = None,
        store: StoreArg = None,
        sample: int = 1000,
    ) -> Stream:
        """Run the pipeline on an endless ``source`` (an iterable, an async iterable,
        ``lg.Tick(hz)`` or ``lg.replay(path)``); iterate the :class:`~legato.streaming.Stream`
        for results as they finish (``async for`` too). At most ``window`` items in flight;
        ``deadline``, ``priority``, ``on_drop``, ``on_error``, ``indexed``, ``store``: as for
        :meth:`map`; with ``store``, the stream's counters (drops, misses, latency per stage)
        are recorded with the run, and the rows of its first ``sample`` items (every failure
        too), not a row per tick of an endless stream. ``record``: a file where every source
        item and result is written, for :func:`~legato.streaming.replay`. See
        :mod:`legato.streaming`."""
        from legato.streaming.run import open_stream

        _, run, recording = self._start(None, engine=engine, backend=backend,
                                        resources=resources, store=store, cache=False,
                                        deadline=deadline, priority=priority, sample=sample,
                                        mode="stream")
        return open_stream(run, source, window=window, on_drop=on_drop, on_error=on_error,
                           indexed=indexed, record=record, recording=recording)

    def astream(self, source: Any, **options: Any) -> Stream:
        """:meth:`stream` for asyncio: ``async for result in pipeline.astream(source)``."""
        return self.stream(source, **options)

    def _one(self, inputs: Mapping[str, Any] | None, kwargs: dict[str, Any], *,
             engine: Engine | None, backend: str | Backend | None,
             resources: Mapping[str, float] | None, store: StoreArg, cache: CacheArg,
             deadline: float | None, priority: int,
             check_outputs: bool) -> tuple[Run, Recording | None, Any]:
        item = {**(inputs or {}), **kwargs}
        _, run, recording = self._start(None, engine=engine, backend=backend,
                                        resources=resources, store=store, cache=cache,
                                        check_outputs=check_outputs)
        try:
            handle = run._submit_last(item, deadline=deadline, priority=priority)
        except BaseException:
            run.cancel()
            if recording is not None:
                recording.close(quiet=True)
            raise
        return run, recording, handle

    def run(
        self,
        inputs: Mapping[str, Any] | None = None,
        /,
        *,
        deadline: float | None = None,
        priority: int = 0,
        engine: Engine | None = None,
        backend: str | Backend | None = None,
        resources: Mapping[str, float] | None = None,
        store: StoreArg = None,
        cache: CacheArg = True,
        check_outputs: bool = True,
        **kwargs: Any,
    ) -> Any:
        """Run the pipeline on one item and return its result (the declared return type).

        Raises :class:`InputError` for inputs that do not fit, :class:`ComponentError` when a
        component fails after its retries, :class:`DeadlineExceeded` past ``deadline`` seconds.
        ``priority``: higher is admitted first when calls contend with other runs' (e.g. an
        interactive call beside a background ``map``). ``store`` and ``cache``: as for
        :meth:`map`.
        """
        run, recording, handle = self._one(
            inputs, kwargs, engine=engine, backend=backend, resources=resources, store=store,
            cache=cache, deadline=deadline, priority=priority, check_outputs=check_outputs)
        ok = False
        try:
            result = handle.result()
            ok = True
        except InputError as exc:
            raise InputError(str(exc).removeprefix("item 0: ")) from None
        except BaseException:
            if not handle.done():  # interrupted while waiting (Ctrl-C): stop the run
                run.cancel()
            raise
        finally:
            run.wait(30.0)
            if recording is not None:
                recording.close(quiet=not ok)
        return result

    async def arun(
        self,
        inputs: Mapping[str, Any] | None = None,
        /,
        *,
        deadline: float | None = None,
        priority: int = 0,
        engine: Engine | None = None,
        backend: str | Backend | None = None,
        resources: Mapping[str, float] | None = None,
        store: StoreArg = None,
        cache: CacheArg = True,
        check_outputs: bool = True,
        **kwargs: Any,
    ) -> Any:
        """``run`` for async code: awaits the result; cancelling the task cancels the item.
        Concurrent ``arun`` calls to a batched component share its batches. ``deadline``,
        ``priority``, ``store`` and ``cache``: as for :meth:`run`."""
        run, recording, handle = self._one(
            inputs, kwargs, engine=engine, backend=backend, resources=resources, store=store,
            cache=cache, deadline=deadline, priority=priority, check_outputs=check_outputs)
        ok = False
        try:
            result = await handle
            ok = True
        except InputError as exc:
            raise InputError(str(exc).removeprefix("item 0: ")) from None
        finally:
            if recording is not None:
                import asyncio

                from legato.engines import finish_recording

                await asyncio.get_running_loop().run_in_executor(None, finish_recording,
                                                                 run, recording, ok)
        return result

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


_ENGINES = frozenset({"default_engine", "ray_address", "ray_engine"})


def __getattr__(name: str) -> Any:
    """``Failure`` and the engine helpers (``default_engine``...), imported on first use."""
    if name in _ENGINES:
        from legato import engines

        return getattr(engines, name)
    if name == "Failure":
        from legato.engine import Failure

        return Failure
    raise AttributeError(f"module 'legato.pipeline' has no attribute {name!r}")


__all__ = ["Failure", "Pipeline", "default_engine", "pipeline", "ray_address", "ray_engine"]
