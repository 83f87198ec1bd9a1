"""What a recorded node output depends on, so that a run resumed with new code reuses only what
the new code would compute the same.

- :func:`shape`: the graph's node ids, kinds and wiring, without any code. ``resume
  --retry-failed`` accepts a pipeline whose code changed only if its shape is the same.
- :func:`lineage`: for each call node, a digest of its component's fingerprint and of the
  lineage of everything it reads (upstream nodes, and for a node inside a map or branch body,
  what that map or branch reads). A recorded output is reusable when its node's lineage is
  unchanged: its own code and all the code upstream of it are the same.
- :func:`path_of`: the node path an execution is recorded under (``each[3]/score``) as the
  graph path these use (``each/score``); a branch's bodies are ``check/then/...`` and
  ``check/else/...`` in both.
"""

from __future__ import annotations

import hashlib
import re

from legato.graph import Const, Graph, Source, source_text

_INDEX = re.compile(r"\[\d+\]")


def _hash(parts: list[str]) -> str:
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def path_of(execution: str) -> str:
    """The graph path of a recorded node execution: map indices dropped."""
    return _INDEX.sub("", execution)


def shape(graph: Graph) -> str:
    """A digest of the graph's node ids, kinds and wiring (not of its code)."""
    parts = [graph.name, ",".join(port.name for port in graph.inputs)]
    _shape(graph, "", parts)
    return _hash(parts)


def _shape(graph: Graph, prefix: str, parts: list[str]) -> None:
    for node_id, node in graph.nodes.items():
        sources = ",".join(f"{port}<{source_text(src)}" for port, src in node.inputs.items())
        parts.append(f"{prefix}{node_id}:{node.kind}:{sources}")
        for label, body in _bodies(node.kind, node.body, node.orelse):
            _shape(body, f"{prefix}{node_id}/{label}", parts)
    parts.append(",".join(f"{name}<{source_text(src)}" for name, src in graph.outputs.items()))


def lineage(graph: Graph) -> dict[str, str]:
    """For each call node (by graph path), the digest of its code and its upstream's."""
    found: dict[str, str] = {}
    _lineage(graph, "", {port.name: f"input:{port.name}" for port in graph.inputs}, found)
    return found


def _lineage(graph: Graph, prefix: str, inputs: dict[str, str],
             found: dict[str, str]) -> dict[str, str]:
    """Fill ``found`` for ``graph``'s call nodes; return the lineage of each of its outputs.
    ``inputs``: the lineage of each of the graph's inputs."""
    local: dict[str, str] = {}

    def of(source: Source) -> str:
        if isinstance(source, Const):
            return f"const:{source_text(source)}"
        if source.node is None:
            return inputs.get(source.port, f"input:{source.port}")
        return local.get(source.node, f"node:{source.node}")

    for node_id, node in graph.nodes.items():
        reads = [f"{port}={of(src)}" for port, src in sorted(node.inputs.items())]
        if node.kind == "call":
            code = node.target.fingerprint() if node.target is not None else ""
            local[node_id] = found[f"{prefix}{node_id}"] = _hash([code, *reads])
            continue
        context = _hash([node.kind, *reads])
        outputs: list[str] = []
        for label, body in _bodies(node.kind, node.body, node.orelse):
            inner = {port.name: _hash([context, port.name]) for port in body.inputs}
            results = _lineage(body, f"{prefix}{node_id}/{label}", inner, found)
            outputs.extend(f"{label}{name}={value}" for name, value in sorted(results.items()))
        local[node_id] = _hash([context, *outputs])
    return {name: of(src) for name, src in graph.outputs.items()}


def _bodies(kind: str, body: Graph | None, orelse: Graph | None) -> list[tuple[str, Graph]]:
    if kind in ("branch", "loop"):  # a loop's orelse is its until graph
        labels = ("then/", "else/") if kind == "branch" else ("", "until/")
        return [(label, sub) for label, sub in zip(labels, (body, orelse), strict=True)
                if sub is not None]
    return [("", body)] if body is not None else []
