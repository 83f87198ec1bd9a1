"""Running a pipeline through its public calls: run, arun, map, calling it, engines."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import NamedTuple, TypedDict

import pytest

import legato as lg
from legato.engine.events import RunFinished
from legato.pipeline import default_engine


@lg.component
def inc(x: int) -> int:
    return x + 1


@lg.component
def mul(a: int, b: int = 2) -> int:
    return a * b


@lg.pipeline
def affine(x: int, k: int = 3) -> int:
    return inc(mul(x, k))


class MinMax(NamedTuple):
    low: int
    high: int


@dataclass
class Span:
    low: int
    high: int


class SpanDict(TypedDict):
    low: int
    high: int


@lg.component
def spread(x: int) -> MinMax:
    return MinMax(x - 1, x + 1)


@lg.pipeline
def as_namedtuple(x: int) -> MinMax:
    s = spread(x)
    return MinMax(low=s.low, high=s.high)


@lg.pipeline
def as_dataclass(x: int) -> Span:
    s = spread(x)
    return Span(low=s.low, high=s.high)


@lg.pipeline
def as_typeddict(x: int) -> SpanDict:
    s = spread(x)
    return {"low": s.low, "high": s.high}


@lg.pipeline
def as_dict(x: int):
    s = spread(x)
    return {"low": s.low, "sum": mul(s.high, s.low)}


# -- run ------------------------------------------------------------------------------------
# (tests marked ``contract`` run on every backend: see conftest)


@pytest.mark.contract
def test_run_takes_keywords_or_a_mapping(engine: lg.Engine) -> None:
    assert affine.run(x=2, engine=engine) == 7
    assert affine.run({"x": 2, "k": 10}, engine=engine) == 21
    assert affine.run({"x": 2}, k=5, engine=engine) == 11


@pytest.mark.contract
@pytest.mark.parametrize(("pipeline", "expected"), [
    (as_namedtuple, MinMax(4, 6)),
    (as_dataclass, Span(4, 6)),
    (as_typeddict, {"low": 4, "high": 6}),
    (as_dict, {"low": 4, "sum": 24}),
])
def test_run_returns_the_declared_result_type(
    pipeline: lg.Pipeline, expected: object, engine: lg.Engine
) -> None:
    result = pipeline.run(x=5, engine=engine)
    assert result == expected
    assert type(result) is type(expected)


def test_calling_a_pipeline_outside_another_runs_it() -> None:
    assert affine(4) == 13
    assert affine(4, k=0) == 1
    with pytest.raises(lg.InputError, match="'affine' takes 2 inputs, got 3 positional"):
        affine(1, 2, 3)


def test_the_default_engine_is_shared_and_keeps_instances_warm() -> None:
    builds: list[int] = []

    @lg.component
    class Warm:
        def __init__(self) -> None:
            builds.append(1)

        def __call__(self, x: int) -> int:
            return x

    @lg.pipeline
    def p(x: int) -> int:
        return Warm()(x)

    assert default_engine() is default_engine()
    assert [p.run(x=i) for i in range(3)] == [0, 1, 2]
    assert builds == [1]


def test_an_input_named_like_a_run_option_is_passed_in_a_mapping(engine: lg.Engine) -> None:
    @lg.pipeline
    def p(backend: int) -> int:
        return inc(backend)

    assert p.run({"backend": 1}, engine=engine) == 2


def test_engine_and_backend_together_are_refused(engine: lg.Engine) -> None:
    with pytest.raises(lg.ConfigError, match="pass engine= or backend=, not both"):
        affine.run(x=1, engine=engine, backend="local")
    with pytest.raises(lg.ConfigError, match="backend must be 'local', 'ray', 'ray:auto'"):
        affine.run(x=1, backend="ray-cluster")


# -- arun -----------------------------------------------------------------------------------


@pytest.mark.contract
def test_arun_awaits_the_result(engine: lg.Engine) -> None:
    async def main() -> list[int]:
        return list(await asyncio.gather(*(affine.arun(x=i, engine=engine) for i in range(4))))

    assert asyncio.run(main()) == [1, 4, 7, 10]


def test_arun_does_not_block_the_event_loop(engine: lg.Engine) -> None:
    release = threading.Event()

    @lg.component
    def gated(x: int) -> int:
        assert release.wait(10)
        return x

    @lg.pipeline
    def p(x: int) -> int:
        return gated(x)

    async def main() -> int:
        task = asyncio.ensure_future(p.arun(x=9, engine=engine))
        await asyncio.sleep(0)  # the loop keeps serving while the run waits
        assert not task.done()
        release.set()
        return await task

    assert asyncio.run(main()) == 9


@pytest.mark.contract
def test_arun_raises_component_errors(engine: lg.Engine) -> None:
    @lg.component
    def bad(x: int) -> int:
        raise ArithmeticError("nope")

    @lg.pipeline
    def p(x: int) -> int:
        return bad(x)

    with pytest.raises(lg.ComponentError, match="ArithmeticError: nope"):
        asyncio.run(p.arun(x=1, engine=engine))


def test_arun_checks_the_graph_first(engine: lg.Engine) -> None:
    @lg.pipeline
    def p(x: int) -> int:
        return mul()

    with pytest.raises(lg.GraphError, match="input 'a: int' is not bound"):
        asyncio.run(p.arun(x=1, engine=engine))


# -- map ------------------------------------------------------------------------------------


@pytest.mark.contract
def test_map_takes_bare_values_for_a_one_input_pipeline(engine: lg.Engine) -> None:
    @lg.pipeline
    def p(x: int) -> int:
        return inc(x)

    assert list(p.map(range(5), engine=engine)) == [1, 2, 3, 4, 5]
    assert list(p.map([{"x": 7}], engine=engine)) == [8]


@pytest.mark.contract
def test_map_needs_mappings_for_a_pipeline_of_several_inputs(engine: lg.Engine) -> None:
    results = list(affine.map([{"x": 1}, 5], engine=engine, on_error="collect"))
    assert results[0] == 4
    assert isinstance(results[1], lg.Failure)
    assert "inputs must be a mapping of input name to value, got int" in str(results[1].error)


@pytest.mark.contract
def test_map_with_progress_yields_the_same_results(
    engine: lg.Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    assert list(affine.map([{"x": i} for i in range(5)], engine=engine, progress=True)) == [
        1, 4, 7, 10, 13]
    assert "affine" in capsys.readouterr().err


def test_map_is_lazy_until_iterated(engine: lg.Engine) -> None:
    ran: list[int] = []

    @lg.component
    def record(x: int) -> int:
        ran.append(x)
        return x

    @lg.pipeline
    def p(x: int) -> int:
        return record(x)

    results = p.map([1, 2, 3], engine=engine)
    assert ran == []
    assert list(results) == [1, 2, 3]


@pytest.mark.contract
def test_closing_the_results_of_a_map_stops_the_run(engine: lg.Engine, events) -> None:
    pulled: list[int] = []

    def source() -> Iterator[dict[str, int]]:
        for i in range(1000):
            pulled.append(i)
            yield {"x": i}

    results = affine.map(source(), engine=engine, window=2)
    assert next(results) == 1
    results.close()
    assert len(pulled) <= 3
    finished = events.of(RunFinished)
    assert [f.status for f in finished] == ["cancelled"]


# -- drawings -------------------------------------------------------------------------------


def test_drawings_name_every_node_and_edge() -> None:
    mermaid = affine.to_mermaid()
    assert mermaid.startswith("flowchart LR\n")
    assert 'n_mul["mul"]' in mermaid
    assert "n_mul -->|x| n_inc" in mermaid
    assert "in_n_x -->|a| n_mul" in mermaid
    dot = affine.to_dot()
    assert dot.startswith('digraph "affine" {')
    assert 'n_mul -> n_inc [label="x"];' in dot


def test_json_describes_nodes_ports_and_options() -> None:
    import json

    data = json.loads(as_dict.to_json())
    assert data["name"] == "as_dict"
    assert [n["id"] for n in data["nodes"]] == ["spread", "mul"]
    mul_node = data["nodes"][1]
    assert mul_node["inputs"] == {"a": {"node": "spread", "port": "high"},
                                  "b": {"node": "spread", "port": "low"}}
    assert mul_node["input_types"] == {"a": "int", "b": "int"}
    assert mul_node["component"]["executor"] == "thread"
    assert data["outputs"]["sum"] == {"node": "mul", "port": "out"}
