"""The query functions and the node-stats rules, on real recorded runs (no server)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
import ui_pipelines
from ui_support import Recorded

import legato as lg
from legato.draw import to_dict
from legato.store import Store
from legato.ui import dashboards, queries
from legato.ui.failures import jsonable, location
from legato.ui.readonly import ReadOnlyStore
from legato.ui.stats import NodeTally
from legato.ui.timeline import timeline


def test_a_batch_call_is_counted_once_with_its_size(tmp_path: Path, engine: lg.Engine) -> None:
    path = tmp_path / "legato.db"
    assert ui_pipelines.shout.run({"words": list("abcde")}, engine=engine, store=path) == list(
        "ABCDE")
    with ReadOnlyStore(path) as store:
        (run,) = queries.runs_page(store)["runs"]
        assert run["mode"] == "run"
        detail = queries.run_detail(store, run["id"])
        assert detail is not None
        batched = {path: stats["batch"] for path, stats in detail["nodes"].items()
                   if stats["batch"]["count"]}
        assert list(batched.values()) == [{"count": 1, "mean": 5.0, "max": 5, "sizes": {"5": 1}}]
        (where,) = batched
        assert where in set(queries.graph_paths(detail["graph"]))
        assert dashboards.service(store, detail["run"])["batch_sizes"] == {"5": 1}


def test_graph_paths_name_bodies_as_the_store_does(engine: lg.Engine) -> None:
    graph = to_dict(ui_pipelines.shout.graph)
    paths = list(queries.graph_paths(graph))
    assert len(paths) == 1
    assert paths[0].endswith("/upper")
    assert list(queries.graph_paths(to_dict(ui_pipelines.scored.graph))) == [
        "double", "wobbly", "check"]


def test_node_status_rules() -> None:
    tally = NodeTally()
    assert tally.status() == "pending"
    tally.add("cached", 0.0)
    assert tally.status() == "cached"
    tally.add("ok", 0.5)
    assert tally.status() == "ok"
    tally.add("retried", 0.1)
    assert tally.status() == "retried"
    tally.add("failed", 0.2)
    assert tally.status() == "failed"
    tally.running = 1
    assert tally.status() == "running"
    stats = tally.to_json()
    assert (stats["count"], stats["ok"], stats["failed"], stats["retries"], stats["cached"]) == (
        4, 1, 1, 1, 1)
    assert (stats["p50"], stats["p95"]) == (0.2, 0.5)  # cache hits take no time


def test_failed_items_come_with_their_inputs(recorded: Recorded) -> None:
    from legato.ui.failures import failures

    with ReadOnlyStore(recorded.path) as store:
        groups = {group["type"]: group for group in failures(store, recorded.run)["groups"]}
    for failure in groups["ValueError"]["failures"]:
        assert failure["inputs"] == {"x": failure["item"]}


def test_location_is_the_innermost_frame_outside_legato() -> None:
    trace = ('Traceback (most recent call last):\n'
             '  File "/site/legato/backends/local.py", line 374, in _execute_plain\n'
             '  File "/home/me/agent.py", line 12, in score\n'
             '  File "/site/legato/values.py", line 3, in helper\n'
             'ValueError: no')
    assert location(trace) == "agent.py:12"
    assert location(None) is None
    assert location("no frames here") is None


def test_values_become_json_data() -> None:
    numpy = pytest.importorskip("numpy")
    assert jsonable({"a": [1, 2.5, None, "x"], 3: (True,)}) == {"a": [1, 2.5, None, "x"],
                                                                 "3": [True]}
    assert jsonable(b"abc") == "<3 bytes>"
    assert jsonable(float("nan")) == "nan"
    assert jsonable(numpy.zeros((2, 3), dtype="float32")) == (
        "<ndarray shape=(2, 3) dtype=float32>")
    json.dumps(jsonable(object()))


def test_a_timeline_of_20000_executions(tmp_path: Path, engine: lg.Engine) -> None:
    path = tmp_path / "legato.db"
    ui_pipelines.doubled.run({"x": 1}, engine=engine, store=path)
    with Store.open(path) as store:
        (run,) = store.runs()
    rows = []
    for n in range(20_000):
        worker = f"thread-{n % 8}"
        start = run.started + n * 0.001
        rows.append((run.id, n, "double" if n % 2 else f"each[{n}]/score", 1,
                     ("ok", "failed", "retried", "cached")[n % 4], start, start + 0.004,
                     "thread", worker))
    with sqlite3.connect(path) as connection:
        connection.executemany(
            'INSERT INTO nodes (run_id, item, node, attempt, status, start, "end", executor, '
            "worker) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
    with ReadOnlyStore(path) as store:
        found = timeline(store, run.id, started=run.started, finished=run.finished)
        aggregate = timeline(store, run.id, started=run.started, finished=run.finished,
                             aggregate=True)
    bars = found["bars"]
    assert len(bars["lane"]) == 20_001
    assert sorted(found["nodes"]) == ["double", "each/score"]
    # a call of 4 ms every 8 ms on each worker: none overlaps, one lane per worker (and one for
    # the worker of the real run's call), numbers in names ordered as numbers
    assert found["lanes"][1:] == [f"thread-{n}" for n in range(8)]
    assert sorted(set(bars["status"])) == [0, 1, 2, 3]
    assert aggregate["lanes"] == ["double", "each/score"]
    assert len(json.dumps(found, separators=(",", ":"))) < 1_200_000


def test_overlapping_calls_of_one_worker_get_more_lanes(tmp_path: Path,
                                                        engine: lg.Engine) -> None:
    path = tmp_path / "legato.db"
    ui_pipelines.doubled.run({"x": 1}, engine=engine, store=path)
    with Store.open(path) as store:
        (run,) = store.runs()
    t = run.started
    rows = [(run.id, 0, "a", 1, "ok", t, t + 3, "async", "loop"),
            (run.id, 1, "a", 1, "ok", t + 1, t + 2, "async", "loop"),
            (run.id, 2, "a", 1, "ok", t + 2.5, t + 4, "async", "loop")]
    with sqlite3.connect(path) as connection:
        connection.executemany(
            'INSERT INTO nodes (run_id, item, node, attempt, status, start, "end", executor, '
            "worker) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
    with ReadOnlyStore(path) as store:
        found = timeline(store, run.id, started=run.started, finished=run.finished)
    names = found["lanes"]
    assert {"loop", "loop #2"} <= set(names)
    loop_lanes = [names[lane] for lane, item in zip(found["bars"]["lane"],
                                                    found["bars"]["item"], strict=True)
                  if names[lane].startswith("loop")]
    assert loop_lanes == ["loop", "loop #2", "loop #2"]
