"""The order checker itself: it must reject the event streams a broken engine would publish."""

from __future__ import annotations

import pytest

from legato.engine.events import NodeFinished, NodeStarted
from shapes.catalogue import branch_both_sides, diamond, map_component
from shapes.order import verify


def _start(node: str, item: int = 0) -> NodeStarted:
    return NodeStarted(run="r", item=item, node=node, attempt=1, time=0.0)


def _finish(node: str, item: int = 0) -> NodeFinished:
    return NodeFinished(run="r", item=item, node=node, attempt=1, start=0.0, end=0.0,
                        executor="thread")


def _ran(*nodes: str, item: int = 0) -> list:
    return [e for n in nodes for e in (_start(n, item), _finish(n, item))]


def test_order_accepts_a_correct_diamond() -> None:
    verify(diamond.graph, _ran("inc", "double", "neg", "add"), items=1)


def test_order_rejects_a_node_started_before_its_input_finished() -> None:
    events = [_start("inc"), _start("double"), _finish("inc"), _finish("double"),
              *_ran("neg", "add")]
    with pytest.raises(AssertionError, match="double started before its input inc finished"):
        verify(diamond.graph, events, items=1)


def test_order_rejects_a_node_run_twice() -> None:
    with pytest.raises(AssertionError, match="double started 2 times"):
        verify(diamond.graph, _ran("inc", "double", "double", "neg", "add"), items=1)


def test_order_rejects_a_node_that_never_ran() -> None:
    with pytest.raises(AssertionError, match="neg started 0 times"):
        verify(diamond.graph, _ran("inc", "double", "add"), items=1)


def test_order_rejects_an_item_that_did_not_run() -> None:
    with pytest.raises(AssertionError, match="started 0 times"):
        verify(diamond.graph, _ran("inc", "double", "neg", "add"), items=2)


def test_order_rejects_a_map_element_missing_from_the_middle() -> None:
    events = _ran("upto", "map_double[0]/double", "map_double[2]/double")
    with pytest.raises(AssertionError, match="gap in elements"):
        verify(map_component.graph, events, items=1)


def test_order_rejects_a_map_element_before_the_list_it_maps_over() -> None:
    events = [*_ran("map_double[0]/double"), *_ran("upto")]
    with pytest.raises(AssertionError, match="started before its input upto finished"):
        verify(map_component.graph, events, items=1)


def test_order_rejects_both_sides_of_a_branch() -> None:
    events = _ran("is_even", "branch_double/then/double", "branch_double/else/neg", "inc")
    with pytest.raises(AssertionError, match="both sides"):
        verify(branch_both_sides.graph, events, items=1)


def test_order_rejects_a_call_outside_the_graph() -> None:
    with pytest.raises(AssertionError, match="does not hold"):
        verify(diamond.graph, _ran("inc", "double", "neg", "add", "ghost"), items=1)
