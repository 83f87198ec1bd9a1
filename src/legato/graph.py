"""The graph a pipeline becomes: nodes, the references between them, and constants.

A :class:`Graph` is immutable plain data: named input ports, nodes in creation order (which is
also a topological order, since a node can only refer to nodes created before it), and named
outputs. Each node input is bound to a :class:`Ref` (another node's output port, or a graph
input when ``node`` is None) or a :class:`Const`.

Three kinds of node:

- ``call``: one call of a component (a function, or a class component's :class:`Instance`).
- ``map``: ``body`` (a graph) applied to each element of the ``items`` input; the outputs are
  lists, one element per input element (fan-out, then fan-in).
- ``branch``: ``condition`` chooses ``body`` (when true) or ``orelse`` (when false, may be
  absent: then every output is None).
- ``loop``: ``body`` (a graph) run again and again on a carried state (its ``state`` input,
  then each round's output), until ``orelse`` (the ``until`` graph) says True of the new state
  or ``max_iterations`` (a constant input) rounds have run; the output is the last state.

While a pipeline body is traced, :class:`Ref` stands for a value that does not exist yet; using it
as a Python value raises :class:`TracingError` saying what to use instead.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, NoReturn

from legato import types as port_types
from legato.component import Component, Instance, Port, caller_location
from legato.errors import Problem, TracingError

NodeKind = Literal["call", "map", "branch", "loop"]


class Ref:
    """A symbolic reference to output ``port`` of node ``node`` (``node=None``: a graph input).

    Only a pipeline body being traced holds these. Pass them to components, ``legato.map`` and
    ``legato.branch``; anything else (``if ref``, ``len(ref)``, ``ref + 1``, ``f"{ref}"``) is an
    error, because no value exists while the graph is being built.
    """

    __slots__ = ("annotation", "node", "port")

    def __init__(self, node: str | None, port: str, annotation: Any = Any) -> None:
        self.node = node
        self.port = port
        self.annotation = annotation

    @property
    def label(self) -> str:
        if self.node is None:
            return f"input '{self.port}'"
        whole = self.port in ("out", "*")
        return f"'{self.node}'" if whole else f"'{self.node}.{self.port}'"

    def __repr__(self) -> str:
        return f"Ref({self.label}: {port_types.name(self.annotation)})"

    def _misuse(self, what: str, instead: str) -> NoReturn:
        raise TracingError(
            f"{what} on {self.label}, a symbolic reference: inside a @pipeline body values do not "
            f"exist yet, the function only wires components together. {instead}",
            location=caller_location(),
        )

    def __bool__(self) -> bool:
        self._misuse("used as a condition (if/and/or/not)",
                     "Use legato.branch(condition, if_true, if_false, ...) to choose at run time.")

    def __len__(self) -> int:
        self._misuse("len() called", "Compute it inside a component.")

    def __iter__(self) -> Iterator[Any]:
        self._misuse("iterated over",
                     "Use legato.map(component, items) to run a component on each element.")

    def __contains__(self, item: object) -> bool:
        self._misuse("'in' used", "Compute it inside a component.")

    def __getitem__(self, key: object) -> Any:
        self._misuse(f"indexed with [{key!r}]",
                     "Pick the value inside a component, or return named outputs.")

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        self._misuse(f"attribute '.{name}' read",
                     "Only components with several named outputs (NamedTuple, dataclass, "
                     "TypedDict return) have attributes; compute it inside a component.")

    def __str__(self) -> str:
        self._misuse("converted to str (f-string, str(), print)",
                     "Format strings inside a component.")

    def __format__(self, spec: str) -> str:
        return self.__str__()

    def __eq__(self, other: object) -> bool:
        self._misuse("compared with ==", "Compare inside a component, then legato.branch on it.")

    def __ne__(self, other: object) -> bool:
        self._misuse("compared with !=", "Compare inside a component, then legato.branch on it.")

    def __hash__(self) -> int:
        return id(self)

    def __index__(self) -> int:
        self._misuse("used as an integer", "Compute it inside a component.")

    def __int__(self) -> int:
        self._misuse("converted with int()", "Convert inside a component.")

    def __float__(self) -> float:
        self._misuse("converted with float()", "Convert inside a component.")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self._misuse("called", "Call components, not their outputs.")


def _arith(symbol: str) -> Any:
    def op(self: Ref, *args: Any) -> Any:
        self._misuse(f"operator {symbol} applied",
                     "Do arithmetic and comparisons inside a component.")

    return op


for _name, _symbol in {
    "add": "+", "sub": "-", "mul": "*", "truediv": "/", "floordiv": "//", "mod": "%",
    "pow": "**", "matmul": "@", "and": "&", "or": "|", "xor": "^", "lshift": "<<",
    "rshift": ">>",
}.items():
    setattr(Ref, f"__{_name}__", _arith(_symbol))
    setattr(Ref, f"__r{_name}__", _arith(_symbol))
for _name, _symbol in {"lt": "<", "le": "<=", "gt": ">", "ge": ">=", "neg": "unary -",
                       "pos": "unary +", "abs": "abs()", "invert": "~"}.items():
    setattr(Ref, f"__{_name}__", _arith(_symbol))


class Outputs:
    """The named outputs of one node, each a :class:`Ref`: ``u.sentiment``, ``u["intent"]``,
    or unpacked in declaration order: ``sentiment, intent = understand(text)``.

    Passed whole to another component, a component's outputs stand for the value it returned
    (the NamedTuple, dataclass or dict itself): ``whole`` is the reference to that value.
    """

    __slots__ = ("_refs", "whole")

    def __init__(self, refs: Mapping[str, Ref], whole: Ref | None = None) -> None:
        object.__setattr__(self, "_refs", dict(refs))
        object.__setattr__(self, "whole", whole)

    def __getattr__(self, name: str) -> Ref:
        refs = object.__getattribute__(self, "_refs")
        if name in refs:
            return refs[name]
        if name.startswith("__"):
            raise AttributeError(name)
        available = ", ".join(f"{n}: {port_types.name(r.annotation)}" for n, r in refs.items())
        raise TracingError(
            f"no output named '{name}'; the outputs are: {available}",
            location=caller_location(),
        )

    def __getitem__(self, name: str) -> Ref:
        return self.__getattr__(name)

    def __iter__(self) -> Iterator[Ref]:
        return iter(self._refs.values())

    def __len__(self) -> int:
        return len(self._refs)

    def __bool__(self) -> bool:
        raise TracingError(
            "named outputs used as a condition; use legato.branch with one of the outputs",
            location=caller_location(),
        )

    def items(self) -> Iterator[tuple[str, Ref]]:
        return iter(self._refs.items())

    def __repr__(self) -> str:
        return f"Outputs({', '.join(self._refs)})"


@dataclass(frozen=True)
class Const:
    """A constant bound to a node input (a literal written in the pipeline body)."""

    value: Any


Source = Ref | Const


@dataclass(frozen=True, eq=False)
class Node:
    """One step of a graph. See the module docstring for the three kinds."""

    id: str
    kind: NodeKind
    inputs: Mapping[str, Source]
    input_ports: tuple[Port, ...]
    outputs: tuple[Port, ...]
    location: str | None = None
    target: Component | Instance | None = None
    body: Graph | None = None
    orelse: Graph | None = None
    problems: tuple[Problem, ...] = ()

    @property
    def component(self) -> Component | None:
        """The component a ``call`` node runs."""
        if isinstance(self.target, Instance):
            return self.target.component
        return self.target

    def upstream(self) -> list[str]:
        """Ids of the nodes this one reads from, in port order, without repeats."""
        seen: dict[str, None] = {}
        for source in self.inputs.values():
            if isinstance(source, Ref) and source.node is not None:
                seen[source.node] = None
        return list(seen)

    def output(self, port: str) -> Port:
        for candidate in self.outputs:
            if candidate.name == port:
                return candidate
        raise KeyError(port)


_GRAPH_UIDS = itertools.count(1)


@dataclass(frozen=True, eq=False)
class Graph:
    """An immutable pipeline graph: inputs, nodes (in a topological order), outputs.

    ``output_annotation`` is the type a run returns: the pipeline's return annotation when it
    names a NamedTuple, dataclass or TypedDict, else the single output's type (or a dict).
    """

    name: str
    inputs: tuple[Port, ...]
    nodes: Mapping[str, Node]
    outputs: Mapping[str, Source]
    output_annotation: Any = Any
    location: str | None = None
    problems: tuple[Problem, ...] = field(default=())
    uid: int = field(default_factory=lambda: next(_GRAPH_UIDS), repr=False)
    """This graph's id in this process, never reused (caches key on it)."""

    def input(self, name: str) -> Port:
        for port in self.inputs:
            if port.name == name:
                return port
        raise KeyError(name)

    def source_annotation(self, source: Source) -> Any:
        """The type of the value a source gives."""
        if isinstance(source, Const):
            return type(source.value) if source.value is not None else type(None)
        return source.annotation

    def downstream(self) -> dict[str, list[str]]:
        """For each node id, the ids of the nodes that read its outputs."""
        out: dict[str, list[str]] = {node_id: [] for node_id in self.nodes}
        for node in self.nodes.values():
            for upstream in node.upstream():
                if upstream in out:
                    out[upstream].append(node.id)
        return out

    def walk(self) -> Iterator[tuple[str, Node]]:
        """Every node, nested bodies included, with a dotted path: ``map_score/score``."""
        for node in self.nodes.values():
            yield node.id, node
            for sub in (node.body, node.orelse):
                if sub is not None:
                    for path, inner in sub.walk():
                        yield f"{node.id}/{path}", inner

    def caching(self) -> bool:
        """True when a component of the graph (nested bodies included) asks for caching."""
        return any(node.component is not None and node.component.options.cache
                   for _, node in self.walk())

    def fingerprint(self) -> str:
        """A hash of the wiring and of every component's fingerprint (code, version, weights,
        constructor arguments): the same for the same pipeline in any process, different when
        anything that may change a result changes. A resumed run must match it.

        Nothing in it names a place: node ids are names from the pipeline body, constants are
        their values (or type names), components count by their code
        (:mod:`legato.fingerprint`), so the pipeline loaded by path or imported as a module,
        from any directory, has one fingerprint."""
        import hashlib  # here, not at import: OpenSSL's 3 ms

        parts = [self.name, ",".join(port.name for port in self.inputs)]
        for path, node in self.walk():
            target = node.target.fingerprint() if node.target is not None else node.kind
            sources = ",".join(f"{port}<{source_text(src)}" for port, src in node.inputs.items())
            parts.append(f"{path}:{target}:{sources}")
        parts.append(",".join(f"{name}<{source_text(src)}" for name, src in self.outputs.items()))
        return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]

    def __len__(self) -> int:
        return len(self.nodes)

    def __repr__(self) -> str:
        return f"<Graph {self.name}: {len(self.inputs)} inputs, {len(self.nodes)} nodes>"


def source_text(source: Source) -> str:
    """A source as stable text: a reference's node and port, a plain constant's repr."""
    if isinstance(source, Const):
        value = source.value
        plain = value is None or isinstance(value, bool | int | float | str | bytes)
        return repr(value) if plain else f"<{type(value).__qualname__}>"
    return f"{source.node}.{source.port}"
