"""What the UI's JSON API reads from the store: the runs page and one run with its node stats.

**The runs page** is a keyset page, newest first by ``(started, id)``: the cursor is the last
run's pair, and the next page asks for runs strictly before it, so each page costs one index
range read whatever its depth (``ix_runs_started``, or ``ix_runs_pipeline_started`` /
``ix_runs_status_started`` with a filter on pipeline or status). ``recorded`` is counted for the
page's runs only, and only for those that did not finish well (one that did has recorded
``done + failed`` items). ``total`` is counted up to :data:`COUNT_CAP` matching runs (null past
it), so a huge store never pays a full count.

**A run's node stats** come from one pass over its node rows (node, status, start, end, batch),
grouped by graph path: ``refine[2]/score`` counts as ``refine/score``.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from collections.abc import Callable, Collection, Iterator, Mapping
from typing import Any

import sqlalchemy as sa

from legato.errors import ConfigError, StoreError
from legato.store import schema
from legato.store.lineage import path_of
from legato.store.store import recorded_counts
from legato.ui.readonly import ReadOnlyStore
from legato.ui.stats import NodeTally, pending

COUNT_CAP = 10_000  # runs counted for a page's total; past it the total is null
MAX_LIMIT = 500
STATUSES = ("running", "ok", "failed", "cancelled")


def cursor(started: float, run_id: str) -> str:
    """The opaque cursor that pages past the run ``(started, run_id)``."""
    return base64.urlsafe_b64encode(json.dumps([started, run_id]).encode()).decode()


def uncursor(text: str) -> tuple[float, str]:
    """The ``(started, id)`` a :func:`cursor` stands for; :class:`ConfigError` for a text this
    API did not hand out (the route answers 400)."""
    try:
        started, run_id = json.loads(base64.urlsafe_b64decode(text.encode()))
        return float(started), str(run_id)
    except (ValueError, TypeError, binascii.Error) as exc:
        raise ConfigError(f"'before' is not a cursor this API gave: {text!r}") from exc


def run_json(row: Mapping[Any, Any], recorded: int | None, *, live: bool,
             now: float) -> dict[str, Any]:
    """The API's ``Run`` object for a row of ``runs`` (``recorded`` None: done + failed)."""
    finished = row["finished"]
    started = row["started"]
    duration = (finished - started if finished is not None
                else now - started if row["status"] == "running" else None)
    return {
        "id": row["id"], "pipeline": row["pipeline"], "status": row["status"],
        "mode": row["mode"], "started": started, "finished": finished,
        "duration": None if duration is None else round(max(0.0, duration), 6),
        "done": row["done"], "failed": row["failed"],
        "recorded": row["done"] + row["failed"] if recorded is None else recorded,
        "total": row["total"], "live": live,
    }


def page_query(store: ReadOnlyStore, *, pipeline: str | None = None, status: str | None = None,
               mode: str | None = None, limit: int = 50,
               before: tuple[float, str] | None = None) -> sa.Select[Any]:
    """The SELECT of one runs page (``limit + 1`` rows: the extra one says a next page exists);
    public so that a test can read its query plan."""
    runs = schema.runs
    query = sa.select(runs.c.id, runs.c.pipeline, runs.c.status, store.column(runs, "mode"),
                      runs.c.started, runs.c.finished, runs.c.done, runs.c.failed,
                      runs.c.total).where(*_filters(store, pipeline, status, mode))
    if before is not None:
        started, run_id = before
        query = query.where(runs.c.started <= started,
                            sa.or_(runs.c.started < started, runs.c.id < run_id))
    return query.order_by(runs.c.started.desc(), runs.c.id.desc()).limit(limit + 1)


def _filters(store: ReadOnlyStore, pipeline: str | None, status: str | None,
             mode: str | None) -> list[sa.ColumnElement[bool]]:
    runs = schema.runs
    found: list[sa.ColumnElement[bool]] = []
    if pipeline:
        found.append(runs.c.pipeline == pipeline)
    if status:
        found.append(runs.c.status == status)
    if mode:
        if store.has("runs", "mode"):
            found.append(store.column(runs, "mode") == mode)
        else:
            found.append(sa.false())  # an older store records no mode: nothing matches
    return found


def runs_page(store: ReadOnlyStore, *, pipeline: str | None = None, status: str | None = None,
              mode: str | None = None, limit: int = 50, before: str | None = None,
              live: Collection[str] = (), now: Callable[[], float] = time.time
              ) -> dict[str, Any]:
    """``GET /api/runs``: one page of runs, newest first (see the module docstring)."""
    limit = max(1, min(int(limit), MAX_LIMIT))
    position = None if not before else uncursor(before)
    runs = schema.runs
    query = page_query(store, pipeline=pipeline, status=status, mode=mode, limit=limit,
                       before=position)
    matching = sa.select(runs.c.id).where(*_filters(store, pipeline, status, mode))
    with store.reading() as connection:
        rows = connection.execute(query).mappings().all()
        more = len(rows) > limit
        rows = rows[:limit]
        counts = recorded_counts(connection, [r["id"] for r in rows if r["status"] != "ok"])
        total = connection.execute(sa.select(sa.func.count()).select_from(
            matching.limit(COUNT_CAP + 1).subquery())).scalar_one()
        pipelines = connection.execute(
            sa.select(runs.c.pipeline).distinct().order_by(runs.c.pipeline)).scalars().all()
        statuses = connection.execute(sa.select(runs.c.status).distinct()).scalars().all()
    moment = now()
    last = rows[-1] if rows and more else None
    return {
        "runs": [run_json(row, counts.get(row["id"], 0) if row["status"] != "ok" else None,
                          live=row["id"] in live, now=moment) for row in rows],
        "next": None if last is None else cursor(last["started"], last["id"]),
        "total": None if total > COUNT_CAP else total,
        "pipelines": list(pipelines),
        "statuses": sorted(set(statuses) | set(STATUSES), key=_status_order),
    }


def _status_order(status: str) -> tuple[int, str]:
    return (STATUSES.index(status) if status in STATUSES else len(STATUSES), status)


def run_row(store: ReadOnlyStore, connection: sa.Connection, run_id: str
            ) -> sa.RowMapping | None:
    """The ``runs`` row of ``run_id`` (an exact id), or None."""
    runs = schema.runs
    columns = [c for c in runs.c if c.name != "mode"]
    query = sa.select(*columns, store.column(runs, "mode")).where(runs.c.id == run_id)
    return connection.execute(query).mappings().first()


def graph_text(store: ReadOnlyStore, connection: sa.Connection, fingerprint: str) -> str | None:
    """The pipeline JSON kept for the graph ``fingerprint`` names (None: none kept, or a store
    from before revision 0004)."""
    if not store.has_table("graphs"):
        return None
    graphs = schema.graphs
    return connection.execute(sa.select(graphs.c.graph).where(
        graphs.c.fingerprint == fingerprint)).scalar()


def run_detail(store: ReadOnlyStore, run_id: str, *, live: bool = False,
               now: Callable[[], float] = time.time) -> dict[str, Any] | None:
    """``GET /api/runs/{id}``: the run, its pipeline graph and its node stats; None when the
    store has no such run."""
    with store.reading() as connection:
        row = run_row(store, connection, run_id)
        if row is None:
            return None
        counts = recorded_counts(connection, [run_id] if row["status"] != "ok" else [])
        tallies = node_tallies(store, connection, run_id)
        described = graph_text(store, connection, row["fingerprint"])
    run = run_json(row, counts.get(run_id, 0) if row["status"] != "ok" else None, live=live,
                   now=now())
    run.update(error=row["error"], target=row["target"], inputs=_loads(row["inputs"], {}),
               options=_loads(row["options"], {}), host=row["host"], pid=row["pid"])
    graph = _loads(described, None)
    nodes = {path: tally.to_json() for path, tally in sorted(tallies.items())}
    return {"run": run, "graph": graph, "nodes": with_graph_nodes(nodes, graph), "live": live}


def node_tallies(store: ReadOnlyStore, connection: sa.Connection, run_id: str
                 ) -> dict[str, NodeTally]:
    """Every node execution of the run, counted per graph path, in one pass."""
    nodes = schema.nodes
    query = sa.select(nodes.c.node, nodes.c.status, nodes.c.start, nodes.c.end,
                      store.column(nodes, "batch")).where(nodes.c.run_id == run_id)
    tallies: dict[str, NodeTally] = {}
    paths: dict[str, str] = {}
    for node, status, start, end, batch in connection.execute(query):
        path = paths.get(node)
        if path is None:
            path = paths[node] = path_of(node)
        tally = tallies.get(path)
        if tally is None:
            tally = tallies[path] = NodeTally()
        tally.add(status, end - start, batch)
    return tallies


def graph_paths(graph: Mapping[str, Any], prefix: str = "") -> Iterator[str]:
    """The paths of a pipeline JSON's call nodes (``draw.to_dict``), bodies included, named as
    the store names executions (see :func:`legato.store.lineage.path_of`): a map's
    ``each/score``, a branch's ``check/then/fix`` and ``check/else/...``, a loop's
    ``refine/score`` and ``refine/until/...``."""
    for node in graph.get("nodes", ()):
        path = f"{prefix}{node.get('id')}"
        if node.get("component") is not None:
            yield path
        kind = node.get("kind")
        labels = (("then/", "else/") if kind == "branch" else ("", "until/") if kind == "loop"
                  else ("", ""))
        for label, body in zip(labels, (node.get("body"), node.get("orelse")), strict=True):
            if isinstance(body, Mapping):
                yield from graph_paths(body, f"{path}/{label}")


def with_graph_nodes(nodes: dict[str, Any], graph: Any) -> dict[str, Any]:
    """``nodes`` with a ``pending`` entry for each call node of ``graph`` that has none."""
    if isinstance(graph, Mapping):
        for path in graph_paths(graph):
            if path not in nodes:
                nodes[path] = pending()
    return nodes


def _loads(text: str | None, default: Any) -> Any:
    if text is None:
        return default
    try:
        return json.loads(text)
    except ValueError:
        return default


def exists(store: ReadOnlyStore, run_id: str) -> bool:
    """Whether the store has the run ``run_id``."""
    runs = schema.runs
    with store.reading() as connection:
        return connection.execute(sa.select(runs.c.id).where(runs.c.id == run_id)).first() \
            is not None


__all__ = ["COUNT_CAP", "StoreError", "cursor", "exists", "graph_paths",
           "node_tallies", "page_query", "run_detail", "run_json",
           "runs_page", "uncursor", "with_graph_nodes"]
