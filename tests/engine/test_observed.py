"""What observers (metrics, traces, the web UI) are told: component names and batch ids on node
events, each item's start with its context, the run's mode, and the engine's snapshot."""

from __future__ import annotations

import threading

import legato as lg
from harness import WAIT, Background, Events
from legato.backends.local import LocalBackend
from legato.engine.events import BatchFormed, ItemStarted, NodeFinished, NodeStarted, RunStarted


@lg.component(batch=lg.Batch(max_size=4, max_wait_ms=60_000))
def shout(text: list[str]) -> list[str]:
    return [t.upper() for t in text]


@lg.component
def tag(text: str) -> str:
    return f"<{text}>"


@lg.pipeline
def loud(text: str) -> str:
    return tag(shout(text))


def test_node_events_name_their_component_and_batch(engine: lg.Engine) -> None:
    events = Events()
    engine.bus.subscribe(events)
    results = loud.map([{"text": t} for t in "abcd"], engine=engine)
    assert list(results) == ["<A>", "<B>", "<C>", "<D>"]
    formed = events.of(BatchFormed)
    assert len(formed) == 1
    batch = formed[0]
    assert batch.batch > 0
    assert sorted(item for _, item, _ in batch.members) == [0, 1, 2, 3]
    assert {node for _, _, node in batch.members} == {"shout"}
    started = [e for e in events.of(NodeStarted) if e.node == "shout"]
    finished = [e for e in events.of(NodeFinished) if e.node == "shout"]
    assert {(e.component, e.batch, e.batch_size) for e in started + finished} == {
        ("shout", batch.batch, 4)}
    tags = [e for e in events.of(NodeFinished) if e.node == "tag"]
    assert {(e.component, e.batch, e.batch_size) for e in tags} == {("tag", 0, 1)}


def test_an_item_starts_with_its_inputs_and_context(engine: lg.Engine) -> None:
    events = Events()
    engine.bus.subscribe(events)
    run = tag_pipeline.open(engine=engine)
    handle = run.submit({"text": "x"}, context={"traceparent": "00-abc-def-01"})
    assert handle.result(WAIT) == "<x>"
    run.close()
    assert run.wait(WAIT)
    (started,) = events.of(ItemStarted)
    assert (started.run, started.item) == (run.id, 0)
    assert dict(started.inputs) == {"text": "x"}
    assert started.context == {"traceparent": "00-abc-def-01"}
    assert [e.mode for e in events.of(RunStarted)] == ["run"]


@lg.pipeline
def tag_pipeline(text: str) -> str:
    return tag(text)


def test_runs_tell_their_mode(engine: lg.Engine) -> None:
    events = Events()
    engine.bus.subscribe(events)
    tag_pipeline.run(text="a", engine=engine)
    list(tag_pipeline.map(["b"], engine=engine))
    assert [e.mode for e in events.of(RunStarted)] == ["run", "map"]


GATE = threading.Event()


@lg.component(cpus=1, instances=1)
class Held:
    def __call__(self, text: str) -> str:
        if not GATE.wait(WAIT):
            raise TimeoutError("the test never opened the gate")
        return text


@lg.pipeline
def held(text: str) -> str:
    return Held()(text)


def test_snapshot_counts_queued_and_running_calls_and_instances() -> None:
    GATE.clear()
    with lg.Engine(LocalBackend(cpus=1, gpus=[])) as engine:
        events = Events()
        engine.bus.subscribe(events)
        assert engine.snapshot().components == {}
        run = held.open(engine=engine)
        handles = [run.submit({"text": t}) for t in "abc"]
        events.wait_for(lambda e: isinstance(e, NodeStarted))
        background = Background(lambda: [h.result(WAIT) for h in handles])
        try:
            snapshot = engine.snapshot()
            assert snapshot.complete
            state = snapshot.components["held"]
            assert (state.running, state.queued, state.instances) == (1, 2, 1)
            assert snapshot.usage.capacity["cpus"] == 1
            assert snapshot.usage.used["cpus"] == 1
        finally:
            GATE.set()
        assert background.result() == ["a", "b", "c"]
        run.close()
        assert run.wait(WAIT)
        after = engine.snapshot().components["held"]
        assert (after.running, after.queued, after.instances) == (0, 0, 1)
