"""The output check: does what an item gives back fit the pipeline's declared types?

Run when a top-level item's outputs are assembled, before the caller sees them (opt out with
``check_outputs=False`` on ``map``/``run``/``arun``). Each output value is held against

1. the pipeline's declared type for it: the return annotation of the pipeline function (one
   field of it when it is a NamedTuple, dataclass or TypedDict), then
2. the type of the port that produced it: the producing component's return annotation (for a
   ``map`` node, a list of it; for a ``branch``, either side's).

An annotation that is ``Any`` or absent is skipped, so an unannotated pipeline costs a dict
lookup per item. Values are checked with :func:`legato.types.mismatch`: the outer type, then a
sample of a container's elements, never every element of a long list. A graph input passed
straight through and a constant are not checked (inputs are checked on the way in).

The first output that does not fit fails the item with :class:`OutputError`, which names the
output, the node that produced the value (a ``map``'s inner node as ``map_score/score``), the
value's type and the expected one, and says where the expectation was declared.
"""

from __future__ import annotations

import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from legato import types as port_types
from legato.component import output_fields
from legato.errors import OutputError
from legato.graph import Graph, Ref, Source

__all__ = ["Expectation", "OutputProblem", "expectations", "output_error", "output_problem"]


@dataclass(frozen=True)
class Expectation:
    """One output's declared type, who declared it, and the node whose value it checks."""

    output: str
    annotation: Any
    declared_by: str
    node: str | None
    location: str | None


@dataclass(frozen=True)
class OutputProblem:
    """An output value that does not fit: which, what it is, what was expected, from where."""

    expectation: Expectation
    got: str

    def __str__(self) -> str:
        wanted = self.expectation
        where = ""
        if wanted.node is not None:
            where = f" from node '{wanted.node}'"
            if wanted.location:
                where += f" ({wanted.location})"
        return (f"output '{wanted.output}'{where} is {self.got}, expected "
                f"{port_types.name(wanted.annotation)} ({wanted.declared_by}); fix the "
                "component or that annotation, or pass check_outputs=False to skip this check")


_EXPECTED: weakref.WeakKeyDictionary[Graph, tuple[Expectation, ...]] = (
    weakref.WeakKeyDictionary())


def expectations(graph: Graph) -> tuple[Expectation, ...]:
    """What each output of ``graph`` must fit, ``Any`` left out; worked out once per graph."""
    found = _EXPECTED.get(graph)
    if found is None:
        found = _EXPECTED[graph] = tuple(_expectations(graph))
    return found


def _expectations(graph: Graph) -> list[Expectation]:
    fields = output_fields(graph.output_annotation)
    declared: dict[str, Any] = dict(fields) if fields is not None else {}
    if fields is None and list(graph.outputs) == ["out"]:
        declared["out"] = graph.output_annotation
    found: list[Expectation] = []
    for name, source in graph.outputs.items():
        if not isinstance(source, Ref) or source.node is None:
            continue  # a constant, or an input passed straight through
        node, location = _producer(graph, source)
        wanted = declared.get(name, Any)
        if not port_types.is_any(wanted):
            found.append(Expectation(name, wanted, f"the return annotation of pipeline "
                                     f"'{graph.name}'", node, location))
        port = graph.source_annotation(source)
        if not port_types.is_any(port) and port != wanted:
            found.append(Expectation(name, port, _declarer(graph, source), node, location))
    return found


def _producer(graph: Graph, source: Ref) -> tuple[str | None, str | None]:
    """The path of the node that made a value, through map and branch bodies, and where that
    node was created."""
    path: list[str] = []
    location = None
    current: Graph | None = graph
    found: Source | None = source
    while current is not None and isinstance(found, Ref) and found.node is not None:
        node = current.nodes.get(found.node)
        if node is None:
            break
        path.append(node.id)
        location = node.location
        if node.kind == "call" or node.body is None:
            break
        current = node.body
        found = node.body.outputs.get(found.port)
    return ("/".join(path) or None), location


def _declarer(graph: Graph, source: Ref) -> str:
    node = graph.nodes.get(source.node) if source.node is not None else None
    if node is not None and node.component is not None:
        return f"the return annotation of component '{node.component.name}'"
    if node is not None:
        return f"the output type of {node.kind} node '{node.id}'"
    return "its port"


def output_problem(graph: Graph, outputs: Mapping[str, Any]) -> OutputProblem | None:
    """The first output in ``outputs`` (port name to value, as a top-level frame ends) that
    does not fit what ``graph`` declares for it, or None when all fit."""
    for wanted in expectations(graph):
        if wanted.output not in outputs:
            continue
        got = port_types.mismatch(outputs[wanted.output], wanted.annotation)
        if got is not None:
            return OutputProblem(wanted, got)
    return None


def output_error(graph: Graph, outputs: Mapping[str, Any], *, item: int) -> OutputError | None:
    """:func:`output_problem` as the :class:`OutputError` that fails item ``item``."""
    problem = output_problem(graph, outputs)
    if problem is None:
        return None
    wanted = problem.expectation
    return OutputError(str(problem), item=item, output=wanted.output, node=wanted.node,
                       location=wanted.location)
