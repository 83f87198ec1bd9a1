"""Every shape of the catalogue, on ``run()`` and on ``map()``: right results, and every node
ran exactly once per item, after all of its inputs (checked from the engine's events)."""

from __future__ import annotations

from collections import Counter, defaultdict

import pytest

import legato as lg
from shapes.catalogue import SHAPES, WIDTH, Shape
from shapes.order import verify

pytestmark = pytest.mark.contract  # every backend runs the catalogue

each_shape = pytest.mark.parametrize("shape", SHAPES, ids=[s.id for s in SHAPES])


@each_shape
def test_shape_passes_the_check(shape: Shape, engine: lg.Engine) -> None:
    assert shape.pipeline.problems(engine=engine) == []
    assert len(shape.pipeline.graph.nodes) == shape.nodes


@each_shape
def test_shape_run_gives_the_plain_python_answer_in_dependency_order(
    shape: Shape, engine: lg.Engine, events
) -> None:
    for inputs in shape.items:
        assert shape.pipeline.run(inputs, engine=engine) == shape.expected(**inputs)
    by_run = defaultdict(list)
    for event in events.all:
        by_run[event.run].append(event)
    assert len(by_run) == len(shape.items)  # one run each
    for run_events in by_run.values():
        verify(shape.pipeline.graph, run_events, items=1)


@each_shape
@pytest.mark.parametrize("ordered", [True, False], ids=["ordered", "unordered"])
def test_shape_map_gives_every_item_its_answer_in_dependency_order(
    shape: Shape, engine: lg.Engine, events, ordered: bool
) -> None:
    items = list(shape.items) * 2  # repeated inputs must still run once per item
    results = list(shape.pipeline.map(items, engine=engine, ordered=ordered, window=3))
    expected = [shape.expected(**inputs) for inputs in items]
    if ordered:
        assert results == expected
    else:
        assert Counter(map(repr, results)) == Counter(map(repr, expected))
    verify(shape.pipeline.graph, events.all, items=len(items))


def test_wide_graph_has_a_thousand_nodes() -> None:
    wide = next(s for s in SHAPES if s.id == "wide")
    assert len(wide.pipeline.graph.nodes) == 2 * WIDTH - 1 >= 1000


def test_catalogue_holds_every_required_shape() -> None:
    kinds = {node.kind for s in SHAPES for node in s.pipeline.graph.nodes.values()}
    assert kinds == {"call", "map", "branch"}
    assert len({s.id for s in SHAPES}) == len(SHAPES)
