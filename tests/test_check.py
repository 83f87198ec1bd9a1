"""The check: one test per kind of problem, each asserting the message, the node it names and
the file:line where that node was created; and every problem reported at once."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, NamedTuple, Optional, Union

import numpy as np
import numpy.typing as npt
import pydantic
import pytest

import legato as lg
from legato.backends.local import LocalBackend
from legato.check import check, problems
from legato.graph import Graph, Node, Ref
from legato.types import name

Where = Callable[[str], str]


@pytest.fixture
def small() -> lg.Engine:
    """An engine over a backend declaring 2 cpus, 1 GiB, no gpus and no custom resources."""
    with lg.Engine(LocalBackend(cpus=2, memory=2**30)) as eng:
        yield eng


def _problems(pipeline: lg.Pipeline, engine: lg.Engine, **kwargs: Any) -> list[lg.Problem]:
    with pytest.raises(lg.GraphError) as info:
        pipeline.check(engine=engine, **kwargs)
    assert info.value.problems == pipeline.problems(engine=engine, **kwargs)
    return info.value.problems


def _only(pipeline: lg.Pipeline, engine: lg.Engine, **kwargs: Any) -> lg.Problem:
    found = _problems(pipeline, engine, **kwargs)
    assert len(found) == 1, found
    return found[0]


@lg.component
def pair(a: int, b: int) -> int:
    return a + b


@lg.component
def ident(x: int) -> int:
    return x


@lg.component
def numbers(n: int) -> list[int]:
    return list(range(n))


# -- binding --------------------------------------------------------------------------------


def test_check_rejects_an_unbound_input(small: lg.Engine, where: Where) -> None:
    @lg.pipeline
    def p(x: int) -> int:
        return pair(x)  # unbound

    problem = _only(p, small)
    assert problem.node == "pair"
    assert "input 'b: int' is not bound; pass it when calling pair(..., b=...)" in str(problem)
    assert where("# unbound") in str(problem)


def test_check_rejects_an_unknown_keyword_argument_listing_the_inputs(
    small: lg.Engine, where: Where
) -> None:
    @lg.pipeline
    def p(x: int) -> int:
        return ident(x, y=x)  # unknown kwarg

    problem = _only(p, small)
    assert problem.node == "ident"
    assert "'ident' has no input 'y'; its inputs are: x: int" in str(problem)
    assert where("# unknown kwarg") in str(problem)


def test_check_rejects_too_many_positional_arguments(small: lg.Engine, where: Where) -> None:
    @lg.pipeline
    def p(x: int) -> int:
        return ident(x, x)  # too many

    problem = _only(p, small)
    assert "'ident' takes 1 input (x: int), got 2 positional arguments" in str(problem)
    assert where("# too many") in str(problem)


def test_check_rejects_an_input_given_twice(small: lg.Engine, where: Where) -> None:
    @lg.pipeline
    def p(x: int) -> int:
        return ident(x, x=x)  # twice

    problem = _only(p, small)
    assert "'ident' got input 'x' twice" in str(problem)
    assert where("# twice") in str(problem)


# -- port types -----------------------------------------------------------------------------


class Animal(pydantic.BaseModel):
    name: str


class Dog(Animal):
    pass


@dataclasses.dataclass
class Box:
    size: int


@dataclasses.dataclass
class BigBox(Box):
    pass


EDGES: list[tuple[Any, Any, bool]] = [
    (int, int, True),
    (int, str, False),
    (bool, int, True),
    (int, bool, False),
    (Dog, Animal, True),
    (Animal, Dog, False),
    (BigBox, Box, True),
    (Box, BigBox, False),
    (Box, Animal, False),
    (int, Optional[int], True),  # noqa: UP045 - typing.Optional is its own object
    (Optional[int], int, False),  # noqa: UP045
    (int | None, int, False),
    (int, Union[int, str], True),  # noqa: UP007 - typing.Union is its own object
    (int | str, str, False),
    (list[int], list[int], True),
    (list[int], list[float], True),
    (list[str], list[int], False),
    (list[int], int, False),
    (dict[str, int], dict[str, int], True),
    (dict[str, int], dict[str, str], False),
    (dict[str, int], dict, True),
    (Any, int, True),
    (str, Any, True),
    (np.ndarray, np.ndarray, True),
    (npt.NDArray[np.float32], np.ndarray, True),
    (list[float], np.ndarray, False),
    (np.ndarray, list[float], False),
]


def _typed(fn: Callable[..., Any], **annotations: Any) -> lg.Component:
    fn.__annotations__ = annotations
    return lg.component(fn)


# Each edge from a component's output and from a graph input; a component returning a
# dataclass gives one output per field, so dataclass values come from graph inputs only.
EDGE_CASES = [
    pytest.param(source, target, fits, via, id=f"{name(source)}->{name(target)}-{via}")
    for source, target, fits in EDGES
    for via in ("component", "graph_input")
    if not (via == "component" and dataclasses.is_dataclass(source))
]


@pytest.mark.parametrize(("source", "target", "fits", "via"), EDGE_CASES)
def test_check_port_types_of_every_edge(
    source: Any, target: Any, fits: bool, via: str, small: lg.Engine, where: Where
) -> None:

    def give(x: int) -> Any:
        return x

    def take(v: Any) -> int:
        return 0

    giver = _typed(give, x=int, **{"return": source})
    taker = _typed(take, v=target, **{"return": int})

    def body(v: Any) -> int:
        return taker(giver(v) if via == "component" else v)  # edge

    body.__annotations__ = {"v": int if via == "component" else source, "return": int}
    p = lg.pipeline(body)
    if fits:
        assert p.problems(engine=small) == []
        return
    problem = _only(p, small)
    assert problem.node == "take"
    origin = "'give'" if via == "component" else "input 'v'"
    assert (f"input 'v' expects {name(target)}, gets {name(source)} from {origin}"
            in str(problem))
    assert where("# edge") in str(problem)


def test_check_rejects_a_constant_of_the_wrong_type(small: lg.Engine, where: Where) -> None:
    @lg.pipeline
    def p(x: int) -> int:
        return pair(x, "one")  # constant

    problem = _only(p, small)
    assert "input 'b' expects int, gets str from the constant 'one'" in str(problem)
    assert where("# constant") in str(problem)


def test_check_rejects_a_graph_input_of_the_wrong_type(small: lg.Engine, where: Where) -> None:
    @lg.pipeline
    def p(x: str) -> int:
        return ident(x)  # graph input

    problem = _only(p, small)
    assert "input 'x' expects int, gets str from input 'x'" in str(problem)
    assert where("# graph input") in str(problem)


def test_check_rejects_a_type_hint_that_cannot_be_resolved(
    small: lg.Engine, where: Where
) -> None:
    """This module uses ``from __future__ import annotations``: a class local to a function
    cannot be found when the hints are resolved. The other hints must still resolve."""

    class Local(NamedTuple):
        a: int

    @lg.component
    def local_return(x: int) -> Local:
        return Local(x)

    assert local_return.inputs[0].annotation is int

    @lg.pipeline
    def p(x: int):
        return local_return(x)  # unresolved hint

    problem = _only(p, small)
    assert problem.node == "local_return"
    assert ("component 'local_return': the type hint 'Local' of the return type names something "
            "that cannot be found from its module") in str(problem)
    assert where("# unresolved hint") in str(problem)


# -- batching -------------------------------------------------------------------------------


@lg.component(batch=lg.Batch(max_size=4))
def per_item(x: int) -> int:
    return x


@lg.component(batch=lg.Batch(max_size=4))
def list_in_item_out(xs: list[int]) -> int:
    return len(xs)


def test_check_rejects_a_batched_component_that_is_not_list_in_list_out(
    small: lg.Engine, where: Where
) -> None:
    @lg.pipeline
    def p(x: int) -> int:
        return per_item(x)  # batched

    found = _problems(p, small)
    assert [str(f).split(": ", 1)[1] for f in found] == [
        "batched component 'per_item': input 'x' must be a list (list in, list out), got int",
        "batched component 'per_item': must return a list (list in, list out), returns int",
    ]
    assert all(f.node == "per_item" and where("# batched") in str(f) for f in found)


def test_check_rejects_a_batched_component_returning_one_value(
    small: lg.Engine, where: Where
) -> None:
    @lg.pipeline
    def p(x: int) -> int:
        return list_in_item_out(x)  # returns one

    problem = _only(p, small)
    assert "must return a list (list in, list out), returns int" in str(problem)
    assert where("# returns one") in str(problem)


# -- resources ------------------------------------------------------------------------------


@lg.component(gpus=1)
def on_gpu(x: int) -> int:
    return x


@lg.component(memory="100TiB")
def huge(x: int) -> int:
    return x


@lg.component(cpus=8)
def greedy(x: int) -> int:
    return x


@lg.component(resources={"asr": 1})
def recogniser(x: int) -> int:
    return x


def test_check_rejects_gpus_on_a_machine_without_any(small: lg.Engine, where: Where) -> None:
    @lg.pipeline
    def p(x: int) -> int:
        return on_gpu(x)  # gpu

    problem = _only(p, small)
    assert problem.node == "on_gpu"
    assert "asks for gpus=1, more than this backend's whole capacity of 0" in str(problem)
    assert where("# gpu") in str(problem)


def test_check_rejects_memory_above_the_machine(small: lg.Engine, where: Where) -> None:
    @lg.pipeline
    def p(x: int) -> int:
        return huge(x)  # memory

    problem = _only(p, small)
    assert "asks for memory=100.0TiB, more than this backend's whole capacity of 1.0GiB" \
        in str(problem)
    assert where("# memory") in str(problem)


def test_check_rejects_cpus_above_capacity(small: lg.Engine, where: Where) -> None:
    @lg.pipeline
    def p(x: int) -> int:
        return greedy(x)  # cpus

    problem = _only(p, small)
    assert "asks for cpus=8, more than this backend's whole capacity of 2" in str(problem)
    assert where("# cpus") in str(problem)


def test_check_rejects_an_undeclared_custom_resource(small: lg.Engine, where: Where) -> None:
    @lg.pipeline
    def p(x: int) -> int:
        return recogniser(x)  # custom

    problem = _only(p, small)
    assert problem.node == "recogniser"
    assert ("asks for resource 'asr'=1, which this backend does not have; declare it, e.g. "
            "pipeline.run(..., resources={'asr': 1})") in str(problem)
    assert where("# custom") in str(problem)


def test_declaring_the_resources_at_run_time_satisfies_the_check(small: lg.Engine) -> None:
    @lg.pipeline
    def p(x: int) -> int:
        return recogniser(on_gpu(x))

    assert len(_problems(p, small)) == 2
    assert p.problems(engine=small, resources={"asr": 1, "gpus": 1}) == []
    assert p.run(x=3, engine=small, resources={"asr": 2, "gpus": 1}) == 3


def test_a_backend_declaring_a_custom_resource_satisfies_the_check() -> None:
    with lg.Engine(LocalBackend(resources={"asr": 1})) as engine:

        @lg.pipeline
        def p(x: int) -> int:
            return recogniser(x)

        assert p.problems(engine=engine) == []


# -- outputs, map, branch -------------------------------------------------------------------


class Scores(NamedTuple):
    best: int
    worst: int


@lg.component
def score_a(x: int) -> Scores:
    return Scores(x, x)


@lg.component
def score_b(x: int) -> Scores:
    return Scores(x, x)


def test_check_rejects_duplicate_output_names(small: lg.Engine, where: Where) -> None:
    @lg.pipeline
    def p(x: int):
        a = score_a(x)
        b = score_b(x)  # second scores
        return a, b

    found = _problems(p, small)
    assert len(found) == 2
    for problem, output in zip(found, ["best", "worst"], strict=True):
        assert problem.node == "score_b"
        assert (f"duplicate output name '{output}' in the returned tuple (given by "
                f"'score_a.{output}' and 'score_b.{output}')") in str(problem)
        assert where("# second scores") in str(problem)


def test_check_rejects_a_returned_tuple_holding_a_constant(
    small: lg.Engine, where: Where
) -> None:
    @lg.pipeline  # pipeline defined here
    def p(x: int):
        return ident(x), 3

    problem = _only(p, small)
    assert "a returned tuple may hold only component outputs, got 3" in str(problem)
    assert where("# pipeline defined here") in str(problem)  # no node: the pipeline's place


def test_check_rejects_map_over_a_non_list(small: lg.Engine, where: Where) -> None:
    @lg.pipeline
    def p(x: int) -> list[int]:
        return lg.map(ident, ident(x))  # map non-list

    problem = _only(p, small)
    assert problem.node == "map_ident"
    assert "legato.map needs a list to map over, gets int from 'ident'" in str(problem)
    assert where("# map non-list") in str(problem)


def test_check_rejects_map_whose_elements_do_not_fit_the_body(
    small: lg.Engine, where: Where
) -> None:
    @lg.component
    def names(n: int) -> list[str]:
        return ["a"] * n

    @lg.pipeline
    def p(n: int) -> list[int]:
        return lg.map(ident, names(n))  # map elements

    problem = _only(p, small)
    assert ("legato.map over list[str]: each element goes to input 'x: int' of 'ident', which "
            "does not accept str") in str(problem)
    assert where("# map elements") in str(problem)


def test_check_rejects_a_map_body_problem_naming_the_nested_node(
    small: lg.Engine, where: Where
) -> None:
    @lg.pipeline
    def body(x: int) -> int:
        return pair(x)  # inner unbound

    @lg.pipeline
    def p(n: int) -> list[int]:
        return lg.map(body, numbers(n))

    problem = _only(p, small)
    assert problem.node == "map_body/pair"
    assert where("# inner unbound") in str(problem)


def test_check_rejects_branch_sides_with_different_outputs(
    small: lg.Engine, where: Where
) -> None:
    @lg.component
    def positive(x: int) -> bool:
        return x > 0

    @lg.pipeline
    def p(x: int):
        return lg.branch(positive(x), score_a, ident, x)  # branch sides

    found = _problems(p, small)
    assert len(found) == 2
    for problem, output in zip(found, ["best", "worst"], strict=True):
        assert problem.node == "branch_score_a"
        assert (f"legato.branch: 'score_a' gives output '{output}' but 'ident' does not; both "
                "branches must give the same outputs (it gives: out)") in str(problem)
        assert where("# branch sides") in str(problem)


# -- all at once ----------------------------------------------------------------------------


def test_graph_error_carries_every_problem_at_once(small: lg.Engine, where: Where) -> None:
    @lg.pipeline
    def p(x: int) -> int:
        a = pair(x)  # problem one
        b = on_gpu(a)  # problem two
        return ident(b, q=1)  # problem three

    with pytest.raises(lg.GraphError) as info:
        p.check(engine=small)
    found = info.value.problems
    assert len(found) == 3
    assert [f.node for f in found] == ["pair", "on_gpu", "ident"]
    text = [str(f) for f in found]
    assert where("# problem one") in text[0]
    assert "'b: int' is not bound" in text[0]
    assert where("# problem two") in text[1]
    assert "gpus=1" in text[1]
    assert where("# problem three") in text[2]
    assert "has no input 'q'" in text[2]
    assert str(info.value).startswith("pipeline 'p' has 3 problems:\n  - node 'pair'")
    assert all(line in str(info.value) for line in text)


def test_graph_error_counts_several_problems_on_one_node(small: lg.Engine) -> None:
    @lg.pipeline
    def p(x: str) -> int:
        return pair(x, y=2)

    found = _problems(p, small)
    assert [f.node for f in found] == ["pair", "pair", "pair"]
    assert "has no input 'y'" in str(found[0])
    assert "input 'a' expects int, gets str from input 'x'" in str(found[1])
    assert "'b: int' is not bound" in str(found[2])


def test_a_run_checks_first_and_runs_nothing_on_a_graph_error(small: lg.Engine) -> None:
    calls: list[int] = []

    @lg.component
    def record(x: int) -> int:
        calls.append(x)
        return x

    @lg.pipeline
    def p(x: int) -> int:
        return pair(record(x))

    with pytest.raises(lg.GraphError):
        p.run(x=1, engine=small)
    with pytest.raises(lg.GraphError):
        list(p.map([1, 2], engine=small))
    assert calls == []


# -- hand-made graphs -----------------------------------------------------------------------


def _node(node_id: str, upstream: str) -> Node:
    return Node(id=node_id, kind="call", inputs={"x": Ref(upstream, "out", int)},
                input_ports=ident.inputs, outputs=ident.outputs, location=f"made.py:{node_id}",
                target=ident)


def test_check_finds_a_cycle_in_a_hand_made_graph() -> None:
    graph = Graph("loop", (), {"a": _node("a", "b"), "b": _node("b", "a")}, {})
    found = problems(graph)
    assert [str(f) for f in found] == ["node 'a' (made.py:a): cycle: a -> b -> a"]
    with pytest.raises(lg.GraphError, match=r"^pipeline 'loop' has 1 problem"):
        check(graph)


def test_check_finds_a_reference_to_an_unknown_node() -> None:
    graph = Graph("dangling", (), {"a": _node("a", "ghost")}, {"out": Ref("nowhere", "out")})
    messages = [str(f) for f in problems(graph)]
    assert "node 'a' (made.py:a): reads from unknown node 'ghost'" in messages
    assert "output 'out' refers to unknown node 'nowhere'" in messages
