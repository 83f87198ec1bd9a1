"""Outputs checked at the pipeline boundary: ``types.mismatch`` (a value against an annotation),
``outputs.output_problem`` (a graph's outputs against their declared types), and runs that fail
an item with ``OutputError`` (or not, with ``check_outputs=False``)."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import pickle
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal, NamedTuple, NewType, Optional, Protocol, TypedDict

import numpy as np
import numpy.typing as npt
import pydantic
import pytest

import legato as lg
from legato.outputs import expectations, output_error, output_problem
from legato.types import mismatch


class Animal(pydantic.BaseModel):
    name: str


@dataclasses.dataclass
class Point:
    x: float
    y: float


class Pair(NamedTuple):
    a: int
    b: str


class Movie(TypedDict):
    title: str


class Closeable(Protocol):
    def close(self) -> None: ...


UserId = NewType("UserId", int)


# -- a value against an annotation -------------------------------------------------------------


@pytest.mark.parametrize(("value", "annotation"), [
    (3, Any), (3, object), ("x", "SomeUnresolvedName"), (object(), Closeable),
    (3, int), (True, int), (3, float), (np.int64(3), int), (np.float32(1.5), float),
    (2.5, complex), ("a", str), (None, None), (None, Optional[int]), (3, int | None),  # noqa: UP045
    (3, Annotated[int, "meta"]), (UserId(3), UserId), ("a", Literal["a", "b"]),
    ([1, 2], list[int]), ([1, 2], Sequence[float]), ((1, "a"), tuple[int, str]),
    ((1, 2, 3), tuple[int, ...]), ({"a": 1}, dict[str, int]), ({"a": 1}, Mapping[str, int]),
    ({1, 2}, set[int]), (frozenset({1}), frozenset[int]), (Animal(name="rex"), Animal),
    (Point(1, 2), Point), (Pair(1, "a"), Pair), ({"title": "x"}, Movie),
    (np.zeros(2), npt.NDArray[np.float64]), (int, type[int]), (bool, type[int]),
    (len, Callable[[Any], int]), (iter([1, "a"]), Iterator[int]), ([[1], [2]], list[list[int]]),
    ("abc", Sequence[str]), ([], list[int]), ({}, dict[str, int]),
])
def test_a_value_that_fits_its_annotation_has_no_mismatch(value: Any, annotation: Any) -> None:
    assert mismatch(value, annotation) is None


@pytest.mark.parametrize(("value", "annotation", "got"), [
    (3, str, "int 3"),
    ("3", int, "str '3'"),
    (1.5, int, "float 1.5"),
    (None, int, "None"),
    (3, None, "int 3"),
    ("x", int | None, "str 'x'"),
    ("c", Literal["a", "b"], "str 'c'"),
    (1, Literal[True], "int 1"),
    ((1, 2), list[int], "tuple"),
    ([1, "a"], list[int], "str 'a' at [1]"),
    ([[1], ["a"]], list[list[int]], "str 'a' at [1][0]"),
    ((1, 2), tuple[int, str], "int 2 at [1]"),
    ((1, "a", 3), tuple[int, str], "tuple of 3 (expected 2)"),
    ({"a": "b"}, dict[str, int], "str 'b' at ['a']"),
    ({1: 1}, dict[str, int], "int 1 at key 1"),
    ({"x"}, set[int], "str 'x' at element"),
    ({"x": 1}, Animal, "dict"),
    ([1.0], npt.NDArray[np.float64], "list"),
    (str, type[int], "type str"),
    (3, Movie, "int 3"),
])
def test_a_value_that_does_not_fit_says_what_it_is(value: Any, annotation: Any, got: str) -> None:
    assert mismatch(value, annotation) == got


def test_a_long_list_is_sampled_at_both_ends_not_walked() -> None:
    values: list[Any] = list(range(10_000))
    values[5_000] = "hidden in the middle"
    assert mismatch(values, list[int]) is None  # not every element: cheap on a big list
    values[-1] = "at the end"
    assert mismatch(values, list[int]) == "str 'at the end' at [9999]"
    values[-1], values[1] = 0, "near the start"
    assert mismatch(values, list[int]) == "str 'near the start' at [1]"


def test_an_iterator_is_never_consumed() -> None:
    items = iter(["a", "b"])
    assert mismatch(items, Iterator[int]) is None
    assert list(items) == ["a", "b"]


# -- a graph's outputs against their declared types --------------------------------------------


@lg.component(executor="inline")
def as_text(x: int) -> str:
    return str(x)


@lg.component(executor="inline")
def untyped(x: int):  # type: ignore[no-untyped-def]
    return x


@lg.component(executor="inline")
def liar(x: int) -> str:
    return x  # type: ignore[return-value]


@lg.component(executor="inline")
def anything(x: int) -> Any:
    return x


class Named(NamedTuple):
    text: str
    number: int


def test_an_unannotated_pipeline_of_untyped_components_expects_nothing() -> None:
    @lg.pipeline
    def free(x: int):  # type: ignore[no-untyped-def]
        return untyped(x)

    assert expectations(free.graph) == ()
    assert output_problem(free.graph, {"out": object()}) is None


def test_the_producing_components_return_annotation_is_checked() -> None:
    @lg.pipeline
    def p(x: int):  # type: ignore[no-untyped-def]
        return as_text(x)

    assert output_problem(p.graph, {"out": "3"}) is None
    problem = output_problem(p.graph, {"out": 3})
    assert problem is not None
    assert problem.expectation.node == "as_text"
    assert str(problem).startswith(
        "output 'out' from node 'as_text' (")
    assert "is int 3, expected str (the return annotation of component 'as_text')" in str(problem)
    assert "check_outputs=False" in str(problem)


def test_the_pipelines_return_annotation_is_checked() -> None:
    @lg.pipeline
    def p(x: int) -> int:
        return anything(x)

    problem = output_problem(p.graph, {"out": "three"})
    assert problem is not None
    assert "is str 'three', expected int (the return annotation of pipeline 'p')" in str(problem)
    assert problem.expectation.node == "anything"


def test_named_outputs_are_checked_field_by_field() -> None:
    @lg.pipeline
    def p(x: int) -> Named:
        return Named(text=as_text(x), number=anything(x))

    assert output_problem(p.graph, {"text": "1", "number": 1}) is None
    problem = output_problem(p.graph, {"text": "1", "number": "1"})
    assert problem is not None
    assert problem.expectation.output == "number"
    assert "output 'number' from node 'anything'" in str(problem)


def test_a_mapped_output_names_the_inner_node() -> None:
    @lg.pipeline
    def p(xs: list[int]) -> list[str]:
        return lg.map(anything, xs)

    problem = output_problem(p.graph, {"out": ["a", 2]})
    assert problem is not None
    assert problem.expectation.node == "map_anything/anything"
    assert "is int 2 at [1], expected list[str]" in str(problem)


def test_inputs_passed_through_and_constants_are_not_checked() -> None:
    @lg.pipeline
    def p(x: int) -> dict[str, Any]:
        return {"same": x, "text": as_text(x)}

    assert [e.output for e in expectations(p.graph)] == ["text"]


def test_expectations_are_worked_out_once_per_graph() -> None:
    @lg.pipeline
    def p(x: int):  # type: ignore[no-untyped-def]
        return as_text(x)

    assert expectations(p.graph) is expectations(p.graph)


def test_output_error_names_item_output_and_node_and_survives_pickling() -> None:
    @lg.pipeline
    def p(x: int):  # type: ignore[no-untyped-def]
        return as_text(x)

    assert output_error(p.graph, {"out": "ok"}, item=2) is None
    error = output_error(p.graph, {"out": 3}, item=2)
    assert isinstance(error, lg.OutputError)
    assert isinstance(error, lg.LegatoError)
    assert isinstance(error, TypeError)  # as InputError is a ValueError
    assert not isinstance(error, lg.ComponentError)  # no call failed; nothing is retried
    assert (error.item, error.output, error.node) == (2, "out", "as_text")
    assert str(error).startswith("item 2: output 'out' from node 'as_text'")
    copy = pickle.loads(pickle.dumps(error))
    assert (str(copy), copy.item, copy.output, copy.node, copy.location) == (
        str(error), error.item, error.output, error.node, error.location)


# -- runs --------------------------------------------------------------------------------------


@lg.pipeline
def lying(x: int):  # type: ignore[no-untyped-def]
    return liar(x)


@lg.component(executor="inline")
def sometimes(x: int) -> int:
    return x if x != 2 else "two"  # type: ignore[return-value]


@lg.pipeline
def some(x: int):  # type: ignore[no-untyped-def]
    return sometimes(x)


def test_map_fails_only_the_item_whose_output_does_not_fit() -> None:
    results = list(some.map(range(4), on_error="collect"))
    assert results[:2] == [0, 1]
    assert results[3] == 3
    failure = results[2]
    assert isinstance(failure, lg.Failure)
    assert isinstance(failure.error, lg.OutputError)
    assert failure.error.node == "sometimes"
    assert "item 2: output 'out' from node 'sometimes'" in str(failure.error)
    assert "is str 'two', expected int" in str(failure.error)


def test_run_raises_output_error_and_check_outputs_false_lets_it_through() -> None:
    with pytest.raises(lg.OutputError, match=r"is int 3, expected str"):
        lying.run({"x": 3})
    assert lying.run({"x": 3}, check_outputs=False) == 3
    assert list(some.map(range(4), check_outputs=False)) == [0, 1, "two", 3]


def test_arun_checks_outputs_too() -> None:
    with pytest.raises(lg.OutputError, match="expected str"):
        asyncio.run(lying.arun({"x": 3}))
    assert asyncio.run(lying.arun({"x": 3}, check_outputs=False)) == 3


def test_a_failed_output_check_is_recorded_as_the_items_error(tmp_path: Any) -> None:
    from legato.store import Store

    store = str(tmp_path / "s.db")
    results = list(some.map(range(3), on_error="collect", store=store))
    assert isinstance(results[2], lg.Failure)
    with Store.open(store) as opened:
        (run,) = opened.runs()
        failed = [item for item in opened.items(run.id) if item.status == "failed"]
    assert [item.index for item in failed] == [2]
    assert "expected int" in (failed[0].error or "")


def test_legato_map_writes_an_output_error_as_the_items_failure_line_naming_the_node(
    tmp_path: Path,
) -> None:
    fixture = Path(__file__).resolve().parent / "fixtures" / "cli_outputs.py"
    data, out = tmp_path / "items.jsonl", tmp_path / "out.jsonl"
    data.write_text("".join(json.dumps({"x": x}) + "\n" for x in range(3)))
    done = subprocess.run(
        [sys.executable, "-m", "legato.cli", "map", f"{fixture}:counted", str(data), "-o",
         str(out), "--no-store", "--no-progress"],
        capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 1, done.stderr
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [line.get("output") for line in lines] == [0, None, 2]
    assert lines[1]["node"] == "count"
    assert lines[1]["line"] == 2
    assert "output 'out' from node 'count'" in lines[1]["error"]
    assert "is str 'one', expected int" in lines[1]["error"]
