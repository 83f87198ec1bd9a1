"""The check: pure functions from a graph to the list of what is wrong with it.

``problems(graph, capacity=...)`` walks every node (nested map and branch bodies too) and
collects, without stopping at the first:

1. what tracing recorded: unknown or repeated arguments, duplicate output names;
2. an input port bound to nothing (and with no default);
3. an edge whose source type cannot feed the port (rules in :mod:`legato.types`);
4. a ``map`` over something that is not a list, or whose elements do not fit the body;
5. a batched component whose signature is not list in, list out;
6. a reference to a node that does not exist, or a cycle (only possible in hand-made graphs);
7. a resource request above what the backend has, or a custom resource it does not declare.

``check(graph)`` raises one :class:`GraphError` carrying them all. Nothing here runs a node.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from legato import types as port_types
from legato.errors import GraphError, Problem
from legato.graph import Const, Graph, Node, Ref
from legato.options import Resources

Capacity = Mapping[str, float]

_BUILTIN_RESOURCES = ("cpus", "gpus", "memory", "gpu_memory")


Placement = Callable[[Resources], str | None]
"""Why a request can never be placed (GPUs: device count and memory), or None."""


def problems(
    graph: Graph, *, capacity: Capacity | None = None, placement: Placement | None = None
) -> list[Problem]:
    """Everything wrong with ``graph``; empty when it is ready to run. ``capacity`` is what
    the backend has by name; ``placement`` answers for GPU requests, device by device."""
    found = list(graph.problems)
    _check_graph(graph, "", capacity, placement, found)
    return found


def check(
    graph: Graph, *, capacity: Capacity | None = None, placement: Placement | None = None
) -> None:
    """Raise :class:`GraphError` listing every problem of ``graph``, if it has any."""
    found = problems(graph, capacity=capacity, placement=placement)
    if found:
        raise GraphError(found, pipeline=graph.name)


def _check_graph(
    graph: Graph,
    prefix: str,
    capacity: Capacity | None,
    placement: Placement | None,
    out: list[Problem],
) -> None:
    out += _order_problems(graph, prefix)
    for node in graph.nodes.values():
        name = prefix + node.id
        out += [Problem(p.message, node=name, location=p.location or node.location)
                for p in node.problems]
        out += _binding_problems(graph, node, name)
        if node.kind == "call":
            out += _component_problems(node, name, capacity, placement)
        elif node.kind == "map":
            out += _map_problems(graph, node, name)
        for sub in (node.body, node.orelse):
            if sub is not None:
                out += [Problem(p.message, node=name, location=p.location) for p in sub.problems]
                _check_graph(sub, f"{name}/", capacity, placement, out)
    for output, source in graph.outputs.items():
        if isinstance(source, Ref) and source.node is not None and source.node not in graph.nodes:
            out.append(Problem(f"output '{output}' refers to unknown node '{source.node}'"))


def _order_problems(graph: Graph, prefix: str) -> list[Problem]:
    """Unknown upstream nodes, and cycles (a node reachable from itself)."""
    found: list[Problem] = []
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    for start in graph.nodes:
        if start in state:
            continue
        stack = [(start, iter(graph.nodes[start].upstream()))]
        state[start] = 1
        while stack:
            node_id, upstream = stack[-1]
            step = next(upstream, None)
            if step is None:
                state[node_id] = 2
                stack.pop()
            elif step not in graph.nodes:
                node = graph.nodes[node_id]
                found.append(Problem(f"reads from unknown node '{step}'", node=prefix + node_id,
                                     location=node.location))
            elif state.get(step) == 1:
                cycle = [n for n, _ in stack[[n for n, _ in stack].index(step):]] + [step]
                found.append(Problem("cycle: " + " -> ".join(prefix + n for n in cycle),
                                     node=prefix + step, location=graph.nodes[step].location))
            elif step not in state:
                state[step] = 1
                stack.append((step, iter(graph.nodes[step].upstream())))
    return found


def _binding_problems(graph: Graph, node: Node, name: str) -> list[Problem]:
    found: list[Problem] = []
    for port in node.input_ports:
        source = node.inputs.get(port.name)
        if source is None:
            if port.required:
                found.append(Problem(
                    f"input '{port}' is not bound; pass it when calling "
                    f"{node.id}(..., {port.name}=...)", node=name, location=node.location))
            continue
        if node.kind == "map" and port.name == "items":
            continue  # checked with the body, element by element
        given = _given_type(graph, source)
        if not port_types.compatible(given, port.annotation):
            found.append(Problem(
                f"input '{port.name}' expects {port_types.name(port.annotation)}, gets "
                f"{port_types.name(given)} from {_describe(source)}",
                node=name, location=node.location))
    return found


def _given_type(graph: Graph, source: Ref | Const) -> object:
    if isinstance(source, Const):
        return graph.source_annotation(source)
    if source.node is not None and source.node in graph.nodes:
        try:
            return graph.nodes[source.node].output(source.port).annotation
        except KeyError:
            return source.annotation
    return source.annotation


def _describe(source: Ref | Const) -> str:
    if isinstance(source, Const):
        return f"the constant {source.value!r:.40}"
    return source.label


def _component_problems(
    node: Node, name: str, capacity: Capacity | None, placement: Placement | None
) -> list[Problem]:
    component = node.component
    if component is None:
        return []
    found = [Problem(message, node=name, location=node.location)
             for message in component.signature_problems()]
    if capacity is None:
        return found
    requests = component.options.requested.as_dict()
    gpu_reason = placement(component.options.resources) if placement is not None else None
    if gpu_reason is not None and component.options.resources.gpus:
        requests.pop("gpus", None)
        requests.pop("gpu_memory", None)
        found.append(Problem(f"can never be placed: {gpu_reason}", node=name,
                             location=node.location))
    for resource, amount in requests.items():
        have = capacity.get(resource)
        if have is None and resource not in _BUILTIN_RESOURCES:
            found.append(Problem(
                f"asks for resource '{resource}'={amount:g}, which this backend does not have; "
                f"declare it, e.g. pipeline.run(..., resources={{'{resource}': {amount:g}}})",
                node=name, location=node.location))
        elif resource == "gpu_memory" and amount > (have or 0.0):
            found.append(Problem(
                f"asks for gpu_memory={_amount(resource, amount)}, more than the largest GPU "
                f"here has ({_amount(resource, have or 0.0)}); lower it or run on a bigger GPU",
                node=name, location=node.location))
        elif have is not None and amount > have:
            found.append(Problem(
                f"asks for {resource}={_amount(resource, amount)}, more than this backend's "
                f"whole capacity of {_amount(resource, have)}; lower the request or run where "
                f"there is more", node=name, location=node.location))
    return found


def _amount(resource: str, value: float) -> str:
    if resource in ("memory", "gpu_memory"):
        for unit, size in (("TiB", 2**40), ("GiB", 2**30)):
            if value >= size:
                return f"{value / size:.1f}{unit}"
        return f"{value / 2**20:.0f}MiB"
    return f"{value:g}"


def _map_problems(graph: Graph, node: Node, name: str) -> list[Problem]:
    assert node.body is not None
    source = node.inputs.get("items")
    if source is None or not node.body.inputs:
        return []
    given = _given_type(graph, source)
    element = port_types.list_item(given)
    first = node.body.inputs[0]
    if element is None:
        return [Problem(
            f"legato.map needs a list to map over, gets {port_types.name(given)} from "
            f"{_describe(source)}", node=name, location=node.location)]
    if not port_types.compatible(element, first.annotation):
        return [Problem(
            f"legato.map over {port_types.name(given)}: each element goes to input "
            f"'{first}' of '{node.body.name}', which does not accept "
            f"{port_types.name(element)}", node=name, location=node.location)]
    return []


__all__ = ["Capacity", "check", "problems"]
