"""``legato.map``, ``legato.branch`` and ``legato.loop``: the constructs whose nodes hold
sub-graphs.

Inside a pipeline body, ``legato.map(target, items, ...)`` adds one ``map`` node that runs
``target``'s graph (a component's one-node graph, or a pipeline's) once per element of a list
known only at run time, and gathers each output into a list; ``legato.branch(condition,
if_true, if_false, ...)`` adds one ``branch`` node that runs one of two graphs, chosen by a
value known only at run time; ``legato.loop(body, state, until=, max_iterations=)`` adds one
``loop`` node that runs ``body``'s graph on a carried state, round after round, until
``until``'s graph says True or the bound is reached. All are built on the active tracer
(:class:`~legato.tracing.Builder`); outside a pipeline body they raise a TracingError.
"""

from __future__ import annotations

from typing import Any

from legato import types as port_types
from legato.component import TRACER, Port, caller_location
from legato.errors import Problem, TracingError
from legato.graph import Const, Graph, Node, Source
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


def loop_node(builder: Builder, body: Any, state: Any, until: Any, max_iterations: Any,
              kwargs: dict[str, Any]) -> Any:
    """Add a ``loop`` node to ``builder``: ``body``'s graph run on the carried state (its first
    input; its other inputs bound from ``kwargs``, the same each round) until ``until``'s graph
    says True of the new state, at most ``max_iterations`` rounds. The body must give one
    output, of the state's type (the check says so, with the file:line, when it does not)."""
    location = caller_location()
    graph, condition = graph_of(body), graph_of(until)
    problems: list[Problem] = []
    if (isinstance(max_iterations, bool) or not isinstance(max_iterations, int)
            or max_iterations < 1):
        problems.append(Problem(f"legato.loop: max_iterations must be an int >= 1, got "
                                f"{max_iterations!r}", location=location))
    if not graph.inputs or len(graph.outputs) != 1:
        raise TracingError(f"legato.loop: '{graph.name}' must take the state as its first input "
                           f"and give one output, the new state (it takes "
                           f"{len(graph.inputs)} and gives {len(graph.outputs)})",
                           location=location)
    first, rest = graph.inputs[0], graph.inputs[1:]
    (name, out), = graph.outputs.items()
    carried = annotation_of(graph, out)
    if not (port_types.compatible(carried, first.annotation)
            and port_types.compatible(first.annotation, carried)):
        problems.append(Problem(
            f"legato.loop: '{graph.name}' must give back the state's type: it takes "
            f"'{first}' but gives {port_types.name(carried)}; the carried state must be the "
            "same type in and out", location=location))
    if not condition.inputs or len(condition.outputs) != 1:
        raise TracingError(f"legato.loop: until= '{condition.name}' must take the state and "
                           "give one output, a bool", location=location)
    (_, said), = condition.outputs.items()
    if not port_types.compatible(annotation_of(condition, said), bool):
        problems.append(Problem(
            f"legato.loop: until= '{condition.name}' must give a bool, it gives "
            f"{port_types.name(annotation_of(condition, said))}", location=location))
    bound, found = bind(rest, (), kwargs, what=f"'{graph.name}'")
    problems += found
    inputs: dict[str, Source] = {"state": source_of(state),
                                 "max_iterations": Const(max_iterations)}
    ports = [Port("state", first.annotation), Port("max_iterations", int)]
    for port in rest:
        if port.name in bound:
            inputs[f"body.{port.name}"] = bound[port.name]
            ports.append(Port(f"body.{port.name}", port.annotation, port.default))
    node = Node(
        id=builder.new_id(f"loop_{graph.name}"),
        kind="loop",
        inputs=inputs,
        input_ports=tuple(ports),
        outputs=(Port(name, carried),),
        location=location,
        body=graph,
        orelse=condition,
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


def loop(body: Target, state: Any, /, *, until: Target, max_iterations: int,
         **kwargs: Any) -> Any:
    """Inside a pipeline: a bounded loop. Run ``body(state, **kwargs)`` to get a new state,
    then ``until(new_state)``; stop when it is True or after ``max_iterations`` rounds, and give
    the last state.

    ``body`` (a component or pipeline) takes the carried state as its first input and gives
    one output of the same type (the check verifies it); ``kwargs`` are its other inputs, the
    same each round. Each round runs its own node executions (named ``loop_NAME[i]/...`` in
    events and the store), so retries, caching and resume work per round: a resumed run goes
    on from the last finished round. ``legato.map`` inside the body fans out per round.
    """
    return loop_node(_active("loop"), body, state, until, max_iterations, kwargs)


__all__ = ["branch", "branch_node", "loop", "loop_node", "map", "map_node"]
