"""``legato.map`` and ``legato.branch``: the constructs whose nodes hold sub-graphs.

Inside a pipeline body, ``legato.map(target, items, ...)`` adds one ``map`` node that runs
``target``'s graph (a component's one-node graph, or a pipeline's) once per element of a list
known only at run time, and gathers each output into a list; ``legato.branch(condition,
if_true, if_false, ...)`` adds one ``branch`` node that runs one of two graphs, chosen by a
value known only at run time. Both are built on the active tracer
(:class:`~legato.tracing.Builder`); outside a pipeline body they raise a TracingError.
"""

from __future__ import annotations

from typing import Any

from legato.component import TRACER, Port, caller_location
from legato.errors import Problem, TracingError
from legato.graph import Graph, Node, Source
from legato.sources import bind, source_of
from legato.tracing import Builder, Target, graph_of


def annotation_of(graph: Graph, source: Source) -> Any:
    """The type of what ``source`` gives in ``graph`` (one of its outputs)."""
    return graph.source_annotation(source)


def map_node(builder: Builder, target: Any, items: Any, args: tuple[Any, ...],
             kwargs: dict[str, Any]) -> Any:
    """Add a ``map`` node to ``builder``: ``target``'s graph run once per element of ``items``
    (the body's first input), its other inputs bound from ``args`` and ``kwargs``; one list per
    output of the body."""
    body = graph_of(target)
    location = caller_location()
    if not body.inputs:
        raise TracingError(f"legato.map: '{body.name}' takes no input to map over",
                           location=location)
    first, rest = body.inputs[0], body.inputs[1:]
    bound, problems = bind(rest, args, kwargs, what=f"'{body.name}'")
    inputs: dict[str, Source] = {"items": source_of(items), **bound}
    item_port = Port("items", list[first.annotation])  # type: ignore[name-defined]
    node = Node(
        id=builder.new_id(f"map_{body.name}"),
        kind="map",
        inputs=inputs,
        input_ports=(item_port, *rest),
        outputs=tuple(
            Port(name, list[annotation_of(body, src)])  # type: ignore[misc]
            for name, src in body.outputs.items()
        ),
        location=location,
        body=body,
        problems=tuple(problems),
    )
    return builder.add(node)


def branch_node(
    builder: Builder,
    condition: Any,
    if_true: Any,
    if_false: Any,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> Any:
    """Add a ``branch`` node to ``builder``: ``if_true``'s graph, or ``if_false``'s (None:
    nothing, every output None), chosen at run time by ``condition``; both sides' inputs bound
    from ``args`` and ``kwargs``. Each output's type joins both sides' types."""
    location = caller_location()
    body = graph_of(if_true)
    orelse = graph_of(if_false) if if_false is not None else None
    problems: list[Problem] = []
    inputs: dict[str, Source] = {"condition": source_of(condition)}
    ports = [Port("condition", bool)]
    for prefix, graph in (("then", body), ("else", orelse)):
        if graph is None:
            continue
        bound, found = bind(graph.inputs, args, kwargs, what=f"'{graph.name}'")
        problems += found
        for port in graph.inputs:
            if port.name in bound:
                inputs[f"{prefix}.{port.name}"] = bound[port.name]
                ports.append(Port(f"{prefix}.{port.name}", port.annotation, port.default))
    outputs = []
    for name, src in body.outputs.items():
        annotation = annotation_of(body, src)
        if orelse is None:
            annotation = annotation | None
        elif name in orelse.outputs:
            other = annotation_of(orelse, orelse.outputs[name])
            annotation = annotation if annotation == other else annotation | other
        else:
            problems.append(Problem(
                f"legato.branch: '{body.name}' gives output '{name}' but '{orelse.name}' "
                f"does not; both branches must give the same outputs "
                f"(it gives: {', '.join(orelse.outputs)})", location=location))
        outputs.append(Port(name, annotation))
    node = Node(
        id=builder.new_id(f"branch_{body.name}"),
        kind="branch",
        inputs=inputs,
        input_ports=tuple(ports),
        outputs=tuple(outputs),
        location=location,
        body=body,
        orelse=orelse,
        problems=tuple(problems),
    )
    return builder.add(node)


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
    return map_node(_active("map"), target, items, args, kwargs)


def branch(
    condition: Any, if_true: Target, if_false: Target | None, /, *args: Any, **kwargs: Any
) -> Any:
    """Inside a pipeline: run ``if_true(*args, **kwargs)`` when ``condition`` is true at run
    time, else ``if_false(*args, **kwargs)`` (or give None when ``if_false`` is None).

    Only the chosen side runs. Both sides must give the same named outputs.
    """
    return branch_node(_active("branch"), condition, if_true, if_false, args, kwargs)


__all__ = ["branch", "branch_node", "map", "map_node"]
