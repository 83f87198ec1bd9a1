"""The runs page with 10,000 runs in a real SQLite store: right, and read through an index
(the query plan, not a timing)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
import sqlalchemy as sa

from legato.store import Store
from legato.ui import queries
from legato.ui.readonly import ReadOnlyStore

RUNS = 10_000
PIPELINES = ("alpha", "beta", "gamma", "delta")
STATUSES = ("ok", "ok", "failed", "running", "cancelled")


@pytest.fixture(scope="module")
def many(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("many") / "legato.db"
    Store.open(path).close()
    rows = []
    for n in range(RUNS):
        # every tenth pair of runs starts at the same second: the id breaks the tie
        started = 1_700_000_000.0 + (n - n % 2 if n % 10 == 0 else n)
        rows.append((f"run{n:05d}", PIPELINES[n % 4], "f", STATUSES[n % 5], started,
                     started + 1, 3, n % 2, "{}", "{}", "h", 1))
    with sqlite3.connect(path) as connection:
        connection.executemany(
            "INSERT INTO runs (id, pipeline, fingerprint, status, started, finished, done, "
            "failed, inputs, options, host, pid) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            rows)
        connection.executemany(
            "INSERT INTO items (run_id, idx, status, finished) VALUES (?, ?, ?, 0)",
            [(f"run{n:05d}", i, "ok") for n in range(RUNS - 10, RUNS) for i in range(n % 3)])
    return path


@pytest.fixture
def store(many: Path) -> ReadOnlyStore:
    return ReadOnlyStore(many)


def expected(pipeline: str | None = None, status: str | None = None) -> list[str]:
    """Run ids newest first, the way the page must order them."""
    runs = [(1_700_000_000.0 + (n - n % 2 if n % 10 == 0 else n), f"run{n:05d}", n)
            for n in range(RUNS)]
    chosen = [(s, i) for s, i, n in runs if (pipeline is None or PIPELINES[n % 4] == pipeline)
              and (status is None or STATUSES[n % 5] == status)]
    return [i for _, i in sorted(chosen, reverse=True)]


@pytest.mark.parametrize(("pipeline", "status"), [(None, None), ("beta", None),
                                                  (None, "failed"), ("alpha", "running")])
def test_every_page_in_order_without_repeats(store: ReadOnlyStore, pipeline: str | None,
                                             status: str | None) -> None:
    seen: list[str] = []
    before = None
    pages = 0
    while True:
        page = queries.runs_page(store, pipeline=pipeline, status=status, limit=500,
                                 before=before)
        seen.extend(run["id"] for run in page["runs"])
        pages += 1
        before = page["next"]
        if before is None:
            break
    assert seen == expected(pipeline, status)
    assert pages == max(1, -(-len(seen) // 500))  # no empty last page: limit + 1 rows read


def test_the_first_page(store: ReadOnlyStore) -> None:
    page = queries.runs_page(store, limit=50)
    assert [run["id"] for run in page["runs"]] == expected()[:50]
    assert page["total"] == RUNS
    assert page["pipelines"] == sorted(PIPELINES)
    newest = page["runs"][0]
    assert newest["id"] == "run09999"
    assert newest["recorded"] == 0  # cancelled, no item recorded


def test_recorded_counts_items_of_the_page_runs_only(store: ReadOnlyStore) -> None:
    page = queries.runs_page(store, limit=10)
    for run in page["runs"]:
        n = int(run["id"][3:])
        assert run["recorded"] == (run["done"] + run["failed"] if run["status"] == "ok"
                                   else n % 3)


def _plan(store: ReadOnlyStore, query: sa.Select) -> list[str]:
    compiled = query.compile(store.engine, compile_kwargs={"literal_binds": True})
    with store.reading() as connection:
        return [row[-1] for row in connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}")]


@pytest.mark.parametrize(("pipeline", "status"), [(None, None), ("beta", None),
                                                  (None, "failed")])
def test_the_page_query_reads_runs_through_an_index(store: ReadOnlyStore,
                                                    pipeline: str | None,
                                                    status: str | None) -> None:
    for before in (None, (1_700_005_000.0, "run05000")):
        plan = _plan(store, queries.page_query(store, pipeline=pipeline, status=status,
                                               limit=50, before=before))
        on_runs = [line for line in plan if " runs" in line]
        assert on_runs, plan
        assert all("USING" in line and "INDEX" in line for line in on_runs), plan
        with store.reading() as connection:
            indexes = set(connection.exec_driver_sql(
                "SELECT name FROM sqlite_master WHERE type = 'index'").scalars())
        wanted = {"beta": "ix_runs_pipeline_started", "failed": "ix_runs_status_started"}.get(
            pipeline or status or "", "ix_runs_started")
        if wanted in indexes:
            assert any(wanted in line for line in on_runs), plan
