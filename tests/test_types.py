"""Port types: which source type may feed which target port, and coercion of graph inputs."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Literal, NamedTuple, NewType, Optional, TypeVar, Union

import numpy as np
import numpy.typing as npt
import pydantic
import pytest

import legato as lg
from legato.types import coerce, compatible, list_item, name


class Animal(pydantic.BaseModel):
    name: str


class Dog(Animal):
    good: bool = True


@dataclasses.dataclass
class Point:
    x: float
    y: float


@dataclasses.dataclass
class Point3(Point):
    z: float = 0.0


class Pair(NamedTuple):
    a: int
    b: int


UserId = NewType("UserId", int)
T = TypeVar("T")

# (source, target, compatible?)
TABLE: list[tuple[Any, Any, bool]] = [
    # exact types
    (int, int, True),
    (str, str, True),
    (int, str, False),
    (str, bytes, False),
    # subclasses fit their bases, not the other way round
    (bool, int, True),
    (int, bool, False),
    (Dog, Animal, True),
    (Animal, Dog, False),
    (Point3, Point, True),
    (Point, Point3, False),
    (Point, Animal, False),
    (Pair, tuple, True),
    # numeric tower
    (int, float, True),
    (int, complex, True),
    (float, complex, True),
    (float, int, False),
    # Optional and Union
    (int, Optional[int], True),  # noqa: UP045 - typing.Optional is its own object
    (None, Optional[int], True),  # noqa: UP045
    (type(None), int | None, True),
    (Optional[int], int, False),  # noqa: UP045
    (None, int, False),
    (int, Union[int, str], True),  # noqa: UP007 - typing.Union is its own object
    (str, int | str, True),
    (bytes, int | str, False),
    (int | str, int, False),
    (int | str, str | int | bytes, True),
    (int | None, float | None, True),
    # list[T] and other generics
    (list[int], list[int], True),
    (list[int], list[str], False),
    (list[int], list[float], True),
    (list, list[int], True),
    (list[int], list, True),
    (list[int], Sequence[int], True),
    (list[int], Sequence[str], False),
    (Sequence[int], list[int], False),
    (tuple[int, ...], Sequence[int], True),
    (tuple[int, str], tuple[int, str], True),
    (tuple[int, str], tuple[int, int], False),
    (tuple[int, int], tuple[int, ...], True),
    (list[list[int]], list[list[float]], True),
    (list[list[int]], list[list[str]], False),
    (list[Dog], list[Animal], True),
    (list[int], int, False),
    (int, list[int], False),
    (str, list[str], False),
    # dict
    (dict[str, int], dict[str, int], True),
    (dict[str, int], dict[str, float], True),
    (dict[str, int], dict[str, str], False),
    (dict[int, int], dict[str, int], False),
    (dict[str, int], dict, True),
    (dict[str, int], Mapping[str, int], True),
    (Mapping[str, int], dict[str, int], False),
    (dict[str, int], list[str], False),
    # Any, object, TypeVars on either side
    (Any, int, True),
    (int, Any, True),
    (Any, list[str], True),
    (list[str], object, True),
    (T, int, True),
    (list[int], list[T], True),
    # Annotated, NewType, Literal
    (Annotated[int, "meta"], int, True),
    (int, Annotated[str, "meta"], False),
    (UserId, int, True),
    (Literal["a", "b"], str, True),
    (Literal["a", 1], str, False),
    (str, Literal["a"], False),
    # numpy arrays
    (np.ndarray, np.ndarray, True),
    (npt.NDArray[np.float32], np.ndarray, True),
    (np.ndarray, npt.NDArray[np.float32], True),
    (npt.NDArray[np.float32], npt.NDArray[np.int64], True),  # dtype not checked statically
    (list[float], np.ndarray, False),
    (np.ndarray, list[float], False),
]


@pytest.mark.parametrize(("source", "target", "fits"), TABLE,
                         ids=[f"{name(s)}->{name(t)}" for s, t, _ in TABLE])
def test_compatible_truth_table(source: Any, target: Any, fits: bool) -> None:
    assert compatible(source, target) is fits


@pytest.mark.parametrize(
    ("annotation", "text"),
    [(int, "int"), (list[str], "list[str]"), (Optional[int], "int | None"),  # noqa: UP045
     (dict[str, list[int]], "dict[str, list[int]]"), (tuple[int, ...], "tuple[int, ...]"),
     (Any, "Any"), (Literal["a"], "Literal['a']"), (Dog, "Dog"), (None, "None")],
)
def test_name_is_short_and_readable(annotation: Any, text: str) -> None:
    assert name(annotation) == text


@pytest.mark.parametrize(
    ("annotation", "element"),
    [(list[str], str), (Sequence[int], int), (tuple[int, ...], int), (list, Any),
     (Any, Any), (str, None), (int, None), (dict[str, int], None)],
)
def test_list_item_gives_the_element_type_of_list_like_ports(annotation: Any, element: Any) -> None:
    assert list_item(annotation) == element


# -- coercion --------------------------------------------------------------------------------


def test_coerce_turns_a_numeric_string_into_an_int() -> None:
    value = coerce("3", int)
    assert value == 3
    assert type(value) is int


def test_coerce_widens_int_to_float() -> None:
    value = coerce(3, float)
    assert value == 3.0
    assert type(value) is float


def test_coerce_passes_instances_through_untouched() -> None:
    dog = Dog(name="rex")
    items = [1, 2]
    assert coerce(dog, Animal) is dog
    assert coerce(items, list[int]) == items


def test_coerce_builds_pydantic_models_and_dataclasses_from_dicts() -> None:
    assert coerce({"name": "rex"}, Animal) == Animal(name="rex")
    assert coerce({"x": "1", "y": 2}, Point) == Point(1.0, 2.0)


def test_coerce_validates_list_elements() -> None:
    assert coerce(["1", 2], list[int]) == [1, 2]


@pytest.mark.parametrize(("value", "annotation"),
                         [("abc", int), ([1, "x"], list[int]), ({"nom": 1}, Animal), (True, list)])
def test_coerce_rejects_values_that_do_not_fit_with_the_expected_type(
    value: Any, annotation: Any
) -> None:
    with pytest.raises(ValueError, match=re.escape(f"expects {name(annotation)}, got ")):
        coerce(value, annotation)


@lg.component
def twice(x: int) -> int:
    return 2 * x


@lg.pipeline
def doubled(x: int) -> int:
    return twice(x)


def test_graph_input_is_coerced_before_the_run(engine: lg.Engine) -> None:
    assert doubled.run(x="3", engine=engine) == 6


def test_graph_input_of_wrong_type_raises_input_error_naming_the_input(engine: lg.Engine) -> None:
    with pytest.raises(lg.InputError, match="input 'x' expects int, got str 'abc'") as info:
        doubled.run(x="abc", engine=engine)
    assert info.value.item is None


def test_graph_input_of_wrong_type_in_map_names_the_item(engine: lg.Engine) -> None:
    results = list(doubled.map([1, "2", "two", 4], engine=engine, on_error="collect"))
    assert results[:2] == [2, 4]
    assert results[3] == 8
    failure = results[2]
    assert isinstance(failure, lg.Failure)
    assert failure.index == 2
    assert isinstance(failure.error, lg.InputError)
    assert failure.error.item == 2
    assert str(failure.error).startswith("item 2: input 'x' expects int, got str 'two'")


def test_graph_input_of_wrong_type_in_map_raises_by_default(engine: lg.Engine) -> None:
    with pytest.raises(lg.InputError, match="item 1: input 'x'"):
        list(doubled.map([1, "two"], engine=engine))
