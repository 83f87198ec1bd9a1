"""Tracing: a pipeline body runs once with symbolic references; misusing one as a value fails at
the offending line with a TracingError that says what to use instead."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import pytest

import legato as lg
from legato.graph import Const, Ref


@lg.component
def ident(x: int) -> int:
    return x


class Split(NamedTuple):
    head: int
    tail: int


@lg.component
def split(x: int) -> Split:
    return Split(x, x)


@lg.component
class Model:
    def __init__(self, size: int = 1) -> None:
        self.size = size

    def __call__(self, x: int) -> int:
        return x * self.size


def _traced(body: Callable[[Any], Any]) -> lg.Pipeline:
    @lg.pipeline
    def misuse(x: int) -> int:
        y = ident(x)
        body(y)
        return y

    return misuse


def _truth(y: Any) -> None:
    if y:  # misuse: truth
        pass


def _length(y: Any) -> None:
    _ = [len(y)]  # misuse: len


def _arithmetic(y: Any) -> None:
    _ = y + 1  # misuse: add


def _reflected(y: Any) -> None:
    _ = 1 + y  # misuse: radd


def _iteration(y: Any) -> None:
    for _ in y:  # misuse: iterate
        pass


def _fstring(y: Any) -> None:
    _ = f"value={y}"  # misuse: fstring


def _comparison(y: Any) -> None:
    _ = y == 3  # misuse: eq


def _ordering(y: Any) -> None:
    _ = y < 3  # misuse: lt


def _indexing(y: Any) -> None:
    _ = y[0]  # misuse: getitem


def _attribute(y: Any) -> None:
    _ = y.shape  # misuse: attribute


def _conversion(y: Any) -> None:
    _ = int(y)  # misuse: int


def _membership(y: Any) -> None:
    _ = 3 in y  # misuse: contains


MISUSES = [
    (_truth, "truth", "used as a condition", "legato.branch"),
    (_length, "len", "len() called", "Compute it inside a component"),
    (_arithmetic, "add", "operator + applied", "Do arithmetic and comparisons inside a component"),
    (_reflected, "radd", "operator + applied", "Do arithmetic and comparisons inside a component"),
    (_iteration, "iterate", "iterated over", "legato.map(component, items)"),
    (_fstring, "fstring", "converted to str", "Format strings inside a component"),
    (_comparison, "eq", "compared with ==", "then legato.branch on it"),
    (_ordering, "lt", "operator < applied", "inside a component"),
    (_indexing, "getitem", "indexed with [0]", "return named outputs"),
    (_attribute, "attribute", "attribute '.shape' read", "named outputs"),
    (_conversion, "int", "converted with int()", "Convert inside a component"),
    (_membership, "contains", "'in' used", "Compute it inside a component"),
]


@pytest.mark.parametrize(("body", "marker", "what", "instead"), MISUSES,
                         ids=[m[1] for m in MISUSES])
def test_misusing_a_reference_raises_tracing_error_saying_what_to_use_instead(
    body: Callable[[Any], Any], marker: str, what: str, instead: str,
    where: Callable[[str], str], engine: lg.Engine,
) -> None:
    pipeline = _traced(body)
    with pytest.raises(lg.TracingError) as info:
        pipeline.check(engine=engine)
    message = str(info.value)
    assert what in message
    assert instead in message
    assert "'ident'" in message  # the reference misused
    assert where(f"# misuse: {marker}") in message
    assert info.value.pipeline == "misuse"


def test_tracing_error_stops_a_run_before_any_node_runs(engine: lg.Engine) -> None:
    calls: list[int] = []

    @lg.component
    def record(x: int) -> int:
        calls.append(x)
        return x

    @lg.pipeline
    def broken(x: int) -> int:
        y = record(x)
        if y:
            return y
        return y

    with pytest.raises(lg.TracingError):
        broken.run(x=1, engine=engine)
    assert calls == []


def test_tracing_error_is_a_graph_error_with_one_problem() -> None:
    pipeline = _traced(_length)
    with pytest.raises(lg.GraphError) as info:
        pipeline.graph  # noqa: B018 - tracing happens on first access
    assert isinstance(info.value, lg.TracingError)
    assert len(info.value.problems) == 1


def test_unknown_named_output_lists_the_outputs_there_are(where: Callable[[str], str]) -> None:
    @lg.pipeline
    def p(x: int) -> int:
        return split(x).middle  # unknown output

    with pytest.raises(lg.TracingError, match=r"no output named 'middle'; the outputs are: "
                                              r"head: int, tail: int") as info:
        p.graph  # noqa: B018
    assert where("# unknown output") in str(info.value)


def test_named_outputs_used_as_a_condition_raise_tracing_error() -> None:
    @lg.pipeline
    def p(x: int) -> int:
        parts = split(x)
        return parts.head if parts else parts.tail

    with pytest.raises(lg.TracingError, match=r"use legato\.branch with one of the outputs"):
        p.graph  # noqa: B018


def test_a_components_named_outputs_passed_whole_give_the_value_it_returned() -> None:
    @lg.component
    def total(parts: Split) -> int:
        return parts.head + parts.tail

    @lg.pipeline
    def p(x: int) -> int:
        return total(split(x))

    assert p.run(x=4) == 8


def test_passing_a_nested_pipelines_named_outputs_as_one_value_says_to_pick_one() -> None:
    @lg.pipeline
    def inner(x: int) -> dict[str, int]:
        return {"head": ident(x), "tail": ident(x)}

    @lg.pipeline
    def p(x: int) -> list[int]:
        return lg.map(ident, inner(x))

    with pytest.raises(lg.TracingError, match=r"pick one, e\.g\. result\.head"):
        p.graph  # noqa: B018


def test_passing_a_component_as_a_value_says_to_call_it() -> None:
    @lg.pipeline
    def p(x: int) -> int:
        return ident(ident)

    with pytest.raises(lg.TracingError, match="passed as a value; call it to get its output"):
        p.graph  # noqa: B018


def test_mapping_an_uninstantiated_class_component_says_to_instantiate_it() -> None:
    @lg.pipeline
    def p(xs: list[int]) -> list[int]:
        return lg.map(Model, xs)

    with pytest.raises(lg.TracingError, match=r"must be instantiated first: use Model\(\.\.\.\)"):
        p.graph  # noqa: B018


def test_map_outside_a_pipeline_raises_tracing_error() -> None:
    with pytest.raises(lg.TracingError, match=r"legato\.map\(\) is used inside a @pipeline"):
        lg.map(ident, [1, 2])


def test_branch_outside_a_pipeline_raises_tracing_error() -> None:
    with pytest.raises(lg.TracingError, match=r"legato\.branch\(\) is used inside a @pipeline"):
        lg.branch(True, ident, None, 1)


def test_a_pipeline_body_that_raises_gives_graph_error_at_the_raising_line(
    where: Callable[[str], str],
) -> None:
    @lg.pipeline
    def p(x: int) -> int:
        raise KeyError("oops")  # body raises

    with pytest.raises(lg.GraphError, match="the pipeline body raised KeyError") as info:
        p.graph  # noqa: B018
    assert where("# body raises") in str(info.value)
    assert isinstance(info.value.__cause__, KeyError)


# -- what tracing records ---------------------------------------------------------------------


def test_body_is_traced_once_however_many_runs(engine: lg.Engine) -> None:
    traced: list[int] = []

    @lg.pipeline
    def p(x: int) -> int:
        traced.append(1)
        return ident(x)

    assert [p.run(x=i, engine=engine) for i in range(3)] == [0, 1, 2]
    assert list(p.map(range(4), engine=engine)) == [0, 1, 2, 3]
    assert traced == [1]


def test_each_call_adds_a_node_with_a_unique_id_and_its_creation_line(
    where: Callable[[str], str],
) -> None:
    @lg.pipeline
    def p(x: int) -> int:
        a = ident(x)  # first call
        return ident(a)  # second call

    nodes = p.graph.nodes
    assert list(nodes) == ["ident", "ident_2"]
    assert nodes["ident"].location is not None
    assert nodes["ident"].location.endswith(where("# first call"))
    assert nodes["ident_2"].location.endswith(where("# second call"))
    source = nodes["ident_2"].inputs["x"]
    assert isinstance(source, Ref)
    assert (source.node, source.port) == ("ident", "out")


def test_literals_become_constants_and_defaults_are_bound() -> None:
    @lg.component
    def scale(x: int, k: int = 3) -> int:
        return k * x

    @lg.pipeline
    def p(x: int) -> int:
        return scale(scale(5, k=x))

    outer, inner = p.graph.nodes["scale_2"], p.graph.nodes["scale"]
    assert inner.inputs["x"] == Const(5)
    assert outer.inputs["k"] == Const(3)


def test_a_nested_pipeline_is_inlined_under_its_name() -> None:
    @lg.pipeline
    def inner(x: int) -> int:
        return ident(ident(x))

    @lg.pipeline
    def outer(x: int) -> int:
        return inner(inner(x))

    assert list(outer.graph.nodes) == ["inner/ident", "inner/ident_2", "inner_2/ident",
                                       "inner_2/ident_2"]
    first = outer.graph.nodes["inner_2/ident"].inputs["x"]
    assert isinstance(first, Ref)
    assert first.node == "inner/ident_2"


def test_graph_inputs_and_outputs_come_from_the_signature_and_return() -> None:
    @lg.pipeline
    def p(x: int, y: str = "a") -> Split:
        parts = split(x)
        return Split(head=parts.tail, tail=parts.head)

    graph = p.graph
    assert [(port.name, port.annotation, port.required) for port in graph.inputs] == [
        ("x", int, True), ("y", str, False)]
    assert list(graph.outputs) == ["head", "tail"]
    assert graph.output_annotation is Split


def test_a_class_component_called_in_a_pipeline_keeps_its_constructor_arguments() -> None:
    @lg.pipeline
    def p(x: int) -> int:
        return Model(size=4)(x)

    node = p.graph.nodes["model"]
    assert isinstance(node.target, lg.Instance)
    assert node.target.kwargs == {"size": 4}
