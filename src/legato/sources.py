"""From Python values in a pipeline body to the graph's sources.

While a body is traced, what a component call is given and what the body returns are Python
values: references to outputs (:class:`~legato.graph.Ref`, :class:`~legato.graph.Outputs`),
constants, and containers mixing both. This module turns them into graph
:data:`~legato.graph.Source` s:

- :func:`bind` matches a call's arguments to the ports of what is called, recording (not
  raising) the problems found, for the check to report with all the others;
- :func:`source_of` turns one argument into a source: a reference as it is, a constant as a
  :class:`~legato.graph.Const`, a list, tuple or dict literal holding references as a ``collect``
  node (:func:`collect`) that builds the container at run time;
- :func:`outputs_of` turns what a body returned (a reference, several named outputs, a dict, a
  NamedTuple or dataclass, a tuple of outputs) into the graph's named outputs.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

from legato.component import TRACER, Component, Instance, Port, caller_location, output_fields
from legato.errors import Problem, TracingError
from legato.graph import Const, Node, Outputs, Ref, Source
from legato.options import Options


def source_of(value: Any) -> Source:
    """One value given to a call in a pipeline body, as a graph source (see the module
    docstring); a TracingError for a value that cannot be one (a component, several outputs)."""
    if isinstance(value, Ref):
        return value
    if isinstance(value, Outputs) and value.whole is not None:
        return value.whole
    if isinstance(value, Outputs):
        raise TracingError(
            "several named outputs passed where one value is expected; pick one, "
            f"e.g. result.{next(iter(value.items()))[0]}",
            location=caller_location(),
        )
    if isinstance(value, Component | Instance) or hasattr(value, "__legato_graph__"):
        raise TracingError(
            f"a component or pipeline ({value!r}) passed as a value; call it to get its output",
            location=caller_location(),
        )
    if isinstance(value, list | tuple | dict) and holds_refs(value):
        return collect(value)
    return Const(value)


def holds_refs(value: Any) -> bool:
    """Does ``value`` hold a reference, at any depth of lists, tuples and dicts?"""
    if isinstance(value, Ref | Outputs):
        return True
    if isinstance(value, list | tuple):
        return any(holds_refs(v) for v in value)
    if isinstance(value, dict):
        return any(holds_refs(v) for v in value.values())
    return False


def collect(value: list[Any] | tuple[Any, ...] | dict[Any, Any]) -> Ref:
    """A list, tuple or dict literal holding references becomes a ``collect`` node that builds
    the container at run time from the referenced values: ``total([a, b])`` just works."""
    refs: list[Ref] = []

    def template(v: Any) -> Any:
        if isinstance(v, Outputs) and v.whole is not None:
            v = v.whole
        if isinstance(v, Outputs):
            raise TracingError("several named outputs inside a container; pick one output",
                               location=caller_location())
        if isinstance(v, Ref):
            refs.append(v)
            return _Slot(len(refs) - 1)
        if isinstance(v, list | tuple):
            return type(v)(template(x) for x in v)
        if isinstance(v, dict):
            return {k: template(x) for k, x in v.items()}
        return v

    shape = template(value)

    def collect(**parts: Any) -> Any:
        return _fill(shape, [parts[f"p{i}"] for i in range(len(refs))])

    kind = type(value)
    element: Any = Any
    if kind is list:
        element_types = {v.annotation if isinstance(v, Ref) else type(v) for v in value}
        element = element_types.pop() if len(element_types) == 1 else Any
    params = [inspect.Parameter(f"p{i}", inspect.Parameter.KEYWORD_ONLY, annotation=r.annotation)
              for i, r in enumerate(refs)]
    returns: Any = list[element] if kind is list else (dict[Any, Any] if kind is dict else tuple)
    collect.__signature__ = inspect.Signature(params, return_annotation=returns)  # type: ignore[attr-defined]
    collect.__annotations__ = {**{f"p{i}": r.annotation for i, r in enumerate(refs)},
                               "return": returns}
    component = Component(collect, Options(executor="inline"), name="collect")
    tracer = TRACER.get()
    assert tracer is not None, "collect() runs only while a pipeline body is traced"
    result = tracer.call(component, (), {f"p{i}": r for i, r in enumerate(refs)})
    assert isinstance(result, Ref)
    return result


class _Slot:
    """Where the i-th referenced value goes in a collected container."""

    __slots__ = ("index",)

    def __init__(self, index: int) -> None:
        self.index = index


def _fill(shape: Any, values: list[Any]) -> Any:
    if isinstance(shape, _Slot):
        return values[shape.index]
    if isinstance(shape, list | tuple):
        return type(shape)(_fill(x, values) for x in shape)
    if isinstance(shape, dict):
        return {k: _fill(x, values) for k, x in shape.items()}
    return shape


def bind(
    ports: tuple[Port, ...], args: tuple[Any, ...], kwargs: Mapping[str, Any], *, what: str
) -> tuple[dict[str, Source], list[Problem]]:
    """Match call arguments to ports: ``{port: source}`` and the problems found."""
    location = caller_location()
    bound: dict[str, Source] = {}
    problems: list[Problem] = []
    signature = ", ".join(str(p) for p in ports)
    if len(args) > len(ports):
        problems.append(Problem(
            f"{what} takes {len(ports)} input{'s' if len(ports) != 1 else ''} ({signature}), "
            f"got {len(args)} positional arguments", location=location))
    for port, value in zip(ports, args, strict=False):
        bound[port.name] = source_of(value)
    names = {port.name for port in ports}
    for key, value in kwargs.items():
        if key not in names:
            problems.append(Problem(
                f"{what} has no input '{key}'; its inputs are: {signature}", location=location))
        elif key in bound:
            problems.append(Problem(f"{what} got input '{key}' twice", location=location))
        else:
            bound[key] = source_of(value)
    for port in ports:
        if port.name not in bound and not port.required:
            bound[port.name] = Const(port.default)
    return bound, problems


def outputs_of(
    returned: Any, annotation: Any, nodes: Mapping[str, Node]
) -> tuple[dict[str, Source], list[Problem]]:
    """Turn what a pipeline body returned into named outputs."""
    problems: list[Problem] = []
    if isinstance(returned, Ref):
        return {"out": returned}, problems
    if isinstance(returned, Outputs):
        return dict(returned.items()), problems
    if isinstance(returned, Mapping):
        return {str(k): source_of(v) for k, v in returned.items()}, problems
    fields = output_fields(type(returned)) if returned is not None else None
    if fields is not None:
        return {name: source_of(getattr(returned, name)) for name, _ in fields}, problems
    if isinstance(returned, tuple):
        outputs: dict[str, Source] = {}
        for part in returned:
            pairs: list[tuple[str, Any]]
            if isinstance(part, Outputs):
                pairs = list(part.items())
            elif isinstance(part, Ref) and part.node is not None:
                pairs = [(part.node if part.port == "out" else part.port, part)]
            else:
                problems.append(Problem(
                    f"a returned tuple may hold only component outputs, got {part!r:.60}; "
                    "return a dict or a NamedTuple to name the outputs"))
                continue
            for name, ref in pairs:
                if name in outputs:
                    first = outputs[name]
                    given = first.label if isinstance(first, Ref) else repr(first)
                    node = nodes.get(ref.node) if ref.node is not None else None
                    problems.append(Problem(
                        f"duplicate output name '{name}' in the returned tuple (given by "
                        f"{given} and {ref.label}); return a dict or a NamedTuple to name "
                        "each output", node=ref.node, location=node.location if node else None))
                outputs[name] = ref
        return outputs, problems
    if returned is None:
        return {}, problems
    return {"out": Const(returned)}, problems


__all__ = ["bind", "collect", "holds_refs", "outputs_of", "source_of"]
