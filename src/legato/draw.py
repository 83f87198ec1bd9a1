"""Drawing and serialising graphs: Mermaid text, Graphviz DOT, and JSON.

Pure functions of a :class:`~legato.graph.Graph`; nothing here runs or checks anything.
"""

from __future__ import annotations

import re
from typing import Any

from legato import types as port_types
from legato.graph import Const, Graph, Node, Ref, Source

FORMAT_VERSION = 1


def _safe(node_id: str) -> str:
    return "n_" + re.sub(r"[^A-Za-z0-9_]", "_", node_id)


def _label(node: Node) -> str:
    if node.kind == "map":
        return f"map {node.body.name if node.body else ''}"
    if node.kind == "branch":
        other = node.orelse.name if node.orelse else "None"
        return f"branch {node.body.name if node.body else ''} / {other}"
    if node.kind == "loop":
        return f"loop {node.body.name if node.body else ''}"
    return node.id


def _repeat(node: Node) -> str:
    """What a loop node's edge back to itself says: its bound and its condition."""
    limit = node.inputs.get("max_iterations")
    bound = limit.value if isinstance(limit, Const) else "?"
    return f"again until {node.orelse.name if node.orelse else '?'}, at most {bound}"


def to_mermaid(graph: Graph) -> str:
    """A Mermaid flowchart: inputs, one box per node, edges labelled with their ports."""
    lines = ["flowchart LR"]
    for port in graph.inputs:
        label = _esc(f"{port.name}: {port_types.name(port.annotation)}")
        lines.append(f'    in_{_safe(port.name)}(["{label}"])')
    for node in graph.nodes.values():
        shape = ("{{", "}}") if node.kind != "call" else ("[", "]")
        lines.append(f'    {_safe(node.id)}{shape[0]}"{_esc(_label(node))}"{shape[1]}')
    for name in graph.outputs:
        lines.append(f'    out_{_safe(name)}(["{_esc(name)}"])')
    for node in graph.nodes.values():
        for port_name, source in node.inputs.items():
            if isinstance(source, Ref):
                lines.append(f"    {_from(source)} -->|{_esc(port_name)}| {_safe(node.id)}")
        if node.kind == "loop":
            lines.append(f"    {_safe(node.id)} -->|{_esc(_repeat(node))}| {_safe(node.id)}")
    for name, source in graph.outputs.items():
        if isinstance(source, Ref):
            lines.append(f"    {_from(source)} --> out_{_safe(name)}")
    return "\n".join(lines) + "\n"


def _from(source: Ref) -> str:
    return f"in_{_safe(source.port)}" if source.node is None else _safe(source.node)


def _esc(text: str) -> str:
    return text.replace('"', "'").replace("|", "/")


def to_dot(graph: Graph) -> str:
    """Graphviz DOT text, for ``dot -Tsvg`` or ``dot -Tpng``."""
    lines = [f'digraph "{graph.name}" {{', "  rankdir=LR;", '  node [fontname="Helvetica"];']
    for port in graph.inputs:
        lines.append(f'  in_{_safe(port.name)} [label="{port.name}", shape=oval];')
    for node in graph.nodes.values():
        shape = "box" if node.kind == "call" else "hexagon"
        lines.append(f'  {_safe(node.id)} [label="{_esc(_label(node))}", shape={shape}];')
    for name in graph.outputs:
        lines.append(f'  out_{_safe(name)} [label="{_esc(name)}", shape=oval];')
    for node in graph.nodes.values():
        for port_name, source in node.inputs.items():
            if isinstance(source, Ref):
                lines.append(f'  {_from(source)} -> {_safe(node.id)} [label="{_esc(port_name)}"];')
        if node.kind == "loop":
            lines.append(f'  {_safe(node.id)} -> {_safe(node.id)} '
                         f'[label="{_esc(_repeat(node))}", style=dashed];')
    for name, source in graph.outputs.items():
        if isinstance(source, Ref):
            lines.append(f"  {_from(source)} -> out_{_safe(name)};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _source_json(source: Source) -> dict[str, Any]:
    import json  # here, not at import: only drawing needs it

    if isinstance(source, Const):
        try:
            json.dumps(source.value)
            return {"const": source.value}
        except (TypeError, ValueError):
            return {"const_repr": repr(source.value)}
    return {"node": source.node, "port": source.port}


def to_dict(graph: Graph) -> dict[str, Any]:
    """A JSON-ready description of the graph (types as readable strings)."""
    nodes = []
    for node in graph.nodes.values():
        entry: dict[str, Any] = {
            "id": node.id,
            "kind": node.kind,
            "location": node.location,
            "inputs": {port: _source_json(src) for port, src in node.inputs.items()},
            "input_types": {p.name: port_types.name(p.annotation) for p in node.input_ports},
            "outputs": {p.name: port_types.name(p.annotation) for p in node.outputs},
        }
        component = node.component
        if component is not None:
            options = component.options
            entry["component"] = {
                "name": component.name,
                "qualname": component.qualname,
                "fingerprint": component.fingerprint(),
                "executor": options.executor,
                "resources": options.resources.as_dict(),
                "instances": options.instances,
                "batch": None if options.batch is None else {
                    "max_size": options.batch.max_size, "max_wait_ms": options.batch.max_wait_ms},
                "retries": options.retry.attempts - 1,
                "timeout": options.timeout,
                "version": options.version,
            }
        if node.body is not None:
            entry["body"] = to_dict(node.body)
        if node.orelse is not None:
            entry["orelse"] = to_dict(node.orelse)
        nodes.append(entry)
    return {
        "format": FORMAT_VERSION,
        "name": graph.name,
        "location": graph.location,
        "inputs": [{"name": p.name, "type": port_types.name(p.annotation),
                    **({} if p.required else {"default": repr(p.default)})} for p in graph.inputs],
        "nodes": nodes,
        "outputs": {name: _source_json(src) for name, src in graph.outputs.items()},
    }


def to_json(graph: Graph, *, indent: int | None = 2) -> str:
    """``to_dict`` as JSON text."""
    import json

    return json.dumps(to_dict(graph), indent=indent)
