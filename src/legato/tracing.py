"""Tracing: run a pipeline body once with symbolic values and record the graph it wires.

``trace(fn)`` calls ``fn`` with one :class:`Ref` per parameter while a :class:`Builder` is the
active tracer. Each component call inside adds a ``call`` node and returns a Ref (or
:class:`Outputs` for several named outputs). Calling another pipeline inlines its nodes under a
prefix (``sub/node``). ``map`` and ``branch`` add nodes that hold sub-graphs.

Problems that do not stop tracing (a missing or unknown argument) are recorded on the node and
reported by the check with all the others; only misuse of a Ref as a value stops it at once.
"""

from __future__ import annotations

import dataclasses
import inspect
import typing
from collections.abc import Callable, Mapping
from typing import Any

from legato.component import (
    TRACER,
    WHOLE,
    Component,
    Instance,
    Port,
    caller_location,
    output_fields,
)
from legato.errors import GraphError, Problem, TracingError
from legato.graph import Const, Graph, Node, Outputs, Ref, Source
from legato.options import Options


class GraphSource(typing.Protocol):
    """Anything that is a graph: a pipeline object."""

    def __legato_graph__(self) -> Graph: ...


Target = Component | Instance | GraphSource


def graph_of(target: Any) -> Graph:
    """The graph of a pipeline, or a one-node graph around a component."""
    if hasattr(target, "__legato_graph__"):
        return target.__legato_graph__()
    if isinstance(target, Component) and target.is_class:
        raise TracingError(
            f"class component '{target.name}' must be instantiated first: "
            f"use {target.target.__name__}(...) with its constructor arguments",
            location=caller_location(),
        )
    if not isinstance(target, Component | Instance):
        raise TracingError(
            f"expected a component or a pipeline, got {type(target).__name__} {target!r:.60}",
            location=caller_location(),
        )
    component = target.component if isinstance(target, Instance) else target
    builder = Builder(component.name)
    refs = {port.name: Ref(None, port.name, port.annotation) for port in component.inputs}
    result = builder.call(target, (), dict(refs))
    return builder.finish(component.inputs, result, component.output_annotation, location=None)


class Builder:
    """The tracer active while one pipeline body runs; collects its nodes."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.nodes: dict[str, Node] = {}
        self._counts: dict[str, int] = {}

    # -- node ids -----------------------------------------------------------------------------

    def _new_id(self, base: str) -> str:
        count = self._counts.get(base, 0) + 1
        self._counts[base] = count
        node_id = base if count == 1 else f"{base}_{count}"
        while node_id in self.nodes:
            count += 1
            self._counts[base] = count
            node_id = f"{base}_{count}"
        return node_id

    # -- the Tracer protocol ------------------------------------------------------------------

    def call(self, target: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """A component or pipeline called inside the body being traced."""
        if hasattr(target, "__legato_graph__"):
            return self._inline(target.__legato_graph__(), args, kwargs)
        component = target.component if isinstance(target, Instance) else target
        assert isinstance(component, Component)
        location = caller_location()
        bound, problems = _bind(component.inputs, args, kwargs, what=f"'{component.name}'")
        node = Node(
            id=self._new_id(component.name),
            kind="call",
            inputs=bound,
            input_ports=component.inputs,
            outputs=component.outputs,
            location=location,
            target=target,
            problems=tuple(problems),
        )
        return self._add(node)

    def _add(self, node: Node) -> Ref | Outputs:
        self.nodes[node.id] = node
        refs = {port.name: Ref(node.id, port.name, port.annotation) for port in node.outputs}
        if len(node.outputs) == 1 and node.outputs[0].name == "out":
            return refs["out"]
        component = node.component
        whole = None
        if node.kind == "call" and component is not None:
            whole = Ref(node.id, WHOLE, component.output_annotation)
        return Outputs(refs, whole)

    def _inline(self, graph: Graph, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """Copy a nested pipeline's nodes into this graph under ``<name>/`` ids."""
        bound, problems = _bind(graph.inputs, args, kwargs, what=f"pipeline '{graph.name}'")
        prefix = self._new_id(graph.name)
        if problems:
            self.nodes[prefix] = Node(
                id=prefix, kind="call", inputs={}, input_ports=(), outputs=(),
                location=caller_location(), problems=tuple(problems),
            )
        renamed: dict[str, str] = {}

        def remap(source: Source) -> Source:
            if isinstance(source, Const):
                return source
            if source.node is None:
                return bound.get(source.port, Const(None))
            return Ref(renamed[source.node], source.port, source.annotation)

        for node in graph.nodes.values():
            new_id = f"{prefix}/{node.id}"
            renamed[node.id] = new_id
            self.nodes[new_id] = dataclasses.replace(
                node, id=new_id, inputs={port: remap(src) for port, src in node.inputs.items()}
            )
        outputs = {name: remap(src) for name, src in graph.outputs.items()}
        if list(outputs) == ["out"]:
            return outputs["out"]
        return Outputs({k: v for k, v in outputs.items() if isinstance(v, Ref)})

    # -- map and branch -----------------------------------------------------------------------

    def map(self, target: Any, items: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        body = graph_of(target)
        location = caller_location()
        if not body.inputs:
            raise TracingError(f"legato.map: '{body.name}' takes no input to map over",
                               location=location)
        first, rest = body.inputs[0], body.inputs[1:]
        bound, problems = _bind(rest, args, kwargs, what=f"'{body.name}'")
        inputs: dict[str, Source] = {"items": _source(items), **bound}
        item_port = Port("items", list[first.annotation])  # type: ignore[name-defined]
        node = Node(
            id=self._new_id(f"map_{body.name}"),
            kind="map",
            inputs=inputs,
            input_ports=(item_port, *rest),
            outputs=tuple(
                Port(name, list[_annotation(body, src)])  # type: ignore[misc]
                for name, src in body.outputs.items()
            ),
            location=location,
            body=body,
            problems=tuple(problems),
        )
        return self._add(node)

    def branch(
        self,
        condition: Any,
        if_true: Any,
        if_false: Any,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> Any:
        location = caller_location()
        body = graph_of(if_true)
        orelse = graph_of(if_false) if if_false is not None else None
        problems: list[Problem] = []
        inputs: dict[str, Source] = {"condition": _source(condition)}
        ports = [Port("condition", bool)]
        for prefix, graph in (("then", body), ("else", orelse)):
            if graph is None:
                continue
            bound, found = _bind(graph.inputs, args, kwargs, what=f"'{graph.name}'")
            problems += found
            for port in graph.inputs:
                if port.name in bound:
                    inputs[f"{prefix}.{port.name}"] = bound[port.name]
                    ports.append(Port(f"{prefix}.{port.name}", port.annotation, port.default))
        outputs = []
        for name, src in body.outputs.items():
            annotation = _annotation(body, src)
            if orelse is None:
                annotation = annotation | None
            elif name in orelse.outputs:
                other = _annotation(orelse, orelse.outputs[name])
                annotation = annotation if annotation == other else annotation | other
            else:
                problems.append(Problem(
                    f"legato.branch: '{body.name}' gives output '{name}' but '{orelse.name}' "
                    f"does not; both branches must give the same outputs "
                    f"(it gives: {', '.join(orelse.outputs)})", location=location))
            outputs.append(Port(name, annotation))
        node = Node(
            id=self._new_id(f"branch_{body.name}"),
            kind="branch",
            inputs=inputs,
            input_ports=tuple(ports),
            outputs=tuple(outputs),
            location=location,
            body=body,
            orelse=orelse,
            problems=tuple(problems),
        )
        return self._add(node)

    # -- the end ------------------------------------------------------------------------------

    def finish(
        self,
        inputs: tuple[Port, ...],
        returned: Any,
        annotation: Any,
        *,
        location: str | None,
    ) -> Graph:
        outputs, problems = _collect_outputs(returned, annotation, self.nodes)
        problems = [p if p.location else dataclasses.replace(p, location=location)
                    for p in problems]
        if output_fields(annotation) is None and list(outputs) != ["out"]:
            annotation = dict[str, Any]
        return Graph(
            name=self.name,
            inputs=inputs,
            nodes=dict(self.nodes),
            outputs=outputs,
            output_annotation=annotation,
            location=location,
            problems=tuple(problems),
        )


def _annotation(graph: Graph, source: Source) -> Any:
    return graph.source_annotation(source)


def _source(value: Any) -> Source:
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
    if isinstance(value, list | tuple | dict) and _holds_refs(value):
        return _collect(value)
    return Const(value)


def _holds_refs(value: Any) -> bool:
    if isinstance(value, Ref | Outputs):
        return True
    if isinstance(value, list | tuple):
        return any(_holds_refs(v) for v in value)
    if isinstance(value, dict):
        return any(_holds_refs(v) for v in value.values())
    return False


def _collect(value: list[Any] | tuple[Any, ...] | dict[Any, Any]) -> Ref:
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
    assert isinstance(tracer, Builder)
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


def _bind(
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
        bound[port.name] = _source(value)
    names = {port.name for port in ports}
    for key, value in kwargs.items():
        if key not in names:
            problems.append(Problem(
                f"{what} has no input '{key}'; its inputs are: {signature}", location=location))
        elif key in bound:
            problems.append(Problem(f"{what} got input '{key}' twice", location=location))
        else:
            bound[key] = _source(value)
    for port in ports:
        if port.name not in bound and not port.required:
            bound[port.name] = Const(port.default)
    return bound, problems


def _collect_outputs(
    returned: Any, annotation: Any, nodes: Mapping[str, Node]
) -> tuple[dict[str, Source], list[Problem]]:
    """Turn what a pipeline body returned into named outputs."""
    problems: list[Problem] = []
    if isinstance(returned, Ref):
        return {"out": returned}, problems
    if isinstance(returned, Outputs):
        return dict(returned.items()), problems
    if isinstance(returned, Mapping):
        return {str(k): _source(v) for k, v in returned.items()}, problems
    fields = output_fields(type(returned)) if returned is not None else None
    if fields is not None:
        return {name: _source(getattr(returned, name)) for name, _ in fields}, problems
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


def trace(fn: Callable[..., Any], *, name: str | None = None) -> Graph:
    """Trace a pipeline body once and return its graph."""
    graph_name = name or fn.__name__
    signature = inspect.signature(fn)
    try:
        hints = typing.get_type_hints(fn, include_extras=True)
    except Exception as exc:
        raise GraphError([Problem(f"cannot resolve the type hints of '{graph_name}': {exc}")],
                         pipeline=graph_name) from exc
    inputs: list[Port] = []
    for param in signature.parameters.values():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            raise GraphError([Problem(f"*{param.name}: pipeline inputs must be named parameters")],
                             pipeline=graph_name)
        inputs.append(Port(param.name, hints.get(param.name, Any), param.default))
    builder = Builder(graph_name)
    token = TRACER.set(builder)
    try:
        returned = fn(*(Ref(None, p.name, p.annotation) for p in inputs))
    except GraphError:
        raise
    except Exception as exc:
        raise GraphError(
            [Problem(f"the pipeline body raised {type(exc).__name__}: {exc}",
                     location=_frame_of(exc))],
            pipeline=graph_name,
        ) from exc
    finally:
        TRACER.reset(token)
    from legato.component import _definition_location

    return builder.finish(
        tuple(inputs), returned, hints.get("return", Any), location=_definition_location(fn)
    )


def _frame_of(exc: BaseException) -> str | None:
    tb = exc.__traceback__
    last = None
    while tb is not None:
        last = tb
        tb = tb.tb_next
    if last is None:
        return None
    return f"{last.tb_frame.f_code.co_filename}:{last.tb_lineno}"


# ---------------------------------------------------------------------------------------------
# The public helpers


def _active(helper: str) -> Builder:
    tracer = TRACER.get()
    if not isinstance(tracer, Builder):
        raise TracingError(
            f"legato.{helper}() is used inside a @pipeline body; outside one, call the component "
            "directly (or pipeline.map for many items)",
            location=caller_location(),
        )
    return tracer


def map(target: Target, items: Any, /, *args: Any, **kwargs: Any) -> Any:
    """Inside a pipeline: run ``target(x, *args, **kwargs)`` for each ``x`` in ``items``.

    ``items`` is a reference to a list (or a constant list); the result is a reference to the
    list of results, in the same order (for a target with several outputs, one list per output).
    ``target`` is a component, a class component's instance, or a pipeline.
    """
    return _active("map").map(target, items, args, kwargs)


def branch(
    condition: Any, if_true: Target, if_false: Target | None, /, *args: Any, **kwargs: Any
) -> Any:
    """Inside a pipeline: run ``if_true(*args, **kwargs)`` when ``condition`` is true at run
    time, else ``if_false(*args, **kwargs)`` (or give None when ``if_false`` is None).

    Only the chosen side runs. Both sides must give the same named outputs.
    """
    return _active("branch").branch(condition, if_true, if_false, args, kwargs)
