"""The event bus and its subscribers: events only when someone listens; the JSON-lines file."""

from __future__ import annotations

import io
import json

import legato as lg
from legato.engine.events import EventBus, ItemFinished, RunStarted
from legato.observe.events_file import EventsFile


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


def test_an_unobserved_run_builds_no_events(engine: lg.Engine, monkeypatch) -> None:
    built: list[str] = []
    original = ItemFinished.__init__

    def spy(self: ItemFinished, *args: object, **kwargs: object) -> None:
        built.append("item")
        original(self, *args, **kwargs)

    monkeypatch.setattr(ItemFinished, "__init__", spy)

    @lg.component
    def inc(x: int) -> int:
        return x + 1

    @lg.pipeline
    def p(x: int) -> int:
        return inc(x)

    assert list(p.map(range(3), engine=engine)) == [1, 2, 3]
    assert built == []
    engine.bus.subscribe(lambda event: None)
    assert list(p.map(range(3), engine=engine)) == [1, 2, 3]
    assert built == ["item"] * 3


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
