"""Keeping the store small and sound: removing runs, freeing blobs nothing names, blobs checked
against their digest (a damaged one is rewritten when its value is computed again), compressed
where it pays, and a store only its owner can read."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

import legato as lg
from legato.store import Store, schema
from legato.store.blobs import COMPRESSED
from legato.store.housekeeping import clear_cache, collect, remove_runs
from legato.values import digest

CALLS: list[int] = []
_lock = threading.Lock()


@pytest.fixture(autouse=True)
def _fresh_calls() -> None:
    CALLS.clear()


@lg.component
def text(x: int) -> str:
    with _lock:
        CALLS.append(x)
    return f"line {x}\n" * 600  # a 5 kB blob of its own, which compresses well


@lg.pipeline
def texts(x: int) -> str:
    return text(x)


@lg.component(cache=True)
def cached_text(x: int) -> str:
    with _lock:
        CALLS.append(x)
    return f"cached {x}\n" * 600


@lg.pipeline
def cached_texts(x: int) -> str:
    return cached_text(x)


def _rows(store: Store, table: sa.Table, run_id: str) -> int:
    column = table.c.id if table is schema.runs else table.c.run_id
    with store.engine.connect() as connection:
        return connection.execute(sa.select(sa.func.count()).select_from(table)
                                  .where(column == run_id)).scalar_one()


def _blobs(store: Store) -> set[str]:
    return {key for key, _, _ in store.blobs.stored()}


def test_removing_a_run_removes_its_rows_and_gc_then_frees_its_blobs(store: Store) -> None:
    list(texts.map([1, 2], store=store))
    list(texts.map([2, 3], store=store))
    gone, kept = store.runs()[1].id, store.runs()[0].id
    before = _blobs(store)
    assert len(before) == 3  # item 2's value is stored once, named by both runs
    assert [run.id for run in remove_runs(store, [gone])] == [gone]
    for table in (schema.runs, schema.items, schema.nodes):
        assert _rows(store, table, gone) == 0
    assert _rows(store, schema.items, kept) == 2
    dry = collect(store, grace=0, dry_run=True)
    assert (dry.blobs, dry.dry_run) == (1, True)
    assert _blobs(store) == before  # a dry run removes nothing
    freed = collect(store, grace=0)
    assert freed.blobs == 1
    assert freed.bytes > 0
    assert store.results(kept) == {0: "line 2\n" * 600, 1: "line 3\n" * 600}
    assert collect(store, grace=0).blobs == 0


def test_gc_spares_blobs_written_within_its_grace(store: Store) -> None:
    list(texts.map([1], store=store))
    remove_runs(store, [store.runs()[0].id])
    assert collect(store).blobs == 0  # just written: a recording run may not have named it yet
    assert collect(store, grace=0).blobs == 1


def test_gc_older_than_removes_old_runs_first_and_keeps_new_ones(store: Store) -> None:
    list(texts.map([1], store=store))
    old = store.runs()[0].id
    list(texts.map([2], store=store))
    new = store.runs()[0].id
    with store.engine.begin() as connection:
        connection.execute(schema.runs.update().where(schema.runs.c.id == old)
                           .values(started=time.time() - 40 * 86400))
    freed = collect(store, older_than=30 * 86400, grace=0)
    assert (freed.runs, freed.blobs) == (1, 1)
    assert [run.id for run in store.runs()] == [new]


def test_a_run_being_run_is_not_removed(store: Store) -> None:
    running = texts.map(range(4), store=store, window=1)
    next(running)
    run_id = store.runs()[0].id
    try:
        with pytest.raises(lg.StoreError, match=rf"run {run_id} is held by pid {os.getpid()}"):
            remove_runs(store, [run_id])
        assert collect(store, older_than=0, grace=0).runs == 0
    finally:
        running.close()
    assert len(remove_runs(store, [run_id])) == 1


def test_clearing_the_cache_frees_the_blobs_only_it_named(store: Store) -> None:
    list(cached_texts.map([1, 2], store=store, cache=True))
    assert len(_blobs(store)) == 2  # each value once: the node row and the entry share it
    remove_runs(store, [store.runs()[0].id])
    freed = clear_cache(store, "cached_text")
    assert (freed.entries, freed.blobs) == (2, 2)
    assert _blobs(store) == set()


def test_clearing_the_cache_keeps_blobs_a_run_still_names(store: Store) -> None:
    list(cached_texts.map([1], store=store, cache=True))
    freed = clear_cache(store)
    assert (freed.entries, freed.blobs) == (1, 0)
    assert store.results(store.runs()[0].id) == {0: "cached 1\n" * 600}


def test_a_damaged_blob_is_rewritten_when_its_value_is_computed_again(
    store: Store, tmp_path: Path,
) -> None:
    list(cached_texts.map([7], store=store, cache=True))
    (key,) = _blobs(store)
    path = tmp_path / "blobs" / key[:2] / key[2:]
    path.write_bytes(b"m" + b"\x00" * 40)  # damaged on disk: a bad sector, a stray write
    with pytest.raises(lg.StoreError, match=rf"blob {key} .* is damaged"):
        store.value(key)
    CALLS.clear()
    assert list(cached_texts.map([7], store=store, cache=True)) == ["cached 7\n" * 600]
    assert CALLS == [7]  # the damaged cache entry was not used: computed again
    assert store.value(key) == "cached 7\n" * 600  # and its blob rewritten whole


def test_a_damaged_blob_is_rewritten_by_another_store_putting_the_same_value(
    store_url: str, tmp_path: Path,
) -> None:
    value = "same value\n" * 500
    with Store.open(store_url, blobs=tmp_path / "blobs") as first:
        key = first.put(value)
        assert key is not None
    path = tmp_path / "blobs" / key[:2] / key[2:]
    path.write_bytes(path.read_bytes()[:-10])  # truncated
    with Store.open(store_url, blobs=tmp_path / "blobs") as second:
        assert second.put(value) == key
        assert second.value(key) == value


def test_big_blobs_are_compressed_and_uncompressed_ones_still_read(
    store: Store, tmp_path: Path,
) -> None:
    value = "compress me\n" * 1000
    key = store.put(value)
    assert key is not None
    path = tmp_path / "blobs" / key[:2] / key[2:]
    stored = path.read_bytes()
    assert stored.startswith(COMPRESSED)
    assert len(stored) < len(value) / 10
    assert store.value(key) == value
    raw = store.codec.encode(value)  # as a blob was written before compression: as it is
    path.write_bytes(raw)
    assert digest(raw) == key
    assert store.value(key) == value
    noise = os.urandom(8000)  # does not compress: stored as it is
    noisy = store.put(noise)
    assert noisy is not None
    assert not (tmp_path / "blobs" / noisy[:2] / noisy[2:]).read_bytes().startswith(COMPRESSED)
    assert store.value(noisy) == noise


def test_a_new_store_is_readable_by_its_owner_only(tmp_path: Path) -> None:
    home = tmp_path / "project" / ".legato"
    with Store.open(home / "legato.db") as store:
        list(texts.map([1], store=store))
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    for name in ("legato.db", "legato.db-wal"):
        if (home / name).exists():
            assert stat.S_IMODE((home / name).stat().st_mode) == 0o600, name


def _legato(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "legato.cli", *args], env=env,
                          capture_output=True, text=True, timeout=120, check=False)


def test_legato_runs_rm_and_gc_from_the_command_line(tmp_path: Path) -> None:
    store_path = tmp_path / "s.db"
    with Store.open(store_path, blobs=tmp_path / "blobs") as store:
        list(texts.map([1], store=store))
        run_id = store.runs()[0].id
        old = time.time() - 7200
        for key, _, _ in store.blobs.stored():  # written two hours ago: past gc's grace
            os.utime(tmp_path / "blobs" / key[:2] / key[2:], (old, old))
    env = {**os.environ, "LEGATO_BLOBS": str(tmp_path / "blobs")}
    listed = _legato(["runs", "--store", str(store_path)], env)
    assert listed.returncode == 0, listed.stderr
    assert run_id in listed.stdout
    removed = _legato(["runs", "rm", run_id[:6], "--store", str(store_path)], env)
    assert removed.returncode == 0, removed.stderr
    assert f"removed run {run_id} (texts, ok)" in removed.stdout
    dry = _legato(["gc", "--dry-run", "--store", str(store_path)], env)
    assert dry.stdout.startswith("would free 1 blob (")
    freed = _legato(["gc", "--older-than", "30d", "--store", str(store_path)], env)
    assert freed.returncode == 0, freed.stderr
    assert freed.stdout.startswith("freed 1 blob (")
    bad = _legato(["gc", "--older-than", "soon", "--store", str(store_path)], env)
    assert bad.returncode == 2
    assert "--older-than expects a number and a unit" in bad.stderr


def test_gc_frees_blobs_at_an_fsspec_url(store_url: str) -> None:
    with Store.open(store_url, blobs="memory://legato-gc-test") as store:
        list(texts.map([5], store=store))
        remove_runs(store, [store.runs()[0].id])
        assert len(_blobs(store)) == 1
        assert collect(store, grace=0).blobs == 1
        assert _blobs(store) == set()
