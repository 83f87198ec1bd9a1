"""The event bus and its subscribers: events only when someone listens; the JSON-lines file."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

import legato as lg
from legato.engine.events import EventBus, ItemFinished, NodeQueued, RunStarted
from legato.observe.events_file import EventsFile
from legato.store import Store


def test_bus_is_active_only_while_someone_listens() -> None:
    bus = EventBus()
    seen: list[object] = []
    assert not bus.active
    stop = bus.subscribe(seen.append)
    assert bus.active
    event = RunStarted(run="r", pipeline="p", time=0.0, wall=0.0)
    bus.publish(event)
    stop()
    assert not bus.active
    bus.publish(event)
    assert seen == [event]


def test_a_subscriber_takes_only_the_kinds_it_names() -> None:
    bus = EventBus()
    runs: list[object] = []
    everything: list[object] = []
    stop = bus.subscribe(runs.append, kinds=[RunStarted])
    assert bus.wants(RunStarted)
    assert not bus.wants(ItemFinished)
    started = RunStarted(run="r", pipeline="p", time=0.0, wall=0.0)
    finished = ItemFinished(run="r", item=0, ok=True, time=1.0)
    bus.publish(started)
    bus.publish(finished)
    assert runs == [started]
    bus.subscribe(everything.append)
    assert bus.wants(ItemFinished)
    bus.publish(finished)
    assert everything == [finished]
    assert runs == [started]
    stop()
    assert bus.wants(RunStarted)  # the other subscriber takes every kind


@lg.component
def inc(x: int) -> int:
    return x + 1


@lg.pipeline
def incremented(x: int) -> int:
    return inc(x)


def built(kind: type, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """A list that grows by one each time an event of ``kind`` is made."""
    made: list[str] = []
    original = kind.__init__

    def spy(self: object, *args: object, **kwargs: object) -> None:
        made.append(kind.__name__)
        original(self, *args, **kwargs)

    monkeypatch.setattr(kind, "__init__", spy)
    return made


def test_a_recorded_run_builds_no_event_the_recorder_drops(
        engine: lg.Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    queued = built(NodeQueued, monkeypatch)
    assert list(incremented.map(range(3), engine=engine, store=tmp_path / "s.db")) == [1, 2, 3]
    assert queued == []
    with Store.open(tmp_path / "s.db") as store:
        (run,) = store.runs()
        assert [n.queued is not None for n in store.nodes(run.id)] == [True] * 3


def test_an_unobserved_run_builds_no_events(engine: lg.Engine,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    items = built(ItemFinished, monkeypatch)
    assert list(incremented.map(range(3), engine=engine)) == [1, 2, 3]
    assert items == []
    engine.bus.subscribe(lambda event: None)
    assert list(incremented.map(range(3), engine=engine)) == [1, 2, 3]
    assert items == ["ItemFinished"] * 3


def test_events_file_writes_one_line_per_call_item_and_run(engine: lg.Engine) -> None:
    calls: list[int] = []

    @lg.component(retries=1)
    def flaky(x: int) -> int:
        calls.append(x)
        if x == 1 and calls.count(1) == 1:
            raise RuntimeError("first try fails")
        if x == 2:
            raise ValueError("always fails")
        return x

    @lg.pipeline
    def p(x: int) -> int:
        return flaky(x)

    stream = io.StringIO()
    engine.bus.subscribe(EventsFile(stream))
    assert list(p.map([0, 1, 2], engine=engine, on_error="skip")) == [0, 1]
    records = [json.loads(line) for line in stream.getvalue().splitlines()]
    calls_by_status: dict[str, list[tuple[int, int]]] = {}
    for record in records:
        if "node" in record:
            assert record["node"] == "flaky"
            assert record["duration"] == record["end"] - record["start"]
            calls_by_status.setdefault(record["status"], []).append(
                (record["item"], record["attempt"]))
    assert sorted(calls_by_status["ok"]) == [(0, 1), (1, 2)]
    assert sorted(calls_by_status["retrying"]) == [(1, 1), (2, 1)]
    assert calls_by_status["failed"] == [(2, 2)]
    assert "ValueError: always fails" in next(r["error"] for r in records
                                              if r.get("status") == "failed" and "node" in r)
    items = sorted((r["item"], r["status"]) for r in records if r.get("event") == "item")
    assert items == [(0, "ok"), (1, "ok"), (2, "failed")]
    assert records[-1] == {"event": "run", "status": "failed", "time": records[-1]["time"],
                           "done": 2, "failed": 1}


def test_events_file_can_follow_one_run_only(engine: lg.Engine) -> None:
    @lg.component
    def inc(x: int) -> int:
        return x + 1

    @lg.pipeline
    def p(x: int) -> int:
        return inc(x)

    stream = io.StringIO()
    run = engine.start(p.graph, [{"x": 1}])
    engine.bus.subscribe(EventsFile(stream, run=run.id))
    assert p.run(x=5, engine=engine) == 6  # another run: not written
    assert list(run.results()) == [2]
    records = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [r.get("event", "call") for r in records] == ["call", "item", "run"]
