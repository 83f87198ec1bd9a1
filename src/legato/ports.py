"""Ports: the named, typed inputs and outputs of components and pipelines, read from type hints.

A component's inputs are its call's parameters; its outputs are what it returns: one ``out``
port, or one port per field when the return annotation is a NamedTuple, a dataclass or a
TypedDict (:func:`output_fields`). :func:`split_outputs` and :func:`join_outputs` turn a
returned value into its ports' values and back. A generator component's output is the list of
what it yields (:func:`chunks_of`).
"""

from __future__ import annotations

import collections.abc
import contextlib
import dataclasses
import functools
import inspect
import sys
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, get_type_hints

from legato import types as port_types
from legato.errors import ConfigError


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
    try:
        return _output_fields(annotation)
    except TypeError:  # an unhashable annotation: work it out each time
        return _output_fields.__wrapped__(annotation)


@functools.lru_cache(maxsize=1024)
def _output_fields(annotation: Any) -> tuple[tuple[str, Any], ...] | None:
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



_STREAMS = (collections.abc.Iterator, collections.abc.Iterable, collections.abc.Generator,
            collections.abc.AsyncIterator, collections.abc.AsyncIterable,
            collections.abc.AsyncGenerator)


def chunks_of(annotation: Any) -> Any:
    """A generator component's output type: ``Iterator[str]`` (or ``Generator[str, ...]``,
    ``AsyncIterator[str]``) -> ``list[str]``, the chunks it yields; anything else as it is."""
    if typing.get_origin(annotation) in _STREAMS:
        args = typing.get_args(annotation)
        return list[args[0]] if args else list  # type: ignore[valid-type]
    return annotation



def ports_of(fn: Callable[..., Any], *, skip_self: bool) -> tuple[tuple[Port, ...], Any]:
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


