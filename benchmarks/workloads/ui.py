"""B12: the web UI's API over a big store.

- ``B12``: ``GET /api/runs`` (the runs page: 50 runs, their recorded counts, the total, the
  pipelines) with 10,000 runs in a SQLite store, over HTTP from a real uvicorn server on
  127.0.0.1, as a ratio to a plain ``SELECT * FROM runs ORDER BY started DESC LIMIT 50`` through
  SQLAlchemy on the same file, measured in the same run (the least a page of runs costs).
- ``B12-deep``: the same page 9,000 runs deep (a keyset cursor), against the same baseline.
- ``B12-timeline``: ``GET /api/runs/{id}/timeline`` of a run of 20,000 node executions, in ms;
  ``B12-bytes``: the size of that JSON, in bytes.

The store's rows are inserted through SQL into a store a real run created (its schema, indexes
and signing key are legato's own). Figures are medians of many requests after a warm-up.
"""

from __future__ import annotations

import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from suite import Family, RowSpec, Sample

RUNS = 10_000
EXECUTIONS = 20_000


def _store(folder: Path) -> tuple[Path, str]:
    """A store with RUNS runs and one run (its id returned) of EXECUTIONS node rows."""
    import legato as lg
    from legato.backends.local import LocalBackend

    @lg.component(executor="inline", cpus=0)
    def step(x: int) -> int:
        return x

    @lg.pipeline
    def tiny(x: int) -> int:
        return step(x)

    path = folder / "legato.db"
    with lg.Engine(LocalBackend()) as engine:
        list(tiny.map([{"x": 1}], engine=engine, store=path, run_id="timeline0001"))
    with sqlite3.connect(path) as connection:
        (begun,) = connection.execute(
            "SELECT started FROM runs WHERE id = 'timeline0001'").fetchone()
    runs = [(f"run{n:05d}", ("alpha", "beta", "gamma")[n % 3], "f",
             ("ok", "failed", "running")[n % 3], 1.7e9 + n, 1.7e9 + n + 1, 5, n % 2, "{}", "{}",
             "h", 1, "map") for n in range(RUNS)]
    nodes = [("timeline0001", n, f"each[{n}]/score", 1, "ok" if n % 50 else "failed",
              begun + n * 1e-3, begun + n * 1e-3 + 4e-3, "thread", f"thread-{n % 8}")
             for n in range(EXECUTIONS)]
    with sqlite3.connect(path) as connection:
        connection.executemany(
            "INSERT INTO runs (id, pipeline, fingerprint, status, started, finished, done, "
            "failed, inputs, options, host, pid, mode) VALUES "
            "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", runs)
        connection.executemany(
            'INSERT INTO nodes (run_id, item, node, attempt, status, start, "end", executor, '
            "worker) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", nodes)
    return path, "timeline0001"


def _median(call: Callable[[], Any], repeats: int) -> float:
    for _ in range(max(3, repeats // 10)):
        call()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def measure(*, quick: bool) -> dict[str, Any]:
    """Every B12 figure, with the baseline's, from one store (see the module docstring)."""
    import httpx
    import sqlalchemy as sa

    from legato.ui import start
    from legato.ui.queries import cursor

    repeats = 30 if quick else 200
    with tempfile.TemporaryDirectory() as folder:
        path, run_id = _store(Path(folder))
        plain = sa.create_engine(f"sqlite:///{path}")
        with plain.connect() as connection:
            baseline = _median(lambda: connection.execute(sa.text(
                "SELECT * FROM runs ORDER BY started DESC LIMIT 50")).all(), repeats)
        plain.dispose()
        handle = start(path, port=0)
        try:
            with httpx.Client(base_url=handle.url, timeout=60) as client:
                first = client.get("/api/runs").json()
                assert len(first["runs"]) == 50
                n = RUNS - 9_000  # the page after the first 9,000 runs, newest first
                after = cursor(1.7e9 + n, f"run{n:05d}")
                found = client.get("/api/runs", params={"before": after}).json()["runs"]
                assert found[0]["id"] == f"run{n - 1:05d}"
                page = _median(lambda: client.get("/api/runs"), repeats)
                deep_page = _median(lambda: client.get("/api/runs", params={"before": after}),
                                    repeats)
                body = client.get(f"/api/runs/{run_id}/timeline").content
                timeline = _median(lambda: client.get(f"/api/runs/{run_id}/timeline"),
                                   max(5, repeats // 10))
        finally:
            handle.stop()
    return {"page": page, "deep": deep_page, "baseline": baseline, "timeline": timeline,
            "bytes": len(body)}


def family(*, quick: bool) -> Family:
    rows = [
        RowSpec("B12", "UI: GET /api/runs, 10,000 runs in SQLite, over HTTP / plain SELECT "
                "of 50 runs through SQLAlchemy", "ratio", None),
        RowSpec("B12-deep", "B12, the page 9,000 runs deep (keyset cursor)", "ratio", None),
        RowSpec("B12-timeline", "UI: GET /api/runs/{id}/timeline, 20,000 executions", "ms",
                None),
        RowSpec("B12-bytes", "UI: that timeline's JSON", "bytes", None),
    ]

    def legato() -> Sample:
        found = measure(quick=quick)
        base = found["baseline"]
        return Sample(
            {"B12": found["page"] / base, "B12-deep": found["deep"] / base,
             "B12-timeline": found["timeline"] * 1e3, "B12-bytes": float(found["bytes"])},
            notes={"B12": f"{found['page'] * 1e3:.2f} ms against {base * 1e3:.3f} ms",
                   "B12-deep": f"{found['deep'] * 1e3:.2f} ms"})

    return Family("B12: the web UI's API", rows, {"legato": legato})
