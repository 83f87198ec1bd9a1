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

import contextlib
import dataclasses
import hashlib
import inspect
import re
import sys
import typing
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, TypeVar, get_type_hints, overload

from legato import types as port_types
from legato.errors import ConfigError

Executor = Literal["inline", "thread", "process", "async"]
EXECUTORS: tuple[str, ...] = ("inline", "thread", "process", "async")

_UNITS = {"": 1, "b": 1, "k": 1000, "kb": 1000, "kib": 1024, "m": 1000**2, "mb": 1000**2,
          "mib": 1024**2, "g": 1000**3, "gb": 1000**3, "gib": 1024**3, "t": 1000**4,
          "tb": 1000**4, "tib": 1024**4}


def parse_bytes(value: int | float | str, *, option: str = "memory") -> int:
    """``"400MiB"`` -> 419430400; ``2e9`` -> 2000000000. Raises ConfigError on anything else."""
    if isinstance(value, bool):
        raise ConfigError(
            f"{option} must be a size like 512MiB or a number of bytes; got {value!r}"
        )
    if isinstance(value, int | float):
        number, unit = float(value), ""
    else:
        match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([A-Za-z]*)\s*", str(value))
        if not match or match.group(2).lower() not in _UNITS:
            raise ConfigError(
                f"{option} must be a size like 512MiB, 6GiB or 2GB, or a number of bytes; "
                f"got {value!r}"
            )
        number, unit = float(match.group(1)), match.group(2).lower()
    if number < 0:
        raise ConfigError(f"{option} must be >= 0, got {value!r}")
    return int(number * _UNITS[unit])


def _positive(option: str, value: float, *, allow_zero: bool = False) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{option} must be a number, got {value!r}")
    if value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ConfigError(f"{option} must be {bound}, got {value!r}")


@dataclass(frozen=True)
class Batch:
    """Dynamic batching: calls from different items are grouped into one call of a list.

    A batch is flushed when it holds ``max_size`` calls or its oldest call has waited
    ``max_wait_ms`` milliseconds. The component then receives one list per input port and must
    return a list of the same length.
    """

    max_size: int = 32
    max_wait_ms: float = 5.0

    def __post_init__(self) -> None:
        if isinstance(self.max_size, bool) or not isinstance(self.max_size, int):
            raise ConfigError(f"Batch.max_size must be an int >= 1, got {self.max_size!r}")
        if self.max_size < 1:
            raise ConfigError(f"Batch.max_size must be >= 1, got {self.max_size}")
        _positive("Batch.max_wait_ms", self.max_wait_ms, allow_zero=True)


@dataclass(frozen=True)
class Retry:
    """Retry policy: up to ``attempts`` calls in all; before attempt n+1 wait
    ``backoff * multiplier**(n-1)`` seconds, at most ``max_backoff``.

    ``on`` limits retries to these exception types (default: any Exception).
    """

    attempts: int = 3
    backoff: float = 0.0
    multiplier: float = 2.0
    max_backoff: float = 60.0
    on: tuple[type[BaseException], ...] = (Exception,)

    def __post_init__(self) -> None:
        if isinstance(self.attempts, bool) or not isinstance(self.attempts, int):
            raise ConfigError(f"Retry.attempts must be an int >= 1, got {self.attempts!r}")
        if self.attempts < 1:
            raise ConfigError(f"Retry.attempts must be >= 1, got {self.attempts}")
        _positive("Retry.backoff", self.backoff, allow_zero=True)
        _positive("Retry.multiplier", self.multiplier)
        _positive("Retry.max_backoff", self.max_backoff, allow_zero=True)

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed attempt ``attempt`` (1-based) before the next one."""
        return float(min(self.max_backoff, self.backoff * self.multiplier ** (attempt - 1)))

    def retries(self, error: BaseException) -> bool:
        """Does this policy retry after ``error``?"""
        return isinstance(error, self.on)


NO_RETRY = Retry(attempts=1)


@dataclass(frozen=True)
class Resources:
    """What one call (or, for a class component, one live instance) holds while it runs."""

    cpus: float = 1.0
    gpus: float = 0.0
    memory: int = 0
    custom: tuple[tuple[str, float], ...] = ()

    def __post_init__(self) -> None:
        _positive("cpus", self.cpus, allow_zero=True)
        _positive("gpus", self.gpus, allow_zero=True)
        if self.gpus > 1 and self.gpus != int(self.gpus):
            raise ConfigError(f"gpus above 1 must be a whole number, got {self.gpus}")
        for key, amount in self.custom:
            _positive(f"resources[{key!r}]", amount, allow_zero=True)

    def as_dict(self) -> dict[str, float]:
        """Every non-zero request by name: ``{"cpus": 1, "memory": 4e8, "asr": 1}``."""
        out = {"cpus": self.cpus, "gpus": self.gpus, "memory": float(self.memory)}
        out.update(dict(self.custom))
        return {k: v for k, v in out.items() if v}


@dataclass(frozen=True)
class Options:
    """Everything declared on a component besides its code. Validated when declared."""

    resources: Resources = field(default_factory=Resources)
    instances: int = 1
    batch: Batch | None = None
    retry: Retry = NO_RETRY
    timeout: float | None = None
    cache: bool = False
    version: str = ""
    executor: Executor = "thread"

    def __post_init__(self) -> None:
        if isinstance(self.instances, bool) or not isinstance(self.instances, int):
            raise ConfigError(f"instances must be an int >= 1, got {self.instances!r}")
        if self.instances < 1:
            raise ConfigError(f"instances must be >= 1, got {self.instances}")
        if self.timeout is not None:
            _positive("timeout", self.timeout)
        if self.executor not in EXECUTORS:
            raise ConfigError(
                f"executor must be one of {', '.join(EXECUTORS)}; got {self.executor!r}"
            )


@dataclass(frozen=True)
class Port:
    """A named, typed input or output of a component or a pipeline."""

    name: str
    annotation: Any = Any
    default: Any = inspect.Parameter.empty

    @property
    def required(self) -> bool:
        return self.default is inspect.Parameter.empty

    def __str__(self) -> str:
        return f"{self.name}: {port_types.name(self.annotation)}"


# ---------------------------------------------------------------------------------------------
# Named outputs


def output_fields(annotation: Any) -> tuple[tuple[str, Any], ...] | None:
    """The named fields of a NamedTuple, dataclass or TypedDict return type, else None."""
    if isinstance(annotation, type):
        if issubclass(annotation, tuple) and hasattr(annotation, "_fields"):
            hints = _hints(annotation)
            return tuple((f, hints.get(f, Any)) for f in annotation._fields)
        if dataclasses.is_dataclass(annotation):
            hints = _hints(annotation)
            return tuple((f.name, hints.get(f.name, Any)) for f in dataclasses.fields(annotation))
        if typing.is_typeddict(annotation):
            return tuple(_hints(annotation).items())
    return None


def _hints(obj: Any) -> dict[str, Any]:
    try:
        return get_type_hints(obj, include_extras=True)
    except Exception:  # one name it cannot resolve: resolve the others one by one
        module = sys.modules.get(getattr(obj, "__module__", "") or "")
        namespace = {**(vars(module) if module else {}), **getattr(obj, "__globals__", {})}
        hints = {}
        for key, hint in dict(getattr(obj, "__annotations__", {})).items():
            if isinstance(hint, str):  # left as text if unresolved: reported by Component
                with contextlib.suppress(Exception):
                    hint = eval(hint, namespace)  # annotation text, resolved as typing does
            hints[key] = hint
        return hints


def _unresolved(ports: tuple[Port, ...], returned: Any) -> list[str]:
    """Type hints left as text because their names could not be found."""
    found = [f"{p.annotation!r} of input '{p.name}'" for p in ports
             if isinstance(p.annotation, str)]
    return found + ([f"{returned!r} of the return type"] if isinstance(returned, str) else [])


WHOLE = "*"
"""The port holding a multi-output component's whole returned value (see ``Outputs.whole``)."""


def split_outputs(annotation: Any, value: Any) -> dict[str, Any]:
    """Turn a returned value into ``{port: value}`` following the return annotation; with
    named outputs, ``WHOLE`` holds the value itself too."""
    fields = output_fields(annotation)
    if fields is None:
        return {"out": value}
    if isinstance(value, Mapping):
        return {WHOLE: value, **{name: value[name] for name, _ in fields}}
    return {WHOLE: value, **{name: getattr(value, name) for name, _ in fields}}


def join_outputs(annotation: Any, values: Mapping[str, Any]) -> Any:
    """The inverse of ``split_outputs``: rebuild the declared return type from port values."""
    fields = output_fields(annotation)
    if fields is None:
        return values["out"] if "out" in values else dict(values)
    if typing.is_typeddict(annotation):
        return dict(values)
    return annotation(**values)


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
        self._signature_problems: list[str] = []
        self.call_inputs, self.return_annotation = _ports_of(call, skip_self=self.is_class)
        for where in _unresolved(self.call_inputs, self.return_annotation):
            self._signature_problems.append(
                f"component '{self.name}': the type hint {where} names something that cannot "
                "be found from its module (a class defined inside a function, with "
                "'from __future__ import annotations'?); define it at module level")
        self.init_signature = inspect.signature(target) if self.is_class else None
        self.inputs, self.outputs = self._item_ports()
        self.__doc__ = target.__doc__
        self.__wrapped__ = target

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
        """A hash of the code and ``version``: changes when the component's behaviour may."""
        try:
            source = inspect.getsource(self.target)
        except (OSError, TypeError):
            source = self.qualname
        digest = hashlib.sha256(f"{source}\0{self.options.version}".encode())
        return digest.hexdigest()[:16]

    def with_options(self, **changes: Any) -> Component:
        """A copy with some options changed: ``embed.with_options(instances=2)``."""
        return Component(self.target, _build_options(self.options, **changes), name=self.name)

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
        self._object: Any = None

    @property
    def name(self) -> str:
        return self.component.name

    def build(self) -> Any:
        """Construct the user's object (runs ``__init__``: loads the model)."""
        return self.component.target(*self.args, **self.kwargs)

    def key(self) -> str:
        """Identifies instances that can share warm objects: same class, same arguments."""
        try:
            args = repr((self.args, sorted(self.kwargs.items())))
        except Exception:
            args = str(id(self))
        return f"{self.component.qualname}:{hashlib.sha256(args.encode()).hexdigest()[:12]}"

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


def _ports_of(fn: Callable[..., Any], *, skip_self: bool) -> tuple[tuple[Port, ...], Any]:
    signature = inspect.signature(fn)
    hints = _hints(fn)
    ports = []
    for index, param in enumerate(signature.parameters.values()):
        if skip_self and index == 0:
            continue
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            raise ConfigError(
                f"{fn.__qualname__}: *{param.name} parameters cannot be ports; declare each "
                "input as a named parameter"
            )
        ports.append(Port(param.name, hints.get(param.name, Any), param.default))
    returned = hints.get("return", Any)
    return tuple(ports), returned


def _build_options(
    base: Options | None = None,
    *,
    cpus: float | None = None,
    gpus: float | None = None,
    memory: int | float | str | None = None,
    resources: Mapping[str, float] | None = None,
    instances: int | None = None,
    batch: Batch | None = None,
    retries: Retry | int | None = None,
    timeout: float | None = None,
    cache: bool | None = None,
    version: str | None = None,
    executor: Executor | None = None,
) -> Options:
    base = base or Options()
    res = base.resources
    if resources is not None and not isinstance(resources, Mapping):
        raise ConfigError(f"resources must be a mapping like {{'asr': 1}}, got {resources!r}")
    for reserved in ("cpus", "gpus", "memory"):
        if resources and reserved in resources:
            raise ConfigError(f"resources: pass {reserved} as its own option, not in resources=")
    res = Resources(
        cpus=res.cpus if cpus is None else cpus,
        gpus=res.gpus if gpus is None else gpus,
        memory=res.memory if memory is None else parse_bytes(memory),
        custom=res.custom if resources is None else tuple(sorted(resources.items())),
    )
    if isinstance(retries, int) and not isinstance(retries, bool):
        if retries < 0:
            raise ConfigError(f"retries must be >= 0 (retries after the first try), got {retries}")
        retries = Retry(attempts=retries + 1)
    if retries is not None and not isinstance(retries, Retry):
        raise ConfigError(f"retries must be a Retry(...) or a number of retries, got {retries!r}")
    if batch is not None and not isinstance(batch, Batch):
        raise ConfigError(f"batch must be a Batch(max_size=..., max_wait_ms=...), got {batch!r}")
    return Options(
        resources=res,
        instances=base.instances if instances is None else instances,
        batch=base.batch if batch is None else batch,
        retry=base.retry if retries is None else retries,
        timeout=base.timeout if timeout is None else timeout,
        cache=base.cache if cache is None else cache,
        version=base.version if version is None else version,
        executor=base.executor if executor is None else executor,
    )


F = TypeVar("F", bound=Callable[..., Any])


@overload
def component(target: Callable[..., Any], /) -> Component: ...


@overload
def component(
    *,
    name: str | None = None,
    cpus: float | None = None,
    gpus: float | None = None,
    memory: int | float | str | None = None,
    resources: Mapping[str, float] | None = None,
    instances: int | None = None,
    batch: Batch | None = None,
    retries: Retry | int | None = None,
    timeout: float | None = None,
    cache: bool | None = None,
    version: str | None = None,
    executor: Executor | None = None,
) -> Callable[[Callable[..., Any]], Component]: ...


def component(
    target: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    cpus: float | None = None,
    gpus: float | None = None,
    memory: int | float | str | None = None,
    resources: Mapping[str, float] | None = None,
    instances: int | None = None,
    batch: Batch | None = None,
    retries: Retry | int | None = None,
    timeout: float | None = None,
    cache: bool | None = None,
    version: str | None = None,
    executor: Executor | None = None,
) -> Component | Callable[[Callable[..., Any]], Component]:
    """Declare a function, an ``async def`` or a class as a legato component.

    Options (all keyword-only, validated here):

    - ``cpus``, ``gpus`` (fractions allowed), ``memory`` (``"400MiB"``), ``resources``
      (custom names, ``{"asr": 1}``): what a call, or a live instance, holds.
    - ``instances``: live instances of a class component (each built once, kept warm).
    - ``batch=Batch(max_size, max_wait_ms)``: calls from many items grouped; the component
      takes lists and returns a list of the same length.
    - ``retries``: a ``Retry(attempts, backoff)`` or a number of retries after the first try.
    - ``timeout`` (seconds per call), ``cache``, ``version`` (part of the fingerprint).
    - ``executor``: ``inline`` (on the scheduler's thread, for cheap functions), ``thread``,
      ``process`` (a warm worker process), ``async`` (one event loop). Default: ``async`` for
      ``async def``, else ``thread``.
    """

    def wrap(fn: Callable[..., Any]) -> Component:
        if not callable(fn):
            raise ConfigError(f"@component decorates a function or a class, got {fn!r}")
        call = fn.__call__ if inspect.isclass(fn) else fn
        default_executor: Executor = "async" if inspect.iscoroutinefunction(call) else "thread"
        options = _build_options(
            Options(executor=default_executor),
            cpus=cpus, gpus=gpus, memory=memory, resources=resources, instances=instances,
            batch=batch, retries=retries, timeout=timeout, cache=cache, version=version,
            executor=executor,
        )
        if options.executor == "async" and not inspect.iscoroutinefunction(call):
            raise ConfigError(
                f"{fn.__qualname__}: executor='async' needs an 'async def', use 'thread' for a "
                "plain function"
            )
        return Component(fn, options, name=name)

    if target is not None:
        return wrap(target)
    return wrap
