"""Tracing: run a pipeline body once with symbolic values and record the graph it wires.

``trace(fn)`` calls ``fn`` with one :class:`Ref` per parameter while a :class:`Builder` is the
active tracer. Each component call inside adds a ``call`` node and returns a Ref (or
:class:`Outputs` for several named outputs). Calling another pipeline inlines its nodes under a
prefix (``sub/node``).

Around the tracer: :mod:`legato.sources` turns the Python values a body passes and returns into
the graph's sources (constants, references, containers collected at run time);
:mod:`legato.constructs` holds ``legato.map`` and ``legato.branch``, whose nodes hold
sub-graphs (built on this module's :class:`Builder`).

Problems that do not stop tracing (a missing or unknown argument) are recorded on the node and
reported by the check with all the others; only misuse of a Ref as a value stops it at once.
"""

from __future__ import annotations

import dataclasses
import inspect
import typing
from collections.abc import Callable
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
from legato.sources import bind, outputs_of


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
    component = target.component
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

    def new_id(self, base: str) -> str:
        """A node id not yet used in this graph: ``base``, else ``base_2``, ``base_3``..."""
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
        component = target.component
        assert isinstance(component, Component)
        location = caller_location()
        bound, problems = bind(component.inputs, args, kwargs, what=f"'{component.name}'")
        node = Node(
            id=self.new_id(component.name),
            kind="call",
            inputs=bound,
            input_ports=component.inputs,
            outputs=component.outputs,
            location=location,
            target=target,
            problems=tuple(problems),
        )
        return self.add(node)

    def add(self, node: Node) -> Ref | Outputs:
        """Add ``node``; what the body gets back: a reference to its one output, or its named
        outputs."""
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
        bound, problems = bind(graph.inputs, args, kwargs, what=f"pipeline '{graph.name}'")
        prefix = self.new_id(graph.name)
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

    # -- the end ------------------------------------------------------------------------------

    def finish(
        self,
        inputs: tuple[Port, ...],
        returned: Any,
        annotation: Any,
        *,
        location: str | None,
    ) -> Graph:
        """The traced graph: these inputs, the nodes added, and what the body ``returned`` as
        its named outputs (problems found in them kept for the check)."""
        outputs, problems = outputs_of(returned, annotation, self.nodes)
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


__all__ = ["Builder", "GraphSource", "Target", "graph_of", "trace"]
