"""The store's contract: what every database (SQLite, PostgreSQL) must do, one set of tests
parametrised over both (``store_url`` in conftest.py)."""

from __future__ import annotations

import dataclasses
import os
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pydantic
import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

import legato as lg
from harness import Events
from legato.engine.events import CacheHit
from legato.store import Store, schema
from legato.store.database import normalise, revision, upgrade
from legato.values import Unstorable

CALLS: list[tuple[str, Any]] = []
_lock = threading.Lock()


def called(name: str, value: Any) -> None:
    with _lock:
        CALLS.append((name, value))


def count(name: str) -> int:
    return sum(1 for who, _ in CALLS if who == name)


@pytest.fixture(autouse=True)
def _fresh_calls() -> None:
    CALLS.clear()


@lg.component(cache=True)
def double(x: int) -> int:
    called("double", x)
    return 2 * x


@lg.component
def add(x: int, y: int) -> int:
    called("add", x)
    return x + y


@lg.pipeline
def doubled(x: int) -> int:
    return add(double(x), x)


@lg.component(retries=lg.Retry(attempts=2, backoff=0))
def fragile(x: int) -> int:
    called("fragile", x)
    if x < 0:
        raise ValueError(f"negative: {x}")  # the line the traceback names
    return x


@lg.pipeline
def checked(x: int) -> int:
    return fragile(x)


class Point(pydantic.BaseModel):
    x: float
    label: str


@dataclasses.dataclass
class Box:
    size: int
    data: list[int] = dataclasses.field(default_factory=list)


# -- the schema ---------------------------------------------------------------------------------


def test_a_new_store_is_created_at_the_newest_revision(store: Store) -> None:
    with store.engine.connect() as connection:
        assert revision(connection) == schema.HEAD


def test_the_migrated_database_matches_the_schema_module(store: Store) -> None:
    with store.engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), schema.metadata)
    assert differences == []


def test_an_old_database_is_upgraded_and_keeps_its_runs(store_url: str, tmp_path: Path) -> None:
    engine = sa.create_engine(normalise(store_url))
    with engine.begin() as connection:
        upgrade(connection, "0001")
        connection.execute(sa.text(
            "INSERT INTO runs (id, pipeline, fingerprint, status, started, done, failed, "
            "inputs, options, host, pid) VALUES ('old1', 'p', 'f', 'ok', 1.0, 3, 0, '{}', '{}', "
            "'h', 1)"))
    engine.dispose()
    with Store.open(store_url, blobs=tmp_path / "blobs") as store:
        assert [run.id for run in store.runs()] == ["old1"]
        assert store.run("old1").done == 3
        assert store.cache_entries() == []  # the table revision 0002 adds is there
        with store.engine.connect() as connection:
            assert revision(connection) == schema.HEAD


def test_a_database_from_a_newer_legato_is_refused(store_url: str, tmp_path: Path) -> None:
    Store.open(store_url, blobs=tmp_path / "blobs").close()
    engine = sa.create_engine(normalise(store_url))
    with engine.begin() as connection:
        connection.execute(sa.text("UPDATE alembic_version SET version_num = '0999'"))
    engine.dispose()
    with pytest.raises(lg.StoreError, match=r"revision 0999.*newer legato.*Upgrade legato"):
        Store.open(store_url, blobs=tmp_path / "blobs")


# -- recording ----------------------------------------------------------------------------------


def test_a_recorded_run_has_its_items_nodes_and_results(store: Store) -> None:
    results = list(doubled.map([1, 2, 3], store=store, cache=False))
    assert results == [3, 6, 9]
    (run,) = store.runs()
    assert (run.pipeline, run.status, run.done, run.failed) == ("doubled", "ok", 3, 0)
    assert run.fingerprint == doubled.graph.fingerprint()
    assert run.finished is not None
    assert run.finished >= run.started
    nodes = store.nodes(run.id)
    assert sorted((n.item, n.node) for n in nodes) == [
        (i, name) for i in range(3) for name in ("add", "double")]
    assert all(n.status == "ok" and n.attempt == 1 and n.end >= n.start for n in nodes)
    assert all(n.executor == "thread" and n.worker.startswith("legato-worker") for n in nodes)
    assert all(n.queued is not None and n.queued <= n.start for n in nodes)
    assert [i.index for i in store.items(run.id)] == [0, 1, 2]
    assert store.results(run.id) == {0: 3, 1: 6, 2: 9}


def test_a_failure_is_recorded_with_attempts_error_and_traceback(store: Store) -> None:
    results = list(checked.map([1, -1], store=store, on_error="collect"))
    assert results[0] == 1
    assert isinstance(results[1], lg.Failure)
    run = store.runs()[0]
    assert (run.status, run.done, run.failed) == ("failed", 1, 1)
    failed = [n for n in store.nodes(run.id) if n.item == 1]
    assert [(n.attempt, n.status) for n in failed] == [(1, "retried"), (2, "failed")]
    assert failed[-1].error == "ValueError: negative: -1"
    assert failed[-1].traceback is not None
    assert "the line the traceback names" in failed[-1].traceback
    assert [i.status for i in store.items(run.id)] == ["ok", "failed"]


def test_values_keep_their_types_through_the_blob_store(store: Store) -> None:
    values = [None, True, 3, 2.5, "text", b"bytes", (1, "a"), [1, (2, 3)], {"k": [1.5]},
              {1: "int key"}, Point(x=1.0, label="p"), Box(3)]
    for value in values:
        digest = store.put(value)
        assert digest is not None
        back = store.value(digest)
        assert back == value
        assert type(back) is type(value)
    array = np.arange(6, dtype=np.float32).reshape(2, 3)
    back = store.value(store.put(array))  # type: ignore[arg-type]
    assert back.dtype == np.float32
    assert back.shape == (2, 3)
    assert (back == array).all()


def test_a_value_with_no_stored_form_is_left_out_and_the_run_goes_on(store: Store) -> None:
    @lg.component
    def make_lock(x: int) -> Any:
        return threading.Lock()

    @lg.component
    def ok(lock: Any) -> bool:
        return lock is not None

    @lg.pipeline
    def locks(x: int) -> bool:
        return ok(make_lock(x))

    with pytest.raises(Unstorable):
        store.codec.encode(threading.Lock())
    assert list(locks.map([1], store=store)) == [True]
    nodes = {n.node: n for n in store.nodes(store.runs()[0].id)}
    assert nodes["make_lock"].status == "ok"  # recorded, without its value


def test_the_store_refuses_a_pickle_it_did_not_write(store: Store, tmp_path: Path) -> None:
    digest = store.put(Box(1, list(range(500))))  # big enough for a blob of its own
    assert digest is not None
    assert not digest.startswith("=")
    path = tmp_path / "blobs" / digest[:2] / digest[2:]
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF  # tampered after it was written, and stored under its own digest
    forged = store.blobs.put(bytes(data))
    with pytest.raises(lg.StoreError, match="did not write"):
        store.value(forged)


# -- caching ------------------------------------------------------------------------------------


def test_a_cached_component_is_not_called_again_for_the_same_inputs(
    store: Store, engine: lg.Engine, events: Events
) -> None:
    assert list(doubled.map([1, 2], store=store, engine=engine)) == [3, 6]
    assert count("double") == 2
    assert list(doubled.map([2, 1, 5], store=store, engine=engine)) == [6, 3, 15]
    assert count("double") == 3  # only 5 was new
    assert count("add") == 5  # not cached: called every time
    hits = events.of(CacheHit)
    assert sorted((h.item, h.node, h.source) for h in hits) == [
        (0, "double", "cache"), (1, "double", "cache")]
    entries = {e.key: e for e in store.cache_entries()}
    assert len(entries) == 3
    assert sum(e.hits for e in entries.values()) == 2
    latest = store.runs()[0]
    cached = [n for n in store.nodes(latest.id) if n.status == "cached"]
    assert sorted(n.item for n in cached) == [0, 1]


def test_a_new_version_or_other_constructor_arguments_miss_the_cache(store: Store) -> None:
    @lg.component(cache=True)
    class Scale:
        def __init__(self, factor: int) -> None:
            self.factor = factor

        def __call__(self, x: int) -> int:
            called("scale", (self.factor, x))
            return self.factor * x

    @lg.pipeline
    def by_two(x: int) -> int:
        return Scale(2)(x)

    @lg.pipeline
    def by_three(x: int) -> int:
        return Scale(3)(x)

    newer = Scale.with_options(version="2")

    @lg.pipeline
    def by_two_newer(x: int) -> int:
        return newer(2)(x)

    assert list(by_two.map([1], store=store)) == [2]
    assert list(by_two.map([1], store=store)) == [2]
    assert list(by_three.map([1], store=store)) == [3]
    assert list(by_two_newer.map([1], store=store)) == [2]
    assert [v for _, v in CALLS] == [(2, 1), (3, 1), (2, 1)]


def test_cache_all_caches_every_component_and_false_none(store: Store) -> None:
    list(doubled.map([4], store=store, cache="all"))
    list(doubled.map([4], store=store, cache="all"))
    assert (count("double"), count("add")) == (1, 1)
    list(doubled.map([4], store=store, cache=False))
    assert (count("double"), count("add")) == (2, 2)


def test_clearing_the_cache_forgets_entries(store: Store) -> None:
    list(doubled.map([1, 2], store=store))
    assert store.clear_cache(component="add") == 0
    assert store.clear_cache(component="double") == 2
    list(doubled.map([1], store=store))
    assert count("double") == 3


# -- resuming -----------------------------------------------------------------------------------


def test_a_resumed_run_computes_only_what_has_no_recorded_output(store: Store) -> None:
    first = doubled.map(range(6), store=store, cache=False, window=1)
    assert [next(first) for _ in range(3)] == [0, 3, 6]
    first.close()  # stopped part-way, like a Ctrl-C
    run = store.runs()[0]
    assert run.status == "cancelled"
    done_before = {i.index for i in store.items(run.id)}
    assert {0, 1, 2} <= done_before
    CALLS.clear()
    resumed = list(doubled.map(range(6), store=store, cache=False, resume=run.id))
    assert resumed == [0, 3, 6, 9, 12, 15]
    redone = {x for who, x in CALLS if who == "double"}
    assert redone.isdisjoint(done_before)
    assert redone == set(range(6)) - done_before
    again = store.run(run.id)
    assert (again.status, again.done, again.failed) == ("ok", 6, 0)
    assert len(store.runs()) == 1  # the same run, continued


def test_a_resumed_item_reuses_its_finished_nodes(store: Store) -> None:
    flaky = {"fail": True}

    @lg.component
    def step_one(x: int) -> int:
        called("one", x)
        return x + 1

    @lg.component
    def step_two(x: int) -> int:
        called("two", x)
        if flaky["fail"]:
            raise RuntimeError("down")
        return x * 10

    @lg.pipeline
    def two_steps(x: int) -> int:
        return step_two(step_one(x))

    assert isinstance(next(iter(two_steps.map([1], store=store, on_error="collect"))), lg.Failure)
    run_id = store.runs()[0].id
    flaky["fail"] = False
    CALLS.clear()
    assert list(two_steps.map([1], store=store, resume=run_id)) == [20]
    assert CALLS == [("two", 2)]  # step_one's recorded output was reused


def test_resuming_a_run_of_a_changed_pipeline_is_refused(store: Store) -> None:
    list(doubled.map([1], store=store))

    @lg.pipeline(name="doubled")
    def rewired(x: int) -> int:  # same name, other wiring
        return double(x)

    with pytest.raises(lg.StoreError, match="another version of pipeline 'doubled'"):
        list(rewired.map([1], store=store, resume=store.runs()[0].id))


def test_an_unknown_run_is_named_in_the_error(store: Store) -> None:
    with pytest.raises(lg.StoreError, match=r"no run 'nope'.*legato runs"):
        store.run("nope")


def test_blobs_can_live_at_an_fsspec_url(store_url: str) -> None:
    with Store.open(store_url, blobs="memory://legato-test-blobs") as store:
        big = {"data": bytes(range(256)) * 40 + os.urandom(10_000)}  # does not compress
        reference = store.put(big)
        assert reference is not None
        assert not reference.startswith("=")
        assert store.value(reference) == big
        assert store.blobs.size(reference) > 10_000


def test_run_and_arun_record_a_finished_run(store: Store) -> None:
    import asyncio

    assert doubled.run(x=1, store=store, cache=False) == 3
    assert asyncio.run(doubled.arun(x=2, store=store, cache=False)) == 6
    assert [(run.status, run.done) for run in store.runs()] == [("ok", 1), ("ok", 1)]
