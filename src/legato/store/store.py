"""The run store: runs, items and node executions in SQL; values in the blob store.

``Store.open()`` with no argument opens ``LEGATO_STORE`` if set, else the SQLite file
``.legato/legato.db`` under ``LEGATO_HOME`` or the working directory, creating it. Reading is
what users and the CLI do (``runs``, ``run``, ``nodes``, ``items``, ``cache_entries``);
writing is the :class:`~legato.store.writer.Recorder`'s job, in batches off the run's thread.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from legato.errors import StoreError
from legato.store import claims, schema
from legato.store.blobs import Blobs
from legato.store.claims import Claimant
from legato.store.database import connect, normalise, reading, upsert, writing
from legato.store.lineage import path_of
from legato.store.records import CacheRecord, ItemRecord, NodeRecord, RunRecord
from legato.values import Codec, Unstorable

INLINE = 256  # bytes: a value's stored form up to this size is kept in its row, not a blob


def home() -> Path:
    """Where the default store lives: ``$LEGATO_HOME`` or ``./.legato``."""
    found = os.environ.get("LEGATO_HOME")
    return Path(found).expanduser() if found else Path.cwd() / ".legato"


@dataclass(frozen=True)
class Resumed:
    """What a run recorded before it stopped: finished items' results (index -> value
    reference), the outputs of nodes of items that did not finish
    (``(item, node) -> {port: reference}``), the digest of every recorded item's inputs
    (None: recorded without one), and whether the run had finished well (nothing to do)."""

    run: RunRecord
    items: dict[int, str]
    nodes: dict[tuple[int, str], dict[str, str]]
    inputs: dict[int, str | None] = field(default_factory=dict)
    finished: bool = False


class Store:
    """A run store over one database and one blob location; safe to share between threads."""

    def __init__(self, url: str | Path, *, blobs: str | Path | None = None,
                 timeout: float = 30.0) -> None:
        self.url = normalise(url)
        self.engine = connect(self.url, timeout=timeout)
        self.blobs = Blobs(blobs or os.environ.get("LEGATO_BLOBS") or self._default_blobs())
        self.codec = Codec(self._signing_key())

    @classmethod
    def open(cls, url: str | Path | None = None, *, blobs: str | Path | None = None,
             timeout: float = 30.0) -> Store:
        """The store at ``url``; None: ``LEGATO_STORE``, else ``.legato/legato.db`` (see
        :func:`home`)."""
        chosen = url or os.environ.get("LEGATO_STORE") or home() / "legato.db"
        return cls(chosen, blobs=blobs, timeout=timeout)

    def _default_blobs(self) -> Path:
        url = sa.engine.make_url(self.url)
        if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
            return Path(url.database).parent / "blobs"
        return home() / "blobs"

    def _signing_key(self) -> bytes:
        """The key that signs this store's pickles, made once and kept in the database."""
        with reading(self.engine) as connection:
            found = connection.execute(
                sa.select(schema.meta.c.value).where(schema.meta.c.key == "signing_key")
            ).scalar()
        if found is None:
            with writing(self.engine) as connection:
                found = connection.execute(
                    sa.select(schema.meta.c.value).where(schema.meta.c.key == "signing_key")
                ).scalar()
                if found is None:
                    found = secrets.token_hex(32)
                    connection.execute(schema.meta.insert().values(key="signing_key",
                                                                   value=found))
        return bytes.fromhex(found)

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Store {sa.engine.make_url(self.url).render_as_string(hide_password=True)}>"

    # -- values --------------------------------------------------------------------------------

    def put(self, value: Any) -> str | None:
        """Store a value; its reference, or None when it has no stored form."""
        try:
            return self.reference(self.codec.encode(value))
        except Unstorable:
            return None

    def reference(self, encoded: bytes) -> str:
        """How the store refers to an encoded value: up to ``INLINE`` bytes, the bytes
        themselves (``"="`` and base64, kept in the row); more, the digest of a blob."""
        if len(encoded) <= INLINE:
            return "=" + base64.b64encode(encoded).decode()
        return self.blobs.put(encoded)

    def value(self, reference: str) -> Any:
        """The value a reference (from :meth:`put` or :meth:`reference`) stands for."""
        if reference.startswith("="):
            return self.codec.decode(base64.b64decode(reference[1:]), name="an inline value")
        return self.codec.decode(self.blobs.get(reference), name=f"blob {reference}")

    # -- runs ----------------------------------------------------------------------------------

    def runs(self, limit: int = 50) -> list[RunRecord]:
        """The latest runs, newest first."""
        query = sa.select(schema.runs).order_by(schema.runs.c.started.desc()).limit(limit)
        with reading(self.engine) as connection:
            rows = connection.execute(query).mappings().all()
            counts = recorded_counts(connection,
                                     [row["id"] for row in rows if row["status"] != "ok"])
        return [_run(row, counts.get(row["id"], 0) if row["status"] != "ok" else None)
                for row in rows]

    def run(self, run_id: str) -> RunRecord:
        """The run with this id, or the one run whose id starts with it."""
        table = schema.runs
        with reading(self.engine) as connection:
            rows = connection.execute(
                sa.select(table).where(table.c.id.startswith(run_id, autoescape=True)).limit(2)
            ).mappings().all()
            exact = [row for row in rows if row["id"] == run_id]
            if not exact and len(rows) == 1:
                exact = list(rows)
            if not exact:
                if not rows:
                    raise StoreError(f"no run '{run_id}' in {self}; `legato runs` lists them")
                raise StoreError(f"'{run_id}' starts more than one run id; give more of it")
            row = exact[0]
            counts = recorded_counts(connection, [row["id"]] if row["status"] != "ok" else [])
        return _run(row, counts.get(row["id"], 0) if row["status"] != "ok" else None)

    def nodes(self, run_id: str) -> list[NodeRecord]:
        """Every node execution of the run, by start time."""
        table = schema.nodes
        query = (sa.select(table).where(table.c.run_id == self.run(run_id).id)
                 .order_by(table.c.start, table.c.id))
        with reading(self.engine) as connection:
            return [NodeRecord(run=row["run_id"], item=row["item"], node=row["node"],
                               attempt=row["attempt"], status=row["status"],
                               queued=row["queued"], start=row["start"], end=row["end"],
                               executor=row["executor"], worker=row["worker"],
                               error=row["error"], traceback=row["traceback"])
                    for row in connection.execute(query).mappings()]

    def items(self, run_id: str) -> list[ItemRecord]:
        """The run's finished items, by index."""
        table = schema.items
        query = (sa.select(table).where(table.c.run_id == self.run(run_id).id,
                                        table.c.status != "pending").order_by(table.c.idx))
        with reading(self.engine) as connection:
            return [ItemRecord(run=row["run_id"], index=row["idx"], status=row["status"],
                               finished=row["finished"], error=row["error"])
                    for row in connection.execute(query).mappings()]

    def results(self, run_id: str) -> dict[int, Any]:
        """The recorded results of the run's items that finished well, by index."""
        table = schema.items
        query = sa.select(table.c.idx, table.c.result).where(
            table.c.run_id == self.run(run_id).id, table.c.status == "ok")
        with reading(self.engine) as connection:
            rows = connection.execute(query).all()
        return {index: self.value(digest) for index, digest in rows if digest is not None}

    def start_run(self, record: RunRecord, *, shape: str | None = None,
                  lineage: Mapping[str, str] | None = None) -> None:
        """Record a new run (status "running"), held by the process ``record`` names.
        ``shape`` and ``lineage`` (see :mod:`legato.store.lineage`) let a resume with new code
        tell which recorded outputs still hold."""
        with writing(self.engine) as connection:
            connection.execute(schema.runs.insert().values(
                id=record.id, pipeline=record.pipeline, fingerprint=record.fingerprint,
                status="running", started=record.started, finished=None, done=0, failed=0,
                error=None, target=record.target, inputs=json.dumps(record.inputs, default=str),
                options=json.dumps(record.options, default=str), host=record.host,
                pid=record.pid, process=record.process, total=record.total, shape=shape,
                lineage=None if lineage is None else json.dumps(lineage, sort_keys=True),
                mode=record.mode))

    def keep_graph(self, fingerprint: str, describe: Callable[[], str | None]) -> bool:
        """Keep the pipeline JSON of the graph ``fingerprint`` names (for the web UI), made by
        ``describe`` only if the store has none yet: once per graph, not per run (a graph
        of 10,000 nodes takes 0.1 s to describe). True when it was written now."""
        graphs = schema.graphs
        with reading(self.engine) as connection:
            found = connection.execute(sa.select(graphs.c.fingerprint).where(
                graphs.c.fingerprint == fingerprint)).first()
        if found is not None:
            return False
        text = describe()
        if text is None:
            return False
        with writing(self.engine) as connection:
            upsert(connection, graphs, [{"fingerprint": fingerprint, "graph": text,
                                         "created": time.time()}], ["fingerprint"],
                   update=False)
        return True

    def resume(self, run_id: str, *, fingerprint: str, shape: str | None = None,
               lineage: Mapping[str, str] | None = None, retry_failed: bool = False,
               claimant: Claimant | None = None) -> Resumed:
        """Claim a stopped run for this process and read what it recorded, in one transaction.

        Refused (:class:`StoreError`, naming the holder) while the process holding the run is
        alive (see :mod:`legato.store.claims`). Refused for a pipeline whose code or wiring
        changed (another graph ``fingerprint``), unless ``retry_failed`` and its ``shape`` is
        the same: then recorded node outputs whose ``lineage`` changed are forgotten (their
        node runs again with the new code) and the run takes the new fingerprint. A run that
        finished well is not claimed nor changed: ``Resumed.finished`` says so."""
        found = self.run(run_id)
        holder = claimant or claims.me()
        runs, items, nodes = schema.runs, schema.items, schema.nodes
        with writing(self.engine) as connection:
            row = connection.execute(sa.select(runs).where(runs.c.id == found.id)
                                     .with_for_update()).mappings().first()
            if row is None:
                raise StoreError(f"run {found.id} was removed from {self} meanwhile")
            run = _run(row)
            finished = run.status == "ok"  # nothing to do: not claimed, not changed
            stale = self._changed(run, row, fingerprint, shape, lineage, retry_failed)
            if run.status == "running":
                current = Claimant(run.host, run.pid, run.process)
                if claims.alive(current):
                    raise StoreError(_held(run, current))
            if not finished:
                changes: dict[str, Any] = {
                    "status": "running", "finished": None, "error": None,
                    "host": holder.host, "pid": holder.pid, "process": holder.process}
                if run.fingerprint != fingerprint:
                    changes.update(fingerprint=fingerprint, shape=shape, lineage=json.dumps(
                        dict(lineage or {}), sort_keys=True))
                connection.execute(runs.update().where(runs.c.id == run.id).values(**changes))
            done: dict[int, str] = {}
            inputs: dict[int, str | None] = {}
            query = sa.select(items.c.idx, items.c.status, items.c.result, items.c.inputs).where(
                items.c.run_id == run.id)
            for index, status, result, digest in connection.execute(query):
                inputs[index] = digest
                if status == "ok" and result is not None:
                    done[index] = result
            recorded: dict[tuple[int, str], dict[str, str]] = {}
            forget: list[int] = []
            query = sa.select(nodes.c.id, nodes.c.item, nodes.c.node, nodes.c.outputs).where(
                nodes.c.run_id == run.id, nodes.c.status == "ok", nodes.c.outputs.is_not(None))
            for row_id, item, node, outputs in connection.execute(query):
                if stale and not finished and path_of(node) in stale:
                    forget.append(row_id)  # computed by code that changed since
                elif item not in done:
                    recorded[(item, node)] = json.loads(outputs)
            for start in range(0, len(forget), 500):
                connection.execute(nodes.update().where(
                    nodes.c.id.in_(forget[start:start + 500])).values(outputs=None))
        return Resumed(run, done, recorded, inputs=inputs, finished=finished)

    def _changed(self, run: RunRecord, row: sa.RowMapping, fingerprint: str, shape: str | None,
                 lineage: Mapping[str, str] | None, retry_failed: bool) -> set[str]:
        """The graph paths whose recorded outputs no longer hold (see :meth:`resume`); raise
        when the pipeline changed in a way a resume cannot follow."""
        if run.fingerprint == fingerprint:
            return set()
        if not retry_failed:
            raise StoreError(
                f"run {run.id} was of another version of pipeline '{run.pipeline}' (graph "
                f"fingerprint {run.fingerprint}, now {fingerprint}): its code or wiring "
                f"changed. If you fixed a component, rerun the failed items with the new code: "
                f"legato resume {run.id} --retry-failed (from Python: map(items, resume=..., "
                "retry_failed=True)); else start a new run")
        if row["shape"] is None or row["lineage"] is None:
            raise StoreError(
                f"run {run.id} was recorded by an older legato, without its graph's shape: "
                "it cannot be resumed with changed code; start a new run")
        if row["shape"] != shape:
            raise StoreError(
                f"run {run.id}: the wiring of pipeline '{run.pipeline}' changed (nodes or "
                "their connections, not only their code), so its recorded outputs cannot be "
                "matched to the new graph; start a new run")
        old = json.loads(row["lineage"])
        return {path for path, digest in (lineage or {}).items() if old.get(path) != digest}

    def release(self, run_id: str) -> RunRecord:
        """Take the claim away from whoever holds the run (``legato resume --force``): the
        run becomes "cancelled", resumable by anyone. Its previous record is returned."""
        run = self.run(run_id)
        if run.status == "running":
            runs = schema.runs
            with writing(self.engine) as connection:
                connection.execute(runs.update().where(
                    runs.c.id == run.id, runs.c.status == "running").values(
                    status="cancelled", error=f"released by legato resume --force (it was held "
                    f"by {Claimant(run.host, run.pid, run.process).describe()})"))
        return run

    def annotate(self, run_id: str, options: Mapping[str, Any]) -> None:
        """Merge ``options`` (JSON data) into the run's recorded options: a stream keeps its
        final counters there (``options["stream"]``), for ``legato show``."""
        run = self.run(run_id)
        runs = schema.runs
        with writing(self.engine) as connection:
            connection.execute(runs.update().where(runs.c.id == run.id).values(
                options=json.dumps({**run.options, **options}, default=str)))

    # -- the cache -----------------------------------------------------------------------------

    def cached(self, key: str) -> dict[str, str] | None:
        """The outputs (port -> digest) cached under ``key``, if any."""
        table = schema.cache
        with reading(self.engine) as connection:
            found = connection.execute(
                sa.select(table.c.outputs).where(table.c.key == key)).scalar()
        return None if found is None else json.loads(found)

    def cache_entries(self, component: str | None = None) -> list[CacheRecord]:
        """Every cache entry (of one component, by name), newest first."""
        table = schema.cache
        query = sa.select(table).order_by(table.c.created.desc())
        if component is not None:
            query = query.where(table.c.component == component)
        with reading(self.engine) as connection:
            return [CacheRecord(key=row["key"], component=row["component"],
                                created=row["created"], size=row["size"], hits=row["hits"])
                    for row in connection.execute(query).mappings()]

    def clear_cache(self, component: str | None = None) -> int:
        """Forget cache entries (of one component, by name); how many were removed. Their blobs
        that nothing else names are removed too (see :mod:`legato.store.housekeeping`)."""
        from legato.store.housekeeping import clear_cache

        return clear_cache(self, component).entries

def recorded_counts(connection: sa.Connection, run_ids: list[str]) -> dict[str, int]:
    """How many items of each run have a recorded outcome (ok or failed)."""
    if not run_ids:
        return {}
    items = schema.items
    query = (sa.select(items.c.run_id, sa.func.count()).where(
        items.c.run_id.in_(run_ids), items.c.status.in_(("ok", "failed")))
        .group_by(items.c.run_id))
    return {run_id: count for run_id, count in connection.execute(query).all()}


def _held(run: RunRecord, holder: Claimant) -> str:
    if holder.host != socket.gethostname():
        return (f"run {run.id} is held by {holder.describe()} (on another host: legato cannot "
                f"tell from here whether it still runs). Wait for it to end; if you know that "
                f"process is gone, legato resume {run.id} --force takes the run over")
    return (f"run {run.id} is held by {holder.describe()}: that process is still running it. "
            f"Wait for it to end, or stop it (kill {holder.pid}), then legato resume {run.id}")


def _run(row: sa.RowMapping, recorded: int | None = None) -> RunRecord:
    return RunRecord(
        id=row["id"], pipeline=row["pipeline"], fingerprint=row["fingerprint"],
        status=row["status"], started=row["started"], finished=row["finished"],
        done=row["done"], failed=row["failed"], error=row["error"], target=row["target"],
        inputs=json.loads(row["inputs"] or "{}"), options=json.loads(row["options"] or "{}"),
        host=row["host"], pid=row["pid"], process=row["process"], total=row["total"],
        recorded=(row["done"] + row["failed"]) if recorded is None else recorded,
        mode=row.get("mode"))
