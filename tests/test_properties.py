"""Property tests on random DAGs: pipelines built from a random description (each node sums its
inputs plus its own number, on a random executor) give what plain Python computes, run every
node exactly once per item after its inputs, and the check counts every ill-typed edge."""

from __future__ import annotations

import inspect
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import legato as lg
from harness import Events
from legato.backends.local import LocalBackend
from shapes.order import verify

EXECUTORS = ("inline", "thread", "async")


@dataclass(frozen=True)
class NodeSpec:
    sources: tuple[str, ...]  # graph inputs "x0".. and earlier nodes "n0"..; repeats allowed
    executor: str
    gives_str: bool = False  # for the check property: this node's output port is a str


@dataclass(frozen=True)
class Dag:
    inputs: tuple[str, ...]
    nodes: tuple[NodeSpec, ...]

    def evaluate(self, values: dict[str, int]) -> dict[str, int]:
        """The answer, in plain Python."""
        env = dict(values)
        for index, node in enumerate(self.nodes):
            env[f"n{index}"] = sum(env[s] for s in node.sources) + index
        return {f"n{i}": env[f"n{i}"] for i in range(len(self.nodes))}


@st.composite
def dags(draw: st.DrawFn, *, max_nodes: int = 12, typed: bool = False) -> Dag:
    inputs = tuple(f"x{i}" for i in range(draw(st.integers(1, 3))))
    nodes: list[NodeSpec] = []
    for index in range(draw(st.integers(1, max_nodes))):
        available = list(inputs) + [f"n{j}" for j in range(index)]
        # favour recent nodes so that long chains appear as well as wide fans
        sources = draw(st.lists(st.sampled_from(available[-6:] if draw(st.booleans())
                                                else available), min_size=1, max_size=4))
        nodes.append(NodeSpec(tuple(sources), draw(st.sampled_from(EXECUTORS)),
                              typed and draw(st.booleans())))
    return Dag(inputs, tuple(nodes))


def _component(index: int, node: NodeSpec) -> lg.Component:
    names = [f"a{j}" for j in range(len(node.sources))]
    if node.executor == "async":

        async def fn(**kwargs: int) -> Any:
            return sum(kwargs.values()) + index
    else:

        def fn(**kwargs: int) -> Any:
            return sum(kwargs.values()) + index

    returned = str if node.gives_str else int
    fn.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [inspect.Parameter(n, inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=int)
         for n in names], return_annotation=returned)
    fn.__annotations__ = {**dict.fromkeys(names, int), "return": returned}
    fn.__name__ = fn.__qualname__ = f"n{index}"
    return lg.component(executor=node.executor)(fn)


def build(dag: Dag) -> lg.Pipeline:
    components = [_component(i, node) for i, node in enumerate(dag.nodes)]

    def body(*refs: Any) -> dict[str, Any]:
        env = dict(zip(dag.inputs, refs, strict=True))
        for index, node in enumerate(dag.nodes):
            env[f"n{index}"] = components[index](*(env[s] for s in node.sources))
        return {f"n{i}": env[f"n{i}"] for i in range(len(dag.nodes))}

    body.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [inspect.Parameter(n, inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=int)
         for n in dag.inputs])
    body.__annotations__ = dict.fromkeys(dag.inputs, int)
    body.__name__ = "random_dag"
    return lg.pipeline(body)


@pytest.fixture(scope="module")
def shared() -> Iterator[lg.Engine]:
    """One engine for every example (a fresh one each would dominate the time)."""
    with lg.Engine(LocalBackend()) as engine:
        yield engine


def _recorded(engine: lg.Engine) -> tuple[Events, Any]:
    events = Events()
    return events, engine.bus.subscribe(events)


values = st.integers(-1000, 1000)


@settings(max_examples=100, deadline=None)
@given(dag=dags(), data=st.data())
def test_random_dag_run_matches_plain_python_in_dependency_order(
    shared: lg.Engine, dag: Dag, data: st.DataObject
) -> None:
    pipeline = build(dag)
    inputs = {name: data.draw(values, label=name) for name in dag.inputs}
    events, stop = _recorded(shared)
    try:
        assert pipeline.run(inputs, engine=shared) == dag.evaluate(inputs)
    finally:
        stop()
    verify(pipeline.graph, events.all, items=1)


@settings(max_examples=60, deadline=None)
@given(dag=dags(max_nodes=8), data=st.data(), window=st.integers(1, 4), ordered=st.booleans())
def test_random_dag_map_gives_each_item_its_answer(
    shared: lg.Engine, dag: Dag, data: st.DataObject, window: int, ordered: bool
) -> None:
    pipeline = build(dag)
    items = data.draw(st.lists(st.fixed_dictionaries({n: values for n in dag.inputs}),
                               min_size=1, max_size=6), label="items")
    events, stop = _recorded(shared)
    try:
        results = list(pipeline.map(items, engine=shared, window=window, ordered=ordered))
    finally:
        stop()
    expected = [dag.evaluate(item) for item in items]
    if ordered:
        assert results == expected
    else:
        key = repr
        assert sorted(map(key, results)) == sorted(map(key, expected))
    verify(pipeline.graph, events.all, items=len(items))


@settings(max_examples=40, deadline=None)
@given(dag=dags(max_nodes=6), xs=st.lists(values, max_size=5))
def test_random_dag_as_a_map_body_runs_once_per_element(
    shared: lg.Engine, dag: Dag, xs: list[int]
) -> None:
    one_input = Dag(("x0",), tuple(
        NodeSpec(tuple(s if s.startswith("n") else "x0" for s in node.sources), node.executor)
        for node in dag.nodes))
    body = build(one_input)

    @lg.pipeline
    def outer(xs: list[int]):  # the body has named outputs: one list per output
        return lg.map(body, xs)

    events, stop = _recorded(shared)
    try:
        result = outer.run(xs=xs, engine=shared)
    finally:
        stop()
    outputs = [f"n{i}" for i in range(len(one_input.nodes))]
    expected = {name: [one_input.evaluate({"x0": x})[name] for x in xs] for name in outputs}
    assert result == expected  # one list per output of the body
    verify(outer.graph, events.all, items=1)


@settings(max_examples=60, deadline=None)
@given(dag=dags(typed=True))
def test_check_reports_one_problem_per_ill_typed_edge(shared: lg.Engine, dag: Dag) -> None:
    pipeline = build(dag)
    bad_edges = [(index, port) for index, node in enumerate(dag.nodes)
                 for port, source in enumerate(node.sources)
                 if source.startswith("n") and dag.nodes[int(source[1:])].gives_str]
    found = pipeline.problems(engine=shared)
    assert len(found) == len(bad_edges)
    for problem, (index, port) in zip(found, bad_edges, strict=True):
        assert problem.node == f"n{index}"
        assert f"input 'a{port}' expects int, gets str from" in problem.message


def test_random_dag_strategy_produces_fans_chains_and_repeated_edges() -> None:
    """The generator reaches the shapes the properties claim to cover: repeated edges, fans
in and out, long chains, and every executor."""
    seen: set[str] = set()
    lock = threading.Lock()

    @settings(max_examples=200, deadline=None, derandomize=True)  # a fixed sample: no flake
    @given(dag=dags())
    def look(dag: Dag) -> None:
        with lock:
            for node in dag.nodes:
                if len(node.sources) != len(set(node.sources)):
                    seen.add("repeat")
                if len(node.sources) >= 3:
                    seen.add("fan-in")
            readers: dict[str, int] = {}
            for node in dag.nodes:
                for s in set(node.sources):
                    readers[s] = readers.get(s, 0) + 1
            if any(count >= 3 for count in readers.values()):
                seen.add("fan-out")
            depth: dict[str, int] = dict.fromkeys(dag.inputs, 0)
            for i, node in enumerate(dag.nodes):
                depth[f"n{i}"] = 1 + max(depth[s] for s in node.sources)
            if max(depth.values()) >= 6:
                seen.add("chain")
            seen.update(node.executor for node in dag.nodes)

    look()
    assert {"repeat", "fan-in", "fan-out", "chain", *EXECUTORS} <= seen
