"""The UI's store is opened read-only, and only a legato store is accepted."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness import postgres_schema
from legato.errors import StoreError
from legato.store import Store, schema
from legato.ui import queries
from legato.ui.readonly import ReadOnlyStore
from legato.ui.timeline import timeline


def test_a_missing_file_is_refused_and_not_created(tmp_path: Path) -> None:
    path = tmp_path / "nothing" / "legato.db"
    with pytest.raises(StoreError, match=r"no legato store at .*does not exist"):
        ReadOnlyStore(path)
    assert not path.parent.exists()


def test_a_file_that_is_not_sqlite_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("hello\n")
    with pytest.raises(StoreError, match=r"is not a legato store \(not a SQLite database"):
        ReadOnlyStore(path)


def test_a_sqlite_database_of_something_else_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE things (id INTEGER)")
    with pytest.raises(StoreError, match=r"not a legato store \(it has no legato_meta table"):
        ReadOnlyStore(path)


def test_a_store_of_a_newer_legato_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "legato.db"
    Store.open(path).close()
    with sqlite3.connect(path) as connection:
        connection.execute("UPDATE alembic_version SET version_num = '9999'")
    with pytest.raises(StoreError, match="revision 9999, which this legato does not know"):
        ReadOnlyStore(path)


def test_writes_are_refused_by_the_driver(tmp_path: Path) -> None:
    path = tmp_path / "legato.db"
    Store.open(path).close()
    with ReadOnlyStore(path) as store:
        with pytest.raises(StoreError, match="readonly"), store.reading() as connection:
            connection.execute(schema.meta.insert().values(key="x", value="y"))
        assert store.revision == schema.HEAD


def test_an_older_revision_reads_missing_columns_as_null(tmp_path: Path) -> None:
    path = tmp_path / "legato.db"
    Store.open(path).close()
    with sqlite3.connect(path) as connection:
        connection.execute("INSERT INTO runs (id, pipeline, fingerprint, status, started, done, "
                           "failed, inputs, options, host, pid) VALUES ('r1', 'p', 'f', 'ok', "
                           "1.0, 1, 0, '{}', '{}', 'h', 1)")
    with ReadOnlyStore(path) as store:
        # as a store at revision 0003 is: without the columns revision 0004 adds
        store.columns = {table: names - {"mode", "batch", "inputs_ref"}
                         for table, names in store.columns.items()}
        store.tables = frozenset()
        assert not store.has("runs", "mode")
        assert queries.runs_page(store, mode="map")["runs"] == []
        (run,) = queries.runs_page(store)["runs"]
        assert (run["id"], run["mode"]) == ("r1", None)
        detail = queries.run_detail(store, "r1")
        assert detail is not None
        assert detail["graph"] is None


@pytest.fixture
def postgres_url() -> Iterator[str]:
    with postgres_schema() as url:
        yield url


def test_postgresql_sessions_are_read_only(postgres_url: str, tmp_path: Path) -> None:
    with Store.open(postgres_url, blobs=tmp_path / "blobs") as store, store.engine.begin() as c:
        c.execute(schema.runs.insert().values(
            id="pg1", pipeline="p", fingerprint="f", status="ok", started=1.0, finished=2.0,
            done=1, failed=0, inputs="{}", options="{}", host="h", pid=1))
        c.execute(schema.nodes.insert().values(
            run_id="pg1", item=0, node="each[0]/score", attempt=1, status="ok", start=1.25,
            end=1.75, executor="thread", worker="thread-1"))
    with ReadOnlyStore(postgres_url, blobs=tmp_path / "blobs") as store:
        with store.reading() as connection:
            assert connection.exec_driver_sql("SHOW transaction_read_only").scalar() == "on"
            assert connection.exec_driver_sql("SHOW search_path").scalar().startswith("t_")
        with pytest.raises(StoreError, match="read-only"), store.reading() as connection:
            connection.execute(schema.meta.insert().values(key="x", value="y"))
        page = queries.runs_page(store)
        assert [run["id"] for run in page["runs"]] == ["pg1"]
        detail = queries.run_detail(store, "pg1")
        assert detail is not None
        assert detail["nodes"]["each/score"]["ok"] == 1
        found = timeline(store, "pg1", started=1.0, finished=2.0)
        assert found["bars"]["start"] == [0.25]
        assert found["bars"]["end"] == [0.75]
        assert found["lanes"] == ["thread-1"]


def test_postgresql_that_cannot_be_reached_says_so(tmp_path: Path) -> None:
    pytest.importorskip("psycopg")
    with pytest.raises(StoreError, match="cannot use the store"):
        ReadOnlyStore("postgresql://nobody:x@127.0.0.1:1/none", timeout=2)
