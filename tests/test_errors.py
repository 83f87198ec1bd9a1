"""The exception tree: who inherits from whom, how problems print, and errors that survive
pickling (they cross process boundaries)."""

from __future__ import annotations

import pickle

import pytest

import legato as lg


@pytest.mark.parametrize(("error", "bases"), [
    (lg.GraphError, (lg.LegatoError,)),
    (lg.TracingError, (lg.GraphError, lg.LegatoError)),
    (lg.ConfigError, (lg.LegatoError, ValueError)),
    (lg.InputError, (lg.LegatoError, ValueError)),
    (lg.ComponentError, (lg.LegatoError,)),
    (lg.ComponentTimeout, (lg.ComponentError, lg.LegatoError)),
    (lg.RunError, (lg.LegatoError,)),
    (lg.RunCancelled, (lg.RunError, lg.LegatoError)),
])
def test_exception_tree(error: type, bases: tuple[type, ...]) -> None:
    assert all(issubclass(error, base) for base in bases)


@pytest.mark.parametrize(("problem", "text"), [
    (lg.Problem("bad", node="embed", location="agent.py:14"), "node 'embed' (agent.py:14): bad"),
    (lg.Problem("bad", node="embed"), "node 'embed': bad"),
    (lg.Problem("bad", location="agent.py:3"), "(agent.py:3) bad"),
    (lg.Problem("bad"), "bad"),
])
def test_problem_names_node_and_location(problem: lg.Problem, text: str) -> None:
    assert str(problem) == text


def test_graph_error_lists_every_problem() -> None:
    error = lg.GraphError([lg.Problem("one", node="a"), lg.Problem("two", node="b")],
                          pipeline="agent")
    assert str(error) == "pipeline 'agent' has 2 problems:\n  - node 'a': one\n  - node 'b': two"
    assert len(error.problems) == 2
    assert str(lg.GraphError([lg.Problem("x")])).startswith("graph has 1 problem:")


def test_input_error_names_the_item() -> None:
    assert str(lg.InputError("missing input 'x'", item=3)) == "item 3: missing input 'x'"
    assert lg.InputError("missing", item=3).item == 3


def test_component_error_message_and_fields() -> None:
    error = lg.ComponentError("ValueError: no", node="embed", item=4, attempt=2,
                              location="agent.py:9")
    assert str(error) == "node 'embed' (agent.py:9) failed on item 4, attempt 2: ValueError: no"
    assert (error.node, error.item, error.attempt, error.detail) == ("embed", 4, 2,
                                                                    "ValueError: no")


@pytest.mark.parametrize("kind", [lg.ComponentError, lg.ComponentTimeout])
def test_component_errors_survive_pickling(kind: type[lg.ComponentError]) -> None:
    error = kind("boom", node="n", item=1, attempt=3, location="x.py:1")
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is kind
    assert (copy.node, copy.item, copy.attempt, copy.location, str(copy)) == (
        "n", 1, 3, "x.py:1", str(error))
