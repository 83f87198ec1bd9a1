"""Record and replay: a stream's record file, replay with the original timing, the same outputs
under simulated time; a stream's counters kept in the run store and shown by ``legato show``."""

from __future__ import annotations

import json
import queue
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import legato as lg
from harness import Events
from legato.engine.events import NodeQueued
from legato.store import Store
from legato.streaming import read_record
from legato.testing.simulate import RunHere, SimulatedBackend, SimulatedClock


def _control() -> lg.Pipeline:
    """A planner slower than the tick period, one at a time: ``latest`` drops the ticks it
    cannot serve, ``max_age`` at the actuator the commands that came too late."""

    @lg.component(queue="latest", cpus=0, resources={"planner": 1})
    def plan(t: float) -> float:
        return round(t * 10, 6)

    @lg.component(executor="inline", max_age=0.05)
    def act(command: float) -> float:
        return command + 1

    @lg.pipeline
    def control(t: float) -> float:
        return act(plan(t))

    return control


def _simulated(source: Any, *, record: Path | None = None, events: Events | None = None,
               window: int = 256) -> tuple[dict[int, Any], lg.StreamStats]:
    clock = SimulatedClock()
    backend = SimulatedBackend(
        clock, duration=lambda call: 0.035 if call.component.name == "plan" else 0.0,
        value=RunHere(), value_at="end", resources={"planner": 1})
    with lg.Engine(backend, clock=clock) as engine:
        if events is not None:
            engine.bus.subscribe(events)
        stream = _control().stream(source, engine=engine, record=record, on_drop="keep",
                                   indexed=True, window=window)
        results = dict(stream)
        assert stream.wait(10.0)
        return results, stream.stats()


def test_a_replay_under_simulated_time_reproduces_the_recorded_outputs(tmp_path: Path) -> None:
    path = tmp_path / "control.jsonl"
    first, stats = _simulated(lg.Tick(100, count=40), record=path)
    assert stats.drops["plan"]["replaced"] > 0  # the policies acted: a real regression check
    assert any(isinstance(r, float) for r in first.values())
    again, replayed = _simulated(lg.replay(path))
    assert again == first
    assert again == read_record(path).outputs  # what a team keeps: the record is the oracle
    assert (replayed.drops, replayed.done) == (stats.drops, stats.done)


def test_under_simulated_time_a_full_window_makes_ticks_overrun_and_replays_lose_nothing(
    tmp_path: Path,
) -> None:
    path = tmp_path / "control.jsonl"
    first, stats = _simulated(lg.Tick(100, count=20), record=path, window=1)
    # one item at a time, each 35 ms: of the ticks due meanwhile, one still on time goes in
    assert stats.overruns > 0
    assert stats.items_in + stats.overruns == 20
    again, replayed = _simulated(lg.Tick(100, count=20), window=1)
    assert (again, replayed.overruns) == (first, stats.overruns)  # deterministic
    _, played = _simulated(lg.replay(path), window=1)
    assert played.items_in == stats.items_in  # a replay sends every item, late if it must
    assert played.overruns == 0


def test_a_replay_keeps_the_original_spacing_scaled_by_speed(tmp_path: Path) -> None:
    path = tmp_path / "control.jsonl"
    _simulated(lg.Tick(100, count=4), record=path)
    events = Events()
    _simulated(lg.replay(path, speed=2.0), events=events)
    arrived = [e.time for e in events.of(NodeQueued) if e.node == "plan"]
    assert arrived == pytest.approx([0.0, 0.005, 0.01, 0.015])  # 10 ms apart, twice as fast
    events = Events()
    _simulated(lg.replay(path, speed=None), events=events)
    assert {e.time for e in events.of(NodeQueued) if e.node == "plan"} == {0.0}


def test_the_record_file_holds_each_item_its_stamp_and_each_result(
    tmp_path: Path, engine: lg.Engine
) -> None:
    @lg.component(executor="inline")
    def total(frame: Any) -> Any:
        return (float(np.sum(frame)) if isinstance(frame, np.ndarray) else 0.0, "ok")

    @lg.pipeline
    def p(frame: Any) -> Any:
        return total(frame)

    path = tmp_path / "deep" / "frames.jsonl"
    frames = [np.arange(4, dtype=np.float32).reshape(2, 2), {"frame": {"plain": [1, 2.5, None]}}]
    stream = p.stream(frames, engine=engine, record=path)
    assert sorted(stream) == [(0.0, "ok"), (6.0, "ok")]
    assert stream.wait(10.0)
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert lines[0]["legato"] == "stream-record"
    ins = [line for line in lines if "in" in line]
    assert [line["in"] for line in ins] == [0, 1]
    assert "$msgpack" in ins[0]["value"]  # a NumPy frame, kept exact
    assert ins[1]["value"] == {"frame": {"plain": [1, 2.5, None]}}  # plain JSON stays readable
    assert ins[0]["t"] <= ins[1]["t"]
    assert "stats" in lines[-1]
    record = read_record(path)
    replayed = record.items[0].inputs
    assert replayed.dtype == np.float32
    assert np.array_equal(replayed, frames[0])


def test_interrupts_are_recorded_and_replayed(tmp_path: Path, engine: lg.Engine) -> None:
    @lg.component(executor="inline")
    def hear(text: str) -> str:
        return text.upper()

    @lg.pipeline
    def p(text: str) -> str:
        return hear(text)

    path = tmp_path / "voice.jsonl"
    source = ["hi", lg.Interrupt("stop"), lg.Interrupt()]
    stream = p.stream(source, engine=engine, record=path, on_drop="keep")
    assert len(list(stream)) == 2  # each "HI" or "STOP", or dropped if still open
    assert stream.wait(10.0)
    items = read_record(path).items
    assert [i.inputs for i in items] == ["hi", lg.Interrupt("stop"), lg.Interrupt(None)]
    replayed = p.stream(lg.replay(path, speed=None), engine=engine, on_drop="keep")
    assert len(list(replayed)) == 2
    assert replayed.stats().items_in == 2  # the bare interrupt submits nothing


def test_replay_refuses_what_is_not_a_record(tmp_path: Path) -> None:
    with pytest.raises(lg.RecordError, match="no stream record at"):
        lg.replay(tmp_path / "missing.jsonl")
    other = tmp_path / "data.jsonl"
    other.write_text('{"x": 1}\n')
    with pytest.raises(lg.RecordError, match="is not a legato stream record"):
        lg.replay(other)
    with pytest.raises(lg.ConfigError, match="replay speed must be a finite number > 0"):
        lg.replay(other, speed=0)


def test_an_item_with_no_stored_form_is_recorded_as_such_and_cannot_be_replayed(
    tmp_path: Path, engine: lg.Engine
) -> None:
    class Opaque:
        pass

    @lg.component(executor="inline")
    def kind(x: Any) -> str:
        return type(x).__name__

    @lg.pipeline
    def p(x: Any) -> str:
        return kind(x)

    path = tmp_path / "opaque.jsonl"
    assert list(p.stream([Opaque()], engine=engine, record=path)) == ["Opaque"]
    with pytest.raises(lg.RecordError, match="was not recorded: a Opaque has no stored form"):
        list(p.stream(lg.replay(path), engine=engine))


def test_a_stream_recorded_in_the_store_keeps_its_counters(
    tmp_path: Path, engine: lg.Engine
) -> None:
    @lg.component(executor="inline", queue="latest")
    def sense(x: int) -> int:
        return x

    @lg.pipeline
    def p(x: int) -> int:
        return sense(x)

    url = tmp_path / "runs.db"
    handed = queue.SimpleQueue[Any]()
    stream = p.stream(iter(handed.get, None), engine=engine, store=url)
    for i in range(3):
        handed.put(i)
    handed.put(None)
    assert sorted(stream) == [0, 1, 2]
    assert stream.wait(10.0)
    with Store.open(url) as store:
        run = store.run(stream.run.id)
    kept = run.options["stream"]
    assert (kept["items_in"], kept["done"], kept["dropped"]) == (3, 3, 0)
    assert set(kept["latency"]) == {"sense"}
    assert run.status == "ok"
