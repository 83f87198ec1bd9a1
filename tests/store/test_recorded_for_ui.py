"""What a run's record keeps for the web UI: its mode and pipeline JSON, each batched call's
batch size, and a failed item's inputs (an ok item's are not kept)."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa

import legato as lg
from legato.store import Store, schema


@lg.component(batch=lg.Batch(max_size=3, max_wait_ms=60_000))
def double(x: list[int]) -> list[int]:
    return [v * 2 for v in x]


@lg.component
def picky(x: int) -> int:
    if x == 4:
        raise ValueError("no fours")
    return x


@lg.pipeline
def doubled(x: int) -> int:
    return picky(double(x))


def test_a_map_run_records_mode_graph_batches_and_failed_inputs(store_url: str) -> None:
    with Store.open(store_url) as store:
        results = list(doubled.map([1, 2, 3], store=store, on_error="collect"))
        assert [r for r in results if not isinstance(r, lg.Failure)] == [2, 6]
        (run,) = store.runs()
        assert run.mode == "map"
        with store.engine.connect() as connection:
            mode, fingerprint = connection.execute(
                sa.select(schema.runs.c.mode, schema.runs.c.fingerprint)).one()
            assert mode == "map"
            (text,) = connection.execute(sa.select(schema.graphs.c.graph).where(
                schema.graphs.c.fingerprint == fingerprint)).one()
            graph = json.loads(text)
            assert [node["id"] for node in graph["nodes"]] == ["double", "picky"]
            batches = connection.execute(
                sa.select(schema.nodes.c.node, schema.nodes.c.batch)).all()
            assert sorted(batches) == [("double", 3)] * 3 + [("picky", None)] * 3
            items = connection.execute(
                sa.select(schema.items.c.idx, schema.items.c.status, schema.items.c.inputs_ref)
                .order_by(schema.items.c.idx)).all()
        assert [(i, status) for i, status, _ in items] == [(0, "ok"), (1, "failed"), (2, "ok")]
        refs = {i: ref for i, _, ref in items}
        assert refs[0] is None
        assert refs[2] is None
        assert store.value(refs[1]) == {"x": 2}


@lg.pipeline
def checked(x: int) -> int:
    return picky(x)


def test_a_single_run_is_recorded_as_run(store_url: str) -> None:
    with Store.open(store_url) as store:
        assert checked.run(x=1, store=store) == 1
        (run,) = store.runs()
        assert run.mode == "run"


def test_a_graph_is_described_once_however_many_runs(store_url: str) -> None:
    with Store.open(store_url) as store:
        for x in (1, 2, 3):
            assert checked.run(x=x, store=store) == x
        with store.engine.connect() as connection:
            kept = connection.execute(sa.select(schema.graphs.c.fingerprint)).scalars().all()
        assert kept == [store.runs()[0].fingerprint]
        assert not store.keep_graph(kept[0], lambda: pytest.fail("described again"))
