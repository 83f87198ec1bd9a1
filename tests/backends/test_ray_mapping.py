"""How legato's terms map onto Ray's, as pure functions: resources, addresses, and a call's
trip to a worker and back (packing, running, splitting outputs). No Ray cluster needed."""

from __future__ import annotations

import pickle
from typing import NamedTuple

import pytest

import legato as lg
from legato.backends.ray import RemoteValue, capacity_of, task_options
from legato.backends.ray_remote import (
    Report,
    arguments,
    layout,
    output_ports,
    parse_layout,
    run_call,
    shape,
)
from legato.component import WHOLE
from legato.pipeline import ray_address


def test_cluster_resources_take_legato_names() -> None:
    cluster = {"CPU": 8.0, "GPU": 2.0, "memory": 3e10, "object_store_memory": 1e10,
               "asr": 1.0, "node:10.0.0.1": 1.0}
    assert capacity_of(cluster) == {"cpus": 8.0, "gpus": 2.0, "memory": 3e10, "asr": 1.0,
                                    "node:10.0.0.1": 1.0}
    assert capacity_of({}) == {"cpus": 0.0, "gpus": 0.0, "memory": 0.0}


def test_a_request_becomes_ray_options_keeping_only_resources_the_cluster_has() -> None:
    request = lg.Resources(cpus=2, gpus=0.5, memory=2**30, gpu_memory=2**30,
                           custom=(("asr", 1.0), ("licence", 1.0))).as_dict()
    assert task_options(request, {"asr": 4.0}) == {
        "num_cpus": 2.0, "num_gpus": 0.5, "memory": 2**30, "resources": {"asr": 1.0},
        "max_retries": 0}
    assert task_options({"cpus": 0.0}, {}, actor=True) == {"num_cpus": 0.0}


@pytest.mark.parametrize(("backend", "address"), [
    ("ray", None), ("ray:auto", "auto"), ("ray:10.0.0.1:6379", "10.0.0.1:6379"),
    ("ray://head:10001", "ray://head:10001"),
])
def test_a_backend_string_names_a_ray_address(backend: str, address: str | None) -> None:
    assert ray_address(backend) == address


@pytest.mark.parametrize("backend", ["ray-cluster", "ray:", "dask"])
def test_a_backend_string_naming_no_backend_is_refused(backend: str) -> None:
    with pytest.raises(lg.ConfigError, match="backend must be 'local', 'ray'"):
        ray_address(backend)


def test_a_batch_travels_item_by_item_and_arrives_as_one_list_per_port() -> None:
    assert layout(("x", "k"), 3) == "x,k|3"
    assert parse_layout("x,k|3") == (("x", "k"), 3)
    assert parse_layout(layout(("x",), None)) == (("x",), None)
    assert parse_layout(layout((), None)) == ((), None)
    assert arguments(("x", "k"), 3, (1, 10, 2, 20, 3, 30)) == {"x": [1, 2, 3],
                                                              "k": [10, 20, 30]}
    assert arguments(("x", "k"), None, (1, 10)) == {"x": 1, "k": 10}


class Span(NamedTuple):
    lo: int
    hi: int


@lg.component
def span(x: int) -> Span:
    return Span(x - 1, x + 1)


@lg.component(batch=lg.Batch(max_size=4))
def spans(xs: list[int]) -> list[Span]:
    return [Span(x, x) if x else 0 for x in xs]  # type: ignore[misc]


def test_a_call_returns_its_report_then_each_output_port_by_port() -> None:
    assert output_ports(span) == (WHOLE, "lo", "hi")
    raw, *values = run_call(span, span.target, "x", (5,), worker="w")
    report = Report(*raw)
    assert values == [Span(4, 6), 4, 6]
    assert (report.error, report.worker, report.misfits) == (None, "w", ())
    assert report.shapes == (2, "int", "int")
    assert report.end >= report.start


def test_an_item_whose_value_lacks_the_outputs_is_a_misfit_not_an_error() -> None:
    raw, *values = run_call(spans, spans.target, "xs|2", (3, 0), worker="w")
    report = Report(*raw)
    assert values[:3] == [Span(3, 3), 3, 3]
    assert values[3:] == [None, None, None]
    ((index, misfit),) = report.misfits
    assert index == 1
    assert "returned int, which lacks the declared outputs lo, hi" in str(misfit)


def test_a_call_that_raises_reports_the_error_and_its_traceback() -> None:
    def boom(x: int) -> int:
        raise KeyError(x)

    raw, *values = run_call(lg.component(boom), boom, "x", (7,), worker="w")
    report = Report(*raw)
    assert isinstance(report.error, KeyError)
    assert "in boom" in report.traceback
    assert values == [None]
    assert shape([1, 2]) == 2


def test_a_value_held_in_the_cluster_refuses_to_be_pickled_as_is() -> None:
    with pytest.raises(TypeError, match="held in the Ray cluster cannot be pickled"):
        pickle.dumps(RemoteValue(object(), 3))
