"""Components: a user's function or class, with typed ports and declared needs.

``@component`` turns a function (plain or ``async def``) or a class into a :class:`Component`.
Its input ports are the parameters, its output ports the return annotation: one port named
``out``, or one per field when the return type is a NamedTuple, a dataclass or a TypedDict.

Outside a pipeline a component stays an ordinary callable (so it can be unit-tested directly).
Inside a pipeline body being traced, calling it adds a node to the graph and returns a symbolic
reference to its output; the tracer that does so registers itself in ``TRACER`` (this module
knows it only through that protocol, so dependencies keep pointing one way).

A class component is used in two steps, ``Embed(model="x")(text)``: calling the class gives an
:class:`Instance` spec (the constructor arguments, nothing loaded yet); the engine builds the real
object once per instance slot, on the worker that hosts it, and keeps it warm across calls.
"""

from __future__ import annotations

import inspect
import itertools
import re
import sys
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any, Protocol, TypeVar, Unpack, overload

from legato import types as port_types
from legato.errors import BuildError, ConfigError
from legato.options import (
    ComponentOptions,
    Executor,
    Options,
    Resources,
    build_options,
)
from legato.ports import WHOLE as WHOLE  # re-exported: where the rest of legato finds them
from legato.ports import Port as Port
from legato.ports import _unresolved, chunks_of, ports_of
from legato.ports import join_outputs as join_outputs
from legato.ports import output_fields as output_fields
from legato.ports import split_outputs as split_outputs

# ---------------------------------------------------------------------------------------------
# The tracer protocol (implemented in legato.tracing)


class Tracer(Protocol):
    """What a component call inside a traced pipeline body is handed to."""

    def call(self, target: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any: ...


TRACER: ContextVar[Tracer | None] = ContextVar("legato_tracer", default=None)


def caller_location() -> str | None:
    """``file.py:LINE`` of the innermost stack frame outside the legato package."""
    frame = sys._getframe(1)
    package_dir = __file__.rsplit("/", 1)[0]
    while frame is not None:
        filename = frame.f_code.co_filename
        if not filename.startswith(package_dir) and "/typing.py" not in filename:
            return f"{_short_path(filename)}:{frame.f_lineno}"
        frame = frame.f_back  # type: ignore[assignment]
    return None


def _short_path(filename: str) -> str:
    import os

    try:
        rel = os.path.relpath(filename)
    except ValueError:
        return filename
    return filename if rel.startswith("../..") else rel


# ---------------------------------------------------------------------------------------------
# Components


def _snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", name).lower()


class Component:
    """A typed unit of work: a function or a class with declared ports and options.

    Attributes: ``name`` (default node name), ``inputs`` and ``outputs`` (tuples of
    :class:`Port`, per item: for a batched component, the element types of its lists),
    ``options`` (:class:`Options`), ``is_class``, ``is_async``, ``location`` (file:line).
    """

    def __init__(self, target: Callable[..., Any], options: Options, *, name: str | None = None):
        self.target = target
        self.options = options
        self.is_class = inspect.isclass(target)
        call = target.__call__ if self.is_class else target  # type: ignore[operator]
        self.is_async = inspect.iscoroutinefunction(call)
        self.name = name or (_snake(target.__name__) if self.is_class else target.__name__)
        self.qualname = f"{target.__module__}.{target.__qualname__}"
        self.location = _definition_location(target)
        self._fingerprint: str | None = None
        self._signature_problems: list[str] = []
        self.call_inputs, self.return_annotation = ports_of(call, skip_self=self.is_class)
        self.is_generator = inspect.isgeneratorfunction(call) or inspect.isasyncgenfunction(call)
        if self.is_generator:  # its output is the list of what it yields (streamed as it does)
            self.return_annotation = chunks_of(self.return_annotation)
        for where in _unresolved(self.call_inputs, self.return_annotation):
            self._signature_problems.append(
                f"component '{self.name}': the type hint {where} names something that cannot "
                "be found from its module (a class defined inside a function, with "
                "'from __future__ import annotations'?); define it at module level")
        self.init_signature = inspect.signature(target) if self.is_class else None
        self.uid = next(_UIDS)
        self.inputs, self.outputs = self._item_ports()
        self.__doc__ = target.__doc__
        self.__wrapped__ = target

    @property
    def component(self) -> Component:
        """Itself: a component and an :class:`Instance` both answer ``.component``, so code
        that takes either (a node's target) never asks which it holds."""
        return self

    # -- ports ------------------------------------------------------------------------------

    def _item_ports(self) -> tuple[tuple[Port, ...], tuple[Port, ...]]:
        """Ports as seen per item. For a batched component, ``list[T]`` ports become ``T``."""
        inputs = self.call_inputs
        returned = self.return_annotation
        if self.options.batch is not None:
            item_inputs = []
            for port in inputs:
                element = port_types.list_item(port.annotation)
                if element is None:
                    self._signature_problems.append(
                        f"batched component '{self.name}': input '{port.name}' must be a list "
                        f"(list in, list out), got {port_types.name(port.annotation)}"
                    )
                    element = Any
                item_inputs.append(Port(port.name, element, port.default))
            inputs = tuple(item_inputs)
            element = port_types.list_item(returned)
            if element is None:
                self._signature_problems.append(
                    f"batched component '{self.name}': must return a list (list in, list "
                    f"out), returns {port_types.name(returned)}"
                )
                element = Any
            returned = element
        fields = output_fields(returned)
        outputs = (
            tuple(Port(n, a) for n, a in fields) if fields is not None else (Port("out", returned),)
        )
        return inputs, outputs

    @property
    def output_annotation(self) -> Any:
        """The per-item return type (for a batched component, the list's element type)."""
        if self.options.batch is not None:
            return port_types.list_item(self.return_annotation) or Any
        return self.return_annotation

    def signature_problems(self) -> list[str]:
        """What is wrong with the component's own signature (checked with the graph)."""
        return list(self._signature_problems)

    # -- identity ---------------------------------------------------------------------------

    def fingerprint(self) -> str:
        """A hash of the code, ``version`` and ``weights``: changes when the component's
        behaviour may (part of every cache key and of a run's graph fingerprint).

        The code is its normalised source and that of the functions and classes of its module it
        uses (:func:`legato.fingerprint.code_digest`): not the file's path, the module's name or
        line numbers, so a moved file, a second checkout, or a file loaded by path instead of
        imported keeps its fingerprint."""
        found = self._fingerprint
        if found is None:
            import hashlib  # here, not at import: OpenSSL's 3 ms

            from legato.fingerprint import code_digest  # ast and inspect: only when asked

            text = f"{code_digest(self.target)}\0{self.options.version}\0{self.options.weights}"
            found = self._fingerprint = hashlib.sha256(text.encode()).hexdigest()[:16]
        return found

    def with_options(self, **changes: Unpack[ComponentOptions]) -> Component:
        """A copy with some options changed: ``embed.with_options(instances=2)``."""
        return Component(self.target, build_options(self.options, **changes), name=self.name)

    # -- calling ----------------------------------------------------------------------------

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self.is_class:
            return Instance(self, args, kwargs)
        tracer = TRACER.get()
        if tracer is not None:
            return tracer.call(self, args, kwargs)
        return self.target(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<component {self.name} ({self.qualname})>"


_UIDS = itertools.count(1)  # a component's or instance's id in this process, never reused


class Instance:
    """A class component with its constructor arguments bound: ``Embed(model="x")``.

    Nothing is built when this is created. Inside a pipeline body, calling it adds a node; the
    engine builds the object once per instance slot where it runs. Outside a pipeline, calling it
    builds the object on first use (once) and calls it, so ``Embed()(["hi"])`` works in a test.
    """

    def __init__(self, component: Component, args: tuple[Any, ...], kwargs: dict[str, Any]):
        assert component.init_signature is not None
        try:
            component.init_signature.bind(*args, **kwargs)
        except TypeError as exc:
            raise ConfigError(
                f"component '{component.name}' ({component.location}): constructor arguments "
                f"do not fit {component.target.__name__}{component.init_signature}: {exc}"
            ) from None
        self.component = component
        self.args = args
        self.kwargs = kwargs
        self.uid = next(_UIDS)
        self._object: Any = None
        self._key: str | None = None

    @property
    def name(self) -> str:
        return self.component.name

    def build(self) -> Any:
        """Construct the user's object (runs ``__init__``: loads the model). A constructor that
        raises is reported as :class:`BuildError` (the cause chained), so the engine can tell a
        model that cannot be built from a call that failed."""
        try:
            return self.component.target(*self.args, **self.kwargs)
        except Exception as exc:
            cls = getattr(self.component.target, "__qualname__", self.component.name)
            raise BuildError(f"{cls}.__init__ raised {type(exc).__name__}: {exc}",
                             component=self.component.name) from exc

    def fingerprint(self) -> str:
        """The component's fingerprint with the constructor arguments: ``Embed("a")`` and
        ``Embed("b")`` cache apart."""
        return f"{self.component.fingerprint()}:{self.key().rsplit(':', 1)[1]}"

    def key(self) -> str:
        """Identifies instances that can share warm objects: same class, same arguments.
        Worked out once (the arguments are fixed when the pipeline is traced): the engine asks
        on every call."""
        found = self._key
        if found is None:
            import hashlib

            try:
                args = repr((self.args, sorted(self.kwargs.items())))
            except Exception:
                args = str(id(self))
            digest = hashlib.sha256(args.encode()).hexdigest()[:12]
            found = self._key = f"{self.component.qualname}:{digest}"
        return found

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        tracer = TRACER.get()
        if tracer is not None:
            return tracer.call(self, args, kwargs)
        if self._object is None:
            self._object = self.build()
        return self._object(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<instance of component {self.component.name}>"


def _definition_location(target: Any) -> str | None:
    try:
        filename = inspect.getsourcefile(target) or "?"
        line = inspect.getsourcelines(target)[1]
    except (OSError, TypeError):
        return None
    return f"{_short_path(filename)}:{line}"


F = TypeVar("F", bound=Callable[..., Any])


@overload
def component(target: Callable[..., Any], /) -> Component: ...


@overload
def component(
    *, name: str | None = None, **options: Unpack[ComponentOptions]
) -> Callable[[Callable[..., Any]], Component]: ...


def component(
    target: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    **options: Unpack[ComponentOptions],
) -> Component | Callable[[Callable[..., Any]], Component]:
    """Declare a function, an ``async def`` or a class as a legato component.

    Options (all keyword-only, validated here):

    - ``cpus`` (default 1; 0 for ``async def``), ``gpus`` (fractions allowed), ``gpu_memory``
      and ``memory`` (``"6GiB"``), ``resources`` (custom names, ``{"asr": 1}``): what a call,
      or a class component's live instance, holds. A node starts only when its request fits.
    - ``instances``: live instances of a class component, a number or ``(min, max)``; each is
      built once where it runs and kept warm; idle ones beyond ``min`` may be evicted (least
      recently used first) when another component needs their room.
    - ``rate_limit=RateLimit(calls=60, per=60)`` (or ``tokens=...``): enforced at admission.
    - ``batch=Batch(max_size, max_wait_ms)``: calls from many items grouped; the component
      takes lists and returns a list of the same length.
    - ``retries``: a ``Retry(attempts, backoff)`` or a number of retries after the first try.
    - ``timeout`` (seconds per call).
    - ``cache=True``: a call whose inputs were seen before (same fingerprint, same input
      hashes) is answered from the run store instead of running; ``version`` (bump it when the
      behaviour changes without the code changing) and ``weights`` (an identifier of the model
      weights the component loads, e.g. ``"minilm-l6@int8-2024-03"``) are part of the
      fingerprint, with the source code and a class component's constructor arguments.
    - ``executor``: ``inline`` (on the scheduler's thread, for cheap functions), ``thread``,
      ``process`` (a warm worker process), ``async`` (one event loop). Default: ``async`` for
      ``async def``, else ``thread``.
    - ``queue``: what this component's waiting calls do when more arrive (for streams):
      ``"fifo"`` (default, unbounded), ``"latest"`` (a newer item's call replaces older waiting
      ones: stale data dropped), ``lg.Fifo(n)`` (bounded, the oldest dropped past n),
      ``"block"``/``lg.Block(n)`` (the run takes no new items while n calls wait).
    - ``max_age`` (seconds): an item older than this (from its submission, or its source
      timestamp) when its call would start is dropped, not run. Drops end the item as
      ``lg.Dropped`` and are counted per component in ``run.stats()``.
    - ``deadline`` (seconds): this stage's budget per call. A call still running past it is a
      *miss*, counted per stage, and ``on_miss`` says what its item gets instead: ``"skip"``
      (the item ends as ``lg.Dropped(reason="missed")``), ``"hold"`` (the stage's last good
      output in this run, or skip when there is none yet), or any other value (used as the
      output: a safe default such as zero torque). The late call is cancelled where it can be.
    """

    def wrap(fn: Callable[..., Any]) -> Component:
        if not callable(fn):
            raise ConfigError(f"@component decorates a function or a class, got {fn!r}")
        call = fn.__call__ if inspect.isclass(fn) else fn
        is_async = inspect.iscoroutinefunction(call)
        default_executor: Executor = "async" if is_async else "thread"
        # an async call awaits I/O and holds no CPU while it waits; others hold one by default
        default = Options(executor=default_executor, resources=Resources(cpus=0 if is_async else 1))
        built = build_options(default, **options)
        if built.executor == "async" and not inspect.iscoroutinefunction(call):
            raise ConfigError(
                f"{fn.__qualname__}: executor='async' needs an 'async def', use 'thread' for a "
                "plain function"
            )
        return Component(fn, built, name=name)

    if target is not None:
        return wrap(target)
    return wrap
