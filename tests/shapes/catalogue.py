"""The catalogue of graph shapes: each a pipeline, some items, and the plain-Python answer.

One table (``SHAPES``), run by ``test_shapes.py`` on ``run()`` and on ``map()``; each entry's
``expected`` computes, without legato, what the pipeline must return for one item.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple, TypedDict

import legato as lg

# -- components ------------------------------------------------------------------------------


@lg.component
def inc(x: int) -> int:
    return x + 1


@lg.component
def double(x: int) -> int:
    return 2 * x


@lg.component(executor="inline")
def add(a: int, b: int) -> int:
    return a + b


@lg.component
async def neg(x: int) -> int:
    return -x


@lg.component
def scale(x: int, k: int = 3) -> int:
    return k * x


@lg.component
def total(xs: list[int]) -> int:
    return sum(xs)


@lg.component
def upto(n: int) -> list[int]:
    return list(range(n))


@lg.component
def is_even(x: int) -> bool:
    return x % 2 == 0


class Bounds(NamedTuple):
    lo: int
    hi: int


@lg.component
def bounds(x: int) -> Bounds:
    return Bounds(x - 1, x + 1)


@dataclass
class Stats:
    square: int
    cube: int


@lg.component
def powers(x: int) -> Stats:
    return Stats(square=x * x, cube=x * x * x)


class Parity(TypedDict):
    even: bool
    half: int


@lg.component
def parity(x: int) -> Parity:
    return {"even": x % 2 == 0, "half": x // 2}


# -- pipelines -------------------------------------------------------------------------------


@lg.pipeline
def single(x: int) -> int:
    return inc(x)


@lg.pipeline
def linear(x: int) -> int:
    return double(inc(inc(double(inc(x)))))


@lg.pipeline
def diamond(x: int) -> int:
    top = inc(x)
    return add(double(top), neg(top))


@lg.pipeline
def fan_out_in(x: int) -> int:
    root = inc(x)
    a, b, c, d = double(root), neg(root), inc(root), scale(root)
    return add(add(a, b), add(c, d))


@lg.pipeline
def map_component(n: int) -> list[int]:
    return lg.map(double, upto(n))


@lg.pipeline
def map_then_reduce(n: int) -> int:
    return total(lg.map(inc, upto(inc(n))))


@lg.pipeline
def inner(x: int) -> int:
    return add(double(x), inc(x))


@lg.pipeline
def map_pipeline(n: int) -> list[int]:
    return lg.map(inner, upto(n))


@lg.pipeline
def map_with_extra_argument(n: int, k: int) -> list[int]:
    return lg.map(scale, upto(n), k=k)


@lg.pipeline
def branch_both_sides(x: int) -> int:
    return inc(lg.branch(is_even(x), double, neg, x))


@lg.pipeline
def branch_without_else(x: int) -> int | None:
    return lg.branch(is_even(x), inner, None, x)


@lg.pipeline
def nested(x: int) -> int:
    return inner(inner(inc(x)))


@lg.pipeline
def nested_twice(x: int) -> int:
    return add(nested(x), diamond(x))


class Summary(NamedTuple):
    lo: int
    hi: int
    square: int
    even: bool


@lg.pipeline
def named_outputs(x: int) -> Summary:
    b = bounds(x)
    p = powers(b.hi)
    q = parity(b.lo)
    return Summary(lo=b.lo, hi=b.hi, square=p.square, even=q.even)


@lg.pipeline
def named_outputs_dict(x: int):  # no annotation: the result is a dict of the outputs
    b = bounds(x)
    return {"spread": add(b.lo, b.hi), "cube": powers(b.hi).cube, "half": parity(x).half}


@lg.pipeline
def named_outputs_unpacked(x: int) -> int:
    lo, hi = bounds(x)
    return add(lo, hi)


@lg.pipeline
def constants(x: int):
    return {"plus": add(x, 10), "scaled": scale(x, k=5), "default": scale(x),
            "mapped": lg.map(double, [1, 2, 3]), "fixed": 42}


@lg.pipeline
def passthrough(x: int, y: int):
    return {"x": x, "y": inc(y)}


@lg.pipeline
def no_nodes(x: int) -> int:
    return x


@lg.pipeline
def branch_to_empty_side(x: int) -> int:
    return lg.branch(is_even(x), inc, no_nodes, x)


@lg.pipeline
def row(n: int) -> list[int]:
    return lg.map(inc, upto(n))


@lg.pipeline
def map_of_maps(n: int) -> list[list[int]]:
    return lg.map(row, upto(n))


@lg.pipeline
def map_of_branches(n: int) -> list[int]:
    return lg.map(branch_both_sides, upto(n))


@lg.pipeline
def branch_to_map(n: int) -> list[int] | None:
    return lg.branch(is_even(n), row, None, n)


@lg.pipeline
def list_literal_fan_in(x: int) -> int:
    """A list literal of references becomes a node that gathers them."""
    return total([inc(x), double(x), neg(x), 5])


@lg.pipeline
def map_over_list_literal(x: int) -> list[int]:
    return lg.map(double, [inc(x), x, neg(x)])


WIDTH = 512


@lg.pipeline
def wide(x: int) -> int:
    """512 independent leaves reduced by a balanced tree of 511 adds: 1,023 nodes."""
    level = [scale(x, k=i) for i in range(WIDTH)]
    while len(level) > 1:
        level = [add(level[i], level[i + 1]) for i in range(0, len(level), 2)]
    return level[0]


# -- the table -------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Shape:
    """A pipeline, the items to feed it, and the answer computed without legato."""

    id: str
    pipeline: lg.Pipeline
    items: tuple[Mapping[str, Any], ...]
    expected: Callable[..., Any]
    nodes: int = 1  # top-level nodes of the traced graph

    def __repr__(self) -> str:
        return self.id


def _xs(*values: int) -> tuple[dict[str, int], ...]:
    return tuple({"x": v} for v in values)


def _ns(*values: int) -> tuple[dict[str, int], ...]:
    return tuple({"n": v} for v in values)


def _inner(x: int) -> int:
    return 2 * x + x + 1


def _nested(x: int) -> int:
    return _inner(_inner(x + 1))


def _diamond(x: int) -> int:
    return 2 * (x + 1) - (x + 1)


SHAPES: tuple[Shape, ...] = (
    Shape("single", single, _xs(0, 1, 5, -3), lambda x: x + 1),
    Shape("linear", linear, _xs(0, 1, 5, -3), lambda x: 2 * ((2 * (x + 1)) + 2), 5),
    Shape("diamond", diamond, _xs(0, 1, 5, -3), _diamond, 4),
    Shape("fan_out_in", fan_out_in, _xs(0, 1, 5, -3),
          lambda x: 2 * (x + 1) - (x + 1) + (x + 2) + 3 * (x + 1), 8),
    Shape("map_component", map_component, _ns(0, 1, 4, 7),
          lambda n: [2 * i for i in range(n)], 2),
    Shape("map_then_reduce", map_then_reduce, _ns(0, 1, 4, 7),
          lambda n: sum(i + 1 for i in range(n + 1)), 4),
    Shape("map_pipeline", map_pipeline, _ns(0, 1, 3, 6),
          lambda n: [_inner(i) for i in range(n)], 2),
    Shape("map_with_extra_argument", map_with_extra_argument,
          ({"n": 3, "k": 2}, {"n": 0, "k": 5}, {"n": 5, "k": -1}),
          lambda n, k: [k * i for i in range(n)], 2),
    Shape("branch_both_sides", branch_both_sides, _xs(0, 1, 4, 7),
          lambda x: (2 * x if x % 2 == 0 else -x) + 1, 3),
    Shape("branch_without_else", branch_without_else, _xs(0, 1, 4, 7),
          lambda x: _inner(x) if x % 2 == 0 else None, 2),
    Shape("nested", nested, _xs(0, 1, 5, -3), _nested, 7),
    Shape("nested_twice", nested_twice, _xs(0, 1, 5, -3),
          lambda x: _nested(x) + _diamond(x), 12),
    Shape("named_outputs", named_outputs, _xs(0, 1, 5, -3),
          lambda x: Summary(x - 1, x + 1, (x + 1) ** 2, (x - 1) % 2 == 0), 3),
    Shape("named_outputs_dict", named_outputs_dict, _xs(0, 1, 5, -3),
          lambda x: {"spread": 2 * x, "cube": (x + 1) ** 3, "half": x // 2}, 4),
    Shape("named_outputs_unpacked", named_outputs_unpacked, _xs(0, 1, 5, -3),
          lambda x: 2 * x, 2),
    Shape("constants", constants, _xs(0, 1, 5, -3),
          lambda x: {"plus": x + 10, "scaled": 5 * x, "default": 3 * x, "mapped": [2, 4, 6],
                     "fixed": 42}, 4),
    Shape("passthrough", passthrough, ({"x": 1, "y": 2}, {"x": -5, "y": 0}),
          lambda x, y: {"x": x, "y": y + 1}, 1),
    Shape("no_nodes", no_nodes, _xs(0, 3), lambda x: x, 0),
    Shape("branch_to_empty_side", branch_to_empty_side, _xs(0, 1, 2, 3),
          lambda x: x + 1 if x % 2 == 0 else x, 2),
    Shape("map_of_maps", map_of_maps, _ns(0, 1, 4),
          lambda n: [[j + 1 for j in range(i)] for i in range(n)], 2),
    Shape("map_of_branches", map_of_branches, _ns(0, 1, 5),
          lambda n: [(2 * i if i % 2 == 0 else -i) + 1 for i in range(n)], 2),
    Shape("branch_to_map", branch_to_map, _ns(0, 3, 4),
          lambda n: [i + 1 for i in range(n)] if n % 2 == 0 else None, 2),
    Shape("list_literal_fan_in", list_literal_fan_in, _xs(0, 1, 5, -3),
          lambda x: (x + 1) + 2 * x - x + 5, 5),
    Shape("map_over_list_literal", map_over_list_literal, _xs(0, 1, 5, -3),
          lambda x: [2 * (x + 1), 2 * x, -2 * x], 4),
    Shape("wide", wide, _xs(0, 1, 2),
          lambda x: x * sum(range(WIDTH)), 2 * WIDTH - 1),
)
